"""Initial programs: no-op, random, and the hand-made linear and neural-net algorithms.

As the original's Generator (docs/semantics.md §6.1): each component is padded with no-ops
up to its init size; a random program fills the components that have
allowed ops with random instructions and leaves the others as no-ops.
"""

from __future__ import annotations

from enum import IntEnum
from functools import lru_cache

from azc.errors import ConfigError
from azc.frontend import parse
from azc.ir import NOOP, Component, Program
from azc.printer import format_f64
from azc.search.random import SearchRandom
from azc.search.space import SearchSpace


class InitialPopulation(IntEnum):
    """The original's initial algorithms (generator.proto)."""

    NO_OP_ALGORITHM = 0
    RANDOM_ALGORITHM = 1
    LINEAR_ALGORITHM = 2
    NEURAL_NET_ALGORITHM = 3
    INTEGRATION_TEST_DAMAGED_NEURAL_NET_ALGORITHM = 4

    @staticmethod
    def parse(name: str | int) -> InitialPopulation:
        """A kind from its name (with or without _ALGORITHM) or value."""
        if isinstance(name, bool):
            raise ConfigError(f"expected an initial_population name or id, got {name!r}")
        if isinstance(name, int):
            if name not in {m.value for m in InitialPopulation}:
                raise ConfigError(f"initial_population id {name} is not one of "
                                  + ", ".join(f"{m.value} ({m.name})" for m in InitialPopulation))
            return InitialPopulation(name)
        key = str(name).strip().upper()
        aliases = {"NO_OP": "NO_OP_ALGORITHM", "EMPTY": "NO_OP_ALGORITHM",
                   "RANDOM": "RANDOM_ALGORITHM", "LINEAR": "LINEAR_ALGORITHM",
                   "NEURAL_NET": "NEURAL_NET_ALGORITHM",
                   "DAMAGED_NEURAL_NET": "INTEGRATION_TEST_DAMAGED_NEURAL_NET_ALGORITHM"}
        key = aliases.get(key, key)
        if key not in InitialPopulation.__members__:
            raise ConfigError(f"unknown initial_population {name!r}; known: "
                              f"{', '.join(m.name for m in InitialPopulation)}")
        return InitialPopulation[key]


_LINEAR = """\
def Setup():
  s2 = {lr}
def Predict():
  s1 = dot(v1, v0)
def Learn():
  s3 = s0 - s1
  s3 = s2 * s3
  v2 = s3 * v0
  v1 = v1 + v2
"""

_NEURAL_NET = """\
def Setup():
  v2 = gaussian(0.0, {init_scale})
  m0 = gaussian(0.0, {init_scale})
  s3 = {lr}
def Predict():
  v3 = dot(m0, v0)
  v3 = v3 + v1
  v4 = maximum(v3, v5)
  s1 = dot(v4, v2)
  s1 = s1 + s2
def Learn():
  s4 = s0 - s1
  s4 = s3 * s4
  s2 = s2 + s4
  v6 = s4 * v4
  v2 = v2 + v6
  v7 = s4 * v2
  v8 = heaviside(v3)
  v7 = v8 * v7
  v1 = v1 + v7
  m1 = outer(v7, v0)
  m0 = m0 + m1
"""


@lru_cache(maxsize=16)
def linear_algorithm(lr: float = 0.01) -> Program:
    """The hand-made linear regressor trained by SGD (without padding)."""
    return parse(_LINEAR.format(lr=format_f64(lr)), "<linear algorithm>")


@lru_cache(maxsize=16)
def neural_net_algorithm(lr: float = 0.01, init_scale: float = 0.1) -> Program:
    """The hand-made two-layer ReLU network trained by backprop (without padding)."""
    return parse(_NEURAL_NET.format(lr=format_f64(lr), init_scale=format_f64(init_scale)),
                 "<neural-net algorithm>")


def padded(program: Program, sizes: tuple[int, int, int]) -> Program:
    """The program with each component padded with no-ops up to a size."""
    return Program(*(tuple(program[c]) + (NOOP,) * max(0, sizes[c] - len(program[c]))
                     for c in Component))


class Generator:
    """Makes the initial programs of a search."""

    def __init__(self, space: SearchSpace, kind: InitialPopulation):
        self.space = space
        self.kind = kind
        if kind is InitialPopulation.RANDOM_ALGORITHM:
            for c in Component:
                if space.size_init[c] > 0 and not space.ops[c]:
                    raise ConfigError(f"initial_population RANDOM_ALGORITHM: {c.attr}_size_init "
                                      f"is {space.size_init[c]} but {c.attr}_ops is empty")
        if kind in (InitialPopulation.NEURAL_NET_ALGORITHM,
                    InitialPopulation.INTEGRATION_TEST_DAMAGED_NEURAL_NET_ALGORITHM):
            m = space.memory
            if m.scalars < 5 or m.vectors < 9 or m.matrices < 2:
                raise ConfigError(f"the neural-net algorithm needs at least 5 scalars, 9 vectors "
                                  f"and 2 matrices; the memory has {m}")
        if kind is InitialPopulation.LINEAR_ALGORITHM:
            m = space.memory
            if m.scalars < 4 or m.vectors < 3:
                raise ConfigError(f"the linear algorithm needs at least 4 scalars and 3 "
                                  f"vectors; the memory has {m}")

    def program(self, rnd: SearchRandom) -> Program:
        """One initial program."""
        sizes = self.space.size_init
        if self.kind is InitialPopulation.NO_OP_ALGORITHM:
            return Program(*((NOOP,) * n for n in sizes))
        if self.kind is InitialPopulation.RANDOM_ALGORITHM:
            return Program(*(self.space.random_component(c, sizes[c], rnd) for c in Component))
        if self.kind is InitialPopulation.LINEAR_ALGORITHM:
            return padded(linear_algorithm(), sizes)
        nn = neural_net_algorithm()
        if self.kind is InitialPopulation.INTEGRATION_TEST_DAMAGED_NEURAL_NET_ALGORITHM:
            nn = nn.replace(Component.SETUP, nn.setup[2:])
        return padded(nn, sizes)
