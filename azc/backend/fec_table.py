"""The FEC cache in native code: an LRU of fingerprint -> fitness with forgetting.

The same cache as `azc.search.fec.FecCache` (the reference, a Python
OrderedDict; the two are tested against each other on random streams), but
one native call does the lookups of a whole batch of children in order, as
the original does them one by one: a hit counts a use, moves the entry to
the most recent end and, at `forget_every` uses, drops it; a miss inserts a
new entry at once (so later children of the batch hit it) and evicts the
least recently used entry beyond `cache_size`.

Layout (numpy arrays: checkpoints store them as they are, `arrays` and
`from_arrays`, which checks every index before native code follows one):
entries live in a pool of slots (slot 0 is the list's sentinel) with their
key, value, uses and the previous/next links of the LRU list; an
open-addressing table (linear probing, at most half full, backward-shift
deletion) maps a fingerprint to its slot.  A slot freed during a call is
reused only from the next call on, so the slots a call reports stay valid
until the caller has filled in the values of the entries it missed.

A miss can come with a known value (`known`, not NaN: the structural memo
knows the fitness); otherwise the entry is pending (value NaN) until the
caller evaluates the program and writes the value with `fill`.
"""

from __future__ import annotations

import ctypes
from typing import ClassVar

import numpy as np

from azc.backend.jit import default_compiler
from azc.errors import JitError

# st[] fields (int64): pointers, then counts
_KEYS, _VALS, _USES, _PREV, _NEXT, _TABLE, _FREE, _DEFER = range(8)
_SIZE, _NFREE, _NDEFER, _MASK, _CAP, _FORGET = range(8, 14)
_ST = 16

HIT, MISS, MISS_KNOWN = 0, 1, 2   # status of a lookup


def _ir() -> str:
    def field(name: str, i: int, ty: str = "i64") -> str:
        return (f"  %{name}.p = getelementptr inbounds i64, ptr %st, i64 {i}\n"
                f"  %{name}.i = load i64, ptr %{name}.p\n" +
                (f"  %{name} = inttoptr i64 %{name}.i to ptr\n" if ty == "ptr" else
                 f"  %{name} = add i64 %{name}.i, 0\n"))

    loads = "".join(field(n, i, "ptr") for n, i in (
        ("keys", _KEYS), ("vals", _VALS), ("uses", _USES), ("prev", _PREV), ("next", _NEXT),
        ("table", _TABLE), ("free", _FREE), ("defer", _DEFER)))
    loads += "".join(field(n, i) for n, i in (("mask", _MASK), ("cap", _CAP),
                                              ("forget", _FORGET)))
    return f"""
define internal i64 @azc_fec_home(i64 %key, i64 %mask) alwaysinline nounwind {{
  %s = lshr i64 %key, 29
  %x = xor i64 %key, %s
  %h = and i64 %x, %mask
  ret i64 %h
}}

define internal void @azc_fec_unlink(ptr %prev, ptr %next, i32 %s) alwaysinline nounwind {{
  %pp = getelementptr inbounds i32, ptr %prev, i32 %s
  %p = load i32, ptr %pp
  %np = getelementptr inbounds i32, ptr %next, i32 %s
  %n = load i32, ptr %np
  %pn = getelementptr inbounds i32, ptr %next, i32 %p
  store i32 %n, ptr %pn
  %nprev = getelementptr inbounds i32, ptr %prev, i32 %n
  store i32 %p, ptr %nprev
  ret void
}}

define internal void @azc_fec_push(ptr %prev, ptr %next, i32 %s) alwaysinline nounwind {{
  %last = load i32, ptr %prev
  %ln = getelementptr inbounds i32, ptr %next, i32 %last
  store i32 %s, ptr %ln
  %sp = getelementptr inbounds i32, ptr %prev, i32 %s
  store i32 %last, ptr %sp
  %sn = getelementptr inbounds i32, ptr %next, i32 %s
  store i32 0, ptr %sn
  store i32 %s, ptr %prev
  ret void
}}

; empty table index %i0, shifting back the entries of its probe run
define internal void @azc_fec_remove(ptr %table, ptr %keys, i64 %mask, i64 %i0) nounwind {{
entry:
  br label %scan
scan:
  %i = phi i64 [ %i0, %entry ], [ %i, %keep ], [ %j, %move ]
  %jp = phi i64 [ %i0, %entry ], [ %j, %keep ], [ %j, %move ]
  %j1 = add i64 %jp, 1
  %j = and i64 %j1, %mask
  %tj = getelementptr inbounds i32, ptr %table, i64 %j
  %sj = load i32, ptr %tj
  %empty = icmp eq i32 %sj, 0
  br i1 %empty, label %done, label %check
check:
  %kp = getelementptr inbounds i64, ptr %keys, i32 %sj
  %k = load i64, ptr %kp
  %home = call i64 @azc_fec_home(i64 %k, i64 %mask)
  %a = icmp ult i64 %i, %home
  %b = icmp ule i64 %home, %j
  %le = icmp ule i64 %i, %j
  %both = and i1 %a, %b
  %either = or i1 %a, %b
  %stay = select i1 %le, i1 %both, i1 %either
  br i1 %stay, label %keep, label %move
keep:
  br label %scan
move:
  %ti = getelementptr inbounds i32, ptr %table, i64 %i
  store i32 %sj, ptr %ti
  br label %scan
done:
  %tf = getelementptr inbounds i32, ptr %table, i64 %i
  store i32 0, ptr %tf
  ret void
}}

; the table index holding slot %s (which is in the table)
define internal i64 @azc_fec_index_of(ptr %table, ptr %keys, i64 %mask, i32 %s) nounwind {{
entry:
  %kp = getelementptr inbounds i64, ptr %keys, i32 %s
  %k = load i64, ptr %kp
  %h = call i64 @azc_fec_home(i64 %k, i64 %mask)
  br label %scan
scan:
  %i = phi i64 [ %h, %entry ], [ %i1, %again ]
  %tp = getelementptr inbounds i32, ptr %table, i64 %i
  %t = load i32, ptr %tp
  %eq = icmp eq i32 %t, %s
  br i1 %eq, label %found, label %again
again:
  %i2 = add i64 %i, 1
  %i1 = and i64 %i2, %mask
  br label %scan
found:
  ret i64 %i
}}

; drop slot %s (at table index %i): unlink, empty its table cell, defer its reuse
define internal void @azc_fec_drop(ptr %st, ptr %prev, ptr %next, ptr %table, ptr %keys,
                                   ptr %defer, i64 %mask, i32 %s, i64 %i) nounwind {{
  call void @azc_fec_unlink(ptr %prev, ptr %next, i32 %s)
  call void @azc_fec_remove(ptr %table, ptr %keys, i64 %mask, i64 %i)
  %ndp = getelementptr inbounds i64, ptr %st, i64 {_NDEFER}
  %nd = load i64, ptr %ndp
  %dp = getelementptr inbounds i32, ptr %defer, i64 %nd
  store i32 %s, ptr %dp
  %nd1 = add i64 %nd, 1
  store i64 %nd1, ptr %ndp
  %szp = getelementptr inbounds i64, ptr %st, i64 {_SIZE}
  %sz = load i64, ptr %szp
  %sz1 = sub i64 %sz, 1
  store i64 %sz1, ptr %szp
  ret void
}}

; lookups of %npos fingerprints in order; status and slot per position.
; Returns 0, or -1 (nothing done) when fewer than %npos free slots are left.
define i64 @azc_fec_lookup(ptr %st, ptr %fps, i64 %npos, ptr %known, ptr %status,
                           ptr %slots) nounwind {{
entry:
{loads}
  %nfp = getelementptr inbounds i64, ptr %st, i64 {_NFREE}
  %ndp = getelementptr inbounds i64, ptr %st, i64 {_NDEFER}
  %szp = getelementptr inbounds i64, ptr %st, i64 {_SIZE}
  %nf0 = load i64, ptr %nfp
  %nd0 = load i64, ptr %ndp
  br label %merge
merge:
  %d = phi i64 [ 0, %entry ], [ %d1, %mergebody ]
  %dmore = icmp slt i64 %d, %nd0
  br i1 %dmore, label %mergebody, label %merged
mergebody:
  %dsrc = getelementptr inbounds i32, ptr %defer, i64 %d
  %dv = load i32, ptr %dsrc
  %dto = add i64 %nf0, %d
  %ddst = getelementptr inbounds i32, ptr %free, i64 %dto
  store i32 %dv, ptr %ddst
  %d1 = add i64 %d, 1
  br label %merge
merged:
  %nf1 = add i64 %nf0, %nd0
  store i64 %nf1, ptr %nfp
  store i64 0, ptr %ndp
  %short = icmp slt i64 %nf1, %npos
  br i1 %short, label %fail, label %loop
fail:
  ret i64 -1
loop:
  %p = phi i64 [ 0, %merged ], [ %p1, %next_pos ]
  %more = icmp slt i64 %p, %npos
  br i1 %more, label %body, label %exit
body:
  %kp = getelementptr inbounds i64, ptr %fps, i64 %p
  %key = load i64, ptr %kp
  %h = call i64 @azc_fec_home(i64 %key, i64 %mask)
  %slp = getelementptr inbounds i32, ptr %slots, i64 %p
  %stp = getelementptr inbounds i8, ptr %status, i64 %p
  br label %probe
probe:
  %i = phi i64 [ %h, %body ], [ %i1, %probe_next ]
  %tp = getelementptr inbounds i32, ptr %table, i64 %i
  %s = load i32, ptr %tp
  %empty = icmp eq i32 %s, 0
  br i1 %empty, label %miss, label %compare
compare:
  %ksp = getelementptr inbounds i64, ptr %keys, i32 %s
  %ks = load i64, ptr %ksp
  %same = icmp eq i64 %ks, %key
  br i1 %same, label %hit, label %probe_next
probe_next:
  %i2 = add i64 %i, 1
  %i1 = and i64 %i2, %mask
  br label %probe
hit:
  store i32 %s, ptr %slp
  store i8 {HIT}, ptr %stp
  %up = getelementptr inbounds i64, ptr %uses, i32 %s
  %u = load i64, ptr %up
  %u1 = add i64 %u, 1
  store i64 %u1, ptr %up
  %forgets = icmp sgt i64 %forget, 0
  %worn = icmp sge i64 %u1, %forget
  %drop = and i1 %forgets, %worn
  br i1 %drop, label %forget_it, label %refresh
forget_it:
  call void @azc_fec_drop(ptr %st, ptr %prev, ptr %next, ptr %table, ptr %keys, ptr %defer,
                          i64 %mask, i32 %s, i64 %i)
  br label %next_pos
refresh:
  call void @azc_fec_unlink(ptr %prev, ptr %next, i32 %s)
  call void @azc_fec_push(ptr %prev, ptr %next, i32 %s)
  br label %next_pos
miss:
  %nf = load i64, ptr %nfp
  %nf2 = sub i64 %nf, 1
  store i64 %nf2, ptr %nfp
  %fsp = getelementptr inbounds i32, ptr %free, i64 %nf2
  %ns = load i32, ptr %fsp
  %nkp = getelementptr inbounds i64, ptr %keys, i32 %ns
  store i64 %key, ptr %nkp
  %nup = getelementptr inbounds i64, ptr %uses, i32 %ns
  store i64 1, ptr %nup
  %kvp = getelementptr inbounds double, ptr %known, i64 %p
  %kv = load double, ptr %kvp
  %nvp = getelementptr inbounds double, ptr %vals, i32 %ns
  store double %kv, ptr %nvp
  store i32 %ns, ptr %tp
  call void @azc_fec_push(ptr %prev, ptr %next, i32 %ns)
  store i32 %ns, ptr %slp
  %unknown = fcmp uno double %kv, %kv
  %code = select i1 %unknown, i8 {MISS}, i8 {MISS_KNOWN}
  store i8 %code, ptr %stp
  %sz = load i64, ptr %szp
  %sz1 = add i64 %sz, 1
  store i64 %sz1, ptr %szp
  %over = icmp sgt i64 %sz1, %cap
  br i1 %over, label %evict, label %next_pos
evict:
  %oldest = load i32, ptr %next
  %oi = call i64 @azc_fec_index_of(ptr %table, ptr %keys, i64 %mask, i32 %oldest)
  call void @azc_fec_drop(ptr %st, ptr %prev, ptr %next, ptr %table, ptr %keys, ptr %defer,
                          i64 %mask, i32 %oldest, i64 %oi)
  br label %next_pos
next_pos:
  %p1 = add i64 %p, 1
  br label %loop
exit:
  ret i64 0
}}
"""


_LOOKUP = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                           ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
_native: list = []


def _lookup_function():
    if not _native:
        engine, addrs, _ = default_compiler().compile_text(_ir(), ["azc_fec_lookup"])
        _native.append((engine, _LOOKUP(addrs[0])))
    return _native[0][1]


class NativeFecTable:
    """The FEC cache's entries, looked up a batch at a time by native code."""

    def __init__(self, cache_size: int, forget_every: int):
        if cache_size < 1:
            raise ValueError(f"cache_size must be positive, got {cache_size}")
        self.cache_size = cache_size
        self.forget_every = forget_every
        bits = max(4, (2 * (cache_size + 1) - 1).bit_length())
        self.table = np.zeros(1 << bits, dtype=np.int32)
        self.keys = np.zeros(0, dtype=np.uint64)
        self._grow(cache_size + 1 + 1024)
        self._fn = _lookup_function()

    def _grow(self, slots: int) -> None:
        """Make the pool hold `slots` slots (slot 0 the sentinel); new slots are free."""
        old = len(self.keys)
        if old == 0:
            self.keys = np.zeros(slots, dtype=np.uint64)
            self.vals = np.zeros(slots, dtype=np.float64)
            self.uses = np.zeros(slots, dtype=np.int64)
            self.prev = np.zeros(slots, dtype=np.int32)
            self.next = np.zeros(slots, dtype=np.int32)
            self.free = np.arange(slots - 1, 0, -1, dtype=np.int32)  # slot 1 first
            self.defer = np.zeros(slots, dtype=np.int32)
            self.counts = np.zeros(_ST, dtype=np.int64)
            self.counts[_NFREE] = slots - 1
            self.counts[_MASK] = len(self.table) - 1
            self.counts[_CAP] = self.cache_size
            self.counts[_FORGET] = self.forget_every
        else:
            extra = slots - old
            for name in ("keys", "vals", "uses", "prev", "next", "defer"):
                arr = getattr(self, name)
                setattr(self, name, np.concatenate([arr, np.zeros(extra, dtype=arr.dtype)]))
            nfree = int(self.counts[_NFREE])
            free = np.zeros(slots, dtype=np.int32)
            free[:extra] = np.arange(slots - 1, old - 1, -1, dtype=np.int32)
            free[extra:extra + nfree] = self.free[:nfree]
            self.free = free
            self.counts[_NFREE] = nfree + extra
        self._point()

    def _point(self) -> None:
        c = self.counts
        for i, name in enumerate(("keys", "vals", "uses", "prev", "next", "table", "free",
                                  "defer")):
            c[i] = getattr(self, name).ctypes.data

    def __len__(self) -> int:
        return int(self.counts[_SIZE])

    def lookup(self, fps: np.ndarray, known: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(status, slots) of the lookups of `fps` (uint64) in order.

        status is HIT, MISS (a pending entry: fill its value) or MISS_KNOWN
        (inserted with the value given in `known`, NaN where unknown).
        The values of every position are `values(slots)` once the pending
        entries are filled.
        """
        fps = np.ascontiguousarray(fps, dtype=np.uint64)
        n = len(fps)
        if known is None:
            known = np.full(n, np.nan)
        known = np.ascontiguousarray(known, dtype=np.float64)
        if known.shape != (n,):
            raise JitError(f"known values: expected shape ({n},), got {known.shape}")
        status = np.empty(n, dtype=np.int8)
        slots = np.empty(n, dtype=np.int32)
        spare = int(self.counts[_NFREE] + self.counts[_NDEFER])
        if spare < n:
            self._grow(len(self.keys) + n - spare + 1024)
        if self._fn(self.counts.ctypes.data, fps.ctypes.data, n, known.ctypes.data,
                    status.ctypes.data, slots.ctypes.data) != 0:  # pragma: no cover
            raise JitError("FEC table: out of free slots")
        return status, slots

    def fill(self, slots: np.ndarray, values: np.ndarray) -> None:
        """Write the values of pending entries (slots of MISS lookups)."""
        self.vals[slots] = values

    def values(self, slots: np.ndarray) -> np.ndarray:
        """The values held in slots."""
        return self.vals[slots]

    def items(self) -> list[tuple[int, float, int]]:
        """(fingerprint, value, uses) of every entry, least recently used first."""
        out = []
        nxt, s = self.next, int(self.next[0])
        while s:
            out.append((int(self.keys[s]), float(self.vals[s]), int(self.uses[s])))
            s = int(nxt[s])
        return out

    _ARRAYS: ClassVar[dict[str, type]] = {"table": np.int32, "keys": np.uint64,
                                          "vals": np.float64, "uses": np.int64,
                                          "prev": np.int32, "next": np.int32,
                                          "free": np.int32, "defer": np.int32,
                                          "counts": np.int64}

    def arrays(self) -> dict[str, np.ndarray]:
        """The whole state as arrays (copies; the pointers in `counts` zeroed)."""
        out = {name: getattr(self, name).copy() for name in self._ARRAYS}
        out["counts"][:_SIZE] = 0
        return out

    @classmethod
    def from_arrays(cls, cache_size: int, forget_every: int,
                    arrays: dict[str, np.ndarray]) -> NativeFecTable:
        """The table of `arrays()`: exactly the same state. ValueError unless every array
        has its dtype and a consistent size and every index native code follows is in
        range (a table read from a file must not make native code leave its memory)."""
        if set(arrays) != set(cls._ARRAYS):
            raise ValueError(f"FEC table: expected arrays {sorted(cls._ARRAYS)}, "
                             f"got {sorted(arrays)}")
        a: dict[str, np.ndarray] = {}
        for name, dtype in cls._ARRAYS.items():
            arr = arrays[name]
            if arr.dtype != np.dtype(dtype) or arr.ndim != 1:
                raise ValueError(f"FEC table: {name} must be a 1-D {np.dtype(dtype)} array, "
                                 f"got {arr.ndim}-D {arr.dtype}")
            a[name] = np.array(arr, dtype=dtype, order="C", copy=True)
        n, t, c = len(a["keys"]), len(a["table"]), a["counts"]
        if cache_size < 1 or forget_every < 0 or n < cache_size + 2:
            raise ValueError(f"FEC table: {n} slots for cache_size {cache_size}")
        if (any(len(a[k]) != n for k in ("vals", "uses", "prev", "next", "defer"))
                or len(a["free"]) not in (n - 1, n)):
            raise ValueError("FEC table: slot arrays of different lengths")
        if t < 16 or t & (t - 1) or t < 2 * (cache_size + 1) or len(c) != _ST:
            raise ValueError(f"FEC table: a lookup table of {t} entries")
        size, nfree, ndefer = int(c[_SIZE]), int(c[_NFREE]), int(c[_NDEFER])
        if (int(c[_MASK]) != t - 1 or int(c[_CAP]) != cache_size
                or int(c[_FORGET]) != forget_every or not 0 <= size <= cache_size + 1
                or nfree < 0 or ndefer < 0 or nfree + ndefer > len(a["free"])):
            raise ValueError("FEC table: inconsistent counts")
        for name, arr in (("table", a["table"]), ("prev", a["prev"]), ("next", a["next"])):
            if len(arr) and (int(arr.min()) < 0 or int(arr.max()) >= n):
                raise ValueError(f"FEC table: {name} holds a slot out of range")
        for name, k in (("free", nfree), ("defer", ndefer)):
            part = a[name][:k]
            if k and (int(part.min()) < 1 or int(part.max()) >= n):
                raise ValueError(f"FEC table: {name} holds a slot out of range")
        if int(np.count_nonzero(a["table"])) != size:  # so a probe always ends
            raise ValueError("FEC table: the lookup table does not hold its entries")
        table = cls.__new__(cls)
        table.cache_size, table.forget_every = cache_size, forget_every
        table.__dict__.update(a)
        table._point()
        table._fn = _lookup_function()
        return table

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_fn"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._point()  # the arrays live at new addresses
        self._fn = _lookup_function()
