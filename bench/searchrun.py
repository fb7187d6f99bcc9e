"""Shared by the search benches: one search experiment run for a number of individuals
(or for a number of seconds)."""

from __future__ import annotations

import time

from azc.backend.components import ComponentKernels
from azc.search.collector import paused_collector
from azc.search.config import ExperimentConfig, load_config
from azc.search.evaluator import SearchEvaluator
from azc.search.evolution import RegularizedEvolution
from azc.search.experiment import Run


def timed_search(config: str | ExperimentConfig, seed: int, individuals: int,
                 use_kernels: bool | None = None, seconds: float | None = None
                 ) -> tuple[RegularizedEvolution, SearchEvaluator, float]:
    """(evolution, evaluator, seconds) after `individuals` children of one search
    experiment (or, with `seconds`, after the first batch that ends past that many
    seconds), run as the driver runs it (collector paused); `use_kernels` overrides
    the tier choice."""
    cfg = config if isinstance(config, ExperimentConfig) else load_config(config)
    run = Run(cfg, seed)
    run.start_search()
    evo, ev = run.evo, run.evaluator
    assert evo is not None and ev is not None
    if use_kernels is not None:
        ev.use_kernels = use_kernels
    if ev.use_kernels:
        # a cold start: the process-wide kernels would carry compiles (and the uses
        # counted) over from an earlier run of this process
        ev.kernels = ComponentKernels(ev.memory, ev.features)
    t0 = time.perf_counter()
    with paused_collector():
        evo.initialize()
        while evo.individuals < individuals:
            evo.step()
            if seconds is not None and time.perf_counter() - t0 >= seconds:
                break
    return evo, ev, time.perf_counter() - t0
