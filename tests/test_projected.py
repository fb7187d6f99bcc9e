"""Projected binary classification tasks: the original's generator steps, seeds, real files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from azc.errors import ConfigError, DataError
from azc.tasks import TaskSpec, build_tasks, load_tasks
from azc.tasks import projected as proj
from azc.tasks.images import DEBIAN_FASHION_MNIST, load_image_dataset
from azc.tasks.projected import (
    HELD_OUT_PAIRS,
    PER_CLASS,
    candidate_pairs,
    choose_pair,
    projected_binary_classification,
    stratified_split,
)

SIDE = 6  # synthetic images are SIDE x SIDE


@pytest.fixture
def fake_images(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple:
    """A synthetic 'mnist' train split of 5100 images per class, in a shuffled order."""
    rng = np.random.default_rng(5)
    labels = rng.permutation(np.repeat(np.arange(10), PER_CLASS + 100))
    # class-dependent brightness so that the classes are separable
    images = np.clip(rng.normal(100 + 10 * labels[:, None, None], 40, (labels.size, SIDE, SIDE)),
                     0, 255).astype(np.uint8)
    calls = []

    def load(name: str, split: str, path: object = None) -> tuple[np.ndarray, np.ndarray]:
        calls.append((name, split))
        return images, labels

    monkeypatch.setattr(proj, "load_image_dataset", load)
    monkeypatch.setattr(proj, "locate_image_dataset", lambda name, path=None: tmp_path)
    monkeypatch.setattr(proj, "_pixels", {})
    monkeypatch.setattr(proj, "_projections", type(proj._projections)())
    monkeypatch.setattr(proj, "_projection_bytes", 0)
    return images, labels, calls


def original_steps(images: np.ndarray, labels: np.ndarray, pos: int, neg: int, seed: int,
                   dim: int) -> tuple[np.ndarray, ...]:
    """The original generator's steps with scikit-learn (only run where it is installed)."""
    sk = pytest.importorskip("sklearn.model_selection")
    pre = pytest.importorskip("sklearn.preprocessing")
    flat = images.reshape(len(images), -1).astype(float)
    data = np.concatenate([flat[labels == pos][:PER_CLASS], flat[labels == neg][:PER_CLASS]])
    y = np.concatenate([labels[labels == pos][:PER_CLASS],
                        labels[labels == neg][:PER_CLASS]]).copy()
    y = (y == pos).astype(float)
    x9, _, y9, _ = sk.train_test_split(data, y, train_size=9000, test_size=1000,
                                       random_state=seed, stratify=y)
    xt, xv, yt, yv = sk.train_test_split(x9, y9, train_size=8000, test_size=1000,
                                         random_state=seed, stratify=y9)
    np.random.seed(seed)
    r = np.random.randn(xt.shape[-1], dim)
    scaler = pre.StandardScaler().fit(xt @ r)
    return (scaler.transform(xt @ r).astype(np.float32), yt,
            scaler.transform(xv @ r).astype(np.float32), yv)


# ---------------------------------------------------------------- the split

def test_stratified_split_golden_values() -> None:
    # values of scikit-learn 1.9's train_test_split(stratify=...) for these inputs
    y = np.array([0] * 7 + [1] * 5 + [2] * 3)
    first, second = stratified_split(y, 9, 4, 3)
    assert first.tolist() == [3, 5, 6, 13, 11, 4, 10, 12, 9]
    assert second.tolist() == [0, 14, 1, 8]
    y = np.concatenate([np.ones(5000), np.zeros(5000)])
    first, second = stratified_split(y, 9000, 1000, 0)
    assert first[:8].tolist() == [511, 7325, 2429, 6735, 6227, 1783, 3625, 4963]
    assert second[:8].tolist() == [8468, 5821, 9417, 7387, 2806, 3084, 1024, 8463]
    assert np.intersect1d(first, second).size == 0 and y[first].sum() == 4500
    # four classes of 5 into 12 + 6: the leftover rows go to classes drawn at random
    first, second = stratified_split(np.repeat(np.arange(4), 5), 12, 6, 99)
    assert first.tolist() == [16, 12, 13, 7, 15, 5, 3, 8, 19, 10, 4, 2]
    assert second.tolist() == [0, 14, 6, 1, 17, 11]


@pytest.mark.parametrize("counts", [(5000, 5000), (37, 61), (3, 4, 5), (2, 9), (4, 4, 4),
                                    (5, 5, 5, 5)])
@pytest.mark.parametrize("seed", [0, 1, 99])
def test_stratified_split_is_scikit_learns(counts: tuple[int, ...], seed: int) -> None:
    sk = pytest.importorskip("sklearn.model_selection")
    y = np.concatenate([np.full(c, i) for i, c in enumerate(counts)])
    a, b = int(y.size * 0.6), int(y.size * 0.3)
    want = sk.train_test_split(np.arange(y.size), train_size=a, test_size=b, random_state=seed,
                               stratify=y)
    got = stratified_split(y, a, b, seed)
    assert [w.tolist() for w in want] == [g.tolist() for g in got]


# ---------------------------------------------------------------- the task data

def test_matches_the_original_generator(fake_images: tuple) -> None:
    images, labels, _ = fake_images
    made = projected_binary_classification("mnist", None, 2, 7, 13, 5, 8000, 1000)
    want = original_steps(images, labels, 2, 7, 13, 5)
    np.testing.assert_allclose(made.train_x, want[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(made.valid_x, want[2], rtol=0, atol=1e-6)
    assert made.train_y.tolist() == want[1].tolist()
    assert made.valid_y.tolist() == want[3].tolist()


def test_documented_properties(fake_images: tuple) -> None:
    made = projected_binary_classification("mnist", None, 1, 4, 3, 8, 8000, 1000)
    assert made.train_x.shape == (8000, 8) and made.valid_x.shape == (1000, 8)
    assert made.train_y.sum() == 4000 and made.valid_y.sum() == 500  # stratified
    np.testing.assert_allclose(made.train_x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(made.train_x.std(axis=0), 1, atol=1e-5)
    assert np.array_equal(made.train_x, made.train_x.astype(np.float32))  # float32 values
    assert made.meta["positive_class"] == 1 and made.meta["projection_seed"] == 3


def test_uses_only_the_first_5000_of_each_class(fake_images: tuple) -> None:
    images, labels, _ = fake_images
    made = projected_binary_classification("mnist", None, 0, 9, 4, 3, 8000, 1000)
    r = proj.projection_matrix(SIDE * SIDE, 3, 4)
    pool = np.concatenate([images[labels == c][:PER_CLASS] for c in (0, 9)])
    projected = pool.reshape(len(pool), -1).astype(float) @ r
    train_raw = projected[stratified_split(np.r_[np.ones(PER_CLASS), np.zeros(PER_CLASS)],
                                           9000, 1000, 4)[0]]
    # undo the standardization with the statistics of the rows the split picks
    picked = train_raw[stratified_split(np.r_[np.ones(PER_CLASS), np.zeros(PER_CLASS)][
        stratified_split(np.r_[np.ones(PER_CLASS), np.zeros(PER_CLASS)], 9000, 1000, 4)[0]],
        8000, 1000, 4)[0]]
    expect = ((picked - picked.mean(0)) / picked.std(0)).astype(np.float32)
    assert np.array_equal(made.train_x, expect)


def test_sizes_take_the_first_rows(fake_images: tuple) -> None:
    full = projected_binary_classification("mnist", None, 3, 5, 8, 4, 8000, 1000)
    part = projected_binary_classification("mnist", None, 3, 5, 8, 4, 100, 10)
    assert np.array_equal(part.train_x, full.train_x[:100])
    assert np.array_equal(part.valid_y, full.valid_y[:10])
    with pytest.raises(DataError, match="at most 8000 train and 1000 valid"):
        projected_binary_classification("mnist", None, 3, 5, 8, 4, 8001, 10)


def test_dataset_read_once_and_projections_cached(fake_images: tuple) -> None:
    for seed in (1, 2):
        for pair in ((0, 1), (0, 2)):
            projected_binary_classification("mnist", None, *pair, seed, 4, 100, 10)
    assert fake_images[2] == [("mnist", "train")]
    assert len(proj._projections) == 6  # classes 0, 1, 2 at two seeds


def test_too_few_images_of_a_class(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    labels = np.repeat(np.arange(10), 10)
    images = np.zeros((100, 2, 2), np.uint8)
    monkeypatch.setattr(proj, "load_image_dataset", lambda *a: (images, labels))
    monkeypatch.setattr(proj, "locate_image_dataset", lambda name, path=None: tmp_path)
    monkeypatch.setattr(proj, "_pixels", {})
    with pytest.raises(DataError, match="class 0 has only 10 training images"):
        projected_binary_classification("mnist", None, 0, 1, 0, 2, 10, 10)


# ---------------------------------------------------------------- pairs and seeds

def test_choose_pair_rules() -> None:
    assert choose_pair(123, 2, 7, candidate_pairs(()), 0, 100) == (2, 7, 23)
    assert choose_pair(5, 2, 7, candidate_pairs(()), 10, 13) == (2, 7, 12)
    pairs = candidate_pairs(HELD_OUT_PAIRS)
    assert len(pairs) == 36 and (4, 6) not in pairs and (0, 1) in pairs
    drawn = {choose_pair(s, None, None, pairs, 0, 100) for s in range(400)}
    assert {p[:2] for p in drawn} == set(pairs)  # all 36 pairs reached
    assert all(0 <= p[2] < 100 for p in drawn)
    assert choose_pair(9, None, None, pairs) == choose_pair(9, None, None, pairs)
    assert candidate_pairs([(6, 4)]) == candidate_pairs([(4, 6)])


def test_spec_pairs_and_held_out(fake_images: tuple) -> None:
    search = TaskSpec("projected_binary_classification", features_size=4,
                      num_train_examples=50, num_valid_examples=20, num_tasks=30,
                      dataset_name="mnist", held_out_pairs=HELD_OUT_PAIRS,
                      max_supported_data_seed=100)
    final = TaskSpec("projected_binary_classification", features_size=4,
                     num_train_examples=50, num_valid_examples=20, num_tasks=30,
                     dataset_name="mnist", pairs=HELD_OUT_PAIRS, max_supported_data_seed=100)
    held = set(HELD_OUT_PAIRS)
    for task in build_tasks([search]):
        assert (task.meta["positive_class"], task.meta["negative_class"]) not in held
    for task in build_tasks([final]):
        assert (task.meta["positive_class"], task.meta["negative_class"]) in held
        assert task.eval_type.name == "ACCURACY"
        assert f"pos={task.meta['positive_class']}" in task.name


def test_toml_form(tmp_path: Path) -> None:
    (tmp_path / "t.toml").write_text(
        '[[tasks]]\nprojected_binary_classification_task = { dataset_name = "cifar10", '
        'path = "data", held_out_pairs = "recommended" }\nfeatures_size = 16\n'
        'num_train_examples = 8000\nnum_valid_examples = 1000\n')
    from azc.tasks import load_task_file
    (spec,) = load_task_file(tmp_path / "t.toml")
    assert spec.path == tmp_path / "data" and spec.held_out_pairs == HELD_OUT_PAIRS
    assert len(spec.candidate_pairs()) == 36
    with pytest.raises(DataError, match="the given path .*data does not exist"):
        build_tasks([spec])
    with pytest.raises(ConfigError, match="needs eval_type ACCURACY"):
        TaskSpec("projected_binary_classification", 16, 10, 10, dataset_name="mnist",
                 eval_type="RMS_ERROR")


# ---------------------------------------------------------------- the real files

def _real_fashion_mnist() -> None:
    """Skip without Debian's dataset-fashion-mnist, except under CI, which installs it."""
    if not DEBIAN_FASHION_MNIST.exists() and not os.environ.get("AZC_DATA_FASHION_MNIST"):
        if os.environ.get("CI"):
            pytest.fail("CI must install dataset-fashion-mnist (.ci/run does)")
        pytest.skip("dataset-fashion-mnist is not installed")


def test_real_fashion_mnist_tasks() -> None:
    _real_fashion_mnist()
    tasks = load_tasks("fashion_mnist")  # 10 tasks, F=16, 8000/1000, 9 pairs held out
    images, labels = load_image_dataset("fashion_mnist", "train")
    for task in tasks[:3]:
        pos, neg, seed = (task.meta[k] for k in ("positive_class", "negative_class",
                                                  "projection_seed"))
        assert (pos, neg) not in set(HELD_OUT_PAIRS) and pos < neg
        assert task.num_train == 8000 and task.num_valid == 1000 and task.features == 16
        assert task.train_y.sum() == 4000 and task.valid_y.sum() == 500
        np.testing.assert_allclose(task.train_x.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(task.train_x.std(axis=0), 1, atol=1e-5)
        # the rows are the first 5000 images of each class, projected and standardized
        r = proj.projection_matrix(784, 16, seed)
        first = np.concatenate([images[labels == c][:PER_CLASS] for c in (pos, neg)])
        raw = first.reshape(len(first), -1).astype(float) @ r
        y = np.r_[np.ones(PER_CLASS), np.zeros(PER_CLASS)]
        pool, _ = stratified_split(y, 9000, 1000, seed)
        train, _ = stratified_split(y[pool], 8000, 1000, seed)
        picked = raw[pool][train]
        np.testing.assert_allclose(task.train_x, (picked - picked.mean(0)) / picked.std(0),
                                   atol=1e-5)
        assert task.train_y.tolist() == y[pool][train].tolist()


# ---------------------------------------------------------------- every dataset, end to end

@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "cifar10-bin", "cifar10-py"])
def test_projected_tasks_from_every_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           dataset: str) -> None:
    """Small files in each official format (40 images per class, the split scaled down),
    read from disk, projected, and run by linear_sgd and the tuned baselines."""
    from azc import evaluate
    from azc.baselines import tune_baselines
    from azc.frontend import parse_file
    from azc.resources import example_file
    from tests.test_baselines import small_config
    from tests.test_images import cifar_pickle, idx_bytes, write_tar
    monkeypatch.setattr(proj, "PER_CLASS", 40)
    monkeypatch.setattr(proj, "FILE_TRAIN", 60)
    monkeypatch.setattr(proj, "FILE_VALID", 10)
    monkeypatch.setattr(proj, "FILE_TEST", 10)
    monkeypatch.setattr(proj, "_pixels", {})
    monkeypatch.setattr(proj, "_projections", type(proj._projections)())
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(10), 45)).astype(np.uint8)
    name = dataset.split("-")[0]
    if name == "cifar10":
        x = rng.integers(0, 256, (labels.size, 3072), dtype=np.uint8)
        x[:, :64] = labels[:, None] * 20  # a learnable signal
        folder = tmp_path / "cifar-10-batches"
        folder.mkdir()
        chunks = np.array_split(np.arange(labels.size), 5)
        for i, rows in enumerate(chunks, start=1):
            if dataset.endswith("bin"):
                rec = np.concatenate([labels[rows, None], x[rows]], axis=1)
                (folder / f"data_batch_{i}.bin").write_bytes(rec.tobytes())
            else:
                (folder / f"data_batch_{i}").write_bytes(
                    cifar_pickle(x[rows], [int(v) for v in labels[rows]]))
        test_name = "test_batch.bin" if dataset.endswith("bin") else "test_batch"
        (folder / test_name).write_bytes(
            np.concatenate([labels[:5, None], x[:5]], axis=1).tobytes()
            if dataset.endswith("bin") else cifar_pickle(x[:5], [int(v) for v in labels[:5]]))
        where = folder
    else:
        x = rng.integers(0, 256, (labels.size, 28, 28), dtype=np.uint8)
        x[:, :4, :] = labels[:, None, None] * 20
        members = {}
        for split, (xs, ys) in {"train": (x, labels), "test": (x[:5], labels[:5])}.items():
            prefix = "train" if split == "train" else "t10k"
            members[f"package/data/{prefix}-images-idx3-ubyte"] = idx_bytes(xs)
            members[f"package/data/{prefix}-labels-idx1-ubyte"] = idx_bytes(ys)
        where = write_tar(tmp_path / f"{name}.tgz", members)
    spec = TaskSpec("projected_binary_classification", features_size=8,
                    num_train_examples=60, num_valid_examples=10, num_tasks=3,
                    dataset_name=name, path=where, held_out_pairs=HELD_OUT_PAIRS,
                    max_supported_data_seed=100)
    tasks = build_tasks([spec])
    assert all(t.num_train == 60 and t.features == 8 for t in tasks)
    assert all(t.train_y.sum() == 30 for t in tasks)
    fit = evaluate(parse_file(example_file("linear_sgd")), tasks).fitness
    assert 0.5 < fit <= 1.0
    cfg, _ = small_config(tmp_path)
    from dataclasses import replace
    cfg = replace(cfg, select_tasks=(spec,), final_tasks=(spec,),
                  search_tasks=(replace(spec, num_tasks=2),))
    monkeypatch.setattr("azc.baselines.LEARNING_RATES", (0.01, 0.1))
    monkeypatch.setattr("azc.baselines.INIT_SCALES", (0.1,))
    tuned = tune_baselines(cfg)
    assert all(0.5 < b.final.fitness <= 1.0 for b in tuned)
