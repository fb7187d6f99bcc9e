"""Differential tests of the native tier: the native interpreter and the native DCE.

The native interpreter (one module per memory layout and F, programs
encoded as records) must give bitwise the results of the reference
interpreter: fitness, training and validation predictions (every NaN equal
to every NaN), steps, early stopping and the recorded errors, for random
programs over all 65 ops, feature sizes 1-32, both evaluation types and
tasks with NaN and infinite features; programs after dead-code removal
(random ops bound to explicit slots) included, and `run_batch` of many
programs with their own seeds against single runs.

The native DCE must remove exactly what azc.passes.dce removes (decoding
its output gives `dce(p)`), and its two 64-bit hashes must be equal exactly
when the dce'd programs are.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azc.backend import native
from azc.backend.contracts import OUT_WIDTH
from azc.backend.native import Encoded, decode, native_dce
from azc.interp import evaluate_task
from azc.ir import NOOP, Instr, MemoryConfig, Program, canonical_slots, slot_at
from azc.ops import OPS
from azc.passes import dce, optimize
from azc.printer import format_program
from azc.results import TaskResult
from azc.tasks import load_tasks
from azc.tasks.task import Task

from . import strategies as azs
from .test_jit import same

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])
# Interpreters whose layout holds every memory the strategies draw (compiled once per F).
SHARED = MemoryConfig(8, 6, 4)       # memories() and pass_programs()
SHARED_PADDED = MemoryConfig(10, 7, 5)  # with_dead_code() adds 2 scalars, a vector, a matrix
RANDOM = frozenset(op.id for op in OPS if op.random)


def assert_same_result(got: TaskResult, expected: TaskResult, where: str) -> None:
    """Bitwise-equal fitness, predictions and errors; equal steps and early stop."""
    assert same(np.array([got.fitness]), np.array([expected.fitness])), (
        f"fitness {got.fitness!r} != {expected.fitness!r}{where}")
    assert got.train_steps == expected.train_steps, (
        f"steps {got.train_steps} != {expected.train_steps}{where}")
    assert got.stopped_early == expected.stopped_early, f"stopped_early differs{where}"
    assert same(got.train_predictions, expected.train_predictions), (
        f"train predictions\n{got.train_predictions}\n!= {expected.train_predictions}{where}")
    assert same(got.valid_predictions, expected.valid_predictions), (
        f"valid predictions\n{got.valid_predictions}\n!= {expected.valid_predictions}{where}")
    assert same(np.array(got.train_errors), np.array(expected.train_errors)), (
        f"train errors {got.train_errors} != {expected.train_errors}{where}")
    assert same(np.array(got.valid_errors), np.array(expected.valid_errors)), (
        f"valid errors {got.valid_errors} != {expected.valid_errors}{where}")


def describe(program: Program, task: Task, seed: int, layout: MemoryConfig) -> str:
    return (f"\n{format_program(program)}\non task {task.name} ({task.eval_type.name}, "
            f"F={task.features}), seed {seed}, interpreter layout {layout}")


def check_run(case) -> None:
    mem, program, task, seed, layout, num_train, num_valid, max_err = case
    expected = evaluate_task(program, task, mem, seed=seed, num_train=num_train,
                             num_valid=num_valid, max_abs_error=max_err, record=True,
                             record_errors=True)
    interp = native.interpreter(layout, task.features)
    got = interp.run(program, [task], seed=seed, num_train=num_train, num_valid=num_valid,
                     max_abs_error=max_err, record=True, record_errors=True)[0]
    assert_same_result(got, expected, describe(program, task, seed, layout)
                       + f", num_train {num_train}, num_valid {num_valid}, max error {max_err}")


@settings(max_examples=200, **SETTINGS)
@given(azs.native_runs(SHARED))
def test_interpreter_matches_the_reference(case) -> None:
    check_run(case)


@settings(max_examples=100, **SETTINGS)
@given(azs.native_runs(SHARED_PADDED, dead_code=True))
def test_interpreter_matches_the_reference_after_dce(case) -> None:
    """Programs after dce: random ops after removed code keep their slots explicitly."""
    check_run(case)


def test_interpreter_runs_random_ops_with_explicit_slots() -> None:
    """Dead code before random ops: dce binds them to slots, and the draws do not change."""
    mem = MemoryConfig(6, 4, 3, 5)
    dead = [Instr.make(1, 5, 4, 4), NOOP, Instr.make(23, 3, 3, 3)]  # s5, v3: never read
    program = Program(
        setup=(*dead, Instr.make(64, 1, consts=[0.0, 1.0]), Instr.make(60, 2, consts=[-1, 1])),
        predict=(*dead, Instr.make(59, 2, consts=[0.0, 1.0]), NOOP,
                 Instr.make(62, 3, consts=[1.0, 2.0]), Instr.make(31, 1, 1, 0),
                 Instr.make(27, 1, 1, 2), Instr.make(3, 1, 1, 2), Instr.make(1, 1, 1, 3)),
        learn=(*dead, Instr.make(60, 2, consts=[-0.5, 0.5])))
    slim = dce(program)
    assert sorted(ins.slot for _, _, ins in slim.instructions() if ins.op in RANDOM) == \
        [3, 3, 3, 4, 5], format_program(slim)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(13, 5)), rng.normal(size=13)
    task = Task(x[:8], y[:8], x[8:], y[8:], num_train_epochs=2, name="normal-5")
    expected = evaluate_task(program, task, mem, seed=5, record=True, record_errors=True)
    for layout in (mem, SHARED):
        interp = native.interpreter(layout, 5)
        for prog in (program, slim):
            got = interp.run(prog, [task], seed=5, record=True, record_errors=True)[0]
            assert_same_result(got, expected, describe(prog, task, 5, layout))


EDGE = [0.0, -0.0, 1.0, -1.0, 0.5, float("inf"), float("-inf"), float("nan"), 1e300, -1e300,
        5e-324]


def op_on(op: int, a: float, b: float) -> Program:
    """Predict: s2 = a, s3 = b (broadcast into v1, v2 and m0, m1 as the op needs), the op on
    them, and its output into s1 exactly (scalars directly, else by op 50/51: a mean)."""
    o = OPS[op]
    setup = [Instr.make(56, 2, consts=[a]), Instr.make(56, 3, consts=[b])]
    kinds = {int(k) for k in o.ins} | {int(o.out)}
    if kinds & {1, 2}:
        setup += [Instr.make(19, 1, 2), Instr.make(19, 2, 3)]
    if 2 in kinds:
        setup += [Instr.make(32, 0, 1), Instr.make(32, 1, 2)]
    first = {0: 2, 1: 1, 2: 0}   # the address holding a, per kind
    second = {0: 3, 1: 2, 2: 1}  # the address holding b
    ins = [first[int(o.ins[0])]] if o.ins else []
    if len(o.ins) > 1:
        ins.append(second[int(o.ins[1])] if o.ins[1] == o.ins[0] else first[int(o.ins[1])])
    out = {0: 1, 1: 1, 2: 0}[int(o.out)]
    sink = {0: [], 1: [Instr.make(50, 1, 1)], 2: [Instr.make(51, 1, 0)]}[int(o.out)]
    return Program(predict=(*setup, Instr.make(o, out, *ins), *sink))


@pytest.mark.parametrize("F", [1, 3])
def test_every_op_on_special_values(F: int) -> None:
    """Each op (but the setters) on every pair of special values, signed zeros included;
    at F=1 a mean is its one element, so the prediction is the op's result bit for bit."""
    mem = MemoryConfig(4, 3, 2)
    task = Task(np.zeros((1, F)), np.zeros(1), np.zeros((1, F)), np.zeros(1), name="zeros")
    interp = native.interpreter(mem, F)
    for op in range(1, 56):
        for a in EDGE:
            for b in EDGE:
                prog = op_on(op, a, b)
                expected = evaluate_task(prog, task, mem, record=True, record_errors=True)
                got = interp.run(prog, [task], record=True, record_errors=True)[0]
                assert_same_result(got, expected, describe(prog, task, 0, mem))


# A program whose every prediction is a random draw.
DRAWS = Program(predict=(Instr.make(59, 1, consts=[-1.0, 1.0]),))


@settings(max_examples=60, **SETTINGS)
@given(azs.program_batches(), st.booleans(), st.one_of(st.none(), st.integers(0, 8)),
       azs.max_abs_errors())
def test_run_batch_matches_single_runs(case, encode: bool, num_train: int | None,
                                       max_err: float) -> None:
    """Many programs with their own seeds in one call, errors recorded, against single
    runs of the native interpreter and of the reference."""
    mem, programs, tasks, seeds = case
    programs = [*programs, DRAWS]  # its predictions tell the seeds apart
    seeds = [*seeds, seeds[0] ^ 0x5DEECE66D]
    F = tasks[0].features
    interp = native.interpreter(SHARED, F)
    n, nt = len(programs), len(tasks)
    k = max(max(t.num_train for t in tasks), max(t.num_valid for t in tasks))
    train_err = np.full((n, nt, k + 1), np.nan)
    valid_err = np.full((n, nt, k + 1), np.nan)
    batch = Encoded.of(programs) if encode else programs
    seed_array = np.array(seeds, dtype=np.uint64)
    out = interp.run_batch(batch, tasks, seed_array, max_abs_error=max_err,
                           num_train=num_train, errors=(train_err, valid_err))
    plain = interp.run_batch(batch, tasks, seed_array, max_abs_error=max_err,
                             num_train=num_train)
    assert out.shape == (n, nt, OUT_WIDTH)
    kept = [0, 1, 2, 5]  # fitness, steps, stopped early, validation predictions (3, 4: errors)
    assert same(out[:, :, kept], plain[:, :, kept]), "recording errors changed the outputs"
    assert not plain[:, :, 3:5].any(), "errors counted though none were recorded"
    for p, (prog, seed) in enumerate(zip(programs, seeds)):
        single = interp.run(prog, tasks, seed=seed, max_abs_error=max_err, num_train=num_train,
                            record=True, record_errors=True)
        for t, task in enumerate(tasks):
            ref = evaluate_task(prog, task, mem, seed=seed, num_train=num_train,
                                max_abs_error=max_err, record=True, record_errors=True)
            where = describe(prog, task, seed, SHARED) + f", program {p}, task {t}"
            assert_same_result(single[t], ref, where)
            o = out[p, t]
            assert same(o[:1], np.array([ref.fitness])), f"fitness {o[0]} != {ref.fitness}{where}"
            assert int(o[1]) == ref.train_steps, where
            assert bool(o[2]) == ref.stopped_early, where
            assert int(o[3]) == len(ref.train_errors), where
            assert int(o[4]) == len(ref.valid_errors), where
            assert int(o[5]) == len(ref.valid_predictions), where
            ne, nv = int(o[3]), int(o[4])
            assert same(train_err[p, t, :ne], np.array(ref.train_errors)), where
            assert same(valid_err[p, t, :nv], np.array(ref.valid_errors)), where
            assert np.isnan(train_err[p, t, ne:]).all(), f"train errors written past{where}"
            assert np.isnan(valid_err[p, t, nv:]).all(), f"valid errors written past{where}"


def test_run_batch_rejects_bad_error_buffers() -> None:
    interp = native.interpreter(SHARED, 4)
    tasks = load_tasks("linear")[:2]
    good = np.zeros((1, 2, 200))
    with pytest.raises(Exception, match="error buffers"):
        interp.run_batch([Program()], tasks, np.zeros(1, dtype=np.uint64),
                         errors=(good, np.zeros((1, 3, 200))))


# ---------------------------------------------------------------------------
# Native dead-code removal and hashing.
# ---------------------------------------------------------------------------

def fitting_all(programs: list[Program]) -> MemoryConfig:
    """The smallest memory that holds every program of a batch."""
    fits = [MemoryConfig.fitting(p) for p in programs] or [MemoryConfig(2, 1, 0)]
    return MemoryConfig(max(f.scalars for f in fits), max(f.vectors for f in fits),
                        max(f.matrices for f in fits))


def native_dce_all(programs: list[Program], memory: MemoryConfig | None = None
                   ) -> tuple[list[Program], np.ndarray, np.ndarray]:
    """(decoded live programs, hashes (n, 2), descriptors) of the native DCE on a batch
    (the native DCE for `memory`, by default the smallest that holds the batch)."""
    dce_of = native_dce(memory or fitting_all(programs))
    live, hashes = dce_of.run(Encoded.of(programs))
    return [decode(live, i) for i in range(len(programs))], hashes, live.progs


def check_dce(programs: list[Program]) -> None:
    decoded, _, progs = native_dce_all(programs)
    for i, (p, got) in enumerate(zip(programs, decoded)):
        expected = dce(p)
        assert got == expected, (f"program {i}:\n{format_program(p)}\nnative DCE gives\n"
                                 f"{format_program(got)}\nazc.passes.dce gives\n"
                                 f"{format_program(expected)}\n{got!r}\n{expected!r}")
        live_random = sum(ins.op in RANDOM for _, _, ins in expected.instructions())
        assert int(progs[i, 6]) == live_random, f"live random ops of program {i}"
        assert int(progs[i, 7]) == sum(expected.sizes()), f"live instructions of program {i}"


@settings(max_examples=150, **SETTINGS)
@given(st.lists(azs.dce_programs(), min_size=1, max_size=6))
def test_native_dce_matches_the_pass(programs: list[Program]) -> None:
    check_dce(programs)


def test_native_dce_edge_cases() -> None:
    """Empty components, all no-ops, everything dead, addresses 63, partial writes."""
    r = Instr.make(59, 5, consts=[0, 1])
    cases = [
        Program(),
        Program((NOOP,), (NOOP, NOOP), (NOOP,)),
        Program(predict=(NOOP, NOOP, Instr.make(1, 1, 0, 0))),
        Program((Instr.make(56, 2, consts=[1.0]),), (Instr.make(56, 3, consts=[2.0]),),
                (Instr.make(1, 4, 2, 3),)),                       # everything dead
        Program((r, NOOP, r), (Instr.make(1, 1, 5, 5),), ()),    # only the last write lives
        Program(predict=(Instr.make(56, 63, consts=[1.0]), Instr.make(1, 1, 63, 63))),
        Program((Instr.make(19, 63, 1),), (Instr.make(27, 1, 63, 63),), ()),
        Program((Instr.make(63, 63, consts=[0, 1]),), (Instr.make(34, 1, 63),),
                (Instr.make(63, 62, consts=[0, 1]),)),
        # element setters keep the rest of their output live: 57 after a whole write
        Program((Instr.make(19, 2, 3), Instr.make(57, 2, consts=[1, 5.0])),
                (Instr.make(27, 1, 2, 2),), ()),
        # a value carried from Learn into the next Predict
        Program((), (Instr.make(1, 1, 2, 2),), (Instr.make(1, 2, 0, 0), NOOP)),
        # s0 and v0 are written by the harness: a Setup write to them is dead
        Program((Instr.make(56, 0, consts=[3.0]), Instr.make(19, 0, 2)),
                (Instr.make(27, 1, 0, 0),), ()),
        # random ops with explicit slots after dead code
        Program(predict=canonical_slots(
            [Instr.make(1, 7, 2, 2), Instr.make(60, 3, consts=[0, 1]), Instr.make(27, 1, 3, 3)],
            [-1, 9, -1])),
    ]
    check_dce(cases)
    decoded, _, progs = native_dce_all(cases)
    assert decoded[0] == decoded[1] == decoded[3] == Program()
    assert [int(x) for x in progs[:4, 7]] == [0, 0, 1, 0]


def random_small_program(rng: np.random.Generator) -> Program:
    """A program from a tiny space (3 scalars, 2 vectors, 1 matrix, F=2, a few ops, short
    components, two constants), so that many programs share their dce'd form."""
    ops = [0, 1, 3, 16, 18, 21, 23, 27, 34, 56, 57, 58, 59, 62]
    mem = MemoryConfig(3, 2, 1, 2)

    def instr() -> Instr:
        op = OPS[int(rng.choice(ops))]
        ins = [int(rng.integers(0, mem.size(k))) for k in op.ins]
        out = int(rng.integers(0, mem.size(op.out))) if op.out is not None else 0
        return Instr.make(op, out, *ins, consts=[float(rng.integers(0, 2)) for _ in op.consts])

    parts = []
    for _ in range(3):
        body = [instr() for _ in range(int(rng.integers(0, 6)))]
        slots = [int(rng.integers(0, 3)) if ins.op in RANDOM and rng.random() < 0.3
                 else slot_at(ins, i) for i, ins in enumerate(body)]
        parts.append(canonical_slots(body, slots))
    return Program(*parts)


def test_hashes_are_equal_iff_the_dced_programs_are() -> None:
    rng = np.random.default_rng(20240611)
    programs = [random_small_program(rng) for _ in range(4000)]
    decoded, hashes, _ = native_dce_all(programs)
    by_program: dict[Program, tuple[int, int]] = {}
    sources: dict[Program, set[Program]] = {}
    for p, got, h in zip(programs, decoded, hashes):
        expected = dce(p)
        assert got == expected, f"{format_program(p)}\n{got!r}\n!= {expected!r}"
        pair = (int(h[0]), int(h[1]))
        assert by_program.setdefault(expected, pair) == pair, (
            f"equal dce'd programs with different hashes:\n{format_program(expected)}")
        sources.setdefault(expected, set()).add(p)
    merged = sum(len(s) > 1 for s in sources.values())  # forms reached from different programs
    assert len(by_program) > 1000 and merged > 100, (len(by_program), merged)
    for half in (0, 1):  # each 64-bit hash alone tells the distinct programs apart
        assert len({h[half] for h in by_program.values()}) == len(by_program)


@settings(max_examples=40, **SETTINGS)
@given(st.lists(azs.dce_programs(max_addresses=8, max_size=5), min_size=2, max_size=12))
def test_hashes_of_drawn_programs(programs: list[Program]) -> None:
    """Hash equality of the native DCE is equality of dce'd programs (drawn programs,
    plus each one's dce'd and optimized forms, which must hash like it when equal)."""
    batch = programs + [dce(p) for p in programs] + [optimize(p) for p in programs]
    _, hashes, _ = native_dce_all(batch)
    forms = [dce(p) for p in batch]
    for i in range(len(batch)):
        for j in range(i):
            assert (forms[i] == forms[j]) == bool((hashes[i] == hashes[j]).all()), (
                f"{format_program(batch[i])}\nand\n{format_program(batch[j])}")
