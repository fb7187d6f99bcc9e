"""The IR: immutable instructions and programs, memory configurations, verify().

An `Instr` is the original's instruction record: op id, output and input
addresses, and up to three constants `c0, c1, c2` whose meaning the op table
gives (a float64 for op 56; float32 values for ops 57-64; element indices for
ops 57/58).  Fields an op does not use are 0, so equal behaviour means equal
records.  Instructions are frozen and shared between parents and children.

Element indices are stored as integers for the program's feature size F (the
original stores a fraction f of F, with index = floor(F * f); at a fixed F the
two are the same, and the text form writes the integer).

A `Program` is three tuples of instructions: Setup, Predict, Learn.

`slot` is the random-stream slot of a random op: by default its position in
its component.  Passes that remove instructions keep the slots of the random
ops that remain, so their draws do not change (see azc._runtime.rng).

This module depends only on azc.ops and azc.errors.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from azc.errors import VerifyError
from azc.ops import NUM_OPS, OPS, Const, Kind, Op

_PACK_D = struct.Struct("<d")


_NAN_BITS = 0x7FF8000000000000


def _bits(x: float) -> int:
    """The bit pattern of a float64; every NaN counts as the one canonical NaN."""
    if x != x:
        return _NAN_BITS
    return int.from_bytes(_PACK_D.pack(x), "little")


def as_float32(x: float) -> float:
    """x rounded to float32 (and widened back to a Python float)."""
    with np.errstate(over="ignore"):
        return float(np.float32(x))


class Component(IntEnum):
    """The three component functions."""

    SETUP = 0
    PREDICT = 1
    LEARN = 2

    @property
    def title(self) -> str:
        """Setup, Predict or Learn."""
        return ("Setup", "Predict", "Learn")[self]

    @property
    def attr(self) -> str:
        """setup, predict or learn (the Program attribute)."""
        return ("setup", "predict", "learn")[self]


COMPONENTS = (Component.SETUP, Component.PREDICT, Component.LEARN)


@dataclass(frozen=True, slots=True, eq=False)
class Instr:
    """One instruction; construct with `Instr.make` to get normalized fields."""

    op: int
    out: int = 0
    in1: int = 0
    in2: int = 0
    c0: float = 0.0
    c1: float = 0.0
    c2: float = 0.0
    slot: int = -1
    key: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.op, self.out, self.in1, self.in2, _bits(self.c0),
                                         _bits(self.c1), _bits(self.c2), self.slot))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Instr) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @staticmethod
    def make(op: int | Op, out: int = 0, in1: int = 0, in2: int = 0,
             consts: Iterable[float] = (), slot: int = -1) -> Instr:
        """An instruction with unused fields zeroed and constants in their types."""
        o = op if isinstance(op, Op) else OPS[op]
        cs = list(consts)
        vals = [0.0, 0.0, 0.0]
        for i, kind in enumerate(o.consts):
            x = cs[i] if i < len(cs) else 0.0
            if kind is Const.F32:
                vals[i] = as_float32(x)
            elif kind is Const.INDEX:
                vals[i] = float(int(x))
            else:
                vals[i] = float(x)
        vals = [math.nan if v != v else v for v in vals]  # one NaN: payloads carry nothing
        return Instr(o.id, out if o.out is not None else 0,
                     in1 if o.arity >= 1 else 0, in2 if o.arity >= 2 else 0,
                     vals[0], vals[1], vals[2], slot if o.random else -1)

    @property
    def spec(self) -> Op:
        """The op table row of this instruction."""
        return OPS[self.op]

    @property
    def consts(self) -> tuple[float, float, float]:
        """The constants (c0, c1, c2)."""
        return (self.c0, self.c1, self.c2)

    def inputs(self) -> list[tuple[Kind, int]]:
        """The (kind, address) pairs this instruction reads (not the old output of 57/58)."""
        o = OPS[self.op]
        return [(k, a) for k, a in zip(o.ins, (self.in1, self.in2))]

    def output(self) -> tuple[Kind, int] | None:
        """The (kind, address) this instruction writes, or None for NO_OP."""
        o = OPS[self.op]
        return None if o.out is None else (o.out, self.out)

    def with_slot(self, slot: int) -> Instr:
        """The same instruction bound to a random-stream slot (random ops only)."""
        if not OPS[self.op].random or self.slot == slot:
            return self
        return Instr(self.op, self.out, self.in1, self.in2, self.c0, self.c1, self.c2, slot)


NOOP = Instr(0)


@dataclass(frozen=True, slots=True)
class Program:
    """An algorithm: the Setup, Predict and Learn component functions."""

    setup: tuple[Instr, ...] = ()
    predict: tuple[Instr, ...] = ()
    learn: tuple[Instr, ...] = ()

    def __getitem__(self, component: Component | int) -> tuple[Instr, ...]:
        return (self.setup, self.predict, self.learn)[component]

    def components(self) -> Iterator[tuple[Component, tuple[Instr, ...]]]:
        """(component, instructions) for Setup, Predict, Learn."""
        yield Component.SETUP, self.setup
        yield Component.PREDICT, self.predict
        yield Component.LEARN, self.learn

    def replace(self, component: Component | int, instrs: Iterable[Instr]) -> Program:
        """A copy with one component function replaced."""
        parts = [self.setup, self.predict, self.learn]
        parts[component] = tuple(instrs)
        return Program(*parts)

    def sizes(self) -> tuple[int, int, int]:
        """Number of instructions in Setup, Predict and Learn."""
        return len(self.setup), len(self.predict), len(self.learn)

    def instructions(self) -> Iterator[tuple[Component, int, Instr]]:
        """Every instruction with its component and position."""
        for comp, instrs in self.components():
            for i, ins in enumerate(instrs):
                yield comp, i, ins

    def slot(self, component: Component, index: int) -> int:
        """The random-stream slot of an instruction."""
        s = self[component][index].slot
        return index if s < 0 else s

    def uses_random(self) -> bool:
        """Whether any instruction draws random numbers."""
        return any(OPS[i.op].random for _, _, i in self.instructions())


@dataclass(frozen=True)
class MemoryConfig:
    """Sizes of the memory: scalar, vector and matrix addresses, and the feature size F."""

    scalars: int = 20
    vectors: int = 20
    matrices: int = 20
    features: int | None = None

    def __post_init__(self) -> None:
        if self.scalars < 2:
            raise VerifyError(f"the memory needs at least 2 scalars (s0 label, s1 prediction), "
                              f"got {self.scalars}")
        if self.vectors < 1:
            raise VerifyError(f"the memory needs at least 1 vector (v0 features), "
                              f"got {self.vectors}")
        if self.matrices < 0:
            raise VerifyError(f"the number of matrices cannot be negative, got {self.matrices}")
        if self.features is not None and self.features < 1:
            raise VerifyError(f"the feature size must be at least 1, got {self.features}")

    def size(self, kind: Kind) -> int:
        """Number of addresses of a kind."""
        return (self.scalars, self.vectors, self.matrices)[kind]

    def with_features(self, features: int) -> MemoryConfig:
        """The same sizes with a feature size."""
        return MemoryConfig(self.scalars, self.vectors, self.matrices, features)

    @staticmethod
    def fitting(program: Program, features: int | None = None) -> MemoryConfig:
        """The smallest memory that holds every address the program uses."""
        top = [2, 1, 0]
        for _, _, ins in program.instructions():
            for kind, addr in ins.inputs() + ([ins.output()] if ins.output() else []):
                top[kind] = max(top[kind], addr + 1)
        return MemoryConfig(top[0], top[1], top[2], features)

    def __str__(self) -> str:
        f = "" if self.features is None else f", F={self.features}"
        def n(count: int, word: str) -> str:
            return f"{count} {word}{'' if count == 1 else 'es' if word == 'matrix' else 's'}"
        sizes = [n(self.scalars, "scalar"), n(self.vectors, "vector"), n(self.matrices, "matrix")]
        return ", ".join(sizes) + f



def check_instr(ins: Instr, memory: MemoryConfig) -> tuple[str, str] | None:
    """Why an instruction does not fit the memory, as (message, field), or None.

    `field` names the offending part: "op", "in1", "in2", "out", "c0" or "c1".
    """
    if not 0 <= ins.op < NUM_OPS:
        return f"op id {ins.op} is not an op (valid ids are 0..{NUM_OPS - 1})", "op"
    o = OPS[ins.op]
    named = list(zip(o.ins, (ins.in1, ins.in2), ("in1", "in2")))
    if o.out is not None:
        named.append((o.out, ins.out, "out"))
    for kind, addr, fld in named:
        n = memory.size(kind)
        if 0 <= addr < n:
            continue
        have = (f"{n} {kind.word} address{'es' if n != 1 else ''} "
                f"({kind.letter}0..{kind.letter}{n - 1})" if n else f"no {kind.word} addresses")
        return f"address {kind.letter}{addr} is out of range: the memory has {have}", fld
    for i, kind in enumerate(o.consts):
        if kind is not Const.INDEX:
            continue
        idx = ins.consts[i]
        if idx < 0 or idx != int(idx):
            return f"element index {idx} must be a non-negative integer", f"c{i}"
        if memory.features is not None and idx >= memory.features:
            return (f"element index {int(idx)} is out of range for feature size "
                    f"F={memory.features} (0..{memory.features - 1})", f"c{i}")
    return None


def verify(program: Program, memory: MemoryConfig,
           allowed: dict[Component, frozenset[int]] | None = None) -> None:
    """Raise VerifyError (naming component and index) unless the program fits.

    `allowed` maps a component to the op ids it may use (when checking a
    program against an experiment configuration); NO_OP is always allowed.
    """
    for comp, i, ins in program.instructions():
        problem = check_instr(ins, memory) or check_allowed(ins, comp, allowed)
        if problem is not None:
            raise VerifyError(problem[0], component=comp.title, index=i)


def check_allowed(ins: Instr, comp: Component,
                  allowed: dict[Component, frozenset[int]] | None) -> tuple[str, str] | None:
    """Why an instruction's op is not allowed in its component, or None."""
    if allowed is None or comp not in allowed or ins.op == 0 or ins.op in allowed[comp]:
        return None
    return f"{OPS[ins.op].name} is not allowed in {comp.title} by the configuration", "op"


def structural_hash(program: Program) -> str:
    """A canonical hash of the program's instructions (hex, 128 bits).

    Equal instruction records give equal hashes; random ops contribute their
    random-stream slot, since it decides their draws.
    """
    h = hashlib.blake2b(digest_size=16)
    for comp, instrs in program.components():
        h.update(struct.pack("<BI", comp, len(instrs)))
        for i, ins in enumerate(instrs):
            slot = (i if ins.slot < 0 else ins.slot) if OPS[ins.op].random else -1
            op, out, in1, in2, b0, b1, b2, _ = ins.key
            h.update(struct.pack("<iiiiQQQi", op, out, in1, in2, b0, b1, b2, slot))
    return h.hexdigest()
