"""The structural memo: what the search knows about live code it has seen.

A deterministic program's behaviour is a function of its live code, so the
evaluator remembers, per live-code hash: the FEC fingerprints of the program
on every task and the train steps of that FEC run, and the fitness and train
steps of the tasks it evaluated fully (NaN = not evaluated yet: FEC settled
it).  Entries live in fixed numpy arrays indexed by slot — a few tens of
bytes per task instead of Python objects — so the memo's memory is
allocated once and never fragments; when it is full, the oldest quarter of
the entries is dropped (their slots are reused).
"""

from __future__ import annotations

from itertools import islice

import numpy as np


class StructuralMemo:
    """Live-code hash -> fingerprints, FEC steps, per-task fitness and steps."""

    def __init__(self, capacity: int, tasks: int):
        if capacity < 4:
            raise ValueError(f"the memo needs a capacity of at least 4, got {capacity}")
        self.capacity = capacity
        self.slots: dict[bytes, int] = {}
        self.fp = np.zeros((capacity, tasks), dtype=np.uint64)
        self.fec_steps = np.zeros(capacity, dtype=np.int64)
        self.fitness = np.full((capacity, tasks), np.nan)
        self.steps = np.zeros((capacity, tasks), dtype=np.int64)
        self._free = list(range(capacity - 1, -1, -1))

    def __len__(self) -> int:
        return len(self.slots)

    def get(self, key: bytes) -> int | None:
        """The slot of a key, or None."""
        return self.slots.get(key)

    def add(self, keys: list[bytes]) -> np.ndarray:
        """Slots for new keys (not in the memo), cleared; -1 for keys not remembered.

        When the memo is full, its oldest quarter is dropped to make room (only
        entries of earlier calls: a slot given out here stays valid until the
        next call).  Should a batch bring more keys than the capacity, only the
        newest `capacity` are remembered.  The caller fills the rows; call it
        after the batch's reads and updates of existing slots.
        """
        rows = np.full(len(keys), -1, dtype=np.int64)
        take = min(len(keys), self.capacity)
        if take > len(self._free):
            drop = max(self.capacity // 4, take - len(self._free))
            for old in list(islice(self.slots, drop)):
                self._free.append(self.slots.pop(old))
        start = len(keys) - take
        for r in range(start, len(keys)):
            slot = self._free.pop()
            self.slots[keys[r]] = slot
            rows[r] = slot
        kept = rows[start:]
        self.fitness[kept] = np.nan
        self.steps[kept] = 0
        return rows

    def record(self, slots: np.ndarray, tasks: np.ndarray, fitness: np.ndarray,
               steps: np.ndarray) -> None:
        """Store full evaluations: (slot, task) -> fitness and steps, skipping slots < 0."""
        keep = slots >= 0
        self.fitness[slots[keep], tasks[keep]] = fitness[keep]
        self.steps[slots[keep], tasks[keep]] = steps[keep]
