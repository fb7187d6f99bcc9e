"""What an evaluation returns, and the protocol's fitness arithmetic.

Shared by every backend (reference interpreter, JIT kernels, native
interpreter), so that all report results in one shape and combine per-task
fitness the same way (docs/semantics.md §4.3-§4.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MIN_FITNESS = 0.0
MINUS_TWO_OVER_PI = -0.63661977236758138243
COMBINATIONS = ("mean", "median")


def flip_and_squash(rmse: float) -> float:
    """Fitness of a regression task: 1 - (2/pi) atan(rmse); 0 for NaN or inf."""
    if math.isnan(rmse) or math.isinf(rmse):
        return MIN_FITNESS
    return 1.0 + MINUS_TWO_OVER_PI * math.atan(rmse)


def sigmoid(x: float) -> float:
    """1 / (1 + e^-x) with the C library's exp (inf for overflow, no exception)."""
    try:
        e = math.exp(-x)
    except OverflowError:
        e = math.inf
    return 1.0 / (1.0 + e)


def combine(fitnesses: list[float], mode: str = "mean") -> float:
    """Combine per-task fitnesses: arithmetic mean (in order) or upper median."""
    if not fitnesses:
        raise ValueError("no task fitnesses to combine")
    if mode == "mean":
        total = 0.0
        for f in fitnesses:
            total += f
        return total / len(fitnesses)
    if mode == "median":
        return sorted(fitnesses)[len(fitnesses) // 2]
    raise ValueError(f"unknown fitness combination {mode!r}; use one of {COMBINATIONS}")


@dataclass
class TaskResult:
    """The outcome of one program on one task."""

    fitness: float
    train_steps: int = 0
    stopped_early: bool = False
    train_predictions: np.ndarray | None = None
    valid_predictions: np.ndarray | None = None
    train_errors: list[float] | None = None
    valid_errors: list[float] | None = None

    def to_json(self) -> dict:
        """A JSON-friendly dict (predictions as lists; NaN/inf as strings)."""
        out: dict = {"fitness": self.fitness, "train_steps": self.train_steps,
                     "stopped_early": self.stopped_early}
        for name in ("train_predictions", "valid_predictions"):
            arr = getattr(self, name)
            if arr is not None:
                out[name] = [_json_float(x) for x in np.asarray(arr).tolist()]
        return out


def _json_float(x: float) -> float | str:
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


@dataclass
class EvalResult:
    """The outcome of one program on a set of tasks."""

    fitness: float
    tasks: list[TaskResult] = field(default_factory=list)
    combination: str = "mean"
    backend: str = "interp"

    @property
    def task_fitness(self) -> list[float]:
        """Per-task fitness, in task order."""
        return [t.fitness for t in self.tasks]

    @property
    def train_steps(self) -> int:
        """Training steps run over all tasks."""
        return sum(t.train_steps for t in self.tasks)

    def to_json(self) -> dict:
        """{"fitness": f, "tasks": [{"fitness": f, "valid_predictions": [...]}, ...]}."""
        return {"fitness": self.fitness, "combination": self.combination,
                "backend": self.backend, "tasks": [t.to_json() for t in self.tasks]}
