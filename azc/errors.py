"""The one error family of azc.

Every error a user can cause (bad program text, a program that does not fit the
memory, bad data, a bad configuration, a failed compile or export) is an
`AzcError`. Where the error has a place in a source text it carries a `Span`,
and its message reads like a compiler's::

    demo.az:7:8: error: dot() takes (vector, vector) or (matrix, vector), got (scalar, vector)
        s1 = dot(s0, v1)
             ^

This module must not import anything from azc.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A place in a source text: 1-based line and column, and the line itself."""

    filename: str
    line: int
    column: int
    text: str = ""
    length: int = 1

    def render(self) -> str:
        """The source line with a caret under the column (empty if no text)."""
        if not self.text:
            return ""
        line = self.text.rstrip("\n").expandtabs(1)
        carets = "^" * max(1, min(self.length, len(line) - self.column + 1))
        return f"    {line}\n    {' ' * (self.column - 1)}{carets}"


class AzcError(Exception):
    """Base of every error azc reports to a user."""

    kind = "error"

    def __init__(self, message: str, span: Span | None = None, where: str | None = None):
        self.message = message
        self.span = span
        self.where = where
        super().__init__(self.render())

    def render(self) -> str:
        """The full message, with location and source line when known."""
        if self.span is not None:
            s = self.span
            head = f"{s.filename}:{s.line}:{s.column}: error: {self.message}"
            body = s.render()
            return f"{head}\n{body}" if body else head
        if self.where:
            return f"{self.where}: error: {self.message}"
        return f"error: {self.message}"

    def __str__(self) -> str:
        return self.render()


class ParseError(AzcError):
    """The program text is not valid azc."""


class VerifyError(AzcError):
    """A program does not fit its memory configuration or allowed ops.

    `component` and `index` name the instruction, `field` its offending part
    ("op", "out", "in1", "in2", "c0", "c1"; see azc.ir.check_instr) when known.
    """

    def __init__(self, message: str, component: str | None = None, index: int | None = None,
                 span: Span | None = None, field: str | None = None):
        self.component = component
        self.index = index
        self.field = field
        where = None
        if component is not None:
            where = component if index is None else f"{component}[{index}]"
        super().__init__(message, span=span, where=where)


class ConfigError(AzcError):
    """A configuration file or option is invalid (names the key)."""


class DataError(AzcError):
    """A dataset or task specification is invalid."""


class CheckpointError(AzcError):
    """A run folder's checkpoint cannot be resumed (missing, foreign, corrupted, another
    format version or configuration, or an old pickle checkpoint, which is never read)."""


class LoweringError(AzcError):
    """A program could not be lowered to LLVM IR."""


class JitError(AzcError):
    """The JIT failed to compile or run a program."""


class ExportError(AzcError):
    """A program could not be exported as a standalone predictor."""
