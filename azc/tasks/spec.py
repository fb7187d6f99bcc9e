"""Task specifications: `TaskSpec`, the seed rules, the TOML form, and building tasks.

A `TaskSpec` is one entry of the original's TaskCollection (docs/semantics.md §5.1): a task
type, sizes, an eval type and seed lists, expanded into `num_tasks` tasks with
the seed rules of docs/semantics.md §5.2. `parse_task_specs` reads the TOML form
(`[[tasks]]` tables); `build_tasks` turns specs into `Task`s, in spec order.

TOML form, one `[[tasks]]` table per spec::

    [[tasks]]
    type = "scalar_linear_regression"      # or: scalar_linear_regression_task = {}
    features_size = 4
    num_train_examples = 100
    num_valid_examples = 100
    num_tasks = 10
    eval_type = "RMS_ERROR"                # optional for types with only one choice
    data_seeds = [1000000]                 # optional; see docs/semantics.md §5.2
    param_seeds = [2000000]

    [[tasks]]
    unit_test_increment_task = { increment = 0.5 }
    features_size = 4
    num_train_examples = 10
    num_valid_examples = 10
    eval_type = "RMS_ERROR"

    [[tasks]]
    dataset = "data.npz"                   # relative to the TOML file; .npz or .csv
    num_train_epochs = 3                   # eval_type optional (inferred from labels)

This module validates specs (raising `ConfigError` naming the key) and leaves
data generation to `generators` and file reading to `datasets`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from azc.errors import ConfigError, DataError
from azc.ir import MAX_FEATURES, MAX_MEMORY_VARIABLE, memory_limit
from azc.tasks import generators as gen
from azc.tasks import projected as proj
from azc.tasks.datasets import Dataset, load_dataset
from azc.tasks.images import NUM_CLASSES, image_dataset_names
from azc.tasks.task import EvalType, Task

TASK_TYPES = (
    "scalar_linear_regression",
    "scalar_2layer_nn_regression",
    "unit_test_zeros",
    "unit_test_ones",
    "unit_test_increment",
    "unit_test_fixed",
    "binary_gaussian_classification",
    "projected_binary_classification",
    "dataset",
)
# Types whose data are generated (and may be written `<type>_task = {...}` in TOML).
GENERATED_TYPES = TASK_TYPES[:-1]
# The only eval type a type allows, which is then its default.
FIXED_EVAL_TYPE = {
    "scalar_linear_regression": EvalType.RMS_ERROR,
    "scalar_2layer_nn_regression": EvalType.RMS_ERROR,
    "binary_gaussian_classification": EvalType.ACCURACY,
    "projected_binary_classification": EvalType.ACCURACY,
}

DEFAULT_PARAM_SEEDS = (1001, 1012, 1010, 1000, 1006, 1008, 1007, 1003)
DEFAULT_DATA_SEEDS = (11001, 11012, 11010, 11000, 11006, 11008, 11007, 11003)
SEED_MODULUS = 2**32
# Salts of the two seed generators of randomize_seeds (docs/semantics.md §5.2).
PARAM_SEED_SALT = 85652777
DATA_SEED_SALT = 38272328


def expand_seeds(seeds: Sequence[int], defaults: Sequence[int], count: int) -> list[int]:
    """The `count` per-task seeds of docs/semantics.md §5.2, each mod 2**32.

    Seed i is `seeds[i]` if i < len(seeds), else seed i-1 plus one; an empty
    `seeds` means `defaults`.
    """
    base = list(seeds) if seeds else list(defaults)
    out: list[int] = []
    for i in range(count):
        out.append(base[i] if i < len(base) else out[-1] + 1)
    return [s % SEED_MODULUS for s in out]


@dataclass(frozen=True)
class TaskSpec:
    """One spec of a task collection: `num_tasks` tasks of one type (docs/semantics.md §5.1).

    Field names are the original's. `features_size`, `num_train_examples` and
    `num_valid_examples` may be None only for datasets (taken from the file) and
    for unit_test_fixed (taken from the lists). `eval_type` may be None for
    types with a single allowed eval type (it is filled in) and for datasets
    (inferred from the labels when the file is read). Invalid specs raise
    `ConfigError` naming the field.
    """

    type: str
    features_size: int | None = None
    num_train_examples: int | None = None
    num_valid_examples: int | None = None
    num_train_epochs: int = 1
    num_tasks: int = 1
    eval_type: EvalType | None = None
    data_seeds: tuple[int, ...] = ()
    param_seeds: tuple[int, ...] = ()
    increment: float = 1.0  # unit_test_increment
    train_features: tuple[tuple[float, ...], ...] = ()  # unit_test_fixed
    train_labels: tuple[float, ...] = ()
    valid_features: tuple[tuple[float, ...], ...] = ()
    valid_labels: tuple[float, ...] = ()
    dataset: Path | None = None  # dataset: a .npz or .csv file
    valid_fraction: float = 0.2  # dataset: the valid share of a CSV without split column
    # projected_binary_classification (docs/semantics.md §5.6)
    dataset_name: str | None = None  # mnist, fashion_mnist or cifar10
    path: Path | None = None  # where the dataset is; None: found by name
    positive_class: int | None = None
    negative_class: int | None = None
    held_out_pairs: tuple[tuple[int, int], ...] = ()
    pairs: tuple[tuple[int, int], ...] = proj.CLASS_PAIRS  # azc's: the pairs drawn from
    min_supported_data_seed: int = proj.DEFAULT_MIN_SEED
    max_supported_data_seed: int = proj.DEFAULT_MAX_SEED

    def __post_init__(self) -> None:
        kind = _normalize_type(self.type)
        set_ = object.__setattr__
        set_(self, "type", kind)
        set_(self, "data_seeds", tuple(self.data_seeds))
        set_(self, "param_seeds", tuple(self.param_seeds))
        if self.eval_type is not None:
            set_(self, "eval_type", _parse_eval_type(self.eval_type))
        if self.dataset is not None:
            set_(self, "dataset", Path(self.dataset))
        for key in ("num_train_epochs", "num_tasks"):
            _require_positive(key, getattr(self, key))
        if kind == "unit_test_fixed":
            self._fill_fixed_sizes()
        if kind == "dataset":
            self._check_dataset()
        if kind == "projected_binary_classification":
            self._check_projected()
        if kind != "dataset":
            for key in ("features_size", "num_train_examples", "num_valid_examples"):
                if getattr(self, key) is None:
                    raise ConfigError(f"{kind}: {key} is required")
        for key in ("features_size", "num_train_examples", "num_valid_examples"):
            if getattr(self, key) is not None:
                _require_positive(key, getattr(self, key))
        self._check_eval_type()
        self._check_size()
        if kind == "scalar_2layer_nn_regression" and (self.features_size or 0) < 3:
            raise ConfigError(f"scalar_2layer_nn_regression needs features_size >= 3 (its "
                              f"teacher zeroes units 0 and 2), got {self.features_size}")
        if not math.isfinite(self.increment):
            raise ConfigError(f"increment must be a finite number, got {self.increment}")

    def _check_size(self) -> None:
        """Refuse specs whose data would not fit in memory, before anything is generated."""
        f, n, nv = self.features_size, self.num_train_examples, self.num_valid_examples
        if f is not None and f > MAX_FEATURES:
            raise ConfigError(f"{self.type}: features_size is at most {MAX_FEATURES}, got {f}")
        if f is None or n is None or nv is None:
            return  # a dataset: its file's size is checked when it is read
        per_task = 8 * ((n + nv) * f + self.num_train_epochs * n)
        need = per_task * self.num_tasks
        if need > memory_limit():
            raise ConfigError(
                f"{self.type}: {self.num_tasks} task(s) of {n} train and {nv} valid examples "
                f"of {f} features over {self.num_train_epochs} epoch(s) need "
                f"{need / (1 << 30):.3g} GiB, more than the limit of "
                f"{memory_limit() / (1 << 30):.3g} GiB; use fewer or smaller tasks, or raise "
                f"the limit with {MAX_MEMORY_VARIABLE} (e.g. {MAX_MEMORY_VARIABLE}=16G)")

    def _check_eval_type(self) -> None:
        """Fill in or check the eval type against the type's allowed one."""
        only = FIXED_EVAL_TYPE.get(self.type)
        if only is not None and self.eval_type is None:
            object.__setattr__(self, "eval_type", only)
        elif only is not None and self.eval_type != only:
            raise ConfigError(f"{self.type} needs eval_type {only.name}, got "
                              f"{EvalType.parse(self.eval_type).name}")
        elif self.eval_type is None and self.type != "dataset":
            raise ConfigError(f"{self.type}: eval_type is required (RMS_ERROR or ACCURACY)")

    def _check_dataset(self) -> None:
        """A dataset spec names its file and a sensible valid fraction."""
        if self.dataset is None:
            raise ConfigError("dataset: the dataset key (a .npz or .csv path) is required")
        if self.dataset.suffix.lower() not in (".npz", ".csv"):
            raise ConfigError(f"dataset must be a .npz or .csv file, got '{self.dataset}'")
        if not 0.0 < self.valid_fraction < 1.0:
            raise ConfigError(f"valid_fraction must be between 0 and 1, got "
                              f"{self.valid_fraction}")

    def _check_projected(self) -> None:
        """A projected spec names a known dataset, both classes or neither, valid pairs."""
        kind = self.type
        names = image_dataset_names()
        if self.dataset_name is None:
            raise ConfigError(f"{kind}: dataset_name is required ({', '.join(names)})")
        if self.dataset_name not in names:
            raise ConfigError(f"{kind}: dataset_name must be one of {', '.join(names)}, got "
                              f"{self.dataset_name!r}")
        if self.path is not None:
            object.__setattr__(self, "path", Path(self.path).expanduser())
        given = (self.positive_class is None, self.negative_class is None)
        if given[0] != given[1]:
            raise ConfigError(f"{kind}: give both positive_class and negative_class, or "
                              f"neither (to draw a pair from the data seed)")
        if self.positive_class is not None:
            _check_pair("positive_class/negative_class",
                        (self.positive_class, self.negative_class), ordered=True)
        for key in ("held_out_pairs", "pairs"):
            pairs = tuple(tuple(p) for p in getattr(self, key))
            for pair in pairs:
                _check_pair(key, pair, ordered=False)
            object.__setattr__(self, key, pairs)
        lo, hi = self.min_supported_data_seed, self.max_supported_data_seed
        for key in ("min_supported_data_seed", "max_supported_data_seed"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{kind}: {key} must be an integer >= 0, got {value!r}")
        if lo >= hi:
            raise ConfigError(f"{kind}: min_supported_data_seed ({lo}) must be less than "
                              f"max_supported_data_seed ({hi})")
        if self.positive_class is None and not self.candidate_pairs():
            raise ConfigError(f"{kind}: no class pair is left once held_out_pairs are "
                              f"removed from pairs")
        limits = (("num_train_examples", proj.FILE_TRAIN), ("num_valid_examples",
                                                            proj.FILE_VALID))
        for key, most in limits:
            value = getattr(self, key)
            if isinstance(value, int) and value > most:
                raise ConfigError(f"{kind}: {key} is at most {most} (the original's "
                                  f"8000/1000/1000 split of 10000 images), got {value}")

    def candidate_pairs(self) -> list[tuple[int, int]]:
        """The pairs a projected task without fixed classes draws from, in order."""
        allowed = {(min(q), max(q)) for q in self.pairs}
        return [p for p in proj.candidate_pairs(self.held_out_pairs) if p in allowed]

    def _fill_fixed_sizes(self) -> None:
        """Convert unit_test_fixed lists to tuples; check and fill F, N and Nv from them."""
        rows = {}
        for split in ("train", "valid"):
            feats = tuple(tuple(_number(f"{split}_features", v) for v in row) for row in
                          getattr(self, f"{split}_features"))
            labels = tuple(_number(f"{split}_labels", _scalar_label(f"{split}_labels", v))
                           for v in getattr(self, f"{split}_labels"))
            object.__setattr__(self, f"{split}_features", feats)
            object.__setattr__(self, f"{split}_labels", labels)
            if not feats:
                raise ConfigError(f"unit_test_fixed: {split}_features must list at least one "
                                  f"feature vector")
            if len(labels) != len(feats):
                raise ConfigError(f"unit_test_fixed: {len(feats)} {split}_features but "
                                  f"{len(labels)} {split}_labels")
            rows[split] = feats
        sizes = {len(row) for feats in rows.values() for row in feats}
        if len(sizes) != 1:
            raise ConfigError(f"unit_test_fixed: all feature vectors must have the same length, "
                              f"got lengths {sorted(sizes)}")
        derived = {"features_size": sizes.pop(), "num_train_examples": len(rows["train"]),
                   "num_valid_examples": len(rows["valid"])}
        for key, value in derived.items():
            given = getattr(self, key)
            if given is not None and given != value:
                raise ConfigError(f"unit_test_fixed: {key} is {given} but the lists give "
                                  f"{value}")
            object.__setattr__(self, key, value)

    def param_seed_list(self) -> list[int]:
        """The param seed of each of the `num_tasks` tasks (docs/semantics.md §5.2)."""
        return expand_seeds(self.param_seeds, DEFAULT_PARAM_SEEDS, self.num_tasks)

    def data_seed_list(self) -> list[int]:
        """The data seed of each of the `num_tasks` tasks (docs/semantics.md §5.2)."""
        return expand_seeds(self.data_seeds, DEFAULT_DATA_SEEDS, self.num_tasks)


def _normalize_type(value: object) -> str:
    """A task type name without a `_task` suffix, checked."""
    if not isinstance(value, str):
        raise ConfigError(f"type must be a string, got {value!r}")
    name = value.strip()
    name = name.removesuffix("_task")
    if name not in TASK_TYPES:
        raise ConfigError(f"unknown task type {value!r}; valid types: {', '.join(TASK_TYPES)}")
    return name


def _parse_eval_type(value: object) -> EvalType:
    """An EvalType, or a ConfigError naming the eval_type key."""
    try:
        return EvalType.parse(value)
    except DataError:
        raise ConfigError(f"eval_type must be RMS_ERROR or ACCURACY, got {value!r}") from None


def _check_pair(key: str, pair: tuple, ordered: bool) -> None:
    """Raise unless `pair` is two different class ids (the first smaller if `ordered`)."""
    ok = (len(pair) == 2 and all(isinstance(c, int) and not isinstance(c, bool)
                                 and 0 <= c < NUM_CLASSES for c in pair) and pair[0] != pair[1])
    if not ok:
        raise ConfigError(f"{key}: a class pair is two different class ids 0..{NUM_CLASSES - 1}"
                          f", got {list(pair)}")
    if ordered and pair[0] > pair[1]:
        raise ConfigError(f"{key}: the positive class (label 1) is the smaller class id, got "
                          f"{pair[0]} and {pair[1]}; swap them")


def _require_positive(key: str, value: object) -> None:
    """Raise unless `value` is an int > 0."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if value < 1:
        raise ConfigError(f"{key} must be at least 1, got {value}")


def _scalar_label(key: str, value: object) -> object:
    """A label given as a number or a one-element list (the original's style), unwrapped."""
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise ConfigError(f"{key}: each label must be a number or a 1-element list, "
                              f"got {value!r}")
        return value[0]
    return value


def randomize_seeds(specs: Sequence[TaskSpec], master_seed: int) -> list[TaskSpec]:
    """The specs with fresh task seeds drawn from `master_seed` (`--randomize_task_seeds`).

    Two generators, seeded from mixes of (85652777, master) and (38272328,
    master), give the param and data seeds: for each spec in order, `num_tasks`
    param seeds, then `num_tasks` data seeds, each uniform in (1, 2**32 - 1);
    the streams continue across specs. Dataset specs are left unchanged.
    """
    param_rng = gen.seeded_rng(gen.hash_mix(PARAM_SEED_SALT, master_seed))
    data_rng = gen.seeded_rng(gen.hash_mix(DATA_SEED_SALT, master_seed))
    out = []
    for spec in specs:
        if spec.type == "dataset":
            out.append(spec)
            continue
        params = param_rng.integers(2, SEED_MODULUS - 1, size=spec.num_tasks)
        datas = data_rng.integers(2, SEED_MODULUS - 1, size=spec.num_tasks)
        out.append(replace(spec, param_seeds=tuple(int(s) for s in params),
                           data_seeds=tuple(int(s) for s in datas)))
    return out


def with_image_data(specs: Sequence[TaskSpec], dataset: str | None = None,
                    paths: dict[str, str | Path] | None = None) -> list[TaskSpec]:
    """The specs with their projected image tasks moved to another dataset or path.

    `dataset` replaces the dataset_name of every projected spec; `paths` maps
    a dataset name to where it is, for the projected specs that read it (after
    the replacement). Other specs are unchanged. Unknown names raise ConfigError.
    """
    names = image_dataset_names()
    for name in [dataset, *(paths or {})]:
        if name is not None and name not in names:
            raise ConfigError(f"unknown image dataset '{name}' (known: {', '.join(names)})")
    out = []
    for spec in specs:
        if spec.type == "projected_binary_classification":
            name = dataset or spec.dataset_name
            where = (paths or {}).get(name or "")
            spec = replace(spec, dataset_name=name,
                           path=Path(where).expanduser() if where is not None else spec.path)
        out.append(spec)
    return out


def image_datasets_read(specs: Sequence[TaskSpec]) -> set[str]:
    """The names of the image datasets the projected specs among `specs` read."""
    return {s.dataset_name for s in specs
            if s.type == "projected_binary_classification" and s.dataset_name}


def check_image_override(specs: Sequence[TaskSpec], dataset: str | None,
                         data_paths: dict[str, str | Path] | None, where: str,
                         fixed: Sequence[TaskSpec] = ()) -> None:
    """ConfigError unless `--dataset`/`--data` apply to some projected spec of `specs`
    (`--dataset` moves those; the specs of `fixed` keep their dataset)."""
    read = image_datasets_read([*specs, *fixed])
    if not read:
        raise ConfigError(f"{where} has no projected image tasks, so --dataset/--data do not "
                          f"apply (built-in image task sets: {', '.join(image_dataset_names())})")
    used = ({dataset} | image_datasets_read(fixed)) if dataset is not None else read
    unused = sorted(set(data_paths or {}) - used)
    if unused:
        raise ConfigError(f"--data {unused[0]}=...: {where} reads no {unused[0]} images (it "
                          f"reads {', '.join(sorted(used))})")


# ---------------------------------------------------------------- building tasks

def spec_dataset(spec: TaskSpec) -> Dataset:
    """Load and check the file of a dataset spec, with the spec's sizes and eval type."""
    assert spec.dataset is not None
    return load_dataset(spec.dataset, features_size=spec.features_size,
                        num_train_examples=spec.num_train_examples,
                        num_valid_examples=spec.num_valid_examples,
                        num_train_epochs=spec.num_train_epochs, eval_type=spec.eval_type,
                        valid_fraction=spec.valid_fraction)


def resolve_dataset(spec: TaskSpec) -> TaskSpec:
    """A dataset spec with F, N, Nv and the eval type filled in from its file."""
    if spec.type != "dataset":
        return spec
    data = spec_dataset(spec)
    return replace(spec, features_size=data.features_size,
                   num_train_examples=int(data.train_x.shape[0]),
                   num_valid_examples=int(data.valid_x.shape[0]), eval_type=data.eval_type)


def generate_data(spec: TaskSpec, data_seed: int, param_seed: int) -> gen.TaskData:
    """The examples of one generated task of `spec` with the given seeds."""
    f, n, nv = spec.features_size, spec.num_train_examples, spec.num_valid_examples
    assert f is not None and n is not None and nv is not None
    match spec.type:
        case "scalar_linear_regression":
            return gen.scalar_linear_regression(f, n, nv, data_seed, param_seed)
        case "scalar_2layer_nn_regression":
            return gen.scalar_2layer_nn_regression(f, n, nv, data_seed, param_seed)
        case "unit_test_zeros":
            return gen.unit_test_zeros(f, n, nv)
        case "unit_test_ones":
            return gen.unit_test_ones(f, n, nv)
        case "unit_test_increment":
            return gen.unit_test_increment(f, n, nv, spec.increment)
        case "unit_test_fixed":
            return gen.unit_test_fixed(spec.train_features, spec.train_labels,
                                       spec.valid_features, spec.valid_labels)
        case "binary_gaussian_classification":
            return gen.binary_gaussian_classification(f, n, nv, data_seed, param_seed)
        case "projected_binary_classification":
            assert spec.dataset_name is not None
            pos, neg, seed = proj.choose_pair(
                data_seed, spec.positive_class, spec.negative_class,
                spec.candidate_pairs(), spec.min_supported_data_seed,
                spec.max_supported_data_seed)
            return proj.projected_binary_classification(spec.dataset_name, spec.path, pos, neg,
                                                        seed, f, n, nv)
    raise ConfigError(f"task type {spec.type!r} has no generator")


def task_name(spec: TaskSpec, features_size: int, data_seed: int, param_seed: int,
              meta: dict | None = None) -> str:
    """A readable name, e.g. `scalar_linear_regression[F=4, param_seed=1001, data_seed=11001]`;
    a projected task's pair and seed are read from its generator's `meta`."""
    if spec.type == "dataset":
        assert spec.dataset is not None
        return f"dataset[{spec.dataset.name}, F={features_size}, data_seed={data_seed}]"
    if spec.type == "projected_binary_classification":
        assert meta is not None
        return (f"{spec.type}[{spec.dataset_name}, pos={meta['positive_class']}, "
                f"neg={meta['negative_class']}, F={features_size}, "
                f"seed={meta['projection_seed']}, data_seed={data_seed}]")
    return f"{spec.type}[F={features_size}, param_seed={param_seed}, data_seed={data_seed}]"


def build_tasks(specs: Sequence[TaskSpec], start_index: int = 0) -> list[Task]:
    """The tasks of `specs`: the num_tasks tasks of the first spec, then the next, ...

    Task i of the result has `index` start_index + i. Each task's training
    order is the file's `train_order` for a dataset that has one, else the
    per-epoch shuffles of docs/semantics.md §5.7 from its data seed.
    """
    tasks: list[Task] = []
    for spec in specs:
        data = spec_dataset(spec) if spec.type == "dataset" else None
        seeds = zip(spec.data_seed_list(), spec.param_seed_list(), strict=True)
        for data_seed, param_seed in seeds:
            if data is not None:
                made = gen.TaskData(data.train_x, data.train_y, data.valid_x, data.valid_y,
                                    {"source": data.source})
                eval_type, order = data.eval_type, data.train_order
            else:
                assert spec.eval_type is not None  # filled in or required by TaskSpec
                made = generate_data(spec, data_seed, param_seed)
                eval_type, order = spec.eval_type, None
            n = int(made.train_x.shape[0])
            if order is None:
                order = gen.train_order(n, spec.num_train_epochs, data_seed)
            f = int(made.train_x.shape[1])
            meta = {"type": spec.type, **made.meta}
            tasks.append(Task(made.train_x, made.train_y, made.valid_x, made.valid_y,
                              eval_type, spec.num_train_epochs, order,
                              start_index + len(tasks),
                              task_name(spec, f, data_seed, param_seed, made.meta), data_seed,
                              param_seed, meta))
    return tasks


# ---------------------------------------------------------------- the TOML form

_COMMON_KEYS = ("type", "features_size", "num_train_examples", "num_valid_examples",
                "num_train_epochs", "num_tasks", "eval_type", "data_seeds", "param_seeds")
_TYPE_KEYS = {
    "unit_test_increment": ("increment",),
    "unit_test_fixed": ("train_features", "train_labels", "valid_features", "valid_labels"),
    "dataset": ("dataset", "valid_fraction"),
    "projected_binary_classification": (
        "dataset_name", "path", "positive_class", "negative_class", "held_out_pairs", "pairs",
        "min_supported_data_seed", "max_supported_data_seed"),
}
_INT_KEYS = ("features_size", "num_train_examples", "num_valid_examples", "num_train_epochs",
             "num_tasks", "positive_class", "negative_class", "min_supported_data_seed",
             "max_supported_data_seed")
# Named pair lists a projected spec may give instead of a list of pairs.
NAMED_PAIRS = {"recommended": proj.HELD_OUT_PAIRS, "all": proj.CLASS_PAIRS}


def parse_task_specs(data: dict, source: str, base_dir: Path) -> list[TaskSpec]:
    """The specs of a parsed TOML document holding a `[[tasks]]` array of tables.

    `source` names the file in errors; dataset paths are relative to `base_dir`.
    Dataset specs are resolved (their file is read and checked). Raises
    `ConfigError` naming the key, the table number and the file.
    """
    unknown = [key for key in data if key != "tasks"]
    if unknown:
        raise ConfigError(f"unknown top-level key '{unknown[0]}'; a task file holds only "
                          f"[[tasks]] tables", where=source)
    if "tasks" not in data:
        raise ConfigError("no [[tasks]] tables found", where=source)
    return parse_task_list(data["tasks"], source, base_dir)


def parse_task_list(entries: object, source: str, base_dir: Path,
                    key: str = "tasks") -> list[TaskSpec]:
    """The specs of an array of tables (`[[<key>]]`), e.g. the value of `tasks`."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"'{key}' must be an array of tables ([[{key}]])", where=source)
    if not entries:
        raise ConfigError(f"'{key}' holds no tables", where=source)
    specs = []
    for number, table in enumerate(entries, start=1):
        try:
            spec = _parse_table(table, base_dir)
        except ConfigError as exc:
            raise ConfigError(f"[[{key}]] table {number}: {exc.message}", where=source) from None
        specs.append(resolve_dataset(spec))
    return specs


def _table_type(table: dict) -> tuple[str, str | None]:
    """The task type a table names, and its `<type>_task` key if it uses one."""
    named: dict[str, str] = {}
    sub_key = None
    if "type" in table:
        named["type"] = _normalize_type(table["type"])
    for key in table:
        # `<type>_task = {...}` names the type; a non-table value (say `num_task = 3`, a
        # typo of num_tasks) is left to the unknown-key check
        if key.endswith("_task") and isinstance(table[key], dict):
            kind = _normalize_type(key)
            if kind == "dataset":
                raise ConfigError("dataset_task is not a key; write dataset = \"file.npz\"")
            if sub_key is not None:
                raise ConfigError(f"two task types given: {sub_key} and {key}")
            sub_key = key
            named[key] = kind
    if "dataset" in table:
        named["dataset"] = "dataset"
    kinds = set(named.values())
    if len(kinds) > 1:
        given = ", ".join(f"{k} ({v})" for k, v in named.items())
        raise ConfigError(f"the table names more than one task type: {given}")
    if not kinds:
        raise ConfigError(f"no task type; give type = \"<type>\", a <type>_task = {{}} key "
                          f"or dataset = \"<file>\" (types: {', '.join(TASK_TYPES)})")
    return kinds.pop(), sub_key


def _unknown_key(key: str, valid: Sequence[str], where: str) -> ConfigError:
    """An error for a key that is not valid here, listing the valid keys."""
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"unknown key '{key}'{where}{hint}; valid keys: {', '.join(valid)}")


def _parse_table(table: dict, base_dir: Path) -> TaskSpec:
    """One `[[tasks]]` table as a TaskSpec."""
    kind, sub_key = _table_type(table)
    specific = _TYPE_KEYS.get(kind, ())
    valid = (*_COMMON_KEYS, *specific)
    fields: dict[str, Any] = {}
    for key, value in table.items():
        if key == sub_key:
            continue
        if key not in valid:
            raise _unknown_key(key, valid, f" for {kind}")
        fields[key] = value
    if sub_key is not None:
        sub = table[sub_key]
        if not isinstance(sub, dict):
            raise ConfigError(f"{sub_key} must be a table (e.g. {sub_key} = {{}}), "
                              f"got {sub!r}")
        for key, value in sub.items():
            if not specific:
                raise ConfigError(f"unknown key '{key}' in {sub_key}; it takes no keys")
            if key not in specific:
                raise _unknown_key(key, specific, f" in {sub_key}")
            if key in fields:
                raise ConfigError(f"{key} is given twice (in the table and in {sub_key})")
            fields[key] = value
    fields.pop("type", None)
    kwargs: dict[str, Any] = {"type": kind}
    for key, value in fields.items():
        kwargs[key] = _convert(key, value, base_dir)
    return TaskSpec(**kwargs)


def _convert(key: str, value: object, base_dir: Path) -> object:
    """A TOML value checked and converted for TaskSpec field `key`."""
    if key in _INT_KEYS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if key in ("data_seeds", "param_seeds"):
        items = value if isinstance(value, list) else [value]
        if any(isinstance(s, bool) or not isinstance(s, int) for s in items):
            raise ConfigError(f"{key} must be an integer or a list of integers, got {value!r}")
        return tuple(items)
    if key == "eval_type":
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConfigError(f"eval_type must be \"RMS_ERROR\" or \"ACCURACY\", got {value!r}")
        return _parse_eval_type(value)
    if key in ("increment", "valid_fraction"):
        return _number(key, value)
    if key in ("train_features", "valid_features"):
        if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
            raise ConfigError(f"{key} must be a list of feature vectors (lists of numbers), "
                              f"got {value!r}")
        return tuple(tuple(_number(key, v) for v in row) for row in value)
    if key in ("train_labels", "valid_labels"):
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list of numbers, got {value!r}")
        return tuple(_number(key, _scalar_label(key, v)) for v in value)
    if key in ("held_out_pairs", "pairs"):
        if isinstance(value, str):
            if value not in NAMED_PAIRS:
                raise ConfigError(f"{key} must be a list of [positive, negative] pairs or one "
                                  f"of {', '.join(map(repr, NAMED_PAIRS))}, got {value!r}")
            return NAMED_PAIRS[value]
        if not isinstance(value, list) or not all(isinstance(p, list) for p in value):
            raise ConfigError(f"{key} must be a list of [positive, negative] pairs, e.g. "
                              f"[[4, 6], [3, 5]], or \"recommended\", got {value!r}")
        return tuple(tuple(p) for p in value)
    if key == "dataset_name":
        if not isinstance(value, str):
            raise ConfigError(f"dataset_name must be a string, got {value!r}")
        return value
    if key == "path":
        if not isinstance(value, str) or not value:
            raise ConfigError(f"path must be a file or directory path (a string), got "
                              f"{value!r}")
        return base_dir / Path(value).expanduser()
    if key == "dataset":
        if not isinstance(value, str) or not value:
            raise ConfigError(f"dataset must be a file path (a string), got {value!r}")
        return base_dir / value
    raise ConfigError(f"unknown key '{key}'")


def _number(key: str, value: object) -> float:
    """A TOML number as a float, or a ConfigError naming the key."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    return float(value)
