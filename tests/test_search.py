"""The search: generator and mutator (eventually / never), FEC, evaluator, evolution, driver."""

from __future__ import annotations

import math
import os
import signal
from collections import Counter

import numpy as np
import pytest

from azc.errors import ConfigError
from azc.interp import evaluate_task
from azc.ir import Component, Instr, MemoryConfig, Program, verify
from azc.ops import OPS, Kind
from azc.passes import dce
from azc.search.config import load_config, parse_config, shipped_configs
from azc.search.evaluator import SearchEvaluator
from azc.search.fec import FecCache, FecConfig
from azc.search.generator import (
    Generator,
    InitialPopulation,
    linear_algorithm,
    neural_net_algorithm,
)
from azc.search.mutator import MutationType, Mutator
from azc.search.random import SearchRandom
from azc.search.space import SearchSpace
from azc.tasks import load_tasks

ALL = tuple(op.id for op in OPS if op.out is not None)
DEMO = (56, 27, 2, 3, 18, 23)
MEM = MemoryConfig(5, 4, 3)


def space(ops=ALL, init=(6, 3, 5), smin=(0, 0, 0), smax=(1 << 30,) * 3, mem=MEM, F=4):
    return SearchSpace(mem, F, (ops, ops, ops), init, smin, smax)


def mutator(sp, types, prob=1.0, constants="code"):
    return Mutator(sp, [MutationType.parse(t) for t in types], prob, constants)


def eventually(draw, predicate, tries: int = 20000) -> bool:
    """Whether `predicate(draw())` becomes true within `tries` draws."""
    return any(predicate(draw()) for _ in range(tries))


def never(draw, predicate, tries: int = 3000) -> bool:
    """Whether `predicate(draw())` stays false for `tries` draws."""
    return not any(predicate(draw()) for _ in range(tries))


# --- random instructions and the generator ----------------------------------------------

def test_every_allowed_op_eventually_appears_and_no_other_ever() -> None:
    sp = space(ops=DEMO, mem=MemoryConfig(4, 3, 1))
    gen = Generator(sp, InitialPopulation.RANDOM_ALGORITHM)
    rnd = SearchRandom(1)
    seen: Counter = Counter()
    for _ in range(300):
        prog = gen.program(rnd)
        seen.update(ins.op for _, _, ins in prog.instructions())
    assert set(seen) == set(DEMO)


def test_outputs_never_write_s0_or_v0_and_stay_in_range() -> None:
    sp = space()
    rnd = SearchRandom(2)

    def draw() -> Instr:
        return sp.random_instr(OPS[rnd.choice(ALL)], rnd)

    def bad(ins: Instr) -> bool:
        out = ins.output()
        assert out is not None
        kind, addr = out
        if kind is not Kind.MATRIX and addr == 0:
            return True
        return any(not 0 <= a < MEM.size(k) for k, a in [*ins.inputs(), out])
    assert never(draw, bad, 20000)
    # ... while every output and input address (and m0) does eventually come up
    assert eventually(draw, lambda i: i.output() == (Kind.MATRIX, 0))
    assert eventually(draw, lambda i: (Kind.SCALAR, 0) in i.inputs())
    assert eventually(draw, lambda i: (Kind.VECTOR, 0) in i.inputs())
    assert eventually(draw, lambda i: i.output() == (Kind.SCALAR, MEM.scalars - 1))


def test_random_constants_follow_the_spec() -> None:
    sp = space()
    rnd = SearchRandom(3)
    for op, check in [
        (56, lambda i: -1 < i.c0 < 1),
        (57, lambda i: 0 <= i.c0 < 4 and -1 <= i.c1 < 1),
        (58, lambda i: 0 <= i.c0 < 4 and 0 <= i.c1 < 4 and -1 <= i.c2 < 1),
        (62, lambda i: -1 <= i.c0 < 1 and 0 <= i.c1 < 1),
    ]:
        assert all(check(sp.random_instr(OPS[op], rnd)) for _ in range(2000))
    # uniform bounds are drawn independently: about half are not sorted
    unsorted = sum(i.c0 >= i.c1 for i in (sp.random_instr(OPS[60], rnd) for _ in range(4000)))
    assert 1700 < unsorted < 2300
    # every index is drawn eventually
    assert {int(sp.random_instr(OPS[57], rnd).c0) for _ in range(500)} == {0, 1, 2, 3}


def test_hand_made_algorithms_match_the_examples() -> None:
    from azc.frontend import parse
    nn = parse("def Setup():\n  v2 = gaussian(0.0, 0.1)\n  m0 = gaussian(0.0, 0.1)\n"
               "  s3 = 0.01\ndef Predict():\n  v3 = dot(m0, v0)\n  v3 = v3 + v1\n"
               "  v4 = maximum(v3, v5)\n  s1 = dot(v4, v2)\n  s1 = s1 + s2\ndef Learn():\n"
               "  s4 = s0 - s1\n  s4 = s3 * s4\n  s2 = s2 + s4\n  v6 = s4 * v4\n"
               "  v2 = v2 + v6\n  v7 = s4 * v2\n  v8 = heaviside(v3)\n  v7 = v8 * v7\n"
               "  v1 = v1 + v7\n  m1 = outer(v7, v0)\n  m0 = m0 + m1\n")
    assert neural_net_algorithm() == nn
    lin = linear_algorithm()
    assert lin.predict == (Instr.make(27, 1, 1, 0),)
    gen = Generator(space(init=(4, 7, 12), mem=MemoryConfig(5, 9, 2)),
                    InitialPopulation.INTEGRATION_TEST_DAMAGED_NEURAL_NET_ALGORITHM)
    damaged = gen.program(SearchRandom(0))
    assert damaged.sizes() == (4, 7, 12)  # padded with no-ops to the init sizes
    assert damaged.setup[0] == nn.setup[2] and damaged.setup[1:] == (Instr(0),) * 3


def test_random_init_with_empty_op_list_is_an_error() -> None:
    sp = SearchSpace(MEM, 4, ((), DEMO, DEMO), (2, 1, 1))
    with pytest.raises(ConfigError, match="setup_size_init"):
        Generator(sp, InitialPopulation.RANDOM_ALGORITHM)


# --- the mutator --------------------------------------------------------------------------

def _children(types, parent, n=3000, prob=1.0, sp=None, seed=5):
    sp = sp or space()
    m = mutator(sp, types, prob)
    rnd = SearchRandom(seed)
    return [m.mutate(parent, rnd) for _ in range(n)]


def _random_parent(sp=None, seed=9) -> Program:
    sp = sp or space()
    return Generator(sp, InitialPopulation.RANDOM_ALGORITHM).program(SearchRandom(seed))


def test_mutate_prob_leaves_about_10_percent_unchanged() -> None:
    parent = _random_parent()
    kids = _children(["RANDOMIZE_COMPONENT_FUNCTION"], parent, n=5000, prob=0.9)
    same = sum(k is parent for k in kids)
    assert 380 < same < 620


def test_alter_param_changes_exactly_one_field() -> None:
    parent = _random_parent()
    for kid in _children(["ALTER_PARAM"], parent):
        diffs = [(c, i) for c in Component for i, (a, b) in enumerate(zip(parent[c], kid[c]))
                 if a != b]
        assert len(diffs) <= 1
        if diffs:
            c, i = diffs[0]
            a, b = parent[c][i], kid[c][i]
            assert a.op == b.op
            changed = [x != y for x, y in zip(a.fields(), b.fields())]
            assert sum(changed[1:4]) + (a.consts != b.consts) >= 1
            assert sum(changed[1:4]) <= 1
            if a.op in (59, 60, 61) and a.consts != b.consts:
                assert b.c0 <= b.c1  # bounds sorted after any data alteration


def test_randomize_component_keeps_lengths_and_only_one_component() -> None:
    parent = _random_parent()
    for kid in _children(["RANDOMIZE_COMPONENT_FUNCTION"], parent, n=500):
        assert kid.sizes() == parent.sizes()
        assert sum(kid[c] != parent[c] for c in Component) <= 1


def test_insert_never_reaches_max_and_remove_never_goes_below_min() -> None:
    sp = space(init=(3, 3, 3), smin=(2, 1, 2), smax=(6, 4, 5))
    m = mutator(sp, ["INSERT_INSTRUCTION", "REMOVE_INSTRUCTION"])
    rnd = SearchRandom(11)
    prog = _random_parent(sp)
    sizes = set()
    for _ in range(4000):
        prog = m.mutate(prog, rnd)
        sizes.add(prog.sizes())
        for c in Component:
            assert sp.size_min[c] <= len(prog[c]) <= sp.size_max[c] - 1
    # every reachable size eventually appears: insertion stops at max - 1
    assert {s[0] for s in sizes} == {2, 3, 4, 5}
    assert {s[1] for s in sizes} == {1, 2, 3}


def test_trade_keeps_lengths() -> None:
    parent = _random_parent()
    kids = _children(["TRADE_INSTRUCTION"], parent, n=500)
    assert all(k.sizes() == parent.sizes() for k in kids)
    assert any(k != parent for k in kids)


def test_mutation_types_are_weighted_by_duplicates() -> None:
    sp = space(init=(4, 4, 4))
    parent = _random_parent(sp)
    kids = _children(["IDENTITY", "IDENTITY", "IDENTITY", "RANDOMIZE_ALGORITHM"], parent,
                     n=4000, sp=sp)
    changed = sum(k != parent for k in kids)
    assert 800 < changed < 1200


def test_components_without_ops_are_never_mutated() -> None:
    sp = SearchSpace(MemoryConfig(5, 9, 2), 4, ((63, 64), (), ()), (2, 1, 4), (0, 0, 0),
                     (10, 10, 10))
    parent = Generator(sp, InitialPopulation.NEURAL_NET_ALGORITHM).program(SearchRandom(0))
    kids = _children(["ALTER_PARAM", "INSERT_INSTRUCTION", "REMOVE_INSTRUCTION",
                      "TRADE_INSTRUCTION", "RANDOMIZE_ALGORITHM"], parent, n=2000, sp=sp)
    assert all(k.predict == parent.predict and k.learn == parent.learn for k in kids)
    ops = {0, 63, 64} | {i.op for i in parent.setup}  # new ops come from the list only
    assert never(iter(kids).__next__, lambda k: any(i.op not in ops for i in k.setup), len(kids))


def test_paper_constant_mutation_scales_by_half_to_two() -> None:
    sp = space(ops=(56,))
    m = Mutator(sp, [MutationType.ALTER_PARAM], 1.0, "paper")
    rnd = SearchRandom(4)
    ins = Instr.make(56, 1, consts=[0.5])
    ratios = [m.alter_data(ins, rnd).c0 / 0.5 for _ in range(3000)]
    flips = sum(r < 0 for r in ratios)
    assert 200 < flips < 400
    assert all(0.5 <= abs(r) <= 2.0 for r in ratios)


def test_code_constant_mutation_is_log_normal_and_zero_stays_zero() -> None:
    m = Mutator(space(ops=(56,)), [MutationType.ALTER_PARAM], 1.0)
    rnd = SearchRandom(4)
    ins = Instr.make(56, 1, consts=[1.0])
    logs = [math.log(abs(m.alter_data(ins, rnd).c0)) for _ in range(4000)]
    assert abs(np.mean(logs)) < 0.1 and 0.85 < np.std(logs) < 1.15
    zero = m.alter_data(Instr.make(56, 1, consts=[0.0]), rnd).c0
    assert zero == 0.0


# --- FEC ------------------------------------------------------------------------------------

def test_fec_cache_forgets_after_forget_every_uses_and_evicts_lru() -> None:
    cache = FecCache(FecConfig(cache_size=2, forget_every=3))
    cache.insert(1, 0.5)
    assert cache.lookup(1) == 0.5 and cache.lookup(1) == 0.5  # uses 2 and 3: forgotten now
    assert cache.lookup(1) is None
    cache.insert(1, 0.1)
    cache.insert(2, 0.2)
    cache.lookup(1)          # 1 is now the most recent
    cache.insert(3, 0.3)     # evicts 2
    assert cache.lookup(2) is None and cache.lookup(1) == 0.1


DEMO_MEM = MemoryConfig(4, 3, 1)
DEFAULT_FEC = FecConfig()


def _evaluator(fec=DEFAULT_FEC, tasks=None, mem=DEMO_MEM):
    return SearchEvaluator(tasks or load_tasks("demo_search")[:4], mem, fec=fec)


def test_fec_hits_for_programs_equal_up_to_dead_code() -> None:
    from azc.frontend import parse
    ev = _evaluator()
    a = parse("def Setup():\n  s2 = 0.1\ndef Predict():\n  s1 = dot(v0, v1)\n"
              "def Learn():\n  s3 = s0 - s1\n  s3 = s3 * s2\n  v2 = s3 * v0\n  v1 = v1 + v2\n")
    b = a.replace(Component.LEARN, (Instr.make(56, 3, consts=[0.7]), *a.learn))  # dead write
    fa = ev.evaluate([a], np.array([1], dtype=np.uint64))
    hits = ev.counters.memo_hits
    fb = ev.evaluate([b], np.array([2], dtype=np.uint64))
    assert fa[0] == fb[0] > 0.9
    assert ev.counters.memo_hits == hits + 1  # same live code: settled without a run


def test_evaluator_without_fec_equals_the_reference() -> None:
    tasks = load_tasks("demo_search")[:3]
    mem = MemoryConfig(4, 3, 1)
    ev = _evaluator(fec=None, tasks=tasks)
    sp = space(ops=DEMO, mem=mem, init=(10, 2, 8))
    gen = Generator(sp, InitialPopulation.RANDOM_ALGORITHM)
    rnd = SearchRandom(8)
    progs = [gen.program(rnd) for _ in range(30)]
    got = ev.evaluate_tasks(progs, np.arange(30, dtype=np.uint64))
    for i, p in enumerate(progs):
        ref = [evaluate_task(p, t, mem, seed=i).fitness for t in tasks]
        assert got[i].tolist() == ref


def test_fec_fitness_is_a_true_fitness_of_an_equivalent_program() -> None:
    tasks = load_tasks("demo_search")[:3]
    mem = MemoryConfig(4, 3, 1)
    ev = _evaluator(tasks=tasks)
    sp = space(ops=DEMO, mem=mem, init=(10, 2, 8))
    m = mutator(sp, ["ALTER_PARAM"], 1.0)
    rnd = SearchRandom(3)
    parent = Generator(sp, InitialPopulation.RANDOM_ALGORITHM).program(rnd)
    kids = [m.mutate(parent, rnd) for _ in range(200)]
    got = ev.evaluate_tasks(kids, np.zeros(200, dtype=np.uint64))
    truth = {}
    for i, k in enumerate(kids):
        ref = [evaluate_task(k, t, mem).fitness for t in tasks]
        truth.setdefault(tuple(got[i].tolist()), []).append(ref == got[i].tolist())
    assert ev.counters.fec_hits > 0
    assert all(any(v) for v in truth.values())  # every cached value is someone's true fitness


# --- configs, evolution, driver --------------------------------------------------------------

def test_shipped_configs_load() -> None:
    assert {"demo", "linear", "nonlinear"} <= set(shipped_configs())
    demo = load_config("demo")
    assert demo.population_size == 1000 and demo.fec is not None
    assert demo.ops[0] == DEMO and demo.size_init == (10, 2, 8)


@pytest.mark.parametrize("edit,fragment", [
    ({"populaton_size": 5}, "unknown key 'populaton_size'"),
    ({"population_size": "big"}, "population_size: expected"),
    ({"setup_ops": ["SCALAR_POWER_OP"]}, "unknown op"),
    ({"allowed_mutation_types": ["SWAP"]}, "unknown mutation type"),
    ({"mutate_prob": 1.5}, "mutate_prob"),
    ({"fec": {"num_train": 3}}, "unknown key 'fec.num_train'"),
    ({"tournament_size": 5000}, "tournament_size"),
    ({"initial_population": "SOMETHING"}, "unknown initial_population"),
])
def test_config_errors_name_the_key(edit, fragment) -> None:
    import tomllib

    from azc.resources import config_dir
    data = tomllib.loads((config_dir() / "demo.toml").read_text())
    data.update(edit)
    with pytest.raises(ConfigError) as info:
        parse_config(data, "x.toml")
    assert fragment in str(info.value) and "x.toml" in str(info.value)


_TASK = {"type": "scalar_linear_regression", "features_size": 4, "num_tasks": 1,
         "num_train_examples": 10, "num_valid_examples": 10}


@pytest.mark.parametrize("edit,fragment", [
    ({"initial_population": 9}, "initial_population: initial_population id 9 is not one of"),
    ({"allowed_mutation_types": [99]}, "allowed_mutation_types: mutation type id 99"),
    ({"allowed_mutation_types": [True]}, "allowed_mutation_types: expected a mutation type"),
    ({"mutate_prob": "0.5"}, "mutate_prob: expected int or float, got '0.5'"),
    ({"max_abs_error": float("nan")}, "max_abs_error: must be at least"),
    ({"mutate_prob": 1.5}, "mutate_prob: must be in [0.0, 1.0], got 1.5"),
    ({"train_budget": {"train_budget_threshold_factor": 0}},
     "train_budget.train_budget_threshold_factor: must be above 0.0"),
    ({"train_budget": {"train_budget_baseline": 9}},
     "train_budget.train_budget_baseline: initial_population id 9"),
    ({"fec": {"num_valid_examples": 101}}, "fec.num_valid_examples: must be at most 100"),
    ({"search_tasks": [dict(_TASK, num_task=3)]}, "unknown key 'num_task'"),
    ({"select_tasks": [dict(_TASK, features_size=2)]},
     "select_tasks have features_size 2, but the search tasks have 4"),
    ({"final_tasks": [dict(_TASK, features_size=8)]},
     "final_tasks have features_size 8, but the search tasks have 4"),
    ({"scalars": 1}, "scalars/vectors/matrices: the memory needs at least 2 scalars"),
])
def test_config_values_are_checked_when_read(edit, fragment) -> None:
    data = {"population_size": 10, "tournament_size": 2,
            "allowed_mutation_types": ["ALTER_PARAM"], "search_tasks": [_TASK], **edit}
    with pytest.raises(ConfigError) as info:
        parse_config(data, "x.toml")
    text = str(info.value)
    assert fragment in text and text.startswith("x.toml: error: ")
    assert text.count(": error: ") == 1


def tiny_config(**over):
    import tomllib

    from azc.resources import config_dir
    data = tomllib.loads((config_dir() / "linear.toml").read_text())
    data.update({"population_size": 100, "tournament_size": 10, "max_train_steps": 2_000_000,
                 "progress_every": 1000, "batch_size": 10})
    data["select_tasks"][0].update({"num_tasks": 5, "num_train_examples": 200})
    data["final_tasks"][0].update({"num_tasks": 5, "num_train_examples": 200})
    data.update(over)
    return parse_config(data, "tiny.toml")


def test_same_seed_same_run(tmp_path) -> None:
    from azc.search.experiment import evolve
    a = evolve(tiny_config(), seed=7, quiet=True)
    b = evolve(tiny_config(), seed=7, quiet=True)
    c = evolve(tiny_config(), seed=8, quiet=True)
    assert a.program == b.program and a.final_fitness == b.final_fitness
    assert a.individuals == b.individuals and a.train_steps == b.train_steps
    assert (c.program, c.individuals) != (a.program, a.individuals) or c.seed != a.seed


def test_resume_reaches_the_same_result(tmp_path) -> None:
    from azc.search.experiment import evolve
    cfg = tiny_config()
    full = evolve(cfg, seed=3, quiet=True, out_dir=tmp_path / "full")

    def stop(record):  # Ctrl-C, as a user would press it
        if record.get("event") == "progress" and record["individuals"] >= 4000:
            os.kill(os.getpid(), signal.SIGINT)

    part = evolve(cfg, seed=3, quiet=True, out_dir=tmp_path / "part", callback=stop)
    assert part.stopped == "interrupted"
    assert (tmp_path / "part" / "checkpoint.ckpt").exists()
    resumed = evolve(None, resume=tmp_path / "part", quiet=True)
    assert resumed.program == full.program
    assert resumed.final_fitness == full.final_fitness
    assert resumed.individuals == full.individuals
    assert not (tmp_path / "part" / "checkpoint.ckpt").exists()
    for name in ("best.az", "result.json", "log.jsonl", "evolved.az"):
        assert (tmp_path / "part" / name).exists()


def test_evolved_programs_verify_against_the_space() -> None:
    from azc.search.experiment import evolve
    cfg = tiny_config()
    r = evolve(cfg, seed=1, quiet=True, max_individuals=3000)
    verify(r.program, cfg.memory.with_features(4), cfg.space(4).allowed())
    assert dce(r.program) == r.simplified


def test_nonlinear_space_finds_the_missing_weight_initializations() -> None:
    """The nonlinear integration test's space, small: evolution re-creates the Gaussian
    initializations of v2 and m0 that the damaged network lacks."""
    import tomllib

    from azc.resources import config_dir
    from azc.search.experiment import evolve
    data = tomllib.loads((config_dir() / "nonlinear.toml").read_text())
    data.update({"population_size": 100, "tournament_size": 10, "max_train_steps": 20_000_000,
                 "batch_size": 20})
    result = evolve(parse_config(data, "small-nonlinear.toml"), seed=1, quiet=True)
    live = {(i.op, i.out) for i in dce(result.program).setup}
    assert (63, 2) in live and (64, 0) in live, result.simplified
    assert result.search_fitness > 0.99


def test_islands_reuse_their_processes_across_experiments(monkeypatch) -> None:
    """The next search experiment starts its islands in the last one's worker processes:
    the same run as with fresh processes for every experiment."""
    from azc.search import experiment
    cfg = tiny_config(migrate_every=2, max_train_steps=300_000, max_experiments=3,
                sufficient_fitness=2.0)
    starts: list[int] = []
    from azc.search import islands
    real_start = islands.Archipelago.start

    def counted(self, *args, **kwargs):
        starts.append(id(self))
        return real_start(self, *args, **kwargs)
    monkeypatch.setattr(islands.Archipelago, "start", counted)
    reused = experiment.evolve(cfg, seed=5, quiet=True, workers=2)
    assert reused.experiments == 3 and len(starts) == 3 and len(set(starts)) == 1

    real_end = experiment._end_experiment

    def fresh(run, reporter) -> None:  # close the processes after every experiment
        if run.idle_arch is not None:
            run.idle_arch.close()
            run.idle_arch = None
        real_end(run, reporter)
    monkeypatch.setattr(experiment, "_end_experiment", fresh)
    again = experiment.evolve(cfg, seed=5, quiet=True, workers=2)
    assert (again.program, again.individuals, again.train_steps, again.final_fitness) == (
        reused.program, reused.individuals, reused.train_steps, reused.final_fitness)


def test_islands_are_deterministic_and_resume_exactly(tmp_path) -> None:
    """Two workers (islands with migration): same seed, same run; and a resumed run
    reaches the same result."""
    from azc.search.experiment import evolve
    cfg = tiny_config(migrate_every=2)
    a = evolve(cfg, seed=4, quiet=True, workers=2, max_individuals=12_000)
    b = evolve(cfg, seed=4, quiet=True, workers=2, max_individuals=12_000,
               out_dir=tmp_path / "full")
    assert a.program == b.program and a.individuals == b.individuals
    assert a.final_fitness == b.final_fitness

    def stop(record):
        if record.get("event") == "progress" and record["individuals"] >= 4000:
            os.kill(os.getpid(), signal.SIGINT)

    part = evolve(cfg, seed=4, quiet=True, workers=2, max_individuals=12_000,
                  out_dir=tmp_path / "part", callback=stop)
    assert part.stopped == "interrupted"
    resumed = evolve(None, resume=tmp_path / "part", quiet=True)
    assert resumed.program == a.program and resumed.individuals == a.individuals
    assert resumed.final_fitness == a.final_fitness
