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
    assert enc.progs[0, 8] and enc.progs[0, 9]
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
