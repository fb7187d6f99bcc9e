"""Throughput of an exported predictor, called from Python as a user would.

Exports `examples/neural_net.az` at F=16 (memory 5/9/2, the host CPU, LLVM
O3), loads the folder's own predictor.py (numpy + ctypes, no azc), and
prints medians over a few runs, on one core:

- predict: one `Model.predict` call over a 1,000,000 x 16 float64 array
  (input checks and the state copy included), and the bare library call;
- fit: one `Model.fit` call over the same rows (fresh state, Setup, then
  Predict + Learn per example);

with the targets (predict >= 2,000,000 examples/s, fit >= 1,000,000).

    python bench/bench_export.py [--rows N] [--runs K] [--target host|generic]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import azc

PREDICT_TARGET = 2_000_000
FIT_TARGET = 1_000_000


def load_predictor(folder: Path):  # type: ignore[no-untyped-def]
    """The exported folder's predictor.py as a module of its own."""
    spec = importlib.util.spec_from_file_location("bench_predictor", folder / "predictor.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_predictor"] = module
    spec.loader.exec_module(module)
    return module


def median_rate(fn, rows: int, runs: int) -> float:  # type: ignore[no-untyped-def]
    """Median examples per second of `fn()` over `runs` runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return rows / statistics.median(times)


def main() -> None:
    """Export, then time predict and fit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--target", choices=["host", "generic"], default="host")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    F = 16
    program = azc.parse_file(Path(__file__).resolve().parents[1] / "examples" / "neural_net.az")
    memory = azc.MemoryConfig(5, 9, 2)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        start = time.perf_counter()
        azc.export(program, folder, features=F, memory=memory, target=args.target)
        export_s = time.perf_counter() - start
        predictor = load_predictor(folder)
        rng = np.random.default_rng(0)
        X = rng.normal(size=(args.rows, F))
        y = 0.1 * (X @ rng.normal(size=F)) / np.sqrt(F)
        model = predictor.Model(folder, random_state=1)
        fit_rate = median_rate(lambda: model.fit(X, y), args.rows, args.runs)
        assert not model.stopped_early_ and model.train_steps_ == args.rows
        predict_rate = median_rate(lambda: model.predict(X), args.rows, args.runs)
        lib = model._library_for(F)
        state = np.array(model.state_, copy=True)
        bare_rate = median_rate(lambda: lib.predict(state, X), args.rows, args.runs)
    print(f"exported examples/neural_net.az at F={F}, memory 5/9/2, target {args.target}: "
          f"{export_s:.2f} s (O3 compile + link)")
    print(f"rows per call: {args.rows:,}; medians of {args.runs} runs on one core")
    print(f"predict (Model.predict):  {predict_rate:14,.0f} examples/s  "
          f"({predict_rate / PREDICT_TARGET:.1f}x the target {PREDICT_TARGET:,})")
    print(f"predict (library call):   {bare_rate:14,.0f} examples/s")
    print(f"fit (Model.fit):          {fit_rate:14,.0f} examples/s  "
          f"({fit_rate / FIT_TARGET:.1f}x the target {FIT_TARGET:,})")


if __name__ == "__main__":
    main()
