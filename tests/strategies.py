"""Every hypothesis strategy of the test suite.

Programs are drawn over all 65 ops with addresses inside a memory
configuration, constants in their stored types (float64 for op 56, float32
for 57-64, element indices < F) and including special values (NaN, ±inf,
±0, huge and tiny numbers).
"""

from __future__ import annotations

from hypothesis import strategies as st

from azc.ir import Instr, MemoryConfig, Program, as_float32
from azc.ops import NUM_OPS, OPS, Const, Kind

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, float("inf"), float("-inf"), float("nan"), 1e300,
           -1e300, 5e-324, 1e-308, 3.0e38, -3.0e38, 1e-45]


def f64() -> st.SearchStrategy[float]:
    """Any float64, special values likely."""
    return st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True),
                     st.floats(-10, 10))


def f32() -> st.SearchStrategy[float]:
    """Any float32 value (as a Python float)."""
    return st.one_of(st.sampled_from(SPECIAL), st.floats(width=32),
                     st.floats(-2, 2, width=32)).map(as_float32)


def memories(max_features: int = 8) -> st.SearchStrategy[MemoryConfig]:
    """Memory configurations with a feature size."""
    return st.builds(MemoryConfig, st.integers(2, 8), st.integers(1, 6), st.integers(0, 4),
                     st.integers(1, max_features))


@st.composite
def instrs(draw: st.DrawFn, memory: MemoryConfig, ops: list[int] | None = None) -> Instr:
    """One valid instruction for the memory (ops drawn from `ops`, default all 65)."""
    choices = [o for o in (ops if ops is not None else range(NUM_OPS))
               if all(memory.size(k) > 0 for k in OPS[o].ins)
               and (OPS[o].out is None or memory.size(OPS[o].out) > 0)]
    op = OPS[draw(st.sampled_from(choices))]

    def addr(kind: Kind) -> int:
        return draw(st.integers(0, memory.size(kind) - 1))

    ins = [addr(k) for k in op.ins]
    out = addr(op.out) if op.out is not None else 0
    consts = []
    for kind in op.consts:
        if kind is Const.INDEX:
            consts.append(draw(st.integers(0, (memory.features or 1) - 1)))
        elif kind is Const.F32:
            consts.append(draw(f32()))
        else:
            consts.append(draw(f64()))
    return Instr.make(op, out, *ins, consts=consts)


@st.composite
def programs(draw: st.DrawFn, memory: MemoryConfig, max_size: int = 8,
             ops: list[int] | None = None) -> Program:
    """A valid program for the memory."""
    parts = [tuple(draw(st.lists(instrs(memory, ops), max_size=max_size))) for _ in range(3)]
    return Program(*parts)


@st.composite
def memory_and_program(draw: st.DrawFn, max_features: int = 8,
                       max_size: int = 8) -> tuple[MemoryConfig, Program]:
    """A memory configuration and a valid program for it."""
    mem = draw(memories(max_features))
    return mem, draw(programs(mem, max_size))
