"""Throughput on the large configuration (run_baseline.sh's search settings).

10 binary classification tasks of 16 features, 8000 train / 1000 valid,
P=100, T=10, empty start, train budget: runs for a fixed time and prints
individuals/s (one core), with the default tier choice and with the native
interpreter alone.

    python bench/bench_large.py [--seconds 120] [--seed 1]
"""

from __future__ import annotations

import argparse
import time

from azc.search.experiment import Run


def rate(seconds: float, seed: int, kernels: bool) -> tuple[float, int, dict]:
    from azc.search.config import load_config
    cfg = load_config("baseline")
    run = Run(cfg, seed)
    run._start_search()
    evo, ev = run.evo, run.evaluator
    assert evo is not None and ev is not None
    ev.use_kernels = kernels
    t0 = time.perf_counter()
    evo.initialize()
    while time.perf_counter() - t0 < seconds:
        evo.step()
    elapsed = time.perf_counter() - t0
    c = ev.counters
    return c.individuals / elapsed, c.individuals, {"memo": c.settled_memo / c.individuals,
                                                    "evaluated": c.evaluated / c.individuals,
                                                    "kernel evals": c.kernel_evals,
                                                    "interp evals": c.interp_evals}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    results = {}
    for label, kernels in (("native interpreter only", False), ("tiers (default)", True)):
        r, n, info = rate(args.seconds, args.seed, kernels)
        results[label] = r
        print(f"{label:<26} {r:8.1f} individuals/s  ({n:,} in {args.seconds:.0f} s; "
              f"memo {info['memo']:.0%}, evaluated {info['evaluated']:.0%}, "
              f"kernel/interp evaluations {info['kernel evals']}/{info['interp evals']})",
              flush=True)
    print(f"tiers / interpreter only: "
          f"{results['tiers (default)'] / results['native interpreter only']:.2f}x "
          f"(the original: 90-100 individuals/s here)")


if __name__ == "__main__":
    main()
