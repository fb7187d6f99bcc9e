"""The task driver: every task of a descriptor array, Setup then the protocol's loops.

Per task it zeroes the memory, runs Setup and calls a `task_loops` function;
the native interpreter's driver also dispatches to compiled loops
(`ProgSlot.LOOPS`) and runs two tasks of the same shape together in paired
loops (`ProgSlot.PAIRED_LOOPS`).  Text only.
"""

from __future__ import annotations

from azc.backend.contracts import (
    DESC_WIDTH,
    OUT_WIDTH,
    PAIR_SHAPE,
    ExecKind,
    Layout,
    OutField,
    ProgSlot,
    TaskField,
    on_stack,
)
from azc.backend.irtext import and_chain
from azc.backend.protocol import no_records, prog_loads


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
    holds a compiled loops function (`ProgSlot.LOOPS`, see `loop_kernel_module`) runs
    that instead of the interpreted one on tasks that record nothing; one that
    holds paired loops (`ProgSlot.PAIRED_LOOPS`, `paired_kernel_module`) runs each two tasks in
    a row of the same shape that record nothing together, each set up in its
    own memory (other tasks: the compiled loops if any, else interpreted).
    """
    size = max(layout.size, 1)
    keyed = uses_random or interpreted
    ks_setup, pre_setup = f"{ExecKind.SETUP:d}", ""  # Setup's execution id
    if uses_random and not interpreted:
        ks_setup, pre_setup = "%xsk", ("  %xsk = call i64 @azc_exec_key(i64 %ktask, "
                                       f"i64 {ExecKind.SETUP:d})\n")
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
    index = f"{TaskField.INDEX:d}"
    if interpreted:
        # compiled loops never record: tasks that record run the interpreted loops.
        # Two tasks in a row of the same shape run together in paired loops, each set
        # up in its own memory; other tasks run the compiled loops
        shape = [f"{f:d}" for f in PAIR_SHAPE]
        same = "\n".join(f"  %sh{i}.p = getelementptr inbounds i64, ptr %d, i64 {i}\n"
                         f"  %sh{i} = load i64, ptr %sh{i}.p\n"
                         f"  %sh{i}.q = getelementptr inbounds i64, ptr %d.n, i64 {i}\n"
                         f"  %sh{i}.n = load i64, ptr %sh{i}.q\n"
                         f"  %sh{i}.eq = icmp eq i64 %sh{i}, %sh{i}.n" for i in shape)
        run = f"""  %fn.pp = getelementptr inbounds i64, ptr %prog, i64 {ProgSlot.LOOPS:d}
  %fn.i = load i64, ptr %fn.pp
  %fn = inttoptr i64 %fn.i to ptr
  %has.fn = icmp ne ptr %fn, null
  %pf.pp = getelementptr inbounds i64, ptr %prog, i64 {ProgSlot.PAIRED_LOOPS:d}
  %pf.i = load i64, ptr %pf.pp
  %pf = inttoptr i64 %pf.i to ptr
  %has.pf = icmp ne ptr %pf, null
{no_records("%d", "")}
  %t.n = add i64 %t, 1
  %has.n = icmp slt i64 %t.n, %ntasks
{and_chain("%pairable", ["%has.pf", "%norec", "%has.n"])}
  br i1 %pairable, label %pair.check, label %task.single
pair.check:
  %d.n.off = mul i64 %t.n, {DESC_WIDTH}
  %d.n = getelementptr inbounds i64, ptr %desc, i64 %d.n.off
{no_records("%d.n", ".n")}
{same}
{and_chain("%alike", ["%norec.n", *(f"%sh{i}.eq" for i in shape)])}
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
    start, memory, free = "entry", f"""  %mem = alloca [{size} x double], align 64
{f"  %mem.n = alloca [{size} x double], align 64" if interpreted else ""}
""", ""
    if not on_stack(size):
        start, memory = "start", _heap_memory(size, interpreted)
        free = "  call void @free(ptr %mem)\n"
    return f"""
define {linkage}void @{name}({params}) nounwind {{
entry:
{prog_loads("s") if interpreted else ""}
{memory}  br label %task.head
task.head:
  %t = phi i64 [ 0, %{start} ], [ %t1, %task.next ]{pair}
  %t.more = icmp slt i64 %t, %ntasks
  br i1 %t.more, label %task.body, label %exit
exit:
{free}  ret void
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


def _heap_memory(size: int, interpreted: bool) -> str:
    """The driver's memory (and the interpreter's second one, `%mem.n`, for paired tasks)
    on the heap, for a memory too large for the stack; ends in the block `start`.  If
    the allocation fails, every task's output row says so (`OutField.STOPPED_EARLY` -1,
    fitness 0: see `azc.backend.jit.check_outputs`) and the driver returns."""
    nbytes = -(-size * 8 // 64) * 64
    total = 2 * nbytes if interpreted else nbytes
    second = (f"  %mem.n = getelementptr inbounds i8, ptr %mem, i64 {nbytes}\n"
              if interpreted else "")
    return f"""  %mem = call ptr @aligned_alloc(i64 64, i64 {total})
  %mem.null = icmp eq ptr %mem, null
  br i1 %mem.null, label %nomem, label %start
nomem:
  br label %nomem.head
nomem.head:
  %nm.t = phi i64 [ 0, %nomem ], [ %nm.t1, %nomem.body ]
  %nm.more = icmp slt i64 %nm.t, %ntasks
  br i1 %nm.more, label %nomem.body, label %nomem.done
nomem.body:
  %nm.off = mul i64 %nm.t, {OUT_WIDTH}
  %nm.o = getelementptr inbounds double, ptr %out, i64 %nm.off
  store double 0.0, ptr %nm.o
  %nm.s = getelementptr inbounds double, ptr %nm.o, i64 {OutField.STOPPED_EARLY:d}
  store double -1.0, ptr %nm.s
  %nm.t1 = add i64 %nm.t, 1
  br label %nomem.head
nomem.done:
  ret void
start:
{second}"""
