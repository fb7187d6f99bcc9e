"""Functional equivalence checking (FEC, spec §9).

A program's fingerprint on a task hashes its absolute errors on the first
`num_train_examples` training steps and `num_valid_examples` validation
examples (run with the random generator reset to a fixed seed), together with
the task's index and the budgeted number of training examples.  The cache is
an LRU of `cache_size` fingerprints -> per-task fitness; a hit moves the
entry to the most recent end and counts a use, and after `forget_every` uses
the entry is dropped (the value is still returned that time), exactly as the
original's FECCache.  Hashes are of the raw error bits (no rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from azc.errors import ConfigError

FEC_SEED = 235732282
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class FecConfig:
    """The `fec` section of an experiment (the original's names and defaults)."""

    num_train_examples: int = 10
    num_valid_examples: int = 10
    cache_size: int = 100_000
    forget_every: int = 100

    def __post_init__(self) -> None:
        for name in ("num_train_examples", "num_valid_examples", "cache_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"fec.{name} must be positive, got {getattr(self, name)}")
        if self.num_train_examples > 100 or self.num_valid_examples > 100:
            raise ConfigError("fec records at most 100 train and 100 valid errors")
        if self.forget_every < 0:
            raise ConfigError(f"fec.forget_every must be >= 0, got {self.forget_every}")


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def fingerprints(train_err: np.ndarray, valid_err: np.ndarray, n_train: np.ndarray,
                 n_valid: np.ndarray, task_index: np.ndarray, n_req: np.ndarray) -> np.ndarray:
    """Fingerprints (uint64, shape (programs, tasks)) of recorded errors.

    `train_err`/`valid_err` are (programs, tasks, k) float64 with the first
    `n_train`/`n_valid` entries valid; entries past the counts do not count.
    Each error's bits are mixed with its position, the mixed words summed
    (mod 2^64) and the sums mixed again with the counts, the task index and
    the budgeted number of training examples.
    """
    k = train_err.shape[2]
    pos = np.arange(k, dtype=np.uint64)
    with np.errstate(over="ignore"):
        parts = []
        for salt, errs, counts in ((1, train_err, n_train), (2, valid_err, n_valid)):
            bits = np.ascontiguousarray(errs).view(np.uint64)
            bits = np.where(pos[None, None, :] < counts[:, :, None], bits, np.uint64(0))
            words = _mix(bits ^ ((pos + np.uint64(salt * k)) * _GOLDEN))
            parts.append(_mix(words.sum(axis=2, dtype=np.uint64) ^ counts.astype(np.uint64)))
        h = _mix(parts[0] * np.uint64(3) + parts[1])
        h = _mix(h ^ (task_index.astype(np.uint64)[None, :] * _GOLDEN))
        return _mix(h ^ n_req.astype(np.uint64))


class FecCache:
    """LRU of fingerprint -> per-task fitness, with forgetting after `forget_every` uses."""

    def __init__(self, config: FecConfig):
        self.config = config
        self._entries: dict[int, list] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, fp: int) -> float | None:
        """The cached fitness of a fingerprint (counting a use), or None on a miss."""
        entry = self._entries.pop(fp, None)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        entry[1] += 1
        forget = self.config.forget_every
        if not forget or entry[1] < forget:
            self._entries[fp] = entry  # re-inserted: now the most recently used
        return entry[0]

    def insert(self, fp: int, fitness: float) -> None:
        """Cache a fitness (one use), evicting the least recently used beyond the size."""
        self._entries.pop(fp, None)
        self._entries[fp] = [fitness, 1]
        while len(self._entries) > self.config.cache_size:
            del self._entries[next(iter(self._entries))]

    def state(self) -> dict:
        """Everything needed to restore the cache (for checkpoints)."""
        return {"entries": list(self._entries.items()), "hits": self.hits,
                "misses": self.misses}

    def restore(self, state: dict) -> None:
        """Restore a state from `state()`."""
        self._entries = {k: list(v) for k, v in state["entries"]}
        self.hits, self.misses = state["hits"], state["misses"]
