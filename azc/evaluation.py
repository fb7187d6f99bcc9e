"""`azc.evaluate`: a program on a set of tasks, with any backend.

Resolves what the user gave (a Program or program text, Task objects or a
task argument such as `linear` or `data.npz`), picks the memory (the smallest
that fits the program unless given), verifies the program against it, runs
the chosen backend on every task, and combines the per-task fitness (mean or
median, docs/semantics.md §4.5).
"""

from __future__ import annotations

from collections.abc import Sequence

from azc.errors import AzcError
from azc.frontend import parse
from azc.interp import DEFAULT_MAX_ABS_ERROR, evaluate_task
from azc.ir import MemoryConfig, Program, verify
from azc.results import COMBINATIONS, EvalResult, combine
from azc.tasks.task import Task

BACKENDS = ("interp", "jit")


def resolve_program(program: Program | str) -> Program:
    """A Program from a Program or from program text."""
    if isinstance(program, Program):
        return program
    if isinstance(program, str):
        return parse(program)
    raise AzcError(f"expected a Program or program text, got {type(program).__name__}")


def resolve_tasks(tasks: Task | Sequence[Task] | str) -> list[Task]:
    """A list of tasks from Task objects or a task argument (name, TOML, dataset)."""
    if isinstance(tasks, Task):
        return [tasks]
    if isinstance(tasks, str):
        from azc.tasks import load_tasks
        return load_tasks(tasks)
    out = list(tasks)
    if not out:
        raise AzcError("no tasks to evaluate on")
    if not all(isinstance(t, Task) for t in out):
        raise AzcError("tasks must be Task objects or a task name / file")
    return out


def resolve_memory(program: Program, tasks: Sequence[Task],
                   memory: MemoryConfig | None) -> MemoryConfig:
    """The memory to run with, verified against the program at every task's F."""
    mem = memory if memory is not None else MemoryConfig.fitting(program)
    for f in sorted({t.features for t in tasks}):
        verify(program, mem.with_features(f))
    return mem


def evaluate(program: Program | str, tasks: Task | Sequence[Task] | str,
             memory: MemoryConfig | None = None, *, backend: str = "jit", seed: int = 0,
             combination: str = "mean", max_abs_error: float = DEFAULT_MAX_ABS_ERROR,
             num_train_examples: int | None = None, record: bool = False) -> EvalResult:
    """Evaluate a program on tasks; the combined and per-task fitness.

    - `memory`: numbers of s/v/m addresses (default: the smallest that fits);
    - `backend`: "jit" (compiled native code) or "interp" (the reference interpreter);
    - `seed`: seeds the random ops (same seed, same draws on every backend);
    - `combination`: "mean" (the original's default) or "median" (the paper's);
    - `num_train_examples`: train on at most this many examples per task;
    - `record`: keep the per-example predictions of training and validation.
    """
    if backend not in BACKENDS:
        raise AzcError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if combination not in COMBINATIONS:
        raise AzcError(f"unknown fitness combination {combination!r}; "
                       f"use one of {', '.join(COMBINATIONS)}")
    prog = resolve_program(program)
    task_list = resolve_tasks(tasks)
    mem = resolve_memory(prog, task_list, memory)
    if backend == "jit":
        from azc.backend import cache
        results = cache.evaluate_tasks(prog, task_list, mem, seed=seed,
                                     num_train=num_train_examples,
                                     max_abs_error=max_abs_error, record=record)
    else:
        results = [evaluate_task(prog, t, mem, seed=seed, num_train=num_train_examples,
                                 max_abs_error=max_abs_error, record=record)
                   for t in task_list]
    return EvalResult(fitness=combine([r.fitness for r in results], combination),
                      tasks=results, combination=combination, backend=backend)
