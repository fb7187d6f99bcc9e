"""THE op table: the single source of truth for all 65 ops of AutoML-Zero.

Each row gives an op's stable id (the original's enum value), its name, the
kinds of its operands and result, its canonical text, what its constants mean,
whether it draws random numbers, its cost (for the train budget), and its
reference semantics.  The parser, the printer, the interpreter, constant
folding, the LLVM lowering, the mutator and the generated docs all read this
table; no other list of ops exists anywhere.

Facts a stage needs are fields or properties of a row, or named groups the
table defines: `params` (one `Param` per constant slot: what it holds, how a
random instruction draws it, how the mutator alters it), `random`, `is_set`,
`paired`, `libm`, `cost`, `out_size`/`values_per_draw` of random ops; the
named ops `NO_OP` and `SCALAR_CONST`; the groups `RANDOM_OPS`, `PAIRED_OPS`,
`SETTERS` (live sets of ids) and `OpColumn`s (per-op values
indexed by id, for hot loops).  `extended(row(...))` appends ops for a block
and restores the table after it; groups, columns and `on_change` listeners
(caches of generated code, the emitter registry) follow.

Reference semantics are pure functions `ref(a, b, k, F, rand) -> value`:
`a`, `b` are the input values (numpy float64 scalars, F-vectors or F x F
matrices; for the element setters 57/58, `a` is the old value of the output),
`k` the instruction's constants `(c0, c1, c2)`, `F` the feature size and
`rand(n)` a source of n open-interval uniforms for the instruction (random ops
only).  They are the living definition of every op:

* IEEE float64 everywhere, no guards: 1/0 = inf, log(-1) = NaN, ...
* Sums run left to right, starting from the first element (so a sum is
  exactly `cumsum(x)[-1]`); products inside dot/matvec/matmul are rounded
  one by one (no FMA).  Matrices are row-major.
* Transcendental functions are the C library's (Python's `math` module),
  so compiled code that calls libm agrees bit for bit.
* The standard deviations use the one-pass formula sqrt(E[x^2] - E[x]^2),
  which may give NaN for constant inputs.
* Scalar and vector min/max return the first operand when a comparison
  involves NaN (`b < a ? b : a`, `a < b ? b : a`); matrix min/max return the
  second (`a < b ? a : b`, `a > b ? a : b`).
* Heaviside: the scalar op is `a >= 0`, the vector and matrix ops `a > 0`.

This module imports only numpy, math and azc._runtime.rng.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

import numpy as np

from azc.resources import ensure_aliases

ensure_aliases()
from azc._runtime import rng as _rng  # noqa: E402


class Kind(IntEnum):
    """The three kinds of memory."""

    SCALAR = 0
    VECTOR = 1
    MATRIX = 2

    @property
    def letter(self) -> str:
        """The address prefix: s, v or m."""
        return "svm"[self]

    @property
    def word(self) -> str:
        """The kind's name in messages."""
        return ("scalar", "vector", "matrix")[self]


S, V, M = Kind.SCALAR, Kind.VECTOR, Kind.MATRIX


class Const(IntEnum):
    """What a constant field of an instruction holds."""

    F64 = 0    # a float64 value (the scalar constant setter)
    F32 = 1    # a float32 value, rounded when stored (element setters, random setters)
    INDEX = 2  # an element index 0 <= i < F (element setters)


Ref = Callable[[Any, Any, tuple, int, Any], Any]


def as_float32(x: float) -> float:
    """x rounded to float32 (and widened back to a Python float)."""
    with np.errstate(over="ignore"):
        return float(np.float32(x))


class Draws(Protocol):
    """The search's random source as a parameter rule uses it (azc.search.random)."""

    def random(self) -> float: ...
    def integer(self, n: int) -> int: ...
    def uniform(self, lo: float, hi: float) -> float: ...
    def open_uniform(self, lo: float, hi: float) -> float: ...


Scale = Callable[[float, Any], float]  # the mutator's random factor: scale(value, rnd)

FLIP_PROB = 0.1  # an alteration negates a flippable constant this often (else it scales it)


@dataclass(frozen=True)
class Param:
    """One constant slot of an op: what it holds, how a random instruction draws it
    (the original's SetOpAndRandomizeParams) and how the mutator alters it (AlterData).

    * INDEX: drawn uniformly in [0, F) (the original's fraction f ~ U[0, 1) stored as
      floor(F * f)); an alteration draws a new index.
    * F64 / F32: drawn uniformly in [lo, hi) (the open interval (lo, hi) with `open`),
      rounded to float32 for F32; an alteration negates the value with probability
      FLIP_PROB (only if `flip`), otherwise multiplies it by the mutator's random factor.
    """

    store: Const
    name: str = "x"        # its placeholder in docs (x, lo, hi, mean, std, i, j)
    lo: float = -1.0
    hi: float = 1.0
    open: bool = False     # the draw excludes lo
    flip: bool = True      # an alteration may negate it (a standard deviation only scales)

    def draw(self, rnd: Draws, F: int) -> float:
        """One fresh value (consumes exactly one draw of rnd, or more for `open` rejects)."""
        if self.store is Const.INDEX:
            return float(rnd.integer(F))
        x = rnd.open_uniform(self.lo, self.hi) if self.open else rnd.uniform(self.lo, self.hi)
        return as_float32(x) if self.store is Const.F32 else x

    def draw_many(self, g: np.random.Generator, F: int, k: int) -> np.ndarray:
        """k fresh values at once from a numpy generator (the bulk form of `draw`; an open
        interval maps the rare draws of lo to the midpoint)."""
        if self.store is Const.INDEX:
            return g.integers(0, F, k)
        x = g.uniform(self.lo, self.hi, k)
        if self.open:
            x[x == self.lo] = (self.lo + self.hi) / 2
        return x.astype(np.float32).astype(np.float64) if self.store is Const.F32 else x

    def alter(self, value: float, rnd: Draws, F: int, scale: Scale) -> float:
        """The value after one alteration."""
        if self.store is Const.INDEX:
            return float(rnd.integer(F))
        x = -value if self.flip and rnd.random() < FLIP_PROB else scale(value, rnd)
        return as_float32(x) if self.store is Const.F32 else x


@dataclass(frozen=True)
class Op:
    """One row of the op table."""

    id: int
    name: str                      # the original's enum name without _OP
    ins: tuple[Kind, ...]          # operand kinds, in1 then in2
    out: Kind | None               # result kind (None for NO_OP)
    template: str                  # canonical text; {c} {a} {b} {k0} {k1} {k2}
    func: str                      # surface key: operator, function name or setter form
    params: tuple[Param, ...]      # the constants c0, c1, c2 (prefix): storage, draw, alter
    random: bool                   # draws from the random generator
    cost: int                      # relative cost [compute_cost.cc], for the train budget
    ref: Ref                       # reference semantics
    doc: str                       # one-line meaning
    axis: int | None = None        # the axis= keyword of the canonical text
    swappable: bool = False        # also accepted with operands swapped (ops 18, 29)
    paired: bool = False           # has a body on two tasks' interleaved memory (PairEmit)
    libm: str | None = None        # the C-library function it is (scalar transcendental ops)
    ordered: bool = False          # an alteration keeps c0 <= c1 (a uniform's bounds)
    values_per_draw: int = 1       # uniforms a random op takes per output element

    @property
    def consts(self) -> tuple[Const, ...]:
        """What c0, c1, c2 hold (prefix)."""
        return tuple(p.store for p in self.params)

    @property
    def arity(self) -> int:
        """Number of input addresses (0, 1 or 2)."""
        return len(self.ins)

    @property
    def is_set(self) -> bool:
        """A setter: writes constants or random values, reads no input."""
        return self.out is not None and not self.ins

    @property
    def partial_write(self) -> bool:
        """Writes one element and keeps the rest of its output (the element setters)."""
        return Const.INDEX in self.consts

    @property
    def touches_matrices(self) -> bool:
        """Reads or writes a matrix."""
        return Kind.MATRIX in self.ins or self.out is Kind.MATRIX

    def out_size(self, F: int) -> int:
        """Number of elements of the output at feature size F (1, F or F * F)."""
        assert self.out is not None
        return F ** int(self.out)

    def draws(self, F: int) -> int:
        """Number of values a random op draws at feature size F (one per output element)."""
        assert self.random
        return self.out_size(F)

    def uniforms(self, F: int) -> int:
        """Number of uniforms a random op consumes at feature size F."""
        return self.draws(F) * self.values_per_draw

    def random_params(self, rnd: Draws, F: int) -> tuple[float, ...]:
        """Fresh constants for a random instruction of this op, drawn slot by slot."""
        return tuple(p.draw(rnd, F) for p in self.params)

    def altered_params(self, consts: tuple[float, ...], rnd: Draws, F: int,
                       scale: Scale) -> tuple[float, ...]:
        """The constants after one alteration: one slot picked uniformly (no draw for a
        single slot), altered by its rule; `ordered` ops then sort (c0, c1)."""
        n = len(self.params)
        if not n:
            return tuple(consts)
        which = rnd.integer(n) if n > 1 else 0
        vals = list(consts)
        vals[which] = self.params[which].alter(vals[which], rnd, F, scale)
        if self.ordered:
            vals[0], vals[1] = min(vals[0], vals[1]), max(vals[0], vals[1])
        return tuple(vals)

    def interp_ns(self, F: int) -> float:
        """Estimated time of one run of the op by the native interpreter at feature size F,
        in nanoseconds (the mixed tier's cost model; calibrated on this machine kind)."""
        if self.out is None:
            return 1.0
        size = {Kind.SCALAR: 1, Kind.VECTOR: F, Kind.MATRIX: F * F}
        if self.random:
            return 4.0 + 25.0 * size[self.out]
        if self.func == "matmul":
            return 4.0 + 0.13 * F ** 3
        if self.libm is not None:
            return 18.0
        return 3.0 + 0.15 * max([size[self.out], *(size[k] for k in self.ins)])

    @property
    def enum_name(self) -> str:
        """The original's enum name, e.g. SCALAR_SUM_OP."""
        return self.name if self.name == "NO_OP" else f"{self.name}_OP"


# ---------------------------------------------------------------------------
# Building blocks of the reference semantics.
# ---------------------------------------------------------------------------

def seqsum(x: np.ndarray) -> np.float64:
    """Left-to-right sum of all elements in row-major order."""
    return np.cumsum(x.reshape(-1))[-1]


def rowsums(x: np.ndarray) -> np.ndarray:
    """Left-to-right sum of each row of a matrix."""
    return np.cumsum(x, axis=1)[:, -1]


def colsums(x: np.ndarray) -> np.ndarray:
    """Top-to-bottom sum of each column of a matrix."""
    return np.cumsum(x, axis=0)[-1, :]


def _libm(fn: Callable[[float], float], domain_nan: bool = True) -> Callable[[Any], np.float64]:
    """A C-library function with IEEE results instead of Python exceptions."""
    def call(x: Any) -> np.float64:
        v = float(x)
        try:
            return np.float64(fn(v))
        except OverflowError:
            return np.float64(math.inf)
        except ValueError:
            return np.float64(math.nan)
    return call


def _log(x: Any) -> np.float64:
    v = float(x)
    if v == 0.0:
        return np.float64(-math.inf)
    if v < 0.0:
        return np.float64(math.nan)
    return np.float64(math.log(v))  # NaN and +inf pass through


def _exp(x: Any) -> np.float64:
    v = float(x)
    try:
        return np.float64(math.exp(v))
    except OverflowError:
        return np.float64(math.inf)


_sin, _cos, _tan = _libm(math.sin), _libm(math.cos), _libm(math.tan)
_asin, _acos, _atan = _libm(math.asin), _libm(math.acos), _libm(math.atan)

ONE = np.float64(1.0)
ZERO = np.float64(0.0)


def _heaviside_ge(a: Any) -> np.float64:
    return ONE if a >= 0.0 else ZERO


def _heaviside_gt(a: np.ndarray) -> np.ndarray:
    return np.where(a > 0.0, 1.0, 0.0)


def _min_first(a: Any, b: Any) -> Any:
    """std::min: b < a ? b : a (NaN comparisons give a)."""
    return np.where(b < a, b, a)


def _max_first(a: Any, b: Any) -> Any:
    """std::max: a < b ? b : a (NaN comparisons give a)."""
    return np.where(a < b, b, a)


def _min_second(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Explicit loop x < y ? x : y (NaN comparisons give y)."""
    return np.where(a < b, a, b)


def _max_second(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Explicit loop x > y ? x : y (NaN comparisons give y)."""
    return np.where(a > b, a, b)


def _scalar(x: Any) -> np.float64:
    return np.float64(x)


def _dot(a: np.ndarray, b: np.ndarray) -> np.float64:
    return seqsum(a * b)


def _matvec(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    return rowsums(m * v[None, :])


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # c[i, j] = sum over k, in order, of a[i, k] * b[k, j]
    return np.cumsum(a[:, :, None] * b[None, :, :], axis=1)[:, -1, :]


def _std_vector(a: np.ndarray, F: int) -> np.float64:
    mean = seqsum(a) / np.float64(F)
    return np.sqrt(seqsum(a * a) / np.float64(F) - mean * mean)


def _std_matrix(a: np.ndarray, F: int) -> np.float64:
    n = np.float64(F * F)
    mean = seqsum(a) / n
    return np.sqrt(seqsum(a * a) / n - mean * mean)


def _std_rows(a: np.ndarray, F: int) -> np.ndarray:
    mean = rowsums(a) / np.float64(F)
    return np.sqrt(rowsums(a * a) / np.float64(F) - mean * mean)


def _set_element(old: np.ndarray, index: tuple[int, ...], value: float) -> np.ndarray:
    new = np.array(old, dtype=np.float64, copy=True)
    new[index] = value
    return new


def _uniform(shape: tuple[int, ...]) -> Ref:
    def ref(a: Any, b: Any, k: tuple, F: int, rand: Any) -> Any:
        n = F ** len(shape)
        u = rand(n)
        vals = np.array([_rng.uniform_value(k[0], k[1], float(x)) for x in u])
        return np.float64(vals[0]) if not shape else vals.reshape((F,) * len(shape))
    return ref


def _gaussian(shape: tuple[int, ...]) -> Ref:
    def ref(a: Any, b: Any, k: tuple, F: int, rand: Any) -> Any:
        n = F ** len(shape)
        u = rand(2 * n)
        vals = np.array([_rng.gaussian_value(k[0], k[1], float(u[2 * i]), float(u[2 * i + 1]))
                         for i in range(n)])
        return np.float64(vals[0]) if not shape else vals.reshape((F,) * len(shape))
    return ref


# ---------------------------------------------------------------------------
# The table.  One row per op, in id order.
# ---------------------------------------------------------------------------

# The constant slots (Param rules: storage, draw, alteration) of the setters.
_VALUE64 = (Param(Const.F64, "x", open=True),)                    # drawn in (-1, 1)
_I, _J = Param(Const.INDEX, "i"), Param(Const.INDEX, "j")               # drawn in [0, F)
_VALUE32 = Param(Const.F32, "x")                                   # drawn in [-1, 1)
_LOHI = (Param(Const.F32, "lo"), Param(Const.F32, "hi"))               # independent draws
_NORMAL = (Param(Const.F32, "mean"), Param(Const.F32, "std", lo=0.0, flip=False))


def row(id_: int, name: str, ins: tuple[Kind, ...], out: Kind | None, template: str, func: str,
        ref: Ref, cost: int, doc: str, params: tuple[Param, ...] = (), random: bool = False,
        axis: int | None = None, swappable: bool = False, libm: str | None = None,
        ordered: bool = False, values_per_draw: int = 1) -> Op:
    """A row of the op table (for `extended`, a new op's row): `paired` follows from the
    kinds -- scalar and vector ops that draw nothing have paired bodies (two tasks at once)."""
    paired = out is not None and not random and Kind.MATRIX not in (*ins, out)
    return Op(id_, name, ins, out, template, func, params, random, cost, ref, doc, axis,
              swappable, paired, libm, ordered, values_per_draw)




_ROWS: tuple[Op, ...] = (
    # id, name, ins, out, canonical text, surface key, semantics, cost, meaning
    row(0, "NO_OP", (), None, "noop", "noop",
        lambda a, b, k, F, r: None, 3013921, "nothing"),
    row(1, "SCALAR_SUM", (S, S), S, "{c} = {a} + {b}", "+",
        lambda a, b, k, F, r: a + b, 4703759, "sc = sa + sb"),
    row(2, "SCALAR_DIFF", (S, S), S, "{c} = {a} - {b}", "-",
        lambda a, b, k, F, r: a - b, 5102027, "sc = sa - sb"),
    row(3, "SCALAR_PRODUCT", (S, S), S, "{c} = {a} * {b}", "*",
        lambda a, b, k, F, r: a * b, 4418347, "sc = sa * sb"),
    row(4, "SCALAR_DIVISION", (S, S), S, "{c} = {a} / {b}", "/",
        lambda a, b, k, F, r: a / b, 3963916, "sc = sa / sb (IEEE: ±inf, NaN)"),
    row(5, "SCALAR_ABS", (S,), S, "{c} = abs({a})", "abs",
        lambda a, b, k, F, r: np.abs(a), 3684352, "sc = |sa|"),
    row(6, "SCALAR_RECIPROCAL", (S,), S, "{c} = 1 / {a}", "1/",
        lambda a, b, k, F, r: ONE / a, 4212086, "sc = 1 / sa"),
    row(7, "SCALAR_SIN", (S,), S, "{c} = sin({a})", "sin",
        lambda a, b, k, F, r: _sin(a), 7538523, "sc = sin(sa)", libm="sin"),
    row(8, "SCALAR_COS", (S,), S, "{c} = cos({a})", "cos",
        lambda a, b, k, F, r: _cos(a), 7452807, "sc = cos(sa)", libm="cos"),
    row(9, "SCALAR_TAN", (S,), S, "{c} = tan({a})", "tan",
        lambda a, b, k, F, r: _tan(a), 7583203, "sc = tan(sa)", libm="tan"),
    row(10, "SCALAR_ARCSIN", (S,), S, "{c} = arcsin({a})", "arcsin",
        lambda a, b, k, F, r: _asin(a), 9145616, "sc = asin(sa) (NaN outside [-1, 1])",
        libm="asin"),
    row(11, "SCALAR_ARCCOS", (S,), S, "{c} = arccos({a})", "arccos",
        lambda a, b, k, F, r: _acos(a), 7673039, "sc = acos(sa) (NaN outside [-1, 1])",
        libm="acos"),
    row(12, "SCALAR_ARCTAN", (S,), S, "{c} = arctan({a})", "arctan",
        lambda a, b, k, F, r: _atan(a), 9273978, "sc = atan(sa)", libm="atan"),
    row(13, "SCALAR_EXP", (S,), S, "{c} = exp({a})", "exp",
        lambda a, b, k, F, r: _exp(a), 11755929, "sc = e^sa (overflows to +inf)",
        libm="exp"),
    row(14, "SCALAR_LOG", (S,), S, "{c} = log({a})", "log",
        lambda a, b, k, F, r: _log(a), 11627725, "sc = ln(sa) (log 0 = -inf, log(<0) = NaN)",
        libm="log"),
    row(15, "SCALAR_HEAVYSIDE", (S,), S, "{c} = heaviside({a})", "heaviside",
        lambda a, b, k, F, r: _heaviside_ge(a), 4057075, "sc = 1 if sa >= 0 else 0 (NaN -> 0)"),
    row(16, "VECTOR_HEAVYSIDE", (V,), V, "{c} = heaviside({a})", "heaviside",
        lambda a, b, k, F, r: _heaviside_gt(a), 3965743, "vc = 1 where va > 0 else 0"),
    row(17, "MATRIX_HEAVYSIDE", (M,), M, "{c} = heaviside({a})", "heaviside",
        lambda a, b, k, F, r: _heaviside_gt(a), 6728311, "mc = 1 where ma > 0 else 0"),
    row(18, "SCALAR_VECTOR_PRODUCT", (S, V), V, "{c} = {a} * {b}", "*",
        lambda a, b, k, F, r: b * a, 3705015, "vc = sa * vb", swappable=True),
    row(19, "SCALAR_BROADCAST", (S,), V, "{c} = bcast({a})", "bcast",
        lambda a, b, k, F, r: np.full(F, a, dtype=np.float64), 4165814, "vc[i] = sa"),
    row(20, "VECTOR_RECIPROCAL", (V,), V, "{c} = 1 / {a}", "1/",
        lambda a, b, k, F, r: 1.0 / a, 6311851, "vc = 1 / va"),
    row(21, "VECTOR_NORM", (V,), S, "{c} = norm({a})", "norm",
        lambda a, b, k, F, r: np.sqrt(seqsum(a * a)), 4810562, "sc = sqrt(sum va[i]^2)"),
    row(22, "VECTOR_ABS", (V,), V, "{c} = abs({a})", "abs",
        lambda a, b, k, F, r: np.abs(a), 3713533, "vc = |va|"),
    row(23, "VECTOR_SUM", (V, V), V, "{c} = {a} + {b}", "+",
        lambda a, b, k, F, r: a + b, 4701519, "vc = va + vb"),
    row(24, "VECTOR_DIFF", (V, V), V, "{c} = {a} - {b}", "-",
        lambda a, b, k, F, r: a - b, 4165747, "vc = va - vb"),
    row(25, "VECTOR_PRODUCT", (V, V), V, "{c} = {a} * {b}", "*",
        lambda a, b, k, F, r: a * b, 4504555, "vc = va * vb (elementwise)"),
    row(26, "VECTOR_DIVISION", (V, V), V, "{c} = {a} / {b}", "/",
        lambda a, b, k, F, r: a / b, 4556237, "vc = va / vb (elementwise)"),
    row(27, "VECTOR_INNER_PRODUCT", (V, V), S, "{c} = dot({a}, {b})", "dot",
        lambda a, b, k, F, r: _dot(a, b), 4294617, "sc = sum va[i] * vb[i]"),
    row(28, "VECTOR_OUTER_PRODUCT", (V, V), M, "{c} = outer({a}, {b})", "outer",
        lambda a, b, k, F, r: a[:, None] * b[None, :], 9833707, "mc[i, j] = va[i] * vb[j]"),
    row(29, "SCALAR_MATRIX_PRODUCT", (S, M), M, "{c} = {a} * {b}", "*",
        lambda a, b, k, F, r: b * a, 5986302, "mc = sa * mb", swappable=True),
    row(30, "MATRIX_RECIPROCAL", (M,), M, "{c} = 1 / {a}", "1/",
        lambda a, b, k, F, r: 1.0 / a, 24336141, "mc = 1 / ma (elementwise)"),
    row(31, "MATRIX_VECTOR_PRODUCT", (M, V), V, "{c} = dot({a}, {b})", "dot",
        lambda a, b, k, F, r: _matvec(a, b), 9310002, "vc[i] = sum_j ma[i, j] * vb[j]"),
    row(32, "VECTOR_COLUMN_BROADCAST", (V,), M, "{c} = bcast({a}, axis=0)", "bcast",
        lambda a, b, k, F, r: np.repeat(a[:, None], F, axis=1), 10993088,
        "mc[i, j] = va[i] (every column equals va)", axis=0),
    row(33, "VECTOR_ROW_BROADCAST", (V,), M, "{c} = bcast({a}, axis=1)", "bcast",
        lambda a, b, k, F, r: np.repeat(a[None, :], F, axis=0), 11087322,
        "mc[i, j] = va[j] (every row equals va)", axis=1),
    row(34, "MATRIX_NORM", (M,), S, "{c} = norm({a})", "norm",
        lambda a, b, k, F, r: np.sqrt(seqsum(a * a)), 6422746, "sc = Frobenius norm of ma"),
    row(35, "MATRIX_COLUMN_NORM", (M,), V, "{c} = norm({a}, axis=0)", "norm",
        lambda a, b, k, F, r: np.sqrt(colsums(a * a)), 6682187,
        "vc[j] = L2 norm of column j of ma", axis=0),
    row(36, "MATRIX_ROW_NORM", (M,), V, "{c} = norm({a}, axis=1)", "norm",
        lambda a, b, k, F, r: np.sqrt(rowsums(a * a)), 13351123,
        "vc[i] = L2 norm of row i of ma", axis=1),
    row(37, "MATRIX_TRANSPOSE", (M,), M, "{c} = transpose({a})", "transpose",
        lambda a, b, k, F, r: np.array(a.T, copy=True), 9394756, "mc = transpose of ma"),
    row(38, "MATRIX_ABS", (M,), M, "{c} = abs({a})", "abs",
        lambda a, b, k, F, r: np.abs(a), 4630926, "mc = |ma|"),
    row(39, "MATRIX_SUM", (M, M), M, "{c} = {a} + {b}", "+",
        lambda a, b, k, F, r: a + b, 5579381, "mc = ma + mb"),
    row(40, "MATRIX_DIFF", (M, M), M, "{c} = {a} - {b}", "-",
        lambda a, b, k, F, r: a - b, 5429452, "mc = ma - mb"),
    row(41, "MATRIX_PRODUCT", (M, M), M, "{c} = {a} * {b}", "*",
        lambda a, b, k, F, r: a * b, 5475227, "mc = ma * mb (elementwise)"),
    row(42, "MATRIX_DIVISION", (M, M), M, "{c} = {a} / {b}", "/",
        lambda a, b, k, F, r: a / b, 18234378, "mc = ma / mb (elementwise)"),
    row(43, "MATRIX_MATRIX_PRODUCT", (M, M), M, "{c} = matmul({a}, {b})", "matmul",
        lambda a, b, k, F, r: _matmul(a, b), 14516296, "mc = ma @ mb"),
    row(44, "SCALAR_MIN", (S, S), S, "{c} = minimum({a}, {b})", "minimum",
        lambda a, b, k, F, r: _scalar(_min_first(a, b)), 3677265, "sc = min(sa, sb)"),
    row(45, "VECTOR_MIN", (V, V), V, "{c} = minimum({a}, {b})", "minimum",
        lambda a, b, k, F, r: _min_first(a, b), 3989956, "vc = min(va, vb) (elementwise)"),
    row(46, "MATRIX_MIN", (M, M), M, "{c} = minimum({a}, {b})", "minimum",
        lambda a, b, k, F, r: _min_second(a, b), 5457728, "mc = min(ma, mb) (elementwise)"),
    row(47, "SCALAR_MAX", (S, S), S, "{c} = maximum({a}, {b})", "maximum",
        lambda a, b, k, F, r: _scalar(_max_first(a, b)), 4573695, "sc = max(sa, sb)"),
    row(48, "VECTOR_MAX", (V, V), V, "{c} = maximum({a}, {b})", "maximum",
        lambda a, b, k, F, r: _max_first(a, b), 3974229, "vc = max(va, vb) (elementwise)"),
    row(49, "MATRIX_MAX", (M, M), M, "{c} = maximum({a}, {b})", "maximum",
        lambda a, b, k, F, r: _max_second(a, b), 5840952, "mc = max(ma, mb) (elementwise)"),
    row(50, "VECTOR_MEAN", (V,), S, "{c} = mean({a})", "mean",
        lambda a, b, k, F, r: seqsum(a) / np.float64(F), 4280443, "sc = mean of va"),
    row(51, "MATRIX_MEAN", (M,), S, "{c} = mean({a})", "mean",
        lambda a, b, k, F, r: seqsum(a) / np.float64(F * F), 4595196, "sc = mean of ma"),
    row(52, "MATRIX_ROW_MEAN", (M,), V, "{c} = mean({a}, axis=1)", "mean",
        lambda a, b, k, F, r: rowsums(a) / np.float64(F), 9763956,
        "vc[i] = mean of row i of ma", axis=1),
    row(53, "MATRIX_ROW_ST_DEV", (M,), V, "{c} = std({a}, axis=1)", "std",
        lambda a, b, k, F, r: _std_rows(a, F), 16766477,
        "vc[i] = sqrt(mean(row_i^2) - mean(row_i)^2)", axis=1),
    row(54, "VECTOR_ST_DEV", (V,), S, "{c} = std({a})", "std",
        lambda a, b, k, F, r: _std_vector(a, F), 5585730, "sc = sqrt(mean(va^2) - mean(va)^2)"),
    row(55, "MATRIX_ST_DEV", (M,), S, "{c} = std({a})", "std",
        lambda a, b, k, F, r: _std_matrix(a, F), 10640216, "sc = sqrt(mean(ma^2) - mean(ma)^2)"),
    row(56, "SCALAR_CONST_SET", (), S, "{c} = {k0}", "=",
        lambda a, b, k, F, r: np.float64(k[0]), 3691108, "sc = constant (float64)",
        params=_VALUE64),
    row(57, "VECTOR_CONST_SET", (), V, "{c}[{k0}] = {k1}", "[i]",
        lambda a, b, k, F, r: _set_element(a, (int(k[0]),), k[1]), 3991421,
        "vc[i] = constant (float32); other elements unchanged", params=(_I, _VALUE32)),
    row(58, "MATRIX_CONST_SET", (), M, "{c}[{k0}, {k1}] = {k2}", "[i,j]",
        lambda a, b, k, F, r: _set_element(a, (int(k[0]), int(k[1])), k[2]), 3693035,
        "mc[i, j] = constant (float32); other elements unchanged",
        params=(_I, _J, _VALUE32)),
    row(59, "SCALAR_UNIFORM_SET", (), S, "{c} = uniform({k0}, {k1})", "uniform",
        _uniform(()), 26610704, "sc ~ U(lo, hi), open; lo if lo >= hi", params=_LOHI,
        random=True, ordered=True),
    row(60, "VECTOR_UNIFORM_SET", (), V, "{c} = uniform({k0}, {k1})", "uniform",
        _uniform((1,)), 57817372, "vc[i] ~ U(lo, hi) i.i.d.", params=_LOHI,
        random=True, ordered=True),
    row(61, "MATRIX_UNIFORM_SET", (), M, "{c} = uniform({k0}, {k1})", "uniform",
        _uniform((1, 1)), 208339446, "mc[i, j] ~ U(lo, hi) i.i.d., row-major",
        params=_LOHI, random=True, ordered=True),
    row(62, "SCALAR_GAUSSIAN_SET", (), S, "{c} = gaussian({k0}, {k1})", "gaussian",
        _gaussian(()), 20775635, "sc ~ N(mean, std)", params=_NORMAL, random=True,
        values_per_draw=2),
    row(63, "VECTOR_GAUSSIAN_SET", (), V, "{c} = gaussian({k0}, {k1})", "gaussian",
        _gaussian((1,)), 77483018, "vc[i] ~ N(mean, std) i.i.d.", params=_NORMAL,
        random=True, values_per_draw=2),
    row(64, "MATRIX_GAUSSIAN_SET", (), M, "{c} = gaussian({k0}, {k1})", "gaussian",
        _gaussian((1, 1)), 277690384, "mc[i, j] ~ N(mean, std) i.i.d., row-major",
        params=_NORMAL, random=True, values_per_draw=2),
)


# ---------------------------------------------------------------------------
# The live table, its named ops and groups, and its extension.
# ---------------------------------------------------------------------------

def _read_only(*args: Any, **kwargs: Any) -> Any:
    raise TypeError("the op table and its groups change only through azc.ops.extended")


class OpTable(list):
    """The rows of the op table, indexed by op id (a list for fast indexing; read-only
    except through `extended`)."""

    for _name in ("append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
                  "__setitem__", "__delitem__", "__iadd__", "__imul__"):
        locals()[_name] = _read_only
    del _name


class OpGroup(set):
    """A named set of op ids, defined by a predicate on the rows and kept in step with
    the table (like tinygrad's GroupOp sets; membership is a plain set test)."""

    def __init__(self, name: str, where: Callable[[Op], bool]):
        super().__init__()
        self.name = name
        self.where = where
        _DERIVED.append(self)
        self.refresh()

    def refresh(self) -> None:
        """Recompute the members from the table."""
        set.clear(self)
        set.update(self, (op.id for op in OPS if self.where(op)))

    def ops(self) -> list[Op]:
        """The member rows, in id order."""
        return [op for op in OPS if op.id in self]

    def __repr__(self) -> str:
        return f"OpGroup({self.name}: {sorted(self)})"

    for _name in ("add", "discard", "remove", "pop", "clear", "update", "intersection_update",
                  "difference_update", "symmetric_difference_update", "__ior__", "__iand__",
                  "__isub__", "__ixor__"):
        locals()[_name] = _read_only
    del _name


class OpColumn(list):
    """One derived value per op, indexed by op id, kept in step with the table (for the
    hot loops of passes and the budget: `column[ins.op]`)."""

    def __init__(self, of: Callable[[Op], Any]):
        super().__init__()
        self.of = of
        _DERIVED.append(self)
        self.refresh()

    def refresh(self) -> None:
        """Recompute the values from the table."""
        list.clear(self)
        list.extend(self, (self.of(op) for op in OPS))

    for _name in ("append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
                  "__setitem__", "__delitem__", "__iadd__", "__imul__"):
        locals()[_name] = _read_only
    del _name


Listener = Callable[[tuple[Op, ...], tuple[Op, ...]], None]

OPS: OpTable = OpTable(_ROWS)
BY_NAME: dict[str, Op] = {op.name: op for op in OPS}
_DERIVED: list[OpGroup | OpColumn] = []
_LISTENERS: list[Listener] = []

# Ids a test pins down: never renumber an op.
assert [op.id for op in OPS] == list(range(65))
NUM_OPS = len(_ROWS)  # the original's ops (a table extended at run time has more: len(OPS))

# Named ops: the roles other stages refer to.
NO_OP: Op = BY_NAME["NO_OP"]                      # the empty instruction (a zeroed record)
SCALAR_CONST: Op = BY_NAME["SCALAR_CONST_SET"]    # sc = float64 constant (what folding writes)

# Named groups.
RANDOM_OPS = OpGroup("random", lambda op: op.random)      # draw from the random generator
PAIRED_OPS = OpGroup("paired", lambda op: op.paired)      # have a body on paired memory
SETTERS = OpGroup("setters", lambda op: op.is_set)        # read nothing, write constants/draws


def on_change(listener: Listener) -> Listener:
    """Call listener(added, removed) after every change of the table (rebuilt native
    modules, emptied caches, forgotten emitters); returns it (usable as a decorator)."""
    _LISTENERS.append(listener)
    return listener


def _changed(added: tuple[Op, ...], removed: tuple[Op, ...]) -> None:
    for name in [op.name for op in removed]:
        del BY_NAME[name]
    BY_NAME.update({op.name: op for op in added})
    for d in _DERIVED:
        d.refresh()
    for listener in list(_LISTENERS):
        listener(added, removed)


def _check_new(rows: Iterable[Op]) -> None:
    ids = len(OPS)
    for op in rows:
        if op.id != ids:
            raise ValueError(f"a new op takes the next id {ids}, not {op.id} ({op.name})")
        if op.name in BY_NAME:
            raise ValueError(f"an op named {op.name} exists")
        if len(op.params) > 3 or op.arity > 2 or (op.random and op.ins):
            raise ValueError(f"{op.name}: at most 3 constants and 2 inputs; random ops read "
                             f"nothing")
        ids += 1


@contextmanager
def extended(*rows: Op) -> Iterator[tuple[Op, ...]]:
    """The table with new rows appended (ids len(OPS), len(OPS) + 1, ...) for the block,
    then as before: groups, columns, names and every `on_change` listener follow both
    changes.  Build rows with `row(...)`; register an emitter for each (by name, with
    azc.backend.emitters.lowering) to compile them."""
    _check_new(rows)
    size = len(OPS)
    list.extend(OPS, rows)
    try:
        _changed(tuple(rows), ())
        yield tuple(rows)
    finally:
        removed = tuple(OPS[size:])
        list.__delitem__(OPS, slice(size, None))
        _changed((), removed)


def op_by_name(name: str) -> Op:
    """An op by its name: SCALAR_SUM, SCALAR_SUM_OP or scalar_sum; KeyError if unknown."""
    key = name.strip().upper()
    if key.endswith("_OP") and key != "NO_OP":
        key = key[:-3]
    return BY_NAME[key]


def surface_ops(func: str) -> list[Op]:
    """All ops written with a given surface key (operator, function or setter form)."""
    return [op for op in OPS if op.func == func]


def lookup(func: str, ins: tuple[Kind, ...], axis: int | None) -> Op | None:
    """The op for a function/operator applied to operands of these kinds, if any."""
    for op in OPS:
        if op.func != func or op.axis != axis or op.is_set:
            continue
        if op.ins == ins or (op.swappable and op.ins == ins[::-1]):
            return op
    return None


def setter(func: str, out: Kind) -> Op | None:
    """The setter op (constant, element, uniform, gaussian) writing this kind, if any."""
    for op in OPS:
        if op.func == func and op.is_set and op.out == out:
            return op
    return None
