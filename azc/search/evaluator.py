"""The search evaluator: fitness of many children on the search tasks, with caches.

Per batch of children (docs/semantics.md §4.3-§4.6, §9):

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

With hurdles (azc.search.hurdles), steps 4 and 5 run twice: on the first
`head_tasks` tasks for every child, then on the other tasks for the children
whose combined fitness on those reaches the hurdle. A child stopped at the
hurdle scores 0 on the tasks it did not run (as a program the train budget
rejects does), so it ranks below every child that went on; its per-task
fitnesses (`evaluate_tasks`) are NaN there, and the caches learn nothing of
those tasks.

The memo never changes a result: a program whose live code is identical has
identical fingerprints and fitness (it is used only for programs without live
random ops).  Train steps are counted as the original counts them (FEC steps
included), whether or not the memo avoided the run.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from azc.backend.components import attach, component_kernels, pairs_up
from azc.backend.fec_table import HIT, MISS, MISS_KNOWN, NativeFecTable
from azc.backend.jit import TaskBatch
from azc.backend.native import Encoded, interpreter, native_dce
from azc.interp import DEFAULT_MAX_ABS_ERROR
from azc.ir import MemoryConfig, Program
from azc.results import combine
from azc.search.budget import TrainBudget
from azc.search.fec import FEC_SEED, FecConfig
from azc.search.memo import StructuralMemo
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
    hurdled: int = 0             # children stopped at the hurdle
    settled_memo: int = 0        # children whose live code was seen before (no run at all)
    evaluated: int = 0           # children with at least one full task evaluation
    kernel_evals: int = 0        # full evaluations with compiled task loops
    interp_evals: int = 0        # full evaluations fully interpreted
    stage_seconds: dict = field(default_factory=dict)


class _Part:
    """The native descriptor of some consecutive search tasks, and what runs on it need."""

    def __init__(self, tasks: Sequence[Task], features: int):
        self.batch = TaskBatch(tasks, features)
        self.paired = pairs_up(self.batch)  # compiled loops run tasks two at a time
        self.examples = sum(t.max_train_steps + t.num_valid for t in tasks)


class SearchEvaluator:
    """Evaluates batches of programs on the search tasks."""

    def __init__(self, tasks: Sequence[Task], memory: MemoryConfig, *,
                 fec: FecConfig | None = None, budget: TrainBudget | None = None,
                 max_abs_error: float = DEFAULT_MAX_ABS_ERROR, combination: str = "mean",
                 memo_size: int = 200_000, head_tasks: int | None = None):
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
        self.memo = StructuralMemo(memo_size, len(self.tasks))
        self.counters = EvalCounters()
        self.interp = interpreter(memory, self.features)
        self.dce = native_dce(memory)
        # the mixed tier (compiled task loops) can only pay for long evaluations
        self.examples = sum(t.max_train_steps + t.num_valid for t in self.tasks)
        self.use_kernels = self.examples >= 20_000
        self.kernels = component_kernels(memory, self.features) if self.use_kernels else None
        self.n_tasks = len(self.tasks)
        self.full_steps = np.array([t.max_train_steps for t in self.tasks], dtype=np.int64)
        self.task_index = np.array([t.index for t in self.tasks], dtype=np.int64)
        # the task descriptors of full and of FEC runs, built once: all tasks, and the tasks
        # before and after the hurdle
        self.parts = {(0, self.n_tasks): _Part(self.tasks, self.features)}
        self.head_tasks = head_tasks
        if head_tasks is not None:
            if not 0 < head_tasks < self.n_tasks:
                raise ValueError(f"head_tasks must be in 1..{self.n_tasks - 1}, got {head_tasks}")
            for lo, hi in ((0, head_tasks), (head_tasks, self.n_tasks)):
                self.parts[lo, hi] = _Part(self.tasks[lo:hi], self.features)
        self.head_fitness = np.zeros(0)  # combined fitness on the head tasks, last call
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

    def evaluate(self, programs: Sequence[Program], seeds: np.ndarray,
                 hurdle: float | None = None) -> np.ndarray:
        """The fitness of each program (combined over tasks; 0 for tasks after a hurdle
        stopped it). With head tasks, `head_fitness` then holds the combination over them."""
        per_task = self.evaluate_tasks(programs, seeds, hurdle)
        if self.head_tasks is not None:
            head = per_task[:, :self.head_tasks].tolist()
            self.head_fitness = np.array([combine(row, self.combination) for row in head])
        if hurdle is not None:
            per_task = np.nan_to_num(per_task, nan=0.0)
        return np.array([combine(row, self.combination) for row in per_task.tolist()])

    def evaluate_tasks(self, programs: Sequence[Program], seeds: np.ndarray,
                       hurdle: float | None = None) -> np.ndarray:
        """Per-task fitness, shape (programs, tasks); NaN where a hurdle stopped a program.

        The children of a batch are settled in order, as if one by one: a
        fingerprint first missed by child i is a hit for a later child j of
        the same batch (it hits the entry i's evaluation fills). `hurdle`
        (with `head_tasks`) stops the programs whose combined fitness on the
        head tasks is below it.
        """
        if hurdle is not None and self.head_tasks is None:
            raise ValueError("a hurdle needs an evaluator built with head_tasks")
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
        memos = [-1] * n                  # memo slot per child (-1: none)
        same_as: dict[int, int] = {}
        first: dict[bytes, int] = {}
        todo: list[int] = []
        memo_get = self.memo.slots.get
        for i in range(n):
            if not ok[i]:
                continue
            if nrand[i] == 0:
                key = keys[i]
                m = memo_get(key)
                if m is not None:
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
            fitness = self._settle_with_fec(live, seeds, keys, nrand, ok, memos, same_as, todo,
                                            hurdle)
        else:
            fitness = self._settle_without_fec(live, seeds, keys, nrand, ok, memos, same_as,
                                               hurdle)
        if hurdle is not None:
            c.hurdled += int(np.isnan(fitness).any(axis=1).sum())
        return fitness

    def _phases(self, hurdle: float | None) -> list[tuple[int, int]]:
        """The task ranges evaluated in turn: all tasks, or the head then the rest."""
        if hurdle is None or self.head_tasks is None:
            return [(0, self.n_tasks)]
        return [(0, self.head_tasks), (self.head_tasks, self.n_tasks)]

    def _survivors(self, rows: np.ndarray, fitness: np.ndarray, hurdle: float | None
                   ) -> np.ndarray:
        """The rows whose combined head-task fitness reaches the hurdle."""
        assert hurdle is not None and self.head_tasks is not None
        head = fitness[rows, :self.head_tasks].tolist()
        keep = np.array([combine(r, self.combination) >= hurdle for r in head], dtype=bool)
        return rows[keep]

    def _settle_with_fec(self, live: Encoded, seeds: np.ndarray, keys: list[bytes],
                         nrand: list[int], ok: list[bool], memos: list[int],
                         same_as: dict[int, int], todo: list[int],
                         hurdle: float | None = None) -> np.ndarray:
        """FEC fingerprints of the new programs, the lookups of every child in order
        (one native call, exactly as the original's FECCache one child at a time), and
        the full evaluation of the (child, task) pairs that missed; with a hurdle, the
        lookups and evaluations of the head tasks, then of the rest for the survivors."""
        fec, table, memo, c = self.fec, self.fec_table, self.memo, self.counters
        assert fec is not None and table is not None
        n, T = len(ok), self.n_tasks
        clock = time.perf_counter
        t2 = clock()
        fps = np.zeros((n, T), dtype=np.uint64)      # fingerprints per child and task
        fec_steps = np.zeros(n, dtype=np.int64)
        known = np.full((n, T), np.nan)              # fitness the memo knows
        if todo:
            fps[todo], fec_steps[todo] = self._fingerprints(live, todo)
        slot_of = np.array(memos, dtype=np.int64)
        hit = np.flatnonzero(slot_of >= 0)
        if len(hit):
            hs = slot_of[hit]
            fps[hit], fec_steps[hit], known[hit] = memo.fp[hs], memo.fec_steps[hs], \
                memo.fitness[hs]
        if same_as:
            dup, orig = list(same_as), list(same_as.values())
            fps[dup], fec_steps[dup] = fps[orig], fec_steps[orig]
        okarr = np.flatnonzero(np.array(ok, dtype=bool))
        steps = int(fec_steps[okarr].sum()) + T * fec.num_train_examples * (n - len(okarr))
        fitness = np.zeros((n, T))
        phases = self._phases(hurdle)
        if len(phases) > 1:
            fitness[okarr] = np.nan  # (cells a hurdle skips stay NaN)
        t3 = clock()
        lookup_s = evaluate_s = 0.0
        got: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        evaluated_rows: set[int] = set()
        rows = okarr
        for lo, hi in phases:
            if lo > 0:
                rows = self._survivors(rows, fitness, hurdle)
            w = hi - lo
            ta = clock()
            status, slots = table.lookup(fps[rows, lo:hi].reshape(-1),
                                         known[rows, lo:hi].reshape(-1))
            by_memo = np.flatnonzero(status == MISS_KNOWN)  # the memo knew the fitness
            if len(by_memo):
                steps += int(memo.steps[slot_of[rows[by_memo // w]], lo + by_memo % w].sum())
            miss = np.flatnonzero(status == MISS)
            hits = int(np.count_nonzero(status == HIT))
            c.fec_hits += hits
            c.fec_misses += len(status) - hits
            tb = clock()
            miss_child, miss_task = rows[miss // w], miss % w
            evaluated = np.unique(miss_child)
            got_fit, got_steps = np.zeros(0), np.zeros(0, dtype=np.int64)
            if len(evaluated):
                fits, stp = self._evaluate_rows(live, seeds, evaluated.tolist(),
                                                self.parts[lo, hi])
                at = np.searchsorted(evaluated, miss_child)
                got_fit, got_steps = fits[at, miss_task], stp[at, miss_task]
                table.fill(slots[miss], got_fit)
                steps += int(got_steps.sum())
                c.full_task_evals += len(miss)
                evaluated_rows.update(evaluated.tolist())
            if w == T:
                fitness[rows] = table.values(slots).reshape(-1, w)
            else:
                fitness[rows, lo:hi] = table.values(slots).reshape(-1, w)
            got.append((miss_child, lo + miss_task, got_fit, got_steps))
            lookup_s += tb - ta
            evaluate_s += clock() - tb
        t5 = clock()
        miss_child, miss_task, got_fit, got_steps = (got[0] if len(got) == 1 else
                                                     (np.concatenate(x) for x in zip(*got)))
        # 4. remember deterministic programs and what their full evaluations found
        new = [i for i in todo if nrand[i] == 0]
        owner = np.arange(n)                          # whose memo entry a child updates
        if same_as:
            owner[list(same_as)] = list(same_as.values())
        # existing entries before add(), which may drop old entries and reuse their slots
        memo.record(slot_of[owner[miss_child]], miss_task, got_fit, got_steps)
        if new:
            mrows = memo.add([keys[i] for i in new])
            kept = mrows >= 0
            newarr = np.array(new, dtype=np.int64)[kept]
            memo.fp[mrows[kept]], memo.fec_steps[mrows[kept]] = fps[newarr], fec_steps[newarr]
            row_of = np.full(n, -1, dtype=np.int64)
            row_of[new] = mrows
            memo.record(row_of[owner[miss_child]], miss_task, got_fit, got_steps)
        c.train_steps += steps
        c.evaluated += len(evaluated_rows)
        st = c.stage_seconds
        for name, dt in (("fec run", t3 - t2), ("fec lookups", lookup_s),
                         ("full evaluation", evaluate_s), ("bookkeeping", clock() - t5)):
            st[name] = st.get(name, 0.0) + dt
        return fitness

    def _settle_without_fec(self, live: Encoded, seeds: np.ndarray, keys: list[bytes],
                            nrand: list[int], ok: list[bool], memos: list[int],
                            same_as: dict[int, int], hurdle: float | None = None
                            ) -> np.ndarray:
        """Without FEC: the memo's fitness where it knows every task of a phase, else a
        full evaluation (with a hurdle: the head tasks, then the rest for the survivors)."""
        n, T, c, memo = len(ok), self.n_tasks, self.counters, self.memo
        clock = time.perf_counter
        t4 = clock()
        fitness = np.zeros((n, T))
        steps = np.zeros((n, T), dtype=np.int64)
        fresh = np.zeros((n, T), dtype=bool)          # cells evaluated now
        rows = np.array([i for i in range(n) if ok[i] and i not in same_as], dtype=np.int64)
        fitness[rows] = np.nan
        evaluated_rows: set[int] = set()
        for lo, hi in self._phases(hurdle):
            if lo > 0:
                rows = self._survivors(rows, fitness, hurdle)
            evaluate = []
            for i in rows.tolist():
                m = memos[i]
                if m >= 0 and not np.isnan(memo.fitness[m, lo:hi]).any():
                    fitness[i, lo:hi] = memo.fitness[m, lo:hi]
                    steps[i, lo:hi] = memo.steps[m, lo:hi]
                else:
                    evaluate.append(i)
            if evaluate:
                fits, stp = self._evaluate_rows(live, seeds, evaluate, self.parts[lo, hi])
                fitness[evaluate, lo:hi], steps[evaluate, lo:hi] = fits, stp
                fresh[evaluate, lo:hi] = True
                c.full_task_evals += len(evaluate) * (hi - lo)
                evaluated_rows.update(evaluate)
        # remember what deterministic programs' evaluations found (after every read)
        ci, ti = np.nonzero(fresh & (np.array(nrand) == 0)[:, None])
        slot_of = np.array(memos, dtype=np.int64)
        memo.record(slot_of[ci], ti, fitness[ci, ti], steps[ci, ti])
        new = sorted({int(i) for i in ci if memos[i] < 0})
        if new:
            row_of = np.full(n, -1, dtype=np.int64)
            row_of[new] = memo.add([keys[i] for i in new])
            memo.record(row_of[ci], ti, fitness[ci, ti], steps[ci, ti])
        for i, j in same_as.items():
            fitness[i], steps[i] = fitness[j], steps[j]
        c.train_steps += int(steps.sum())
        c.evaluated += len(evaluated_rows)
        st = c.stage_seconds
        st["full evaluation"] = st.get("full evaluation", 0.0) + (clock() - t4)
        return fitness

    def _fingerprints(self, live: Encoded, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
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
        return fps, out[:, :, 1].sum(axis=1).astype(np.int64)

    def _evaluate_rows(self, live: Encoded, seeds: np.ndarray, rows: list[int],
                       part: _Part | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Full evaluation of some programs on the tasks of `part` (default: all):
        (fitness, train steps), each (rows, tasks of the part)."""
        part = part or self.parts[0, self.n_tasks]
        sub = Encoded(live.code, live.progs[rows])
        c = self.counters
        compiled = 0
        if self.use_kernels and self.kernels is not None:
            compiled = attach(self.kernels, sub, part.examples, part.paired)
        c.kernel_evals += compiled
        c.interp_evals += len(rows) - compiled
        out = self.interp.run_batch(sub, part.batch, np.asarray(seeds)[rows],
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
