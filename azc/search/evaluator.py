"""The search evaluator: fitness of many children on the search tasks, with caches.

Per batch of children (spec §4.3-4.6, §9):

1. encode the programs and remove their dead code natively (one call for the
   batch); the live code's hash identifies the program's behaviour;
2. the train budget gives each program its number of training examples
   (0 = rejected: fitness 0, no run);
3. a structural memo (live-code hash -> FEC fingerprints and true per-task
   fitness) settles deterministic programs already seen, with no native run;
4. otherwise, with FEC, one native call runs every new program on the first
   training/validation examples of every task (random ops seeded with the
   FEC seed) and fingerprints the errors; each (program, task) looks up the
   FEC cache exactly as the original does;
5. the (program, task) pairs that missed are evaluated fully in one native
   call (random ops seeded per child from the search's random source) and
   cached.

The memo never changes a result: a program whose live code is identical has
identical fingerprints and fitness (it is used only for programs without live
random ops).  Train steps are counted as the original counts them (FEC steps
included), whether or not the memo avoided the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from azc.backend.native import Encoded, interpreter, native_dce
from azc.interp import DEFAULT_MAX_ABS_ERROR
from azc.ir import MemoryConfig, Program
from azc.results import combine
from azc.search.budget import TrainBudget
from azc.search.fec import FEC_SEED, FecCache, FecConfig, fingerprints
from azc.tasks.task import Task


@dataclass
class EvalCounters:
    """What the evaluator did (for progress reports and benches)."""

    individuals: int = 0
    train_steps: int = 0
    memo_hits: int = 0
    fec_hits: int = 0
    fec_misses: int = 0
    full_task_evals: int = 0
    budget_rejected: int = 0
    stage_seconds: dict = field(default_factory=dict)


@dataclass
class _Memo:
    fingerprints: np.ndarray | None  # per task (uint64), when FEC ran
    fec_steps: int                   # train steps of the FEC run
    fitness: np.ndarray              # per task; NaN = not evaluated fully yet
    steps: np.ndarray                # per task train steps of the full evaluation


class SearchEvaluator:
    """Evaluates batches of programs on the search tasks."""

    def __init__(self, tasks: Sequence[Task], memory: MemoryConfig, *,
                 fec: FecConfig | None = None, budget: TrainBudget | None = None,
                 max_abs_error: float = DEFAULT_MAX_ABS_ERROR, combination: str = "mean",
                 memo_size: int = 200_000):
        self.tasks = list(tasks)
        features = {t.features for t in self.tasks}
        if len(features) != 1:
            raise ValueError(f"search tasks must share one feature size, got {sorted(features)}")
        self.features = features.pop()
        self.memory = memory
        self.fec = fec
        self.fec_cache = FecCache(fec) if fec else None
        self.budget = budget
        self.max_abs_error = max_abs_error
        self.combination = combination
        self.memo_size = memo_size
        self.memo: dict[bytes, _Memo] = {}
        self.counters = EvalCounters()
        self.interp = interpreter(memory, self.features)
        self.dce = native_dce()
        self.n_tasks = len(self.tasks)
        self.full_steps = np.array([t.max_train_steps for t in self.tasks], dtype=np.int64)
        self.task_index = np.array([t.index for t in self.tasks], dtype=np.int64)
        if fec is not None:
            for t in self.tasks:
                if fec.num_train_examples > t.num_train or fec.num_valid_examples > t.num_valid:
                    raise ValueError(f"fec needs {fec.num_train_examples} train and "
                                     f"{fec.num_valid_examples} valid examples; task {t.name} "
                                     f"has {t.num_train} and {t.num_valid}")

    def n_req(self, program: Program) -> int:
        """Training examples the budget allows (N*E, or 0 if rejected); same for all tasks."""
        if self.budget is None:
            return -1
        return -1 if self.budget.allows(program, int(self.full_steps[0])) else 0

    def evaluate(self, programs: Sequence[Program], seeds: np.ndarray) -> np.ndarray:
        """The fitness of each program (combined over tasks)."""
        per_task = self.evaluate_tasks(programs, seeds)
        return np.array([combine(row, self.combination) for row in per_task.tolist()])

    def evaluate_tasks(self, programs: Sequence[Program], seeds: np.ndarray) -> np.ndarray:
        """Per-task fitness, shape (programs, tasks)."""
        n, T = len(programs), self.n_tasks
        c = self.counters
        c.individuals += n
        enc = Encoded.of(programs)
        live, hashes = self.dce.run(enc)
        keys = hashes.tobytes()
        nrand = live.progs[:, 6]
        fitness = np.zeros((n, T))
        budget_ok = np.ones(n, dtype=bool)
        if self.budget is not None:
            budget_ok = np.array([self.n_req(p) != 0 for p in programs])
            c.budget_rejected += int((~budget_ok).sum())
        fec = self.fec
        steps_fec = 0 if fec is None else T * fec.num_train_examples
        fec_steps = np.zeros(n, dtype=np.int64)
        # the memo settles deterministic programs seen before
        memos: list[_Memo | None] = [None] * n
        todo_fp: list[int] = []
        for i in range(n):
            if not budget_ok[i]:
                c.train_steps += steps_fec
                continue
            if nrand[i] == 0:
                m = self.memo.get(keys[16 * i:16 * i + 16])
                if m is not None and (fec is None or m.fingerprints is not None):
                    memos[i] = m
                    c.memo_hits += 1
                    continue
            todo_fp.append(i)
        # FEC fingerprints of the programs not settled by the memo
        fps = np.zeros((n, T), dtype=np.uint64)
        if fec is not None:
            for i, m in enumerate(memos):
                if m is not None:
                    fps[i] = m.fingerprints
            if todo_fp:
                fps[todo_fp], fec_steps[todo_fp] = self._fingerprints(live, todo_fp)
            for i, m in enumerate(memos):
                if m is not None:
                    fec_steps[i] = m.fec_steps
        # per (program, task): FEC lookups, then full evaluation of the misses
        missing: dict[int, list[int]] = {}
        cache = self.fec_cache
        for i in range(n):
            if not budget_ok[i]:
                continue
            m = memos[i]
            if cache is None:
                if m is not None and not np.isnan(m.fitness).any():
                    fitness[i] = m.fitness
                    c.train_steps += int(m.steps.sum())
                else:
                    missing[i] = list(range(T))
                continue
            c.train_steps += int(fec_steps[i])
            row = fps[i].tolist()
            for t in range(T):
                got = cache.lookup(row[t])
                if got is None:
                    c.fec_misses += 1
                    if m is not None and not np.isnan(m.fitness[t]):
                        fitness[i, t] = m.fitness[t]
                        cache.insert(row[t], m.fitness[t])
                        c.train_steps += int(m.steps[t])
                    else:
                        missing.setdefault(i, []).append(t)
                else:
                    c.fec_hits += 1
                    fitness[i, t] = got
        steps = np.zeros((n, T), dtype=np.int64)
        if missing:
            self._evaluate_missing(live, seeds, missing, fitness, fps, steps)
        # remember deterministic programs
        for i in range(n):
            if not budget_ok[i] or nrand[i] != 0 or memos[i] is not None:
                continue
            key = keys[16 * i:16 * i + 16]
            known = np.full(T, np.nan)
            if i in missing:
                known[missing[i]] = fitness[i, missing[i]]
            self._remember(key, _Memo(fps[i].copy() if fec is not None else None,
                                      int(fec_steps[i]), known, steps[i].copy()))
        for i in range(n):
            m = memos[i]
            if m is not None and i in missing:
                m.fitness[missing[i]] = fitness[i, missing[i]]
                m.steps[missing[i]] = steps[i, missing[i]]
        return fitness

    def _fingerprints(self, live: Encoded, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(fingerprints (rows, tasks), train steps of the FEC run per row)."""
        fec = self.fec
        assert fec is not None
        sub = Encoded(live.code, live.progs[rows])
        k = max(fec.num_train_examples, fec.num_valid_examples)
        tr = np.zeros((len(rows), self.n_tasks, k))
        va = np.zeros((len(rows), self.n_tasks, k))
        seeds = np.full(len(rows), FEC_SEED, dtype=np.uint64)
        out = self.interp.run_batch(sub, self.tasks, seeds, self.max_abs_error,
                                    num_train=fec.num_train_examples,
                                    num_valid=fec.num_valid_examples, errors=(tr, va))
        n_tr = out[:, :, 3].astype(np.int64)
        n_va = out[:, :, 4].astype(np.int64)
        n_req = np.broadcast_to(self.full_steps, n_tr.shape)
        fps = fingerprints(tr, va, n_tr, n_va, self.task_index, n_req)
        return fps, out[:, :, 1].sum(axis=1).astype(np.int64)

    def _evaluate_missing(self, live: Encoded, seeds: np.ndarray, missing: dict[int, list[int]],
                          fitness: np.ndarray, fps: np.ndarray, steps: np.ndarray) -> None:
        rows = sorted(missing)
        sub = Encoded(live.code, live.progs[rows])
        out = self.interp.run_batch(sub, self.tasks, np.asarray(seeds)[rows],
                                    self.max_abs_error)
        c = self.counters
        for r, i in enumerate(rows):
            for t in missing[i]:
                f = float(out[r, t, 0])
                fitness[i, t] = f
                steps[i, t] = int(out[r, t, 1])
                c.train_steps += int(out[r, t, 1])
                c.full_task_evals += 1
                if self.fec_cache is not None:
                    self.fec_cache.insert(int(fps[i, t]), f)

    def _remember(self, key: bytes, memo: _Memo) -> None:
        if len(self.memo) >= self.memo_size:
            for old in list(self.memo)[: self.memo_size // 4]:
                del self.memo[old]
        self.memo[key] = memo

