"""The mixed tier: compiled Predict/Learn run by the native interpreter, vs the reference."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azc.backend.components import ComponentKernels, CostModel, attach
from azc.backend.native import Encoded, interpreter
from azc.interp import evaluate_task
from azc.ops import OPS, PAIRED_OPS
from azc.passes import dce
from azc.printer import format_program

from . import strategies as azs
from .test_jit import same


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(azs.programs_on_tasks(max_features=16, max_size=6))
def test_compiled_components_match_the_reference(case) -> None:
    mem, prog, task, seed = case
    F = mem.features or 1
    live = dce(prog)
    ck = ComponentKernels(mem, F)
    ck.cost.compile_seconds = -1.0  # always compile
    enc = Encoded.of([live])
    assert attach(ck, enc, 10**9) == 1
    assert enc.progs[0, 8]
    out = interpreter(mem, F).run_batch(enc, [task], np.array([seed], dtype=np.uint64))
    ref = evaluate_task(prog, task, mem, seed=seed)
    assert out[0, 0, 0] == ref.fitness or same(out[0, 0, 0], ref.fitness), format_program(prog)
    assert int(out[0, 0, 1]) == ref.train_steps
    ck.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(st.data())
def test_paired_loops_on_several_tasks_match_the_reference(data) -> None:
    """Several tasks: the driver runs two in a row of the same shape together in paired
    loops (one may stop early, or end its validation, while the other goes on), and the
    others in compiled or interpreted loops."""
    from azc.backend import contracts, kernels
    mem, prog = data.draw(azs.pass_programs(max_features=8, max_size=6, paired=True))
    F = mem.features or 1
    tasks = data.draw(azs.task_lists(F))
    seed = data.draw(st.integers(0, 2**32 - 1))
    maxerr = data.draw(st.sampled_from([100.0, 2.0, 1.5, 0.5]))  # 1.5: 1 + |y| on both sides
    live = dce(prog)
    ck = ComponentKernels(mem, F)
    ck.cost.compile_seconds = -1.0
    enc = Encoded.of([live])
    assert attach(ck, enc, 10**9, paired=True) == 1
    slot = contracts.ProgSlot
    assert enc.progs[0, slot.PAIRED_LOOPS if kernels.pairable(live.predict, live.learn)
                     else slot.LOOPS]
    seeds = np.array([seed], dtype=np.uint64)
    out = interpreter(mem, F).run_batch(enc, tasks, seeds, maxerr)
    plain = interpreter(mem, F).run_batch(Encoded.of([live]), tasks, seeds, maxerr)
    for t, task in enumerate(tasks):
        ref = evaluate_task(prog, task, mem, seed=seed, max_abs_error=maxerr)
        why = f"task {t} of {len(tasks)}\n{format_program(prog)}"
        assert same(out[0, t, 0], ref.fitness), why
        assert int(out[0, t, 1]) == ref.train_steps, why
        assert bool(out[0, t, 2]) == ref.stopped_early, why
        assert np.array_equal(out[0, t, 1:6], plain[0, t, 1:6]), why  # valid predictions too
    ck.close()


def test_paired_loops_keep_the_best_epoch_of_a_task_that_stops_later() -> None:
    """Two tasks in paired loops: one stops early in its second epoch (its first
    epoch's fitness stays), the other in its first (fitness 0), as alone."""
    from azc.frontend import parse
    from azc.ir import MemoryConfig
    from azc.tasks.task import Task
    prog = parse("def Setup():\n  s3 = 0.3\ndef Predict():\n  s1 = s2 + s0\n"
                 "def Learn():\n  s2 = s2 + s3\n")
    mem = MemoryConfig(4, 1, 0, 2)
    x = np.zeros((4, 2))
    order = np.tile(np.arange(4), (3, 1))
    # s1 = 0.3 t at training step t: the error passes maxerr 1 at t = 4 (epoch 2); the
    # first task's validation labels match the prediction after epoch 1, the second's not
    tasks = [Task(x, np.zeros(4), x[:2], np.full(2, vy), num_train_epochs=3, train_order=order,
                  index=i) for i, vy in enumerate((1.2, 5.0))]
    ck = ComponentKernels(mem, 2)
    ck.cost.compile_seconds = -1.0
    enc = Encoded.of([prog])
    assert attach(ck, enc, 10**9, paired=True) == 1 and enc.progs[0, 9]
    out = interpreter(mem, 2).run_batch(enc, tasks, np.zeros(1, dtype=np.uint64), 1.0)
    for t, task in enumerate(tasks):
        ref = evaluate_task(prog, task, mem, max_abs_error=1.0)
        assert ref.stopped_early and ref.train_steps == 5
        assert (out[0, t, 0], out[0, t, 1], out[0, t, 2]) == (ref.fitness, 5, 1.0)
    assert out[0, 0, 0] > 0.99 and out[0, 1, 0] == 0.0
    ck.close()


def test_kernels_are_shared_by_programs_with_the_same_predict_and_learn() -> None:
    from azc.frontend import parse
    from azc.ir import MemoryConfig
    a = parse("def Setup():\n  s2 = 0.1\ndef Predict():\n  s1 = dot(v0, v1)\n"
              "def Learn():\n  s3 = s0 - s1\n  s3 = s3 * s2\n  v2 = s3 * v0\n  v1 = v1 + v2\n")
    b = parse("def Setup():\n  s2 = 0.3\ndef Predict():\n  s1 = dot(v0, v1)\n"
              "def Learn():\n  s3 = s0 - s1\n  s3 = s3 * s2\n  v2 = s3 * v0\n  v1 = v1 + v2\n")
    ck = ComponentKernels(MemoryConfig(4, 3, 1), 4)
    ck.cost.compile_seconds = -1.0
    enc = Encoded.of([a, b])
    assert attach(ck, enc, 10**9) == 2
    assert ck.compiled == 1  # one kernel for both: only Setup differs
    assert enc.progs[:, 8].all() and not enc.progs[:, 9].any()
    # tasks in pairs get paired loops, a kernel of their own; single loops stay for others
    paired = Encoded.of([a, b])
    assert attach(ck, paired, 10**9, paired=True) == 2 and ck.compiled == 2
    assert paired.progs[:, 9].all() and not paired.progs[:, 8].any()
    again = Encoded.of([a])
    assert attach(ck, again, 10**9) == 1 and again.progs[0, 8] and ck.compiled == 2
    ck.close()


def test_cost_model_compiles_only_when_it_pays() -> None:
    from azc.frontend import parse
    cost = CostModel(compile_seconds=0.02)
    p = parse("def Setup():\ndef Predict():\n  s1 = dot(v0, v1)\ndef Learn():\n"
              "  v2 = s0 * v0\n  v1 = v1 + v2\n")
    saved = cost.saved_ns(p.predict, p.learn, 16)
    assert 20 < saved < 80
    assert not cost.pays(2_000, saved, 0)            # the demo's 10 tasks of 100 + 100
    assert cost.pays(900_000, saved, 0)              # 100 tasks of 8000 + 1000
    assert not cost.pays(90_000, saved, 0) and not cost.pays(90_000, saved, 1)
    assert cost.pays(90_000, saved, 8)               # code that keeps coming back
    m = parse("def Setup():\ndef Predict():\n  v1 = dot(m0, v0)\n  s1 = dot(v0, v1)\n"
              "def Learn():\n  m1 = outer(v0, v1)\n  m0 = m0 + m1\n")
    # matrix ops run the same loops in both tiers: compiling saves less per op
    assert cost.saved_ns(m.predict, m.learn, 16) < saved + 10
    assert (OPS[43].interp_ns(16) > OPS[31].interp_ns(16) > OPS[23].interp_ns(16)
            > OPS[1].interp_ns(16))


def test_tasks_that_record_run_interpreted_with_the_same_results() -> None:
    """Compiled loops never record: a run that records errors falls back to interpretation."""
    from azc.frontend import parse
    from azc.ir import MemoryConfig
    from azc.tasks import build_tasks
    from azc.tasks.spec import TaskSpec
    p = parse("def Setup():\n  s2 = 0.1\ndef Predict():\n  s1 = dot(v0, v1)\n"
              "def Learn():\n  s3 = s0 - s1\n  s3 = s3 * s2\n  v2 = s3 * v0\n  v1 = v1 + v2\n")
    mem = MemoryConfig(4, 3, 1)
    tasks = build_tasks([TaskSpec("scalar_linear_regression", features_size=4,
                                  num_train_examples=50,
                                  num_valid_examples=20, num_tasks=2)])
    ck = ComponentKernels(mem, 4)
    ck.cost.compile_seconds = -1.0
    plain, compiled = Encoded.of([p]), Encoded.of([p])
    assert attach(ck, compiled, 10**9) == 1
    interp = interpreter(mem, 4)
    seeds = np.array([3], dtype=np.uint64)
    errs = [(np.zeros((1, 2, 50)), np.zeros((1, 2, 50))) for _ in range(2)]
    a = interp.run_batch(plain, tasks, seeds, errors=errs[0])
    b = interp.run_batch(compiled, tasks, seeds, errors=errs[1])
    c = interp.run_batch(compiled, tasks, seeds)
    assert np.array_equal(a[:, :, :6], b[:, :, :6]) and np.array_equal(a[:, :, :2], c[:, :, :2])
    assert np.array_equal(errs[0][0], errs[1][0]) and np.array_equal(errs[0][1], errs[1][1])
    assert errs[1][0].any() and errs[1][1].any()
    ck.close()


def test_sigmoid_unread_finds_where_the_training_sigmoid_is_never_read() -> None:
    from azc.backend.kernels import sigmoid_unread
    from azc.frontend import parse

    def unread(predict: str, learn: str) -> bool:
        p = parse(f"def Setup():\ndef Predict():\n  {predict}\ndef Learn():\n  {learn}\n")
        return sigmoid_unread(p.predict, p.learn)
    assert unread("s1 = dot(v0, v1)", "v1 = s0 * v0")
    assert not unread("s1 = dot(v0, v1)", "s3 = s0 - s1")
    assert unread("s1 = dot(v0, v1)", "s1 = s0 * s0\n  s2 = s1 + s1")
    assert not unread("v1 = v0 + v1", "v1 = s0 * v0")          # the prediction is the sigmoid
    assert not unread("s2 = s1 + s0\n  s1 = dot(v0, v1)", "v1 = s0 * v0")
    assert not unread("s1 = s1 + s0", "v1 = s0 * v0")


@settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(azs.programs_on_tasks(max_features=8, max_size=6))
def test_compiled_loops_without_the_sigmoid_match_the_reference(case) -> None:
    """Accuracy tasks, programs whose training sigmoid is never read (NaN included)."""
    from hypothesis import assume

    from azc.backend.kernels import sigmoid_unread
    from azc.tasks.task import EvalType
    mem, prog, task, seed = case
    live = dce(prog)
    assume(task.eval_type is EvalType.ACCURACY and sigmoid_unread(live.predict, live.learn))
    F = mem.features or 1
    ck = ComponentKernels(mem, F)
    ck.cost.compile_seconds = -1.0
    enc = Encoded.of([live])
    assert attach(ck, enc, 10**9) == 1
    for maxerr in (100.0, 0.5):  # 0.5: |y| + 1 > maxerr, the exact path
        out = interpreter(mem, F).run_batch(enc, [task], np.array([seed], dtype=np.uint64),
                                            maxerr)
        ref = evaluate_task(prog, task, mem, seed=seed, max_abs_error=maxerr)
        assert same(out[0, 0, 0], ref.fitness), format_program(prog)
        assert int(out[0, 0, 1]) == ref.train_steps
    ck.close()


def test_accuracy_around_the_sign_shortcut_matches_the_reference() -> None:
    """Validation on accuracy tasks decides sigmoid(s1) > 0.5 by the sign of s1 when
    |s1| > 1e-6: predictions around that bound, zeros, subnormals, inf and NaN give
    the reference's per-example errors in the interpreter, the mixed tier and the JIT."""
    from azc.backend.jit import Compiler, TaskBatch
    from azc.frontend import parse
    from azc.ir import MemoryConfig
    from azc.tasks.task import EvalType, Task
    p = parse("def Setup():\ndef Predict():\n  s1 = mean(v0)\ndef Learn():\n  s2 = s0 + s0\n")
    near = [1e-6, -1e-6, np.nextafter(1e-6, 1), np.nextafter(-1e-6, -1), np.nextafter(1e-6, 0),
            2e-6, -2e-6, 1e-7, -1e-7, 1e-16, -1e-16, 1.1e-16, 2.3e-16, 5e-324, -5e-324, 0.0,
            -0.0, np.inf, -np.inf, np.nan, 3.0, -3.0, 800.0, -800.0]
    vx = np.array(near)[:, None]
    vy = np.ones(len(near))      # the fitness counts the predictions found positive
    task = Task(np.ones((3, 1)), np.ones(3), vx, vy, EvalType.ACCURACY)
    mem = MemoryConfig(4, 2, 1)
    ref = evaluate_task(p, task, mem, record=True, record_errors=True)
    enc = Encoded.of([p])
    ck = ComponentKernels(mem, 1)
    ck.cost.compile_seconds = -1.0
    compiled = Encoded.of([p])
    assert attach(ck, compiled, 10**9) == 1
    interp = interpreter(mem, 1)
    seeds = np.zeros(1, dtype=np.uint64)
    tr, va = np.zeros((1, 1, len(vx))), np.zeros((1, 1, len(vx)))
    out = interp.run_batch(enc, [task], seeds, errors=(tr, va))
    assert same(va[0, 0], ref.valid_errors) and same(out[0, 0, 0], ref.fitness)
    assert same(interp.run_batch(compiled, [task], seeds)[0, 0, 0], ref.fitness)
    kernel = Compiler().compile_with_memory([p], 1, [mem])[0]
    assert same(TaskBatch([task], 1).fitness(kernel, 0)[0], ref.fitness)
    assert ref.valid_errors is not None and 0 < sum(ref.valid_errors) < len(near)
    ck.close()


def _paired_op_runner(ins, mem, F):
    """(single, paired): ctypes functions running one instruction on a memory buffer of
    the layout, and on a paired buffer (`emit.PairEmit`)."""
    import ctypes

    from azc.backend import contracts, emitters, kernels
    from azc.backend.jit import Compiler
    layout = contracts.Layout.of(mem, F)
    text = "\n".join([
        emitters.declarations(F, paired=True),
        emitters.op_function(OPS[ins.op], F), emitters.op_function(OPS[ins.op], F, paired=True),
        kernels.component_function("one", [ins], layout),
        kernels.component_function("two", [ins], layout, paired=True),
        "define void @run1(ptr %m) {\n  call void @one(ptr %m, i64 0)\n  ret void\n}",
        "define void @run2(ptr %m) {\n  call void @two(ptr %m, i64 0)\n  ret void\n}"])
    compiler = Compiler(opt=1)
    engine, addrs, _ = compiler.compile_text(text, ["run1", "run2"])
    fn = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    return fn(addrs[0]), fn(addrs[1]), engine


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(PAIRED_OPS)),
       st.sampled_from([1, 2, 3, 4, 8, 16]), st.integers(0, 2**32 - 1))
def test_paired_op_bodies_compute_each_task_as_alone(op, F, seed) -> None:
    """Every op with a paired body, on two memories of special and random values
    interleaved: each half of the result is, bit for bit, the op run on that memory."""
    from azc.backend import contracts
    from azc.ir import Instr, MemoryConfig
    from azc.ops import OPS
    rng_ = np.random.default_rng(seed)
    mem = MemoryConfig(4, 3, 0, F)
    layout = contracts.Layout.of(mem, F)
    o = OPS[op]
    addr = [int(rng_.integers(0, 3)) for _ in range(3)]  # aliasing often
    consts = [F - 1 - int(rng_.integers(0, F)) // 2, float(rng_.standard_normal()), 0.0]
    ins = Instr.make(o, *addr, consts=consts)
    one, two, engine = _paired_op_runner(ins, mem, F)
    n = layout.matrix_base
    bufs = []
    for _ in range(2):
        b = np.zeros(max(layout.size, 1))
        vals = rng_.standard_normal(n) * 10.0 ** rng_.integers(-3, 4, n)
        special = rng_.random(n) < 0.3
        vals[special] = rng_.choice(azs.SPECIAL, int(special.sum()))
        b[:n] = vals
        bufs.append(b)
    paired = np.empty(2 * n)
    paired[0::2], paired[1::2] = bufs[0][:n], bufs[1][:n]
    for b in bufs:
        with np.errstate(all="ignore"):
            one(b.ctypes.data)
    two(paired.ctypes.data)
    assert same(paired[0::2], bufs[0][:n]) and same(paired[1::2], bufs[1][:n]), repr(ins)
    engine.close()
