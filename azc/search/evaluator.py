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

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from azc.backend.components import attach, component_kernels
from azc.backend.native import Encoded, interpreter, native_dce
from azc.interp import DEFAULT_MAX_ABS_ERROR
from azc.ir import MemoryConfig, Program
from azc.results import combine
from azc.search.budget import TrainBudget
from azc.search.fec import FEC_SEED, FecCache, FecConfig
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
    settled_memo: int = 0        # children whose live code was seen before (no run at all)
    evaluated: int = 0           # children with at least one full task evaluation
    kernel_evals: int = 0        # full evaluations with compiled Predict/Learn
    interp_evals: int = 0        # full evaluations fully interpreted
    stage_seconds: dict = field(default_factory=dict)


@dataclass
class _Memo:
    fp_list: list | None     # per-task FEC fingerprints (when FEC ran)
    fec_steps: int           # train steps of the FEC run
    fitness: list            # per task; NaN = not evaluated fully yet
    steps: list              # per task train steps of the full evaluation


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
        # the mixed tier (compiled Predict/Learn) can only pay for long evaluations
        self.examples = sum(t.max_train_steps + t.num_valid for t in self.tasks)
        self.use_kernels = self.examples >= 20_000
        self.kernels = component_kernels(memory, self.features) if self.use_kernels else None
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
        """Per-task fitness, shape (programs, tasks).

        The children of a batch are settled in order, as if one by one: a
        fingerprint first missed by child i is a hit for a later child j of
        the same batch (it hits the entry i's evaluation fills).
        """
        n, T = len(programs), self.n_tasks
        c = self.counters
        c.individuals += n
        clock = time.perf_counter
        t0 = clock()
        live, hashes = self.dce.run(Encoded.of(programs))
        t1 = clock()
        hb = hashes.tobytes()
        keys = [hb[16 * i:16 * i + 16] for i in range(n)]
        nrand = live.progs[:, 6].tolist()
        fitness = [[0.0] * T for _ in range(n)]
        ok = [True] * n
        if self.budget is not None:
            ok = [self.n_req(p) != 0 for p in programs]
            c.budget_rejected += ok.count(False)
        fec = self.fec
        # 1. the memo settles deterministic programs seen before; repeats in the batch share
        memos: list[_Memo | None] = [None] * n
        same_as: dict[int, int] = {}
        first: dict[bytes, int] = {}
        todo: list[int] = []
        for i in range(n):
            if not ok[i]:
                c.train_steps += 0 if fec is None else T * fec.num_train_examples
                continue
            if nrand[i] == 0:
                m = self.memo.get(keys[i])
                if m is not None and (fec is None or m.fp_list is not None):
                    memos[i] = m
                    c.memo_hits += 1
                    continue
                if keys[i] in first:
                    same_as[i] = first[keys[i]]
                    c.memo_hits += 1
                    continue
                first[keys[i]] = i
            todo.append(i)
        # 2. FEC fingerprints of the new programs, then per (program, task) lookups
        fps: list[list[int]] = [[] for _ in range(n)]
        fec_steps = [0] * n
        waiting: list[tuple[int, int, list]] = []   # (program, task, cache entry)
        missing: dict[int, list[int]] = {}
        t2 = clock()
        if fec is not None:
            if todo:
                got, run_steps = self._fingerprints(live, todo)
                for r, i in enumerate(todo):
                    fps[i], fec_steps[i] = got[r], run_steps[r]
            for i in range(n):
                mi = memos[i]
                if mi is not None:
                    fps[i], fec_steps[i] = mi.fp_list or [], mi.fec_steps
                elif i in same_as:
                    fps[i], fec_steps[i] = fps[same_as[i]], fec_steps[same_as[i]]
            t3 = clock()
            self._lookup(ok, memos, fps, fec_steps, fitness, missing, waiting)
        else:
            t3 = clock()
            for i in range(n):
                m = memos[i]
                if not ok[i] or i in same_as:
                    continue
                if m is not None and all(x == x for x in m.fitness):
                    fitness[i] = list(m.fitness)
                    c.train_steps += sum(m.steps)
                else:
                    missing[i] = list(range(T))
        # 3. full evaluation of what the caches did not settle
        steps = np.zeros((n, T), dtype=np.int64)
        t4 = clock()
        if missing:
            self._evaluate_missing(live, seeds, missing, fitness, steps)
        t5 = clock()
        for i, t, entry in waiting:  # the child that missed comes before those that hit
            if entry[0] is None:
                entry[0] = fitness[i][t]
            else:
                fitness[i][t] = entry[0]
        if fec is None:
            for i, j in same_as.items():
                fitness[i] = list(fitness[j])
                c.train_steps += int(steps[j].sum())
        # 4. remember deterministic programs
        for i in range(n):
            if not ok[i] or nrand[i] != 0 or i in same_as:
                continue
            m = memos[i]
            if m is None:
                m = _Memo(fps[i] if fec is not None else None, fec_steps[i], [math.nan] * T,
                          [0] * T)
                self._remember(keys[i], m)
            for t in missing.get(i, ()):
                m.fitness[t] = fitness[i][t]
                m.steps[t] = int(steps[i, t])
        c.settled_memo += sum(1 for m in memos if m is not None) + len(same_as)
        c.evaluated += len(missing)
        st = c.stage_seconds
        for name, dt in (("encode+dce", t1 - t0), ("memo", t2 - t1), ("fec run", t3 - t2),
                         ("fec lookups", t4 - t3), ("full evaluation", t5 - t4),
                         ("bookkeeping", clock() - t5)):
            st[name] = st.get(name, 0.0) + dt
        return np.array(fitness, dtype=np.float64).reshape(n, T)

    def _lookup(self, ok: list[bool], memos: list, fps: list[list[int]], fec_steps: list[int],
                fitness: list[list[float]], missing: dict[int, list[int]],
                waiting: list[tuple[int, int, list]]) -> None:
        """FEC cache lookups per (program, task) in order, as the original's FECCache.

        A miss inserts the entry at once (its value filled after evaluation),
        so later children of the batch hit it, as they would have one by one.
        """
        cache = self.fec_cache
        assert cache is not None
        entries = cache._entries
        get, to_end, evict = entries.get, entries.move_to_end, entries.popitem
        forget = cache.config.forget_every or (1 << 62)
        size = cache.config.cache_size
        c = self.counters
        hits = misses = steps = 0
        for i, row in enumerate(fps):
            if not ok[i]:
                continue
            steps += fec_steps[i]
            m = memos[i]
            f = fitness[i]
            t = -1
            for fp in row:
                t += 1
                e = get(fp)
                if e is not None:
                    e[1] += 1
                    if e[1] >= forget:
                        del entries[fp]  # forgotten after `forget_every` uses
                    else:
                        to_end(fp)
                    if e[0] is None:
                        waiting.append((i, t, e))  # hit on an entry this batch is filling
                    else:
                        f[t] = e[0]
                    continue
                misses += 1
                if m is not None and m.fitness[t] == m.fitness[t]:
                    e = [m.fitness[t], 1]
                    f[t] = e[0]
                    steps += m.steps[t]
                else:
                    e = [None, 1]
                    missing.setdefault(i, []).append(t)
                    waiting.append((i, t, e))
                entries[fp] = e
                if len(entries) > size:
                    evict(last=False)
            hits += len(row)
        hits -= misses
        cache.hits += hits
        cache.misses += misses
        c.fec_hits += hits
        c.fec_misses += misses
        c.train_steps += int(steps)

    def _fingerprints(self, live: Encoded, rows: list[int]) -> tuple[list, list]:
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
        fps = self.dce.fec_hash(tr, va, out, self.task_index, self.full_steps)
        return fps.tolist(), out[:, :, 1].sum(axis=1).astype(np.int64).tolist()

    def _evaluate_missing(self, live: Encoded, seeds: np.ndarray, missing: dict[int, list[int]],
                          fitness: list[list[float]], steps: np.ndarray) -> None:
        rows = sorted(missing)
        sub = Encoded(live.code, live.progs[rows])
        c = self.counters
        compiled = 0
        if self.use_kernels and self.kernels is not None:
            compiled = attach(self.kernels, sub, self.examples)
        c.kernel_evals += compiled
        c.interp_evals += len(rows) - compiled
        out = self.interp.run_batch(sub, self.tasks, np.asarray(seeds)[rows],
                                    self.max_abs_error)
        fits = out[:, :, 0].tolist()
        stp = out[:, :, 1].astype(np.int64)
        for r, i in enumerate(rows):
            for t in missing[i]:
                fitness[i][t] = fits[r][t]
                steps[i, t] = stp[r, t]
                c.train_steps += int(stp[r, t])
                c.full_task_evals += 1

    def state(self) -> dict:
        """What a checkpoint needs: the FEC cache and the counters (the memo is rebuilt)."""
        return {"fec": None if self.fec_cache is None else self.fec_cache.state(),
                "counters": self.counters}

    def restore(self, state: dict) -> None:
        """Continue from a `state()`."""
        if self.fec_cache is not None and state["fec"] is not None:
            self.fec_cache.restore(state["fec"])
        self.counters = state["counters"]

    def _remember(self, key: bytes, memo: _Memo) -> None:
        if len(self.memo) >= self.memo_size:
            for old in list(self.memo)[: self.memo_size // 4]:
                del self.memo[old]
        self.memo[key] = memo

