"""Throughput on the large configuration (run_baseline.sh's search settings).

10 binary classification tasks of 16 features, 8000 train / 1000 valid,
P=100, T=10, empty start, train budget: runs the same search (same seed, so
the same children) for a fixed number of individuals, with the default tier
choice and with the native interpreter alone, and prints individuals/s (one
core), the tiers used and the time per stage.

    python bench/bench_large.py [--individuals 20000] [--seed 1] [--repeat 3]

With --repeat N the two runs alternate N times and the medians are printed
(the machine's speed drifts by about 10% from one minute to the next).
"""

from __future__ import annotations

import argparse
import statistics

from searchrun import timed_search


def rate(individuals: int, seed: int, kernels: bool) -> tuple[float, int, dict]:
    _, ev, elapsed = timed_search("baseline_gaussian", seed, individuals, use_kernels=kernels)
    c = ev.counters
    ck = ev.kernels
    return c.individuals / elapsed, c.individuals, {
        "memo": c.settled_memo / c.individuals, "evaluated": c.evaluated / c.individuals,
        "kernel evals": c.kernel_evals, "interp evals": c.interp_evals,
        "compiled": ck.compiled if ck is not None and kernels else 0,
        "paired": sum(1 for _, _, field in ck.kernels.values() if field == 9)
        if ck is not None and kernels else 0,
        "compile seconds": ck.compiler.compile_seconds if ck is not None and kernels else 0.0,
        # evaluations of Predict/Learn code met once in the run: no kernel can pay for those
        "once": sum(1 for k, n in ck.uses.items() if n == 1 and k not in ck.kernels)
        if ck is not None and kernels else 0,
        "seconds": elapsed, "stages": dict(c.stage_seconds)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--individuals", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    results: dict[str, list[float]] = {}
    labels = (("native interpreter only", False), ("tiers (default)", True))
    for _ in range(args.repeat):
        for label, kernels in labels:
            r, n, info = rate(args.individuals, args.seed, kernels)
            results.setdefault(label, []).append(r)
            print(f"{label:<26} {r:8.1f} individuals/s  ({n:,} in {info['seconds']:.1f} s; "
                  f"memo {info['memo']:.0%}, evaluated {info['evaluated']:.0%}, "
                  f"kernel/interp evaluations {info['kernel evals']}/{info['interp evals']}, "
                  f"{info['compiled']} kernels compiled in {info['compile seconds']:.1f} s, "
                  f"{info['paired']} of them paired)",
                  flush=True)
            if kernels:
                print(f"{'':<26} {info['once']:,} of the interpreted evaluations are of "
                      f"Predict/Learn code evaluated only once in the run", flush=True)
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(info["stages"].items(),
                                                                   key=lambda kv: -kv[1]))
            print(f"{'':<26} stages: {stages}", flush=True)
    interp, tiers = (results[label] for label, _ in labels)
    ratios = [t / i for i, t in zip(interp, tiers)]
    print(f"median of {args.repeat}: interpreter only {statistics.median(interp):.1f}/s, "
          f"tiers {statistics.median(tiers):.1f}/s; tiers / interpreter only: "
          f"{statistics.median(ratios):.2f}x (per pair: "
          f"{', '.join(f'{r:.2f}' for r in ratios)}; the original: 90-100 individuals/s here)")


if __name__ == "__main__":
    main()
