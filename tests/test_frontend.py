"""The .az language: parsing, printing, round trips and every error case of docs/language.md."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings

import azc
from azc.errors import AzcError, ParseError, VerifyError
from azc.frontend import parse, parse_file
from azc.ir import Component, Instr, MemoryConfig, Program
from azc.ops import OPS
from azc.printer import format_instr, format_program

from .strategies import memory_and_program

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "examples"


def example_paths() -> list[Path]:
    paths = sorted(EXAMPLES.glob("*.az"))
    if SHARED.is_dir():
        paths += sorted(SHARED.glob("*.az"))
    return paths


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_examples_parse_as_they_are(path: Path) -> None:
    prog = parse_file(path)
    assert sum(prog.sizes()) > 0
    assert parse(format_program(prog)) == prog


def test_all_ops_example_uses_every_op_in_order() -> None:
    prog = parse_file(EXAMPLES / "all_ops.az")
    ids = sorted({ins.op for _, _, ins in prog.instructions()})
    assert ids == list(range(65))


def test_linear_example_is_what_it_says() -> None:
    prog = parse_file(EXAMPLES / "linear_sgd.az")
    assert prog.setup == (Instr.make(56, 2, consts=[0.1]),)
    assert prog.predict == (Instr.make(27, 1, 0, 1),)
    # `v2 = v0 * s4` is op 18 with its operands swapped back: in1 = s4, in2 = v0
    assert prog.learn[2] == Instr.make(18, 2, 4, 0)


@settings(max_examples=300, deadline=None)
@given(memory_and_program())
def test_parse_format_round_trip(mp: tuple[MemoryConfig, Program]) -> None:
    mem, prog = mp
    text = format_program(prog)
    assert parse(text, memory=mem) == prog
    assert format_program(parse(text)) == text


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name)
def test_every_op_has_a_canonical_form_that_reads_back(op) -> None:
    ins = Instr.make(op, 1, 2, 3, consts=[1, 2, 0.25])
    text = f"def Setup():\n  {format_instr(ins)}\ndef Predict():\n  pass\ndef Learn():\n  pass\n"
    prog = parse(text)
    assert prog.setup == (ins,)
    assert format_program(prog) == text


CANONICAL = """\
def Setup():
  s2 = 0.001
  v1[3] = -0.25
  m0[1, 2] = 1e-08
  s3 = uniform(-1.0, 0.1)
  m1 = gaussian(0.0, 0.1)
def Predict():
  s1 = dot(v0, v1)
def Learn():
  pass
"""


def test_canonical_text_formats_to_itself() -> None:
    assert format_program(parse(CANONICAL)) == CANONICAL


def test_float32_constants_are_rounded_and_print_short() -> None:
    prog = parse("def Setup():\n  v1[0] = 0.1\n  s2 = 0.1\n")
    assert prog.setup[0].c1 == float(__import__("numpy").float32(0.1))
    assert prog.setup[1].c0 == 0.1
    assert format_instr(prog.setup[0]) == "v1[0] = 0.1"


def test_special_numbers() -> None:
    prog = parse("def Setup():\n  s2 = inf\n  s3 = -inf\n  s4 = nan\n  s5 = -0.0\n  s6 = 2\n")
    text = format_program(prog)
    assert "s2 = inf" in text and "s3 = -inf" in text and "s4 = nan" in text
    assert "s5 = -0.0" in text and "s6 = 2.0" in text
    assert parse(text) == prog


def test_missing_components_are_empty_and_pass_is_accepted() -> None:
    prog = parse("# nothing but a comment\n\ndef Predict():\n  pass\n  s1 = s0 + s0  # x\n")
    assert prog.setup == () and prog.learn == ()
    assert len(prog.predict) == 1


def test_swapped_operands_of_ops_18_and_29() -> None:
    a = parse("def Learn():\n  v2 = v0 * s4\n  m1 = m0 * s2\n")
    b = parse("def Learn():\n  v2 = s4 * v0\n  m1 = s2 * m0\n")
    assert a == b


def test_indentation_is_not_significant() -> None:
    assert parse("def Predict():\ns1 = dot(v0, v1)\n") == parse(
        "def Predict():\n        s1 = dot(v0, v1)")


def test_public_api() -> None:
    prog = azc.parse("def Predict():\n  s1 = dot(v0, v1)\n")
    assert azc.parse(azc.format(prog)) == prog


# ---------------------------------------------------------------------------
# Errors: each case of docs/language.md, with message, line and column.
# ---------------------------------------------------------------------------

MEM = MemoryConfig(4, 3, 1, 4)

ERRORS = [
    # (source, line, column, message fragment)
    ("def Setup():\n  s1 = dot(s0, v1)\n", 2, 8,
     "dot() takes (vector, vector) or (matrix, vector), got (scalar, vector)"),
    ("def Setup():\n  s1 = frobnicate(s0)\n", 2, 8, "unknown function 'frobnicate'"),
    ("def Setup():\n  s1 = s2 % s3\n", 2, 11, "unexpected character '%'"),
    ("def Setup():\n  s1 = sin(s0, s2)\n", 2, 8, "sin() takes (scalar), got (scalar, scalar)"),
    ("def Setup():\n  s1 = sin()\n", 2, 8, "sin() takes (scalar), got ()"),
    ("def Setup():\n  v1 = s0 + v1\n", 2, 8, "'+' takes"),
    ("def Setup():\n  s1 = v0 + v1\n", 2, 3, "output of the wrong kind"),
    ("def Setup():\n  m0 = dot(v0, v1)\n", 2, 3, "output of the wrong kind"),
    ("def Setup():\n  s9 = s0 + s1\n", 2, 3, "address s9 is out of range"),
    ("def Setup():\n  s1 = s0 + s7\n", 2, 13, "address s7 is out of range"),
    ("def Setup():\n  m3 = transpose(m0)\n", 2, 3, "address m3 is out of range"),
    ("def Setup():\n  v1[4] = 1.0\n", 2, 6, "element index 4 is out of range"),
    ("def Setup():\n  m0[0, 9] = 1.0\n", 2, 9, "element index 9 is out of range"),
    ("def Setup():\n  s2 = 1.2.3\n", 2, 8, "malformed number '1.2.3'"),
    ("def Setup():\n  s2 = 1e\n", 2, 8, "malformed number '1e'"),
    ("def Setup():\n  s2 = uniform(0, 1e)\n", 2, 19, "malformed number"),
    ("def Setup():\n  v1[0] = 1e39\n", 2, 11, "does not fit in float32"),
    ("s1 = s0 + s2\ndef Setup():\n", 1, 1, "instruction outside any component function"),
    ("def Setup():\n  pass\ndef Setup():\n", 3, 5, "'Setup' is defined twice"),
    ("def Learn():\n  pass\ndef Predict():\n", 3, 5, "'Predict' must come before 'Learn'"),
    ("def Train():\n", 1, 5, "unknown component function 'Train'"),
    ("def Setup():\n  s1 = s2\n", 2, 8, "there is no copy op"),
    ("def Setup():\n  v1 = 2.0\n", 2, 3, "cannot be set to a number"),
    ("def Setup():\n  s1[0] = 2.0\n", 2, 3, "a scalar has no elements"),
    ("def Setup():\n  v1[0, 1] = 2.0\n", 2, 3, "a vector element takes 1 index"),
    ("def Setup():\n  s1 = 2 / s2\n", 2, 8, "only '1 / x' is an op"),
    ("def Setup():\n  v1 = uniform(0.0)\n", 2, 8, "uniform() takes two numbers"),
    ("def Setup():\n  s1 = norm(m0, axis=2)\n", 2, 22, "axis must be 0 or 1"),
    ("def Setup():\n  s1 = norm(m0, side=1)\n", 2, 17, "no keyword 'side'"),
    ("def Setup():\n  s1 = mean(m0, axis=0)\n", 2, 8, "mean() takes"),
    ("def Setup():\n  s1 = s0 +\n", 2, 12, "unexpected end of line"),
    ("def Setup()\n", 1, 12, "unexpected end of line"),
]


@pytest.mark.parametrize("source,line,column,fragment", ERRORS, ids=[e[3] for e in ERRORS])
def test_error_cases(source: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(AzcError) as info:
        parse(source, "demo.az", memory=MEM)
    err = info.value
    assert isinstance(err, (ParseError, VerifyError))
    assert err.span is not None
    assert (err.span.line, err.span.column) == (line, column), str(err)
    text = str(err)
    assert fragment in text
    first, shown, caret = text.splitlines()
    assert first.startswith(f"demo.az:{line}:{column}: error: ")
    assert shown.strip() == source.splitlines()[line - 1].strip()
    assert caret.index("^") - 4 == column - 1


def test_op_not_allowed_by_configuration() -> None:
    allowed = {Component.PREDICT: frozenset({27})}
    with pytest.raises(VerifyError) as info:
        parse("def Predict():\n  s1 = s0 + s0\n", "x.az", allowed=allowed)
    assert "SCALAR_SUM is not allowed in Predict" in str(info.value)
    assert (info.value.span.line, info.value.span.column) == (2, 8)


def test_unreadable_file() -> None:
    with pytest.raises(AzcError, match="cannot read program"):
        parse_file("/nonexistent/prog.az")


def test_no_lark_exception_escapes_on_garbage() -> None:
    junks = ["def", "(((", "s1 = = s2", "def Setup(): s1", "\x00\x01", "]]",
             "def Setup():\n  s1 = dot(v0,"]
    for junk in junks:
        with pytest.raises(AzcError):
            parse(junk)
