"""IR -> canonical text of the .az language (docs/language.md).

The printed form is the one users read, diff and keep: two-space indentation,
all three headers, `pass` for an empty component, each op in the canonical
form of its op-table row, and numbers in the shortest text that reads back to
the same value (Python repr for float64, the shortest float32 round trip for
float32 constants), so that `parse(format(p)) == p`.
"""

from __future__ import annotations

import numpy as np

from azc.ir import Instr, Program, positional_slots
from azc.ops import OPS, Const


def format_f64(x: float) -> str:
    """Shortest text that reads back to the same float64."""
    return repr(float(x))


def format_f32(x: float) -> str:
    """Shortest text that reads back (rounded to float32) to the same float32."""
    with np.errstate(over="ignore"):
        return str(np.float32(x))


def _const(kind: Const, x: float) -> str:
    if kind is Const.INDEX:
        return str(int(x))
    if kind is Const.F32:
        return format_f32(x)
    return format_f64(x)


def format_instr(ins: Instr) -> str:
    """One instruction in canonical form (no indentation)."""
    op = OPS[ins.op]
    fields: dict[str, str] = {}
    if op.out is not None:
        fields["c"] = f"{op.out.letter}{ins.out}"
    for name, kind, addr in zip("ab", op.ins, (ins.in1, ins.in2)):
        fields[name] = f"{kind.letter}{addr}"
    for i, ckind in enumerate(op.consts):
        fields[f"k{i}"] = _const(ckind, ins.consts[i])
    return op.template.format(**fields)


def format_program(program: Program, indent: str = "  ") -> str:
    """The whole program in canonical form, ending with a newline.

    Random ops bound to a slot other than their position (after dead-code
    removal) are printed behind no-ops that put them back at their slot, so
    the text draws the same random numbers as the program.
    """
    lines: list[str] = []
    for comp, instrs in program.components():
        instrs = positional_slots(instrs)
        lines.append(f"def {comp.title}():")
        if not instrs:
            lines.append(f"{indent}pass")
        lines.extend(f"{indent}{format_instr(ins)}" for ins in instrs)
    return "\n".join(lines) + "\n"
