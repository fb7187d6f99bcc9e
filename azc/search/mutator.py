"""The mutator: the original's eight mutation types, exactly (docs/semantics.md §6.2, §6.4).

`Mutator.mutate(parent)` returns the child: with probability `mutate_prob`
(no draw when it is >= 1) a copy with one mutation, whose type is drawn
uniformly from the configured list (duplicates weigh more); otherwise the
parent itself.  Most types pick a component uniformly among those with
allowed ops, then a position.  Parameter alteration follows the original's
`AlterParam`; the constant mutation is the code's log-normal factor e^z,
z ~ N(0, 1), with a sign flip 10% of the time (`constant_mutation="code"`),
or the paper's factor U[0.5, 2] with the same flip (`"paper"`).
"""

from __future__ import annotations

import struct
from enum import IntEnum

from azc.errors import ConfigError
from azc.ir import Component, Instr, Program
from azc.ops import OPS
from azc.search.random import SearchRandom, log_scale
from azc.search.space import SearchSpace


class MutationType(IntEnum):
    """The original's mutation types (enum values of mutator.proto)."""

    ALTER_PARAM = 0
    RANDOMIZE_INSTRUCTION = 1
    RANDOMIZE_COMPONENT_FUNCTION = 2
    IDENTITY = 3
    INSERT_INSTRUCTION = 4
    REMOVE_INSTRUCTION = 5
    TRADE_INSTRUCTION = 6
    RANDOMIZE_ALGORITHM = 7

    @staticmethod
    def parse(name: str | int) -> MutationType:
        """A type from its name (with or without _MUTATION_TYPE) or value."""
        if isinstance(name, bool):
            raise ConfigError(f"expected a mutation type name or id, got {name!r}")
        if isinstance(name, int):
            if name not in {m.value for m in MutationType}:
                raise ConfigError(f"mutation type id {name} is not one of "
                                  + ", ".join(f"{m.value} ({m.name})" for m in MutationType))
            return MutationType(name)
        key = str(name).strip().upper()
        if key.endswith("_MUTATION_TYPE"):
            key = key[: -len("_MUTATION_TYPE")]
        if key not in MutationType.__members__:
            raise ConfigError(f"unknown mutation type {name!r}; known: "
                              f"{', '.join(m.name for m in MutationType)}")
        return MutationType[key]


CONSTANT_MUTATIONS = ("code", "paper")


class Mutator:
    """Makes children from parents in a search space."""

    def __init__(self, space: SearchSpace, types: list[MutationType], mutate_prob: float = 0.9,
                 constant_mutation: str = "code"):
        if not types:
            raise ConfigError("allowed_mutation_types must not be empty")
        if constant_mutation not in CONSTANT_MUTATIONS:
            raise ConfigError(f"constant_mutation must be one of {CONSTANT_MUTATIONS}, "
                              f"got {constant_mutation!r}")
        if not space.mutable():
            raise ConfigError("no component function has allowed ops: nothing to mutate")
        self.space = space
        self.types = list(types)
        self.mutate_prob = mutate_prob
        self.paper_constants = constant_mutation == "paper"
        self.components = space.mutable()

    def mutate(self, parent: Program, rnd: SearchRandom) -> Program:
        """The child of a parent (possibly the parent itself)."""
        if self.mutate_prob < 1.0 and not rnd.random() < self.mutate_prob:
            return parent
        return self.apply(parent, rnd.choice(self.types), rnd)

    def apply(self, program: Program, kind: MutationType, rnd: SearchRandom) -> Program:
        """One mutation of a given type."""
        if kind is MutationType.IDENTITY:
            return program
        if kind is MutationType.RANDOMIZE_ALGORITHM:
            for comp in self.components:
                program = program.replace(comp, self.space.random_component(
                    comp, len(program[comp]), rnd))
            return program
        comp = rnd.choice(self.components)
        instrs = program[comp]
        if kind is MutationType.RANDOMIZE_COMPONENT_FUNCTION:
            return program.replace(comp, self.space.random_component(comp, len(instrs), rnd))
        if kind in (MutationType.ALTER_PARAM, MutationType.RANDOMIZE_INSTRUCTION):
            if not instrs:
                return program
            i = rnd.integer(len(instrs))
            if kind is MutationType.ALTER_PARAM:
                new = self.alter_param(instrs[i], rnd)
            else:
                new = self.space.random_instrs(comp, rnd)
            return program.replace(comp, instrs[:i] + (new,) + instrs[i + 1:])  # noqa: RUF005
        if kind is MutationType.INSERT_INSTRUCTION:
            if len(instrs) >= self.space.size_max[comp] - 1:
                return program
            return program.replace(comp, self._insert(comp, instrs, rnd))
        if kind is MutationType.REMOVE_INSTRUCTION:
            if len(instrs) <= self.space.size_min[comp]:
                return program
            return program.replace(comp, self._remove(instrs, rnd))
        if kind is MutationType.TRADE_INSTRUCTION:
            return program.replace(comp, self._remove(self._insert(comp, instrs, rnd), rnd))
        raise ConfigError(f"unknown mutation type {kind}")  # pragma: no cover

    def _insert(self, comp: Component, instrs: tuple[Instr, ...],
                rnd: SearchRandom) -> tuple[Instr, ...]:
        new = self.space.random_instrs(comp, rnd)  # the op is drawn before the position
        pos = rnd.integer(len(instrs) + 1)
        return (*instrs[:pos], new, *instrs[pos:])

    def _remove(self, instrs: tuple[Instr, ...], rnd: SearchRandom) -> tuple[Instr, ...]:
        pos = rnd.integer(len(instrs))
        return instrs[:pos] + instrs[pos + 1:]

    # --- parameter alteration (docs/semantics.md §6.4) -------------------------------

    def alter_param(self, ins: Instr, rnd: SearchRandom) -> Instr:
        """A copy of the instruction with one parameter altered."""
        op = OPS[ins.op]
        space = self.space
        if op.out is None:
            return ins
        if op.is_set:
            if rnd.random() < 0.5:
                return _patch(ins, 2, space.output(op.out, rnd))
            return self.alter_data(ins, rnd)
        if op.arity == 1:
            if rnd.random() < 0.5:
                return _patch(ins, 4, space.input(op.ins[0], rnd))
            return _patch(ins, 2, space.output(op.out, rnd))
        which = rnd.integer(3)
        if which == 0:
            return _patch(ins, 4, space.input(op.ins[0], rnd))
        if which == 1:
            return _patch(ins, 6, space.input(op.ins[1], rnd))
        return _patch(ins, 2, space.output(op.out, rnd))

    def alter_data(self, ins: Instr, rnd: SearchRandom) -> Instr:
        """A copy with its constants altered (the original's AlterData): one constant slot
        of the op, altered by its rule in the op table (`Op.altered_params`)."""
        op = OPS[ins.op]
        if not op.params:
            return ins
        c0, c1, c2 = op.altered_params(ins.consts, rnd, self.space.features, self.scale)
        return _replace(ins, c0=c0, c1=c1, c2=c2)

    def scale(self, value: float, rnd: SearchRandom) -> float:
        """The code's log-normal factor e^z, or the paper's U[0.5, 2]."""
        if self.paper_constants:
            return value * rnd.uniform(0.5, 2.0)
        return log_scale(value, rnd.normal())


_FIELDS = {"out": 1, "in1": 2, "in2": 3, "c0": 4, "c1": 5, "c2": 6}
_INT16 = struct.Struct("<h")


def _patch(ins: Instr, offset: int, address: int) -> Instr:
    """A copy of an instruction with the address at byte `offset` (2 out, 4 in1, 6 in2)."""
    return bytes.__new__(Instr, ins[:offset] + _INT16.pack(address) + ins[offset + 2:])


def _replace(ins: Instr, **changes: float) -> Instr:
    """A copy of an instruction with some fields changed (never a random op's slot)."""
    values = list(ins.fields())
    for name, value in changes.items():
        values[_FIELDS[name]] = value
    op, out, in1, in2, c0, c1, c2 = values
    return Instr(int(op), int(out), int(in1), int(in2), float(c0), float(c1), float(c2),
                 ins.slot)
