"""The user's own data: reading and checking `.npz` and `.csv` datasets.

`load_dataset` turns a file into a checked `Dataset` (float64 features and
labels, an optional fixed training order, and the evaluation type), or raises
a `DataError` that names the file, the array or cell, and what was expected.

File formats:

* `.npz` (numpy.savez): arrays `train_x` (N x F), `train_y` (N or N x 1),
  `valid_x` (Nv x F), `valid_y` (Nv or Nv x 1), all numeric, all finite.
  Optional `train_order` (E' x N integers, or a single row of N): row e is the
  order of the training examples in epoch e, each row a permutation of
  0..N-1; rows beyond the task's epochs are ignored. Other arrays are ignored.
* `.csv`: a header row; the label column is `label`, else `y`, else the last
  column; an optional `split` column holds `train` or `valid` for each row;
  every other column is a feature. Without a `split` column the rows are
  shuffled with a fixed seed (MT19937 seed 0) and the last `valid_fraction` of
  the shuffled rows (rounded, at least one) are the validation split; both
  splits keep the shuffled order. Every cell must be a finite number.

When no eval type is requested, it is ACCURACY if every label (train and
valid) is 0 or 1, else RMS_ERROR.

This module reads files only; it draws no random numbers except the fixed
CSV split, and knows nothing of TaskSpec.
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from azc.errors import DataError
from azc.tasks.task import EvalType

REQUIRED_ARRAYS = ("train_x", "train_y", "valid_x", "valid_y")
CSV_SPLIT_SEED = 0
LABEL_COLUMNS = ("label", "y")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A checked dataset: float64 features (rows are examples) and labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    valid_x: np.ndarray
    valid_y: np.ndarray
    eval_type: EvalType
    train_order: np.ndarray | None  # E x N int64 when the file fixes the order
    source: str

    @property
    def features_size(self) -> int:
        """F, the number of features."""
        return int(self.train_x.shape[1])


def infer_eval_type(train_y: np.ndarray, valid_y: np.ndarray) -> EvalType:
    """ACCURACY when every label is 0 or 1, else RMS_ERROR."""
    labels = np.concatenate([np.ravel(train_y), np.ravel(valid_y)])
    binary = bool(np.all((labels == 0.0) | (labels == 1.0)))
    return EvalType.ACCURACY if binary else EvalType.RMS_ERROR


def load_dataset(path: str | Path, *, features_size: int | None = None,
                 num_train_examples: int | None = None,
                 num_valid_examples: int | None = None, num_train_epochs: int = 1,
                 eval_type: EvalType | str | None = None,
                 valid_fraction: float = 0.2) -> Dataset:
    """Read and check a `.npz` or `.csv` dataset (see the module docstring).

    `features_size`, when given, must equal the file's F. `num_train_examples`
    and `num_valid_examples`, when given, select the first rows of each split
    and must not exceed what the file holds. A `train_order` in the file must
    have at least `num_train_epochs` rows; it is cut to that many.
    """
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise DataError(f"dataset file not found: {src}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = _read_npz(path)
    elif suffix == ".csv":
        arrays = _read_csv(path, valid_fraction)
    else:
        raise DataError(f"{src}: a dataset must be a .npz or .csv file, got '{path.suffix}'")
    train_x, train_y = _check_split(src, "train", arrays["train_x"], arrays["train_y"])
    valid_x, valid_y = _check_split(src, "valid", arrays["valid_x"], arrays["valid_y"])
    if train_x.shape[1] != valid_x.shape[1]:
        raise DataError(f"{src}: train_x has {train_x.shape[1]} features but valid_x has "
                        f"{valid_x.shape[1]}")
    if features_size is not None and features_size != train_x.shape[1]:
        raise DataError(f"{src}: features_size is {features_size} but the data has "
                        f"{train_x.shape[1]} features")
    file_train = train_x.shape[0]
    train_x, train_y = _first_rows(src, "train", train_x, train_y, num_train_examples)
    valid_x, valid_y = _first_rows(src, "valid", valid_x, valid_y, num_valid_examples)
    order = arrays.get("train_order")
    if order is not None:
        if train_x.shape[0] != file_train:
            raise DataError(f"{src}: the file fixes train_order for its {file_train} train "
                            f"examples, so num_train_examples must be {file_train}, "
                            f"got {train_x.shape[0]}")
        order = _check_train_order(src, order, file_train, num_train_epochs)
    if eval_type is None:
        resolved = infer_eval_type(train_y, valid_y)
    else:
        resolved = EvalType.parse(eval_type)
    return Dataset(train_x, train_y, valid_x, valid_y, resolved, order, src)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The four required arrays (and train_order if present) of an .npz file."""
    src = str(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{src}: not a valid .npz file ({exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{src}: not a valid .npz file (it holds a single array; save the "
                        f"arrays with numpy.savez(path, train_x=..., train_y=..., "
                        f"valid_x=..., valid_y=...))")
    with npz:
        present = list(npz.files)
        missing = [name for name in REQUIRED_ARRAYS if name not in present]
        if missing:
            have = ", ".join(present) if present else "no arrays"
            raise DataError(f"{src}: missing array(s) {', '.join(missing)}; the file has "
                            f"{have} (expected {', '.join(REQUIRED_ARRAYS)}, optional "
                            f"train_order)")
        wanted = [*REQUIRED_ARRAYS, *(["train_order"] if "train_order" in present else [])]
        arrays = {}
        for name in wanted:
            try:
                arrays[name] = npz[name]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise DataError(f"{src}: cannot read array {name} ({exc}); arrays must be "
                                f"numeric") from None
    return arrays


def _check_numeric(src: str, name: str, a: np.ndarray) -> None:
    """Raise unless `a` holds real numbers (bool, integer or floating point)."""
    if a.dtype.kind not in "biuf":
        raise DataError(f"{src}: {name} must be numeric (bool, integer or float), "
                        f"got dtype {a.dtype}")


def _check_finite(src: str, name: str, a: np.ndarray) -> None:
    """Raise if `a` holds NaN or infinite values, naming the first one."""
    bad = ~np.isfinite(a)
    if not bad.any():
        return
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    where = f"row {first[0]}" if len(first) == 1 else f"row {first[0]}, column {first[1]}"
    raise DataError(f"{src}: {name} holds {int(bad.sum())} NaN or infinite value(s), the "
                    f"first at {where} (value {a[first]})")


def _check_split(src: str, split: str, x: np.ndarray,
                 y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Checked float64 features (N x F) and labels (N) of one split."""
    xn, yn = f"{split}_x", f"{split}_y"
    _check_numeric(src, xn, x)
    _check_numeric(src, yn, y)
    if x.ndim != 2:
        raise DataError(f"{src}: {xn} must be 2-D (examples x features), got shape "
                        f"{x.shape}" + (" (for one feature use x.reshape(-1, 1))"
                                        if x.ndim == 1 else ""))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{src}: {yn} must have shape (N,) or (N, 1), got {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise DataError(f"{src}: {xn} has {x.shape[0]} examples but {yn} has {y.shape[0]} "
                        f"labels")
    if x.shape[0] == 0:
        raise DataError(f"{src}: {xn} has no examples (expected at least 1)")
    if x.shape[1] == 0:
        raise DataError(f"{src}: {xn} has no features (expected at least 1)")
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    _check_finite(src, yn, y)
    _check_finite(src, xn, x)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def _first_rows(src: str, split: str, x: np.ndarray, y: np.ndarray,
                count: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` examples of a split (all of them when count is None)."""
    if count is None:
        return x, y
    key = "num_train_examples" if split == "train" else "num_valid_examples"
    if count < 1:
        raise DataError(f"{src}: {key} must be at least 1, got {count}")
    if count > x.shape[0]:
        raise DataError(f"{src}: {key} is {count} but the file has only {x.shape[0]} "
                        f"{split} examples")
    return x[:count], y[:count]


def _check_train_order(src: str, order: np.ndarray, num_train: int,
                       num_epochs: int) -> np.ndarray:
    """The first `num_epochs` rows of a file's train_order, each checked to be a permutation."""
    if order.dtype.kind not in "iu":
        raise DataError(f"{src}: train_order must hold integer example indices, got dtype "
                        f"{order.dtype}")
    if order.ndim == 1:
        order = order[None, :]
    if order.ndim != 2 or order.shape[1] != num_train:
        raise DataError(f"{src}: train_order must have shape (epochs, {num_train}) - one row "
                        f"of {num_train} example indices per epoch - got {order.shape}")
    if order.shape[0] < num_epochs:
        raise DataError(f"{src}: train_order has {order.shape[0]} row(s) but the task has "
                        f"{num_epochs} epochs (one row per epoch needed)")
    order = order[:num_epochs].astype(np.int64)
    out_of_range = (order < 0) | (order >= num_train)
    if out_of_range.any():
        row, col = (int(i) for i in np.argwhere(out_of_range)[0])
        raise DataError(f"{src}: train_order row {row} holds index {order[row, col]} at "
                        f"position {col}, out of range 0..{num_train - 1}")
    expected = np.arange(num_train)
    for row, indices in enumerate(order):
        if not np.array_equal(np.sort(indices), expected):
            values, counts = np.unique(indices, return_counts=True)
            dup = int(values[counts > 1][0])
            raise DataError(f"{src}: train_order row {row} is not a permutation of "
                            f"0..{num_train - 1} (index {dup} appears "
                            f"{int(counts[counts > 1][0])} times)")
    return np.ascontiguousarray(order)


def _read_csv(path: Path, valid_fraction: float) -> dict[str, np.ndarray]:
    """The train/valid arrays of a CSV file (see the module docstring)."""
    src = str(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            header, rows, lines = _csv_rows(src, f)
    except UnicodeDecodeError as exc:
        raise DataError(f"{src}: not a UTF-8 text file ({exc})") from None
    except csv.Error as exc:
        raise DataError(f"{src}: not a valid CSV file ({exc})") from None
    names = [name.strip() for name in header]
    lower = [name.lower() for name in names]
    for i, name in enumerate(lower):
        if not name:
            raise DataError(f"{src}: header column {i + 1} has no name")
        if name in lower[:i]:
            raise DataError(f"{src}: header names column '{names[i]}' twice")
    split_col = lower.index("split") if "split" in lower else None
    label_col = next((lower.index(c) for c in LABEL_COLUMNS if c in lower), None)
    if label_col is None:
        others = [i for i in range(len(names)) if i != split_col]
        label_col = others[-1] if others else None
    if label_col is None:
        raise DataError(f"{src}: no label column (name one 'label' or 'y', or make it the "
                        f"last column)")
    feature_cols = [i for i in range(len(names)) if i not in (label_col, split_col)]
    if not feature_cols:
        raise DataError(f"{src}: no feature columns (header: {', '.join(names)}); every "
                        f"column other than the label and split columns is a feature")
    if not rows:
        raise DataError(f"{src}: no data rows after the header")
    values = np.empty((len(rows), len(names)))
    for r, (row, line) in enumerate(zip(rows, lines, strict=True)):
        if len(row) != len(names):
            raise DataError(f"{src}: line {line} has {len(row)} cells but the header has "
                            f"{len(names)} columns")
        for c in range(len(names)):
            if c != split_col:
                values[r, c] = _csv_number(src, line, names[c], row[c])
    x = values[:, feature_cols]
    y = values[:, label_col]
    if split_col is not None:
        is_train = np.array([_csv_split(src, line, row[split_col])
                             for row, line in zip(rows, lines, strict=True)])
        train, valid = np.flatnonzero(is_train), np.flatnonzero(~is_train)
        if len(train) == 0 or len(valid) == 0:
            raise DataError(f"{src}: the split column marks {len(train)} row(s) 'train' and "
                            f"{len(valid)} 'valid'; each split needs at least one row")
    else:
        train, valid = _csv_random_split(src, len(rows), valid_fraction)
    return {"train_x": x[train], "train_y": y[train], "valid_x": x[valid], "valid_y": y[valid]}


def _csv_rows(src: str, f) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the non-blank data rows and the file line of each row."""
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        raise DataError(f"{src}: the CSV file is empty (a header row is required)")
    rows, lines = [], []
    for row in reader:
        if any(cell.strip() for cell in row):
            rows.append(row)
            lines.append(reader.line_num)
    return header, rows, lines


def _csv_number(src: str, line: int, column: str, cell: str) -> float:
    """A cell as a finite float, or a DataError naming the line and column."""
    try:
        value = float(cell.strip())
    except ValueError:
        raise DataError(f"{src}: line {line}, column '{column}': {cell!r} is not a number"
                        ) from None
    if not np.isfinite(value):
        raise DataError(f"{src}: line {line}, column '{column}': {cell!r} is not a finite "
                        f"number (NaN and infinity are not allowed)")
    return value


def _csv_split(src: str, line: int, cell: str) -> bool:
    """True for 'train', False for 'valid'; anything else is an error."""
    value = cell.strip().lower()
    if value not in ("train", "valid"):
        raise DataError(f"{src}: line {line}, column 'split': {cell!r} is not 'train' or "
                        f"'valid'")
    return value == "train"


def _csv_random_split(src: str, num_rows: int,
                      valid_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the train and valid splits: a seed-0 shuffle, valid at the end."""
    if not 0.0 < valid_fraction < 1.0:
        raise DataError(f"{src}: valid_fraction must be between 0 and 1, got {valid_fraction}")
    if num_rows < 2:
        raise DataError(f"{src}: {num_rows} data row(s) cannot be split into train and valid "
                        f"(add a 'split' column or more rows)")
    num_valid = min(num_rows - 1, max(1, round(num_rows * valid_fraction)))
    rng = np.random.Generator(np.random.MT19937(CSV_SPLIT_SEED))
    shuffled = rng.permutation(num_rows)
    return shuffled[:num_rows - num_valid], shuffled[num_rows - num_valid:]
