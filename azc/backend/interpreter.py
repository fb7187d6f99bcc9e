"""The native interpreter in LLVM IR: any encoded program, with no per-program compile.

One module per memory layout and F: every op's body (the same emitters as
compiled kernels), a loop that executes encoded instruction records
(`RecordField`) by a switch on the op, and the task driver and protocol loops
around it.  azc.backend.native loads it and calls it.  Text only.
"""

from __future__ import annotations

from azc.backend.contracts import CODE_RECORD, OUT_WIDTH, PROG_WIDTH, Layout, RecordField
from azc.backend.driver import driver
from azc.backend.emitters import declarations, op_function, rng_functions
from azc.backend.irtext import Body
from azc.backend.protocol import task_loops
from azc.ir import Component, MemoryConfig
from azc.ops import OPS, Kind


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
    b(f"%roff = mul i64 %i, {CODE_RECORD}")
    b("%rec = getelementptr inbounds i8, ptr %code, i64 %roff")
    fields = {}
    for field in (RecordField.OP, RecordField.OUT, RecordField.IN1, RecordField.IN2):
        f = field.name.lower()
        p = b.t("p")
        b(f"{p} = getelementptr inbounds i8, ptr %rec, i64 {field:d}")
        raw = b.t()
        b(f"{raw} = load i16, ptr {p}, align 2")
        v = f"%{f}"
        b(f"{v} = zext i16 {raw} to i64")
        fields[f] = v
    for j, field in enumerate((RecordField.C0, RecordField.C1, RecordField.C2)):
        p = b.t("p")
        b(f"{p} = getelementptr inbounds i8, ptr %rec, i64 {field:d}")
        b(f"%c{j} = load double, ptr {p}, align 8")
    cases = " ".join(f"i64 {op.id}, label %op{op.id}" for op in OPS if op.out is not None)
    b(f"switch i64 %op, label %latch [ {cases} ]")
    for op in OPS:
        if op.out is None:
            continue
        b.block(f"op{op.id}")
        ptrs = []
        for kind, slot in [(op.out, "out"), *zip(op.ins, ("in1", "in2"))]:
            ptrs.append(_address(b, layout, kind, fields[slot]))
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
             declarations(features, heap=layout.heap), rng_functions()]
    parts += [op_function(op, features) for op in OPS if op.out is not None]
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
