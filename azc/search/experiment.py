"""The experiment driver (docs/semantics.md §7.2): search experiments, selection, final report.

`evolve(config, seed=...)` runs search experiments on T_search until a
candidate's fitness on T_select exceeds `sufficient_fitness` (or the budget
ends), and reports the best candidate's fitness on the final tasks:

1. one main random source, seeded by the run's seed, drives everything
   (initial programs, mutations, tournaments, the seeds of random ops, the
   randomized task seeds, the select/final seeds): the same seed gives the
   same run;
2. per experiment: (randomized) search tasks, a fresh FEC cache and
   evaluator, regularized evolution until `max_train_steps` (checked between
   generations, FEC steps included), the best of the final population as the
   candidate, its select fitness (mean, no FEC, no budget) on (randomized)
   select tasks; a candidate at least as good as the best so far replaces it;
3. the best candidate on the final tasks (never randomized).

Long runs lose nothing: with an output folder, the state is checkpointed
atomically (temp file + rename) every `checkpoint_every` seconds and on
Ctrl-C, at a batch boundary, as plain data (azc.search.checkpoint: nothing read
from a checkpoint can run code); `resume` continues exactly where it stopped, so
a resumed run reaches the same result as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from azc.errors import AzcError, CheckpointError
from azc.frontend import run_header
from azc.ir import MemoryConfig, Program, verify
from azc.passes import optimize
from azc.printer import format_program
from azc.results import combine
from azc.search import collector
from azc.search.collector import paused_collector
from azc.search.config import ExperimentConfig, load_config, with_image_dataset
from azc.search.evaluator import SearchEvaluator
from azc.search.evolution import RegularizedEvolution
from azc.search.guard import RunLock, check_evolve_arguments
from azc.search.random import SearchRandom
from azc.search.search import Search
from azc.tasks.spec import TaskSpec, build_tasks, randomize_seeds
from azc.tasks.task import Task

CHECKPOINT = "checkpoint.ckpt"     # azc.search.checkpoint: plain data, never code
OLD_CHECKPOINT = "checkpoint.pkl"  # the pickles of older azc: refused, never read
LOG = "log.jsonl"


@dataclass
class EvolveResult:
    """What a run found."""

    program: Program                   # the best candidate, as evolved
    simplified: Program                # the same without dead code
    search_fitness: float
    select_fitness: float
    final_fitness: float
    seed: int
    experiments: int
    individuals: int
    train_steps: int
    elapsed: float
    stopped: str                       # why the run ended
    history: list[dict] = field(default_factory=list)
    counters: dict = field(default_factory=dict)
    out_dir: str | None = None

    @property
    def succeeded(self) -> bool:
        """Whether the select fitness reached the configuration's sufficient fitness."""
        return self.stopped == "sufficient_fitness"


def evaluate_candidate(program: Program, tasks: list[Task], memory: MemoryConfig, seed: int,
                       max_abs_error: float) -> float:
    """Mean fitness on tasks (no FEC, no budget): the native interpreter, with compiled
    task loops when the evaluation is long enough to pay for the compile."""
    from azc.backend.components import attach, component_kernels, pairs_up
    from azc.backend.jit import TaskBatch
    from azc.backend.native import Encoded, interpreter
    out: list[float] = []
    by_f: dict[int, list[Task]] = {}
    for t in tasks:
        by_f.setdefault(t.features, []).append(t)
    live = optimize(program)
    for f, group in by_f.items():
        verify(program, memory.with_features(f))  # its located message (native code checks it too)
        enc = Encoded.of([live])
        examples = sum(t.max_train_steps + t.num_valid for t in group)
        batch = TaskBatch(group, f)  # not TaskBatch.of: its cache would keep the tasks alive
        attach(component_kernels(memory, f), enc, examples, pairs_up(batch))
        res = interpreter(memory, f).run_batch(enc, batch, np.array([seed], dtype=np.uint64),
                                               max_abs_error)
        out.extend(res[0, :, 0].tolist())
    return combine(out, "mean")


class Run:
    """The state of one evolve() run; the checkpoint stores it (azc.search.checkpoint)."""

    def __init__(self, config: ExperimentConfig, seed: int):
        self.config = config
        self.seed = seed
        self.rnd = SearchRandom(seed)
        self.experiment = 0
        self.best_program: Program | None = None
        self.best_select = -math.inf
        self.best_search = 0.0
        self.individuals = 0
        self.train_steps = 0
        self.elapsed = 0.0
        self.history: list[dict] = []
        self.stopped = ""
        self.evo: RegularizedEvolution | None = None
        self.evaluator: SearchEvaluator | None = None
        self.search_specs: list[TaskSpec] | None = None
        self.steps_init = 0
        self.last_report = 0
        self.max_individuals: int | None = None   # the run's limits (kept by checkpoints)
        self.time_limit: float | None = None
        self.workers = 1
        self.migrate_every = 10                   # generations between migrations
        self.arch: Any = None                     # the islands (Archipelago) of the search
        self.idle_arch: Any = None                # between searches: the processes, reused
        self.island_seeds: list[int] | None = None
        self.island_states: list[dict] | None = None
        self.base_individuals = 0                 # individuals of finished searches
        self.base_steps = 0
        self.log_bytes = 0  # the size of log.jsonl when the state was saved

    # --- checkpoints (azc.search.checkpoint) --------------------------------------------

    def restore_search(self, evaluator_state: dict, evo_state: dict) -> None:
        """Continue the search experiment of a checkpoint: rebuilt on the search tasks
        already drawn, then the evaluator's and the evolution's saved state."""
        from azc.search.checkpoint import check_state_programs
        self.start_search(resuming=True)
        assert self.evaluator is not None and self.evo is not None
        check_state_programs(evo_state, self.rnd,
                             self.config.memory.with_features(self.evaluator.features))
        self.evaluator.restore(evaluator_state)
        self.evo.restore(evo_state)

    # --- one search experiment ---------------------------------------------------------

    def start_search(self, resuming: bool = False) -> None:
        """Start a search experiment (`resuming`: on the search tasks already drawn)."""
        cfg = self.config
        if not resuming:
            specs = list(cfg.search_tasks)
            if cfg.randomize_task_seeds:
                specs = randomize_seeds(specs, self.rnd.seed64())
            self.search_specs = specs
        assert self.search_specs is not None
        search = Search.build(cfg, self.search_specs, self.rnd)
        self.evaluator, self.evo = search.evaluator, search.evo

    def _finish_search(self) -> None:
        """Score the experiment's candidate on the select tasks; keep the best."""
        assert self.evo is not None and self.evo.population is not None
        _, candidate, search_fit = self.evo.population.best()
        self._select(candidate, search_fit)
        self.evo = self.evaluator = None

    def _select(self, candidate: Program, search_fit: float) -> None:
        """The candidate's select fitness; the best candidate so far is kept."""
        cfg = self.config
        specs = list(cfg.select_tasks)
        if cfg.randomize_task_seeds:
            specs = randomize_seeds(specs, self.rnd.seed64())
        select = evaluate_candidate(candidate, build_tasks(specs), cfg.memory,
                                    self.rnd.seed64(), cfg.max_abs_error)
        if select >= self.best_select:
            self.best_select, self.best_program, self.best_search = select, candidate, search_fit
        self.history.append({"event": "experiment", "experiment": self.experiment,
                             "search_fitness": search_fit, "select_fitness": select,
                             "best_select_fitness": self.best_select,
                             "individuals": self.individuals, "elapsed": self.elapsed})
        self.experiment += 1


class _Reporter:
    """Live progress on a terminal, plain lines otherwise, and the JSONL log."""

    def __init__(self, stream, log_path: Path | None, callback: Callable[[dict], None] | None,
                 quiet: bool):
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.log = log_path.open("a") if log_path else None
        self.callback = callback
        self.quiet = quiet
        self.last_line = 0.0

    def report(self, record: dict, live: bool = False) -> None:
        if not live:
            if self.log:
                self.log.write(json.dumps(record) + "\n")
                self.log.flush()
            if self.callback:
                self.callback(record)
        if self.quiet:
            return
        now = time.monotonic()
        if live and (not self.tty or now - self.last_line < 0.5):
            return
        self.last_line = now
        line = _format(record)
        if self.tty:
            self.stream.write("\r\x1b[2K" + line + ("" if live else "\n"))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def wants_live(self) -> bool:
        """Whether a live (terminal) line is due now."""
        return self.tty and not self.quiet and time.monotonic() - self.last_line >= 0.5

    def message(self, text: str) -> None:
        if self.log:
            self.log.write(json.dumps({"event": "message", "text": text}) + "\n")
            self.log.flush()
        if not self.quiet:
            self.stream.write(("\r\x1b[2K" if self.tty else "") + text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.log:
            self.log.close()
            self.log = None


def _format(r: dict) -> str:
    if r.get("event") == "experiment":
        return (f"experiment {r['experiment']}: candidate search fitness "
                f"{r['search_fitness']:.6f}, select fitness {r['select_fitness']:.6f} "
                f"(best {r['best_select_fitness']:.6f})")
    hurdled = f"hurdled {r['hurdle_rate']:.0%}  " if r.get("hurdle_rate") else ""
    return (f"exp {r['experiment']}  indiv {r['individuals']:>10,}  {r['rate']:>8,.0f}/s  "
            f"best {r['best']:.6f}  mean {r['mean']:.4f}  memo {r['memo_hit_rate']:.0%}  "
            f"fec {r['fec_hit_rate']:.0%}  {hurdled}{r['elapsed']:.0f}s")


def _progress(run: Run, rate: float) -> dict:
    evo, ev = run.evo, run.evaluator
    assert evo is not None and evo.population is not None and ev is not None
    mean, sd, best = evo.population.stats()
    c = ev.counters
    lookups = c.fec_hits + c.fec_misses
    return {"event": "progress", "experiment": run.experiment, "individuals": run.individuals,
            "generation": evo.generations, "rate": rate, "elapsed": round(run.elapsed, 3),
            "best": best, "mean": mean, "stdev": sd, "train_steps": run.train_steps,
            "memo_hit_rate": c.memo_hits / max(1, c.individuals),
            "fec_hit_rate": c.fec_hits / max(1, lookups),
            "hurdle_rate": c.hurdled / max(1, c.individuals),
            "full_task_evals": c.full_task_evals}


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _truncate_log(log: Path, size: int) -> None:
    """Drop what a run killed after its last checkpoint wrote to its log (the resumed run
    writes those records again), so that the log reads as one run."""
    if size > 0 and log.exists() and log.stat().st_size > size:
        with log.open("r+b") as f:
            f.truncate(size)


def save_checkpoint(run: Run, out_dir: Path) -> None:
    """Write the run's state atomically (azc.search.checkpoint)."""
    from azc.search.checkpoint import dumps
    log = out_dir / LOG
    run.log_bytes = log.stat().st_size if log.exists() else 0
    _write_atomic(out_dir / CHECKPOINT, dumps(run))


def load_checkpoint(out_dir: Path) -> Run:
    """The run saved in a folder (CheckpointError if there is none, or it cannot be
    resumed: not an azc checkpoint, another format version, truncated, corrupted, or an
    old pickle checkpoint, which is never unpickled)."""
    from azc.search.checkpoint import loads
    path = out_dir / CHECKPOINT
    if not path.exists() and (out_dir / OLD_CHECKPOINT).exists():
        raise CheckpointError(f"{out_dir / OLD_CHECKPOINT} was written by an older azc (a "
                              f"Python pickle, which azc no longer reads: loading one can run "
                              f"any code); resume it with that version or start again")
    if not path.exists():
        raise CheckpointError(f"nothing to resume: {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"cannot resume: {path} is not a regular file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err.strerror or err}") from None
    return loads(data, str(path), Run)


def evolve(config: ExperimentConfig | str, seed: int | None = None, *,
           max_individuals: int | None = None, time_limit: float | None = None,
           out_dir: str | Path | None = None, checkpoint_every: float = 300.0,
           resume: str | Path | None = None, callback: Callable[[dict], None] | None = None,
           stream=None, quiet: bool = False, batch_size: int | None = None,
           workers: int | None = None, migrate_every: int | None = None,
           dataset: str | None = None,
           data: dict[str, str | Path] | None = None) -> EvolveResult:
    """Run evolution as the configuration says; the best program and its fitnesses.

    `config` is an ExperimentConfig, a TOML path or a shipped name ("demo").
    `seed` overrides the configuration's `random_seed`.  `max_individuals`
    and `time_limit` (seconds) bound the search (the candidate found so far
    is still selected and reported).  With `out_dir`, progress goes to
    `out_dir/log.jsonl`, the result to `result.json`, the program to
    `best.az`, and checkpoints to `checkpoint.ckpt` (plain data:
    azc.search.checkpoint); `resume` continues the run saved in a folder (a
    configuration given with it must be the run's).  `callback(record)` is called for every progress
    report. `dataset` and `data` move the configuration's projected image tasks
    to another dataset (e.g. "mnist") or give datasets' paths ({"cifar10":
    PATH}); on resume only `data` may be given (the data moved). `workers`
    (default 1) is the number of islands, each in its own process.
    """
    check_evolve_arguments(config, seed, max_individuals, time_limit, checkpoint_every,
                            callback, batch_size, workers, migrate_every, resume)
    folder = Path(resume) if resume is not None else Path(out_dir) if out_dir is not None \
        else None
    if folder is not None and resume is None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise AzcError(f"cannot create the run folder {folder}: "
                           f"{err.strerror or err}") from None
    with RunLock(folder):
        return _evolve(config, seed, max_individuals, time_limit, out_dir, checkpoint_every,
                       resume, callback, stream, quiet, batch_size, workers, migrate_every,
                       dataset, data)


def _evolve(config, seed, max_individuals, time_limit, out_dir, checkpoint_every, resume,
            callback, stream, quiet, batch_size, workers, migrate_every, dataset, data
            ) -> EvolveResult:
    """The body of `evolve`, with its arguments checked and the run folder locked."""
    stream = stream or sys.stderr
    out: Path | None
    if resume is not None:
        out = Path(resume)
        run = load_checkpoint(out)
        cfg = run.config
        if config is not None:  # given beside --resume: it must be the run's
            from azc.search.checkpoint import same_config
            given = config if isinstance(config, ExperimentConfig) else load_config(config)
            differ = same_config(cfg, given)
            if differ:
                raise CheckpointError(f"{out / CHECKPOINT} is a run of another configuration "
                                      f"than {given.source or given.name} (they differ in "
                                      f"{', '.join(differ)}); resume it without a "
                                      f"configuration, or start a new run")
        if out_dir is not None and Path(out_dir) != out:
            raise AzcError("--resume continues in its own folder; do not give --out too")
        if dataset is not None:
            raise AzcError("--resume continues on the run's own tasks; --dataset cannot change "
                           "them (--data may say where a dataset has moved)")
        refused = [name for name, value in (("--seed", seed), ("--workers", workers),
                                             ("--batch-size", batch_size),
                                             ("migrate_every", migrate_every))
                   if value is not None]
        if refused:
            raise AzcError(f"--resume continues the run as it was started: {', '.join(refused)} "
                           f"cannot change it (start a new run to use other values)")
        cfg = run.config = with_image_dataset(cfg, None, data)
    else:
        cfg = config if isinstance(config, ExperimentConfig) else load_config(config)
        cfg = with_image_dataset(cfg, dataset, data)
        if batch_size is not None:
            from dataclasses import replace
            cfg = replace(cfg, batch_size=batch_size)
        run = Run(cfg, cfg.random_seed if seed is None else seed)
        run.workers = workers or 1
        run.migrate_every = migrate_every or cfg.migrate_every
        out = Path(out_dir) if out_dir is not None else None
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            if (out / CHECKPOINT).exists() or (out / OLD_CHECKPOINT).exists():
                raise AzcError(f"{out} already holds a run; use --resume {out} to continue it "
                               f"or choose another --out folder")
            if (out / "result.json").exists():
                raise AzcError(f"{out} holds a finished run (result.json); choose another --out "
                               f"folder, or delete it to start again there")
    if resume is None or max_individuals is not None:
        run.max_individuals = max_individuals or cfg.max_individuals
    if resume is None or time_limit is not None:
        run.time_limit = time_limit if time_limit is not None else cfg.time_limit
    limit_individuals, limit_time = run.max_individuals, run.time_limit
    if resume is not None and out is not None:
        _truncate_log(out / LOG, run.log_bytes)
        for stale in out.glob(f"{CHECKPOINT}*.tmp"):  # a write cut short by kill -9
            stale.unlink(missing_ok=True)
    reporter = _Reporter(stream, out / LOG if out else None, callback, quiet)
    if resume is None:
        reporter.message(f"azc evolve {cfg.name}: seed {run.seed}, population "
                         f"{cfg.population_size}, {len(cfg.search_tasks)} search task spec(s)")
    else:
        reporter.message(f"resuming {out} at experiment {run.experiment}, "
                         f"{run.individuals:,} individuals")
    run.stopped = ""
    if run.workers < cfg.task_sets:
        reporter.message(f"note: {cfg.task_sets} search task sets but {run.workers} "
                         f"worker(s); island i searches on set i mod {cfg.task_sets}, so "
                         f"some sets are unused (give --workers {cfg.task_sets} or more)")
    loop = _loop if run.workers == 1 else _island_loop
    with _StopOnSignal() as stop:  # until the result is written: a signal never kills it
        try:
            with paused_collector():
                try:
                    loop(run, reporter, out, limit_individuals, limit_time, checkpoint_every,
                         stop)
                except KeyboardInterrupt:  # a hard stop, or Ctrl-C outside the main thread
                    if stop.count >= HARD_STOP or run.workers > 1:
                        # somewhere inside a step: the state may be half updated; keep
                        # the last checkpoint and stop
                        raise
                    run.stopped = "interrupted"
            interrupted = run.stopped == "interrupted"
            if interrupted:
                reporter.message("interrupted: saving the state and the result")
                if out is not None:
                    save_checkpoint(run, out)  # before the candidate is scored
            if run.evo is not None and run.evo.population is not None:
                run._finish_search()  # a search stopped mid-way still offers its candidate
                reporter.report(run.history[-1])
            if run.arch is not None:
                from azc.search.islands import combined_best
                run._select(*combined_best(run.arch.advance(0), cfg.task_sets))
                reporter.report(run.history[-1])
        except KeyboardInterrupt:
            _hard_stop(reporter, out)
            raise
        finally:
            for arch in (run.arch, run.idle_arch):
                if arch is not None:
                    arch.close()
            run.arch = run.idle_arch = None
        try:
            result = _final(run, out, reporter)  # the checkpoint stays until then
        except KeyboardInterrupt:
            _hard_stop(reporter, out)
            raise
    if out is not None and not interrupted and (out / CHECKPOINT).exists():
        (out / CHECKPOINT).unlink()
    reporter.close()
    return result


def _hard_stop(reporter: _Reporter, out: Path | None) -> None:
    """Say that the run stopped at once, and where it resumes from."""
    where = (f"; resume from the last checkpoint with --resume {out}"
             if out is not None and (out / CHECKPOINT).exists() else "")
    reporter.message("stopped at once" + where)
    reporter.close()


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))
HARD_STOP = 3  # signals before a run stops at once, without saving


class _StopOnSignal:
    """Ctrl-C, SIGTERM or SIGHUP asks the run to stop at the next safe point (a batch of
    children, or the islands' next barrier), where the state is saved; a second one is
    a reminder; the third stops at once (KeyboardInterrupt), keeping the last checkpoint."""

    def __init__(self) -> None:
        self.requested = False
        self.count = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.count += 1
        self.requested = True
        if self.count >= HARD_STOP:
            raise KeyboardInterrupt
        if self.count == 2:
            sys.stderr.write("\nstopping at the next safe point to save the run; signal once "
                             "more to stop at once (the last checkpoint is kept)\n")

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}


def _loop(run: Run, reporter: _Reporter, out: Path | None, limit_individuals: int | None,
          limit_time: float | None, checkpoint_every: float, stop: _StopOnSignal) -> None:
    """Search until a stopping rule holds; every iteration ends at a safe point."""
    cfg = run.config
    start = time.monotonic() - run.elapsed
    last_checkpoint = time.monotonic()
    while not run.stopped:
        if stop.requested:
            run.stopped = "interrupted"
            return
        if run.evo is None:
            run.start_search()
            assert run.evo is not None and run.evaluator is not None
            run.evo.initialize()
            run.individuals += cfg.population_size
            run.steps_init = run.evaluator.counters.train_steps
            run.train_steps += run.steps_init
        evo, ev = run.evo, run.evaluator
        assert evo is not None and ev is not None
        steps_before = ev.counters.train_steps
        n = evo.step()
        run.individuals += n
        run.train_steps += ev.counters.train_steps - steps_before
        run.elapsed = time.monotonic() - start
        rate = run.individuals / max(run.elapsed, 1e-9)
        if limit_time is not None and run.elapsed >= limit_time:
            run.stopped = "time_limit"
        if evo.next_slot == 0:  # a generation ended: budgets and reports
            if run.individuals - run.last_report >= cfg.progress_every or run.last_report == 0:
                run.last_report = run.individuals
                record = _progress(run, rate)
                run.history.append(record)
                reporter.report(record)
            if limit_individuals is not None and run.individuals >= limit_individuals:
                run.stopped = run.stopped or "max_individuals"
            used = ev.counters.train_steps - run.steps_init
            if used >= cfg.max_train_steps - run.steps_init or run.stopped:
                run._finish_search()
                _end_experiment(run, reporter)
        elif reporter.wants_live():
            reporter.report(_progress(run, rate), live=True)
        if out is not None and time.monotonic() - last_checkpoint >= checkpoint_every:
            save_checkpoint(run, out)
            last_checkpoint = time.monotonic()


def _end_experiment(run: Run, reporter: _Reporter) -> None:
    """After a search experiment's candidate was selected: report, and the stopping rules."""
    cfg = run.config
    reporter.report(run.history[-1])
    collector.trim()  # the experiment's tasks and caches were just dropped
    if cfg.sufficient_fitness < math.inf and run.best_select > cfg.sufficient_fitness:
        run.stopped = "sufficient_fitness"
    elif cfg.max_experiments and run.experiment >= cfg.max_experiments:
        run.stopped = run.stopped or "max_experiments"


def _island_loop(run: Run, reporter: _Reporter, out: Path | None,
                 limit_individuals: int | None, limit_time: float | None,
                 checkpoint_every: float, stop: _StopOnSignal) -> None:
    """Search on islands until a stopping rule holds; safe points are the barriers."""
    from azc.search.islands import Archipelago, combined_best
    cfg = run.config
    start = time.monotonic() - run.elapsed
    last_checkpoint = time.monotonic()
    while not run.stopped:
        if stop.requested:
            run.stopped = "interrupted"
            return
        fresh = 0  # individuals of initial populations not counted yet
        if run.arch is None:
            if run.island_states is None:  # a new search experiment
                fresh = run.workers * cfg.population_size
                specs = list(cfg.search_tasks)
                if cfg.randomize_task_seeds:
                    specs = randomize_seeds(specs, run.rnd.seed64())
                run.search_specs = specs
                run.island_seeds = [run.rnd.seed64() for _ in range(run.workers)]
            assert run.island_seeds is not None and run.search_specs is not None
            if run.idle_arch is not None and run.island_states is None:
                # the worker processes of the last search, already up: start new islands
                run.arch, run.idle_arch = run.idle_arch, None
                run.arch.start(cfg, run.island_seeds, run.search_specs)
            else:
                run.arch = Archipelago(cfg, run.island_seeds, run.search_specs,
                                       run.island_states)
            run.island_states = None
        generations = run.migrate_every
        if limit_individuals is not None:  # do not overshoot a small limit by much
            left = limit_individuals - run.individuals - fresh
            generations = max(1, min(generations, -(-left // (run.workers *
                                                             cfg.population_size))))
        reports = run.arch.advance(generations)
        run.individuals = run.base_individuals + sum(r.individuals for r in reports)
        run.train_steps = run.base_steps + sum(r.train_steps for r in reports)
        run.elapsed = time.monotonic() - start
        if limit_time is not None and run.elapsed >= limit_time:
            run.stopped = "time_limit"
        if limit_individuals is not None and run.individuals >= limit_individuals:
            run.stopped = run.stopped or "max_individuals"
        if run.individuals - run.last_report >= cfg.progress_every or run.last_report == 0:
            run.last_report = run.individuals
            record = _island_progress(run, reports)
            run.history.append(record)
            reporter.report(record)
        used = sum(r.train_steps - r.steps_init for r in reports)
        init = sum(r.steps_init for r in reports)
        if used >= cfg.max_train_steps - init or run.stopped:
            run._select(*combined_best(reports, cfg.task_sets))
            run.base_individuals, run.base_steps = run.individuals, run.train_steps
            run.arch, run.idle_arch = None, run.arch  # its processes serve the next search
            _end_experiment(run, reporter)
        else:
            run.arch.migrate(reports, run.rnd)
        if out is not None and time.monotonic() - last_checkpoint >= checkpoint_every:
            save_checkpoint(run, out)
            last_checkpoint = time.monotonic()


def _island_progress(run: Run, reports: list) -> dict:
    lookups = sum(r.fec_lookups for r in reports)
    return {"event": "progress", "experiment": run.experiment, "individuals": run.individuals,
            "generation": None, "rate": run.individuals / max(run.elapsed, 1e-9),
            "elapsed": round(run.elapsed, 3), "best": max(r.best_fitness for r in reports),
            "mean": float(np.mean([r.mean for r in reports])),
            "stdev": float(np.mean([r.stdev for r in reports])),
            "train_steps": run.train_steps, "islands": len(reports),
            "memo_hit_rate": sum(r.memo_hits for r in reports) / max(
                1, sum(r.individuals for r in reports)),
            "fec_hit_rate": sum(r.fec_hits for r in reports) / max(1, lookups),
            "full_task_evals": None}


def _final(run: Run, out: Path | None, reporter: _Reporter) -> EvolveResult:
    cfg = run.config
    if run.best_program is None:
        raise AzcError("the run ended before any program was evaluated")
    program = run.best_program
    final_tasks = build_tasks(list(cfg.final_tasks))
    final = evaluate_candidate(program, final_tasks, cfg.memory, run.rnd.seed64(),
                               cfg.max_abs_error)
    select = run.best_select if run.best_select > -math.inf else float("nan")
    features = final_tasks[0].features
    simplified = optimize(program)
    counters = {}
    if run.history:
        counters = {k: v for k, v in run.history[-1].items() if k.endswith("_rate")}
    result = EvolveResult(program, simplified, run.best_search, select, final, run.seed,
                          run.experiment, run.individuals, run.train_steps, run.elapsed,
                          run.stopped or "done", run.history, counters,
                          str(out) if out else None)
    reporter.message(f"final fitness on {len(final_tasks)} final tasks: {final:.6f} "
                     f"(select {select:.6f}, search {run.best_search:.6f}); "
                     f"{run.individuals:,} individuals in {run.elapsed:.1f} s, "
                     f"{run.experiment} experiment(s), stopped: {result.stopped}")
    if out is not None:
        (out / "best.az").write_text(_header(result, cfg.name, features)
                                     + format_program(simplified))
        (out / "evolved.az").write_text("# as evolved, dead code included\n"
                                        + format_program(program))
        _write_atomic(out / "result.json", json.dumps(_result_json(result, cfg),
                                                      indent=2).encode())
    return result


def _header(r: EvolveResult, name: str, features: int) -> str:
    return run_header(name, r.seed, r.final_fitness, r.select_fitness, features)


def _result_json(r: EvolveResult, cfg: ExperimentConfig) -> dict:
    import llvmlite

    import azc
    return {
        "config": cfg.name, "config_source": cfg.source, "seed": r.seed,
        "final_fitness": r.final_fitness, "select_fitness": r.select_fitness,
        "search_fitness": r.search_fitness, "stopped": r.stopped,
        "experiments": r.experiments, "individuals": r.individuals,
        "train_steps": r.train_steps, "elapsed_seconds": round(r.elapsed, 3),
        "individuals_per_second": round(r.individuals / max(r.elapsed, 1e-9), 1),
        "program": format_program(r.simplified), "evolved_program": format_program(r.program),
        "memory": str(cfg.memory), "counters": r.counters,
        "versions": {"azc": azc.__version__, "python": platform.python_version(),
                     "numpy": np.__version__, "llvmlite": llvmlite.__version__},
    }

