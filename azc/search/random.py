"""The search's random source: seeded, buffered, checkpointable.

Every random choice of the search (initial programs, mutations, tournaments,
seeds of evaluations) draws from one `SearchRandom`, created from the run's
seed: the same seed gives the same run.  Draws are served from blocks that
numpy fills, so a draw costs a list pop instead of a numpy call; the whole
object pickles (generator state and unused buffer), so a resumed run draws
exactly what the uninterrupted run would have drawn.
"""

from __future__ import annotations

import math

import numpy as np

_BLOCK = 4096


class SearchRandom:
    """Buffered draws from a PCG64 generator seeded explicitly."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.gen = np.random.Generator(np.random.PCG64(self.seed))
        self._u: list[float] = []
        self._z: list[float] = []
        self.pools: dict = {}  # buffers of pre-drawn objects (e.g. random instructions)

    def random(self) -> float:
        """U[0, 1)."""
        if not self._u:
            self._u = self.gen.random(_BLOCK).tolist()
        return self._u.pop()

    def integers(self, n: int, count: int) -> np.ndarray:
        """`count` uniform integers in [0, n), as an int64 array."""
        if len(self._u) < count:
            self._u = self.gen.random(max(_BLOCK, count)).tolist() + self._u
        vals = self._u[-count:]
        del self._u[-count:]
        return np.minimum((np.array(vals) * n).astype(np.int64), n - 1)

    def integer(self, n: int) -> int:
        """Uniform integer in [0, n)."""
        u = self._u
        if not u:
            u = self._u = self.gen.random(_BLOCK).tolist()
        x = int(u.pop() * n)
        return x if x < n else n - 1

    def between(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi)."""
        return lo + self.integer(hi - lo)

    def uniform(self, lo: float, hi: float) -> float:
        """U[lo, hi)."""
        return lo + (hi - lo) * self.random()

    def open_uniform(self, lo: float, hi: float) -> float:
        """U(lo, hi): the open interval (lo itself never drawn)."""
        while True:
            x = lo + (hi - lo) * self.random()
            if x != lo:
                return x

    def normal(self) -> float:
        """N(0, 1)."""
        if not self._z:
            self._z = self.gen.standard_normal(_BLOCK).tolist()
        return self._z.pop()

    def choice(self, items: list | tuple):
        """A uniformly chosen element."""
        u = self._u
        if not u:
            u = self._u = self.gen.random(_BLOCK).tolist()
        n = len(items)
        x = int(u.pop() * n)
        return items[x if x < n else n - 1]

    def seed64(self) -> int:
        """A fresh 64-bit seed (for evaluations and sub-generators)."""
        hi = self.integer(1 << 32)
        lo = self.integer(1 << 32)
        return (hi << 32) | lo

    def bernoulli(self, p: float) -> bool:
        """True with probability p."""
        return self.random() < p


def log_scale(value: float, z: float) -> float:
    """value * e^z in log space, keeping the sign (0 becomes -0.0, as in the original)."""
    if not value or value != value:
        return -0.0
    try:
        magnitude = math.exp(math.log(abs(value)) + z)
    except OverflowError:
        magnitude = math.inf
    return magnitude if value > 0 else -magnitude
