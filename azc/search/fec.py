"""Functional equivalence checking (FEC, docs/semantics.md §9).

A program's fingerprint on a task hashes its absolute errors on the first
`num_train_examples` training steps and `num_valid_examples` validation
examples (run with the random generator reset to a fixed seed), together with
the task's index and the budgeted number of training examples.  The cache is
an LRU of `cache_size` fingerprints -> per-task fitness; a hit moves the
entry to the most recent end and counts a use, and after `forget_every` uses
the entry is dropped (the value is still returned that time), exactly as the
original's FECCache.  Hashes are of the raw error bits (no rounding); the
hash itself is computed natively (azc.backend.fec_hash).

`FecCache` is the reference definition of the cache, in Python; the search
uses its native twin `azc.backend.fec_table.NativeFecTable`, which looks up a
whole batch in one call and is tested against this class on random streams.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from azc.errors import ConfigError

FEC_SEED = 235732282
FEC_MAX_EXAMPLES = 100  # train and valid errors the FEC fingerprint records, at most


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
        for name in ("num_train_examples", "num_valid_examples"):
            if getattr(self, name) > FEC_MAX_EXAMPLES:
                raise ConfigError(f"fec.{name} must be at most {FEC_MAX_EXAMPLES} (the errors "
                                  f"a fingerprint records), got {getattr(self, name)}")
        if self.forget_every < 0:
            raise ConfigError(f"fec.forget_every must be >= 0, got {self.forget_every}")


class FecCache:
    """LRU of fingerprint -> per-task fitness, with forgetting after `forget_every` uses.

    Entries are [fitness, uses] in an OrderedDict, least recently used first
    (moving and evicting are O(1); a plain dict used this way slows down as
    deleted slots pile up at its front).
    """

    def __init__(self, config: FecConfig):
        self.config = config
        self._entries: OrderedDict[int, list] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, fp: int) -> float | None:
        """The cached fitness of a fingerprint (counting a use), or None on a miss."""
        entry = self._entries.get(fp)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        entry[1] += 1
        forget = self.config.forget_every
        if forget and entry[1] >= forget:
            del self._entries[fp]  # forgotten: the next identical fingerprint re-evaluates
        else:
            self._entries.move_to_end(fp)
        return entry[0]

    def insert(self, fp: int, fitness: float | None) -> list:
        """Cache a fitness (one use), evicting the least recently used beyond the size;
        the new entry."""
        entries = self._entries
        entry = [fitness, 1]
        entries[fp] = entry
        entries.move_to_end(fp)
        if len(entries) > self.config.cache_size:
            entries.popitem(last=False)
        return entry
