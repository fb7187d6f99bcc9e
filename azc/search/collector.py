"""Python's cyclic garbage collector, paced by the search instead of by allocations.

The search allocates a few small objects per child (the child's tuples and
instructions, cache entries) and keeps about a million of them alive (the
population, the FEC cache, the structural memo).  Left to itself, the
collector runs every few hundred allocations and now and then walks every
live object: measured on the demo, that doubled the cost of mutation and took
about a sixth of the search's time.  None of the search's own structures form
reference cycles (reference counting frees them; a full collection after
300,000 demo children finds nothing to free), so inside `paused_collector()`
automatic collection is off and `tick()` — called by the evolution loop after
each batch — runs a full collection every `FULL_EVERY_SECONDS` (about 0.3 s
with the demo's caches full: 0.3% of the time), which keeps any cycle made
elsewhere (a caught exception, a user's callback) from piling up.  Collecting
only the young generations more often would cost more: what survives there is
mostly cache entries, which no collection can free.  After a full
collection the C heap's free memory goes back to the system (glibc's
`malloc_trim`, where it exists): each search experiment builds and drops
megabytes of task data, and without trimming the resident size drifts up
with the allocator's free lists.  Outside the context, `tick()` does nothing
and Python's defaults apply.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager

FULL_EVERY_SECONDS = 120.0    # seconds between full collections
CHECK_EVERY = 10_000          # children between looks at the clock

_state = {"paused": 0, "children": 0, "last_full": 0.0}


def _malloc_trim():
    """glibc's malloc_trim, or None on other C libraries."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


_trim = _malloc_trim()


def trim() -> None:
    """Give the C heap's free memory back to the system (where the C library can)."""
    if _trim is not None:
        _trim(0)


def collect_all() -> None:
    """A full collection, then the freed C heap back to the system."""
    gc.collect()
    trim()


@contextmanager
def paused_collector() -> Iterator[None]:
    """Turn automatic collection off for the block (nestable); restore it after."""
    was_enabled = gc.isenabled()
    if _state["paused"] == 0:
        _state["children"] = 0
        _state["last_full"] = time.monotonic()
    _state["paused"] += 1
    gc.disable()
    try:
        yield
    finally:
        _state["paused"] -= 1
        if was_enabled:
            gc.enable()


def tick(children: int) -> None:
    """Count children made; collect when due (only inside `paused_collector()`)."""
    if not _state["paused"]:
        return
    _state["children"] += children
    if _state["children"] >= CHECK_EVERY:
        _state["children"] = 0
        now = time.monotonic()
        if now - _state["last_full"] >= FULL_EVERY_SECONDS:
            collect_all()
            _state["last_full"] = time.monotonic()
