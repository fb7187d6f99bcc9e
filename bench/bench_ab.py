"""Two checkouts side by side: one bench script run alternately on each, medians compared.

Runs `python bench/<script> <args>` in the old and the new checkout in turn
(each with its own code first on PYTHONPATH, pinned to one core when
`taskset` exists), `--repeat` times, collects every "<number> individuals/s"
figure each run prints, and prints the medians per figure and the ratio
new / old.  The machine's speed drifts from one minute to the next, so the
runs alternate (old, new, old, new, ...) and only medians are compared.

    python bench/bench_ab.py OLD_DIR NEW_DIR bench_throughput.py --repeat 5 \\
        -- --individuals 200000
    # an old checkout: git worktree add --detach ../old <commit>
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

RATE = re.compile(r"([0-9][0-9,]*(?:\.[0-9]+)?) individuals/s")


def run(tree: Path, script: str, args: list[str], core: str | None) -> list[float]:
    """The individuals/s figures one run of the script prints, in order."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    cmd = [sys.executable, str(tree / "bench" / script), *args]
    if core is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", core, *cmd]
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed in {tree}:\n{out.stderr[-2000:]}")
    rates = [float(m.group(1).replace(",", "")) for m in RATE.finditer(out.stdout)]
    if not rates:
        sys.exit(f"{script} printed no 'individuals/s' figure in {tree}:\n{out.stdout[-2000:]}")
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("script", help="a script of bench/, e.g. bench_throughput.py")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--core", default="0", help="the core to pin to ('' for none)")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a, args = ap.parse_args(argv[:cut]), argv[cut + 1:]  # after --: the script's arguments
    for tree in (a.old, a.new):
        if not (tree / "bench" / a.script).is_file():
            sys.exit(f"{tree / 'bench' / a.script} does not exist")
    runs: dict[str, list[list[float]]] = {"old": [], "new": []}
    for i in range(a.repeat):
        for name, tree in (("old", a.old), ("new", a.new)):
            rates = run(tree.resolve(), a.script, args, a.core or None)
            runs[name].append(rates)
            print(f"run {i + 1} {name}: " + ", ".join(f"{r:,.1f}" for r in rates)
                  + " individuals/s", flush=True)
    width = min(len(r) for rs in runs.values() for r in rs)
    for k in range(width):
        old = statistics.median(r[k] for r in runs["old"])
        new = statistics.median(r[k] for r in runs["new"])
        print(f"figure {k + 1}: median old {old:,.1f}/s, new {new:,.1f}/s, "
              f"new / old {new / old:.3f} ({a.repeat} alternating runs each)")


if __name__ == "__main__":
    main()
