"""The reference interpreter: the living definition of programs and their evaluation.

Runs a program on a task with numpy float64 memory, executing each
instruction through its op-table reference semantics, and implements the
evaluation protocol of docs/semantics.md §4.3 exactly:

1. fresh zeroed memory; Setup once (v0, s0, s1 all zero);
2. per training step: v0 = features, s0 = 0, Predict; for ACCURACY tasks
   s1 = sigmoid(s1) written back; error |label - s1| checked (NaN or
   > max_abs_error stops training: fitness 0 in the first epoch, otherwise
   the best fitness so far); v0 = features again, s0 = label, Learn;
3. after each epoch, validation: v0 = features, s0 = 0, Predict only; RMS:
   loss += (label - s1)^2; ACCURACY: sigmoid on a copy, 0/1 loss; an error
   that is NaN or > max_abs_error gives fitness 0; the loss is divided by the
   full validation size; fitness 1 - (2/pi) atan(rmse) or accuracy;
4. the task's fitness is the best over epochs.

Every other backend is tested against this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from azc._runtime import rng
from azc.ir import Component, Instr, MemoryConfig, Program, slot_at
from azc.ops import OPS, Kind
from azc.results import MIN_FITNESS, TaskResult, flip_and_squash, sigmoid
from azc.tasks.task import EvalType, Task

DEFAULT_MAX_ABS_ERROR = 100.0


class Memory:
    """The typed memory of one evaluation: s (S,), v (V, F), m (M, F, F) float64."""

    def __init__(self, config: MemoryConfig, features: int):
        self.features = features
        self.s = np.zeros(config.scalars, dtype=np.float64)
        self.v = np.zeros((config.vectors, features), dtype=np.float64)
        self.m = np.zeros((config.matrices, features, features), dtype=np.float64)
        self.banks = (self.s, self.v, self.m)

    def read(self, kind: Kind, addr: int) -> np.ndarray | np.float64:
        """The value at an address (a scalar, or a view of a vector/matrix)."""
        return self.banks[kind][addr]

    def write(self, kind: Kind, addr: int, value: Any) -> None:
        """Store a value at an address."""
        self.banks[kind][addr] = value


@dataclass(frozen=True)
class _Step:
    """One instruction, pre-decoded for the interpreter loop."""

    ref: Callable
    ins: tuple[tuple[Kind, int], ...]
    out: tuple[Kind, int]
    consts: tuple[float, float, float]
    partial: bool
    slot: int  # -1 for non-random ops


def _decode(instrs: Sequence[Instr]) -> list[_Step]:
    steps = []
    for pos, ins in enumerate(instrs):
        op = OPS[ins.op]
        if op.out is None:
            continue
        steps.append(_Step(op.ref, tuple(ins.inputs()), (op.out, ins.out), ins.consts,
                           op.partial_write, slot_at(ins, pos)))
    return steps


def run_component(steps: Sequence[_Step], mem: Memory, k_exec: int) -> None:
    """Execute decoded instructions in order on the memory."""
    F = mem.features
    for st in steps:
        a = b = None
        if st.ins:
            a = mem.read(*st.ins[0])
            if len(st.ins) > 1:
                b = mem.read(*st.ins[1])
        elif st.partial:
            a = mem.read(*st.out)
        rand = None
        if st.slot >= 0:
            k_slot = rng.slot_key(k_exec, st.slot)
            rand = lambda n, k=k_slot: rng.uniforms(k, n)  # noqa: E731
        mem.write(*st.out, st.ref(a, b, st.consts, F, rand))


class Executor:
    """One program on one task: memory, component runs and the training protocol."""

    def __init__(self, program: Program, task: Task, memory: MemoryConfig, seed: int = 0,
                 max_abs_error: float = DEFAULT_MAX_ABS_ERROR):
        self.task = task
        self.max_abs_error = max_abs_error
        self.mem = Memory(memory, task.features)
        self.k_task = rng.task_key(seed, task.index)
        self.setup = _decode(program.setup)
        self.predict = _decode(program.predict)
        self.learn = _decode(program.learn)
        self.steps_done = 0
        self.stopped_early = False
        self.train_predictions: list[float] = []
        self.valid_predictions: list[float] = []

    def run(self, component: Component, kind: int, index: int) -> None:
        """Run one component function as execution (kind, index) of this task."""
        steps = (self.setup, self.predict, self.learn)[component]
        run_component(steps, self.mem, rng.exec_key(self.k_task, rng.exec_id(kind, index)))

    def train(self, first_step: int, num_steps: int, errors: list[float] | None) -> bool:
        """Training steps first_step .. first_step + num_steps - 1; False if stopped early."""
        task, mem = self.task, self.mem
        n = task.num_train
        accuracy = task.eval_type is EvalType.ACCURACY
        assert task.train_order is not None  # Task always fills it in
        for t in range(first_step, first_step + num_steps):
            self.steps_done += 1
            i = int(task.train_order[t // n, t % n])
            x, y = task.train_x[i], float(task.train_y[i])
            mem.v[0] = x
            mem.s[0] = 0.0
            self.run(Component.PREDICT, rng.KIND_PREDICT, t)
            self.train_predictions.append(float(mem.s[1]))
            if accuracy:
                mem.s[1] = sigmoid(float(mem.s[1]))
            err = abs(y - float(mem.s[1]))
            if math.isnan(err) or err > self.max_abs_error:
                self.stopped_early = True
                return False
            if errors is not None:
                errors.append(err)
            mem.v[0] = x
            mem.s[0] = y
            self.run(Component.LEARN, rng.KIND_LEARN, t)
        return True

    def validate(self, epoch: int, num_valid: int, errors: list[float] | None) -> float:
        """One validation pass; the fitness it gives."""
        task, mem = self.task, self.mem
        nv = task.num_valid
        accuracy = task.eval_type is EvalType.ACCURACY
        loss = 0.0
        self.valid_predictions = []
        for j in range(min(num_valid, nv)):
            mem.v[0] = task.valid_x[j]
            mem.s[0] = 0.0
            self.run(Component.PREDICT, rng.KIND_VALID, epoch * nv + j)
            s1 = float(mem.s[1])
            self.valid_predictions.append(s1)
            err, term = validation_error(float(task.valid_y[j]), s1, accuracy)
            loss += term
            if math.isnan(abs(err)) or abs(err) > self.max_abs_error:
                return MIN_FITNESS
            if errors is not None:
                errors.append(abs(err))
        return validation_fitness(loss, nv, accuracy)

    def execute(self, num_train: int | None = None, num_valid: int | None = None,
                train_errors: list[float] | None = None,
                valid_errors: list[float] | None = None) -> float:
        """Setup, then epochs of training and validation; the best validation fitness."""
        task = self.task
        n_all = task.max_train_steps if num_train is None else min(num_train,
                                                                    task.max_train_steps)
        n_valid = task.num_valid if num_valid is None else num_valid
        self.run(Component.SETUP, rng.KIND_SETUP, 0)
        per_epoch = task.num_train
        remaining = n_all
        best = MIN_FITNESS
        step = epoch = 0
        while remaining > 0:
            count = min(per_epoch, remaining)
            if not self.train(step, count, train_errors):
                if remaining == n_all:
                    return MIN_FITNESS
                break
            step += count
            remaining -= per_epoch
            best = max(self.validate(epoch, n_valid, valid_errors), best)
            epoch += 1
            train_errors = valid_errors = None  # errors are kept for the first epoch only
        return best


def validation_error(y: float, s1: float, accuracy: bool,
                     proba: float | None = None) -> tuple[float, float]:
    """(error, loss term) of one validation example with label `y` and prediction `s1`.

    Regression: the error y - s1, its square added to the loss.  Accuracy: the
    probability p = sigmoid(s1) (or `proba`); the error is inf when p is outside
    [0, 1], else 0 when (y > 0.5) == (p > 0.5) and 1 otherwise, added as it is.
    Validation stops (fitness 0) at an error whose magnitude is NaN or above the
    bound.
    """
    if accuracy:
        p = sigmoid(s1) if proba is None else proba
        if p > 1.0 or p < 0.0:
            return math.inf, math.inf
        err = 0.0 if (y > 0.5) == (p > 0.5) else 1.0
        return err, err
    err = y - s1
    return err, err * err


def validation_fitness(loss: float, num_valid: int, accuracy: bool) -> float:
    """The fitness of a validation pass that ran to the end with summed `loss` over its
    `num_valid` examples: 1 - loss/Nv for accuracy, flip_and_squash(RMSE) otherwise."""
    loss /= num_valid
    if accuracy:
        return 1.0 - loss
    return flip_and_squash(math.sqrt(loss))


def evaluate_task(program: Program, task: Task, memory: MemoryConfig, *, seed: int = 0,
                  num_train: int | None = None, num_valid: int | None = None,
                  max_abs_error: float = DEFAULT_MAX_ABS_ERROR, record: bool = False,
                  record_errors: bool = False) -> TaskResult:
    """Evaluate a program on one task by the protocol of docs/semantics.md §4.3."""
    ex = Executor(program, task, memory, seed=seed, max_abs_error=max_abs_error)
    train_errors: list[float] | None = [] if record_errors else None
    valid_errors: list[float] | None = [] if record_errors else None
    with np.errstate(all="ignore"):
        fitness = ex.execute(num_train, num_valid, train_errors, valid_errors)
    result = TaskResult(fitness=fitness, train_steps=ex.steps_done,
                        stopped_early=ex.stopped_early, train_errors=train_errors,
                        valid_errors=valid_errors)
    if record:
        result.train_predictions = np.array(ex.train_predictions, dtype=np.float64)
        result.valid_predictions = np.array(ex.valid_predictions, dtype=np.float64)
    return result


def run_once(program: Program, component: Component, memory: Memory, *, seed: int = 0,
             task_index: int = 0, kind: int | None = None, index: int = 0) -> None:
    """Execute one component function on a given memory (for tests and folding)."""
    if kind is None:
        kind = {Component.SETUP: rng.KIND_SETUP, Component.PREDICT: rng.KIND_PREDICT,
                Component.LEARN: rng.KIND_LEARN}[component]
    k_exec = rng.exec_key(rng.task_key(seed, task_index), rng.exec_id(kind, index))
    with np.errstate(all="ignore"):
        run_component(_decode(program[component]), memory, k_exec)
