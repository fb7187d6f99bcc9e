"""Search throughput on the demo configuration.

Runs the demo config (unchanged, as the original's run_demo.sh) for a fixed
number of individuals and prints individuals/s, the share of children
settled by each cache, the tiers used, and the time per stage per child.
Individuals are counted as the original counts them: every child, whether a
cache settled it or not.

    python bench/bench_throughput.py [--individuals 500000] [--seed 1] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from searchrun import timed_search


def one_core(individuals: int, seed: int, config: str) -> None:
    evo, ev, elapsed = timed_search(config, seed, individuals)
    c = ev.counters
    n = c.individuals
    print(f"{config}: {n:,} individuals in {elapsed:.1f} s = {n / elapsed:,.0f} individuals/s "
          f"(one core, batch {evo.batch_size})")
    fec_share = 1 - (c.settled_memo + c.evaluated) / n
    print(f"settled by the structural memo (live code seen before): {c.settled_memo / n:6.1%}")
    print(f"settled by FEC (every task a hit):                      {fec_share:6.1%}")
    print(f"evaluated fully (at least one task):                    {c.evaluated / n:6.1%}")
    lookups = c.fec_hits + c.fec_misses
    if lookups:
        print(f"FEC task lookups: {lookups:,}, hit rate {c.fec_hits / lookups:.1%} "
              f"(the original's demo: 82%)")
    print(f"tiers: native interpreter for all {c.full_task_evals:,} task evaluations "
          f"(per-program kernels do not pay at 100+100 examples of F=4: see "
          f"bench_compile.py)")
    print("time per child, by stage:")
    total = sum(c.stage_seconds.values())
    for name, sec in sorted(c.stage_seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<18} {sec / n * 1e6:7.2f} us  ({sec / total:5.1%})")
    other = elapsed - total
    print(f"  {'other':<18} {other / n * 1e6:7.2f} us  (population, seeds, loop)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--individuals", type=int, default=500_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--config", default="demo")
    ap.add_argument("--workers", type=int, default=1,
                    help="also measure N islands (processes) through the driver")
    args = ap.parse_args()
    one_core(args.individuals, args.seed, args.config)
    if args.workers > 1:
        rates = {}
        for w in (1, args.workers):  # each in a fresh process, as `azc evolve` runs
            code = (f"import json, time; from azc.search.experiment import evolve; "
                    f"t0 = time.perf_counter(); r = evolve({args.config!r}, seed={args.seed}, "
                    f"max_individuals={args.individuals * w}, quiet=True, workers={w}); "
                    f"print(json.dumps([r.individuals, time.perf_counter() - t0]))")
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True)
            n, seconds = json.loads(done.stdout.strip().splitlines()[-1])
            rates[w] = n / seconds
            print(f"driver (azc evolve), {w} worker(s): {n:,} individuals in {seconds:.1f} s "
                  f"= {rates[w]:,.0f}/s (experiment restarts and candidate scoring included)")
        print(f"speedup with {args.workers} workers: {rates[args.workers] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
