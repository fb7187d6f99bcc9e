"""LLVM IR text: the small helpers every IR generator of the backend writes with.

Exact float literals (`f64`), function bodies with fresh SSA names and labels
(`Body`), and snippets several generators share: and-chains of flags, the head
of a counted loop, C-library calls lane by lane, constants of a scalar or
vector type.  Text only: it knows nothing of ops, layouts or the protocol, and
never imports llvmlite.
"""

from __future__ import annotations

import struct
from collections.abc import Callable


def f64(x: float) -> str:
    """A float64 as an exact LLVM IR literal."""
    return f"0x{struct.unpack('<Q', struct.pack('<d', float(x)))[0]:016X}"


class Body:
    """Lines of one LLVM function body with fresh SSA names and labels."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.allocas: list[str] = []
        self.frees: list[str] = []
        self.n = 0

    def alloca(self, ty: str, prefix: str = "tmp") -> str:
        """A stack slot allocated once in the entry block (never inside a loop)."""
        p = self.t(prefix)
        self.allocas.append(f"  {p} = alloca {ty}, align 8")
        return p

    def malloc(self, nbytes: int, prefix: str = "heap") -> str:
        """A heap buffer of nbytes (64-byte aligned), allocated here; the caller emits
        `frees` before every return.  The process aborts if the allocation fails."""
        p, null, ok = self.t(prefix), self.t("null"), self.label("alloc.ok")
        oom = self.label("alloc.fail")
        self(f"{p} = call ptr @aligned_alloc(i64 64, i64 {-(-nbytes // 64) * 64})")
        self(f"{null} = icmp eq ptr {p}, null")
        self(f"br i1 {null}, label %{oom}, label %{ok}")
        self.block(oom)
        self("call void @abort()")
        self("unreachable")
        self.block(ok)
        self.frees.append(f"call void @free(ptr {p})")
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


# IR shared by `task_loops` and `paired_loops` (the protocol of docs/semantics.md §4.3).


def counted_loop(name: str, i: str, bound: str) -> str:
    """The head of a loop over `%<i>` (kept in `%<i>.a`) below `%<bound>`: blocks
    <name>.head and <name>.body; it leaves for <name>.done."""
    return f"""  br label %{name}.head
{name}.head:
  %{i} = load i64, ptr %{i}.a
  %{i}.more = icmp slt i64 %{i}, %{bound}
  br i1 %{i}.more, label %{name}.body, label %{name}.done
{name}.body:"""


def lanes_of(t: str) -> int:
    """1 for double, n for <n x double>."""
    return 1 if t == "double" else int(t[1:t.index(" ")])


def const_of(t: str, x: str) -> str:
    """The constant x (IR text) as type t (double or <n x double>)."""
    n = lanes_of(t)
    return x if n == 1 else "<" + ", ".join([f"double {x}"] * n) + ">"


def libm_call(t: str, fn: str, x: str, out: str) -> str:
    """`out = fn(x)` of a C library function, lane by lane for a vector type t."""
    n = lanes_of(t)
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


def and_chain(result: str, values: list[str]) -> str:
    """IR lines setting the i1 `result` to the `and` of i1 values."""
    lines, acc = [], values[0]
    for i, v in enumerate(values[1:]):
        nxt = result if i == len(values) - 2 else f"{result}.{i}"
        lines.append(f"  {nxt} = and i1 {acc}, {v}")
        acc = nxt
    return "\n".join(lines) if lines else f"  {result} = and i1 {acc}, true"


# What generated code that uses the heap declares (`Layout.heap`, `Body.malloc`).
HEAP_DECLARATIONS = ("declare ptr @aligned_alloc(i64, i64) nounwind\n"
                     "declare void @free(ptr) nounwind\n"
                     "declare void @abort() noreturn nounwind\n")


def s64(x: int) -> int:
    return x - (1 << 64) if x >= 1 << 63 else x


def dedupe(text: str, seen: set[str]) -> str:
    """Drop definitions/declarations already in the module (shared ops, libm, rng)."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        if skipping:
            if line.startswith("}"):
                skipping = False
            continue
        head = line.split("(")[0]
        is_shared_def = line.startswith("define internal") and any(
            p in head for p in ("@op_", "@op2_", "@azc_"))
        if is_shared_def or line.startswith("declare"):
            sig = head
            if sig in seen:
                skipping = line.startswith("define")
                continue
            seen.add(sig)
        out.append(line)
    return "\n".join(out)
