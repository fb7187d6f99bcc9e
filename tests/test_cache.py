"""The kernel cache's on-disk object cache: reuse across instances, integrity, bound."""

from __future__ import annotations

import os
from pathlib import Path

import llvmlite
import numpy as np
import pytest

import azc
from azc.backend import cache as cache_mod
from azc.backend.cache import DiskCache, KernelCache, default_cache_dir, kernel_key
from azc.backend.jit import Compiler
from azc.frontend import parse, parse_file
from azc.interp import evaluate_task
from azc.ir import MemoryConfig, Program
from azc.tasks import load_tasks

from .test_frontend import EXAMPLES
from .test_jit import same

NAMES = ("linear_sgd", "neural_net", "all_ops")  # all_ops calls libm; neural_net draws


def programs() -> list[Program]:
    return [parse_file(EXAMPLES / f"{n}.az") for n in NAMES]


def results(cache: KernelCache, progs: list[Program]) -> list:
    tasks = load_tasks("linear")[:2]
    return [cache.kernel(p, 4).run(tasks, seed=7, record=True, record_errors=True)
            for p in progs]


def assert_same_results(a: list, b: list) -> None:
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            assert same(np.array([x.fitness]), np.array([y.fitness]))
            assert same(x.train_predictions, y.train_predictions)
            assert same(x.valid_predictions, y.valid_predictions)
            assert same(np.array(x.train_errors), np.array(y.train_errors))


def test_a_second_cache_loads_kernels_from_disk(tmp_path: Path) -> None:
    progs = programs()
    first = KernelCache(disk=DiskCache(tmp_path))
    expected = results(first, progs)
    assert first.stats.compiles == 3 and first.stats.disk_hits == 0
    assert len(list(tmp_path.glob("*.o"))) == 3

    second = KernelCache(disk=DiskCache(tmp_path))
    got = results(second, progs)
    assert second.stats.disk_hits == 3 and second.stats.compiles == 0
    assert second.compiler.compiled == 0, "LLVM compiled although every kernel was on disk"
    assert second.compiler.loaded == 3
    assert_same_results(got, expected)
    plain = KernelCache()  # no disk: the batched compile path
    assert_same_results(results(plain, progs), expected)


def test_kernels_for_mixes_disk_hits_and_compiles(tmp_path: Path) -> None:
    progs = programs()
    items = [kernel_key(p, 4) for p in progs]
    KernelCache(disk=DiskCache(tmp_path)).kernels_for(items[:2], 4)
    cache = KernelCache(disk=DiskCache(tmp_path))
    kernels = cache.kernels_for(items + items[:1], 4)
    assert cache.stats.disk_hits == 2 and cache.stats.compiles == 1
    assert kernels[0] is kernels[3]
    assert [k.key for k in kernels] == [key for key, _ in items + items[:1]]
    assert cache.compiler.compiled == 2  # one kernel: its function and its runner


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty", "header only"])
def test_a_damaged_file_is_recompiled_and_replaced(tmp_path: Path, damage: str) -> None:
    prog = programs()[2]
    expected = results(KernelCache(disk=DiskCache(tmp_path)), [prog])
    (path,) = tmp_path.glob("*.o")
    data = path.read_bytes()
    damaged = {"truncate": data[:len(data) // 2],
               "flip": data[:-100] + bytes([data[-100] ^ 0x40]) + data[-99:],
               "garbage": os.urandom(len(data)),
               "empty": b"",
               "header only": data[:40]}[damage]
    path.write_bytes(damaged)
    cache = KernelCache(disk=DiskCache(tmp_path))
    assert_same_results(results(cache, [prog]), expected)
    assert cache.stats.disk_hits == 0 and cache.stats.compiles == 1
    assert cache.disk is not None and cache.disk.corrupt == 1
    assert path.read_bytes() == data, "the damaged file was not replaced"
    again = KernelCache(disk=DiskCache(tmp_path))
    assert_same_results(results(again, [prog]), expected)
    assert again.stats.disk_hits == 1


def test_a_verified_file_without_the_kernel_is_replaced(tmp_path: Path) -> None:
    """Intact object code of another kernel under a key: its symbols are missing."""
    a, b = programs()[:2]
    cache = KernelCache(disk=DiskCache(tmp_path))
    key_a, key_b = kernel_key(a, 4)[0], kernel_key(b, 4)[0]
    cache.kernel(b, 4)
    assert cache.disk is not None
    cache.disk.put(cache.disk_key(key_a), cache.disk.get(cache.disk_key(key_b)) or b"")
    fresh = KernelCache(disk=DiskCache(tmp_path))
    expected = results(KernelCache(), [a])
    assert_same_results(results(fresh, [a]), expected)
    assert fresh.stats.disk_hits == 0 and fresh.stats.compiles == 1
    assert_same_results(results(KernelCache(disk=DiskCache(tmp_path)), [a]), expected)


def test_the_disk_key_holds_the_compiler_fingerprint(tmp_path: Path) -> None:
    compiler = Compiler()
    fp = compiler.fingerprint
    t = compiler.target
    for part in (azc.__version__, llvmlite.__version__, t.cpu, t.features, t.triple,
                 f"opt {compiler.opt}", f"codegen {compiler.codegen_opt}"):
        assert part in fp
    prog = programs()[0]
    KernelCache(disk=DiskCache(tmp_path)).kernel(prog, 4)
    other = KernelCache(compiler=Compiler(opt=2), disk=DiskCache(tmp_path))
    other.kernel(prog, 4)
    assert other.stats.disk_hits == 0 and other.stats.compiles == 1
    assert len(list(tmp_path.glob("*.o"))) == 2


def test_the_directory_is_bounded_in_bytes(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, max_bytes=10_000)
    blob = bytes(range(256)) * 4  # 1 KiB per entry, plus the header
    for i in range(40):
        disk.put(f"k{i}", blob)
        assert disk.size() <= 10_000
        if i >= 1:
            assert disk.get("k0") == blob, "the most recently read file was trimmed"
    assert disk.trimmed > 0
    assert disk.get("k1") is None and disk.get("k39") == blob
    assert not list(tmp_path.glob("*.tmp"))


def test_kernels_through_a_bounded_directory(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, max_bytes=10_000)
    cache = KernelCache(disk=disk)
    for i in range(8):
        cache.kernel(parse(f"def Setup():\n  s2 = {i}.5\n"
                           f"def Predict():\n  s1 = dot(v0, v1)\n  s1 = s1 + s2\n"), 4)
        assert disk.size() <= 10_000
    assert disk.writes == 8 and disk.trimmed > 0


def test_failed_writes_and_stale_temporary_files(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "x.tmp"
    stale.write_bytes(b"partial")
    os.utime(stale, (0, 0))
    disk = DiskCache(tmp_path)
    assert not stale.exists()

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(cache_mod.tempfile, "mkstemp", refuse)
    cache = KernelCache(disk=disk)
    assert_same_results(results(cache, programs()[:1]), results(KernelCache(), programs()[:1]))
    assert disk.write_errors == 1 and disk.writes == 0


def test_default_location_and_off_by_default(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert KernelCache().disk is None
    monkeypatch.setenv("AZC_CACHE_DIR", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    assert DiskCache().dir == tmp_path / "here" and (tmp_path / "here").is_dir()
    monkeypatch.delenv("AZC_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "azc" / "kernels"


def test_a_batch_larger_than_the_cache_is_refused() -> None:
    items = [kernel_key(parse(f"def Setup():\n  s2 = {i}.5\n"
                              f"def Predict():\n  s1 = s2 * s2\n"), 4) for i in range(3)]
    cache = KernelCache(capacity=2)
    with pytest.raises(ValueError, match="batch of 3 distinct programs .* capacity 2"):
        cache.kernels_for(items, 4)
    assert len(cache.kernels_for(items[:2] + items[:2], 4)) == 4


def test_batches_with_hits_and_misses_return_live_kernels() -> None:
    """Hits of a batch are not evicted by its misses, nor their engines closed."""
    def prog(i: int) -> Program:
        return parse(f"def Setup():\n  s2 = {i}.5\ndef Predict():\n  s1 = dot(v0, v0)\n"
                     f"  s1 = s1 * s2\n")
    items = [kernel_key(prog(i), 4) for i in range(12)]
    task = load_tasks("linear")[:1]
    cache = KernelCache(capacity=4, engine_size=2, max_engines=2)
    rng = np.random.default_rng(3)
    for _ in range(10):
        picks = rng.choice(12, size=6)
        while len(set(picks)) > 4:
            picks = rng.choice(12, size=6)
        batch = [items[int(i)] for i in picks]
        kernels = cache.kernels_for(batch, 4)
        for (key, optimized), kernel in zip(batch, kernels):
            assert kernel.key == key and not kernel.engine.closed
            expected = evaluate_task(optimized, task[0], MemoryConfig.fitting(optimized), seed=1)
            assert kernel.run(task, seed=1)[0].fitness == expected.fitness
        assert len(cache) <= 4
    assert cache.stats.hits > 0 and cache.stats.engines_closed > 0
