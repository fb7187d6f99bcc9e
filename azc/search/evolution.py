"""Regularized evolution (docs/semantics.md §7.1), with children made and evaluated in batches.

The population is a fixed array of P slots.  Init fills slot 0..P-1 with
initial programs and evaluates them.  A generation visits the slots in
order; for each slot a tournament of T indices drawn uniformly *with
replacement* picks the parent (strictly greatest fitness, the first drawn on
ties), the parent is mutated, and the evaluated child overwrites the slot —
cyclic replacement, so the overwritten member is always the oldest.

Batches: the slots of a generation are processed `batch_size` at a time; the
tournaments of one batch read the population as it was before the batch, so
a child cannot be the parent of another child of its own batch (in the
original, children made earlier in a generation can be picked at once).
With P = 1000 and batches of 50 this changes which parents are available to
at most 5% of the tournaments and only by a few hundred microseconds of
search; `batch_size=1` is the original's exact sequential order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from azc.ir import Program
from azc.search import collector
from azc.search.evaluator import SearchEvaluator
from azc.search.generator import Generator
from azc.search.hurdles import HurdleConfig
from azc.search.mutator import Mutator
from azc.search.random import SearchRandom


@dataclass
class Population:
    """The slots: programs and their fitness."""

    programs: list[Program]
    fitness: np.ndarray
    head: np.ndarray | None = None  # with hurdles: fitness on the tasks before the hurdle

    def best(self) -> tuple[int, Program, float]:
        """(index, program, fitness) of the first member with the greatest fitness."""
        i = int(np.argmax(self.fitness))
        return i, self.programs[i], float(self.fitness[i])

    def stats(self) -> tuple[float, float, float]:
        """(mean, population standard deviation, best) of the fitness."""
        f = self.fitness
        mean = float(f.mean())
        var = max(float((f * f).mean()) - mean * mean, 0.0)
        return mean, var ** 0.5, float(f.max())


class RegularizedEvolution:
    """Population, tournaments, mutation and aging (the original's RegularizedEvolution)."""

    def __init__(self, population_size: int, tournament_size: int, generator: Generator,
                 mutator: Mutator, evaluator: SearchEvaluator, rnd: SearchRandom,
                 batch_size: int = 50, hurdles: HurdleConfig | None = None):
        self.P = population_size
        self.T = tournament_size
        self.generator = generator
        self.mutator = mutator
        self.evaluator = evaluator
        self.rnd = rnd
        self.batch_size = max(1, batch_size)
        self.hurdles = hurdles
        self.population: Population | None = None
        self.next_slot = 0          # next slot of the current generation
        self.generations = 0
        self.individuals = 0

    # --- init ---------------------------------------------------------------------------

    def initialize(self) -> None:
        """Create and evaluate the initial population."""
        programs: list[Program] = []
        fitness = np.zeros(self.P)
        head = np.zeros(self.P) if self.hurdles else None
        for start in range(0, self.P, self.batch_size):
            batch = []
            for _ in range(start, min(self.P, start + self.batch_size)):
                prog = self.generator.program(self.rnd)
                if self.mutator.mutate_prob < 1.0:
                    self.rnd.random()  # the original's Mutate(0 mutations) draws once
                batch.append(prog)
            seeds = self._seeds(len(batch))
            fitness[start:start + len(batch)] = self.evaluator.evaluate(batch, seeds)
            if head is not None:
                head[start:start + len(batch)] = self.evaluator.head_fitness
            programs.extend(batch)
        self.population = Population(programs, fitness, head)
        self.individuals += self.P

    # --- generations --------------------------------------------------------------------

    def step(self) -> int:
        """Make and evaluate the next batch of children; how many (0 ends a generation)."""
        pop = self.population
        assert pop is not None, "initialize() first"
        start = self.next_slot
        end = min(self.P, start + self.batch_size)
        n = end - start
        clock = time.perf_counter
        t0 = clock()
        parents = self.tournaments(n)
        t1 = clock()
        children = [self.mutator.mutate(pop.programs[p], self.rnd) for p in parents]
        t2 = clock()
        hurdle = None
        if self.hurdles is not None and pop.head is not None:
            hurdle = self.hurdles.value(pop.head)
        fitness = self.evaluator.evaluate(children, self._seeds(n), hurdle)
        if pop.head is not None:
            pop.head[start:end] = self.evaluator.head_fitness
        st = self.evaluator.counters.stage_seconds
        st["tournaments"] = st.get("tournaments", 0.0) + (t1 - t0)
        st["mutation"] = st.get("mutation", 0.0) + (t2 - t1)
        pop.programs[start:end] = children
        pop.fitness[start:end] = fitness
        self.individuals += n
        collector.tick(n)
        self.next_slot = end
        if end == self.P:
            self.next_slot = 0
            self.generations += 1
        return n

    def generation(self) -> None:
        """Finish the current generation (all remaining slots)."""
        while True:
            self.step()
            if self.next_slot == 0:
                return

    def tournaments(self, n: int) -> list[int]:
        """Parents for n children: each the winner of a tournament with replacement."""
        pop = self.population
        assert pop is not None
        picks = self.rnd.integers(self.P, n * self.T).reshape(n, self.T)
        winners = picks[np.arange(n), np.argmax(pop.fitness[picks], axis=1)]
        return winners.tolist()

    def _seeds(self, n: int) -> np.ndarray:
        return np.array([self.rnd.seed64() for _ in range(n)], dtype=np.uint64)

    # --- checkpoints ----------------------------------------------------------------------

    def state(self) -> dict:
        """What a checkpoint needs to continue exactly."""
        pop = self.population
        return {"programs": None if pop is None else pop.programs,
                "fitness": None if pop is None else pop.fitness.copy(),
                "head": None if pop is None or pop.head is None else pop.head.copy(),
                "next_slot": self.next_slot, "generations": self.generations,
                "individuals": self.individuals}

    def restore(self, state: dict) -> None:
        """Continue from a `state()`."""
        if state["programs"] is not None:
            head = state.get("head")
            self.population = Population(list(state["programs"]), state["fitness"].copy(),
                                         None if head is None else head.copy())
        self.next_slot = state["next_slot"]
        self.generations = state["generations"]
        self.individuals = state["individuals"]
