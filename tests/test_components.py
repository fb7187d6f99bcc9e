"""The mixed tier: compiled Predict/Learn run by the native interpreter, vs the reference."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings

from azc.backend.components import ComponentKernels, CostModel, attach, op_ns
from azc.backend.native import Encoded, interpreter
from azc.interp import evaluate_task
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
    ck.close()


def test_cost_model_compiles_only_when_it_pays() -> None:
    cost = CostModel(compile_seconds=0.02)
    assert not cost.pays(2_000, 50.0, 0, 4)         # the demo's 10 tasks of 100 + 100
    assert cost.pays(900_000, 150.0, 0, 16)         # 100 tasks of 8000 + 1000 at F=16
    assert not cost.pays(90_000, 60.0, 0, 16) and cost.pays(90_000, 60.0, 10, 16)
    assert op_ns(43, 16) > op_ns(31, 16) > op_ns(23, 16) > op_ns(1, 16)


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
    from azc.backend.lower import sigmoid_unread
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

    from azc.backend.lower import sigmoid_unread
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
