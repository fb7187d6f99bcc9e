"""Operand helpers of the per-op emitters: `Emit` for one task, `PairEmit` for two.

An emitter (azc.backend.emitters) writes an op body only through these helpers
(scalar and vector loads and stores, vector ops, ordered reductions, compares
and selects, C-library calls), so that one emitter serves both the memory of
one task and the interleaved memory of two tasks run together.
"""

from __future__ import annotations

from azc.backend.contracts import on_stack
from azc.backend.irtext import Body, f64, libm_call

# Per-op emitters.  Each writes the body of @op_<id> given F.

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
        for line in libm_call(self.st, name, x, r).splitlines():
            self.b(line.strip())
        return r

    def temp(self, n: int) -> str:
        """A buffer of n float64 (for results that may alias an input): on the stack, or
        on the heap when it is too large for it (`on_stack`; freed at the op's end)."""
        if not on_stack(n):
            return self.b.malloc(8 * n, "temp")
        return self.b.alloca(f"[{n} x double]")

    def copy_rows(self, dst: str, src: str) -> None:
        self.b.loop(self.F, lambda r: self.stv(dst, self.ldv(src, r), r))


class PairEmit(Emit):
    """`Emit` for two tasks at once (`paired_loops`): a scalar is a <2 x double> (task 0,
    task 1) and a vector of F a <2F x double> with the tasks' elements interleaved, so
    that every elementwise op is one op on both tasks, and a reduction keeps each task's
    left-to-right order.  Each task computes exactly what it computes alone.  Only the
    ops whose row is `paired` have paired bodies."""

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
