"""One search experiment's machinery, built from a configuration: evaluator and evolution.

`Search` is what one population needs to evolve on a set of search tasks: the
`SearchEvaluator` (FEC, train budget, the native tiers) and the
`RegularizedEvolution` (generator, mutator, tournaments), sharing one random
source.  The experiment driver (azc.search.experiment) builds one per search
experiment; each island of an archipelago (azc.search.islands) builds its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from azc.search.budget import TrainBudget
from azc.search.config import ExperimentConfig
from azc.search.evaluator import SearchEvaluator
from azc.search.evolution import RegularizedEvolution
from azc.search.generator import (
    Generator,
    InitialPopulation,
    linear_algorithm,
    neural_net_algorithm,
    padded,
)
from azc.search.mutator import Mutator
from azc.search.random import SearchRandom
from azc.search.space import SearchSpace
from azc.tasks.spec import TaskSpec, build_tasks


def train_budget(config: ExperimentConfig, space: SearchSpace) -> TrainBudget | None:
    """The configuration's train budget (None without one)."""
    if config.train_budget is None:
        return None
    kind = config.train_budget.baseline
    base = (linear_algorithm() if kind is InitialPopulation.LINEAR_ALGORITHM
            else neural_net_algorithm())
    return TrainBudget(padded(base, config.size_init), config.train_budget.threshold_factor)


@dataclass
class Search:
    """The evaluator and the evolution of one population on its search tasks."""

    evaluator: SearchEvaluator
    evo: RegularizedEvolution

    @staticmethod
    def build(config: ExperimentConfig, specs: list[TaskSpec], rnd: SearchRandom) -> Search:
        """The search of a configuration on the tasks of `specs`, drawing from `rnd`."""
        tasks = build_tasks(specs)
        space = config.space(tasks[0].features)
        hurdles = config.hurdles
        evaluator = SearchEvaluator(tasks, config.memory, fec=config.fec,
                                    budget=train_budget(config, space),
                                    max_abs_error=config.max_abs_error,
                                    combination=config.combination,
                                    head_tasks=hurdles.head_tasks(len(tasks)) if hurdles
                                    else None)
        evo = RegularizedEvolution(
            config.population_size, config.tournament_size,
            Generator(space, config.initial_population),
            Mutator(space, list(config.mutation_types), config.mutate_prob,
                    config.constant_mutation),
            evaluator, rnd, config.batch_size, hurdles)
        return Search(evaluator, evo)
