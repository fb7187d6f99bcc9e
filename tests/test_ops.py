"""The op table and the reference semantics of every op, checked by hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from azc.interp import Memory, run_once
from azc.ir import Component, Instr, MemoryConfig, Program
from azc.ops import BY_NAME, NUM_OPS, OPS, Kind, lookup, op_by_name

NAN, INF = math.nan, math.inf

# The ids never change: they are the original's enum values.
PINNED = {0: "NO_OP", 1: "SCALAR_SUM", 4: "SCALAR_DIVISION", 15: "SCALAR_HEAVYSIDE",
          18: "SCALAR_VECTOR_PRODUCT", 21: "VECTOR_NORM", 27: "VECTOR_INNER_PRODUCT",
          31: "MATRIX_VECTOR_PRODUCT", 35: "MATRIX_COLUMN_NORM", 36: "MATRIX_ROW_NORM",
          43: "MATRIX_MATRIX_PRODUCT", 53: "MATRIX_ROW_ST_DEV", 56: "SCALAR_CONST_SET",
          57: "VECTOR_CONST_SET", 58: "MATRIX_CONST_SET", 64: "MATRIX_GAUSSIAN_SET"}


def test_table_has_65_ops_with_stable_ids() -> None:
    assert NUM_OPS == 65
    assert [o.id for o in OPS] == list(range(65))
    for i, name in PINNED.items():
        assert OPS[i].name == name
    assert len(BY_NAME) == 65


def test_every_op_has_semantics_cost_and_text() -> None:
    for op in OPS:
        assert callable(op.ref) and op.cost > 0 and op.template and op.doc


def test_random_ops_are_exactly_59_to_64() -> None:
    assert [o.id for o in OPS if o.random] == list(range(59, 65))


def test_arity_classes_match_the_spec() -> None:
    unary = set(range(5, 18)) | {19, 20, 21, 22, 30} | set(range(32, 39)) | set(range(50, 56))
    binary = set(range(1, 5)) | {18} | set(range(23, 30)) | {31} | set(range(39, 50))
    for op in OPS:
        expected = 2 if op.id in binary else 1 if op.id in unary else 0
        assert op.arity == expected, op.name


def test_op_by_name_accepts_the_original_enum_names() -> None:
    assert op_by_name("SCALAR_SUM_OP").id == 1
    assert op_by_name("scalar_sum").id == 1
    assert op_by_name("NO_OP").id == 0
    with pytest.raises(KeyError):
        op_by_name("SCALAR_POWER_OP")


def test_lookup_picks_the_op_by_operand_kinds() -> None:
    S, V, M = Kind.SCALAR, Kind.VECTOR, Kind.MATRIX
    assert lookup("*", (S, S), None).id == 3
    assert lookup("*", (S, V), None).id == 18
    assert lookup("*", (V, S), None).id == 18
    assert lookup("*", (M, S), None).id == 29
    assert lookup("*", (V, V), None).id == 25
    assert lookup("dot", (M, V), None).id == 31
    assert lookup("norm", (M,), 0).id == 35
    assert lookup("dot", (S, V), None) is None


# ---------------------------------------------------------------------------
# Hand-computed values.  F = 2 unless stated.
# ---------------------------------------------------------------------------

def run(op: int, *, s=None, v=None, m=None, out=3, in1=1, in2=2, consts=(), F=2,
        seed=0) -> Memory:
    """Run one instruction of op `op` in Setup on a memory with the given contents."""
    mem = Memory(MemoryConfig(4, 4, 4), F)
    for i, x in (s or {}).items():
        mem.s[i] = x
    for i, x in (v or {}).items():
        mem.v[i] = x
    for i, x in (m or {}).items():
        mem.m[i] = x
    prog = Program(setup=(Instr.make(op, out, in1, in2, consts=consts),))
    run_once(prog, Component.SETUP, mem, seed=seed)
    return mem


def same(a, b) -> bool:
    """Bitwise-equal float64 values or arrays (any NaN equals any NaN; -0 differs from 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return False
    return a[~np.isnan(a)].tobytes() == b[~np.isnan(b)].tobytes()


SCALAR_CASES = [
    # op, s1, s2, expected s3
    (1, 1.5, 2.25, 3.75),
    (1, INF, -INF, NAN),
    (2, 1.5, 2.25, -0.75),
    (3, -1.5, 2.0, -3.0),
    (4, 1.0, 0.0, INF),
    (4, -1.0, 0.0, -INF),
    (4, 0.0, 0.0, NAN),
    (4, 3.0, 2.0, 1.5),
    (5, -2.5, 0, 2.5),
    (5, -0.0, 0, 0.0),
    (6, 4.0, 0, 0.25),
    (6, 0.0, 0, INF),
    (6, -0.0, 0, -INF),
    (7, 0.0, 0, 0.0),
    (7, math.pi / 2, 0, 1.0),
    (7, INF, 0, NAN),
    (8, 0.0, 0, 1.0),
    (8, INF, 0, NAN),
    (9, 0.0, 0, 0.0),
    (9, math.pi / 4, 0, math.tan(math.pi / 4)),
    (10, 1.0, 0, math.pi / 2),
    (10, 1.5, 0, NAN),
    (11, 1.0, 0, 0.0),
    (11, -2.0, 0, NAN),
    (12, INF, 0, math.pi / 2),
    (12, 1.0, 0, math.pi / 4),
    (13, 0.0, 0, 1.0),
    (13, 1000.0, 0, INF),
    (13, -INF, 0, 0.0),
    (14, 1.0, 0, 0.0),
    (14, 0.0, 0, -INF),
    (14, -0.0, 0, -INF),
    (14, -1.0, 0, NAN),
    (14, INF, 0, INF),
    (15, 0.0, 0, 1.0),      # scalar heaviside: >= 0
    (15, -0.0, 0, 1.0),
    (15, -1e-300, 0, 0.0),
    (15, NAN, 0, 0.0),
    (44, 1.0, 2.0, 1.0),
    (44, NAN, 2.0, NAN),    # std::min returns the first operand on NaN
    (44, 2.0, NAN, 2.0),
    (44, 0.0, -0.0, 0.0),   # b < a is false: a
    (47, 1.0, 2.0, 2.0),
    (47, NAN, 2.0, NAN),
    (47, 2.0, NAN, 2.0),
    (47, -0.0, 0.0, -0.0),
]


@pytest.mark.parametrize("op,a,b,expected", SCALAR_CASES,
                         ids=[f"{OPS[c[0]].name}({c[1]},{c[2]})" for c in SCALAR_CASES])
def test_scalar_ops(op: int, a: float, b: float, expected: float) -> None:
    mem = run(op, s={1: a, 2: b})
    assert same(mem.s[3], expected), (mem.s[3], expected)


def test_transcendentals_are_the_c_library_functions() -> None:
    x = 0.7318
    for op, fn in [(7, math.sin), (8, math.cos), (9, math.tan), (10, math.asin),
                   (11, math.acos), (12, math.atan), (13, math.exp), (14, math.log)]:
        assert same(run(op, s={1: x}).s[3], fn(x))


V1, V2 = [1.0, -2.0], [3.0, 0.5]

VECTOR_CASES = [
    # op, v1, v2, expected v3
    (16, [0.0, 2.0], None, [0.0, 1.0]),          # vector heaviside: > 0
    (16, [-0.0, NAN], None, [0.0, 0.0]),
    (20, [2.0, 0.0], None, [0.5, INF]),
    (22, [-3.0, -0.0], None, [3.0, 0.0]),
    (23, V1, V2, [4.0, -1.5]),
    (24, V1, V2, [-2.0, -2.5]),
    (25, V1, V2, [3.0, -1.0]),
    (26, V1, [0.0, 4.0], [INF, -0.5]),
    (45, [1.0, NAN], [NAN, 0.0], [1.0, NAN]),    # min: first operand on NaN
    (45, [0.0, 5.0], [-0.0, 4.0], [0.0, 4.0]),
    (48, [1.0, NAN], [NAN, 0.0], [1.0, NAN]),    # max: first operand on NaN
    (48, [-1.0, 5.0], [0.0, 4.0], [0.0, 5.0]),
]


@pytest.mark.parametrize("op,a,b,expected", VECTOR_CASES,
                         ids=[f"{OPS[c[0]].name}-{i}" for i, c in enumerate(VECTOR_CASES)])
def test_vector_ops(op, a, b, expected) -> None:
    vs = {1: a} if b is None else {1: a, 2: b}
    mem = run(op, v=vs)
    assert same(mem.v[3], expected), (mem.v[3], expected)


MA = [[1.0, 2.0], [3.0, 4.0]]
MB = [[0.5, -1.0], [2.0, 0.0]]

MATRIX_CASES = [
    (17, MA, None, [[1.0, 1.0], [1.0, 1.0]]),
    (17, [[0.0, -1.0], [NAN, 1e-300]], None, [[0.0, 0.0], [0.0, 1.0]]),
    (30, MA, None, [[1.0, 0.5], [1 / 3, 0.25]]),
    (37, MA, None, [[1.0, 3.0], [2.0, 4.0]]),
    (38, [[-1.0, 2.0], [-0.0, -4.0]], None, [[1.0, 2.0], [0.0, 4.0]]),
    (39, MA, MB, [[1.5, 1.0], [5.0, 4.0]]),
    (40, MA, MB, [[0.5, 3.0], [1.0, 4.0]]),
    (41, MA, MB, [[0.5, -2.0], [6.0, 0.0]]),
    (42, MA, MB, [[2.0, -2.0], [1.5, INF]]),
    (43, MA, MB, [[4.5, -1.0], [9.5, -3.0]]),
    (46, [[1.0, NAN], [0.0, 5.0]], [[NAN, 2.0], [-0.0, 4.0]],
     [[NAN, 2.0], [-0.0, 4.0]]),                  # matrix min: second operand on NaN / ties
    (49, [[1.0, NAN], [0.0, 5.0]], [[NAN, 2.0], [-0.0, 4.0]],
     [[NAN, 2.0], [-0.0, 5.0]]),
]


@pytest.mark.parametrize("op,a,b,expected", MATRIX_CASES,
                         ids=[f"{OPS[c[0]].name}-{i}" for i, c in enumerate(MATRIX_CASES)])
def test_matrix_ops(op, a, b, expected) -> None:
    ms = {1: a} if b is None else {1: a, 2: b}
    mem = run(op, m=ms)
    assert same(mem.m[3], expected), (mem.m[3], expected)


def test_mixed_kind_ops() -> None:
    # 18: vc = sa * vb
    assert same(run(18, s={1: 2.0}, v={2: V1}).v[3], [2.0, -4.0])
    # 19: broadcast
    assert same(run(19, s={1: -0.5}).v[3], [-0.5, -0.5])
    # 21: vector norm
    assert same(run(21, v={1: [3.0, 4.0]}).s[3], 5.0)
    assert same(run(21, v={1: [1e200, 1e200]}).s[3], INF)  # plain sqrt of the sum: overflows
    # 27: inner product
    assert same(run(27, v={1: V1, 2: V2}).s[3], 2.0)
    # 28: outer product
    assert same(run(28, v={1: V1, 2: V2}).m[3], [[3.0, 0.5], [-6.0, -1.0]])
    # 29: sc * mb
    assert same(run(29, s={1: 2.0}, m={2: MA}).m[3], [[2.0, 4.0], [6.0, 8.0]])
    # 31: matrix-vector product
    assert same(run(31, m={1: MA}, v={2: V2}).v[3], [4.0, 11.0])
    # 32: every column equals the vector; 33: every row equals it
    assert same(run(32, v={1: V1}).m[3], [[1.0, 1.0], [-2.0, -2.0]])
    assert same(run(33, v={1: V1}).m[3], [[1.0, -2.0], [1.0, -2.0]])
    # 34: Frobenius norm; 35: column norms; 36: row norms
    assert same(run(34, m={1: [[1.0, 2.0], [2.0, 4.0]]}).s[3], 5.0)
    assert same(run(35, m={1: [[3.0, 0.0], [4.0, 1.0]]}).v[3], [5.0, 1.0])
    assert same(run(36, m={1: [[3.0, 4.0], [0.0, 1.0]]}).v[3], [5.0, 1.0])
    # 50-55: means and one-pass standard deviations
    assert same(run(50, v={1: V1}).s[3], -0.5)
    assert same(run(51, m={1: MA}).s[3], 2.5)
    assert same(run(52, m={1: MA}).v[3], [1.5, 3.5])
    assert same(run(53, m={1: [[1.0, 3.0], [2.0, 2.0]]}).v[3], [1.0, 0.0])
    assert same(run(54, v={1: [1.0, 3.0]}).s[3], 1.0)
    assert same(run(55, m={1: [[1.0, 3.0], [1.0, 3.0]]}).s[3], 1.0)


def test_one_pass_std_can_give_nan_for_constant_input() -> None:
    # E[x^2] - E[x]^2 for x = 0.1 three times is a tiny negative number: sqrt gives NaN.
    x = [0.1, 0.1, 0.1]
    mean = (0.1 + 0.1 + 0.1) / 3
    radicand = (0.1 * 0.1 + 0.1 * 0.1 + 0.1 * 0.1) / 3 - mean * mean
    assert radicand < 0
    assert math.isnan(run(54, v={1: x}, F=3).s[3])
    assert math.isnan(run(53, m={1: [x, x, x]}, F=3).v[3][0])
    y = [0.3, 0.3, 0.3]  # for the 9 entries of a matrix, 0.3 gives a negative radicand
    assert math.isnan(run(55, m={1: [y, y, y]}, F=3).s[3])
    assert run(55, m={1: [x, x, x]}, F=3).s[3] > 0  # and 0.1 a tiny positive one


def test_sums_run_left_to_right() -> None:
    # (1e16 + 1) + -1e16 = 0 left to right; a pairwise or reordered sum could give 1 or 2.
    v = [1e16, 1.0, -1e16, 1.0]
    assert same(run(27, v={1: v, 2: [1.0] * 4}, F=4).s[3], 1.0)
    assert same(run(50, v={1: v}, F=4).s[3], 0.25)


def test_setters() -> None:
    assert same(run(56, consts=[0.1]).s[3], 0.1)
    mem = run(57, v={3: [7.0, 8.0]}, consts=[1, 0.1])
    assert same(mem.v[3], [7.0, float(np.float32(0.1))])  # float32 constant, others kept
    mem = run(58, m={3: MA}, consts=[1, 0, -2.5])
    assert same(mem.m[3], [[1.0, 2.0], [-2.5, 4.0]])


@pytest.mark.parametrize("op,kind", [(59, "s"), (60, "v"), (61, "m")])
def test_uniform_ops(op: int, kind: str) -> None:
    mem = run(op, consts=[-0.5, 0.25], F=3)
    vals = np.atleast_1d(getattr(mem, kind)[3]).ravel()
    assert vals.size == {"s": 1, "v": 3, "m": 9}[kind]
    assert np.all((vals > -0.5) & (vals < 0.25))
    assert len(set(vals.tolist())) == vals.size
    # empty interval (lo >= hi): the low bound, deterministically
    mem = run(op, consts=[0.75, -0.25], F=3)
    assert np.all(np.atleast_1d(getattr(mem, kind)[3]) == 0.75)


@pytest.mark.parametrize("op,kind", [(62, "s"), (63, "v"), (64, "m")])
def test_gaussian_ops(op: int, kind: str) -> None:
    mem = run(op, consts=[2.0, 0.0], F=3)
    assert np.all(np.atleast_1d(getattr(mem, kind)[3]) == 2.0)  # std 0 gives the mean
    a = np.atleast_1d(run(op, consts=[0.0, 1.0], F=3).m[3] if kind == "m" else
                      getattr(run(op, consts=[0.0, 1.0], F=3), kind)[3])
    b = np.atleast_1d(run(op, consts=[0.0, -1.0], F=3).m[3] if kind == "m" else
                      getattr(run(op, consts=[0.0, -1.0], F=3), kind)[3])
    assert same(a, -b)  # a negative std flips the noise


def test_random_draws_depend_on_seed_but_are_reproducible() -> None:
    a = run(64, consts=[0.0, 1.0], F=8, seed=1).m[3]
    b = run(64, consts=[0.0, 1.0], F=8, seed=1).m[3]
    c = run(64, consts=[0.0, 1.0], F=8, seed=2).m[3]
    assert same(a, b) and not same(a, c)
    assert abs(a.mean()) < 0.5 and 0.6 < a.std() < 1.4


def test_gaussian_draws_have_the_right_distribution() -> None:
    mem = run(63, consts=[1.0, 2.0], F=4000)
    x = mem.v[3]
    assert abs(x.mean() - 1.0) < 0.15 and abs(x.std() - 2.0) < 0.15
    mem = run(60, consts=[-1.0, 3.0], F=4000)
    assert abs(mem.v[3].mean() - 1.0) < 0.1


ALIASING = [
    # op, setup memory, the aliased instruction (out == an input), expected
    (43, {"m": {1: MA}}, dict(out=1, in1=1, in2=1), [[7.0, 10.0], [15.0, 22.0]]),
    (37, {"m": {1: MA}}, dict(out=1, in1=1), [[1.0, 3.0], [2.0, 4.0]]),
    (31, {"m": {1: MA}, "v": {1: V2}}, dict(out=1, in1=1, in2=1), [4.0, 11.0]),
    (28, {"v": {1: V1}}, dict(out=1, in1=1, in2=1), [[1.0, -2.0], [-2.0, 4.0]]),
]


@pytest.mark.parametrize("op,init,fields,expected", ALIASING, ids=lambda x: str(x)[:12])
def test_aliasing_computes_from_old_values(op, init, fields, expected) -> None:
    kind = OPS[op].out.letter
    mem = run(op, s=init.get("s"), v=init.get("v"), m=init.get("m"), **fields)
    assert same(getattr(mem, kind)[fields["out"]], expected)


def test_op_reference_doc_is_up_to_date() -> None:
    from pathlib import Path

    from azc.opdoc import op_reference
    doc = Path(__file__).resolve().parents[1] / "docs" / "ops.md"
    assert doc.read_text() == op_reference(), "docs/ops.md is stale: run `azc ops --markdown`"
