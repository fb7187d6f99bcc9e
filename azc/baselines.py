"""Tuned baselines: the hand-made algorithms, tuned on an experiment's select tasks.

`tune_baselines(cfg)` tunes the two hand-made algorithms of docs/semantics.md
§6.1 under the evaluation protocol itself (docs/semantics.md §4.3), so that
they are compared with evolved programs on equal terms:

* `logistic_regression`: the linear algorithm (a linear model trained by SGD;
  on ACCURACY tasks the protocol's sigmoid write-back makes its update the
  gradient step of the logistic loss), tuned over `LEARNING_RATES`;
* `neural_net`: the two-layer ReLU network trained by backprop, tuned over
  `LEARNING_RATES` x `INIT_SCALES` (the standard deviation of its Gaussian
  weight initializations).

Each setting is scored on the configuration's select tasks (mean fitness,
random ops seeded with `seed`); the best (the first on ties, in grid order)
is then evaluated on the final tasks, which never take part in the choice.
`compare(program, cfg)` scores any other program (an evolved one) on the same
final tasks. Every evaluation is a compiled native run (azc.evaluation).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from azc.evaluation import evaluate
from azc.ir import MemoryConfig, Program
from azc.printer import format_program
from azc.search.config import ExperimentConfig
from azc.search.generator import linear_algorithm, neural_net_algorithm
from azc.tasks.spec import build_tasks
from azc.tasks.task import Task

LEARNING_RATES = tuple(10.0 ** (k / 4) for k in range(-16, 1))  # 1e-4 .. 1, 4 per decade
INIT_SCALES = (0.01, 0.03, 0.1, 0.3, 1.0)
BASELINES = ("logistic_regression", "neural_net")


@dataclass
class Scored:
    """A program's fitness on a task set: the combination and each task's."""

    fitness: float
    task_fitness: list[float]

    @property
    def spread(self) -> tuple[float, float, float]:
        """(standard deviation, min, max) of the per-task fitnesses."""
        values = self.task_fitness
        sd = statistics.pstdev(values) if len(values) > 1 else 0.0
        return sd, min(values), max(values)

    @property
    def standard_error(self) -> float:
        """The standard error of the mean per-task fitness."""
        n = len(self.task_fitness)
        return self.spread[0] / math.sqrt(n) if n > 1 else 0.0


@dataclass
class TunedBaseline:
    """One baseline: its best setting on the select tasks and its final score."""

    name: str
    params: dict[str, float]
    program: Program
    select: Scored
    final: Scored
    trials: list[tuple[dict[str, float], float]] = field(default_factory=list)

    def to_json(self) -> dict:
        sd, lo, hi = self.final.spread
        return {"name": self.name, "params": self.params,
                "select_fitness": self.select.fitness, "final_fitness": self.final.fitness,
                "final_sd": sd, "final_min": lo, "final_max": hi,
                "final_standard_error": self.final.standard_error,
                "final_task_fitness": self.final.task_fitness,
                "trials": [{"params": p, "select_fitness": f} for p, f in self.trials]}


def _candidates(name: str) -> list[tuple[dict[str, float], Program]]:
    """The grid of one baseline: (settings, program) in grid order."""
    if name == "logistic_regression":
        return [({"learning_rate": lr}, linear_algorithm(lr)) for lr in LEARNING_RATES]
    return [({"learning_rate": lr, "init_scale": s}, neural_net_algorithm(lr, s))
            for lr in LEARNING_RATES for s in INIT_SCALES]


def score(program: Program, tasks: Sequence[Task], cfg: ExperimentConfig,
          seed: int = 0) -> Scored:
    """A program's fitness on tasks with the configuration's protocol settings."""
    memory = MemoryConfig.fitting(program)
    result = evaluate(program, list(tasks), memory, seed=seed, combination=cfg.combination,
                      max_abs_error=cfg.max_abs_error)
    return Scored(float(result.fitness), [float(f) for f in result.task_fitness])


def tune_baselines(cfg: ExperimentConfig, names: Sequence[str] = BASELINES, seed: int = 0,
                   progress: Callable[[str], None] | None = None,
                   final_tasks: list[Task] | None = None) -> list[TunedBaseline]:
    """Tune each baseline on the select tasks and score its best setting on the final tasks."""
    say = progress or (lambda text: None)
    select = build_tasks(list(cfg.select_tasks))
    final = final_tasks if final_tasks is not None else build_tasks(list(cfg.final_tasks))
    out = []
    for name in names:
        grid = _candidates(name)
        say(f"tuning {name}: {len(grid)} settings on {len(select)} select tasks")
        trials = []
        best: tuple[float, dict[str, float], Program] | None = None
        for params, program in grid:
            fit = score(program, select, cfg, seed).fitness
            trials.append((params, fit))
            if best is None or fit > best[0]:
                best = (fit, params, program)
        assert best is not None
        _, params, program = best
        chosen = score(program, select, cfg, seed)
        say(f"  best {name}: {_params_text(params)}, select fitness {chosen.fitness:.6f}; "
            f"scoring it on {len(final)} final tasks")
        out.append(TunedBaseline(name, params, program, chosen,
                                 score(program, final, cfg, seed), trials))
    return out


def _params_text(params: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in params.items())


def table(rows: Sequence[tuple[str, str, Scored | None, Scored]]) -> str:
    """A text table of (name, settings, select score or None, final score) rows."""
    lines = [f"{'algorithm':<22} {'settings':<36} {'select':>8}  "
             f"{'final mean ± sd (min-max)':<30} {'± s.e.':>7}"]
    for name, settings, sel, fin in rows:
        sd, lo, hi = fin.spread
        s = f"{sel.fitness:8.4f}" if sel is not None else f"{'-':>8}"
        lines.append(f"{name:<22} {settings:<36} {s}  "
                     f"{f'{fin.fitness:.4f} ± {sd:.4f} ({lo:.3f}-{hi:.3f})':<30} "
                     f"{fin.standard_error:7.4f}")
    return "\n".join(lines)


def write_baselines(folder: Path, cfg: ExperimentConfig, tuned: Sequence[TunedBaseline],
                    compared: dict[str, Scored] | None = None) -> list[Path]:
    """Write each tuned baseline as `<name>.az` and everything as `baselines.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    F = cfg.search_tasks[0].features_size
    written = []
    for b in tuned:
        path = folder / f"{b.name}.az"
        path.write_text(f"# Tuned baseline {b.name} for {cfg.name}: {_params_text(b.params)}; "
                        f"select fitness {b.select.fitness:.6f}, final fitness "
                        f"{b.final.fitness:.6f}, F={F}.\n" + format_program(b.program))
        written.append(path)
    doc = {"config": cfg.name, "features": F, "baselines": [b.to_json() for b in tuned],
           "compared": {k: {"final_fitness": v.fitness, "final_sd": v.spread[0],
                            "final_standard_error": v.standard_error,
                            "final_task_fitness": v.task_fitness}
                        for k, v in (compared or {}).items()}}
    path = folder / "baselines.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    written.append(path)
    return written
