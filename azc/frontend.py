"""Program text -> IR: the Lark grammar's tree turned into a `Program`.

The grammar (`grammar/azc.lark`) shapes lines; this module checks the
component headers, resolves every function and operator through the op table
and reports every problem as one `ParseError` (or `VerifyError` when a memory
configuration or allowed-op lists are given) with file:line:column, the
offending line and a caret.  No Lark exception ever escapes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Token, Tree

from azc.errors import AzcError, ParseError, Span, VerifyError
from azc.files import MAX_PROGRAM_BYTES, read_text
from azc.ir import (
    MAX_ADDRESSES,
    MAX_INSTRUCTIONS,
    NOOP,
    Component,
    Instr,
    MemoryConfig,
    Program,
    as_float32,
    check_allowed,
    check_instr,
    verify,
)
from azc.ops import OPS, SCALAR_CONST, Kind, Op, lookup, setter, surface_ops
from azc.resources import grammar_file

_KIND_OF = {"s": Kind.SCALAR, "v": Kind.VECTOR, "m": Kind.MATRIX}
_HEADERS = {c.title: c for c in Component}

# Human words for the grammar's terminals, in "expected ..." messages.
_TERMINAL_WORDS = {
    "ADDR": "an address (like s1, v0, m2)",
    "NAME": "a name",
    "NUMBER": "a number",
    "INT": "an integer",
    "BINOP": "an operator (+ - * /)",
    "SLASH": "'/'",
    "_NL": "end of line",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "EQUAL": "'='",
    "COLON": "':'",
    "DEF": "'def'",
    "PASS": "'pass'",
    "NOOP": "'noop'",
    "$END": "end of file",
}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(grammar_file().read_text(), parser="lalr", propagate_positions=True,
                maybe_placeholders=False)


@dataclass
class _Source:
    filename: str
    lines: list[str]

    def span(self, line: int, column: int, length: int = 1) -> Span:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return Span(self.filename, line, column, text, length)

    def at(self, tok: Token | Tree) -> Span:
        if isinstance(tok, Token):
            return self.span(tok.line or 1, tok.column or 1, len(str(tok)))
        meta = tok.meta
        length = (meta.end_column - meta.column) if meta.line == meta.end_line else 1
        return self.span(meta.line, meta.column, length)


def _signatures(ops: list[Op], func: str) -> str:
    """'(vector, vector) or (matrix, vector)' for the ops written with `func`."""
    sigs = []
    for op in ops:
        parts = [k.word for k in op.ins]
        if op.axis is not None:
            parts.append(f"axis={op.axis}")
        sig = "(" + ", ".join(parts) + ")"
        if sig not in sigs:
            sigs.append(sig)
        if op.swappable:
            swapped = "(" + ", ".join(k.word for k in op.ins[::-1]) + ")"
            if swapped not in sigs:
                sigs.append(swapped)
    if len(sigs) == 1:
        return sigs[0]
    return ", ".join(sigs[:-1]) + " or " + sigs[-1]


def _known_functions() -> list[str]:
    return sorted({op.func for op in OPS if op.func.isidentifier() and op.func != "noop"})


class _Resolver:
    """Turns one `assign` line into an Instr, or raises ParseError."""

    def __init__(self, src: _Source):
        self.src = src

    def error(self, message: str, where: Token | Tree) -> ParseError:
        return ParseError(message, self.src.at(where))

    def addr(self, tok: Any) -> tuple[Kind, int]:
        text = str(tok)
        n = int(text[1:])
        if n >= MAX_ADDRESSES:
            raise self.error(f"address {text} is beyond the limit: a memory has at most "
                             f"{MAX_ADDRESSES} addresses of a kind ({text[0]}0.."
                             f"{text[0]}{MAX_ADDRESSES - 1})", tok)
        return _KIND_OF[text[0]], n

    def number(self, tok: Any, float32: bool = False) -> float:
        try:
            value = float(str(tok))
        except ValueError:
            raise self.error(f"malformed number '{tok}'", tok) from None
        if float32 and math.isfinite(value) and math.isinf(as_float32(value)):
            raise self.error(f"the constant {tok} does not fit in float32 "
                             f"(largest is about 3.4028235e+38)", tok)
        return value

    def resolve(self, line: Tree) -> tuple[Instr, dict[str, Token | Tree]]:
        target, expr = line.children
        where: dict[str, Token | Tree] = {"op": expr}
        out_tok = target.children[0]
        out_kind, out_addr = self.addr(out_tok)
        where["out"] = out_tok
        if target.data != "whole":
            return self.element_set(target, expr, out_kind, out_addr, where)
        kind = expr.data
        if kind == "binop":
            a, opr, b = expr.children
            return self.apply(str(opr), [a, b], None, expr, out_tok, where, f"'{opr}'")
        if kind == "recip":
            num, _, a = expr.children
            if self.number(num) != 1.0:
                raise self.error(f"only '1 / x' is an op (reciprocal); '{num} / x' is not", num)
            return self.apply("1/", [a], None, expr, out_tok, where, "'1 / x'")
        if kind == "call":
            return self.call(expr, out_kind, out_addr, out_tok, where)
        if kind == "const":
            if out_kind is not Kind.SCALAR:
                raise self.error(
                    f"a {out_kind.word} cannot be set to a number; set one element instead, "
                    f"e.g. {out_tok}[0] = {expr.children[0]}" if out_kind is Kind.VECTOR else
                    f"a {out_kind.word} cannot be set to a number; set one element instead, "
                    f"e.g. {out_tok}[0, 0] = {expr.children[0]}", out_tok)
            value = self.number(expr.children[0])
            return Instr.make(SCALAR_CONST, out_addr, consts=[value]), where
        if kind == "copy":
            raise self.error("there is no copy op: an instruction applies an op, e.g. "
                             f"'{out_tok} = {expr.children[0]} + ...'", expr)
        raise self.error("unknown instruction", expr)  # pragma: no cover - grammar forbids

    def element_set(self, target: Tree, expr: Tree, out_kind: Kind, out_addr: int,
                    where: dict) -> tuple[Instr, dict]:
        idx = [t for t in target.children[1:]]
        if out_kind is Kind.SCALAR:
            raise self.error("a scalar has no elements; write 's2 = 0.5'", target)
        want = 1 if out_kind is Kind.VECTOR else 2
        if len(idx) != want:
            example = "v1[2] = 0.5" if want == 1 else "m1[2, 0] = 0.5"
            raise self.error(f"a {out_kind.word} element takes {want} "
                             f"ind{'ex' if want == 1 else 'ices'}, e.g. '{example}'", target)
        if expr.data != "const":
            raise self.error("an element can only be set to a number", expr)
        value = self.number(expr.children[0], float32=True)
        op = setter("[i]" if want == 1 else "[i,j]", out_kind)
        assert op is not None
        consts = [int(str(t)) for t in idx] + [value]
        for i, t in enumerate(idx):
            where[f"c{i}"] = t
        return Instr.make(op, out_addr, consts=consts), where

    def call(self, expr: Tree, out_kind: Kind, out_addr: int, out_tok: Any,
             where: dict) -> tuple[Instr, dict]:
        name_tok, *args = expr.children
        name = str(name_tok)
        candidates = surface_ops(name)
        if not candidates or name in ("noop",):
            raise self.error(f"unknown function '{name}'; the functions are "
                             f"{', '.join(_known_functions())}", name_tok)
        if name in ("uniform", "gaussian"):
            nums = [a for a in args if a.data == "arg_num"]
            if len(nums) != 2 or len(args) != 2:
                what = "(low, high)" if name == "uniform" else "(mean, std)"
                raise self.error(f"{name}() takes two numbers {what}", expr)
            op = setter(name, out_kind)
            assert op is not None
            values = [self.number(a.children[0], float32=True) for a in nums]
            return Instr.make(op, out_addr, consts=values), where
        addrs: list[Any] = []
        axis: int | None = None
        for a in args:
            if a.data == "arg_num":
                raise self.error(f"{name}() takes addresses, not numbers", a)
            if a.data == "arg_kw":
                key, val = a.children
                if str(key) != "axis":
                    raise self.error(f"{name}() has no keyword '{key}' (only axis=0 or axis=1)",
                                     key)
                if axis is not None:
                    raise self.error("axis= is given twice", key)
                axis = int(str(val))
                if axis not in (0, 1):
                    raise self.error(f"axis must be 0 or 1, got {axis}", val)
            else:
                if axis is not None:
                    raise self.error("addresses must come before axis=", a)
                addrs.append(a.children[0])
        return self.apply(name, addrs, axis, expr, out_tok, where, f"{name}()")

    def apply(self, func: str, operands: list[Any], axis: int | None, expr: Tree,
              out_tok: Any, where: dict, shown: str) -> tuple[Instr, dict]:
        kinds = tuple(self.addr(t)[0] for t in operands)
        op = lookup(func, kinds, axis)
        got = ", ".join([k.word for k in kinds] + ([f"axis={axis}"] if axis is not None else []))
        if op is None:
            ops = [o for o in surface_ops(func) if not o.is_set]
            raise self.error(f"{shown} takes {_signatures(ops, func)}, got ({got})", expr)
        out_kind, out_addr = self.addr(out_tok)
        if op.out != out_kind:
            assert op.out is not None
            raise self.error(f"output of the wrong kind: {shown} of ({got}) gives a "
                             f"{op.out.word}, but {out_tok} is a {out_kind.word}", out_tok)
        addrs = [self.addr(t)[1] for t in operands]
        toks = list(operands)
        if op.swappable and op.ins != kinds:
            addrs.reverse()
            toks.reverse()
        for name, tok in zip(("in1", "in2"), toks):
            where[name] = tok
        addrs += [0, 0]
        return Instr.make(op, out_addr, addrs[0], addrs[1]), where


def _lark_error(err: lark.exceptions.LarkError, src: _Source) -> ParseError:
    """A ParseError for a Lark exception, saying what was expected."""
    line = getattr(err, "line", None) or 1
    column = getattr(err, "column", None) or 1
    if isinstance(err, lark.exceptions.UnexpectedCharacters):
        text = src.lines[line - 1] if 0 < line <= len(src.lines) else ""
        rest = text[column - 1:]
        word = rest.split()[0] if rest.split() else rest[:1]
        if word[:1].isdigit() or (word[:1] in "+-." and word[1:2].isdigit()):
            return ParseError(f"malformed number '{word.rstrip(',)')}'",
                              src.span(line, column, len(word)))
        return ParseError(f"unexpected character {rest[:1]!r}", src.span(line, column))
    if isinstance(err, lark.exceptions.UnexpectedToken):
        tok = err.token
        if tok.type == "$END":
            return ParseError("unexpected end of file", src.span(line, column))
        expected = sorted({_TERMINAL_WORDS.get(t, t.lower()) for t in err.expected})
        shown = "end of line" if tok.type == "_NL" else f"'{tok}'"
        msg = f"unexpected {shown}"
        if expected:
            msg += "; expected " + (expected[0] if len(expected) == 1 else
                                    ", ".join(expected[:-1]) + " or " + expected[-1])
        return ParseError(msg, src.span(line, column, max(1, len(str(tok).rstrip()))))
    return ParseError(f"cannot parse: {err}", src.span(line, column))


def parse(text: str, filename: str = "<text>", memory: MemoryConfig | None = None,
          allowed: dict[Component, frozenset[int]] | None = None) -> Program:
    """Parse program text into a Program.

    With `memory`, every address and element index is checked against it;
    with `allowed`, every op against the component's allowed ops.  Errors are
    ParseError / VerifyError with the file, line, column and a caret.
    """
    return parse_with_source(text, filename, memory, allowed)[0]


def parse_with_source(text: str, filename: str = "<text>", memory: MemoryConfig | None = None,
                      allowed: dict[Component, frozenset[int]] | None = None
                      ) -> tuple[Program, SourceMap]:
    """`parse`, and where each instruction is in the text (to locate later errors)."""
    src = _Source(filename, text.splitlines())
    try:
        tree = _parser().parse(text if text.endswith("\n") else text + "\n")
    except lark.exceptions.LarkError as err:
        raise _lark_error(err, src) from None
    parts: dict[Component, list[Instr]] = {c: [] for c in Component}
    places: dict[Component, list[dict[str, Any]]] = {c: [] for c in Component}
    seen: dict[Component, int] = {}
    current: Component | None = None
    resolver = _Resolver(src)
    for line in tree.children:
        if not isinstance(line, Tree):
            continue
        if line.data == "header":
            current = _header(line, seen, src)
            continue
        if current is None:
            raise ParseError("instruction outside any component function; "
                             "start with 'def Setup():', 'def Predict():' or 'def Learn():'",
                             src.at(line))
        if line.data == "pass_":
            continue
        if len(parts[current]) >= MAX_INSTRUCTIONS:
            raise VerifyError(f"{current.title} has more than {MAX_INSTRUCTIONS} instructions "
                              f"(the most a component function may have)",
                              component=current.title, index=len(parts[current]),
                              span=src.at(line))
        if line.data == "noop":
            parts[current].append(NOOP)
            places[current].append({"op": line})
            continue
        ins, where = resolver.resolve(line)
        problem = None
        if memory is not None:
            problem = check_instr(ins, memory)
        if problem is None:
            problem = check_allowed(ins, current, allowed)
        if problem is not None:
            message, fld = problem
            raise VerifyError(message, component=current.title, index=len(parts[current]),
                              span=src.at(where.get(fld, where["op"])))
        parts[current].append(ins)
        places[current].append(where)
    program = Program(tuple(parts[Component.SETUP]), tuple(parts[Component.PREDICT]),
                      tuple(parts[Component.LEARN]))
    return program, SourceMap(src, places)


def _header(line: Tree, seen: dict[Component, int], src: _Source) -> Component:
    name_tok: Any = line.children[0]
    name = str(name_tok)
    if name not in _HEADERS:
        raise ParseError(f"unknown component function '{name}'; expected Setup, Predict or "
                         f"Learn", src.at(name_tok))
    comp = _HEADERS[name]
    if comp in seen:
        raise ParseError(f"'{name}' is defined twice (first at line {seen[comp]})",
                         src.at(name_tok))
    later = [c for c in seen if c > comp]
    if later:
        raise ParseError(f"'{name}' must come before '{later[0].title}': the order is Setup, "
                         f"Predict, Learn", src.at(name_tok))
    seen[comp] = name_tok.line or 0
    return comp


def parse_file(path: str | Path, memory: MemoryConfig | None = None,
               allowed: dict[Component, frozenset[int]] | None = None) -> Program:
    """Parse a .az file (errors name the file)."""
    return parse_file_with_source(path, memory, allowed)[0]


def parse_file_with_source(path: str | Path, memory: MemoryConfig | None = None,
                           allowed: dict[Component, frozenset[int]] | None = None
                           ) -> tuple[Program, SourceMap]:
    """`parse_file`, and where each instruction is in the file."""
    text = read_text(path, "program", MAX_PROGRAM_BYTES)
    return parse_with_source(text, filename=str(path), memory=memory, allowed=allowed)


class SourceMap:
    """Where the instructions of a parsed text are: (component, index) -> line and column.

    Errors found after parsing (`verify` with other memory sizes, the feature
    size of a fold) name a component and an index; `locate` gives them the
    file:line:column, the line and a caret of a parse error.
    """

    def __init__(self, src: _Source, places: dict[Component, list[dict[str, Any]]]):
        self.src = src
        self.places = places

    @property
    def filename(self) -> str:
        """The name errors give the text."""
        return self.src.filename

    @property
    def text(self) -> str:
        """The parsed text."""
        return "\n".join(self.src.lines)

    def features(self, given: int | None = None) -> int | None:
        """The feature size: `given`, else the F of a run's header (`run_features`), else
        None; a given F that disagrees with the header is an error."""
        header = run_features(self.text)
        if given is not None and header is not None and given != header:
            raise AzcError(f"--features is {given} but {self.filename} is from a run with "
                           f"F={header} (its header says so)")
        return given if given is not None else header

    def position(self, component: Component, index: int) -> tuple[int, int] | None:
        """(line, column) where an instruction starts, or None if the text has none there."""
        span = self.span(component, index, "out")
        return None if span is None else (span.line, span.column)

    def span(self, component: Component | str, index: int, field: str | None = None
             ) -> Span | None:
        """The place of an instruction, or of its part `field` ("out", "in1", "in2", "c0",
        "c1"; else the whole right-hand side)."""
        comp = _HEADERS.get(component, None) if isinstance(component, str) else component
        if comp is None or not 0 <= index < len(self.places[comp]):
            return None
        where = self.places[comp][index]
        return self.src.at(where.get(field or "op", where["op"]))

    def locate(self, err: VerifyError) -> VerifyError:
        """The error at its place in the text (itself if it has one or names none)."""
        if err.span is not None or err.component is None or err.index is None:
            return err
        span = self.span(err.component, err.index, err.field)
        if span is None:
            return err
        return VerifyError(err.message, component=err.component, index=err.index, span=span,
                           field=err.field)

    def verify(self, program: Program, memory: MemoryConfig,
               allowed: dict[Component, frozenset[int]] | None = None) -> None:
        """`azc.ir.verify`, with errors located in the text."""
        try:
            verify(program, memory, allowed)
        except VerifyError as err:
            raise self.locate(err) from None


# The first line of a run's best.az (azc.search.experiment writes it, `run_features` reads it).
RUN_HEADER = ("# Discovered by azc evolve {name} (seed {seed}): final fitness {final:.6f}, "
              "select {select:.6f}, F={features}.")
_RUN_HEADER_F = re.compile(r"# Discovered by azc evolve .*, F=(\d+)\.\s*")


def run_header(name: str, seed: int, final: float, select: float, features: int) -> str:
    """The header line (with its newline) of a run's best.az."""
    return RUN_HEADER.format(name=name, seed=seed, final=final, select=select,
                             features=features) + "\n"


def run_features(text: str) -> int | None:
    """The feature size F a run's header on the first line of `text` gives, or None."""
    first = text.split("\n", 1)[0]
    m = _RUN_HEADER_F.fullmatch(first)
    return int(m.group(1)) if m else None
