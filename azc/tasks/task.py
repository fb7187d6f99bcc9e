"""One task: its data, its evaluation type and its training order.

A `Task` is what every evaluator (interpreter, JIT, FEC) runs a program on:
`train_x` (N x F), `train_y` (N), `valid_x` (Nv x F), `valid_y` (Nv), all
float64 and C-contiguous; the number of epochs E; `train_order` (E x N, int64:
row e is the order of the training examples in epoch e); and `index`, the
task's position in its collection (FEC keys on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from azc.errors import DataError


class EvalType(IntEnum):
    """How a task turns predictions into fitness (the original's enum values)."""

    RMS_ERROR = 1
    ACCURACY = 4

    @staticmethod
    def parse(value: object) -> EvalType:
        """An EvalType from its name (RMS_ERROR, ACCURACY; case-insensitive) or value."""
        if isinstance(value, EvalType):
            return value
        if isinstance(value, int) and value in (1, 4):
            return EvalType(value)
        key = str(value).strip().upper()
        aliases = {"RMS": "RMS_ERROR", "RMSE": "RMS_ERROR", "REGRESSION": "RMS_ERROR",
                   "ACC": "ACCURACY", "CLASSIFICATION": "ACCURACY"}
        key = aliases.get(key, key)
        if key not in EvalType.__members__:
            raise DataError(f"eval_type must be RMS_ERROR or ACCURACY, got {value!r}")
        return EvalType[key]


@dataclass(frozen=True, eq=False)
class Task:
    """The data and protocol parameters of one task."""

    train_x: np.ndarray
    train_y: np.ndarray
    valid_x: np.ndarray
    valid_y: np.ndarray
    eval_type: EvalType = EvalType.RMS_ERROR
    num_train_epochs: int = 1
    train_order: np.ndarray | None = None
    index: int = 0
    name: str = "task"
    data_seed: int = 0
    param_seed: int = 0
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        tx = np.ascontiguousarray(self.train_x, dtype=np.float64)
        vx = np.ascontiguousarray(self.valid_x, dtype=np.float64)
        ty = np.ascontiguousarray(self.train_y, dtype=np.float64).reshape(-1)
        vy = np.ascontiguousarray(self.valid_y, dtype=np.float64).reshape(-1)
        if tx.ndim != 2 or vx.ndim != 2:
            raise DataError(f"{self.name}: features must be 2-D (examples x features), got "
                            f"train {tx.shape} and valid {vx.shape}")
        if tx.shape[1] != vx.shape[1]:
            raise DataError(f"{self.name}: train has {tx.shape[1]} features but valid has "
                            f"{vx.shape[1]}")
        if tx.shape[0] != ty.shape[0] or vx.shape[0] != vy.shape[0]:
            raise DataError(f"{self.name}: {tx.shape[0]} train examples but {ty.shape[0]} "
                            f"labels, {vx.shape[0]} valid examples but {vy.shape[0]} labels")
        if tx.shape[0] < 1 or vx.shape[0] < 1:
            raise DataError(f"{self.name}: needs at least one train and one valid example")
        if tx.shape[1] < 1:
            raise DataError(f"{self.name}: needs at least one feature")
        if self.num_train_epochs < 1:
            raise DataError(f"{self.name}: num_train_epochs must be at least 1, "
                            f"got {self.num_train_epochs}")
        order = self.train_order
        n, e = tx.shape[0], self.num_train_epochs
        if order is None:
            order = np.tile(np.arange(n, dtype=np.int64), (e, 1))
        order = np.ascontiguousarray(order, dtype=np.int64)
        if order.ndim != 2 or order.shape[0] < e or order.shape[1] != n:
            raise DataError(f"{self.name}: train_order must have one row of {n} example "
                            f"indices per epoch ({e} epochs), got shape {order.shape}")
        order = order[:e]
        if order.min() < 0 or order.max() >= n:
            raise DataError(f"{self.name}: train_order holds indices outside 0..{n - 1}")
        for arr in (tx, ty, vx, vy, order):
            arr.setflags(write=False)
        object.__setattr__(self, "train_x", tx)
        object.__setattr__(self, "train_y", ty)
        object.__setattr__(self, "valid_x", vx)
        object.__setattr__(self, "valid_y", vy)
        object.__setattr__(self, "train_order", order)
        object.__setattr__(self, "eval_type", EvalType.parse(self.eval_type))

    @property
    def features(self) -> int:
        """The feature size F."""
        return int(self.train_x.shape[1])

    @property
    def num_train(self) -> int:
        """N, the number of training examples per epoch."""
        return int(self.train_x.shape[0])

    @property
    def num_valid(self) -> int:
        """Nv, the number of validation examples."""
        return int(self.valid_x.shape[0])

    @property
    def max_train_steps(self) -> int:
        """N * E: the training steps of a full evaluation."""
        return self.num_train * self.num_train_epochs

    def with_index(self, index: int) -> Task:
        """The same task at another position in a collection."""
        return Task(self.train_x, self.train_y, self.valid_x, self.valid_y, self.eval_type,
                    self.num_train_epochs, self.train_order, index, self.name, self.data_seed,
                    self.param_seed, dict(self.meta))
