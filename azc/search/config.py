"""Experiment configuration: one TOML file, with the original's names.

Top-level keys (the original's SearchExperimentSpec and flags; docs/configuration.md):

    scalars, vectors, matrices           memory sizes (default 20 each, at most MAX_ADDRESSES)
    setup_ops, predict_ops, learn_ops    op names (SCALAR_SUM_OP or SCALAR_SUM) or ids
    setup_size_init / _min / _max        and the same for predict_ and learn_
    population_size, tournament_size
    initial_population                   NO_OP_ALGORITHM (default), RANDOM_ALGORITHM, ...
    allowed_mutation_types               ALTER_PARAM_MUTATION_TYPE, ... (duplicates weigh)
    mutate_prob                          0.9
    max_train_steps                      8e10, per search experiment
    max_abs_error                        100
    fitness_combination_mode             MEAN_FITNESS_COMBINATION or MEDIAN_...
    progress_every                       10000 individuals
    sufficient_fitness                   stop once a candidate's select fitness exceeds it
    max_experiments                      1 (0: until sufficient_fitness)
    randomize_task_seeds                 false
    random_seed                          the run's seed (--seed overrides)
    [fec]                                num_train_examples, num_valid_examples,
                                         cache_size, forget_every
    [train_budget]                       train_budget_baseline,
                                         train_budget_threshold_factor
    [hurdles]                            percentile (75), task_share (0.3): azc's
                                         hurdles (azc.search.hurdles)
    [[search_tasks]], [[select_tasks]], [[final_tasks]]   task specs (azc.tasks.spec)
    [[island_tasks]]                     more search task sets for islands: each table
                                         holds a [[island_tasks.tasks]] array; island i
                                         searches on set i mod (1 + sets), set 0 being
                                         search_tasks

azc's own options: `batch_size` (children per native call, 1 = the exact
sequential order), `constant_mutation` ("code" or the "paper"'s U[0.5, 2]),
`max_individuals`, `time_limit` (seconds), `migrate_every` (generations
between migrations when running on several workers).

Unknown keys and bad values raise ConfigError naming the key.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from azc.errors import AzcError, ConfigError
from azc.files import MAX_CONFIG_BYTES, read_text, regular_file
from azc.ir import MAX_ADDRESSES, MAX_INSTRUCTIONS, Component, MemoryConfig
from azc.ops import OPS, op_by_name
from azc.resources import config_dir
from azc.search.fec import FEC_MAX_EXAMPLES, FecConfig
from azc.search.generator import InitialPopulation
from azc.search.hurdles import HurdleConfig
from azc.search.mutator import CONSTANT_MUTATIONS, MutationType
from azc.search.space import UNLIMITED, SearchSpace
from azc.tasks.spec import TaskSpec, check_image_override, parse_task_list, with_image_data


@dataclass(frozen=True)
class BudgetConfig:
    """The `train_budget` section."""

    baseline: InitialPopulation = InitialPopulation.NEURAL_NET_ALGORITHM
    threshold_factor: float = 2.0


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment: search space, evolution, caches, tasks and stopping rules."""

    name: str
    memory: MemoryConfig
    ops: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    size_init: tuple[int, int, int]
    size_min: tuple[int, int, int]
    size_max: tuple[int, int, int]
    population_size: int
    tournament_size: int
    initial_population: InitialPopulation
    mutation_types: tuple[MutationType, ...]
    search_tasks: tuple[TaskSpec, ...]
    select_tasks: tuple[TaskSpec, ...]
    final_tasks: tuple[TaskSpec, ...]
    island_tasks: tuple[tuple[TaskSpec, ...], ...] = ()
    mutate_prob: float = 0.9
    fec: FecConfig | None = None
    train_budget: BudgetConfig | None = None
    hurdles: HurdleConfig | None = None
    max_train_steps: int = 80_000_000_000
    max_abs_error: float = 100.0
    combination: str = "mean"
    progress_every: int = 10_000
    sufficient_fitness: float = math.inf
    max_experiments: int = 1
    randomize_task_seeds: bool = False
    random_seed: int = 1
    batch_size: int = 50
    constant_mutation: str = "code"
    max_individuals: int | None = None
    time_limit: float | None = None
    migrate_every: int = 10
    source: str = ""
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def island_search_tasks(self, island: int, base: list[TaskSpec]) -> list[TaskSpec]:
        """The search task specs of island `island`: `base` (the search tasks, perhaps
        re-seeded) for set 0, else its island task set, taking sets in turn."""
        k = island % self.task_sets
        return list(base) if k == 0 else list(self.island_tasks[k - 1])

    @property
    def task_sets(self) -> int:
        """How many search task sets islands take in turn: the search tasks and the
        island task sets."""
        return 1 + len(self.island_tasks)

    def space(self, features: int) -> SearchSpace:
        """The search space at the search tasks' feature size."""
        return SearchSpace(self.memory, features, self.ops, self.size_init, self.size_min,
                           self.size_max)


_TOP_KEYS = {
    "scalars", "vectors", "matrices", "setup_ops", "predict_ops", "learn_ops",
    "setup_size_init", "predict_size_init", "learn_size_init", "setup_size_min",
    "predict_size_min", "learn_size_min", "setup_size_max", "predict_size_max",
    "learn_size_max", "population_size", "tournament_size", "initial_population",
    "allowed_mutation_types", "mutate_prob", "max_train_steps", "max_abs_error",
    "fitness_combination_mode", "progress_every", "sufficient_fitness", "max_experiments",
    "randomize_task_seeds", "random_seed", "fec", "train_budget", "search_tasks",
    "select_tasks", "final_tasks", "batch_size", "constant_mutation", "max_individuals",
    "time_limit", "name", "description", "migrate_every", "hurdles", "island_tasks",
}
_ALIASES = {"max_scalar_addresses": "scalars", "max_vector_addresses": "vectors",
            "max_matrix_addresses": "matrices"}
def _alias(key: str) -> str:
    """The canonical name of a key (the original's flag and mutate_*_size_* spellings)."""
    if key.startswith("mutate_") and "_size_" in key:
        key = key[len("mutate_"):]
    return _ALIASES.get(key, key)


MAX_POPULATION = 1_000_000  # programs in one population (the paper used 100 to 1000)
_REQUIRED = ("population_size", "tournament_size", "allowed_mutation_types", "search_tasks")


def shipped_configs() -> list[str]:
    """Names of the configurations shipped with azc (demo, linear, nonlinear, ...)."""
    return sorted(p.stem for p in config_dir().glob("*.toml"))


def resolve_config_path(arg: str) -> Path:
    """A config path from a path or the name of a shipped config."""
    p = Path(arg)
    if p.exists():
        return regular_file(p, "configuration", MAX_CONFIG_BYTES, ConfigError)
    shipped = config_dir() / f"{arg.removesuffix('.toml')}.toml"
    if shipped.is_file():
        return shipped
    raise ConfigError(f"no such configuration: {arg} (a TOML file, or one of the shipped "
                      f"configs: {', '.join(shipped_configs())})")


def load_config(arg: str) -> ExperimentConfig:
    """Load and validate an experiment configuration (path or shipped name)."""
    path = resolve_config_path(arg)
    text = read_text(path, "configuration", MAX_CONFIG_BYTES, ConfigError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    return parse_config(data, str(path), path.parent, name=path.stem)


def parse_config(data: dict, source: str = "<config>", base_dir: Path | None = None,
                 name: str = "experiment") -> ExperimentConfig:
    """Validate a parsed TOML document into an ExperimentConfig."""
    base = base_dir or Path(".")
    data = {_alias(k): v for k, v in data.items()}
    for key in data:
        if key not in _TOP_KEYS:
            near = [k for k in _TOP_KEYS if k[:4] == key[:4]]
            hint = f" (did you mean {', '.join(sorted(near))}?)" if near else ""
            raise ConfigError(f"unknown key '{key}'{hint}", where=source)
    for key in _REQUIRED:
        if key not in data:
            raise ConfigError(f"missing required key '{key}'", where=source)
    get = _Getter(data, source)
    memory = _memory(get)
    ops = tuple(get.ops(f"{c.attr}_ops") for c in Component)
    most = MAX_INSTRUCTIONS
    size_init = tuple(get.integer(f"{c.attr}_size_init", 0, lo=0, hi=most) for c in Component)
    size_min = tuple(get.integer(f"{c.attr}_size_min", 0, lo=0, hi=most) for c in Component)
    size_max = tuple(get.integer(f"{c.attr}_size_max", 0, lo=0, hi=most) or UNLIMITED
                     for c in Component)
    search = parse_task_list(data["search_tasks"], source, base, key="search_tasks")
    select = (parse_task_list(data["select_tasks"], source, base, key="select_tasks")
              if "select_tasks" in data else search)
    final = (parse_task_list(data["final_tasks"], source, base, key="final_tasks")
             if "final_tasks" in data else select)
    island_sets = _island_tasks(data.get("island_tasks"), source, base)
    combination = str(get.value("fitness_combination_mode", "mean", str)).strip().upper()
    combination = {"MEAN_FITNESS_COMBINATION": "mean", "MEAN": "mean",
                   "MEDIAN_FITNESS_COMBINATION": "median", "MEDIAN": "median"}.get(combination, "")
    if not combination:
        raise ConfigError("fitness_combination_mode must be MEAN_FITNESS_COMBINATION or "
                          "MEDIAN_FITNESS_COMBINATION", where=source)
    constant = get.value("constant_mutation", "code", str)
    if constant not in CONSTANT_MUTATIONS:
        raise ConfigError(f"constant_mutation must be one of {CONSTANT_MUTATIONS}, got "
                          f"{constant!r}", where=source)
    try:
        initial = InitialPopulation.parse(get.value("initial_population", "NO_OP_ALGORITHM",
                                                    (str, int)))
    except ConfigError as err:
        raise get.fail("initial_population", err.message) from None
    try:
        types = tuple(MutationType.parse(t) for t in get.items("allowed_mutation_types"))
    except ConfigError as err:
        raise get.fail("allowed_mutation_types", err.message) from None
    if not types:
        raise ConfigError("allowed_mutation_types must not be empty", where=source)
    cfg = ExperimentConfig(
        name=str(data.get("name", name)), memory=memory, ops=ops,  # type: ignore[arg-type]
        size_init=size_init, size_min=size_min, size_max=size_max,  # type: ignore[arg-type]
        population_size=get.integer("population_size", lo=2, hi=MAX_POPULATION),
        tournament_size=get.integer("tournament_size", lo=1),
        initial_population=initial, mutation_types=types,
        search_tasks=tuple(search), select_tasks=tuple(select), final_tasks=tuple(final),
        island_tasks=island_sets,
        mutate_prob=get.number("mutate_prob", 0.9, lo=0.0, hi=1.0),
        fec=_fec(get), train_budget=_budget(get), hurdles=_hurdles(get),
        max_train_steps=get.integer("max_train_steps", 80_000_000_000, lo=1),
        max_abs_error=get.number("max_abs_error", 100.0, lo=0.0),
        combination=combination,
        progress_every=get.integer("progress_every", 10_000, lo=1),
        sufficient_fitness=get.number("sufficient_fitness", math.inf),
        max_experiments=get.integer("max_experiments", 1, lo=0),
        randomize_task_seeds=get.flag("randomize_task_seeds", False),
        random_seed=get.integer("random_seed", 1, lo=0),
        batch_size=get.integer("batch_size", 50, lo=1),
        constant_mutation=constant,
        max_individuals=get.optional_int("max_individuals"),
        time_limit=get.optional_float("time_limit"),
        migrate_every=get.integer("migrate_every", 10, lo=1),
        source=source, raw=data)
    check_config(cfg)
    return cfg


def check_config(cfg: ExperimentConfig) -> None:
    """ConfigError unless the configuration's parts agree with each other."""
    if cfg.tournament_size > cfg.population_size:
        raise ConfigError(f"tournament_size ({cfg.tournament_size}) exceeds population_size "
                          f"({cfg.population_size})", where=cfg.source)
    for c in Component:
        if cfg.size_min[c] > cfg.size_max[c]:
            raise ConfigError(f"{c.attr}_size_min ({cfg.size_min[c]}) exceeds "
                              f"{c.attr}_size_max ({cfg.size_max[c]})", where=cfg.source)
    features = {s.features_size for s in cfg.search_tasks}
    if len(features) != 1 or None in features:
        raise ConfigError(f"search_tasks must share one features_size, got "
                          f"{sorted(f for f in features if f is not None)}", where=cfg.source)
    (F,) = features
    sets = (cfg.search_tasks, *cfg.island_tasks)
    for number, specs in enumerate(sets):
        wrong = sorted({s.features_size or 0 for s in specs if s.features_size != F})
        if wrong:
            raise ConfigError(f"island_tasks set {number} has features_size {wrong[0]}, but "
                              f"the search tasks have {F}", where=cfg.source)
        if cfg.hurdles is not None:
            try:
                cfg.hurdles.head_tasks(sum(s.num_tasks for s in specs))
            except ConfigError as err:
                what = "search_tasks" if number == 0 else f"island_tasks set {number}"
                raise ConfigError(f"{what}: {err.message}", where=cfg.source) from None
    for key, specs in (("select_tasks", cfg.select_tasks), ("final_tasks", cfg.final_tasks)):
        other = sorted({s.features_size for s in specs if s.features_size != F},
                       key=lambda f: -1 if f is None else f)
        if other:
            raise ConfigError(f"{key} have features_size {other[0]}, but the search tasks "
                              f"have {F}: candidates are evolved for one feature size",
                              where=cfg.source)


def with_image_dataset(cfg: ExperimentConfig, dataset: str | None = None,
                       paths: dict[str, str | Path] | None = None) -> ExperimentConfig:
    """The configuration with its projected image tasks on another dataset or path.

    `dataset` (e.g. "mnist") replaces the dataset of every projected task spec;
    `paths` maps dataset names to where they are (`--data cifar10=PATH`).
    ConfigError if the configuration has no projected tasks or reads none of
    the named datasets.
    """
    if dataset is None and not paths:
        return cfg
    groups = (cfg.search_tasks, cfg.select_tasks, cfg.final_tasks)
    check_image_override([s for g in groups for s in g], dataset, paths,
                         cfg.source or cfg.name, [s for g in cfg.island_tasks for s in g])
    search, select, final = (tuple(with_image_data(g, dataset, paths)) for g in groups)
    # --dataset moves the main tasks; island sets (say, MNIST for diversity) keep theirs
    islands = tuple(tuple(with_image_data(g, None, paths)) for g in cfg.island_tasks)
    return replace(cfg, search_tasks=search, select_tasks=select, final_tasks=final,
                   island_tasks=islands)


def _island_tasks(value: object, source: str, base: Path) -> tuple[tuple[TaskSpec, ...], ...]:
    """The `[[island_tasks]]` sets: tables each holding a `tasks` array of task tables."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value) or not value:
        raise ConfigError("island_tasks must be an array of tables ([[island_tasks]]), each "
                          "with its [[island_tasks.tasks]]", where=source)
    sets = []
    for number, table in enumerate(value, start=1):
        unknown = [k for k in table if k != "tasks"]
        if unknown or "tasks" not in table:
            raise ConfigError(f"[[island_tasks]] table {number} holds only a "
                              f"[[island_tasks.tasks]] array"
                              + (f" (unknown key '{unknown[0]}')" if unknown else ""),
                              where=source)
        sets.append(tuple(parse_task_list(table["tasks"], source, base,
                                          key="island_tasks.tasks")))
    return tuple(sets)


def _memory(get: _Getter) -> MemoryConfig:
    sizes = []
    for key in ("scalars", "vectors", "matrices"):
        n = get.integer(key, 20)
        if n > MAX_ADDRESSES:
            raise get.fail(key, f"must be at most {MAX_ADDRESSES} (MAX_ADDRESSES: the "
                                f"addresses an instruction's 16-bit fields can hold), got {n}")
        sizes.append(n)
    try:
        return MemoryConfig(*sizes)
    except ConfigError:
        raise
    except AzcError as err:  # VerifyError from MemoryConfig: name the keys
        raise ConfigError(f"scalars/vectors/matrices: {err.message}",
                          where=get.source) from None


def _fec(get: _Getter) -> FecConfig | None:
    sub = _section(get, "fec", _SECTION_KEYS["fec"])
    if sub is None:
        return None
    return FecConfig(sub.integer("num_train_examples", 10, lo=1, hi=FEC_MAX_EXAMPLES),
                     sub.integer("num_valid_examples", 10, lo=1, hi=FEC_MAX_EXAMPLES),
                     sub.integer("cache_size", 100_000, lo=1),
                     sub.integer("forget_every", 100, lo=0))


_SECTION_KEYS = {
    "fec": ("num_train_examples", "num_valid_examples", "cache_size", "forget_every"),
    "train_budget": ("train_budget_baseline", "train_budget_threshold_factor"),
    "hurdles": ("percentile", "task_share"),
}


def _section(get: _Getter, name: str, valid: tuple[str, ...]) -> _Getter | None:
    """A getter for the table `[name]` (None without one); unknown keys are errors."""
    table = get.value(name, None, dict)
    if table is None:
        return None
    for key in table:
        if key not in valid:
            raise ConfigError(f"unknown key '{name}.{key}' (valid: {', '.join(valid)})",
                              where=get.source)
    return _Getter(table, get.source, prefix=f"{name}.")


def _hurdles(get: _Getter) -> HurdleConfig | None:
    """The `[hurdles]` section (None without one)."""
    sub = _section(get, "hurdles", _SECTION_KEYS["hurdles"])
    if sub is None:
        return None
    try:
        return HurdleConfig(percentile=sub.number("percentile", 75.0),
                            task_share=sub.number("task_share", 0.3))
    except ConfigError as err:
        raise ConfigError(err.message, where=get.source) from None


def _budget(get: _Getter) -> BudgetConfig | None:
    sub = _section(get, "train_budget", _SECTION_KEYS["train_budget"])
    if sub is None:
        return None
    try:
        baseline = InitialPopulation.parse(sub.value("train_budget_baseline",
                                                     "NEURAL_NET_ALGORITHM", (str, int)))
    except ConfigError as err:
        raise ConfigError(f"train_budget.train_budget_baseline: {err.message}",
                          where=get.source) from None
    return BudgetConfig(baseline, sub.number("train_budget_threshold_factor", 2.0, lo=0.0,
                                               above=True))


class _Getter:
    """Typed access to a TOML table with errors that name the key."""

    def __init__(self, data: dict, source: str, prefix: str = ""):
        self.data, self.source, self.prefix = data, source, prefix

    def fail(self, key: str, what: str) -> ConfigError:
        return ConfigError(f"{self.prefix}{key}: {what}", where=self.source)

    def value(self, key: str, default: Any, types: type | tuple) -> Any:
        if key not in self.data:
            return default
        v = self.data[key]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in (
                types if isinstance(types, tuple) else (types,))):
            names = types.__name__ if isinstance(types, type) else " or ".join(
                t.__name__ for t in types)
            raise self.fail(key, f"expected {names}, got {v!r}")
        return v

    def integer(self, key: str, default: int | None = None, lo: int | None = None,
                hi: int | None = None) -> int:
        if key not in self.data and default is None:
            raise self.fail(key, "missing")
        v = self.value(key, default, (int, float))
        if isinstance(v, float):
            if not v.is_integer():
                raise self.fail(key, f"expected an integer, got {v!r}")
            v = int(v)
        assert isinstance(v, int)
        if lo is not None and v < lo:
            raise self.fail(key, f"must be at least {lo}, got {v}")
        if hi is not None and v > hi:
            raise self.fail(key, f"must be at most {hi}, got {v}")
        return v

    def optional_int(self, key: str) -> int | None:
        return None if key not in self.data else self.integer(key, lo=1)

    def number(self, key: str, default: float, lo: float | None = None,
               hi: float | None = None, above: bool = False) -> float:
        """A number (TOML integer or float; inf allowed, NaN not) in [lo, hi], or above
        lo (exclusive) with `above`."""
        v = self.value(key, default, (int, float))
        x = float(v)
        low = lo is not None and (x <= lo if above else x < lo)
        if math.isnan(x) or low or (hi is not None and x > hi):
            if hi is not None:
                bounds = f"in [{lo}, {hi}]"
            else:
                bounds = f"{'above' if above else 'at least'} {lo}"
            raise self.fail(key, f"must be {bounds}, got {v!r}")
        return x

    def optional_float(self, key: str) -> float | None:
        return None if key not in self.data else self.number(key, 0.0, lo=0.0)

    def flag(self, key: str, default: bool) -> bool:
        v = self.value(key, default, bool)
        assert isinstance(v, bool)
        return v

    def items(self, key: str) -> list:
        v = self.value(key, [], list)
        assert isinstance(v, list)
        return v

    def ops(self, key: str) -> tuple[int, ...]:
        out = []
        for item in self.items(key):
            if isinstance(item, int) and not isinstance(item, bool):
                if not 0 <= item < len(OPS):
                    raise self.fail(key, f"op id {item} is not an op (0..{len(OPS) - 1})")
                out.append(item)
                continue
            try:
                out.append(op_by_name(str(item)).id)
            except KeyError:
                raise self.fail(key, f"unknown op {item!r} (see `azc ops`)") from None
        return tuple(out)
