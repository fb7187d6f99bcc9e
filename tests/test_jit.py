"""Differential tests: compiled kernels against the reference interpreter.

Random programs over all 65 ops, random memory contents (NaN, ±inf, ±0, huge
and tiny values), feature sizes 1-32, and small random tasks of both kinds.
Results must be bitwise equal (every NaN equal to every NaN): the kernels
call the same C library functions as the interpreter, sum in the same order
and never contract products into FMAs.  A failing case is shrunk by
hypothesis and printed as a program.
"""

from __future__ import annotations

import numpy as np
import pytest
from azc._runtime import rng
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azc.backend.cache import KernelCache
from azc.backend.contracts import Layout
from azc.backend.jit import Compiler
from azc.evaluation import evaluate
from azc.frontend import parse_file
from azc.interp import Memory, _decode, evaluate_task, run_component
from azc.ir import Component, MemoryConfig, Program
from azc.ops import OPS
from azc.printer import format_program
from azc.tasks import load_tasks

from . import strategies as azs
from .test_frontend import EXAMPLES

COMPILER = Compiler(opt=1)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equal float64 arrays, any NaN equal to any NaN."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    na, nb = np.isnan(a), np.isnan(b)
    return bool(np.array_equal(na, nb)) and a[~na].tobytes() == b[~nb].tobytes()


def to_memory(buf: np.ndarray, mem: MemoryConfig) -> Memory:
    """The interpreter's memory holding the values of a kernel's buffer."""
    F = mem.features or 1
    m = Memory(mem, F)
    m.s[:], m.v[:], m.m[:] = Layout.of(mem, F).unpack(buf)
    return m


def flatten(m: Memory, mem: MemoryConfig) -> np.ndarray:
    """The interpreter's memory as a kernel's buffer."""
    return Layout.of(mem, m.features).pack(m.s, m.v, m.m)


KINDS = {Component.SETUP: rng.KIND_SETUP, Component.PREDICT: rng.KIND_PREDICT,
         Component.LEARN: rng.KIND_LEARN}


@st.composite
def component_case(draw: st.DrawFn):
    F = draw(st.one_of(st.integers(1, 5), st.sampled_from([8, 16, 32])))
    mem = MemoryConfig(draw(st.integers(2, 6)), draw(st.integers(1, 5)),
                       draw(st.integers(0, 3)), F)
    prog = draw(azs.programs(mem, max_size=6))
    buf = draw(azs.memory_contents(mem))
    comp = draw(st.sampled_from(list(Component)))
    seed = draw(st.integers(0, 2**64 - 1))
    return mem, prog, buf, comp, seed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(component_case())
def test_one_component_on_any_memory_matches_the_interpreter(case) -> None:
    mem, prog, buf, comp, seed = case
    kernel = COMPILER.compile_with_memory([prog], mem.features, [mem])[0]
    native = buf.copy()
    kernel.run_component(native, KINDS[comp], seed=seed, task=3, index=5)
    ref = to_memory(buf, mem)
    k_exec = rng.exec_key(rng.task_key(seed, 3), rng.exec_id(KINDS[comp], 5))
    with np.errstate(all="ignore"):
        run_component(_decode(prog[comp]), ref, k_exec)
    expected = flatten(ref, mem)
    agree = (native == expected) | (np.isnan(native) & np.isnan(expected))
    assert same(native, expected), (
        f"JIT and interpreter differ on {comp.title} with memory {mem}:\n"
        f"{format_program(prog)}\nfirst difference at index {int(np.flatnonzero(~agree)[0])}")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(azs.programs_on_tasks(max_features=8, max_size=6))
def test_whole_protocol_matches_the_interpreter(case) -> None:
    mem, prog, task, seed = case
    expected = evaluate_task(prog, task, mem, seed=seed, record=True, record_errors=True)
    kernel = COMPILER.compile_with_memory([prog], mem.features or 1, [mem])[0]
    got = kernel.run([task], seed=seed, record=True, record_errors=True)[0]
    where = f"\n{format_program(prog)}\non task {task.name} ({task.eval_type.name})"
    assert got.fitness == expected.fitness, f"fitness {got.fitness} != {expected.fitness}{where}"
    assert got.train_steps == expected.train_steps, where
    assert got.stopped_early == expected.stopped_early, where
    assert same(got.train_predictions, expected.train_predictions), where
    assert same(got.valid_predictions, expected.valid_predictions), where
    assert got.train_errors == pytest.approx(expected.train_errors, nan_ok=True), where
    assert got.valid_errors == pytest.approx(expected.valid_errors, nan_ok=True), where


@pytest.mark.parametrize("name", ["linear_sgd", "neural_net", "all_ops"])
@pytest.mark.parametrize("task_set", ["linear", "nonlinear"])
def test_examples_agree_on_builtin_tasks(name: str, task_set: str) -> None:
    prog = parse_file(EXAMPLES / f"{name}.az")
    tasks = load_tasks(task_set)[:3]
    mem = MemoryConfig(8, 9, 4)
    a = evaluate(prog, tasks, mem, record=True, seed=11)
    b = evaluate(prog, tasks, mem, record=True, seed=11, backend="jit")
    assert a.task_fitness == b.task_fitness
    for x, y in zip(a.tasks, b.tasks):
        assert same(x.train_predictions, y.train_predictions)
        assert same(x.valid_predictions, y.valid_predictions)


@pytest.mark.parametrize("op", [op.id for op in OPS if op.out is not None])
@pytest.mark.parametrize("F", [1, 3, 8, 16])
def test_every_op_alone_with_aliasing(op: int, F: int) -> None:
    """Each op with out == in1 == in2 where kinds allow, on a memory of special values."""
    o = OPS[op]
    mem = MemoryConfig(4, 3, 3, F)
    from azc.ir import Instr
    ins = Instr.make(o, 1, 1, 1, consts=[min(F - 1, 2), min(F - 1, 1), 0.75])
    prog = Program(setup=(ins,))
    values = np.random.default_rng(op).standard_normal(4 + 3 * F + 3 * F * F)
    values[::7] = np.array(azs.SPECIAL)[np.arange(values[::7].size) % len(azs.SPECIAL)]
    buf = Layout.of(mem, F).pack(values[:4], values[4:4 + 3 * F].reshape(3, F),
                                       values[4 + 3 * F:].reshape(3, F, F))
    kernel = COMPILER.compile_with_memory([prog], F, [mem])[0]
    native = buf.copy()
    kernel.run_component(native, 0, seed=9)
    ref = to_memory(buf, mem)
    with np.errstate(all="ignore"):
        run_component(_decode(prog.setup), ref, rng.exec_key(rng.task_key(9, 0), 0))
    assert same(native, flatten(ref, mem)), format_program(prog)


def test_batched_compile_gives_the_same_kernels() -> None:
    progs = [parse_file(EXAMPLES / f"{n}.az") for n in ("linear_sgd", "neural_net")]
    tasks = load_tasks("linear")[:2]
    kernels = COMPILER.compile_many(progs, 4)
    for prog, kern in zip(progs, kernels):
        mem = MemoryConfig.fitting(prog)
        ref = [evaluate_task(prog, t, mem, seed=2) for t in tasks]
        got = kern.run(tasks, seed=2)
        assert [r.fitness for r in ref] == [g.fitness for g in got]


def test_cache_hits_for_programs_differing_in_dead_code() -> None:
    cache = KernelCache(capacity=8)
    base = "def Setup():\n  s2 = 0.1\ndef Predict():\n  s1 = dot(v0, v1)\n"
    dead = base + "def Learn():\n  s3 = s2 * s2\n"
    from azc.frontend import parse
    k1 = cache.kernel(parse(base), 4)
    k2 = cache.kernel(parse(dead), 4)
    assert k1 is k2
    assert cache.stats.hits == 1 and cache.stats.misses == 1


def test_cache_evicts_and_frees_engines() -> None:
    from azc.frontend import parse
    cache = KernelCache(capacity=4, engine_size=2, max_engines=3)
    for i in range(20):
        cache.kernel(parse(f"def Predict():\n  s1 = dot(v0, v1)\n  s1 = s1 + s{i % 7 + 2}\n"
                           f"def Learn():\n  s{i % 7 + 2} = {i}.5\n"), 4)
    assert len(cache) <= 4
    assert len(cache.engines) <= 3
    assert cache.stats.engines_closed > 0 and cache.stats.evictions > 0
