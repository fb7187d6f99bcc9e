"""Lowering to LLVM IR text: per-op emitters, component functions, the protocol driver.

Memory is one flat float64 buffer: S scalars, then V vectors of F, then M
row-major F x F matrices.  Every op is emitted as one LLVM function with the
same signature,

    void @op_<id>(ptr out, ptr a, ptr b, double c0, double c1, double c2, i64 key)

where `out`, `a`, `b` point at the operands (any of them may alias: every
emitter reads all inputs before it writes), `c0..c2` are the constants and
`key` the random-stream key of the instruction (random ops only).  A compiled
kernel calls these functions with constant pointers and constants (they are
`alwaysinline`, so LLVM sees straight-line code); the native interpreter tier
calls the same functions with run-time pointers.  The emitters follow the
reference semantics of azc.ops exactly: sums are ordered reductions starting
from the first element (llvm.vector.reduce.fadd without reassociation, start
-0.0), products are separate fmul (no FMA: no fast-math flags anywhere), the
transcendental functions are calls to the C library, min/max and heaviside
are the same compare-and-select as the interpreter.

The driver implements the evaluation protocol of azc.interp for a list of
tasks described by an int64 descriptor array (see TASK_FIELDS).

This module produces text only; it never imports llvmlite.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from azc.errors import LoweringError
from azc.ir import Component, Instr, MemoryConfig, Program, slot_at
from azc.ops import OPS, Kind
from azc.resources import runtime_file

# Per-task descriptor: one row of int64 per task.
TASK_FIELDS = ("train_x", "train_y", "valid_x", "valid_y", "order", "num_train", "num_valid",
               "epochs", "eval_type", "index", "num_train_req", "num_valid_req",
               "rec_train_pred", "rec_valid_pred", "rec_train_err", "rec_valid_err")
DESC_WIDTH = len(TASK_FIELDS)
# Fields two tasks must share to run together in paired loops (`paired_loops`).
PAIR_SHAPE = ("num_train", "num_valid", "epochs", "eval_type", "num_train_req",
              "num_valid_req")
# Per-task outputs: one row of float64 per task.
OUT_FIELDS = ("fitness", "train_steps", "stopped_early", "num_train_err", "num_valid_err",
              "num_valid_pred")
OUT_WIDTH = 8

LIBM = ("sin", "cos", "tan", "asin", "acos", "atan", "exp", "log")
OP_ARGS = "ptr %out, ptr %a, ptr %b, double %c0, double %c1, double %c2, i64 %key"


def f64(x: float) -> str:
    """A float64 as an exact LLVM IR literal."""
    return f"0x{struct.unpack('<Q', struct.pack('<d', float(x)))[0]:016X}"


def _align(n: int, to: int) -> int:
    return -(-n // to) * to


@dataclass(frozen=True)
class Layout:
    """Where each address lives in the flat float64 buffer.

    Scalars first, then vectors, then matrices (row-major).  Each bank starts
    on a 64-byte boundary, and each vector and matrix is padded so that all
    of them are aligned to their vector width (up to 64 bytes): misaligned
    512-bit loads and stores made matrix ops several times slower.  Padding
    elements are zero and never read.
    """

    scalars: int
    vectors: int
    matrices: int
    features: int

    @staticmethod
    def of(memory: MemoryConfig, features: int) -> Layout:
        """The layout of a memory configuration at feature size F."""
        return Layout(memory.scalars, memory.vectors, memory.matrices, features)

    @property
    def vector_stride(self) -> int:
        """Distance between consecutive vectors (F, padded to its alignment)."""
        return _align(self.features, min(8, 1 << (self.features - 1).bit_length()))

    @property
    def matrix_stride(self) -> int:
        """Distance between consecutive matrices (F*F, padded to 8 doubles)."""
        F = self.features
        return _align(F * F, min(8, 1 << (F * F - 1).bit_length()))

    @property
    def vector_base(self) -> int:
        """Offset of v0."""
        return _align(self.scalars, 8)

    @property
    def matrix_base(self) -> int:
        """Offset of m0."""
        return _align(self.vector_base + self.vectors * self.vector_stride, 8)

    @property
    def size(self) -> int:
        """Number of float64 in the buffer."""
        return self.matrix_base + self.matrices * self.matrix_stride

    def offset(self, kind: Kind, addr: int) -> int:
        """Index of the first element of an address."""
        if kind is Kind.SCALAR:
            return addr
        if kind is Kind.VECTOR:
            return self.vector_base + addr * self.vector_stride
        return self.matrix_base + addr * self.matrix_stride

    def stride(self, kind: Kind) -> int:
        """Distance between consecutive addresses of a kind."""
        return (1, self.vector_stride, self.matrix_stride)[kind]

    def pack(self, s: np.ndarray, v: np.ndarray, m: np.ndarray) -> np.ndarray:
        """A buffer holding scalars s, vectors v (V, F) and matrices m (M, F, F)."""
        buf = np.zeros(self.size)
        F = self.features
        buf[:self.scalars] = s
        for i in range(self.vectors):
            o = self.offset(Kind.VECTOR, i)
            buf[o:o + F] = v[i]
        for i in range(self.matrices):
            o = self.offset(Kind.MATRIX, i)
            buf[o:o + F * F] = np.asarray(m[i]).reshape(-1)
        return buf

    def unpack(self, buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(s, v, m) from a buffer."""
        F = self.features
        s = buf[:self.scalars].copy()
        v = np.array([buf[self.offset(Kind.VECTOR, i):][:F] for i in range(self.vectors)])
        m = np.array([buf[self.offset(Kind.MATRIX, i):][:F * F].reshape(F, F)
                      for i in range(self.matrices)])
        return s, v.reshape(self.vectors, F), m.reshape(self.matrices, F, F)


class Body:
    """Lines of one LLVM function body with fresh SSA names and labels."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.allocas: list[str] = []
        self.n = 0

    def alloca(self, ty: str, prefix: str = "tmp") -> str:
        """A stack slot allocated once in the entry block (never inside a loop)."""
        p = self.t(prefix)
        self.allocas.append(f"  {p} = alloca {ty}, align 8")
        return p

    def render(self) -> str:
        """The body: the entry block's allocas first, then the code."""
        assert self.lines and self.lines[0] == "entry:"
        return "\n".join([self.lines[0], *self.allocas, *self.lines[1:]])

    def t(self, prefix: str = "t") -> str:
        """A fresh SSA name."""
        self.n += 1
        return f"%{prefix}.{self.n}"

    def label(self, prefix: str = "L") -> str:
        """A fresh label name (without %)."""
        self.n += 1
        return f"{prefix}.{self.n}"

    def __call__(self, line: str) -> None:
        self.lines.append(line if line.endswith(":") else "  " + line)

    def block(self, name: str) -> None:
        """Start a basic block."""
        self.lines.append(f"{name}:")

    def loop(self, count: int | str, body: Callable[[str], None], start: int = 0) -> None:
        """for (i = start; i < count; i++) body(i), with i an i64 SSA name."""
        pre, head, loop, done = self.label("pre"), self.label("head"), self.label("loop"), \
            self.label("done")
        self(f"br label %{pre}")
        self.block(pre)
        self(f"br label %{head}")
        self.block(head)
        i, nxt = self.t("i"), self.t("inext")
        self(f"{i} = phi i64 [ {start}, %{pre} ], [ {nxt}, %{loop}_end ]")
        c = self.t()
        self(f"{c} = icmp slt i64 {i}, {count}")
        self(f"br i1 {c}, label %{loop}, label %{done}")
        self.block(loop)
        body(i)
        self(f"br label %{loop}_end")
        self.block(f"{loop}_end")
        self(f"{nxt} = add i64 {i}, 1")
        self(f"br label %{head}")
        self.block(done)


# ---------------------------------------------------------------------------
# Per-op emitters.  Each writes the body of @op_<id> given F.
# ---------------------------------------------------------------------------

class Emit:
    """Helpers for the body of one op function at feature size F."""

    st = "double"  # a scalar's type, and its comparisons'
    smask = "i1"

    def __init__(self, b: Body, F: int):
        self.b, self.F = b, F
        self.features = F  # the tasks' F (`PairEmit`: half the vector width)
        self.vt = f"<{F} x double>"
        self.vsuffix = f"v{F}f64"

    # scalars
    def lds(self, ptr: str, index: int | str = 0) -> str:
        p = self.gep(ptr, index)
        x = self.b.t()
        self.b(f"{x} = load double, ptr {p}, align 8")
        return x

    def sts(self, ptr: str, value: str, index: int | str = 0) -> None:
        p = self.gep(ptr, index)
        self.b(f"store double {value}, ptr {p}, align 8")

    def gep(self, ptr: str, index: int | str) -> str:
        if index == 0:
            return ptr
        p = self.b.t("p")
        self.b(f"{p} = getelementptr inbounds double, ptr {ptr}, i64 {index}")
        return p

    # vectors of F
    def ldv(self, ptr: str, row: int | str = 0) -> str:
        p = self.gep(ptr, self.row_index(row))
        x = self.b.t("v")
        self.b(f"{x} = load {self.vt}, ptr {p}, align 8")
        return x

    def stv(self, ptr: str, value: str, row: int | str = 0) -> None:
        p = self.gep(ptr, self.row_index(row))
        self.b(f"store {self.vt} {value}, ptr {p}, align 8")

    def row_index(self, row: int | str) -> int | str:
        if isinstance(row, int):
            return row * self.F
        r = self.b.t()
        self.b(f"{r} = mul i64 {row}, {self.F}")
        return r

    def vop(self, opcode: str, x: str, y: str) -> str:
        r = self.b.t("v")
        self.b(f"{r} = {opcode} {self.vt} {x}, {y}")
        return r

    def splat(self, x: str) -> str:
        i = self.b.t("v")
        self.b(f"{i} = insertelement {self.vt} poison, double {x}, i64 0")
        s = self.b.t("v")
        self.b(f"{s} = shufflevector {self.vt} {i}, {self.vt} poison, "
               f"<{self.F} x i32> zeroinitializer")
        return s

    def const_vec(self, x: float) -> str:
        return f"<{', '.join(['double ' + f64(x)] * self.F)}>"

    def vcall(self, name: str, x: str) -> str:
        r = self.b.t("v")
        self.b(f"{r} = call {self.vt} @llvm.{name}.{self.vsuffix}({self.vt} {x})")
        return r

    def vsum(self, x: str, start: str = "0x8000000000000000") -> str:
        """Ordered (left-to-right) sum of the lanes, continuing from `start` (-0.0: none)."""
        r = self.b.t()
        self.b(f"{r} = call double @llvm.vector.reduce.fadd.{self.vsuffix}(double {start}, "
               f"{self.vt} {x})")
        return r

    def const(self, x: str) -> str:
        """A scalar operand (a value or a constant) as the scalar type."""
        return x

    def select_cmp(self, pred: str, x: str, y: str, if_true: str, if_false: str,
                   vector: bool) -> str:
        t, m = (self.vt, f"<{self.F} x i1>") if vector else (self.st, self.smask)
        cv = (lambda v: v) if vector else self.const
        c, r = self.b.t("c"), self.b.t()
        self.b(f"{c} = fcmp {pred} {t} {cv(x)}, {cv(y)}")
        self.b(f"{r} = select {m} {c}, {t} {cv(if_true)}, {t} {cv(if_false)}")
        return r

    def sop(self, opcode: str, x: str, y: str) -> str:
        r = self.b.t()
        self.b(f"{r} = {opcode} {self.st} {self.const(x)}, {self.const(y)}")
        return r

    def scall(self, name: str, x: str) -> str:
        """A call of a C library function or a scalar LLVM intrinsic (`name`), per task."""
        r = self.b.t()
        for line in _libm_call(self.st, name, x, r).splitlines():
            self.b(line.strip())
        return r

    def temp(self, n: int) -> str:
        """A stack buffer of n float64 (for results that may alias an input)."""
        return self.b.alloca(f"[{n} x double]")

    def copy_rows(self, dst: str, src: str) -> None:
        self.b.loop(self.F, lambda r: self.stv(dst, self.ldv(src, r), r))


class PairEmit(Emit):
    """`Emit` for two tasks at once (`paired_loops`): a scalar is a <2 x double> (task 0,
    task 1) and a vector of F a <2F x double> with the tasks' elements interleaved, so
    that every elementwise op is one op on both tasks, and a reduction keeps each task's
    left-to-right order.  Each task computes exactly what it computes alone.  Only the
    scalar and vector ops of `PAIRED_OPS` have paired bodies."""

    st = "<2 x double>"
    smask = "<2 x i1>"

    def __init__(self, b: Body, F: int):
        super().__init__(b, 2 * F)
        self.features = F
        self.pair_mask = (f"<{2 * F} x i32> <"
                          + ", ".join(f"i32 {i % 2}" for i in range(2 * F)) + ">")

    def const(self, x: str) -> str:
        """An operand as a pair: a value as is, a constant repeated."""
        return x if x.startswith("%") or x.startswith("<") else f"<double {x}, double {x}>"

    def lds(self, ptr: str, index: int | str = 0) -> str:
        assert index == 0, "paired scalars are read whole"
        x = self.b.t()
        self.b(f"{x} = load {self.st}, ptr {ptr}, align 8")
        return x

    def sts(self, ptr: str, value: str, index: int | str = 0) -> None:
        assert index == 0, "paired scalars are written whole"
        self.b(f"store {self.st} {self.const(value)}, ptr {ptr}, align 8")

    def splat(self, x: str) -> str:
        s = self.b.t("v")
        self.b(f"{s} = shufflevector {self.st} {x}, {self.st} poison, {self.pair_mask}")
        return s

    def splat_scalar(self, x: str) -> str:
        """A double for both tasks."""
        i, s = self.b.t(), self.b.t()
        self.b(f"{i} = insertelement {self.st} poison, double {x}, i64 0")
        self.b(f"{s} = shufflevector {self.st} {i}, {self.st} poison, <2 x i32> zeroinitializer")
        return s

    def vsum(self, x: str, start: str = "0x8000000000000000") -> str:
        acc = self.const(start)
        for i in range(self.features):
            lane = self.b.t()
            self.b(f"{lane} = shufflevector {self.vt} {x}, {self.vt} poison, "
                   f"<2 x i32> <i32 {2 * i}, i32 {2 * i + 1}>")
            nxt = self.b.t()
            self.b(f"{nxt} = fadd {self.st} {acc}, {lane}")
            acc = nxt
        return acc

    def scall(self, name: str, x: str) -> str:
        if not name.startswith("llvm."):  # the C library: `Emit.scall`, once per task
            return super().scall(name, x)
        r = self.b.t()  # sqrt, fabs: exact elementwise
        base = name[len("llvm."):-len(".f64")]
        self.b(f"{r} = call {self.st} @llvm.{base}.v2f64({self.st} {x})")
        return r


# Scalar and vector ops with paired bodies (no matrices, nothing random).
PAIRED_OPS = frozenset([*range(1, 17), *range(18, 28), 44, 45, 47, 48, 50, 54, 56, 57])


def _emit_paired_op(op_id: int, e: PairEmit) -> None:
    """The body of @op2_<op_id>: `_emit_op` on paired memory (setters by hand)."""
    if op_id not in PAIRED_OPS:
        raise LoweringError(f"op {op_id} has no paired body")
    if op_id == 56:
        e.sts("%out", e.splat_scalar("%c0"))
    elif op_id == 57:
        i, i2 = e.b.t(), e.b.t()
        e.b(f"{i} = fptosi double %c0 to i64")
        e.b(f"{i2} = mul i64 {i}, 2")
        p = e.gep("%out", i2)
        e.b(f"store {e.st} {e.splat_scalar('%c1')}, ptr {p}, align 8")
    else:
        _emit_op(op_id, e)


def _scalar_binary(opcode: str) -> Callable[[Emit], None]:
    def emit(e: Emit) -> None:
        e.sts("%out", e.sop(opcode, e.lds("%a"), e.lds("%b")))
    return emit


def _scalar_libm(name: str) -> Callable[[Emit], None]:
    def emit(e: Emit) -> None:
        e.sts("%out", e.scall(name, e.lds("%a")))
    return emit


def _vector_binary(opcode: str) -> Callable[[Emit], None]:
    def emit(e: Emit) -> None:
        e.stv("%out", e.vop(opcode, e.ldv("%a"), e.ldv("%b")))
    return emit


def _matrix_rows(row_fn: Callable[[Emit, str], str],
                 binary: bool = False) -> Callable[[Emit], None]:
    """An elementwise matrix op, row by row (each row read before it is written)."""
    def emit(e: Emit) -> None:
        def body(r: str) -> None:
            x = e.ldv("%a", r)
            y = e.ldv("%b", r) if binary else ""
            e.stv("%out", row_fn(e, x) if not binary else row_fn(e, x + "|" + y), r)
        e.b.loop(e.F, body)
    return emit


def _pair(fn: Callable[[Emit, str, str], str]) -> Callable[[Emit, str], str]:
    def row(e: Emit, xy: str) -> str:
        x, y = xy.split("|")
        return fn(e, x, y)
    return row


def _heaviside_vec(e: Emit, x: str) -> str:
    return e.select_cmp("ogt", x, "zeroinitializer", e.const_vec(1.0), "zeroinitializer", True)


def _recip_vec(e: Emit, x: str) -> str:
    return e.vop("fdiv", e.const_vec(1.0), x)


def _min_first(e: Emit, x: str, y: str, vector: bool) -> str:
    return e.select_cmp("olt", y, x, y, x, vector)       # b < a ? b : a


def _max_first(e: Emit, x: str, y: str, vector: bool) -> str:
    return e.select_cmp("olt", x, y, y, x, vector)       # a < b ? b : a


def _emit_op(op_id: int, e: Emit) -> None:
    """Write the body of @op_<op_id> (everything but the final ret)."""
    F = e.features
    b = e.b
    if op_id == 0:
        return
    if op_id in _SIMPLE:
        _SIMPLE[op_id](e)
        return
    if op_id == 5:
        e.sts("%out", e.scall("llvm.fabs.f64", e.lds("%a")))
    elif op_id == 6:
        e.sts("%out", e.sop("fdiv", f64(1.0), e.lds("%a")))
    elif op_id == 15:
        e.sts("%out", e.select_cmp("oge", e.lds("%a"), f64(0.0), f64(1.0), f64(0.0), False))
    elif op_id == 16:
        e.stv("%out", _heaviside_vec(e, e.ldv("%a")))
    elif op_id == 18:
        e.stv("%out", e.vop("fmul", e.ldv("%b"), e.splat(e.lds("%a"))))
    elif op_id == 19:
        e.stv("%out", e.splat(e.lds("%a")))
    elif op_id == 20:
        e.stv("%out", _recip_vec(e, e.ldv("%a")))
    elif op_id == 21:
        x = e.ldv("%a")
        e.sts("%out", e.scall("llvm.sqrt.f64", e.vsum(e.vop("fmul", x, x))))
    elif op_id == 22:
        e.stv("%out", e.vcall("fabs", e.ldv("%a")))
    elif op_id == 27:
        e.sts("%out", e.vsum(e.vop("fmul", e.ldv("%a"), e.ldv("%b"))))
    elif op_id == 28:
        y = e.ldv("%b")
        b.loop(F, lambda r: e.stv("%out", e.vop("fmul", e.splat(e.lds("%a", r)), y), r))
    elif op_id == 29:
        s = e.splat(e.lds("%a"))
        b.loop(F, lambda r: e.stv("%out", e.vop("fmul", e.ldv("%b", r), s), r))
    elif op_id == 31:
        e.stv("%out", _row_reduce(e, lambda col, j: e.vop(
            "fmul", col, e.splat(e.lds("%b", j)))))
    elif op_id == 32:
        b.loop(F, lambda r: e.stv("%out", e.splat(e.lds("%a", r)), r))
    elif op_id == 33:
        v = e.ldv("%a")
        b.loop(F, lambda r: e.stv("%out", v, r))
    elif op_id in (34, 51, 55):
        e.sts("%out", _matrix_stat(e, op_id))
    elif op_id == 35:
        acc = b.alloca(e.vt, "acc")
        x = e.ldv("%a", 0)
        b(f"store {e.vt} {e.vop('fmul', x, x)}, ptr {acc}, align 8")

        def col(r: str) -> None:
            y = e.ldv("%a", r)
            sq = e.vop("fmul", y, y)
            cur = b.t("v")
            b(f"{cur} = load {e.vt}, ptr {acc}, align 8")
            b(f"store {e.vt} {e.vop('fadd', cur, sq)}, ptr {acc}, align 8")
        b.loop(F, col, start=1)
        fin = b.t("v")
        b(f"{fin} = load {e.vt}, ptr {acc}, align 8")
        e.stv("%out", e.vcall("sqrt", fin))
    elif op_id == 36:
        e.stv("%out", e.vcall("sqrt", _row_reduce(e, lambda col, j: e.vop("fmul", col, col))))
    elif op_id == 52:
        e.stv("%out", e.vop("fdiv", _row_reduce(e, lambda col, j: col), e.const_vec(F)))
    elif op_id == 53:
        total = _row_reduce(e, lambda col, j: col)
        squares = _row_reduce(e, lambda col, j: e.vop("fmul", col, col))
        mean = e.vop("fdiv", total, e.const_vec(F))
        sq = e.vop("fdiv", squares, e.const_vec(F))
        e.stv("%out", e.vcall("sqrt", e.vop("fsub", sq, e.vop("fmul", mean, mean))))
    elif op_id == 37:
        tmp = e.temp(F * F)

        def row(r: str) -> None:
            def col(c: str) -> None:
                src = b.t()
                b(f"{src} = mul i64 {r}, {F}")
                s2 = b.t()
                b(f"{s2} = add i64 {src}, {c}")
                dst = b.t()
                b(f"{dst} = mul i64 {c}, {F}")
                d2 = b.t()
                b(f"{d2} = add i64 {dst}, {r}")
                e.sts(tmp, e.lds("%a", s2), d2)
            b.loop(F, col)
        b.loop(F, row)
        e.copy_rows("%out", tmp)
    elif op_id == 43:
        tmp = e.temp(F * F)

        def product_row(i: str) -> None:
            acc = b.alloca(e.vt, "acc")
            first = e.vop("fmul", e.splat(e.lds("%a", e.row_index(i))), e.ldv("%b", 0))
            b(f"store {e.vt} {first}, ptr {acc}, align 8")

            def inner(k: str) -> None:
                base = e.row_index(i)
                ik = b.t()
                b(f"{ik} = add i64 {base}, {k}")
                prod = e.vop("fmul", e.splat(e.lds("%a", ik)), e.ldv("%b", k))
                cur = b.t("v")
                b(f"{cur} = load {e.vt}, ptr {acc}, align 8")
                b(f"store {e.vt} {e.vop('fadd', cur, prod)}, ptr {acc}, align 8")
            b.loop(F, inner, start=1)
            fin = b.t("v")
            b(f"{fin} = load {e.vt}, ptr {acc}, align 8")
            e.stv(tmp, fin, i)
        b.loop(F, product_row)
        e.copy_rows("%out", tmp)
    elif op_id in (44, 47):
        fn = _min_first if op_id == 44 else _max_first
        e.sts("%out", fn(e, e.lds("%a"), e.lds("%b"), False))
    elif op_id in (45, 48):
        fn = _min_first if op_id == 45 else _max_first
        e.stv("%out", fn(e, e.ldv("%a"), e.ldv("%b"), True))
    elif op_id == 50:
        e.sts("%out", e.sop("fdiv", e.vsum(e.ldv("%a")), f64(F)))
    elif op_id == 54:
        x = e.ldv("%a")
        e.sts("%out", _std(e, e.vsum(x), e.vsum(e.vop("fmul", x, x)), F))
    elif op_id == 56:
        e.sts("%out", "%c0")
    elif op_id == 57:
        i = b.t()
        b(f"{i} = fptosi double %c0 to i64")
        e.sts("%out", "%c1", i)
    elif op_id == 58:
        i, j, ij, idx = b.t(), b.t(), b.t(), b.t()
        b(f"{i} = fptosi double %c0 to i64")
        b(f"{j} = fptosi double %c1 to i64")
        b(f"{ij} = mul i64 {i}, {F}")
        b(f"{idx} = add i64 {ij}, {j}")
        e.sts("%out", "%c2", idx)
    elif op_id in (59, 60, 61):
        n = F ** (op_id - 59)

        def draw(k: str) -> None:
            u = b.t()
            b(f"{u} = call double @azc_uniform01(i64 %key, i64 {k})")
            x = b.t()
            b(f"{x} = call double @azc_uniform(double %c0, double %c1, double {u})")
            e.sts("%out", x, k)
        b.loop(n, draw)
    elif op_id in (62, 63, 64):
        n = F ** (op_id - 62)

        def draw(k: str) -> None:
            k2, k3 = b.t(), b.t()
            b(f"{k2} = mul i64 {k}, 2")
            b(f"{k3} = add i64 {k2}, 1")
            u1, u2, x = b.t(), b.t(), b.t()
            b(f"{u1} = call double @azc_uniform01(i64 %key, i64 {k2})")
            b(f"{u2} = call double @azc_uniform01(i64 %key, i64 {k3})")
            b(f"{x} = call double @azc_gaussian(double %c0, double %c1, double {u1}, "
              f"double {u2})")
            e.sts("%out", x, k)
        b.loop(n, draw)
    else:  # pragma: no cover - every op id is handled above
        raise LoweringError(f"no LLVM emitter for op {op_id}")


def _row_reduce(e: Emit, term: Callable[[str, str], str]) -> str:
    """Per-row left-to-right sums of term(column j, j), vectorized across the rows.

    Lane i accumulates term(...)[i] for j = 0, 1, ..., F-1 in order, starting
    from j = 0: exactly the sequential sum of row i, but the F sums run side
    by side instead of as F dependent chains.  `%a` is the matrix.
    """
    b, F = e.b, e.F
    if F in (2, 4, 8, 16):
        return _row_reduce_transposed(e, term)

    def column(j: int | str) -> str:
        base = e.gep("%a", j)
        col = "poison"
        for i in range(F):
            x = e.lds(base, i * F)
            nxt = b.t("col")
            b(f"{nxt} = insertelement {e.vt} {col}, double {x}, i64 {i}")
            col = nxt
        return col

    acc = b.alloca(e.vt, "acc")
    b(f"store {e.vt} {term(column(0), '0')}, ptr {acc}, align 8")

    def step(j: str) -> None:
        cur = b.t("v")
        b(f"{cur} = load {e.vt}, ptr {acc}, align 8")
        b(f"store {e.vt} {e.vop('fadd', cur, term(column(j), j))}, ptr {acc}, align 8")
    b.loop(F, step, start=1)
    out = b.t("v")
    b(f"{out} = load {e.vt}, ptr {acc}, align 8")
    return out


def _row_reduce_transposed(e: Emit, term: Callable[[str, str], str]) -> str:
    """`_row_reduce` for F a power of two up to 16: the F columns come from a transpose
    of the F rows by log2(F) stages of two-row shuffles (no element-by-element
    gathers), then the same left-to-right sums, unrolled."""
    b, F = e.b, e.F
    rows = [e.ldv("%a", r) for r in range(F)]
    h = 1
    while h < F:
        # rows i and i + h (i in an even block of h) swap their odd and even h-blocks
        lo = ", ".join(f"i32 {k if (k // h) % 2 == 0 else F + k - h}" for k in range(F))
        hi = ", ".join(f"i32 {k + h if (k // h) % 2 == 0 else F + k}" for k in range(F))
        new = list(rows)
        for i in range(F):
            if (i // h) % 2:
                continue
            for j, mask in ((i, lo), (i + h, hi)):
                t = b.t("tr")
                b(f"{t} = shufflevector {e.vt} {rows[i]}, {e.vt} {rows[i + h]}, "
                  f"<{F} x i32> <{mask}>")
                new[j] = t
        rows = new
        h *= 2
    acc = term(rows[0], "0")
    for j in range(1, F):
        acc = e.vop("fadd", acc, term(rows[j], str(j)))
    return acc


def _std(e: Emit, total: str, squares: str, n: int) -> str:
    """sqrt(squares / n - (total / n)^2): the one-pass standard deviation."""
    mean = e.sop("fdiv", total, f64(n))
    sq = e.sop("fdiv", squares, f64(n))
    return e.scall("llvm.sqrt.f64", e.sop("fsub", sq, e.sop("fmul", mean, mean)))


def _matrix_stat(e: Emit, op_id: int) -> str:
    """Frobenius norm (34), mean (51) or standard deviation (55) of a matrix."""
    b, F = e.b, e.F
    tot, sq = b.alloca("double", "tot"), b.alloca("double", "sq")
    b(f"store double 0x8000000000000000, ptr {tot}, align 8")
    b(f"store double 0x8000000000000000, ptr {sq}, align 8")

    def row(r: str) -> None:
        x = e.ldv("%a", r)
        if op_id != 34:
            t0 = e.lds(tot)
            e.sts(tot, e.vsum(x, t0))
        if op_id != 51:
            s0 = e.lds(sq)
            e.sts(sq, e.vsum(e.vop("fmul", x, x), s0))
    b.loop(F, row)
    if op_id == 34:
        return e.scall("llvm.sqrt.f64", e.lds(sq))
    if op_id == 51:
        return e.sop("fdiv", e.lds(tot), f64(F * F))
    return _std(e, e.lds(tot), e.lds(sq), F * F)


_SIMPLE: dict[int, Callable[[Emit], None]] = {
    1: _scalar_binary("fadd"), 2: _scalar_binary("fsub"), 3: _scalar_binary("fmul"),
    4: _scalar_binary("fdiv"),
    7: _scalar_libm("sin"), 8: _scalar_libm("cos"), 9: _scalar_libm("tan"),
    10: _scalar_libm("asin"), 11: _scalar_libm("acos"), 12: _scalar_libm("atan"),
    13: _scalar_libm("exp"), 14: _scalar_libm("log"),
    17: _matrix_rows(_heaviside_vec),
    23: _vector_binary("fadd"), 24: _vector_binary("fsub"), 25: _vector_binary("fmul"),
    26: _vector_binary("fdiv"),
    30: _matrix_rows(_recip_vec),
    38: _matrix_rows(lambda e, x: e.vcall("fabs", x)),
    39: _matrix_rows(_pair(lambda e, x, y: e.vop("fadd", x, y)), binary=True),
    40: _matrix_rows(_pair(lambda e, x, y: e.vop("fsub", x, y)), binary=True),
    41: _matrix_rows(_pair(lambda e, x, y: e.vop("fmul", x, y)), binary=True),
    42: _matrix_rows(_pair(lambda e, x, y: e.vop("fdiv", x, y)), binary=True),
    46: _matrix_rows(_pair(lambda e, x, y: e.select_cmp("olt", x, y, x, y, True)), binary=True),
    49: _matrix_rows(_pair(lambda e, x, y: e.select_cmp("ogt", x, y, x, y, True)), binary=True),
}


def op_function(op_id: int, F: int, inline: bool = True, paired: bool = False) -> str:
    """The LLVM definition of @op_<id> at feature size F (@op2_<id> on paired memory)."""
    b = Body()
    b.block("entry")
    if paired:
        _emit_paired_op(op_id, PairEmit(b, F))
    else:
        _emit_op(op_id, Emit(b, F))
    b("ret void")
    attrs = "alwaysinline nounwind" if inline else "nounwind"
    return (f"define internal void @op{'2' if paired else ''}_{op_id}({OP_ARGS}) {attrs} {{\n"
            + b.render() + "\n}\n")


def declarations(F: int, paired: bool = False) -> str:
    """Declarations of the C library and LLVM intrinsics the emitters use (`paired`: also
    those of `PairEmit`)."""
    vt, vs = f"<{F} x double>", f"v{F}f64"
    lines = [f"declare double @{name}(double) nounwind" for name in LIBM]
    widths = [F, 2, 2 * F] if paired else [F]
    lines += [f"declare <{w} x double> @llvm.{fn}.v{w}f64(<{w} x double>)"
              for w in dict.fromkeys(widths) for fn in ("sqrt", "fabs")]
    lines += [
        "declare double @llvm.sqrt.f64(double)",
        "declare double @llvm.fabs.f64(double)",
        f"declare double @llvm.vector.reduce.fadd.{vs}(double, {vt})",
        "declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)",
        "declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)",
    ]
    return "\n".join(lines) + "\n"


def rng_functions() -> str:
    """The native random generator (runtime/rng.ll)."""
    return runtime_file("rng.ll").read_text()


# ---------------------------------------------------------------------------
# Component functions and the driver.
# ---------------------------------------------------------------------------

def component_function(name: str, instrs: Sequence[Instr], layout: Layout,
                       paired: bool = False) -> str:
    """@<name>(ptr mem, i64 kexec): the instructions as calls with constant operands
    (`paired`: on paired memory, where every double of the layout is a pair)."""
    scale, prefix = (2, "op2") if paired else (1, "op")
    b = Body()
    b.block("entry")
    for pos, ins in enumerate(instrs):
        op = OPS[ins.op]
        if op.out is None:
            continue
        ptrs = []
        for kind, addr in [(op.out, ins.out), *ins.inputs()]:
            p = b.t("p")
            b(f"{p} = getelementptr inbounds double, ptr %mem, "
              f"i64 {scale * layout.offset(kind, addr)}")
            ptrs.append(p)
        ptrs += ["null"] * (3 - len(ptrs))
        key = "0"
        if op.random:
            key = b.t("k")
            b(f"{key} = call i64 @azc_slot_key(i64 %kexec, i64 {slot_at(ins, pos)})")
        b(f"call void @{prefix}_{op.id}(ptr {ptrs[0]}, ptr {ptrs[1]}, ptr {ptrs[2]}, "
          f"double {f64(ins.c0)}, double {f64(ins.c1)}, double {f64(ins.c2)}, i64 {key})")
    b("ret void")
    return (f"define internal void @{name}(ptr noalias %mem, i64 %kexec) alwaysinline nounwind "
            "{\n" + b.render() + "\n}\n")


def driver(name: str, layout: Layout, setup: str, loops: str, uses_random: bool,
           interpreted: bool = False) -> str:
    """The protocol driver: every task of a descriptor array, as azc.interp does it.

    Per task: zero the memory, run Setup (`setup`: an LLVM call template with
    `{mem}` and `{k}` placeholders, the memory pointer and the execution key),
    then the task's training and validation: `loops` names a `task_loops`
    function.  With `interpreted`, the driver also takes the encoded program
    (`ptr %prog`) and a byte offset added to every record pointer
    (`i64 %recoff`); `{k}` is then the execution id (the interpreter derives
    random keys only when a random op runs; the Setup template also has a
    `{ktask}` placeholder, the task's key), and a program whose descriptor
    holds a compiled loops function (field 8, see `loop_kernel_module`) runs
    that instead of the interpreted one on tasks that record nothing; one that
    holds paired loops (field 9, `paired_kernel_module`) runs each two tasks in
    a row of the same shape that record nothing together, each set up in its
    own memory (other tasks: field 8's loops if any, else interpreted).
    """
    size = max(layout.size, 1)
    keyed = uses_random or interpreted
    ks_setup, pre_setup = "0", ""  # Setup's execution id is 0
    if uses_random and not interpreted:
        ks_setup, pre_setup = "%xsk", "  %xsk = call i64 @azc_exec_key(i64 %ktask, i64 0)\n"
    task_key = "  %ktask = call i64 @azc_task_key(i64 %seed, i64 %index)\n" if keyed else ""
    params = "ptr %desc, i64 %ntasks, i64 %seed, double %maxerr, ptr %out"
    linkage, prog, recoff = "", "null", "0"
    if interpreted:
        params += ", ptr %prog, i64 %recoff"
        linkage, prog, recoff = "internal ", "%prog", "%recoff"
    args = (f"ptr %mem, ptr %d, ptr %o, i64 {'%ktask' if keyed else '0'}, double %maxerr, "
            f"i64 {recoff}, ptr {prog}")
    run = f"  call void @{loops}({args})\n  br label %task.next\ntask.next:"
    pair = ""
    index = TASK_FIELDS.index("index")
    if interpreted:
        # compiled loops never record: tasks that record run the interpreted loops.
        # Two tasks in a row of the same shape run together in paired loops (field 9),
        # each set up in its own memory; other tasks run the compiled loops (field 8)
        shape = [TASK_FIELDS.index(f) for f in PAIR_SHAPE]
        same = "\n".join(f"  %sh{i}.p = getelementptr inbounds i64, ptr %d, i64 {i}\n"
                         f"  %sh{i} = load i64, ptr %sh{i}.p\n"
                         f"  %sh{i}.q = getelementptr inbounds i64, ptr %d.n, i64 {i}\n"
                         f"  %sh{i}.n = load i64, ptr %sh{i}.q\n"
                         f"  %sh{i}.eq = icmp eq i64 %sh{i}, %sh{i}.n" for i in shape)
        run = f"""  %fn.pp = getelementptr inbounds i64, ptr %prog, i64 8
  %fn.i = load i64, ptr %fn.pp
  %fn = inttoptr i64 %fn.i to ptr
  %has.fn = icmp ne ptr %fn, null
  %pf.pp = getelementptr inbounds i64, ptr %prog, i64 9
  %pf.i = load i64, ptr %pf.pp
  %pf = inttoptr i64 %pf.i to ptr
  %has.pf = icmp ne ptr %pf, null
{_no_records("%d", "")}
  %t.n = add i64 %t, 1
  %has.n = icmp slt i64 %t.n, %ntasks
{_and_chain("%pairable", ["%has.pf", "%norec", "%has.n"])}
  br i1 %pairable, label %pair.check, label %task.single
pair.check:
  %d.n.off = mul i64 %t.n, {DESC_WIDTH}
  %d.n = getelementptr inbounds i64, ptr %desc, i64 %d.n.off
{_no_records("%d.n", ".n")}
{same}
{_and_chain("%alike", ["%norec.n", *(f"%sh{i}.eq" for i in shape)])}
  br i1 %alike, label %task.pair, label %task.single
task.pair:
  %o.n.off = mul i64 %t.n, {OUT_WIDTH}
  %o.n = getelementptr inbounds double, ptr %out, i64 %o.n.off
  %index.n.pp = getelementptr inbounds i64, ptr %d.n, i64 {index}
  %index.n = load i64, ptr %index.n.pp
  call void @llvm.memset.p0.i64(ptr %mem.n, i8 0, i64 {size * 8}, i1 false)
  %ktask.n = call i64 @azc_task_key(i64 %seed, i64 %index.n)
  {setup.format(mem="%mem.n", k=ks_setup, ktask="%ktask.n")}
  call void %pf(ptr %mem, ptr %mem.n, ptr %d, ptr %d.n, ptr %o, ptr %o.n, double %maxerr)
  %t.2 = add i64 %t, 2
  br label %task.head
task.single:
  %compiled = and i1 %has.fn, %norec
  br i1 %compiled, label %task.compiled, label %task.interp
task.compiled:
  call void %fn({args})
  br label %task.next
task.interp:
{run}"""
        pair = ", [ %t.2, %task.pair ]"
    return f"""
define {linkage}void @{name}({params}) nounwind {{
entry:
{_prog_loads("s") if interpreted else ""}
  %mem = alloca [{size} x double], align 64
{f"  %mem.n = alloca [{size} x double], align 64" if interpreted else ""}
  br label %task.head
task.head:
  %t = phi i64 [ 0, %entry ], [ %t1, %task.next ]{pair}
  %t.more = icmp slt i64 %t, %ntasks
  br i1 %t.more, label %task.body, label %exit
exit:
  ret void
task.body:
  %d.off = mul i64 %t, {DESC_WIDTH}
  %d = getelementptr inbounds i64, ptr %desc, i64 %d.off
  %o.off = mul i64 %t, {OUT_WIDTH}
  %o = getelementptr inbounds double, ptr %out, i64 %o.off
  %index.pp = getelementptr inbounds i64, ptr %d, i64 {index}
  %index = load i64, ptr %index.pp
  call void @llvm.memset.p0.i64(ptr %mem, i8 0, i64 {size * 8}, i1 false)
{task_key}{pre_setup}  {setup.format(mem="%mem", k=ks_setup, ktask="%ktask")}
{run}
  %t1 = add i64 %t, 1
  br label %task.head
}}
"""


LOOPS_PARAMS = "ptr %d, ptr %o, i64 %ktask, double %maxerr, i64 %recoff, ptr %prog"


# IR shared by `task_loops` and `paired_loops` (the protocol of spec 4.3).


def _counted_loop(name: str, i: str, bound: str) -> str:
    """The head of a loop over `%<i>` (kept in `%<i>.a`) below `%<bound>`: blocks
    <name>.head and <name>.body; it leaves for <name>.done."""
    return f"""  br label %{name}.head
{name}.head:
  %{i} = load i64, ptr %{i}.a
  %{i}.more = icmp slt i64 %{i}, %{bound}
  br i1 %{i}.more, label %{name}.body, label %{name}.done
{name}.body:"""


_EPOCH_START = """  %acc = icmp eq i64 %evaltype, 4
  %ne = mul i64 %N, %E
  %nall.lt = icmp slt i64 %nreq, %ne
  %nall = select i1 %nall.lt, i64 %nreq, i64 %ne
  store i64 %nall, ptr %rem.a
  store i64 0, ptr %step.a
  store i64 0, ptr %epoch.a
  br label %epoch.head
epoch.head:
  %rem = load i64, ptr %rem.a
  %rem.pos = icmp sgt i64 %rem, 0
  br i1 %rem.pos, label %epoch.body, label %task.done
epoch.body:
  %cnt.lt = icmp slt i64 %N, %rem
  %count = select i1 %cnt.lt, i64 %N, i64 %rem
  %step0 = load i64, ptr %step.a
  %epoch = load i64, ptr %epoch.a
  %first.epoch = icmp eq i64 %epoch, 0
  %notfirst = xor i1 %first.epoch, true
  store i64 0, ptr %k.a
""" + _counted_loop("train", "k", "count") + """
  %tt = add i64 %step0, %k"""

_VALID_START = """  %nv.lt = icmp slt i64 %nvreq, %NV
  %nv = select i1 %nv.lt, i64 %nvreq, i64 %NV
  %vbase = mul i64 %epoch, %NV
""" + _counted_loop("valid", "j", "nv") + """
  %vx.off = mul i64 %j, {F}"""

_EPOCH_TRAINED = """train.done:
  %step1 = add i64 %step0, %count
  store i64 %step1, ptr %step.a
  %rem1 = sub i64 %rem, %N
  store i64 %rem1, ptr %rem.a
  store i64 0, ptr %j.a"""


def _lanes_of(t: str) -> int:
    """1 for double, n for <n x double>."""
    return 1 if t == "double" else int(t[1:t.index(" ")])


def _k(t: str, x: str) -> str:
    """The constant x (IR text) as type t (double or <n x double>)."""
    n = _lanes_of(t)
    return x if n == 1 else "<" + ", ".join([f"double {x}"] * n) + ">"


def _libm_call(t: str, fn: str, x: str, out: str) -> str:
    """`out = fn(x)` of a C library function, lane by lane for a vector type t."""
    n = _lanes_of(t)
    if n == 1:
        return f"  {out} = call double @{fn}(double {x})"
    lines, acc = [], "poison"
    for i in range(n):
        lines += [f"  {out}.x{i} = extractelement {t} {x}, i64 {i}",
                  f"  {out}.r{i} = call double @{fn}(double {out}.x{i})"]
        nxt = out if i == n - 1 else f"{out}.i{i}"
        lines.append(f"  {nxt} = insertelement {t} {acc}, double {out}.r{i}, i64 {i}")
        acc = nxt
    return "\n".join(lines)


def _sigmoid(t: str, x: str, out: str) -> str:
    """`out` = 1 / (1 + exp(-x)) (type t), as the protocol computes it."""
    return f"""  {out}.neg = fneg {t} {x}
{_libm_call(t, "exp", f"{out}.neg", f"{out}.exp")}
  {out}.den = fadd {t} {_k(t, "1.0")}, {out}.exp
  {out} = fdiv {t} {_k(t, "1.0")}, {out}.den"""


def _fitness(t: str) -> str:
    """`%fitd` (type t) from the validation loss `%lossf` and the validation size `%nvf`:
    1 - loss/NV on accuracy tasks (`%acc`), else 1 - (2/pi) atan(RMSE), 0 if RMSE is
    not finite."""
    m = "i1" if t == "double" else f"<{_lanes_of(t)} x i1>"
    v = "f64" if t == "double" else f"v{_lanes_of(t)}f64"
    inf = _k(t, "0x7FF0000000000000")
    return f"""  %lossm = fdiv {t} %lossf, %nvf
  %fa = fsub {t} {_k(t, "1.0")}, %lossm
  %rmse = call {t} @llvm.sqrt.{v}({t} %lossm)
  %rabs = call {t} @llvm.fabs.{v}({t} %rmse)
  %rfin = fcmp one {t} %rabs, {inf}
{_libm_call(t, "atan", "%rmse", "%at")}
  %atm = fmul {t} {_k(t, f64(-0.63661977236758138243))}, %at
  %fr = fadd {t} {_k(t, "1.0")}, %atm
  %frf = select {m} %rfin, {t} %fr, {t} {_k(t, "0.0")}
  %fitd = select i1 %acc, {t} %fa, {t} %frf"""


def _accuracy_error(t: str) -> str:
    """`%ea`, a validation error on an accuracy task (0 right, 1 wrong, inf when the
    probability is outside [0, 1]: `%pout`), and `%lossa` = `%loss0` + `%ea`, from the
    label `%vyv` and the decision `%ppos` (sigmoid(s1) > 0.5)."""
    m = "i1" if t == "double" else f"<{_lanes_of(t)} x i1>"
    return f"""  %lpos = fcmp ogt {t} %vyv, {_k(t, "0.5")}
  %right = icmp eq {m} %lpos, %ppos
  %e01 = select {m} %right, {t} {_k(t, "0.0")}, {t} {_k(t, "1.0")}
  %ea = select {m} %pout, {t} {_k(t, "0x7FF0000000000000")}, {t} %e01
  %lossa = fadd {t} %loss0, %ea"""


def task_loops(name: str, layout: Layout, calls: dict[Component, str], uses_random: bool,
               interpreted: bool = False, local_memory: bool = False,
               linkage: str = "internal", records: bool = True,
               sigmoid_unread: bool = False) -> str:
    """@<name>(ptr mem, ptr d, ptr o, i64 ktask, double maxerr, i64 recoff, ptr prog):
    one task's training epochs and validations after Setup, as azc.interp runs them.

    `d` is the task's descriptor row, `o` its output row (written here), `ktask`
    its random key, `recoff` a byte offset added to its record pointers, `prog`
    the encoded program (read only when `interpreted`).  `calls` maps Predict
    and Learn to call templates as in `driver`.  With `local_memory`, the
    memory is copied into a local buffer first, so that LLVM can keep the
    scalars and vectors in registers across examples (the memory is not read
    after the task).  Without `records`, the record pointers are ignored (the
    driver runs such loops only for tasks that record nothing).  With
    `sigmoid_unread` (see `sigmoid_unread`; only without records), training
    on accuracy tasks skips the sigmoid where it cannot change the outcome.
    """
    if sigmoid_unread and records:
        raise LoweringError("sigmoid_unread changes the recorded training errors")
    F = layout.features
    vt = f"<{F} x double>"
    size = max(layout.size, 1)
    voff = layout.offset(Kind.VECTOR, 0)

    def call(comp: Component, kexpr: str) -> str:
        return calls[comp].format(mem="%mem", k=kexpr, ktask="%ktask")

    def execkey(kind: int, index: str, tag: str) -> tuple[str, str]:
        if interpreted:
            return f"%{tag}id", (f"  %{tag}sh = shl i64 {index}, 2\n"
                                 f"  %{tag}id = or i64 %{tag}sh, {kind}\n")
        if not uses_random:
            return "0", ""
        lines = (f"  %{tag}sh = shl i64 {index}, 2\n"
                 f"  %{tag}id = or i64 %{tag}sh, {kind}\n"
                 f"  %{tag}k = call i64 @azc_exec_key(i64 %ktask, i64 %{tag}id)\n")
        return f"%{tag}k", lines

    ks_pred, pre_pred = execkey(1, "%tt", "xp")
    ks_learn, pre_learn = execkey(2, "%tt", "xl")
    ks_valid, pre_valid = execkey(3, "%vid", "xv")
    memory = "ptr noalias %mem.in" if local_memory else "ptr noalias %mem"
    copy = (f"  %mem = alloca [{size} x double], align 64\n"
            f"  call void @llvm.memcpy.p0.p0.i64(ptr %mem, ptr %mem.in, i64 {size * 8}, "
            f"i1 false)\n") if local_memory else ""
    inline = " alwaysinline" if linkage == "internal" and not interpreted else ""
    sig_fast, sig_fast_in = "  br label %sig.exact", ""
    if sigmoid_unread:
        # The sigmoid is only needed for the error check: with |y| + 1 <= maxerr, the
        # check fails exactly when s1 is NaN (the sigmoid is in [0, 1] otherwise), and
        # 0.5 (or the NaN) in its place gives the same outcome with no exp().
        sig_fast = """  %ya = call double @llvm.fabs.f64(double %y)
  %yb = fadd double %ya, 1.0
  %fast = fcmp ole double %yb, %maxerr
  %s1nan = fcmp uno double %s1, 0.0
  %sgf = select i1 %s1nan, double %s1, double 0.5
  br i1 %fast, label %sig.join, label %sig.exact"""
        sig_fast_in = ", [ %sgf, %sig ]"
    return f"""
define {linkage} void @{name}({memory}, {LOOPS_PARAMS}) nounwind{inline} {{
entry:
{copy}{_prog_loads("pl") if interpreted else ""}
  %rem.a = alloca i64
  %best.a = alloca double
  %step.a = alloca i64
  %epoch.a = alloca i64
  %steps.a = alloca i64
  %stop.a = alloca double
  %nte.a = alloca i64
  %nve.a = alloca i64
  %nvp.a = alloca i64
  %k.a = alloca i64
  %j.a = alloca i64
  %loss.a = alloca double
{_desc_loads(records)}
  %v0.p = getelementptr inbounds double, ptr %mem, i64 {voff}
  %s1.p = getelementptr inbounds double, ptr %mem, i64 1
  store double 0.0, ptr %best.a
  store i64 0, ptr %steps.a
  store double 0.0, ptr %stop.a
  store i64 0, ptr %nte.a
  store i64 0, ptr %nve.a
  store i64 0, ptr %nvp.a
{_EPOCH_START}
  %ord.p = getelementptr inbounds i64, ptr %order, i64 %tt
  %ex = load i64, ptr %ord.p
  %x.off = mul i64 %ex, {F}
  %x.p = getelementptr inbounds double, ptr %tx, i64 %x.off
  %y.p = getelementptr inbounds double, ptr %ty, i64 %ex
  %y = load double, ptr %y.p
  %sd = load i64, ptr %steps.a
  %sd1 = add i64 %sd, 1
  store i64 %sd1, ptr %steps.a
  %x = load {vt}, ptr %x.p, align 8
  store {vt} %x, ptr %v0.p, align 8
  store double 0.0, ptr %mem, align 8
{pre_pred}  {call(Component.PREDICT, ks_pred)}
  %s1 = load double, ptr %s1.p, align 8
  %rtp.null = icmp eq ptr %rtp, null
  br i1 %rtp.null, label %tp.done, label %tp.rec
tp.rec:
  %rtp.e = getelementptr inbounds double, ptr %rtp, i64 %tt
  store double %s1, ptr %rtp.e
  br label %tp.done
tp.done:
  br i1 %acc, label %sig, label %sig.done
sig:
{sig_fast}
sig.exact:
{_sigmoid("double", "%s1", "%sg")}
  store double %sg, ptr %s1.p, align 8
  br label %sig.join
sig.join:
  %sgv = phi double [ %sg, %sig.exact ]{sig_fast_in}
  br label %sig.done
sig.done:
  %s1b = phi double [ %s1, %tp.done ], [ %sgv, %sig.join ]
  %diff = fsub double %y, %s1b
  %err = call double @llvm.fabs.f64(double %diff)
  %bad = fcmp ugt double %err, %maxerr
  br i1 %bad, label %stopped, label %te.check
te.check:
  %rte.null = icmp eq ptr %rte, null
  %no.te = or i1 %rte.null, %notfirst
  br i1 %no.te, label %te.done, label %te.rec
te.rec:
  %nte = load i64, ptr %nte.a
  %rte.e = getelementptr inbounds double, ptr %rte, i64 %nte
  store double %err, ptr %rte.e
  %nte1 = add i64 %nte, 1
  store i64 %nte1, ptr %nte.a
  br label %te.done
te.done:
  store {vt} %x, ptr %v0.p, align 8
  store double %y, ptr %mem, align 8
{pre_learn}  {call(Component.LEARN, ks_learn)}
  %k1 = add i64 %k, 1
  store i64 %k1, ptr %k.a
  br label %train.head
{_EPOCH_TRAINED}
  store double 0.0, ptr %loss.a
  store i64 0, ptr %nvp.a
{_VALID_START.format(F=F)}
  %vx.p = getelementptr inbounds double, ptr %vx, i64 %vx.off
  %vxv = load {vt}, ptr %vx.p, align 8
  store {vt} %vxv, ptr %v0.p, align 8
  store double 0.0, ptr %mem, align 8
  %vid = add i64 %vbase, %j
{pre_valid}  {call(Component.PREDICT, ks_valid)}
  %vs1 = load double, ptr %s1.p, align 8
  %rvp.null = icmp eq ptr %rvp, null
  br i1 %rvp.null, label %vp.done, label %vp.rec
vp.rec:
  %rvp.e = getelementptr inbounds double, ptr %rvp, i64 %j
  store double %vs1, ptr %rvp.e
  br label %vp.done
vp.done:
  %j1 = add i64 %j, 1
  store i64 %j1, ptr %nvp.a
  %vy.p = getelementptr inbounds double, ptr %vy, i64 %j
  %vyv = load double, ptr %vy.p
  %loss0 = load double, ptr %loss.a
  br i1 %acc, label %vacc, label %vrms
vrms:
  %ve = fsub double %vyv, %vs1
  %ve2 = fmul double %ve, %ve
  %lossr = fadd double %loss0, %ve2
  br label %vchk
vacc:
  ; sigmoid(s1) > 0.5 exactly when s1 > 0 for |s1| > 1e-6 (exp(-s1) is then clearly
  ; on one side of 1), and it is never outside [0, 1]: no exp() needed there
  %vsabs = call double @llvm.fabs.f64(double %vs1)
  %vfar = fcmp ogt double %vsabs, 1.0e-6
  %ppos.s = fcmp ogt double %vs1, 0.0
  br i1 %vfar, label %vacc.join, label %vacc.exact
vacc.exact:
{_sigmoid("double", "%vs1", "%vp")}
  %pgt1 = fcmp ogt double %vp, 1.0
  %plt0 = fcmp olt double %vp, 0.0
  %pout.e = or i1 %pgt1, %plt0
  %ppos.e = fcmp ogt double %vp, 0.5
  br label %vacc.join
vacc.join:
  %pout = phi i1 [ false, %vacc ], [ %pout.e, %vacc.exact ]
  %ppos = phi i1 [ %ppos.s, %vacc ], [ %ppos.e, %vacc.exact ]
{_accuracy_error("double")}
  br label %vchk
vchk:
  %verr = phi double [ %ve, %vrms ], [ %ea, %vacc.join ]
  %lossn = phi double [ %lossr, %vrms ], [ %lossa, %vacc.join ]
  store double %lossn, ptr %loss.a
  %vabs = call double @llvm.fabs.f64(double %verr)
  %vbad = fcmp ugt double %vabs, %maxerr
  br i1 %vbad, label %valid.zero, label %ve.check
ve.check:
  %rve.null = icmp eq ptr %rve, null
  %no.ve = or i1 %rve.null, %notfirst
  br i1 %no.ve, label %ve.done, label %ve.rec
ve.rec:
  %nve = load i64, ptr %nve.a
  %rve.e = getelementptr inbounds double, ptr %rve, i64 %nve
  store double %vabs, ptr %rve.e
  %nve1 = add i64 %nve, 1
  store i64 %nve1, ptr %nve.a
  br label %ve.done
ve.done:
  store i64 %j1, ptr %j.a
  br label %valid.head
valid.zero:
  br label %valid.fit
valid.done:
  %lossf = load double, ptr %loss.a
  %nvf = sitofp i64 %NV to double
{_fitness("double")}
  br label %valid.fit
valid.fit:
  %fit = phi double [ 0.0, %valid.zero ], [ %fitd, %valid.done ]
  %best0 = load double, ptr %best.a
  %fit.lt = fcmp olt double %fit, %best0
  %best1 = select i1 %fit.lt, double %best0, double %fit
  store double %best1, ptr %best.a
  %epoch1 = add i64 %epoch, 1
  store i64 %epoch1, ptr %epoch.a
  br label %epoch.head
stopped:
  store double 1.0, ptr %stop.a
  %nall.rem = load i64, ptr %rem.a
  %in.first = icmp eq i64 %nall.rem, %nall
  br i1 %in.first, label %zero.best, label %task.done
zero.best:
  store double 0.0, ptr %best.a
  br label %task.done
task.done:
{_out_stores()}
  ret void
}}
"""


def _and_chain(result: str, values: list[str]) -> str:
    """IR lines setting the i1 `result` to the `and` of i1 values."""
    lines, acc = [], values[0]
    for i, v in enumerate(values[1:]):
        nxt = result if i == len(values) - 2 else f"{result}.{i}"
        lines.append(f"  {nxt} = and i1 {acc}, {v}")
        acc = nxt
    return "\n".join(lines) if lines else f"  {result} = and i1 {acc}, true"


def _no_records(d: str, s: str) -> str:
    """IR lines setting `%norec<s>` to whether the task descriptor `d` records nothing."""
    recs = [i for i, f in enumerate(TASK_FIELDS) if f.startswith("rec_")]
    lines = []
    for i in recs:
        lines += [f"  %rec{i}.p{s} = getelementptr inbounds i64, ptr {d}, i64 {i}",
                  f"  %rec{i}{s} = load i64, ptr %rec{i}.p{s}",
                  f"  %rec{i}.z{s} = icmp eq i64 %rec{i}{s}, 0"]
    return "\n".join(lines) + "\n" + _and_chain(f"%norec{s}", [f"%rec{i}.z{s}" for i in recs])


def _prog_loads(components: str) -> str:
    """Load the encoded program's (code pointer, length) of some components ("s", "p", "l")."""
    lines = []
    for c in components:
        i = "spl".index(c)
        lines += [f"  %code.{c}.pp = getelementptr inbounds i64, ptr %prog, i64 {2 * i}",
                  f"  %code.{c}.i = load i64, ptr %code.{c}.pp",
                  f"  %code.{c} = inttoptr i64 %code.{c}.i to ptr",
                  f"  %n.{c}.pp = getelementptr inbounds i64, ptr %prog, i64 {2 * i + 1}",
                  f"  %n.{c} = load i64, ptr %n.{c}.pp"]
    return "\n".join(lines)


def _desc_loads(records: bool = True, s: str = "") -> str:
    """Load a task descriptor's fields (`%d<s>`, as `%<field><s>`); record pointers get
    `%recoff` added, and are null without `records` (code that never records)."""
    names = {"train_x": "tx", "train_y": "ty", "valid_x": "vx", "valid_y": "vy",
             "order": "order", "num_train": "N", "num_valid": "NV", "epochs": "E",
             "eval_type": "evaltype", "index": "index", "num_train_req": "nreq",
             "num_valid_req": "nvreq", "rec_train_pred": "rtp", "rec_valid_pred": "rvp",
             "rec_train_err": "rte", "rec_valid_err": "rve"}
    lines = []
    for i, field in enumerate(TASK_FIELDS):
        name = names[field] + s
        lines.append(f"  %{name}.pp = getelementptr inbounds i64, ptr %d{s}, i64 {i}")
        if field.startswith("rec_") and not records:
            lines.append(f"  %{name} = inttoptr i64 0 to ptr")
        elif field.startswith("rec_"):
            lines.append(f"  %{name}.i = load i64, ptr %{name}.pp")
            lines.append(f"  %{name}.nz = icmp ne i64 %{name}.i, 0")
            lines.append(f"  %{name}.add = select i1 %{name}.nz, i64 %recoff, i64 0")
            lines.append(f"  %{name}.j = add i64 %{name}.i, %{name}.add")
            lines.append(f"  %{name} = inttoptr i64 %{name}.j to ptr")
        elif field in ("train_x", "train_y", "valid_x", "valid_y", "order"):
            lines.append(f"  %{name}.i = load i64, ptr %{name}.pp")
            lines.append(f"  %{name} = inttoptr i64 %{name}.i to ptr")
        else:
            lines.append(f"  %{name} = load i64, ptr %{name}.pp")
    return "\n".join(lines)


def _out_stores(s: str = "") -> str:
    """Store a task's outputs (the `task_loops` state with suffix `s`) in its row `%o<s>`."""
    lines = [f"  %bestf{s} = load double, ptr %best.a{s}", f"  store double %bestf{s}, ptr %o{s}"]
    sources = {"train_steps": "%steps.a", "num_train_err": "%nte.a",
               "num_valid_err": "%nve.a", "num_valid_pred": "%nvp.a"}
    for i, field in enumerate(OUT_FIELDS):
        if field == "fitness":
            continue
        p = f"%o.{field}{s}"
        lines.append(f"  {p} = getelementptr inbounds double, ptr %o{s}, i64 {i}")
        if field == "stopped_early":
            lines.append(f"  %{field}.v{s} = load double, ptr %stop.a{s}")
        else:
            lines.append(f"  %{field}.i{s} = load i64, ptr {sources[field]}{s}")
            lines.append(f"  %{field}.v{s} = sitofp i64 %{field}.i{s} to double")
        lines.append(f"  store double %{field}.v{s}, ptr {p}")
    return "\n".join(lines)


def _compiled_components(name: str, components: Sequence[tuple[Component, Sequence[Instr]]],
                         layout: Layout, paired: bool = False
                         ) -> tuple[list[str], dict[Component, str], bool]:
    """The module text compiled components need (declarations, the random generator if
    an instruction draws, the ops used, one function per component @<name>_<component>),
    their call templates for `task_loops`/`driver`, and whether any instruction draws
    (`paired`: for `paired_loops`)."""
    instrs = [ins for _, comp in components for ins in comp]
    uses_random = any(OPS[i.op].random for i in instrs)
    F = layout.features
    parts = [declarations(F, paired)] + ([rng_functions()] if uses_random else [])
    parts += [op_function(op, F, paired=paired) for op in sorted({i.op for i in instrs} - {0})]
    calls = {}
    for comp, code in components:
        fname = f"{name}_{comp.attr}"
        parts.append(component_function(fname, code, layout, paired))
        calls[comp] = f"call void @{fname}(ptr {{mem}}, i64 {{k}})"
    return parts, calls, uses_random


def kernel_module(program: Program, memory: MemoryConfig, features: int,
                  name: str = "azc_kernel") -> str:
    """A complete LLVM module: the program's kernel @<name> on every task of a descriptor."""
    layout = Layout.of(memory, features)
    parts, calls, uses_random = _compiled_components(name, list(program.components()), layout)
    parts.insert(0, f"; azc kernel {name}: F={features}, memory {memory}\n")
    parts.append(task_loops(f"{name}_loops", layout, calls, uses_random))
    parts.append(driver(name, layout, calls[Component.SETUP], f"{name}_loops", uses_random))
    parts.append(runner(f"{name}_run", calls, uses_random))
    return "\n".join(parts)


def runner(name: str, calls: dict[Component, str], uses_random: bool) -> str:
    """@<name>(ptr mem, i64 seed, i64 task, i64 kind, i64 index): one component run.

    Runs Setup (kind 0), Predict (1 training, 3 validation) or Learn (2) once on
    a caller-given memory, with the same random keys as the driver; used by the
    differential tests to start from arbitrary memory contents.
    """
    key = ("  %kt = call i64 @azc_task_key(i64 %seed, i64 %task)\n"
           "  %sh = shl i64 %index, 2\n  %id = or i64 %sh, %kind\n"
           "  %k = call i64 @azc_exec_key(i64 %kt, i64 %id)\n") if uses_random else ""
    k = "%k" if uses_random else "0"
    return f"""
define void @{name}(ptr %mem, i64 %seed, i64 %task, i64 %kind, i64 %index) nounwind {{
entry:
{key}  switch i64 %kind, label %done [ i64 0, label %s i64 1, label %p i64 2, label %l
                                      i64 3, label %p ]
s:
  {calls[Component.SETUP].format(mem="%mem", k=k)}
  br label %done
p:
  {calls[Component.PREDICT].format(mem="%mem", k=k)}
  br label %done
l:
  {calls[Component.LEARN].format(mem="%mem", k=k)}
  br label %done
done:
  ret void
}}
"""


# ---------------------------------------------------------------------------
# The native interpreter: any program, encoded, with no per-program compile.
# ---------------------------------------------------------------------------

CODE_RECORD = 32  # bytes per encoded instruction: i16 op, out, in1, in2; f64 c0, c1, c2
PROG_WIDTH = 10   # int64 per program descriptor: (code, length) per component; 6, 7: set by
#                  the native DCE (live random ops, live instructions); 8: the compiled
#                  training and validation (`loop_kernel_module`; 0: interpret them);
#                  9: the same for two tasks at once (`paired_kernel_module`; 0: none)


def interp_loop(name: str, layout: Layout) -> str:
    """@<name>(mem, ktask, xid, code, n): execute n encoded instructions.

    Each record is an `Instr` (the op, the output and input addresses, the
    three constants; a random op's in1 field holds its slot + 1, or 0 for
    "its position").  A switch on the
    op calls the op's emitter function with pointers computed from the
    layout, so interpreted and compiled code run the very same op bodies.
    """
    b = Body()
    b.block("entry")
    b("br label %head")
    b.block("head")
    b("%i = phi i64 [ 0, %entry ], [ %inext, %latch ]")
    b("%more = icmp slt i64 %i, %n")
    b("br i1 %more, label %body, label %exit")
    b.block("body")
    b("%roff = mul i64 %i, 32")
    b("%rec = getelementptr inbounds i8, ptr %code, i64 %roff")
    fields = {}
    for j, f in enumerate(("op", "out", "in1", "in2")):
        p = b.t("p")
        b(f"{p} = getelementptr inbounds i8, ptr %rec, i64 {2 * j}")
        raw = b.t()
        b(f"{raw} = load i16, ptr {p}, align 2")
        v = f"%{f}"
        b(f"{v} = zext i16 {raw} to i64")
        fields[f] = v
    for j in range(3):
        p = b.t("p")
        b(f"{p} = getelementptr inbounds i8, ptr %rec, i64 {8 + 8 * j}")
        b(f"%c{j} = load double, ptr {p}, align 8")
    cases = " ".join(f"i64 {op.id}, label %op{op.id}" for op in OPS if op.out is not None)
    b(f"switch i64 %op, label %latch [ {cases} ]")
    for op in OPS:
        if op.out is None:
            continue
        b.block(f"op{op.id}")
        ptrs = []
        for kind, field in [(op.out, "out"), *zip(op.ins, ("in1", "in2"))]:
            ptrs.append(_address(b, layout, kind, fields[field]))
        ptrs += ["null"] * (3 - len(ptrs))
        key = "0"
        if op.random:
            kx, key, sl, has, sm = b.t("k"), b.t("k"), b.t(), b.t(), b.t()
            b(f"{has} = icmp eq i64 %in1, 0")           # 0: the slot is the position
            b(f"{sm} = sub i64 %in1, 1")
            b(f"{sl} = select i1 {has}, i64 %i, i64 {sm}")
            b(f"{kx} = call i64 @azc_exec_key(i64 %ktask, i64 %xid)")
            b(f"{key} = call i64 @azc_slot_key(i64 {kx}, i64 {sl})")
        b(f"call void @op_{op.id}(ptr {ptrs[0]}, ptr {ptrs[1]}, ptr {ptrs[2]}, "
          f"double %c0, double %c1, double %c2, i64 {key})")
        b("br label %latch")
    b.block("latch")
    b("%inext = add i64 %i, 1")
    b("br label %head")
    b.block("exit")
    b("ret void")
    return (f"define internal void @{name}(ptr noalias %mem, i64 %ktask, i64 %xid, ptr %code, "
            f"i64 %n) nounwind {{\n" + b.render() + "\n}\n")


def _address(b: Body, layout: Layout, kind: Kind, addr: str) -> str:
    """A pointer to address `addr` (an i64 SSA value) of a kind in %mem."""
    base = layout.offset(kind, 0)
    stride = layout.stride(kind)
    off = addr
    if stride != 1:
        off = b.t()
        b(f"{off} = mul i64 {addr}, {stride}")
    if base:
        o2 = b.t()
        b(f"{o2} = add i64 {off}, {base}")
        off = o2
    p = b.t("p")
    b(f"{p} = getelementptr inbounds double, ptr %mem, i64 {off}")
    return p


def interpreter_module(memory: MemoryConfig, features: int, name: str = "azc_interp") -> str:
    """The native interpreter for a memory layout and F.

    Exports @<name>(desc, ntasks, seed, maxerr, out, prog, recoff) for one
    program and @<name>_batch(progs, nprogs, desc, ntasks, seeds, maxerr,
    out, recstride) for many: program p writes its per-task outputs at
    out + p * ntasks * OUT_WIDTH and its records at an offset p * recstride.
    """
    layout = Layout.of(memory, features)
    parts = [f"; azc native interpreter: F={features}, memory {memory}\n",
             declarations(features), rng_functions()]
    parts += [op_function(op.id, features) for op in OPS if op.out is not None]
    parts.append(interp_loop(f"{name}_loop", layout))
    calls = {comp: (f"call void @{name}_loop(ptr {{mem}}, i64 {{ktask}}, i64 {{k}}, "
                    f"ptr %code.{c}, i64 %n.{c})")
             for comp, c in ((Component.SETUP, "s"), (Component.PREDICT, "p"),
                             (Component.LEARN, "l"))}
    parts.append(task_loops(f"{name}_loops", layout, calls, True, interpreted=True))
    parts.append(driver(f"{name}_one", layout, calls[Component.SETUP], f"{name}_loops", True,
                        interpreted=True))
    parts.append(f"""
define void @{name}(ptr %desc, i64 %ntasks, i64 %seed, double %maxerr, ptr %out, ptr %prog,
                    i64 %recoff) nounwind {{
entry:
  call void @{name}_one(ptr %desc, i64 %ntasks, i64 %seed, double %maxerr, ptr %out,
                        ptr %prog, i64 %recoff)
  ret void
}}

define void @{name}_batch(ptr %progs, i64 %nprogs, ptr %desc, i64 %ntasks, ptr %seeds,
                          double %maxerr, ptr %out, i64 %recstride) nounwind {{
entry:
  br label %head
head:
  %p = phi i64 [ 0, %entry ], [ %pnext, %body ]
  %more = icmp slt i64 %p, %nprogs
  br i1 %more, label %body, label %exit
body:
  %poff = mul i64 %p, {PROG_WIDTH}
  %prog = getelementptr inbounds i64, ptr %progs, i64 %poff
  %sp = getelementptr inbounds i64, ptr %seeds, i64 %p
  %seed = load i64, ptr %sp
  %orow = mul i64 %p, %ntasks
  %ooff = mul i64 %orow, {OUT_WIDTH}
  %o = getelementptr inbounds double, ptr %out, i64 %ooff
  %roff = mul i64 %p, %recstride
  call void @{name}_one(ptr %desc, i64 %ntasks, i64 %seed, double %maxerr, ptr %o,
                        ptr %prog, i64 %roff)
  %pnext = add i64 %p, 1
  br label %head
exit:
  ret void
}}
""")
    return "\n".join(parts)


# ---------------------------------------------------------------------------
# Native dead-code removal and hashing of encoded programs (the search's hot path).
# ---------------------------------------------------------------------------

NONE_KIND = 3
MAX_DCE_ADDRESSES = 64  # liveness uses one 64-bit mask per kind
HASH_SEEDS = (0x243F6A8885A308D3, 0x13198A2E03707344)


def _op_table() -> str:
    """@azc_optab: per op, in1 kind | in2 kind << 2 | out kind << 4 | partial << 6."""
    vals = []
    for op in OPS:
        k0 = op.ins[0].value if op.arity >= 1 else NONE_KIND
        k1 = op.ins[1].value if op.arity >= 2 else NONE_KIND
        ko = op.out.value if op.out is not None else NONE_KIND
        vals.append(k0 | k1 << 2 | ko << 4 | int(op.partial_write) << 6)
    body = ", ".join(f"i8 {v}" for v in vals)
    return f"@azc_optab = internal constant [{len(OPS)} x i8] [{body}]\n"


def dce_module(name: str = "azc_dce") -> str:
    """Dead-code removal, compaction and hashing of encoded programs, natively.

    The same analysis as azc.passes.dce (least fixed point of liveness over
    Setup -> (Predict -> Learn)*, s1 read after every Predict, s0 and v0
    written by the harness before every Predict and Learn, element setters
    reading their output), on memories of at most 64 addresses per kind.

    @<name>(progs_in, n, code_in, code_out, progs_out, hashes): for each
    program descriptor (code pointer, length) x 3, write the live records,
    in order, at the same offset in code_out; progs_out gets the new
    descriptors, the number of live random ops (field 6) and of live
    instructions (field 7); hashes gets two 64-bit hashes of the live code.
    """
    return _op_table() + rng_functions() + f"""
define internal void @{name}_backward(ptr %code, i64 %n, ptr %live, ptr %flags)
    alwaysinline nounwind {{
entry:
  br label %head
head:
  %i = phi i64 [ %n, %entry ], [ %im, %next ]
  %more = icmp sgt i64 %i, 0
  br i1 %more, label %body, label %exit
body:
  %im = sub i64 %i, 1
  %roff = mul i64 %im, 32
  %rec = getelementptr inbounds i8, ptr %code, i64 %roff
  %op16 = load i16, ptr %rec, align 2
  %op = zext i16 %op16 to i64
  %tp = getelementptr inbounds [{len(OPS)} x i8], ptr @azc_optab, i64 0, i64 %op
  %t8 = load i8, ptr %tp
  %t = zext i8 %t8 to i64
  %ok = lshr i64 %t, 4
  %okind = and i64 %ok, 3
  %isnop = icmp eq i64 %okind, 3
  br i1 %isnop, label %dead, label %chk
chk:
  %outp = getelementptr inbounds i8, ptr %rec, i64 2
  %out16 = load i16, ptr %outp, align 2
  %out = zext i16 %out16 to i64
  %wbit = shl i64 1, %out
  %lp = getelementptr inbounds i64, ptr %live, i64 %okind
  %lw = load i64, ptr %lp
  %hit = and i64 %lw, %wbit
  %islive = icmp ne i64 %hit, 0
  br i1 %islive, label %alive, label %dead
alive:
  %fnull = icmp eq ptr %flags, null
  br i1 %fnull, label %kill, label %mark
mark:
  %fp = getelementptr inbounds i8, ptr %flags, i64 %im
  store i8 1, ptr %fp
  br label %kill
kill:
  %partial = and i64 %t, 64
  %full = icmp eq i64 %partial, 0
  %nw = xor i64 %wbit, -1
  %killed = and i64 %lw, %nw
  %lw2 = select i1 %full, i64 %killed, i64 %lw
  store i64 %lw2, ptr %lp
  %k0 = and i64 %t, 3
  %has0 = icmp ne i64 %k0, 3
  br i1 %has0, label %read0, label %r0done
read0:
  %in1p = getelementptr inbounds i8, ptr %rec, i64 4
  %in116 = load i16, ptr %in1p, align 2
  %in1 = zext i16 %in116 to i64
  %b0 = shl i64 1, %in1
  %lp0 = getelementptr inbounds i64, ptr %live, i64 %k0
  %l0 = load i64, ptr %lp0
  %l0b = or i64 %l0, %b0
  store i64 %l0b, ptr %lp0
  br label %r0done
r0done:
  %k1s = lshr i64 %t, 2
  %k1 = and i64 %k1s, 3
  %has1 = icmp ne i64 %k1, 3
  br i1 %has1, label %read1, label %next
read1:
  %in2p = getelementptr inbounds i8, ptr %rec, i64 6
  %in216 = load i16, ptr %in2p, align 2
  %in2 = zext i16 %in216 to i64
  %b1 = shl i64 1, %in2
  %lp1 = getelementptr inbounds i64, ptr %live, i64 %k1
  %l1 = load i64, ptr %lp1
  %l1b = or i64 %l1, %b1
  store i64 %l1b, ptr %lp1
  br label %next
dead:
  br label %next
next:
  br label %head
exit:
  ret void
}}

; live sets: [3 x i64] (scalar, vector, matrix masks)
define internal void @{name}_copy3(ptr %dst, ptr %src) alwaysinline nounwind {{
entry:
  %a = load <3 x i64>, ptr %src, align 8
  store <3 x i64> %a, ptr %dst, align 8
  ret void
}}

; live_in' = live_in minus s0 and v0 (written by the harness)
define internal void @{name}_harness(ptr %dst, ptr %src) alwaysinline nounwind {{
entry:
  %a = load <3 x i64>, ptr %src, align 8
  %b = and <3 x i64> %a, <i64 -2, i64 -2, i64 -1>
  store <3 x i64> %b, ptr %dst, align 8
  ret void
}}

define internal void @{name}_or(ptr %dst, ptr %src) alwaysinline nounwind {{
entry:
  %a = load <3 x i64>, ptr %src, align 8
  %b = load <3 x i64>, ptr %dst, align 8
  %c = or <3 x i64> %a, %b
  store <3 x i64> %c, ptr %dst, align 8
  ret void
}}

define internal i1 @{name}_same(ptr %x, ptr %y) alwaysinline nounwind {{
entry:
  %a = load <3 x i64>, ptr %x, align 8
  %b = load <3 x i64>, ptr %y, align 8
  %c = icmp eq <3 x i64> %a, %b
  %d = bitcast <3 x i1> %c to i3
  %e = icmp eq i3 %d, -1
  ret i1 %e
}}

; out_P = {{s1}} | live_in'(L) | live_in'(P)
define internal void @{name}_outp(ptr %dst, ptr %pin, ptr %lin) alwaysinline nounwind {{
entry:
  call void @{name}_harness(ptr %dst, ptr %pin)
  %t = alloca [3 x i64], align 8
  call void @{name}_harness(ptr %t, ptr %lin)
  call void @{name}_or(ptr %dst, ptr %t)
  %s = load i64, ptr %dst, align 8
  %s1 = or i64 %s, 2
  store i64 %s1, ptr %dst, align 8
  ret void
}}

define internal i64 @{name}_compact(ptr %src, i64 %n, ptr %flags, ptr %dst, ptr %h,
                                    ptr %nrand) alwaysinline nounwind {{
entry:
  br label %head
head:
  %i = phi i64 [ 0, %entry ], [ %i1, %next ]
  %k = phi i64 [ 0, %entry ], [ %k2, %next ]
  %more = icmp slt i64 %i, %n
  br i1 %more, label %body, label %exit
body:
  %fp = getelementptr inbounds i8, ptr %flags, i64 %i
  %f = load i8, ptr %fp
  %on = icmp ne i8 %f, 0
  br i1 %on, label %copy, label %next
copy:
  %so = mul i64 %i, 32
  %s = getelementptr inbounds i8, ptr %src, i64 %so
  %do = mul i64 %k, 32
  %d = getelementptr inbounds i8, ptr %dst, i64 %do
  %rec0 = load <4 x i64>, ptr %s, align 1
  %op = extractelement <4 x i64> %rec0, i64 0
  %opl = and i64 %op, 65535
  %isr = icmp uge i64 %opl, 59
  ; a random op with the default slot (in1 = 0) keeps drawing as at position i
  %in1f = lshr i64 %op, 32
  %in1v = and i64 %in1f, 65535
  %dflt = icmp eq i64 %in1v, 0
  %bind = and i1 %isr, %dflt
  %ip1 = add i64 %i, 1
  %ipsh = shl i64 %ip1, 32
  %opb = or i64 %op, %ipsh
  %op2 = select i1 %bind, i64 %opb, i64 %op
  %rec = insertelement <4 x i64> %rec0, i64 %op2, i64 0
  store <4 x i64> %rec, ptr %d, align 1
  %nr = load i64, ptr %nrand
  %nr1 = add i64 %nr, 1
  %nr2 = select i1 %isr, i64 %nr1, i64 %nr
  store i64 %nr2, ptr %nrand
  call void @{name}_mix(ptr %h, <4 x i64> %rec)
  %kk = add i64 %k, 1
  br label %next
next:
  %k2 = phi i64 [ %k, %body ], [ %kk, %copy ]
  %i1 = add i64 %i, 1
  br label %head
exit:
  ret i64 %k
}}

define internal void @{name}_mix(ptr %h, <4 x i64> %rec) alwaysinline nounwind {{
entry:
  %hp1 = getelementptr inbounds i64, ptr %h, i64 1
  %a = load i64, ptr %h
  %b = load i64, ptr %hp1
  %w0 = extractelement <4 x i64> %rec, i64 0
  %w1 = extractelement <4 x i64> %rec, i64 1
  %w2 = extractelement <4 x i64> %rec, i64 2
  %w3 = extractelement <4 x i64> %rec, i64 3
  %a0 = xor i64 %a, %w0
  %a1 = call i64 @azc_mix(i64 %a0)
  %a2 = xor i64 %a1, %w1
  %a3 = call i64 @azc_mix(i64 %a2)
  %a4 = xor i64 %a3, %w2
  %a5 = call i64 @azc_mix(i64 %a4)
  %a6 = xor i64 %a5, %w3
  %a7 = call i64 @azc_mix(i64 %a6)
  %b0 = add i64 %b, %w0
  %b1 = call i64 @azc_mix(i64 %b0)
  %b2 = add i64 %b1, %w1
  %b3 = call i64 @azc_mix(i64 %b2)
  %b4 = add i64 %b3, %w2
  %b5 = call i64 @azc_mix(i64 %b4)
  %b6 = add i64 %b5, %w3
  %b7 = call i64 @azc_mix(i64 %b6)
  store i64 %a7, ptr %h
  store i64 %b7, ptr %hp1
  ret void
}}

define void @{name}(ptr %progs_in, i64 %nprogs, ptr %code_in, ptr %code_out, ptr %progs_out,
                    ptr %hashes, ptr %flags) nounwind {{
entry:
  %pin = alloca [3 x i64], align 8
  %lin = alloca [3 x i64], align 8
  %npin = alloca [3 x i64], align 8
  %nlin = alloca [3 x i64], align 8
  %outp = alloca [3 x i64], align 8
  %outl = alloca [3 x i64], align 8
  %h = alloca [2 x i64], align 8
  %nrand = alloca i64, align 8
  %outs = alloca [3 x i64], align 8
  br label %phead
phead:
  %p = phi i64 [ 0, %entry ], [ %pnext, %pdone ]
  %pmore = icmp slt i64 %p, %nprogs
  br i1 %pmore, label %pbody, label %exit
pbody:
  %base = mul i64 %p, {PROG_WIDTH}
  %din = getelementptr inbounds i64, ptr %progs_in, i64 %base
  %dout = getelementptr inbounds i64, ptr %progs_out, i64 %base
{_component_loads()}
  store <3 x i64> zeroinitializer, ptr %pin, align 8
  store <3 x i64> zeroinitializer, ptr %lin, align 8
  br label %fix
fix:
  call void @{name}_outp(ptr %outp, ptr %pin, ptr %lin)
  call void @{name}_copy3(ptr %npin, ptr %outp)
  call void @{name}_backward(ptr %cp, i64 %np, ptr %npin, ptr null)
  call void @{name}_harness(ptr %outl, ptr %npin)
  call void @{name}_copy3(ptr %nlin, ptr %outl)
  call void @{name}_backward(ptr %cl, i64 %nl, ptr %nlin, ptr null)
  %s1 = call i1 @{name}_same(ptr %npin, ptr %pin)
  %s2 = call i1 @{name}_same(ptr %nlin, ptr %lin)
  %stable = and i1 %s1, %s2
  call void @{name}_copy3(ptr %pin, ptr %npin)
  call void @{name}_copy3(ptr %lin, ptr %nlin)
  br i1 %stable, label %marks, label %fix
marks:
  ; flags: scratch of at least the longest component
  call void @llvm.memset.p0.i64(ptr %flags, i8 0, i64 %nmax, i1 false)
  %hp1 = getelementptr inbounds i64, ptr %h, i64 1
  store i64 {_s64(HASH_SEEDS[0])}, ptr %h
  store i64 {_s64(HASH_SEEDS[1])}, ptr %hp1
  store i64 0, ptr %nrand
  ; Setup
  call void @{name}_harness(ptr %outs, ptr %pin)
  call void @{name}_backward(ptr %cs, i64 %ns, ptr %outs, ptr %flags)
  %ds = call ptr @{name}_dst(ptr %cs, ptr %code_in, ptr %code_out)
  %ks = call i64 @{name}_compact(ptr %cs, i64 %ns, ptr %flags, ptr %ds, ptr %h, ptr %nrand)
  call void @{name}_sep(ptr %h, i64 %ks)
  call void @llvm.memset.p0.i64(ptr %flags, i8 0, i64 %nmax, i1 false)
  ; Predict
  call void @{name}_outp(ptr %outp, ptr %pin, ptr %lin)
  call void @{name}_backward(ptr %cp, i64 %np, ptr %outp, ptr %flags)
  %dp = call ptr @{name}_dst(ptr %cp, ptr %code_in, ptr %code_out)
  %kp = call i64 @{name}_compact(ptr %cp, i64 %np, ptr %flags, ptr %dp, ptr %h, ptr %nrand)
  call void @{name}_sep(ptr %h, i64 %kp)
  call void @llvm.memset.p0.i64(ptr %flags, i8 0, i64 %nmax, i1 false)
  ; Learn
  call void @{name}_harness(ptr %outl, ptr %pin)
  call void @{name}_backward(ptr %cl, i64 %nl, ptr %outl, ptr %flags)
  %dl = call ptr @{name}_dst(ptr %cl, ptr %code_in, ptr %code_out)
  %kl = call i64 @{name}_compact(ptr %cl, i64 %nl, ptr %flags, ptr %dl, ptr %h, ptr %nrand)
  call void @{name}_sep(ptr %h, i64 %kl)
{_descriptor_stores()}
  %hout = getelementptr inbounds i64, ptr %hashes, i64 %p
  %hout2 = getelementptr inbounds i64, ptr %hout, i64 %p
  %ha = load i64, ptr %h
  %hb = load i64, ptr %hp1
  store i64 %ha, ptr %hout2
  %hout3 = getelementptr inbounds i64, ptr %hout2, i64 1
  store i64 %hb, ptr %hout3
  br label %pdone
pdone:
  %pnext = add i64 %p, 1
  br label %phead
exit:
  ret void
}}

define internal ptr @{name}_dst(ptr %c, ptr %in, ptr %out) alwaysinline nounwind {{
entry:
  %ci = ptrtoint ptr %c to i64
  %ii = ptrtoint ptr %in to i64
  %off = sub i64 %ci, %ii
  %d = getelementptr inbounds i8, ptr %out, i64 %off
  ret ptr %d
}}

define internal void @{name}_sep(ptr %h, i64 %k) alwaysinline nounwind {{
entry:
  %v = insertelement <4 x i64> <i64 -1, i64 -1, i64 -1, i64 -1>, i64 %k, i64 0
  call void @{name}_mix(ptr %h, <4 x i64> %v)
  ret void
}}

declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)
declare i64 @llvm.smax.i64(i64, i64)
declare double @log(double) nounwind
declare double @cos(double) nounwind
declare double @llvm.sqrt.f64(double)
"""


def _s64(x: int) -> int:
    return x - (1 << 64) if x >= 1 << 63 else x


def _component_loads() -> str:
    lines = []
    for i, c in enumerate("spl"):
        lines += [f"  %c{c}.pp = getelementptr inbounds i64, ptr %din, i64 {2 * i}",
                  f"  %c{c}.i = load i64, ptr %c{c}.pp",
                  f"  %c{c} = inttoptr i64 %c{c}.i to ptr",
                  f"  %n{c}.pp = getelementptr inbounds i64, ptr %din, i64 {2 * i + 1}",
                  f"  %n{c} = load i64, ptr %n{c}.pp"]
    lines += ["  %nm1 = call i64 @llvm.smax.i64(i64 %ns, i64 %np)",
              "  %nmax = call i64 @llvm.smax.i64(i64 %nm1, i64 %nl)"]
    return "\n".join(lines)


def _descriptor_stores() -> str:
    lines = []
    for i, (c, k) in enumerate(zip("spl", ("%ks", "%kp", "%kl"))):
        lines += [f"  %o{c}.pp = getelementptr inbounds i64, ptr %dout, i64 {2 * i}",
                  f"  %o{c}.i = ptrtoint ptr %d{c} to i64",
                  f"  store i64 %o{c}.i, ptr %o{c}.pp",
                  f"  %o{c}.np = getelementptr inbounds i64, ptr %dout, i64 {2 * i + 1}",
                  f"  store i64 {k}, ptr %o{c}.np"]
    lines += ["  %orp = getelementptr inbounds i64, ptr %dout, i64 6",
              "  %nrv = load i64, ptr %nrand",
              "  store i64 %nrv, ptr %orp",
              "  %otp = getelementptr inbounds i64, ptr %dout, i64 7",
              "  %tot1 = add i64 %ks, %kp",
              "  %tot = add i64 %tot1, %kl",
              "  store i64 %tot, ptr %otp"]
    return "\n".join(lines)


def fec_hash_function(name: str = "azc_fec_hash") -> str:
    """@<name>(tr, va, out, n, T, k, tidx, nreq, fps): FEC fingerprints of recorded errors.

    For program p and task t (row = p*T + t), with the counts of recorded
    errors in the driver's outputs (fields 3 and 4 of out[row]):
    h = 42; h = mix(h ^ bits(e)) + GOLDEN for each train error, then
    h = mix(h ^ count); the same for the valid errors; then the task index
    and the budgeted number of training examples are mixed in.
    """
    g = -7046029254386353131
    return f"""
define internal i64 @{name}_chain(i64 %h0, ptr %e, i64 %n) alwaysinline nounwind {{
entry:
  br label %head
head:
  %j = phi i64 [ 0, %entry ], [ %j1, %body ]
  %h = phi i64 [ %h0, %entry ], [ %h2, %body ]
  %more = icmp slt i64 %j, %n
  br i1 %more, label %body, label %exit
body:
  %p = getelementptr inbounds i64, ptr %e, i64 %j
  %w = load i64, ptr %p
  %x = xor i64 %h, %w
  %m = call i64 @azc_mix(i64 %x)
  %h2 = add i64 %m, {g}
  %j1 = add i64 %j, 1
  br label %head
exit:
  %c = xor i64 %h, %n
  %r = call i64 @azc_mix(i64 %c)
  ret i64 %r
}}

define void @{name}(ptr %tr, ptr %va, ptr %out, i64 %n, i64 %T, i64 %k, ptr %tidx, ptr %nreq,
                    ptr %fps) nounwind {{
entry:
  %rows = mul i64 %n, %T
  br label %head
head:
  %row = phi i64 [ 0, %entry ], [ %row1, %body ]
  %more = icmp slt i64 %row, %rows
  br i1 %more, label %body, label %exit
body:
  %t = srem i64 %row, %T
  %ooff = mul i64 %row, {OUT_WIDTH}
  %o3 = add i64 %ooff, 3
  %o4 = add i64 %ooff, 4
  %p3 = getelementptr inbounds double, ptr %out, i64 %o3
  %p4 = getelementptr inbounds double, ptr %out, i64 %o4
  %f3 = load double, ptr %p3
  %f4 = load double, ptr %p4
  %ntr = fptosi double %f3 to i64
  %nva = fptosi double %f4 to i64
  %eoff = mul i64 %row, %k
  %etr = getelementptr inbounds i64, ptr %tr, i64 %eoff
  %eva = getelementptr inbounds i64, ptr %va, i64 %eoff
  %h1 = call i64 @{name}_chain(i64 42, ptr %etr, i64 %ntr)
  %h2 = call i64 @{name}_chain(i64 %h1, ptr %eva, i64 %nva)
  %tp = getelementptr inbounds i64, ptr %tidx, i64 %t
  %ti = load i64, ptr %tp
  %tg = mul i64 %ti, {g}
  %x3 = xor i64 %h2, %tg
  %h3 = call i64 @azc_mix(i64 %x3)
  %np = getelementptr inbounds i64, ptr %nreq, i64 %t
  %nr = load i64, ptr %np
  %x4 = xor i64 %h3, %nr
  %h4 = call i64 @azc_mix(i64 %x4)
  %fp = getelementptr inbounds i64, ptr %fps, i64 %row
  store i64 %h4, ptr %fp
  %row1 = add i64 %row, 1
  br label %head
exit:
  ret void
}}
"""


def sigmoid_unread(predict: Sequence[Instr], learn: Sequence[Instr]) -> bool:
    """Whether the sigmoid written to s1 after a training Predict (accuracy tasks) is
    never read: Learn does not read s1 before writing it, and s1 is overwritten, by
    Learn or by Predict before any read (the prediction itself reads s1)."""
    def first_access(instrs: Sequence[Instr]) -> str | None:
        for ins in instrs:
            if (Kind.SCALAR, 1) in ins.inputs():
                return "read"
            if ins.output() == (Kind.SCALAR, 1):
                return "write"
        return None
    learn_first = first_access(learn)
    if learn_first is not None:
        return learn_first == "write"
    return first_access(predict) == "write"


def loop_kernel_module(predict: Sequence[Instr], learn: Sequence[Instr], layout: Layout,
                       name: str) -> str:
    """@<name>: a `task_loops` function with Predict and Learn compiled in.

    For the native interpreter's mixed tier: the interpreter runs Setup, then
    calls this instead of interpreting the training and validation (descriptor
    field 8) of tasks that record no predictions or errors.  The memory is
    copied into a local buffer, so that scalars and vectors stay in registers
    across examples.  Instructions are
    encoded records as the interpreter reads them (a random op's in1 field:
    slot + 1, 0 for its position).
    """
    parts, calls, random = _compiled_components(
        name, [(Component.PREDICT, predict), (Component.LEARN, learn)], layout)
    parts.append(task_loops(name, layout, calls, random, local_memory=True, linkage="",
                            records=False, sigmoid_unread=sigmoid_unread(predict, learn)))
    return "\n".join(parts)


def pairable(predict: Sequence[Instr], learn: Sequence[Instr]) -> bool:
    """Whether Predict and Learn have paired bodies (`paired_kernel_module`)."""
    return all(i.op in PAIRED_OPS or i.op == 0 for i in (*predict, *learn))


PAIRED_PARAMS = ("ptr noalias %m0, ptr noalias %m1, ptr %d0, ptr %d1, ptr %o0, ptr %o1, "
                 "double %maxerr")


def paired_loops(name: str, layout: Layout, calls: dict[Component, str],
                 sigmoid_unread: bool = False) -> str:
    """@<name>(m0, m1, d0, d1, o0, o1, maxerr): `task_loops` for two tasks of the same
    shape (examples, epochs, budgets, eval type) at once, with no records and no random
    ops: task t's memory after Setup is `m<t>`, its descriptor row `d<t>`, its output
    row `o<t>`.

    The memories are interleaved into one paired memory (`PairEmit`), and both tasks
    run each training example and each validation example together: one Predict, one
    Learn, so the two tasks' chains of dependent operations (an SGD-like program's
    prediction, sigmoid and update) overlap.  A task that stops early, or whose
    validation ends, is masked: its outputs are final, and what runs on its half of
    the memory afterwards is never read.  Each task's results are exactly those of
    `task_loops` on it alone (same operations, in the same order, per task).
    """
    F = layout.features
    st, vt2, vt = "<2 x double>", f"<{2 * F} x double>", f"<{F} x double>"
    size = 2 * max(layout.matrix_base, 1)  # Predict and Learn use no matrices
    voff = 2 * layout.offset(Kind.VECTOR, 0)
    inter = (f"<{2 * F} x i32> <" + ", ".join(f"i32 {i // 2 + (F if i % 2 else 0)}"
                                            for i in range(2 * F)) + ">")

    def pair(x0: str, x1: str, out: str) -> str:
        return (f"  {out}.h = insertelement {st} poison, double {x0}, i64 0\n"
                f"  {out} = insertelement {st} {out}.h, double {x1}, i64 1")

    def lanes(x: str, ty: str = st) -> str:  # %x.0, %x.1 from a pair
        return "\n".join(f"  {x}.{t} = extractelement {ty} {x}, i64 {t}" for t in (0, 1))

    def per_task(text: str) -> str:
        return "\n".join(text.replace("@", str(t)) for t in (0, 1))

    def predict(x: str, s1: str) -> str:
        """Both tasks' features `<x>0`, `<x>1` interleaved into `x`, in v0, s0 = 0, Predict:
        `s1` the pair of predictions."""
        return (f"  {x} = shufflevector {vt} {x}0, {vt} {x}1, {inter}\n"
                f"  store {vt2} {x}, ptr %v0.p, align 8\n"
                f"  store {st} zeroinitializer, ptr %mem, align 8\n"
                f"  {calls[Component.PREDICT].format(mem='%mem', k='0')}\n"
                f"  {s1} = load {st}, ptr %s1.p, align 8")

    # interleave the two memories: scalars pairwise, each vector whole
    init = []
    for a in range(layout.scalars):
        init.append(f"  %is{a}.p0 = getelementptr inbounds double, ptr %m0, i64 {a}\n"
                    f"  %is{a}.p1 = getelementptr inbounds double, ptr %m1, i64 {a}\n"
                    f"  %is{a}.0 = load double, ptr %is{a}.p0\n"
                    f"  %is{a}.1 = load double, ptr %is{a}.p1\n"
                    + pair(f"%is{a}.0", f"%is{a}.1", f"%is{a}") +
                    f"\n  %is{a}.q = getelementptr inbounds double, ptr %mem, i64 {2 * a}\n"
                    f"  store {st} %is{a}, ptr %is{a}.q, align 8")
    for a in range(layout.vectors):
        off = layout.offset(Kind.VECTOR, a)
        init.append(f"  %iv{a}.p0 = getelementptr inbounds double, ptr %m0, i64 {off}\n"
                    f"  %iv{a}.p1 = getelementptr inbounds double, ptr %m1, i64 {off}\n"
                    f"  %iv{a}.0 = load {vt}, ptr %iv{a}.p0, align 8\n"
                    f"  %iv{a}.1 = load {vt}, ptr %iv{a}.p1, align 8\n"
                    f"  %iv{a} = shufflevector {vt} %iv{a}.0, {vt} %iv{a}.1, {inter}\n"
                    f"  %iv{a}.q = getelementptr inbounds double, ptr %mem, i64 {2 * off}\n"
                    f"  store {vt2} %iv{a}, ptr %iv{a}.q, align 8")
    sig_fast = "  br label %sig.exact"
    if sigmoid_unread:
        # as in task_loops, for both tasks: with |y| + 1 <= maxerr the check only fails
        # on a NaN s1, and 0.5 (or the NaN) gives the same outcome with no exp()
        sig_fast = f"""  %ya = call {st} @llvm.fabs.v2f64({st} %y)
  %yb = fadd {st} %ya, <double 1.0, double 1.0>
  %fast2 = fcmp ole {st} %yb, %maxerr2
  %fast2.0 = extractelement <2 x i1> %fast2, i64 0
  %fast2.1 = extractelement <2 x i1> %fast2, i64 1
  %fast = and i1 %fast2.0, %fast2.1
  %s1nan = fcmp uno {st} %s1, zeroinitializer
  %sgf = select <2 x i1> %s1nan, {st} %s1, {st} <double 0.5, double 0.5>
  br i1 %fast, label %sig.join, label %sig.exact"""
    sig_fast_in = ", [ %sgf, %sig ]" if sigmoid_unread else ""
    return f"""
define void @{name}({PAIRED_PARAMS}) nounwind {{
entry:
  %mem = alloca [{size} x double], align 64
{chr(10).join(init)}
  %rem.a = alloca i64
  %step.a = alloca i64
  %epoch.a = alloca i64
  %k.a = alloca i64
  %j.a = alloca i64
  %loss.a = alloca {st}
{per_task('''  %best.a@ = alloca double
  %steps.a@ = alloca i64
  %stop.a@ = alloca double
  %nvp.a@ = alloca i64
  %nte.a@ = alloca i64
  %nve.a@ = alloca i64
  %alive.a@ = alloca i1
  %valid.a@ = alloca i1
  %zero.a@ = alloca i1
  store double 0.0, ptr %best.a@
  store i64 0, ptr %steps.a@
  store double 0.0, ptr %stop.a@
  store i64 0, ptr %nvp.a@
  store i64 0, ptr %nte.a@
  store i64 0, ptr %nve.a@
  store i1 true, ptr %alive.a@''')}
{_desc_loads(False, "0")}
{_desc_loads(False, "1")}
{chr(10).join(f"  %{v} = add i64 %{v}0, 0" for v in ("N", "NV", "E", "evaltype", "nreq", "nvreq"))}
  %maxerr2.h = insertelement {st} poison, double %maxerr, i64 0
  %maxerr2 = shufflevector {st} %maxerr2.h, {st} poison, <2 x i32> zeroinitializer
  %v0.p = getelementptr inbounds double, ptr %mem, i64 {voff}
  %s1.p = getelementptr inbounds double, ptr %mem, i64 2
{_EPOCH_START}
{per_task('''  %ord.p@ = getelementptr inbounds i64, ptr %order@, i64 %tt
  %ex@ = load i64, ptr %ord.p@
  %x.off@ = mul i64 %ex@, ''' + str(F) + '''
  %x.p@ = getelementptr inbounds double, ptr %tx@, i64 %x.off@
  %x@ = load ''' + vt + ''', ptr %x.p@, align 8
  %y.p@ = getelementptr inbounds double, ptr %ty@, i64 %ex@
  %y@ = load double, ptr %y.p@
  %alive@ = load i1, ptr %alive.a@
  %sd@ = load i64, ptr %steps.a@
  %inc@ = zext i1 %alive@ to i64
  %sd1@ = add i64 %sd@, %inc@
  store i64 %sd1@, ptr %steps.a@''')}
{pair("%y0", "%y1", "%y")}
{predict("%x", "%s1")}
  br i1 %acc, label %sig, label %sig.done
sig:
{sig_fast}
sig.exact:
{_sigmoid(st, "%s1", "%sg")}
  store {st} %sg, ptr %s1.p, align 8
  br label %sig.join
sig.join:
  %sgv = phi {st} [ %sg, %sig.exact ]{sig_fast_in}
  br label %sig.done
sig.done:
  %s1b = phi {st} [ %s1, %train.body ], [ %sgv, %sig.join ]
  %diff = fsub {st} %y, %s1b
  %err = call {st} @llvm.fabs.v2f64({st} %diff)
  %bad = fcmp ugt {st} %err, %maxerr2
{lanes("%bad", "<2 x i1>")}
{per_task("  %stops@ = and i1 %alive@, %bad.@")}
  %anystop = or i1 %stops0, %stops1
  br i1 %anystop, label %train.stop, label %train.learn
train.stop:
  ; the error check failed: a task stops, with fitness 0 in its first epoch
  %in.first = icmp eq i64 %rem, %nall
{per_task('''  %stop.o@ = load double, ptr %stop.a@
  %stop.n@ = select i1 %stops@, double 1.0, double %stop.o@
  store double %stop.n@, ptr %stop.a@
  %best.o@ = load double, ptr %best.a@
  %zap@ = and i1 %stops@, %in.first
  %best.n@ = select i1 %zap@, double 0.0, double %best.o@
  store double %best.n@, ptr %best.a@
  %notstop@ = xor i1 %stops@, true
  %alive.n@ = and i1 %alive@, %notstop@
  store i1 %alive.n@, ptr %alive.a@''')}
  %anyalive = or i1 %alive.n0, %alive.n1
  br i1 %anyalive, label %train.learn, label %task.done
train.learn:
  store {vt2} %x, ptr %v0.p, align 8
  store {st} %y, ptr %mem, align 8
  {calls[Component.LEARN].format(mem="%mem", k="0")}
  %k1 = add i64 %k, 1
  store i64 %k1, ptr %k.a
  br label %train.head
{_EPOCH_TRAINED}
  store {st} zeroinitializer, ptr %loss.a
{per_task('''  %alive.d@ = load i1, ptr %alive.a@
  store i1 %alive.d@, ptr %valid.a@
  store i1 false, ptr %zero.a@
  %nvp.o@ = load i64, ptr %nvp.a@
  %nvp.z@ = select i1 %alive.d@, i64 0, i64 %nvp.o@
  store i64 %nvp.z@, ptr %nvp.a@''')}
{_VALID_START.format(F=F)}
  %j1 = add i64 %j, 1
{per_task('''  %vx.p@ = getelementptr inbounds double, ptr %vx@, i64 %vx.off
  %vxv@ = load ''' + vt + ''', ptr %vx.p@, align 8
  %vy.p@ = getelementptr inbounds double, ptr %vy@, i64 %j
  %vyr@ = load double, ptr %vy.p@
  %valid@ = load i1, ptr %valid.a@
  %nvp.v@ = load i64, ptr %nvp.a@
  %nvp.w@ = select i1 %valid@, i64 %j1, i64 %nvp.v@
  store i64 %nvp.w@, ptr %nvp.a@''')}
{pair("%vyr0", "%vyr1", "%vyv")}
{predict("%vxv", "%vs1")}
  %loss0 = load {st}, ptr %loss.a
  br i1 %acc, label %vacc, label %vrms
vrms:
  %ve = fsub {st} %vyv, %vs1
  %ve2 = fmul {st} %ve, %ve
  %lossr = fadd {st} %loss0, %ve2
  br label %vchk
vacc:
  ; the sign shortcut of task_loops, for both tasks; exp() where either needs it
  %vsabs = call {st} @llvm.fabs.v2f64({st} %vs1)
  %vfar = fcmp ogt {st} %vsabs, <double 1.0e-6, double 1.0e-6>
  %ppos.s = fcmp ogt {st} %vs1, zeroinitializer
{lanes("%vfar", "<2 x i1>")}
  %bothfar = and i1 %vfar.0, %vfar.1
  br i1 %bothfar, label %vacc.join, label %vacc.exact
vacc.exact:
{_sigmoid(st, "%vs1", "%vp")}
  %pgt1 = fcmp ogt {st} %vp, <double 1.0, double 1.0>
  %plt0 = fcmp olt {st} %vp, zeroinitializer
  %pout.x = or <2 x i1> %pgt1, %plt0
  %ppos.x = fcmp ogt {st} %vp, <double 0.5, double 0.5>
  %pout.e = select <2 x i1> %vfar, <2 x i1> zeroinitializer, <2 x i1> %pout.x
  %ppos.e = select <2 x i1> %vfar, <2 x i1> %ppos.s, <2 x i1> %ppos.x
  br label %vacc.join
vacc.join:
  %pout = phi <2 x i1> [ zeroinitializer, %vacc ], [ %pout.e, %vacc.exact ]
  %ppos = phi <2 x i1> [ %ppos.s, %vacc ], [ %ppos.e, %vacc.exact ]
{_accuracy_error(st)}
  br label %vchk
vchk:
  %verr = phi {st} [ %ve, %vrms ], [ %ea, %vacc.join ]
  %lossn = phi {st} [ %lossr, %vrms ], [ %lossa, %vacc.join ]
  store {st} %lossn, ptr %loss.a  ; a task whose validation ended has fitness 0 anyway
  %vabs = call {st} @llvm.fabs.v2f64({st} %verr)
  %vbad = fcmp ugt {st} %vabs, %maxerr2
{lanes("%vbad", "<2 x i1>")}
{per_task('''  %vends@ = and i1 %valid@, %vbad.@
  %vkeep@ = xor i1 %vends@, true
  %valid.n@ = and i1 %valid@, %vkeep@
  store i1 %valid.n@, ptr %valid.a@
  %zero.o@ = load i1, ptr %zero.a@
  %zero.n@ = or i1 %zero.o@, %vends@
  store i1 %zero.n@, ptr %zero.a@''')}
  %anyvalid = or i1 %valid.n0, %valid.n1
  store i64 %j1, ptr %j.a
  br i1 %anyvalid, label %valid.head, label %valid.done
valid.done:
  %nvf1 = sitofp i64 %NV to double
{pair("%nvf1", "%nvf1", "%nvf")}
  %lossf = load {st}, ptr %loss.a
{_fitness(st)}
{lanes("%fitd")}
{per_task('''  %zero@ = load i1, ptr %zero.a@
  %fit@ = select i1 %zero@, double 0.0, double %fitd.@
  %best0@ = load double, ptr %best.a@
  %fit.lt@ = fcmp olt double %fit@, %best0@
  %best1@ = select i1 %fit.lt@, double %best0@, double %fit@
  %alive.f@ = load i1, ptr %alive.a@
  %best2@ = select i1 %alive.f@, double %best1@, double %best0@
  store double %best2@, ptr %best.a@''')}
  %epoch1 = add i64 %epoch, 1
  store i64 %epoch1, ptr %epoch.a
  br label %epoch.head
task.done:
{_out_stores("0")}
{_out_stores("1")}
  ret void
}}
"""


def paired_kernel_module(predict: Sequence[Instr], learn: Sequence[Instr], layout: Layout,
                         name: str) -> str:
    """@<name>: a `paired_loops` function with Predict and Learn compiled in (descriptor
    field 9 of the native interpreter; only for `pairable` code)."""
    if not pairable(predict, learn):
        raise LoweringError("Predict or Learn uses an op with no paired body")
    parts, calls, _ = _compiled_components(
        name, [(Component.PREDICT, predict), (Component.LEARN, learn)], layout, paired=True)
    parts.append(paired_loops(name, layout, calls, sigmoid_unread(predict, learn)))
    return "\n".join(parts)
