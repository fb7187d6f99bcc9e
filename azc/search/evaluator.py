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
   FEC seed) and fingerprints the errors; then one more native call looks up
   every (program, task) in the FEC table (azc.backend.fec_table) in order,
   exactly as the original's FECCache does one child at a time;
5. the (program, task) pairs that missed are evaluated fully in one native
   call (random ops seeded per child from the search's random source) and
   cached.

The memo never changes a result: a program whose live code is identical has
identical fingerprints and fitness (it is used only for programs without live
random ops).  Train steps are counted as the original counts them (FEC steps
included), whether or not the memo avoided the run.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from azc.backend.components import attach, component_kernels
from azc.backend.fec_table import HIT, MISS, MISS_KNOWN, NativeFecTable
from azc.backend.jit import TaskBatch
from azc.backend.native import Encoded, interpreter, native_dce
from azc.interp import DEFAULT_MAX_ABS_ERROR
from azc.ir import MemoryConfig, Program
from azc.results import combine
from azc.search.budget import TrainBudget
from azc.search.fec import FEC_SEED, FecConfig
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


@dataclass(slots=True)
class _Memo:
    fp: bytes | None         # per-task FEC fingerprints, T uint64 (when FEC ran)
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
        self.fec_table = NativeFecTable(fec.cache_size, fec.forget_every) if fec else None
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
        self._unknown = [math.nan] * self.n_tasks
        # the task descriptors of full and of FEC runs, built once
        self.full_batch = TaskBatch(self.tasks, self.features)
        self.fec_batch = TaskBatch(self.tasks, self.features)
        if fec is not None:
            self.fec_batch._set_requests(fec.num_train_examples, fec.num_valid_examples)
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
        n = len(programs)
        c = self.counters
        c.individuals += n
        clock = time.perf_counter
        t0 = clock()
        live, hashes = self.dce.run(Encoded.of(programs))
        t1 = clock()
        hb = hashes.tobytes()
        keys = [hb[16 * i:16 * i + 16] for i in range(n)]
        nrand = live.progs[:, 6].tolist()
        ok = [True] * n
        if self.budget is not None:
            ok = [self.n_req(p) != 0 for p in programs]
            c.budget_rejected += ok.count(False)
        # 1. the memo settles deterministic programs seen before; repeats in the batch share
        memos: list[_Memo | None] = [None] * n
        same_as: dict[int, int] = {}
        first: dict[bytes, int] = {}
        todo: list[int] = []
        memo_get = self.memo.get
        need_fp = self.fec is not None
        for i in range(n):
            if not ok[i]:
                continue
            if nrand[i] == 0:
                key = keys[i]
                m = memo_get(key)
                if m is not None and (not need_fp or m.fp is not None):
                    memos[i] = m
                    continue
                j = first.get(key)
                if j is not None:
                    same_as[i] = j
                    continue
                first[key] = i
            todo.append(i)
        settled = n - len(todo) - ok.count(False)
        c.memo_hits += settled
        c.settled_memo += settled
        st = c.stage_seconds
        st["encode+dce"] = st.get("encode+dce", 0.0) + (t1 - t0)
        st["memo"] = st.get("memo", 0.0) + (clock() - t1)
        if self.fec is not None:
            fitness = self._settle_with_fec(live, seeds, keys, nrand, ok, memos, same_as, todo)
        else:
            fitness = self._settle_without_fec(live, seeds, keys, nrand, ok, memos, same_as)
        return fitness

    def _settle_with_fec(self, live: Encoded, seeds: np.ndarray, keys: list[bytes],
                         nrand: list[int], ok: list[bool], memos: list[_Memo | None],
                         same_as: dict[int, int], todo: list[int]) -> np.ndarray:
        """FEC fingerprints of the new programs, the lookups of every child in order
        (one native call, exactly as the original's FECCache one child at a time), and
        the full evaluation of the (child, task) pairs that missed."""
        fec, table, c = self.fec, self.fec_table, self.counters
        assert fec is not None and table is not None
        n, T = len(ok), self.n_tasks
        clock = time.perf_counter
        t2 = clock()
        rows: list[bytes] = [b""] * n     # fingerprints (T uint64) per child
        fec_steps = [0] * n
        if todo:
            got, run_steps = self._fingerprints(live, todo)
            fb, w = got.tobytes(), 8 * T
            for r, i in enumerate(todo):
                rows[i], fec_steps[i] = fb[w * r:w * r + w], run_steps[r]
        for i, j in same_as.items():
            rows[i], fec_steps[i] = rows[j], fec_steps[j]
        okidx = [i for i in range(n) if ok[i]]
        known_rows = []
        for i in okidx:
            m = memos[i]
            if m is not None:
                assert m.fp is not None  # memos of FEC searches hold fingerprints
                rows[i], fec_steps[i] = m.fp, m.fec_steps
                known_rows.append(m.fitness)
            else:
                known_rows.append(self._unknown)
        t3 = clock()
        flat = np.frombuffer(b"".join([rows[i] for i in okidx]), dtype=np.uint64)
        known = np.array(known_rows, dtype=np.float64).reshape(-1)
        status, slots = table.lookup(flat, known)
        steps = sum(fec_steps[i] for i in okidx) + T * fec.num_train_examples * (n - len(okidx))
        for p in np.flatnonzero(status == MISS_KNOWN).tolist():  # the memo knew the fitness
            m = memos[okidx[p // T]]
            assert m is not None
            steps += m.steps[p % T]
        miss = np.flatnonzero(status == MISS)
        c.fec_misses += len(flat) - int(np.count_nonzero(status == HIT))
        c.fec_hits += int(np.count_nonzero(status == HIT))
        t4 = clock()
        okarr = np.array(okidx, dtype=np.int64)
        miss_child = okarr[miss // T] if len(miss) else miss
        miss_task = miss % T
        missing: dict[int, list[int]] = {}
        for i, t in zip(miss_child.tolist(), miss_task.tolist()):
            missing.setdefault(i, []).append(t)
        if missing:
            rows_eval = sorted(missing)
            fits, stp = self._evaluate_rows(live, seeds, rows_eval)
            at = np.searchsorted(np.array(rows_eval, dtype=np.int64), miss_child)
            got_fit, got_steps = fits[at, miss_task], stp[at, miss_task]
            table.fill(slots[miss], got_fit)
            steps += int(got_steps.sum())
            c.full_task_evals += len(miss)
        t5 = clock()
        fitness = np.zeros((n, T))
        fitness[okarr] = table.values(slots).reshape(-1, T)
        # 4. remember deterministic programs (and what their full evaluations found)
        for i in todo:
            if nrand[i] == 0:
                m = _Memo(rows[i], fec_steps[i], [math.nan] * T, [0] * T)
                memos[i] = m
                self._remember(keys[i], m)
        if missing:
            for i, t, f, s in zip(miss_child.tolist(), miss_task.tolist(), got_fit.tolist(),
                                  got_steps.tolist()):
                m = memos[same_as.get(i, i)]
                if m is not None and nrand[i] == 0:
                    m.fitness[t] = f
                    m.steps[t] = s
        c.train_steps += int(steps)
        c.evaluated += len(missing)
        st = c.stage_seconds
        for name, dt in (("fec run", t3 - t2), ("fec lookups", t4 - t3),
                         ("full evaluation", t5 - t4), ("bookkeeping", clock() - t5)):
            st[name] = st.get(name, 0.0) + dt
        return fitness

    def _settle_without_fec(self, live: Encoded, seeds: np.ndarray, keys: list[bytes],
                            nrand: list[int], ok: list[bool], memos: list[_Memo | None],
                            same_as: dict[int, int]) -> np.ndarray:
        """Without FEC: the memo's fitness where it knows every task, else a full evaluation."""
        n, T, c = len(ok), self.n_tasks, self.counters
        clock = time.perf_counter
        t4 = clock()
        fitness = np.zeros((n, T))
        evaluate = []
        for i in range(n):
            m = memos[i]
            if not ok[i] or i in same_as:
                continue
            if m is not None and all(x == x for x in m.fitness):
                fitness[i] = m.fitness
                c.train_steps += sum(m.steps)
            else:
                evaluate.append(i)
        row_steps: dict[int, int] = {}
        if evaluate:
            fits, stp = self._evaluate_rows(live, seeds, evaluate)
            row_steps = dict(zip(evaluate, stp.sum(axis=1).tolist()))
            fitness[evaluate] = fits
            c.train_steps += int(stp.sum())
            c.full_task_evals += len(evaluate) * T
            for r, i in enumerate(evaluate):
                if nrand[i] == 0:
                    m = memos[i] or _Memo(None, 0, [math.nan] * T, [0] * T)
                    m.fitness[:] = fits[r].tolist()
                    m.steps[:] = stp[r].tolist()
                    if memos[i] is None:
                        self._remember(keys[i], m)
        for i, j in same_as.items():
            fitness[i] = fitness[j]
            c.train_steps += row_steps[j]
        c.evaluated += len(evaluate)
        st = c.stage_seconds
        st["full evaluation"] = st.get("full evaluation", 0.0) + (clock() - t4)
        return fitness

    def _fingerprints(self, live: Encoded, rows: list[int]) -> tuple[np.ndarray, list[int]]:
        """(fingerprints, uint64 (rows, tasks); train steps of the FEC run per row)."""
        fec = self.fec
        assert fec is not None
        sub = Encoded(live.code, live.progs[rows])
        k = max(fec.num_train_examples, fec.num_valid_examples)
        tr = np.zeros((len(rows), self.n_tasks, k))
        va = np.zeros((len(rows), self.n_tasks, k))
        seeds = np.full(len(rows), FEC_SEED, dtype=np.uint64)
        out = self.interp.run_batch(sub, self.fec_batch, seeds, self.max_abs_error,
                                    num_train=fec.num_train_examples,
                                    num_valid=fec.num_valid_examples, errors=(tr, va))
        fps = self.dce.fec_hash(tr, va, out, self.task_index, self.full_steps)
        return fps, out[:, :, 1].sum(axis=1).astype(np.int64).tolist()

    def _evaluate_rows(self, live: Encoded, seeds: np.ndarray, rows: list[int]
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Full evaluation of some programs on every task: (fitness, train steps), (rows, T)."""
        sub = Encoded(live.code, live.progs[rows])
        c = self.counters
        compiled = 0
        if self.use_kernels and self.kernels is not None:
            compiled = attach(self.kernels, sub, self.examples)
        c.kernel_evals += compiled
        c.interp_evals += len(rows) - compiled
        out = self.interp.run_batch(sub, self.full_batch, np.asarray(seeds)[rows],
                                    self.max_abs_error)
        return out[:, :, 0], out[:, :, 1].astype(np.int64)

    def state(self) -> dict:
        """What a checkpoint needs: the FEC cache and the counters (the memo is rebuilt)."""
        return {"fec": None if self.fec_table is None else copy.deepcopy(self.fec_table),
                "counters": self.counters}

    def restore(self, state: dict) -> None:
        """Continue from a `state()`."""
        if self.fec_table is not None and state["fec"] is not None:
            self.fec_table = copy.deepcopy(state["fec"])
        self.counters = state["counters"]

    def _remember(self, key: bytes, memo: _Memo) -> None:
        if len(self.memo) >= self.memo_size:
            for old in list(self.memo)[: self.memo_size // 4]:
                del self.memo[old]
        self.memo[key] = memo

