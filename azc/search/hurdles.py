"""Hurdles (docs/semantics.md §4.7, paper §3.2): stop evaluating candidates that fall short early.

A child is first evaluated on the first `head_tasks` of the search tasks (a
`task_share` of them, at least one and at most all but one). If the
combination of those fitnesses is below the hurdle, the child's evaluation
stops there and its fitness is that partial combination; otherwise it goes
on with the other tasks. The hurdle is the `percentile` (75) of the unique
fitness values in the population, recomputed before every batch of
children from the population as it then is (the paper's rolling hurdle).
No hurdle applies to the initial population, nor to the select and final
evaluations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from azc.errors import ConfigError


@dataclass(frozen=True)
class HurdleConfig:
    """The `hurdles` section of an experiment."""

    percentile: float = 75.0
    task_share: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 <= self.percentile <= 100.0:
            raise ConfigError(f"hurdles: percentile must be between 0 and 100, got "
                              f"{self.percentile}")
        if not 0.0 < self.task_share < 1.0:
            raise ConfigError(f"hurdles: task_share must be between 0 and 1 (the share of the "
                              f"search tasks evaluated before the hurdle), got "
                              f"{self.task_share}")

    def head_tasks(self, num_tasks: int) -> int:
        """How many search tasks come before the hurdle: ceil(share * n), in 1..n-1."""
        if num_tasks < 2:
            raise ConfigError(f"hurdles need at least 2 search tasks (they stop after a share "
                              f"of them), got {num_tasks}")
        return min(num_tasks - 1, max(1, math.ceil(self.task_share * num_tasks - 1e-9)))

    def value(self, fitness: np.ndarray) -> float:
        """The hurdle for a population's fitness values."""
        return float(np.percentile(np.unique(fitness), self.percentile))
