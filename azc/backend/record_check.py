"""The boundary check of encoded programs, in native code.

@<name>(progs, nprogs) -> i64 checks the encoded instruction records
(`RecordField`) of programs (their descriptors, `ProgSlot`: each component's
records and their number) against a memory and F before native code runs them: the op id is one of
the op table's, every address field is below its kind's size (fields that are
not addresses below `MAX_ADDRESSES`), and every element-index constant is a
whole number in [0, F).  It returns the first program with a record that
fails, or -1.  The same check as `azc.ir.bad_records` (its numpy definition,
tested against this one), from the same per-op facts (`azc.ir.record_facts`);
it costs a few nanoseconds a record, so every batch is checked, the search's
included.  Text only.
"""

from __future__ import annotations

from azc.backend.contracts import PROG_WIDTH, ProgSlot, RecordField
from azc.ir import MAX_ADDRESSES, Component, MemoryConfig, record_facts

_INF = "0x7FF0000000000000"


def record_check(name: str, memory: MemoryConfig) -> str:
    """The checking function for a memory (its `features`, or no index limit if None)."""
    kinds, index_consts = record_facts()
    limits = (memory.scalars, memory.vectors, memory.matrices, MAX_ADDRESSES)
    top = _INF if memory.features is None else f"{float(memory.features):.1f}"
    groups: dict[tuple, list[int]] = {}  # ops with the same facts share one block
    for op_id, (ks, idx) in enumerate(zip(kinds, index_consts)):
        groups.setdefault((tuple(limits[k] for k in ks), tuple(bool(x) for x in idx)),
                          []).append(op_id)
    lines = [f"define internal i64 @{name}_records(ptr %code, i64 %n) nounwind {{",
             "entry:", "  br label %head",
             "head:", "  %i = phi i64 [ 0, %entry ], [ %inext, %ok ]",
             "  %more = icmp slt i64 %i, %n", "  br i1 %more, label %body, label %exit",
             "body:", f"  %roff = mul i64 %i, {RecordField.C2 + 8}",
             "  %rec = getelementptr inbounds i8, ptr %code, i64 %roff"]
    for field in (RecordField.OP, RecordField.OUT, RecordField.IN1, RecordField.IN2):
        f = field.name.lower()
        lines += [f"  %{f}.p = getelementptr inbounds i8, ptr %rec, i64 {field:d}",
                  f"  %{f}.h = load i16, ptr %{f}.p, align 2",
                  f"  %{f} = zext i16 %{f}.h to i64"]  # a negative int16 is >= 32768
    for j, field in enumerate((RecordField.C0, RecordField.C1, RecordField.C2)):
        lines += [f"  %c{j}.p = getelementptr inbounds i8, ptr %rec, i64 {field:d}",
                  f"  %c{j} = load double, ptr %c{j}.p, align 8"]
    cases = " ".join(f"i64 {op_id}, label %g{g}" for g, ops in enumerate(groups.values())
                     for op_id in ops)
    lines.append(f"  switch i64 %op, label %bad [ {cases} ]")
    for g, (lims, idx) in enumerate(groups):
        lines.append(f"g{g}:")
        terms = []
        for slot, lim in zip(("out", "in1", "in2"), lims):
            lines.append(f"  %g{g}.{slot} = icmp ult i64 %{slot}, {lim}")
            terms.append(f"%g{g}.{slot}")
        for j in (j for j, used in enumerate(idx) if used):
            lines += [f"  %g{g}.lo{j} = fcmp oge double %c{j}, 0.0",
                      f"  %g{g}.hi{j} = fcmp olt double %c{j}, {top}",
                      f"  %g{g}.fl{j} = call double @llvm.floor.f64(double %c{j})",
                      f"  %g{g}.whole{j} = fcmp oeq double %g{g}.fl{j}, %c{j}"]
            terms += [f"%g{g}.lo{j}", f"%g{g}.hi{j}", f"%g{g}.whole{j}"]
        acc = terms[0]
        for k, term in enumerate(terms[1:]):
            lines.append(f"  %g{g}.and{k} = and i1 {acc}, {term}")
            acc = f"%g{g}.and{k}"
        lines.append(f"  br i1 {acc}, label %ok, label %bad")
    lines += ["ok:", "  %inext = add i64 %i, 1", "  br label %head",
              "bad:", "  ret i64 %i",
              "exit:", "  ret i64 -1", "}", "",
              "declare double @llvm.floor.f64(double)", ""]
    return "\n".join(lines) + _programs(name)


def _programs(name: str) -> str:
    """@<name>(progs, nprogs): the first program of the descriptors whose records fail."""
    lines = [f"define i64 @{name}(ptr %progs, i64 %nprogs) nounwind {{", "entry:",
             "  br label %head", "head:", "  %p = phi i64 [ 0, %entry ], [ %pnext, %next ]",
             "  %more = icmp slt i64 %p, %nprogs", "  br i1 %more, label %c0, label %exit"]
    for c in Component:
        then = f"c{c + 1}" if c + 1 < len(Component) else "next"
        lines += [f"c{c:d}:",
                  f"  %d{c:d} = mul i64 %p, {PROG_WIDTH}",
                  f"  %cs{c:d} = add i64 %d{c:d}, {ProgSlot.code(c):d}",
                  f"  %cp{c:d} = getelementptr inbounds i64, ptr %progs, i64 %cs{c:d}",
                  f"  %ci{c:d} = load i64, ptr %cp{c:d}",
                  f"  %code{c:d} = inttoptr i64 %ci{c:d} to ptr",
                  f"  %ns{c:d} = add i64 %d{c:d}, {ProgSlot.length(c):d}",
                  f"  %np{c:d} = getelementptr inbounds i64, ptr %progs, i64 %ns{c:d}",
                  f"  %n{c:d} = load i64, ptr %np{c:d}",
                  f"  %r{c:d} = call i64 @{name}_records(ptr %code{c:d}, i64 %n{c:d})",
                  f"  %ok{c:d} = icmp slt i64 %r{c:d}, 0",
                  f"  br i1 %ok{c:d}, label %{then}, label %bad"]
    lines += ["next:", "  %pnext = add i64 %p, 1", "  br label %head",
              "bad:", "  ret i64 %p", "exit:", "  ret i64 -1", "}", ""]
    return "\n".join(lines)
