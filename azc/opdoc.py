"""The op reference, generated from the op table (docs/ops.md, `azc ops`).

A test regenerates it and fails when docs/ops.md is stale.
"""

from __future__ import annotations

from azc.ops import OPS, Const, Op

_CONST_WORDS = {Const.F64: "float64", Const.F32: "float32", Const.INDEX: "index"}


def _const_names(op: Op) -> list[str]:
    """Placeholder names of an op's constants (their `Param.name`: i, j, lo, hi, ...)."""
    return [p.name for p in op.params]


def op_reference() -> str:
    """The op reference as Markdown."""
    lines = [
        "# azc op reference",
        "",
        "Generated from the op table (`azc/ops.py`) by `azc ops --markdown`; do not edit.",
        "Ids are the original AutoML-Zero's. `a`, `b` are inputs, `c` the output; the",
        "letter in front is the kind (s scalar, v vector of F, m F×F matrix).",
        "",
        "| id | name | canonical text | meaning | constants | random | cost |",
        "|---:|---|---|---|---|:-:|---:|",
    ]
    for op in OPS:
        fields = {"c": f"{op.out.letter}c" if op.out is not None else "",
                  "a": f"{op.ins[0].letter}a" if op.ins else "",
                  "b": f"{op.ins[1].letter}b" if len(op.ins) > 1 else ""}
        for i, name in enumerate(_const_names(op)):
            fields[f"k{i}"] = f"<{name}>"
        text = op.template.format(**fields)
        kinds = ", ".join(_CONST_WORDS[k] for k in op.consts) or "—"
        rand = "yes" if op.random else ""
        doc = op.doc.replace("|", "\\|")
        lines.append(f"| {op.id} | {op.name} | `{text}` | {doc} | {kinds} | {rand} | {op.cost} |")
    return "\n".join(lines) + "\n"
