"""Time to discovery on the demo: the median and spread over seeds.

For each seed, runs `azc demo` (one process per seed, one after the other)
until a candidate's select fitness exceeds 0.9999, and prints the wall time,
individuals and final fitness; then the median, min and max.  Discovery
means a final fitness > 0.9999 on the 100 unseen final tasks.

    python bench/bench_discovery.py [--seeds 1-10] [--workers 1] [--time-limit 900]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def seeds(spec: str) -> list[int]:
    if "-" in spec:
        lo, hi = spec.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in spec.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1-10")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=900.0)
    ap.add_argument("--config", default="demo")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in seeds(args.seeds):
            out = Path(tmp) / f"seed{s}"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "azc.cli", "evolve", args.config,
                            "--seed", str(s), "--workers", str(args.workers), "--out", str(out),
                            "--time-limit", str(args.time_limit), "-q"],
                           check=True, capture_output=True)
            wall = time.perf_counter() - t0
            r = json.loads((out / "result.json").read_text())
            found = r["final_fitness"] > 0.9999
            rows.append((s, wall, r["individuals"], r["final_fitness"], found))
            print(f"seed {s:3d}: {wall:7.1f} s  {r['individuals']:>11,} individuals  "
                  f"final {r['final_fitness']:.6f}  {'discovered' if found else 'NOT found'}",
                  flush=True)
    times = [w for _, w, _, _, ok in rows if ok]
    print(f"\ndiscovered {len(times)} of {len(rows)}")
    if times:
        print(f"time to discovery: median {statistics.median(times):.1f} s, "
              f"min {min(times):.1f} s, max {max(times):.1f} s "
              f"(the original: median 86 s, 28-328 s over 18 seeds)")


if __name__ == "__main__":
    main()
