"""The synthetic task data of AutoML-Zero (docs/semantics.md §5.3-§5.5, §5.7), as pure functions.

Each generator takes sizes and seeds and returns a `TaskData` (train/valid
features and labels, plus what the generator drew, in `meta`); `train_order`
makes the per-epoch example orders. Every random draw comes from an
`np.random.Generator(np.random.MT19937(seed))` seeded explicitly from the
task's seeds and the original's per-task-type offsets. The streams are not bit
for bit the C++ ones (numpy's MT19937 seeding and normal sampler differ from
std::mt19937 + Abseil); only the structure is reproduced.

Labels are computed with `azc.ops.rowsums` (left-to-right sums of rounded
products), exactly as the interpreter's `dot` and matrix-vector product would.

This module owns no state, reads no files and knows nothing of TaskSpec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from azc.errors import DataError
from azc.ops import rowsums

SEED_MODULUS = 2**32

# Offsets added to the seeds before seeding each RNG (the original's constants).
LINEAR_DATA_OFFSET = 939723201
LINEAR_PARAM_OFFSET = 997958712
NN_DATA_OFFSET = 865546086
NN_PARAM_OFFSET = 174299604
ORDER_OFFSET = 3274582109
# azc's own constants for its synthetic classification stand-in.
GAUSSIAN_DATA_OFFSET = 481516234
GAUSSIAN_PARAM_OFFSET = 762345111


@dataclass(frozen=True, eq=False)
class TaskData:
    """The examples of one task: features (rows are examples) and labels, plus extras."""

    train_x: np.ndarray
    train_y: np.ndarray
    valid_x: np.ndarray
    valid_y: np.ndarray
    meta: dict = field(default_factory=dict)


def seeded_rng(seed: int) -> np.random.Generator:
    """An MT19937-backed generator seeded with `seed mod 2**32`."""
    return np.random.Generator(np.random.MT19937(int(seed) % SEED_MODULUS))


def hash_mix(*numbers: int) -> int:
    """A 32-bit mix of integers (splitmix64 finalizer, chained); not the C++ HashMix."""
    mask = 2**64 - 1
    h = 42
    for n in numbers:
        z = (h ^ (n & mask)) + 0x9E3779B97F4A7C15 & mask
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & mask
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB & mask
        h = z ^ (z >> 31)
    return h % SEED_MODULUS


def _normal_features(rng: np.random.Generator, features_size: int, num_train: int,
                     num_valid: int) -> tuple[np.ndarray, np.ndarray]:
    """F i.i.d. N(0,1) per example: every train example in order, then every valid one."""
    x = rng.standard_normal((num_train + num_valid, features_size))
    return x[:num_train], x[num_train:]


def _frozen(a: np.ndarray) -> np.ndarray:
    """`a`, read-only (for arrays kept in `meta`)."""
    a.setflags(write=False)
    return a


def linear_labels(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """w . x for every row x, as the interpreter's dot computes it."""
    return rowsums(x * w[None, :])


def teacher_labels(x: np.ndarray, w: np.ndarray, u: np.ndarray) -> np.ndarray:
    """u . max(W x, 0) for every row x, as the interpreter's matvec and dot compute it."""
    n, f = x.shape
    hidden = rowsums((w[None, :, :] * x[:, None, :]).reshape(n * f, f)).reshape(n, f)
    return rowsums(np.maximum(hidden, 0.0) * u[None, :])


def scalar_linear_regression(features_size: int, num_train: int, num_valid: int,
                             data_seed: int, param_seed: int) -> TaskData:
    """docs/semantics.md §5.3: labels w . x, with w and x i.i.d. N(0,1); no bias, no noise.

    `meta["w"]` holds the weights.
    """
    data_rng = seeded_rng(data_seed + LINEAR_DATA_OFFSET)
    param_rng = seeded_rng(param_seed + LINEAR_PARAM_OFFSET)
    train_x, valid_x = _normal_features(data_rng, features_size, num_train, num_valid)
    w = param_rng.standard_normal(features_size)
    return TaskData(train_x, linear_labels(train_x, w), valid_x, linear_labels(valid_x, w),
                    {"w": _frozen(w)})


def scalar_2layer_nn_regression(features_size: int, num_train: int, num_valid: int,
                                data_seed: int, param_seed: int) -> TaskData:
    """docs/semantics.md §5.4: labels u . max(W x, 0) from a teacher whose units 0 and 2 are zeroed.

    Draws W (F x F, row-major), zeroes its rows 0 and 2, then draws u and zeroes
    u[0] and u[2]. Requires F >= 3. `meta["W"]` and `meta["u"]` hold the teacher.
    """
    if features_size < 3:
        raise DataError(f"scalar_2layer_nn_regression needs features_size >= 3, "
                         f"got {features_size}")
    data_rng = seeded_rng(data_seed + NN_DATA_OFFSET)
    param_rng = seeded_rng(param_seed + NN_PARAM_OFFSET)
    train_x, valid_x = _normal_features(data_rng, features_size, num_train, num_valid)
    w = param_rng.standard_normal((features_size, features_size))
    w[0, :] = 0.0
    w[2, :] = 0.0
    u = param_rng.standard_normal(features_size)
    u[0] = 0.0
    u[2] = 0.0
    return TaskData(train_x, teacher_labels(train_x, w, u), valid_x,
                    teacher_labels(valid_x, w, u), {"W": _frozen(w), "u": _frozen(u)})


def unit_test_constant(features_size: int, num_train: int, num_valid: int,
                       value: float) -> TaskData:
    """Every feature and label equal to `value` (unit_test_zeros/_ones, docs/semantics.md §5.5)."""
    return TaskData(np.full((num_train, features_size), float(value)),
                    np.full(num_train, float(value)),
                    np.full((num_valid, features_size), float(value)),
                    np.full(num_valid, float(value)))


def unit_test_zeros(features_size: int, num_train: int, num_valid: int) -> TaskData:
    """All features 0, all labels 0."""
    return unit_test_constant(features_size, num_train, num_valid, 0.0)


def unit_test_ones(features_size: int, num_train: int, num_valid: int) -> TaskData:
    """All features 1, all labels 1."""
    return unit_test_constant(features_size, num_train, num_valid, 1.0)


def _ramp(features_size: int, count: int, increment: float) -> tuple[np.ndarray, np.ndarray]:
    """Example k has all features k * increment and label k * increment."""
    y = np.arange(count, dtype=np.float64) * float(increment)
    return np.repeat(y[:, None], features_size, axis=1), y


def unit_test_increment(features_size: int, num_train: int, num_valid: int,
                        increment: float = 1.0) -> TaskData:
    """The k-th example has features all k * increment and label k * increment.

    Validation restarts at k = 0.
    """
    train_x, train_y = _ramp(features_size, num_train, increment)
    valid_x, valid_y = _ramp(features_size, num_valid, increment)
    return TaskData(train_x, train_y, valid_x, valid_y)


def unit_test_fixed(train_features: object, train_labels: object, valid_features: object,
                    valid_labels: object) -> TaskData:
    """The explicit examples given (feature rows of length F and scalar labels)."""
    return TaskData(np.array(train_features, dtype=np.float64),
                    np.array(train_labels, dtype=np.float64).reshape(-1),
                    np.array(valid_features, dtype=np.float64),
                    np.array(valid_labels, dtype=np.float64).reshape(-1))


def _balanced_labels(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` labels, ceil(count/2) ones and the rest zeros, in random order."""
    labels = np.zeros(count)
    labels[:(count + 1) // 2] = 1.0
    return rng.permutation(labels)


def binary_gaussian_classification(features_size: int, num_train: int, num_valid: int,
                                   data_seed: int, param_seed: int) -> TaskData:
    """A synthetic stand-in for the projected binary CIFAR tasks (ACCURACY; azc's own).

    Param RNG: the two class means, row c for label c, each coordinate
    N(0, (1/sqrt(F))^2), so the classes lie about sqrt(2) apart and overlap
    (the Bayes accuracy is around 75%). Data RNG, in this order: the train
    labels (balanced, shuffled), the valid labels, the train noise, the valid
    noise; each example is its class mean plus N(0, 1) per feature. Features
    are then standardized with the training split's per-feature mean and
    (population) standard deviation, applied to both splits, as the original's
    StandardScaler. `meta` holds `means`, `feature_mean` and `feature_std`.
    """
    data_rng = seeded_rng(data_seed + GAUSSIAN_DATA_OFFSET)
    param_rng = seeded_rng(param_seed + GAUSSIAN_PARAM_OFFSET)
    means = param_rng.normal(0.0, 1.0 / math.sqrt(features_size), size=(2, features_size))
    train_y = _balanced_labels(data_rng, num_train)
    valid_y = _balanced_labels(data_rng, num_valid)
    train_raw = means[train_y.astype(np.int64)] + data_rng.standard_normal(
        (num_train, features_size))
    valid_raw = means[valid_y.astype(np.int64)] + data_rng.standard_normal(
        (num_valid, features_size))
    center = train_raw.mean(axis=0)
    scale = train_raw.std(axis=0)
    scale[scale == 0.0] = 1.0
    return TaskData((train_raw - center) / scale, train_y, (valid_raw - center) / scale,
                    valid_y, {"means": _frozen(means), "feature_mean": _frozen(center),
                              "feature_std": _frozen(scale)})


def train_order(num_train: int, num_epochs: int, data_seed: int) -> np.ndarray:
    """The E x N training order of docs/semantics.md §5.7.

    Epoch 0 is the natural order 0..N-1; epoch k >= 1 is epoch k-1's order
    shuffled once more, all shuffles drawn from one RNG seeded with
    data_seed + 3274582109 (mod 2**32).
    """
    rng = seeded_rng(data_seed + ORDER_OFFSET)
    order = np.arange(num_train, dtype=np.int64)
    rows = [order.copy()]
    for _ in range(1, num_epochs):
        rng.shuffle(order)
        rows.append(order.copy())
    return np.stack(rows)
