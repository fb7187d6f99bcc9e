"""Per-program kernels: compiled components, whole-program kernels and loop kernels.

`kernel_module` is one program compiled for every task of a descriptor (Setup,
the protocol's loops, and a component runner for the differential tests);
`loop_kernel_module` and `paired_kernel_module` compile only Predict and Learn
into the protocol's loops, for the native interpreter's mixed tier (descriptor
slots `ProgSlot.LOOPS` and `ProgSlot.PAIRED_LOOPS`).  Text only.
"""

from __future__ import annotations

from collections.abc import Sequence

from azc.backend.contracts import EXEC_KIND_BITS, ExecKind, Layout
from azc.backend.driver import driver
from azc.backend.emitters import declarations, op_function, rng_functions
from azc.backend.irtext import Body, f64
from azc.backend.protocol import paired_loops, task_loops
from azc.errors import LoweringError
from azc.ir import Component, Instr, MemoryConfig, Program, slot_at
from azc.ops import OPS, Kind

# Component functions and the driver.

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


def compiled_components(name: str, components: Sequence[tuple[Component, Sequence[Instr]]],
                         layout: Layout, paired: bool = False
                         ) -> tuple[list[str], dict[Component, str], bool]:
    """The module text compiled components need (declarations, the random generator if
    an instruction draws, the ops used, one function per component @<name>_<component>),
    their call templates for `task_loops`/`driver`, and whether any instruction draws
    (`paired`: for `paired_loops`)."""
    instrs = [ins for _, comp in components for ins in comp]
    uses_random = any(OPS[i.op].random for i in instrs)
    F = layout.features
    parts = [declarations(F, paired, layout.heap)] + ([rng_functions()] if uses_random else [])
    parts += [op_function(OPS[op], F, paired=paired)
              for op in sorted({i.op for i in instrs if OPS[i.op].out is not None})]
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
    parts, calls, uses_random = compiled_components(name, list(program.components()), layout)
    parts.insert(0, f"; azc kernel {name}: F={features}, memory {memory}\n")
    parts.append(task_loops(f"{name}_loops", layout, calls, uses_random))
    parts.append(driver(name, layout, calls[Component.SETUP], f"{name}_loops", uses_random))
    parts.append(runner(f"{name}_run", calls, uses_random))
    return "\n".join(parts)


def runner(name: str, calls: dict[Component, str], uses_random: bool) -> str:
    """@<name>(ptr mem, i64 seed, i64 task, i64 kind, i64 index): one component run.

    Runs Setup, Predict (training or validation) or Learn once (`kind`: an
    `ExecKind`) on a caller-given memory, with the same random keys as the driver; used by the
    differential tests to start from arbitrary memory contents.
    """
    key = ("  %kt = call i64 @azc_task_key(i64 %seed, i64 %task)\n"
           f"  %sh = shl i64 %index, {EXEC_KIND_BITS}\n  %id = or i64 %sh, %kind\n"
           "  %k = call i64 @azc_exec_key(i64 %kt, i64 %id)\n") if uses_random else ""
    k = "%k" if uses_random else "0"
    cases = (f"i64 {ExecKind.SETUP:d}, label %s i64 {ExecKind.TRAIN_PREDICT:d}, label %p "
             f"i64 {ExecKind.LEARN:d}, label %l\n                                      "
             f"i64 {ExecKind.VALID_PREDICT:d}, label %p")
    return f"""
define void @{name}(ptr %mem, i64 %seed, i64 %task, i64 %kind, i64 %index) nounwind {{
entry:
{key}  switch i64 %kind, label %done [ {cases} ]
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
    parts, calls, random = compiled_components(
        name, [(Component.PREDICT, predict), (Component.LEARN, learn)], layout)
    parts.append(task_loops(name, layout, calls, random, local_memory=True, linkage="",
                            records=False, sigmoid_unread=sigmoid_unread(predict, learn)))
    return "\n".join(parts)


def pairable(predict: Sequence[Instr], learn: Sequence[Instr]) -> bool:
    """Whether Predict and Learn have paired bodies (`paired_kernel_module`)."""
    return all(OPS[i.op].paired or OPS[i.op].out is None for i in (*predict, *learn))


def paired_kernel_module(predict: Sequence[Instr], learn: Sequence[Instr], layout: Layout,
                         name: str) -> str:
    """@<name>: a `paired_loops` function with Predict and Learn compiled in (descriptor
    field 9 of the native interpreter; only for `pairable` code)."""
    if not pairable(predict, learn):
        raise LoweringError("Predict or Learn uses an op with no paired body")
    parts, calls, _ = compiled_components(
        name, [(Component.PREDICT, predict), (Component.LEARN, learn)], layout, paired=True)
    parts.append(paired_loops(name, layout, calls, sigmoid_unread(predict, learn)))
    return "\n".join(parts)
