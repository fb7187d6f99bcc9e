"""Throughput on the large configuration (run_baseline.sh's search settings).

10 binary classification tasks of 16 features, 8000 train / 1000 valid,
P=100, T=10, empty start, train budget: runs the same search (same seed, so
the same children) for a fixed number of individuals, with the default tier
choice and with the native interpreter alone, and prints individuals/s (one
core), the tiers used and the time per stage.

    python bench/bench_large.py [--individuals 20000] [--seed 1] [--repeat 3]

With --repeat N the two runs alternate N times and the medians are printed
(the machine's speed drifts by about 10% from one minute to the next).

With --hurdles SEC it compares instead the search without and with hurdles
(docs/semantics.md §4.7: the 75th percentile after 30% of the tasks) at equal
wall time: SEC seconds each, alternating, on `--config` (default `baseline`,
projected binary Fashion-MNIST), and prints individuals/s, the population's
best search fitness and that program's select fitness.

    python bench/bench_large.py --hurdles 120 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

from searchrun import timed_search

from azc.search.config import load_config
from azc.search.experiment import evaluate_candidate
from azc.search.hurdles import HurdleConfig
from azc.tasks.spec import build_tasks

CONFIG = "baseline_gaussian"


def rate(individuals: int, seed: int, kernels: bool) -> tuple[float, int, dict]:
    _, ev, elapsed = timed_search(CONFIG, seed, individuals, use_kernels=kernels)
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


def hurdles(config: str, seconds: float, seed: int, repeat: int) -> None:
    """Without and with hurdles at equal wall time: rate, best search and select fitness."""
    base = replace(load_config(config), hurdles=None)
    with_h = replace(base, hurdles=HurdleConfig())
    select = build_tasks(list(base.select_tasks))
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for _ in range(repeat):
        for label, cfg in (("without hurdles", base), ("with hurdles", with_h)):
            evo, ev, elapsed = timed_search(cfg, seed, 1 << 62, seconds=seconds)
            assert evo.population is not None
            _, best, fit = evo.population.best()
            sel = evaluate_candidate(best, select, cfg.memory, 0, cfg.max_abs_error)
            c = ev.counters
            rows.setdefault(label, []).append((c.individuals / elapsed, fit, sel))
            print(f"{label:<16} {c.individuals / elapsed:8.1f} individuals/s ({c.individuals:,} in "
                  f"{elapsed:.0f} s; stopped at the hurdle {c.hurdled / c.individuals:.0%}, "
                  f"full task evaluations {c.full_task_evals:,}); best search fitness "
                  f"{fit:.4f}, its select fitness {sel:.4f}", flush=True)
    (a, b) = (rows["without hurdles"], rows["with hurdles"])
    med = [[statistics.median(r[k] for r in rows_) for k in range(3)] for rows_ in (a, b)]
    ratios = [y[0] / x[0] for x, y in zip(a, b)]
    print(f"medians of {repeat} at {seconds:.0f} s each on {config}: without hurdles "
          f"{med[0][0]:.1f}/s, best {med[0][1]:.4f}, select {med[0][2]:.4f}; with hurdles "
          f"{med[1][0]:.1f}/s, best {med[1][1]:.4f}, select {med[1][2]:.4f}; rate ratio "
          f"{statistics.median(ratios):.2f}x (per pair: {', '.join(f'{r:.2f}' for r in ratios)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--individuals", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--hurdles", type=float, metavar="SEC",
                    help="compare without and with hurdles, SEC seconds each")
    ap.add_argument("--config", default=None,
                    help="configuration (default: baseline_gaussian; with --hurdles: baseline)")
    args = ap.parse_args()
    if args.hurdles is not None:
        hurdles(args.config or "baseline", args.hurdles, args.seed, args.repeat)
        return
    global CONFIG
    CONFIG = args.config or CONFIG
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
