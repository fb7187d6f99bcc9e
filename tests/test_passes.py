"""The passes: golden before/after cases per pass, and hypothesis properties.

Properties (random programs over all 65 ops, random memories, F 1-8, small
random tasks): each pass and the pipeline keep the interpreter's fitness and
its train and valid predictions bit for bit; they are idempotent, keep the
program valid for its memory and never grow it; and programs that differ
only in dead code get the same optimized hash.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings

from azc.errors import VerifyError
from azc.frontend import parse
from azc.interp import evaluate_task
from azc.ir import Instr, MemoryConfig, Program, canonical_slots, slot_at, verify
from azc.passes import (
    PASSES,
    PassStats,
    dce,
    fold,
    optimize,
    optimize_with_stats,
    optimized_hash,
)
from azc.printer import format_program
from azc.tasks.task import EvalType, Task
from tests.strategies import pass_programs, programs_on_tasks, programs_with_dead_code


def az(text: str) -> Program:
    """A program from indented .az text."""
    return parse(textwrap.dedent(text))


def assert_program(got: Program, want: Program) -> None:
    assert got == want, f"got:\n{format_program(got)}\nwant:\n{format_program(want)}"


def same_floats(a: object, b: object) -> bool:
    """Bitwise equal float64 arrays, every NaN equal to every NaN."""
    x = np.atleast_1d(np.asarray(a, dtype=np.float64))
    y = np.atleast_1d(np.asarray(b, dtype=np.float64))
    if x.shape != y.shape:
        return False
    nx, ny = np.isnan(x), np.isnan(y)
    return bool(np.array_equal(nx, ny) and np.array_equal(x[~nx].view(np.int64),
                                                          y[~ny].view(np.int64)))


def small_task(n: int = 4, nv: int = 3, F: int = 2, epochs: int = 2, seed: int = 0,
               eval_type: EvalType = EvalType.RMS_ERROR) -> Task:
    rng = np.random.default_rng(seed)
    return Task(rng.normal(size=(n, F)), rng.normal(size=n), rng.normal(size=(nv, F)),
                rng.normal(size=nv), eval_type, epochs)


def run(program: Program, task: Task, memory: MemoryConfig | None = None, seed: int = 7):
    mem = memory or MemoryConfig.fitting(program, task.features)
    return evaluate_task(program, task, mem, seed=seed, record=True)


def same_run(p: Program, q: Program, task: Task, memory: MemoryConfig | None = None,
             seed: int = 7) -> str | None:
    """Why p and q behave differently on the task, or None."""
    mem = memory or MemoryConfig.fitting(p, task.features)
    a, b = run(p, task, mem, seed), run(q, task, mem, seed)
    for what, x, y in (("fitness", a.fitness, b.fitness),
                       ("train predictions", a.train_predictions, b.train_predictions),
                       ("valid predictions", a.valid_predictions, b.valid_predictions),
                       ("train steps", a.train_steps, b.train_steps)):
        if not same_floats(x, y):
            return f"{what} differ: {x} vs {y}"
    return None


# ---------------------------------------------------------------------------
# dce: golden cases
# ---------------------------------------------------------------------------

def test_dce_removes_an_overwritten_write_and_what_only_it_reads() -> None:
    before = az("""
        def Setup():
          s3 = 1.0          # read only by the dead write below
        def Predict():
          s2 = s0 + s3      # dead: overwritten before any read
          s2 = mean(v0)
          s1 = s2 * s2
        """)
    after = az("""
        def Predict():
          s2 = mean(v0)
          s1 = s2 * s2
        """)
    assert_program(dce(before), after)


def test_dce_keeps_a_learn_write_read_by_the_learn_of_a_later_step() -> None:
    before = az("""
        def Predict():
          s1 = s2 + s0
        def Learn():
          s2 = s2 + s4
          s4 = s0 * s3      # read by the next step's Learn: memory persists
          s5 = s0 + s0      # dead
        """)
    after = az("""
        def Predict():
          s1 = s2 + s0
        def Learn():
          s2 = s2 + s4
          s4 = s0 * s3
        """)
    assert_program(dce(before), after)
    assert same_run(before, dce(before), small_task()) is None


def test_dce_keeps_setup_writes_read_in_predict_but_not_writes_to_s0_v0() -> None:
    before = az("""
        def Setup():
          s2 = 0.5
          s0 = 3.0          # dead: the harness writes s0 before every Predict
          v0 = bcast(s2)    # dead: and v0
          s3 = 2.0          # dead: Predict overwrites s3 before reading it
        def Predict():
          s3 = dot(v0, v0)
          s1 = s3 * s2
          s1 = s1 + s0
        """)
    after = az("""
        def Setup():
          s2 = 0.5
        def Predict():
          s3 = dot(v0, v0)
          s1 = s3 * s2
          s1 = s1 + s0
        """)
    assert_program(dce(before), after)


def test_dce_removes_learn_writes_to_s0_and_v0_the_harness_overwrites() -> None:
    before = az("""
        def Predict():
          s1 = mean(v0)
          s1 = s1 + s0
          s1 = s1 + s3
        def Learn():
          s0 = s0 * s1      # live: read below, within Learn
          s3 = s0 + s2
          s0 = s3 - s1      # dead: the harness writes s0 before the next Predict
          v0 = s3 * v0      # dead: the harness writes v0 before the next Predict
        """)
    after = az("""
        def Predict():
          s1 = mean(v0)
          s1 = s1 + s0
          s1 = s1 + s3
        def Learn():
          s0 = s0 * s1
          s3 = s0 + s2
        """)
    assert_program(dce(before), after)
    assert same_run(before, dce(before), small_task()) is None


def test_dce_keeps_a_write_seen_only_by_a_validation_predict() -> None:
    # One training example, one epoch: Learn runs once, and only the validation
    # Predicts that follow see what it wrote.
    before = az("""
        def Predict():
          s1 = s2 + s0
        def Learn():
          s2 = s0 + s3      # the label, seen only in validation
        """)
    assert_program(dce(before), before)
    task = small_task(n=1, nv=3, epochs=1)
    without = before.replace(2, ())
    assert run(before, task).train_predictions.tolist() == [0.0]
    assert not same_floats(run(before, task).valid_predictions,
                           run(without, task).valid_predictions)


def test_dce_keeps_a_predict_write_read_by_the_next_validation_predict() -> None:
    before = az("""
        def Predict():
          s1 = s2 + s0      # in validation: the previous example's mean
          s2 = mean(v0)     # live: the next validation Predict reads it
          s3 = s2 * s2      # dead
        def Learn():
          s2 = s0 * s0      # in training, Learn overwrites s2 before the next Predict
        """)
    after = before.replace(1, before.predict[:2])
    assert_program(dce(before), after)
    task = small_task(n=3, nv=3, epochs=1)
    res = run(after, task)
    assert res.valid_predictions[1] == np.mean(task.valid_x[0])
    assert res.valid_predictions[2] == np.mean(task.valid_x[1])
    assert same_run(before, after, task) is None


def test_dce_element_setters_keep_earlier_writes_alive() -> None:
    before = az("""
        def Setup():
          v2 = uniform(-1.0, 1.0)   # live: v2[0] = ... keeps the other elements
          v3[1] = 2.0               # dead: Predict writes all of v3 first
          m0 = gaussian(0.0, 1.0)   # live through m0[0, 1] = ...
        def Predict():
          v2[0] = 1.0
          v3 = v2 * v0
          v4[0] = 5.0               # dead: overwritten whole below
          v4 = abs(v3)
          v4[1] = 2.0
          m0[0, 1] = 3.0
          s1 = mean(m0)
          s2 = dot(v4, v3)
          s1 = s1 + s2
        """)
    after = az("""
        def Setup():
          v2 = uniform(-1.0, 1.0)
          m0 = gaussian(0.0, 1.0)
        def Predict():
          v2[0] = 1.0
          v3 = v2 * v0
          v4 = abs(v3)
          v4[1] = 2.0
          m0[0, 1] = 3.0
          s1 = mean(m0)
          s2 = dot(v4, v3)
          s1 = s1 + s2
        """)
    after = after.replace(0, (after.setup[0], after.setup[1].with_slot(2)))
    assert_program(dce(before), after)
    assert same_run(before, dce(before), small_task()) is None


def test_dce_removes_a_dead_random_op_and_keeps_the_next_ones_slot() -> None:
    before = az("""
        def Setup():
          s5 = gaussian(0.0, 1.0)   # dead
          noop
          v1 = uniform(-1.0, 1.0)   # live, slot 2
        def Predict():
          s2 = uniform(0.0, 1.0)    # dead: overwritten
          s2 = gaussian(0.0, 1.0)   # live, slot 1
          s1 = dot(v0, v1)
          s1 = s1 + s2
        """)
    got = dce(before)
    want = az("""
        def Setup():
          v1 = uniform(-1.0, 1.0)
        def Predict():
          s2 = gaussian(0.0, 1.0)
          s1 = dot(v0, v1)
          s1 = s1 + s2
        """)
    want = Program((want.setup[0].with_slot(2),),
                   (want.predict[0].with_slot(1), *want.predict[1:]), ())
    assert_program(got, want)
    assert got.slot(0, 0) == 2 and got.slot(1, 0) == 1
    task = small_task(n=3, nv=2)
    res = run(before, task)
    assert same_run(before, got, task) is None
    # the draws really depend on the slot: binding v1 to slot 0 changes the predictions
    moved = got.replace(0, (got.setup[0].with_slot(-1),))
    assert not same_floats(res.train_predictions, run(moved, task).train_predictions)


def test_dce_removes_everything_when_nothing_reaches_s1() -> None:
    before = az("""
        def Setup():
          s2 = 1.0
          noop
        def Predict():
          s3 = s2 + s0
          noop
        def Learn():
          s4 = s3 * s0
          v1 = s4 * v0
        """)
    assert_program(dce(before), Program())


def test_dce_removes_a_learn_only_cycle_that_never_reaches_s1() -> None:
    before = az("""
        def Predict():
          s1 = dot(v0, v1)
        def Learn():
          s2 = s0 - s1
          s3 = s3 + s2      # accumulates across steps, never read by Predict
          v2 = s3 * v0
          v1 = v1 + v0
        """)
    after = az("""
        def Predict():
          s1 = dot(v0, v1)
        def Learn():
          v1 = v1 + v0
        """)
    assert_program(dce(before), after)


def test_dce_keeps_a_learn_write_to_s1_when_predict_leaves_s1_alone() -> None:
    # s1 at the end of Predict is whatever Learn left there.
    before = az("""
        def Predict():
          s2 = s1 + s0
        def Learn():
          s1 = s0 * s0
        """)
    after = az("""
        def Learn():
          s1 = s0 * s0
        """)
    assert_program(dce(before), after)
    assert same_run(before, after, small_task()) is None


def test_dce_returns_an_unchanged_program_itself() -> None:
    p = az("""
        def Setup():
          v1 = gaussian(0.0, 1.0)
        def Predict():
          s1 = dot(v0, v1)
        """)
    assert dce(p) is p


def test_canonical_slots_binds_moved_random_ops_only() -> None:
    g = Instr.make(62, 2, consts=[0.0, 1.0])
    c = Instr.make(56, 3, consts=[1.0])
    assert canonical_slots([g, c], [0, -1]) == (g, c)
    assert canonical_slots([c, g], [-1, 0]) == (c, g.with_slot(0))
    # an explicit slot equal to the position becomes the default -1
    assert canonical_slots([g.with_slot(0)], [0]) == (g,)
    assert canonical_slots([c, g.with_slot(1)], [-1, 1]) == (c, g)
    assert slot_at(g, 4) == 4 and slot_at(g.with_slot(9), 4) == 9 and slot_at(c, 4) == -1


# ---------------------------------------------------------------------------
# fold: golden cases (F = 2 unless stated)
# ---------------------------------------------------------------------------

def test_fold_setup_chains_to_constants() -> None:
    before = az("""
        def Setup():
          s2 = 2.0
          s3 = s2 * s2
          s4 = exp(s3)
          s5 = s4 - s6      # s6 is still 0
          s6 = norm(v0)     # v0 is 0 during Setup
        """)
    after = az(f"""
        def Setup():
          s2 = 2.0
          s3 = 4.0
          s4 = {math.exp(4.0)!r}
          s5 = {math.exp(4.0)!r}
          s6 = 0.0
        """)
    assert_program(fold(before, 2), after)


def test_fold_propagates_invariants_into_predict() -> None:
    before = az("""
        def Setup():
          s2 = 3.0
          v1 = bcast(s2)
        def Predict():
          s3 = s2 * s2
          s4 = dot(v1, v1)
          s5 = s6 + s2      # s6 is never written: 0
          s1 = dot(v0, v1)
        """)
    after = az("""
        def Setup():
          s2 = 3.0
          v1 = bcast(s2)
        def Predict():
          s3 = 9.0
          s4 = 18.0
          s5 = 3.0
          s1 = dot(v0, v1)
        """)
    assert_program(fold(before, 2), after)
    assert same_run(before, fold(before, 2), small_task()) is None


def test_fold_uses_s0_zero_in_predict_but_not_in_learn() -> None:
    before = az("""
        def Setup():
          s3 = 1.5
        def Predict():
          s2 = s0 + s3
          s1 = dot(v0, v0)
        def Learn():
          s2 = s0 + s3
        """)
    after = az("""
        def Setup():
          s3 = 1.5
        def Predict():
          s2 = 1.5
          s1 = dot(v0, v0)
        def Learn():
          s2 = s0 + s3
        """)
    assert_program(fold(before, 2), after)


def test_fold_vector_chain_into_scalar_reductions() -> None:
    before = az("""
        def Setup():
          v1[0] = 2.0
          v1[1] = 3.0
          v2 = v1 * v1
          s2 = dot(v2, v1)
          m0 = outer(v1, v1)
          s3 = mean(m0)
          m0[1, 1] = -1.0
          s4 = std(m0)
        def Predict():
          s5 = norm(v2)
        """)
    m = np.array([[4.0, 6.0], [6.0, -1.0]])
    std = math.sqrt(float((m * m).sum()) / 4 - (float(m.sum()) / 4) ** 2)
    after = az(f"""
        def Setup():
          v1[0] = 2.0
          v1[1] = 3.0
          v2 = v1 * v1
          s2 = 35.0
          m0 = outer(v1, v1)
          s3 = 6.25
          m0[1, 1] = -1.0
          s4 = {std!r}
        def Predict():
          s5 = {math.sqrt(97.0)!r}
        """)
    assert_program(fold(before, 2), after)


def test_fold_division_by_zero_gives_exact_inf_and_nan() -> None:
    before = az("""
        def Setup():
          s2 = 1.0
          s3 = s2 / s4
          s5 = s4 / s4
          s7 = -0.0
          s6 = 1 / s7
          s8 = log(s4)
          s9 = s3 - s3
        """)
    after = az("""
        def Setup():
          s2 = 1.0
          s3 = inf
          s5 = nan
          s7 = -0.0
          s6 = -inf
          s8 = -inf
          s9 = nan
        """)
    assert_program(fold(before, 2), after)


def test_fold_keeps_negative_zero_and_nan_without_identities() -> None:
    before = az("""
        def Setup():
          s3 = -1.0
          s4 = s2 * s3          # -0.0, not 0.0
          s5 = s6 / s6          # NaN
          s7 = s5 * s2          # NaN * 0 is NaN
          s8 = minimum(s5, s3)  # first operand on NaN
          s9 = maximum(s3, s5)  # first operand on NaN
        """)
    after = az("""
        def Setup():
          s3 = -1.0
          s4 = -0.0
          s5 = nan
          s7 = nan
          s8 = nan
          s9 = -1.0
        """)
    got = fold(before, 2)
    assert_program(got, after)
    assert math.copysign(1.0, got.setup[1].c0) == -1.0


def test_fold_nothing_through_random_ops() -> None:
    before = az("""
        def Setup():
          s2 = uniform(0.0, 1.0)
          s3 = s2 * s4          # s4 is 0, but x * 0 is not folded
          v1 = gaussian(0.0, 1.0)
          v1[0] = 1.0
          s5 = mean(v1)
          s6 = s4 + s4
        def Predict():
          s7 = s2 + s2
        """)
    after = az("""
        def Setup():
          s2 = uniform(0.0, 1.0)
          s3 = s2 * s4
          v1 = gaussian(0.0, 1.0)
          v1[0] = 1.0
          s5 = mean(v1)
          s6 = 0.0
        def Predict():
          s7 = s2 + s2
        """)
    assert_program(fold(before, 2), after)


def test_fold_locations_written_in_predict_or_learn_are_not_invariant() -> None:
    before = az("""
        def Setup():
          s2 = 1.0
          v1[0] = 2.0
          s8 = 4.0
        def Predict():
          s3 = s2 + s2          # Learn writes s2
          s4 = mean(v1)         # Learn writes an element of v1
          s5 = s8 * s8          # Predict writes s8 below
          s8 = 2.0
          s6 = s8 * s8          # but here s8 is known
          s1 = s3 + s4
        def Learn():
          s2 = s0 + s2
          v1[1] = 1.0
        """)
    after = before.replace(1, (*before.predict[:4], Instr.make(56, 6, consts=[4.0]),
                               before.predict[5]))
    assert_program(fold(before, 2), after)
    assert same_run(before, after, small_task()) is None


def test_fold_s1_and_v0_are_unknown_at_predict_entry() -> None:
    before = az("""
        def Setup():
          s1 = 2.0
          s2 = norm(v0)         # v0 is 0 during Setup
        def Predict():
          s3 = s1 + s1
          s4 = mean(v0)
          s1 = s3 + s4
        def Learn():
          s5 = s1 + s1
        """)
    after = before.replace(0, (before.setup[0], Instr.make(56, 2, consts=[0.0])))
    assert_program(fold(before, 2), after)


def test_fold_setup_exit_value_unknown_after_a_random_overwrite() -> None:
    before = az("""
        def Setup():
          s2 = 1.0
          s2 = uniform(0.0, 1.0)
        def Predict():
          s3 = s2 + s2
          s1 = s3 + s0
        """)
    assert fold(before, 2) is before


def test_fold_depends_on_the_feature_size() -> None:
    p = az("""
        def Setup():
          v1 = bcast(s2)
          v1[0] = 1.0
          s3 = mean(v1)
        """)
    assert fold(p, 1).setup[2] == Instr.make(56, 3, consts=[1.0])
    assert fold(p, 4).setup[2] == Instr.make(56, 3, consts=[0.25])


def test_fold_rejects_an_element_index_beyond_the_feature_size() -> None:
    p = az("""
        def Setup():
          v1[3] = 1.0
        """)
    assert fold(p, 4) is p
    with pytest.raises(VerifyError, match=r"Setup\[0\].*index 3 is out of range.*F=2"):
        fold(p, 2)


# ---------------------------------------------------------------------------
# the pipeline
# ---------------------------------------------------------------------------

def test_optimize_folds_then_removes_what_folding_made_dead() -> None:
    before = az("""
        def Setup():
          s2 = 2.0
          s3 = s2 * s2
        def Predict():
          s4 = s3 + s2
          s1 = s4 + s0
        def Learn():
          s5 = s0 - s1
        """)
    after = az("""
        def Predict():
          s1 = 6.0
        """)
    assert_program(optimize(before, 2), after)
    assert_program(optimize(before), dce(before))
    assert same_run(before, optimize(before, 2), small_task()) is None


def test_optimize_with_stats_reports_each_pass() -> None:
    before = az("""
        def Setup():
          s2 = 2.0
          s3 = s2 * s2
          noop
        def Predict():
          s4 = s3 + s2
          s1 = s4 + s0
          noop
        def Learn():
          s5 = s0 - s1
        """)
    prog, stats = optimize_with_stats(before, 2)
    assert prog == optimize(before, 2)
    assert isinstance(stats, PassStats)
    assert stats.before == (3, 3, 1) and stats.after == (0, 1, 0)
    assert stats.removed == 6 and stats.removed_noops == 2
    assert stats.folded == 3  # s3, s4 and s1
    assert stats.iterations == 2
    text = str(stats)
    assert "7 -> 1 instructions" in text and "6 instructions removed (2 no-ops)" in text
    assert "3 instructions replaced by constants (F=2)" in text
    _, plain = optimize_with_stats(before)
    assert plain.folded == 0 and plain.iterations == 1 and "not run" in str(plain)


def test_optimized_hash_ignores_dead_code_and_passes_are_listed() -> None:
    p = az("""
        def Predict():
          s1 = dot(v0, v1)
        def Learn():
          v1 = v1 + v0
        """)
    q = az("""
        def Setup():
          s3 = 1.0
        def Predict():
          s2 = s3 * s3
          s1 = dot(v0, v1)
          noop
        def Learn():
          v1 = v1 + v0
          s0 = s0 + s0
        """)
    assert optimized_hash(p) == optimized_hash(q) == optimized_hash(q, 4)
    assert [name for name, _ in PASSES] == ["fold", "dce"]
    assert all(callable(fn) and fn.__doc__ for _, fn in PASSES)


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------

def _transforms(F: int) -> list[tuple[str, object]]:
    return [("dce", dce), ("fold", lambda p: fold(p, F)), ("optimize", lambda p: optimize(p, F)),
            ("optimize(no F)", optimize)]


@settings(max_examples=1500, deadline=None)
@given(programs_on_tasks())
def test_passes_preserve_predictions_and_fitness(case) -> None:
    mem, p, task, seed = case
    for name, transform in _transforms(task.features):
        q = transform(p)
        why = same_run(p, q, task, mem, seed)
        assert why is None, (f"{name}: {why}\nseed={seed} task={task.name} "
                             f"{task.eval_type.name} F={task.features}\n"
                             f"before:\n{format_program(p)}\nafter:\n{format_program(q)}")


@settings(max_examples=500, deadline=None)
@given(pass_programs(max_features=8, max_size=10))
def test_passes_are_idempotent_valid_and_never_grow(case) -> None:
    mem, p = case
    for name, transform in _transforms(mem.features or 1):
        q = transform(p)
        msg = f"{name}\nbefore:\n{format_program(p)}\nafter:\n{format_program(q)}"
        verify(q, mem)
        assert sum(q.sizes()) <= sum(p.sizes()), msg
        assert transform(q) == q, msg
        assert all(ins.op != 0 for _, _, ins in q.instructions()) or name == "fold", msg
    # removing dead code never lets more fold: one productive round, one to confirm
    _, stats = optimize_with_stats(p, mem.features)
    assert stats.iterations <= 2, format_program(p)


@settings(max_examples=300, deadline=None)
@given(programs_with_dead_code())
def test_dead_code_does_not_change_the_optimized_hash(case) -> None:
    mem, p, big, q, task, seed = case
    F = mem.features or 1
    msg = f"without:\n{format_program(p)}\nwith dead code:\n{format_program(q)}"
    verify(q, big)
    assert optimized_hash(p) == optimized_hash(q), msg
    assert optimized_hash(p, F) == optimized_hash(q, F), msg
    assert optimize(p, F) == optimize(q, F), msg
    # the inserted code is really dead: the same behaviour on the larger memory
    why = same_run(p, q, task, big, seed)
    assert why is None, f"{why}\n{msg}"


def test_fold_without_a_feature_size_folds_scalar_only_ops() -> None:
    before = az("""
        def Setup():
          s2 = 2.0
          s3 = s2 * s2
          v1[0] = 3.0
          s5 = norm(v1)
        def Predict():
          s4 = s3 + s2
          s6 = s4 + s5
          s1 = s6 + s0
        """)
    after = az("""
        def Setup():
          s2 = 2.0
          s3 = 4.0
          v1[0] = 3.0
          s5 = norm(v1)
        def Predict():
          s4 = 6.0
          s6 = s4 + s5
          s1 = s6 + s0
        """)
    assert_program(fold(before, None), after)
    prog, stats = optimize_with_stats(before, fold_scalars=True)
    assert prog == optimize(before, fold_scalars=True) == dce(after)
    assert stats.folded == 2 and "(scalar-only ops, no feature size)" in str(stats)


@settings(max_examples=500, deadline=None)
@given(programs_on_tasks())
def test_fold_without_a_feature_size_is_valid_at_every_feature_size(case) -> None:
    mem, p, task, seed = case
    q = fold(p, None)
    at_f = fold(p, task.features)
    for (_, a), (_, b), (_, c) in zip(p.components(), q.components(), at_f.components()):
        # what folds without F folds the same at F (F only adds what is known)
        assert all(y == x or y == z for x, y, z in zip(a, b, c)), format_program(q)
    assert fold(q, None) == q
    for name, r in (("fold(None)", q), ("optimize(fold_scalars)",
                                        optimize(p, fold_scalars=True))):
        why = same_run(p, r, task, mem, seed)
        assert why is None, f"{name}: {why}\nbefore:\n{format_program(p)}"
