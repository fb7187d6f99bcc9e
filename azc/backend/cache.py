"""The kernel cache: compiled kernels by structural hash, with bounded memory.

Keys are the structural hash of the *optimized* program (so programs that
differ only in dead code share one kernel) and the feature size.  The
in-memory cache is an LRU of kernels; since native code is only freed with
its engine, kernels are compiled into engines of bounded size, and an engine
is closed as soon as none of its kernels is cached any more.  The number of
open engines is bounded too (the least recently used engine is closed, with
all its kernels, when there are too many), so resident memory stays bounded
however many distinct programs pass through.

An optional on-disk cache keeps the object code of kernels, keyed by the
kernel key, the llvmlite version, the CPU and azc's version; it is bounded in
bytes (least recently used files go first).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from azc.backend.jit import Compiler, Engine, Kernel
from azc.ir import Program, structural_hash


@dataclass
class CacheStats:
    """Counters of a kernel cache (readable from Python, printed by benches)."""

    hits: int = 0
    misses: int = 0
    compiles: int = 0
    compile_seconds: float = 0.0
    evictions: int = 0
    engines_closed: int = 0
    disk_hits: int = 0

    @property
    def hit_rate(self) -> float:
        """Share of lookups served from the cache."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


def kernel_key(program: Program, features: int) -> tuple[str, Program]:
    """(key, optimized program): the cache key of a program at feature size F."""
    try:
        from azc.passes import optimize
        program = optimize(program, features)
    except ImportError:  # pragma: no cover - passes not installed
        pass
    return f"{structural_hash(program)}-F{features}", program


class KernelCache:
    """LRU of compiled kernels keyed by optimized structural hash and F."""

    def __init__(self, capacity: int = 2048, compiler: Compiler | None = None,
                 engine_size: int = 128, max_engines: int | None = None,
                 disk: DiskCache | None = None):
        self.capacity = capacity
        self.compiler = compiler or Compiler(engine_size=engine_size)
        self.compiler.engine_size = engine_size
        self.max_engines = max_engines or max(4, 2 * (capacity // engine_size + 1))
        self.kernels: OrderedDict[str, Kernel] = OrderedDict()
        self.engines: OrderedDict[int, tuple[Engine, int]] = OrderedDict()
        self.stats = CacheStats()
        self.disk = disk

    def __len__(self) -> int:
        return len(self.kernels)

    def kernel(self, program: Program, features: int) -> Kernel:
        """The kernel of a program (compiled on a miss)."""
        key, optimized = kernel_key(program, features)
        return self.kernel_for(key, optimized, features)

    def kernel_for(self, key: str, optimized: Program, features: int) -> Kernel:
        """The kernel for an already optimized program and its key."""
        k = self.kernels.get(key)
        if k is not None and not k.engine.closed:
            self.kernels.move_to_end(key)
            self._touch(k.engine)
            self.stats.hits += 1
            return k
        self.stats.misses += 1
        kernel = self.compiler.compile(optimized, features, key=key)
        self.stats.compiles += 1
        self.stats.compile_seconds += kernel.compile_seconds
        self._insert(key, kernel)
        return kernel

    def kernels_for(self, items: list[tuple[str, Program]], features: int) -> list[Kernel]:
        """Kernels for many (key, optimized program); misses are compiled in one batch."""
        missing = [(k, p) for k, p in items
                   if k not in self.kernels or self.kernels[k].engine.closed]
        unique = list(dict(missing).items())
        if unique:
            compiled = self.compiler.compile_many([p for _, p in unique], features,
                                                  [k for k, _ in unique])
            for (key, _), kern in zip(unique, compiled):
                self.stats.compiles += 1
                self.stats.compile_seconds += kern.compile_seconds
                self._insert(key, kern)
        out = []
        for key, _ in items:
            k = self.kernels[key]
            self.kernels.move_to_end(key)
            out.append(k)
        self.stats.misses += len(missing)
        self.stats.hits += len(items) - len(missing)
        return out

    def _insert(self, key: str, kernel: Kernel) -> None:
        self.kernels[key] = kernel
        eid = id(kernel.engine)
        engine, live = self.engines.get(eid, (kernel.engine, 0))
        self.engines[eid] = (engine, live + 1)
        self._touch(engine)
        while len(self.kernels) > self.capacity:
            self._evict(next(iter(self.kernels)))
        while len(self.engines) > self.max_engines:
            self._close_engine(next(iter(self.engines)))

    def _touch(self, engine: Engine) -> None:
        if id(engine) in self.engines:
            self.engines.move_to_end(id(engine))

    def _evict(self, key: str) -> None:
        kernel = self.kernels.pop(key)
        self.stats.evictions += 1
        eid = id(kernel.engine)
        if eid not in self.engines:
            return
        engine, live = self.engines[eid]
        if live <= 1 and engine is not self.compiler.engine:
            self._close_engine(eid)
        else:
            self.engines[eid] = (engine, live - 1)

    def _close_engine(self, eid: int) -> None:
        engine, _ = self.engines.pop(eid)
        for key in [k for k, v in self.kernels.items() if v.engine is engine]:
            del self.kernels[key]
            self.stats.evictions += 1
        if engine is self.compiler.engine:
            self.compiler.engine = None
        engine.close()
        self.stats.engines_closed += 1

    def clear(self) -> None:
        """Drop every kernel and close every engine."""
        for eid in list(self.engines):
            self._close_engine(eid)
        self.kernels.clear()


class DiskCache:
    """Object code on disk, bounded in bytes (least recently used files go first)."""

    def __init__(self, directory: str | Path, max_bytes: int = 256 * 2**20, tag: str = ""):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.tag = tag

    def path(self, key: str) -> Path:
        """The file of a key."""
        h = hashlib.blake2b(f"{key}|{self.tag}".encode(), digest_size=16).hexdigest()
        return self.dir / f"{h}.o"

    def get(self, key: str) -> bytes | None:
        """The object code of a key, if cached."""
        p = self.path(key)
        try:
            data = p.read_bytes()
        except OSError:
            return None
        os.utime(p)
        return data

    def put(self, key: str, data: bytes) -> None:
        """Store object code atomically (temp file + rename), then enforce the bound."""
        fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, self.path(key))
        self._trim()

    def _trim(self) -> None:
        files = sorted(self.dir.glob("*.o"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        while files and total > self.max_bytes:
            p = files.pop(0)
            total -= p.stat().st_size
            p.unlink(missing_ok=True)


_default: KernelCache | None = None


def default_cache() -> KernelCache:
    """The process-wide kernel cache."""
    global _default
    if _default is None:
        _default = KernelCache()
    return _default


def now() -> float:
    """Seconds on a monotonic clock (for compile-time counters)."""
    return time.perf_counter()
