"""Islands: regularized evolution on several processes, with migration (paper §3.2, S3).

With `workers = N`, a search experiment runs N populations ("islands"), one
per process (the main process hosts island 0).  Every `migrate_every`
generations the islands stop at a barrier: each uploads half of its
population (chosen at random), the coordinator pools the uploads, and each
island receives as many programs sampled from the whole pool, which replace
a random half of its population — the paper's migration, with a server that
is the main process.  Each island has its own random source and FEC cache;
the coordinator's choices use the run's random source.  Because islands only
interact at barriers after fixed numbers of generations, a run is
deterministic for a given seed and number of workers.

Nothing here needs a service: workers are child processes talking over pipes.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import traceback
from dataclasses import dataclass

import numpy as np

from azc.errors import AzcError
from azc.ir import Program
from azc.search.collector import paused_collector
from azc.search.random import SearchRandom
from azc.search.search import Search


@dataclass
class IslandReport:
    """What an island tells the coordinator at a barrier."""

    individuals: int        # individuals made since the search started
    train_steps: int        # train steps since the search started
    steps_init: int         # train steps of the initial population
    best_fitness: float
    best_program: Program
    mean: float
    stdev: float
    memo_hits: int
    fec_hits: int
    fec_lookups: int
    migrants: list[tuple[Program, float, float]]  # program, fitness, head-task fitness


class Island:
    """One population with its own random source: the code that runs in a worker."""

    def __init__(self, config, seed: int, search_specs: list, state: dict | None = None):
        self.rnd = SearchRandom(seed)
        self.search = Search.build(config, search_specs, self.rnd)
        if state is None:
            self.search.evo.initialize()
            self.steps_init = self.search.evaluator.counters.train_steps
        else:
            from azc.search.checkpoint import check_state_programs
            check_state_programs(state["evo"], state["rnd"],
                                 config.memory.with_features(self.search.evaluator.features))
            self.rnd = state["rnd"]
            self.search.evo.rnd = state["rnd"]
            self.search.evaluator.restore(state["evaluator"])
            self.search.evo.restore(state["evo"])
            self.steps_init = state["steps_init"]

    def advance(self, generations: int) -> IslandReport:
        """Run whole generations; then a report with half the population as migrants."""
        evo, ev = self.search.evo, self.search.evaluator
        assert evo.population is not None
        with paused_collector():
            for _ in range(generations):
                evo.generation()
        pop = evo.population
        rnd = self.rnd
        order = _permutation(rnd, len(pop.programs))
        half = order[: len(order) // 2]
        _, best, best_fit = pop.best()
        mean, sd, _ = pop.stats()
        c = ev.counters
        return IslandReport(evo.individuals, c.train_steps, self.steps_init, best_fit, best, mean,
                            sd, c.memo_hits, c.fec_hits, c.fec_hits + c.fec_misses,
                            [(pop.programs[i], float(pop.fitness[i]),
                              float(pop.head[i]) if pop.head is not None else 0.0)
                             for i in half])

    def receive(self, migrants: list[tuple[Program, float, float]]) -> None:
        """Replace a random half of the population with migrants."""
        evo = self.search.evo
        assert evo is not None and evo.population is not None
        pop = evo.population
        slots = _permutation(self.rnd, len(pop.programs))[: len(migrants)]
        for slot, (prog, fit, head) in zip(slots, migrants):
            pop.programs[slot] = prog
            pop.fitness[slot] = fit
            if pop.head is not None:
                pop.head[slot] = head

    def state(self) -> dict:
        """Everything needed to continue this island exactly (sent to the coordinator over
        the worker's pipe; checkpoints store it as data, azc.search.checkpoint)."""
        return {"rnd": self.rnd, "evaluator": self.search.evaluator.state(),
                "evo": self.search.evo.state(), "steps_init": self.steps_init}


def _permutation(rnd: SearchRandom, n: int) -> list[int]:
    keys = [rnd.random() for _ in range(n)]
    return sorted(range(n), key=keys.__getitem__)


def _worker(conn) -> None:
    """A worker process: serve commands for one island until told to stop."""
    import signal
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # the coordinator stops the run
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    island: Island | None = None
    while True:
        try:
            cmd, arg = conn.recv()
        except EOFError:
            return
        try:
            reply: object = None
            if cmd == "start":
                island = Island(*arg)
            elif cmd == "advance":
                assert island is not None
                reply = island.advance(arg)
            elif cmd == "receive":
                assert island is not None
                island.receive(arg)
            elif cmd == "state":
                assert island is not None
                reply = island.state()
            elif cmd == "stop":
                conn.send(("ok", None))
                return
            else:
                raise ValueError(f"unknown command {cmd!r}")
            conn.send(("ok", reply))
        except (BrokenPipeError, EOFError, ConnectionResetError):
            return  # the coordinator is gone (it was killed): nothing to report to
        except Exception:  # report it to the coordinator instead of dying silently
            try:
                conn.send(("error", traceback.format_exc()))
            except (BrokenPipeError, ConnectionResetError):
                return


class Archipelago:
    """The coordinator: island 0 in this process, the others in workers."""

    def __init__(self, config, seeds: list[int], search_specs: list,
                 states: list[dict] | None = None):
        self.n = len(seeds)
        ctx = mp.get_context("spawn")
        self.conns = []
        self.procs = []
        try:
            for i in range(1, self.n):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child,), daemon=True,
                                   name=f"azc-island-{i}")
                proc.start()
                self.conns.append(parent)
                self.procs.append(proc)
            self.start(config, seeds, search_specs, states)
        except BaseException:
            self.close()
            raise

    def start(self, config, seeds: list[int], search_specs: list,
              states: list[dict] | None = None) -> None:
        """Start (or restart, for the next search experiment, in the same processes) the
        islands: island i from seeds[i], or from states[i] when resuming."""
        for i, conn in enumerate(self.conns, start=1):
            conn.send(("start", (config, seeds[i], config.island_search_tasks(i, search_specs),
                                 states[i] if states else None)))
        self.local = Island(config, seeds[0], config.island_search_tasks(0, search_specs),
                            states[0] if states else None)
        for conn in self.conns:
            self._reply(conn)

    def _reply(self, conn):
        try:
            status, value = conn.recv()
        except EOFError:
            raise AzcError("an island worker process died") from None
        if status == "error":
            raise AzcError(f"an island worker failed:\n{value}")
        return value

    def advance(self, generations: int) -> list[IslandReport]:
        """All islands run `generations` generations in parallel; their reports."""
        for conn in self.conns:
            conn.send(("advance", generations))
        reports = [self.local.advance(generations)]
        reports += [self._reply(conn) for conn in self.conns]
        return reports

    def migrate(self, reports: list[IslandReport], rnd: SearchRandom) -> None:
        """Pool the uploads and send each island as many programs sampled from the pool."""
        pool = [m for r in reports for m in r.migrants]
        if not pool:
            return
        for i, r in enumerate(reports):
            picks = [pool[rnd.integer(len(pool))] for _ in range(len(r.migrants))]
            if i == 0:
                self.local.receive(picks)
            else:
                self.conns[i - 1].send(("receive", picks))
        for conn in self.conns:
            self._reply(conn)

    def states(self) -> list[dict]:
        """Every island's state (for checkpoints)."""
        for conn in self.conns:
            conn.send(("state", None))
        return [self.local.state()] + [self._reply(conn) for conn in self.conns]

    def close(self) -> None:
        """Stop the workers."""
        for conn in self.conns:
            try:
                conn.send(("stop", None))
                conn.recv()
            except (OSError, EOFError, pickle.PicklingError):
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
        self.conns, self.procs = [], []


def combined_best(reports: list[IslandReport], sets: int = 1) -> tuple[Program, float]:
    """The best program over the islands that search on the search tasks (island i
    with i mod `sets` = 0: fitness on other task sets is not comparable); the first
    island wins ties."""
    fits = [r.best_fitness if i % sets == 0 else -np.inf for i, r in enumerate(reports)]
    i = int(np.argmax(fits))
    return reports[i].best_program, fits[i]
