"""Resident memory of the kernel cache under a stream of distinct programs.

The issue's check: 100,000 distinct random programs compiled through the
kernel cache in one process keep resident memory under 1 GiB.  Programs are
random programs of the demo's search space (ops 56, 27, 2, 3, 18, 23; memory
4 scalars, 3 vectors, 1 matrix; component sizes 10/2/8), with one program in
50 drawn over all ops; each one's Predict ends in `s1 = s1 * s3`, with s3 set
to a distinct constant in Setup, so every optimized program (the cache key)
is distinct.  They are compiled through a `KernelCache` in batches (one
module per batch, `kernels_for`), each kernel is called once on a small task,
and the resident set size (VmRSS) is printed every 5,000 programs with the
compile rate, the engines closed and the evictions so far.

    python bench/bench_cache_memory.py [--programs N] [--capacity C] [--batch B]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from bench_compile import DEMO_OPS, random_program

from azc.backend.cache import KernelCache, kernel_key
from azc.ir import Instr, MemoryConfig, Program
from azc.ops import OPS
from azc.tasks.task import Task

MEMORY = MemoryConfig(4, 3, 1)
SIZES = (10, 2, 8)
FEATURES = 4
ALL_OPS = [op.id for op in OPS if op.out is not None]
LIMIT_MIB = 1024


def status_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def distinct_program(rng: np.random.Generator, i: int) -> Program:
    """Program i: random, with a live constant that no other program has."""
    ops = ALL_OPS if i % 50 == 49 else DEMO_OPS
    p = random_program(rng, ops, SIZES, MEMORY, FEATURES)
    mark = Instr.make(56, 3, consts=[1.0 + i * 2.0**-30])  # s3 = a constant of its own
    use = Instr.make(3, 1, 1, 3)  # s1 = s1 * s3 at the end of Predict: the mark is live
    return Program((*p.setup, mark), (*p.predict, use), p.learn)


def small_task(seed: int) -> Task:
    """A task of 10 training and 10 validation examples at F=4."""
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=(20, FEATURES)), rng.normal(size=FEATURES)
    y = x @ w
    return Task(x[:10], y[:10], x[10:], y[10:], name="small")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=100_000, help="distinct programs (100000)")
    ap.add_argument("--capacity", type=int, default=2048, help="kernels the cache keeps (2048)")
    ap.add_argument("--batch", type=int, default=100, help="programs compiled per module (100)")
    ap.add_argument("--every", type=int, default=5000, help="report interval (5000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    task = small_task(args.seed)
    cache = KernelCache(capacity=args.capacity)
    seen: set[str] = set()
    done = 0
    rss_max = start_rss = status_mib("VmRSS")
    start = time.perf_counter()
    print(f"kernel cache memory: {args.programs} distinct programs, capacity {args.capacity}, "
          f"batches of {args.batch}; RSS at start {start_rss:.0f} MiB")
    print(f"{'programs':>9} {'RSS MiB':>8} {'kernels/s':>10} {'engines closed':>15} "
          f"{'evictions':>10} {'cached':>7}")
    i = 0
    while done < args.programs:
        items: list[tuple[str, Program]] = []
        while len(items) < min(args.batch, args.programs - done):
            key, optimized = kernel_key(distinct_program(rng, i), FEATURES)
            i += 1
            if key not in seen:
                seen.add(key)
                items.append((key, optimized))
        for kernel in cache.kernels_for(items, FEATURES):
            kernel.run([task], seed=done)
        before = done
        done += len(items)
        rss_max = max(rss_max, status_mib("VmRSS"))
        if done // args.every > before // args.every or done == args.programs:
            s = cache.stats
            rate = done / (time.perf_counter() - start)
            print(f"{done:>9} {status_mib('VmRSS'):>8.0f} {rate:>10.1f} "
                  f"{s.engines_closed:>15} {s.evictions:>10} {len(cache):>7}")
            sys.stdout.flush()
    s = cache.stats
    seconds = time.perf_counter() - start
    peak = status_mib("VmHWM")
    print(f"done: {done} programs ({i} drawn) in {seconds:.0f} s, {done / seconds:.1f} kernels/s; "
          f"compiles {s.compiles}, engines closed {s.engines_closed}, evictions {s.evictions}, "
          f"open engines {len(cache.engines)}")
    print(f"RSS: start {start_rss:.0f} MiB, max sampled {rss_max:.0f} MiB, "
          f"final {status_mib('VmRSS'):.0f} MiB, peak (VmHWM) {peak:.0f} MiB")
    verdict = "ok" if peak < LIMIT_MIB else "TOO HIGH"
    rel = "<" if peak < LIMIT_MIB else ">="
    print(f"max RSS {peak:.0f} MiB ({rel} {LIMIT_MIB} MiB: {verdict})")


if __name__ == "__main__":
    main()
