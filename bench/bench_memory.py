"""Resident memory over a long demo run: it must stay flat (caches are bounded).

Runs the demo configuration (repeated search experiments, one process) for
`--minutes` and samples the process's resident memory every `--every`
seconds; prints the samples and the spread after the warm-up (the first
`--warmup` minutes, while the caches fill).

    python bench/bench_memory.py [--minutes 30] [--every 30] [--warmup 3]
"""

from __future__ import annotations

import argparse
import threading
import time


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--every", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    samples: list[tuple[float, float, int]] = []
    individuals = [0]
    start = time.monotonic()
    done = threading.Event()

    def sample() -> None:
        while not done.wait(args.every):
            t = time.monotonic() - start
            samples.append((t, rss_mib(), individuals[0]))
            print(f"{t / 60:6.1f} min  RSS {samples[-1][1]:8.1f} MiB  "
                  f"{individuals[0]:>12,} individuals", flush=True)

    threading.Thread(target=sample, daemon=True).start()
    from dataclasses import replace

    from azc.search.config import load_config
    from azc.search.experiment import evolve
    cfg = replace(load_config("demo"), sufficient_fitness=float("inf"))  # never stop early

    def progress(record: dict) -> None:
        individuals[0] = record.get("individuals", individuals[0])

    evolve(cfg, seed=args.seed, time_limit=args.minutes * 60, quiet=True, callback=progress)
    done.set()
    after = [r for t, r, _ in samples if t >= args.warmup * 60]
    if after:
        lo, hi = min(after), max(after)
        mid = (lo + hi) / 2
        print(f"after {args.warmup:g} min: RSS {lo:.1f} - {hi:.1f} MiB "
              f"(±{(hi - lo) / 2 / mid:.1%} around {mid:.1f} MiB) over "
              f"{(samples[-1][0] - args.warmup * 60) / 60:.1f} min; "
              f"{individuals[0]:,} individuals")


if __name__ == "__main__":
    main()
