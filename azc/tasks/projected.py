"""Projected binary classification on real images (docs/semantics.md §5.6, docs/datasets.md §6).

One task is one class pair of an image dataset (MNIST, Fashion-MNIST or
CIFAR-10) and one data seed s, built with the steps of the original's dataset
generator:

1. the first `PER_CLASS` (5000) images of each class of the pair, in the
   training split's file order, positive class first, flattened to raw pixel
   values 0..255 (not rescaled);
2. labels: 1 for the positive class (the smaller class id), 0 for the other;
3. a stratified split with `RandomState(s)` into 9000 (train + valid) and
   1000 test examples, then of the 9000 into 8000 train and 1000 valid
   (`stratified_split`: the algorithm of scikit-learn's StratifiedShuffleSplit,
   which the original calls through train_test_split);
4. the projection: `RandomState(s).randn(pixels, F)`, features = pixels . R;
5. standardization with the per-feature mean and population standard deviation
   of the projected training split, applied to both splits;
6. float32 rounding (the original's files store float32), then the first N
   train and Nv valid rows.

The projection commutes with the row selection, so each class's 5000 images are
projected once per (seed, F) and cached (`_projection`); the decoded classes of
a dataset are cached too (`_class_pixels`). The pair and the seed of a task come
from its data seed (`choose_pair`). Nothing here reads a spec: `azc.tasks.spec`
calls `projected_binary_classification` with checked values.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from azc.errors import DataError
from azc.tasks.generators import TaskData, hash_mix, seeded_rng
from azc.tasks.images import NUM_CLASSES, load_image_dataset, locate_image_dataset

PER_CLASS = 5000  # images taken from the front of each class
FILE_TRAIN = 8000  # the sizes of the original's generated files
FILE_VALID = 1000
FILE_TEST = 1000
PAIR_SALT = 856572777  # mixed with the data seed to choose a random pair
DEFAULT_MIN_SEED = 0  # the original's min/max_supported_data_seed defaults
DEFAULT_MAX_SEED = 10
# The 9 pairs the original recommends holding out of search (its task.proto).
HELD_OUT_PAIRS = ((4, 6), (3, 5), (8, 9), (3, 8), (0, 9), (2, 9), (1, 8), (3, 6), (0, 5))
CLASS_PAIRS = tuple((i, j) for i in range(NUM_CLASSES) for j in range(i + 1, NUM_CLASSES))
PROJECTION_CACHE_BYTES = 256 << 20

_lock = threading.Lock()
_pixels: dict[tuple[str, str], dict[int, np.ndarray]] = {}
_projections: OrderedDict[tuple, np.ndarray] = OrderedDict()
_projection_bytes = 0


def candidate_pairs(held_out: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The 45 pairs (i < j) of class ids in order, minus `held_out` (taken as (min, max))."""
    out = {(min(p), max(p)) for p in held_out}
    return [p for p in CLASS_PAIRS if p not in out]


def choose_pair(data_seed: int, positive: int | None, negative: int | None,
                pairs: Sequence[tuple[int, int]], min_seed: int = DEFAULT_MIN_SEED,
                max_seed: int = DEFAULT_MAX_SEED) -> tuple[int, int, int]:
    """(positive class, negative class, projection seed) of the task with `data_seed`.

    With both classes given, the seed is min_seed + data_seed mod (max_seed -
    min_seed). With neither, an RNG seeded from a mix of (856572777, data_seed)
    draws the pair uniformly from `pairs` (the candidates, e.g.
    `candidate_pairs(held_out)`) and then the seed uniformly from
    [min_seed, max_seed).
    """
    span = max_seed - min_seed
    if positive is not None and negative is not None:
        return positive, negative, min_seed + data_seed % span
    if not pairs:
        raise DataError("projected_binary_classification: held_out_pairs leaves no class pair")
    rng = seeded_rng(hash_mix(PAIR_SALT, data_seed))
    pos, neg = pairs[int(rng.integers(0, len(pairs)))]
    return pos, neg, int(rng.integers(min_seed, max_seed))


def approximate_mode(counts: np.ndarray, draws: int,
                     rng: np.random.RandomState) -> np.ndarray:
    """How many of `draws` to take from each class, in proportion to `counts`.

    Each class gets the floor of its share; the draws left over go to the
    classes with the largest remainders, ties broken at random with `rng`
    (scikit-learn's rule, so that the same RandomState draws are consumed).
    """
    share = counts / counts.sum() * draws
    taken = np.floor(share)
    left = int(draws - taken.sum())
    if left > 0:
        remainder = share - taken
        for value in np.sort(np.unique(remainder))[::-1]:
            (where,) = np.nonzero(remainder == value)
            now = min(len(where), left)
            taken[where[rng.permutation(len(where))[:now]]] += 1
            left -= now
            if left == 0:
                break
    return taken.astype(np.int64)


def stratified_split(labels: np.ndarray, num_first: int, num_second: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified split of `labels` into `num_first` and `num_second` rows.

    scikit-learn's `train_test_split(..., train_size=num_first,
    test_size=num_second, random_state=seed, stratify=labels)`, step for step
    on one `RandomState(seed)`: per-class counts for each part
    (`approximate_mode`), a permutation of each class's rows (classes in
    sorted label order, rows in index order), then a permutation of each part.
    """
    classes, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse)
    members = np.split(np.argsort(inverse, kind="mergesort"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    first_counts = approximate_mode(counts, num_first, rng)
    second_counts = approximate_mode(counts - first_counts, num_second, rng)
    first: list[np.ndarray] = []
    second: list[np.ndarray] = []
    for c in range(len(classes)):
        rows = members[c][rng.permutation(counts[c])]
        first.append(rows[:first_counts[c]])
        second.append(rows[first_counts[c]:first_counts[c] + second_counts[c]])
    return (rng.permutation(np.concatenate(first)),
            rng.permutation(np.concatenate(second)))


def _class_pixels(dataset: str, where: Path) -> dict[int, np.ndarray]:
    """The first PER_CLASS training images of each class, flattened (uint8), cached."""
    key = (dataset, str(where.resolve()))
    with _lock:
        cached = _pixels.get(key)
    if cached is not None:
        return cached
    images, labels = load_image_dataset(dataset, "train", where)
    flat = images.reshape(images.shape[0], -1)
    out = {}
    for c in range(NUM_CLASSES):
        rows = flat[labels == c][:PER_CLASS]
        if rows.shape[0] < PER_CLASS:
            raise DataError(f"dataset {dataset} at {where}: class {c} has only "
                            f"{rows.shape[0]} training images; projected tasks need "
                            f"{PER_CLASS} of each class")
        rows = np.ascontiguousarray(rows)
        rows.setflags(write=False)
        out[c] = rows
    with _lock:
        if len(_pixels) >= 4:
            _pixels.pop(next(iter(_pixels)))
        _pixels[key] = out
    return out


def projection_matrix(pixels: int, features: int, seed: int) -> np.ndarray:
    """The original's random projection: `numpy.random.seed(seed); randn(pixels, features)`."""
    return np.random.RandomState(seed).randn(pixels, features)


def _projection(dataset: str, where: Path, cls: int, seed: int, features: int) -> np.ndarray:
    """The class's PER_CLASS images times the seed's projection matrix, cached by size."""
    global _projection_bytes
    key = (dataset, str(where.resolve()), cls, seed, features)
    with _lock:
        hit = _projections.get(key)
        if hit is not None:
            _projections.move_to_end(key)
            return hit
    pixels = _class_pixels(dataset, where)[cls]
    projected = pixels.astype(np.float64) @ projection_matrix(pixels.shape[1], features, seed)
    projected.setflags(write=False)
    with _lock:
        _projections[key] = projected
        _projection_bytes += projected.nbytes
        while _projection_bytes > PROJECTION_CACHE_BYTES and len(_projections) > 1:
            _, old = _projections.popitem(last=False)
            _projection_bytes -= old.nbytes
    return projected


def projected_binary_classification(dataset: str, path: str | Path | None, positive: int,
                                    negative: int, seed: int, features: int, num_train: int,
                                    num_valid: int) -> TaskData:
    """The task of one class pair and projection seed (the steps in the module doc).

    `positive` < `negative` are class ids; `path` is where the dataset is (None:
    found by name, docs/datasets.md §2). Needs num_train <= 8000 and
    num_valid <= 1000, the sizes of the original's files.
    """
    if num_train > FILE_TRAIN or num_valid > FILE_VALID:
        raise DataError(f"projected_binary_classification: at most {FILE_TRAIN} train and "
                        f"{FILE_VALID} valid examples per task (the original's files), got "
                        f"{num_train} and {num_valid}")
    where = locate_image_dataset(dataset, path)
    x = np.concatenate([_projection(dataset, where, positive, seed, features),
                        _projection(dataset, where, negative, seed, features)])
    y = np.concatenate([np.ones(PER_CLASS), np.zeros(PER_CLASS)])
    pool, _test = stratified_split(y, FILE_TRAIN + FILE_VALID, FILE_TEST, seed)
    x, y = x[pool], y[pool]
    train, valid = stratified_split(y, FILE_TRAIN, FILE_VALID, seed)
    train_x, valid_x = x[train], x[valid]
    mean = train_x.mean(axis=0)
    std = train_x.std(axis=0)
    std[std == 0.0] = 1.0
    train_x = ((train_x - mean) / std).astype(np.float32)[:num_train]
    valid_x = ((valid_x - mean) / std).astype(np.float32)[:num_valid]
    return TaskData(train_x.astype(np.float64), y[train][:num_train],
                    valid_x.astype(np.float64), y[valid][:num_valid],
                    {"dataset": dataset, "positive_class": positive,
                     "negative_class": negative, "projection_seed": seed,
                     "source": str(where)})
