"""Hurdles: the early stop after the head tasks, its bookkeeping, config and resume."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from azc.errors import ConfigError
from azc.interp import evaluate_task
from azc.ir import MemoryConfig
from azc.search.evaluator import SearchEvaluator
from azc.search.fec import FecConfig
from azc.search.generator import Generator, InitialPopulation
from azc.search.hurdles import HurdleConfig
from azc.search.mutator import MutationType, Mutator
from azc.search.random import SearchRandom
from azc.search.space import SearchSpace
from azc.tasks import load_tasks
from tests.test_search import tiny_config

MEM = MemoryConfig(4, 3, 1)
DEMO = (56, 27, 2, 3, 18, 23)


def programs(n: int, seed: int = 4) -> list:
    """Random demo-space programs plus mutants of them (so that FEC and the memo hit)."""
    sp = SearchSpace(MEM, 4, (DEMO,) * 3, (10, 2, 8), (0, 0, 0), (1 << 30,) * 3)
    rnd = SearchRandom(seed)
    gen = Generator(sp, InitialPopulation.RANDOM_ALGORITHM)
    mut = Mutator(sp, [MutationType.ALTER_PARAM], 1.0)
    base = [gen.program(rnd) for _ in range(n // 2)]
    return base + [mut.mutate(p, rnd) for p in base]


@pytest.fixture(params=[FecConfig(), None], ids=["fec", "no-fec"])
def fec(request: pytest.FixtureRequest) -> FecConfig | None:
    return request.param


def test_head_tasks_rule() -> None:
    h = HurdleConfig(task_share=0.3)
    assert [h.head_tasks(n) for n in (2, 3, 10, 11)] == [1, 1, 3, 4]
    assert HurdleConfig(task_share=0.99).head_tasks(10) == 9
    assert HurdleConfig(task_share=0.01).head_tasks(10) == 1
    with pytest.raises(ConfigError, match="at least 2 search tasks"):
        h.head_tasks(1)
    for bad in ({"task_share": 1.0}, {"task_share": 0.0}, {"percentile": 101.0}):
        with pytest.raises(ConfigError, match="hurdles: "):
            HurdleConfig(**bad)
    assert HurdleConfig(percentile=50).value(np.array([0.1, 0.1, 0.1, 0.2, 0.3])) == 0.2


def inputs(seeds: str = "distinct") -> tuple[list, list, np.ndarray]:
    """(4 demo tasks, 40 programs, their seeds: distinct or all zero)."""
    n = 40
    return (load_tasks("demo_search")[:4], programs(n),
            np.arange(n, dtype=np.uint64) if seeds == "distinct" else np.zeros(n, np.uint64))


def test_no_hurdle_and_low_hurdle_change_nothing(fec: FecConfig | None) -> None:
    tasks, progs, seeds = inputs()
    plain = SearchEvaluator(tasks, MEM, fec=fec).evaluate_tasks(progs, seeds)
    ev = SearchEvaluator(tasks, MEM, fec=fec, head_tasks=1)
    assert np.array_equal(ev.evaluate_tasks(progs, seeds), plain)
    ev = SearchEvaluator(tasks, MEM, fec=fec, head_tasks=1)
    assert np.array_equal(ev.evaluate_tasks(progs, seeds, hurdle=-1.0), plain)
    assert ev.counters.hurdled == 0


def test_stopped_children_score_zero_on_the_rest(fec: FecConfig | None) -> None:
    tasks, progs, seeds = inputs()
    truth = np.array([[evaluate_task(p, t, MEM, seed=i).fitness for t in tasks]
                      for i, p in enumerate(progs)])
    ev = SearchEvaluator(tasks, MEM, fec=fec, head_tasks=2)
    hurdle = float(np.median(truth[:, :2].mean(axis=1)))
    per_task = ev.evaluate_tasks(progs, seeds, hurdle=hurdle)
    head = truth[:, :2].mean(axis=1)
    stopped = head < hurdle
    assert 0 < stopped.sum() < len(progs) and ev.counters.hurdled == stopped.sum()
    assert np.isnan(per_task[stopped, 2:]).all()
    if fec is None:  # FEC may give an equivalent program's (true) fitness instead
        assert np.array_equal(per_task[:, :2], truth[:, :2])
        assert np.array_equal(per_task[~stopped], truth[~stopped])
    # the combined fitness: tails count 0, so every stopped child ranks below the hurdle
    ev2 = SearchEvaluator(tasks, MEM, fec=fec, head_tasks=2)
    combined = ev2.evaluate(progs, seeds, hurdle=hurdle)
    np.testing.assert_allclose(combined[stopped], per_task[stopped, :2].sum(axis=1) / 4)
    np.testing.assert_allclose(ev2.head_fitness, per_task[:, :2].mean(axis=1))


def test_caches_learn_nothing_of_skipped_tasks(fec: FecConfig | None) -> None:
    """A child stopped once and met again under a low hurdle gets its true fitness."""
    tasks, progs, seeds = inputs("zero")
    plain = SearchEvaluator(tasks, MEM, fec=fec).evaluate_tasks(progs, seeds)
    ev = SearchEvaluator(tasks, MEM, fec=fec, head_tasks=2)
    ev.evaluate_tasks(progs, seeds, hurdle=2.0)  # everyone stopped
    assert ev.counters.hurdled == len(progs)
    again = ev.evaluate_tasks(progs, seeds, hurdle=-1.0)
    assert not np.isnan(again).any()
    if fec is None:
        assert np.array_equal(again, plain)
    else:  # FEC gives each fingerprint's first-evaluated fitness, as without hurdles
        assert np.allclose(again, plain, atol=0.5)


def test_hurdles_in_a_search_save_work_and_resume(tmp_path) -> None:
    from azc.search.experiment import Run, evolve
    cfg = tiny_config(hurdles={"task_share": 0.3})
    assert cfg.hurdles == HurdleConfig(75.0, 0.3)
    run = Run(cfg, 3)
    run.start_search()
    evo, ev = run.evo, run.evaluator
    assert evo is not None and ev is not None and ev.head_tasks == 3
    evo.initialize()
    while evo.individuals < 2000:
        evo.step()
    assert ev.counters.hurdled > 200
    assert evo.population is not None and evo.population.head is not None
    full = evolve(cfg, seed=3, quiet=True, out_dir=tmp_path / "full")

    def stop(record: dict) -> None:
        if record.get("event") == "progress" and record["individuals"] >= 3000:
            os.kill(os.getpid(), signal.SIGINT)

    part = evolve(cfg, seed=3, quiet=True, out_dir=tmp_path / "part", callback=stop)
    assert part.stopped == "interrupted"
    resumed = evolve(None, resume=tmp_path / "part", quiet=True)
    assert (resumed.program, resumed.individuals) == (full.program, full.individuals)
    assert resumed.final_fitness == full.final_fitness


@pytest.mark.parametrize(("hurdles", "message"), [
    ({"share": 0.5}, "unknown key 'hurdles.share'"),
    ({"task_share": 1.5}, "task_share must be between 0 and 1"),
    ({"percentile": "high"}, "hurdles.percentile"),
    ("yes", "hurdles"),
])
def test_hurdle_config_errors(hurdles: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(hurdles=hurdles)


def test_one_search_task_cannot_have_hurdles() -> None:
    import tomllib

    from azc.resources import config_dir
    from azc.search.config import parse_config
    data = tomllib.loads((config_dir() / "linear.toml").read_text())
    data["search_tasks"][0]["num_tasks"] = 1
    data["hurdles"] = {}
    with pytest.raises(ConfigError, match="hurdles need at least 2 search tasks"):
        parse_config(data, "one.toml")


def test_islands_carry_head_fitness_with_migrants() -> None:
    from azc.search.experiment import evolve
    result = evolve(tiny_config(hurdles={}, migrate_every=1), seed=5, quiet=True, workers=2,
                    max_individuals=3000)
    assert result.individuals >= 3000 and result.final_fitness > 0
