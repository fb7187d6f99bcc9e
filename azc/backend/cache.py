"""The kernel cache: compiled kernels by structural hash, with bounded memory.

Keys are the structural hash of the *optimized* program (so programs that
differ only in dead code share one kernel) and the feature size.  The
in-memory cache is an LRU of kernels; since native code is only freed with
its engine, kernels are compiled into engines of bounded size, and an engine
is closed as soon as none of its kernels is cached any more.  The number of
open engines is bounded too (the least recently used engine is closed, with
all its kernels, when there are too many), so resident memory stays bounded
however many distinct programs pass through.

An optional on-disk cache (off unless a `DiskCache` is given) keeps the
object code of kernels, keyed by the kernel key and the compiler's
fingerprint (azc's version and code generator, llvmlite's version, the
target triple, CPU name and features, the optimization levels).  A kernel
found there is loaded without any LLVM optimization or code generation; one
that is not is compiled alone in its module (so that its object code is its
own: 20-25% slower than compiling it in a batch of 100) and saved.  Files
carry a checksum over key and content, are written atomically, and are
bounded in total bytes (least recently used first); a missing, truncated or
corrupt file is a miss (and is replaced), never a crash: LLVM is only ever
handed object code whose checksum holds.

`evaluate_tasks` evaluates a program on tasks with the default cache's kernels.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from azc.backend.jit import Compiler, Engine, Kernel
from azc.errors import JitError
from azc.interp import DEFAULT_MAX_ABS_ERROR
from azc.ir import MemoryConfig, Program, structural_hash, verify
from azc.ops import Op, on_change
from azc.results import TaskResult
from azc.tasks.task import Task


@dataclass
class CacheStats:
    """Counters of a kernel cache (readable from Python, printed by benches)."""

    hits: int = 0
    misses: int = 0
    compiles: int = 0
    compile_seconds: float = 0.0
    evictions: int = 0
    engines_closed: int = 0
    disk_hits: int = 0            # misses served by loading object code from disk
    disk_load_seconds: float = 0.0

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
    """LRU of compiled kernels keyed by optimized structural hash and F.

    With `disk`, kernels missing in memory are looked up on disk (by
    `disk_key`) before compiling, and compiled kernels are saved there.
    """

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
        kernel = self._make([(key, optimized)], features)[0]
        self._insert(key, kernel)
        return kernel

    def kernels_for(self, items: list[tuple[str, Program]], features: int) -> list[Kernel]:
        """Kernels for many (key, optimized program); misses are compiled in one batch
        (with a disk cache: loaded from disk, or compiled one by one and saved).

        A batch may hold at most `capacity` distinct keys (else some of its kernels
        would be evicted, and their code possibly freed, before they are returned).
        """
        distinct = len({k for k, _ in items})
        if distinct > self.capacity:
            raise ValueError(f"a batch of {distinct} distinct programs does not fit a kernel "
                             f"cache of capacity {self.capacity}")
        missing = []
        keep: set[int] = set()  # engines holding this batch's kernels: never closed for it
        for key, program in items:
            k = self.kernels.get(key)
            if k is None or k.engine.closed:
                missing.append((key, program))
                continue
            self.kernels.move_to_end(key)  # hits first, so the misses cannot evict them
            self._touch(k.engine)
            keep.add(id(k.engine))
        unique = list(dict(missing).items())
        if unique:
            for (key, _), kern in zip(unique, self._make(unique, features)):
                keep.add(id(kern.engine))
                self._insert(key, kern, keep)
        out = []
        for key, _ in items:
            out.append(self.kernels[key])
            self.kernels.move_to_end(key)
        self.stats.misses += len(missing)
        self.stats.hits += len(items) - len(missing)
        return out

    def _make(self, items: list[tuple[str, Program]], features: int) -> list[Kernel]:
        """Kernels for cache misses: loaded from disk when there, else compiled (without a
        disk cache, all in one module)."""
        if self.disk is None:
            kernels = self.compiler.compile_many([p for _, p in items], features,
                                                 [k for k, _ in items])
            self.stats.compiles += len(kernels)
            self.stats.compile_seconds += sum(k.compile_seconds for k in kernels)
            return kernels
        return [self._through_disk(key, program, features) for key, program in items]

    def disk_key(self, key: str) -> str:
        """The on-disk key of a kernel key: with the compiler's fingerprint."""
        return f"{key}|{self.compiler.fingerprint}"

    def _through_disk(self, key: str, program: Program, features: int) -> Kernel:
        assert self.disk is not None
        memory = MemoryConfig.fitting(program)
        dkey = self.disk_key(key)
        data = self.disk.get(dkey)
        if data is not None:
            try:
                kernel = self.compiler.load_object(data, memory, features, key)
            except JitError:  # a verified file without the kernel's symbols: replace it
                self.disk.discard(dkey)
            else:
                self.stats.disk_hits += 1
                self.stats.disk_load_seconds += kernel.compile_seconds
                return kernel
        kernel, data = self.compiler.compile_object(program, memory, features, key)
        self.stats.compiles += 1
        self.stats.compile_seconds += kernel.compile_seconds
        self.disk.put(dkey, data)
        return kernel

    def _insert(self, key: str, kernel: Kernel, keep: set[int] | None = None) -> None:
        """Cache a kernel, then evict down to the bounds (engines in `keep`, by id, stay
        open: the batch being built holds kernels in them)."""
        self.kernels[key] = kernel
        eid = id(kernel.engine)
        engine, live = self.engines.get(eid, (kernel.engine, 0))
        self.engines[eid] = (engine, live + 1)
        self._touch(engine)
        while len(self.kernels) > self.capacity:
            self._evict(next(iter(self.kernels)))
        while len(self.engines) > self.max_engines:
            victim = next((e for e in self.engines if not keep or e not in keep), None)
            if victim is None:
                break  # every open engine holds kernels of this batch: close them later
            self._close_engine(victim)

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


def default_cache_dir() -> Path:
    """Where the on-disk kernel cache lives by default: $AZC_CACHE_DIR, else
    ~/.cache/azc/kernels."""
    env = os.environ.get("AZC_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "azc" / "kernels"


class DiskCache:
    """Bytes by key in a directory, checked on read, bounded in total bytes.

    A file is `MAGIC`, a 32-byte BLAKE2b digest of the key and the content,
    then the content; its name is a hash of the key and `tag`.  `get` returns
    the content only when the digest holds (a truncated, corrupt or foreign
    file is deleted and reads as a miss).  `put` writes a temporary file and
    renames it into place (atomic: readers see the old file or the new one),
    and keeps the directory at most `max_bytes` in total by deleting the
    least recently used files (reads refresh a file's time) down to 90% of
    the bound.  I/O errors never propagate: a failed write is counted and
    skipped.  Several processes may share a directory.
    """

    MAGIC = b"azc-obj1"
    SUFFIX = ".o"
    STALE_SECONDS = 600.0  # temporary files older than this were left by a crash

    def __init__(self, directory: str | Path | None = None, max_bytes: int = 256 * 2**20,
                 tag: str = ""):
        self.dir = Path(directory) if directory is not None else default_cache_dir()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.tag = tag
        self.hits = self.misses = self.corrupt = 0
        self.writes = self.write_errors = self.trimmed = 0
        self._total = self.size()
        self._written = 0  # bytes written since the directory was last scanned

    def path(self, key: str) -> Path:
        """The file of a key."""
        h = hashlib.blake2b(f"{key}|{self.tag}".encode(), digest_size=16).hexdigest()
        return self.dir / f"{h}{self.SUFFIX}"

    def _digest(self, key: str, data: bytes) -> bytes:
        h = hashlib.blake2b(digest_size=32)
        h.update(f"{key}|{self.tag}".encode())
        h.update(b"\0")
        h.update(data)
        return h.digest()

    def get(self, key: str) -> bytes | None:
        """The content stored under a key, if present and intact."""
        p = self.path(key)
        try:
            raw = p.read_bytes()
        except OSError:
            self.misses += 1
            return None
        head = len(self.MAGIC) + 32
        data = raw[head:]
        if len(raw) < head or not raw.startswith(self.MAGIC) or \
                raw[len(self.MAGIC):head] != self._digest(key, data):
            self.corrupt += 1
            self.misses += 1
            self.discard(key)
            return None
        try:
            os.utime(p)
        except OSError:
            pass
        self.hits += 1
        return data

    def put(self, key: str, data: bytes) -> None:
        """Store content under a key atomically (temp file + rename), then keep the bound."""
        blob = self.MAGIC + self._digest(key, data) + data
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, self.path(key))
        except OSError:
            self.write_errors += 1
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            return
        self.writes += 1
        self._total += len(blob)
        self._written += len(blob)
        if self._total > self.max_bytes or self._written > self.max_bytes // 8:
            self.trim()

    def discard(self, key: str) -> None:
        """Delete a key's file, if any."""
        try:
            self.path(key).unlink(missing_ok=True)
        except OSError:
            pass

    def _files(self) -> list[tuple[float, int, Path]]:
        """(mtime, bytes, path) of the cache files; stale temporary files are deleted."""
        files = []
        now = time.time()
        for entry in os.scandir(self.dir):
            try:
                st = entry.stat()
            except OSError:
                continue  # deleted meanwhile (another process)
            if entry.name.endswith(self.SUFFIX):
                files.append((st.st_mtime, st.st_size, Path(entry.path)))
            elif entry.name.endswith(".tmp") and now - st.st_mtime > self.STALE_SECONDS:
                Path(entry.path).unlink(missing_ok=True)
        return files

    def size(self) -> int:
        """Total bytes of the cache files now."""
        return sum(size for _, size, _ in self._files())

    def trim(self) -> None:
        """Scan the directory; if it holds more than `max_bytes`, delete the least recently
        used files down to 90% of the bound."""
        files = sorted(self._files(), key=lambda f: f[0])
        total = sum(size for _, size, _ in files)
        if total > self.max_bytes:
            low = self.max_bytes * 9 // 10
            for _, size, path in files:
                if total <= low:
                    break
                try:
                    path.unlink()
                except OSError:
                    continue
                total -= size
                self.trimmed += 1
        self._total = total
        self._written = 0

    def clear(self) -> None:
        """Delete every cache file."""
        for _, _, path in self._files():
            path.unlink(missing_ok=True)
        self._total = self._written = 0


_default: KernelCache | None = None


def default_cache() -> KernelCache:
    """The process-wide kernel cache."""
    global _default
    if _default is None:
        _default = KernelCache()
    return _default


@on_change
def _forget_kernels(added: tuple[Op, ...], removed: tuple[Op, ...]) -> None:
    """Kernels are keyed by op ids: a changed op table starts a new default cache."""
    global _default
    _default = None


def now() -> float:
    """Seconds on a monotonic clock (for compile-time counters)."""
    return time.perf_counter()


def evaluate_tasks(program: Program, tasks: Sequence[Task], memory: MemoryConfig, *,
                   seed: int = 0, num_train: int | None = None,
                   max_abs_error: float = DEFAULT_MAX_ABS_ERROR, record: bool = False,
                   record_errors: bool = False) -> list[TaskResult]:
    """Evaluate a program on tasks with compiled kernels (one per feature size)."""
    cache = default_cache()
    results: list[TaskResult | None] = [None] * len(tasks)
    by_f: dict[int, list[int]] = {}
    for i, t in enumerate(tasks):
        by_f.setdefault(t.features, []).append(i)
    for F, idx in by_f.items():
        verify(program, MemoryConfig.fitting(program, F))  # element indices against F
        kernel = cache.kernel(program, F)
        out = kernel.run([tasks[i] for i in idx], seed=seed, max_abs_error=max_abs_error,
                         num_train=num_train, record=record, record_errors=record_errors)
        for i, r in zip(idx, out):
            results[i] = r
    return [r for r in results if r is not None]
