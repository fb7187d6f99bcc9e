"""The IR: immutable instructions and programs, memory configurations, verify().

An `Instr` is the original's instruction record: op id, output and input
addresses, and up to three constants `c0, c1, c2` whose meaning the op table
gives (`Op.params`: float64, float32 or element index per slot).  Fields an
op does not use are 0, so equal behaviour means equal records.  Instructions
are frozen and shared between parents and children.

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
import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from azc.errors import VerifyError
from azc.ops import NO_OP, OPS, RANDOM_OPS, Const, Kind, Op, OpColumn, as_float32


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


class RecordField(IntEnum):
    """Byte offsets of the fields of an encoded instruction (an `Instr`, `RECORD`)."""

    OP = 0     # int16 op id
    OUT = 2    # int16 output address
    IN1 = 4    # int16 first input (a random op: its slot + 1, 0 for its position)
    IN2 = 6    # int16 second input
    C0 = 8     # float64 constants
    C1 = 16
    C2 = 24


_RECORD = RECORD = struct.Struct("<hhhhddd")  # the fields of RecordField, in order
# Addresses per kind a memory may have: the record's int16 address fields hold 0..32767.
MAX_ADDRESSES = 1 << 15
# The largest feature size (64x64 colour images are 12288), and the most bytes one memory
# (8 x (S + V*F + M*F*F)) may take unless $AZC_MAX_MEMORY says otherwise (bytes, or a
# number with K, M, G or T).
MAX_FEATURES = 1 << 16
# The most instructions a component function may have (the original: 1000 in Predict and
# Learn; evolved programs have tens).
MAX_INSTRUCTIONS = 10_000
MAX_MEMORY_BYTES = 4 << 30
MAX_MEMORY_VARIABLE = "AZC_MAX_MEMORY"


def memory_limit() -> int:
    """The most bytes a memory may take: $AZC_MAX_MEMORY, else MAX_MEMORY_BYTES."""
    text = os.environ.get(MAX_MEMORY_VARIABLE, "").strip().upper()
    if not text:
        return MAX_MEMORY_BYTES
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(text[-1:].rstrip("B"),
                                                                        1)
    digits = text.rstrip("B").rstrip("KMGT")
    try:
        value = float(digits) * scale
    except ValueError:
        raise VerifyError(f"{MAX_MEMORY_VARIABLE}={text!r} is not a size (e.g. 16G)") from None
    if not math.isfinite(value) or value < 1:
        raise VerifyError(f"{MAX_MEMORY_VARIABLE}={text!r} is not a size (e.g. 16G)")
    return int(value)
_F64 = struct.Struct("<d")
_RANDOM_IDS = RANDOM_OPS  # (a live group of the table)
RECORD_SIZE = _RECORD.size  # 32 bytes
assert RecordField.C2 + 8 == RECORD_SIZE


class Instr(bytes):
    """One instruction, as an immutable 32-byte record.

    Layout (little endian): op, out, in1, in2 as int16, then c0, c1, c2 as
    float64 -- the encoding the native code reads.  Equality and hashing are
    on the bytes, so they are exact (signed zeros differ, every NaN is the
    one canonical NaN).  A random op has no inputs; its in1 field holds its
    random-stream slot + 1 (0: the default, its position in its component).
    Construct with `Instr.make` to get normalized fields (unused fields 0,
    float32 constants rounded).
    """

    __slots__ = ()

    def __new__(cls, op: int, out: int = 0, in1: int = 0, in2: int = 0, c0: float = 0.0,
                c1: float = 0.0, c2: float = 0.0, slot: int = -1) -> Instr:
        if op in _RANDOM_IDS:
            in1 = slot + 1
        return bytes.__new__(cls, _RECORD.pack(op, out, in1, in2,
                                               math.nan if c0 != c0 else c0,
                                               math.nan if c1 != c1 else c1,
                                               math.nan if c2 != c2 else c2))

    @staticmethod
    def from_record(record: bytes) -> Instr:
        """The instruction of a 32-byte record."""
        return bytes.__new__(Instr, record)

    def __reduce__(self) -> tuple:
        return (Instr.from_record, (bytes(self),))

    def __repr__(self) -> str:
        return (f"Instr(op={self.op}, out={self.out}, in1={self.in1}, in2={self.in2}, "
                f"c0={self.c0!r}, c1={self.c1!r}, c2={self.c2!r}, slot={self.slot})")

    @property
    def op(self) -> int:
        """The op id."""
        return self[0] | (self[1] << 8)

    @property
    def out(self) -> int:
        """The output address."""
        return self[2] | (self[3] << 8)

    @property
    def in1(self) -> int:
        """The first input address (0 for ops without inputs)."""
        return 0 if self[0] in _RANDOM_IDS else self[4] | (self[5] << 8)

    @property
    def in2(self) -> int:
        """The second input address."""
        return self[6] | (self[7] << 8)

    @property
    def c0(self) -> float:
        """The first constant."""
        return _F64.unpack_from(self, 8)[0]

    @property
    def c1(self) -> float:
        """The second constant."""
        return _F64.unpack_from(self, 16)[0]

    @property
    def c2(self) -> float:
        """The third constant."""
        return _F64.unpack_from(self, 24)[0]

    @property
    def slot(self) -> int:
        """The random-stream slot of a random op; -1: its position (and for other ops)."""
        return (self[4] | (self[5] << 8)) - 1 if self[0] in _RANDOM_IDS else -1

    @property
    def key(self) -> bytes:
        """The exact identity of the instruction (its record)."""
        return bytes(self)

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
        return Instr(o.id, out if o.out is not None else 0,
                     in1 if o.arity >= 1 else 0, in2 if o.arity >= 2 else 0,
                     vals[0], vals[1], vals[2], slot if o.random else -1)

    @property
    def spec(self) -> Op:
        """The op table row of this instruction."""
        return OPS[self[0]]

    @property
    def consts(self) -> tuple[float, float, float]:
        """The constants (c0, c1, c2)."""
        return _RECORD.unpack(self)[4:]  # type: ignore[return-value]

    def fields(self) -> tuple[int, int, int, int, float, float, float]:
        """(op, out, in1, in2, c0, c1, c2) in one unpack (in1 is the raw field)."""
        return _RECORD.unpack(self)  # type: ignore[return-value]

    def inputs(self) -> list[tuple[Kind, int]]:
        """The (kind, address) pairs this instruction reads (an element setter's old output
        not included)."""
        o = OPS[self[0]]
        if not o.ins:
            return []
        if len(o.ins) == 1:
            return [(o.ins[0], self.in1)]
        return [(o.ins[0], self.in1), (o.ins[1], self.in2)]

    def output(self) -> tuple[Kind, int] | None:
        """The (kind, address) this instruction writes, or None for NO_OP."""
        o = OPS[self[0]]
        return None if o.out is None else (o.out, self.out)

    def with_slot(self, slot: int) -> Instr:
        """The same instruction bound to a random-stream slot (random ops only)."""
        if self[0] not in _RANDOM_IDS or self.slot == slot:
            return self
        op, out, _, in2, c0, c1, c2 = _RECORD.unpack(self)
        return Instr(op, out, 0, in2, c0, c1, c2, slot)


NOOP = Instr(NO_OP.id)


def slot_at(ins: Instr, position: int) -> int:
    """The random-stream slot of an instruction at a position (-1 for non-random ops)."""
    if not OPS[ins.op].random:
        return -1
    return position if ins.slot < 0 else ins.slot


def canonical_slots(instrs: Iterable[Instr], slots: Iterable[int]) -> tuple[Instr, ...]:
    """Instructions at their (new) positions, each random op bound to its slot.

    `slots[j]` is the slot `instrs[j]` must keep (its `slot_at` before the
    instructions moved; ignored for non-random ops).  Canonical form: a
    random op stores slot -1 exactly when its slot equals its position, so
    programs with the same draws compare equal.  Every pass that removes or
    moves instructions builds its result with this.
    """
    return tuple(ins.with_slot(-1 if slot == pos else slot) if OPS[ins.op].random else ins
                 for pos, (ins, slot) in enumerate(zip(instrs, slots)))


def positional_slots(instrs: Sequence[Instr]) -> tuple[Instr, ...]:
    """The same component with every random op at the position of its slot.

    Passes that remove instructions give surviving random ops explicit slots;
    text cannot say a slot, so before printing, no-ops are inserted in front
    of such ops until each stands at its slot (slots only ever exceed
    positions, in order).  The result draws exactly the same numbers.
    """
    if all(ins.slot < 0 for ins in instrs):
        return tuple(instrs)
    out: list[Instr] = []
    for ins in instrs:
        slot = ins.slot
        if slot >= 0:
            out.extend([NOOP] * max(0, slot - len(out)))
            if slot == len(out):
                ins = ins.with_slot(-1)
        out.append(ins)
    return tuple(out)


class Program(NamedTuple):
    """An algorithm: the Setup, Predict and Learn component functions.

    An immutable triple of instruction tuples (a NamedTuple: cheap to build,
    which evolution does for every child); `program[component]` is one of them.
    """

    setup: tuple[Instr, ...] = ()
    predict: tuple[Instr, ...] = ()
    learn: tuple[Instr, ...] = ()

    def components(self) -> Iterator[tuple[Component, tuple[Instr, ...]]]:
        """(component, instructions) for Setup, Predict, Learn."""
        yield Component.SETUP, self.setup
        yield Component.PREDICT, self.predict
        yield Component.LEARN, self.learn

    def replace(self, component: Component | int, instrs: Iterable[Instr]) -> Program:
        """A copy with one component function replaced."""
        new = instrs if isinstance(instrs, tuple) else tuple(instrs)
        if component == 0:
            return _new_program(Program, (new, self[1], self[2]))
        if component == 1:
            return _new_program(Program, (self[0], new, self[2]))
        return _new_program(Program, (self[0], self[1], new))

    def sizes(self) -> tuple[int, int, int]:
        """Number of instructions in Setup, Predict and Learn."""
        return len(self.setup), len(self.predict), len(self.learn)

    def instructions(self) -> Iterator[tuple[Component, int, Instr]]:
        """Every instruction with its component and position."""
        for comp, instrs in self.components():
            for i, ins in enumerate(instrs):
                yield comp, i, ins

    def slot(self, component: Component, index: int) -> int:
        """The random-stream slot of an instruction (-1 for non-random ops)."""
        return slot_at(self[component][index], index)

    def uses_random(self) -> bool:
        """Whether any instruction draws random numbers."""
        return any(OPS[i.op].random for _, _, i in self.instructions())


_new_program = tuple.__new__


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
        for n, word in ((self.scalars, "scalars"), (self.vectors, "vectors"),
                        (self.matrices, "matrices")):
            if n > MAX_ADDRESSES:
                raise VerifyError(f"the memory holds at most {MAX_ADDRESSES} {word} (an "
                                  f"instruction's 16-bit address fields), got {n}")
        if self.features is not None and self.features < 1:
            raise VerifyError(f"the feature size must be at least 1, got {self.features}")
        if self.features is not None and self.features > MAX_FEATURES:
            raise VerifyError(f"the feature size is at most {MAX_FEATURES}, got {self.features}")
        if self.features is not None and self.nbytes > memory_limit():
            raise VerifyError(
                f"a memory of {self.scalars} scalars, {self.vectors} vectors and "
                f"{self.matrices} matrices at F={self.features} takes "
                f"{self.nbytes / (1 << 30):.3g} GiB, more than the limit of "
                f"{memory_limit() / (1 << 30):.3g} GiB; use fewer addresses (memory options "
                f"or the configuration's scalars/vectors/matrices) or a smaller F, or raise "
                f"the limit with {MAX_MEMORY_VARIABLE} (e.g. {MAX_MEMORY_VARIABLE}=16G)")

    @property
    def nbytes(self) -> int:
        """Bytes of one memory at its feature size (F = 1 if unknown)."""
        f = self.features or 1
        return 8 * (self.scalars + self.vectors * f + self.matrices * f * f)

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
        for comp, i, ins in program.instructions():
            if not 0 <= ins.op < len(OPS):
                raise VerifyError(f"op id {ins.op} is not an op (valid ids are "
                                  f"0..{len(OPS) - 1})", component=comp.title, index=i,
                                  field="op")
            out = ins.output()
            for kind, addr in ins.inputs() + ([out] if out is not None else []):
                top[kind] = max(top[kind], addr + 1)
        return MemoryConfig(top[0], top[1], top[2], features)

    def __str__(self) -> str:
        f = "" if self.features is None else f", F={self.features}"
        words = [("scalar", "scalars"), ("vector", "vectors"), ("matrix", "matrices")]
        counts = (self.scalars, self.vectors, self.matrices)
        sizes = [f"{n} {one if n == 1 else many}" for n, (one, many) in zip(counts, words)]
        return ", ".join(sizes) + f



def check_instr(ins: Instr, memory: MemoryConfig) -> tuple[str, str] | None:
    """Why an instruction does not fit the memory, as (message, field), or None.

    `field` names the offending part: "op", "in1", "in2", "out", "c0" or "c1".
    """
    if not 0 <= ins.op < len(OPS):
        return f"op id {ins.op} is not an op (valid ids are 0..{len(OPS) - 1})", "op"
    o = OPS[ins.op]
    named = list(zip(o.ins, (ins.in1, ins.in2), ("in1", "in2")))
    if o.out is not None:
        named.append((o.out, ins.out, "out"))
    for kind, addr, fld in named:
        n = memory.size(kind)  # (addresses first; constants below)
        if 0 <= addr < n:
            continue
        have = (f"{n} {kind.word} address{'es' if n != 1 else ''} "
                f"({kind.letter}0..{kind.letter}{n - 1})" if n else f"no {kind.word} addresses")
        return f"address {kind.letter}{addr} is out of range: the memory has {have}", fld
    for i, ckind in enumerate(o.consts):
        if ckind is not Const.INDEX:
            continue
        idx = ins.consts[i]
        if idx < 0 or idx != int(idx):
            return f"element index {idx} must be a non-negative integer", f"c{i}"
        if memory.features is not None and idx >= memory.features:
            return (f"element index {int(idx)} is out of range for feature size "
                    f"F={memory.features} (0..{memory.features - 1})", f"c{i}")
    return None


# check_instr's facts per op id, as columns for checking many encoded records at once:
# the kind of out / in1 / in2 (-1: not an address) and which constants are element indices.
_FIELD_KINDS = OpColumn(lambda o: (
    int(o.out) if o.out is not None else -1,
    *(int(k) for k in o.ins), *([-1] * (2 - len(o.ins))),
    *(ck is Const.INDEX for ck in o.consts), *([False] * (3 - len(o.consts)))))
RECORD_DTYPE = np.dtype([("op", "<i2"), ("out", "<i2"), ("in1", "<i2"), ("in2", "<i2"),
                         ("c0", "<f8"), ("c1", "<f8"), ("c2", "<f8")])
assert RECORD_DTYPE.itemsize == RECORD_SIZE


def bad_records(code: np.ndarray, memory: MemoryConfig) -> np.ndarray:
    """Positions of the records in `code` (uint8, whole 32-byte records) that do not fit
    the memory: the check of `check_instr`, vectorized, for the boundary to native code."""
    n = len(code) // RECORD_SIZE
    words = np.frombuffer(code, dtype="<i2", count=n * 16).reshape(n, 16)[:, :4]
    ids = words[:, 0]
    kinds, index_consts = record_facts()
    bad = (ids < 0) | (ids >= len(kinds))
    ids = np.where(bad, 0, ids)
    limit = np.array([memory.scalars, memory.vectors, memory.matrices, MAX_ADDRESSES],
                     dtype=np.int32)  # (the last: fields that are not addresses)
    bad |= ((words[:, 1:] >= limit[kinds[ids]]) | (words[:, 1:] < 0)).any(axis=1)
    uses = index_consts[ids]  # (n, 3): which constants are element indices
    rows = np.flatnonzero(uses.any(axis=1))
    if len(rows):
        consts = np.frombuffer(code, dtype="<f8", count=n * 4).reshape(n, 4)[rows, 1:]
        top = memory.features if memory.features is not None else np.inf
        with np.errstate(invalid="ignore"):
            ok = (consts >= 0) & (consts < top) & (np.floor(consts) == consts)
        bad[rows] |= (uses[rows] & ~ok).any(axis=1)
    return np.flatnonzero(bad)


_TABLES: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def record_facts() -> tuple[np.ndarray, np.ndarray]:
    """The per-op facts of the boundary check (`_FIELD_KINDS`) as arrays: the kinds of
    out/in1/in2 (ops, 3; 3 = not an address) and the element-index constants (ops, 3),
    rebuilt when the op table changes (`bad_records` and the native check read them)."""
    key = tuple(_FIELD_KINDS)
    got = _TABLES.get(key)
    if got is None:
        facts = np.array(_FIELD_KINDS, dtype=np.int64).reshape(-1, 6)
        _TABLES.clear()
        got = _TABLES[key] = (np.where(facts[:, :3] < 0, 3, facts[:, :3]).astype(np.intp),
                              facts[:, 3:].astype(bool))
    return got


def verify(program: Program, memory: MemoryConfig,
           allowed: dict[Component, frozenset[int]] | None = None) -> None:
    """Raise VerifyError (naming component and index) unless the program fits.

    `allowed` maps a component to the op ids it may use (when checking a
    program against an experiment configuration); NO_OP is always allowed.
    """
    for comp, i, ins in program.instructions():
        problem = check_instr(ins, memory) or check_allowed(ins, comp, allowed)
        if problem is not None:
            raise VerifyError(problem[0], component=comp.title, index=i, field=problem[1])


def check_allowed(ins: Instr, comp: Component,
                  allowed: dict[Component, frozenset[int]] | None) -> tuple[str, str] | None:
    """Why an instruction's op is not allowed in its component, or None."""
    if allowed is None or comp not in allowed or ins.op == NO_OP.id or ins.op in allowed[comp]:
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
            h.update(ins.with_slot(slot_at(ins, i)) if ins[0] in _RANDOM_IDS else ins)
    return h.hexdigest()
