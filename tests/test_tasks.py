"""Tests of azc.tasks: seed rules, generators, epoch orders, datasets, TOML specs, load_tasks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from azc.errors import ConfigError, DataError
from azc.ops import rowsums
from azc.tasks import (
    DEFAULT_DATA_SEEDS,
    DEFAULT_PARAM_SEEDS,
    EvalType,
    TaskSpec,
    build_tasks,
    builtin_task_names,
    expand_seeds,
    load_dataset,
    load_task_file,
    load_tasks,
    parse_task_specs,
    randomize_seeds,
    train_order,
)
from azc.tasks import generators as gen


def linear_spec(**kw) -> TaskSpec:
    """A small linear regression spec."""
    args = {"features_size": 4, "num_train_examples": 20, "num_valid_examples": 10}
    args.update(kw)
    return TaskSpec("scalar_linear_regression", **args)


# ---------------------------------------------------------------- seeds

def test_default_seeds_continue_after_the_list_with_duplicates() -> None:
    spec = linear_spec(num_tasks=12)
    assert spec.param_seed_list() == [*DEFAULT_PARAM_SEEDS, 1004, 1005, 1006, 1007]
    assert spec.data_seed_list() == [*DEFAULT_DATA_SEEDS, 11004, 11005, 11006, 11007]
    params = spec.param_seed_list()
    assert params.count(1006) == 2 and params.count(1007) == 2  # duplicates are reproduced


def test_given_seeds_continue_by_one_and_wrap_mod_2_32() -> None:
    assert expand_seeds([5, 3], DEFAULT_PARAM_SEEDS, 4) == [5, 3, 4, 5]
    assert expand_seeds([2**32 - 1], DEFAULT_PARAM_SEEDS, 3) == [2**32 - 1, 0, 1]
    assert expand_seeds([7, 8, 9], DEFAULT_PARAM_SEEDS, 2) == [7, 8]
    spec = linear_spec(num_tasks=3, data_seeds=(1000000,), param_seeds=(2000000,))
    assert spec.data_seed_list() == [1000000, 1000001, 1000002]
    assert spec.param_seed_list() == [2000000, 2000001, 2000002]


def test_randomize_seeds_is_deterministic_and_changes_seeds() -> None:
    specs = [linear_spec(num_tasks=3), linear_spec(num_tasks=2, data_seeds=(5,))]
    a = randomize_seeds(specs, 7)
    assert a == randomize_seeds(specs, 7)
    assert a != randomize_seeds(specs, 8)
    for spec, new in zip(specs, a, strict=True):
        assert len(new.param_seeds) == len(new.data_seeds) == spec.num_tasks
        assert new.param_seed_list() != spec.param_seed_list()
        assert all(1 < s < 2**32 - 1 for s in (*new.param_seeds, *new.data_seeds))
    # streams continue across specs: the second spec does not repeat the first's seeds
    assert a[1].param_seeds != a[0].param_seeds[:2]
    assert randomize_seeds(specs[:1], 7)[0] == a[0]


def test_randomize_seeds_leaves_datasets_alone(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz")
    ds = TaskSpec("dataset", dataset=path)
    assert randomize_seeds([ds, linear_spec()], 1)[0] is ds


# ---------------------------------------------------------------- generators

def test_linear_labels_are_rowsums_of_x_times_w() -> None:
    spec = linear_spec(num_tasks=2)
    tasks = build_tasks([spec])
    for task in tasks:
        w = task.meta["w"]
        assert np.array_equal(task.train_y, rowsums(task.train_x * w))
        assert np.array_equal(task.valid_y, rowsums(task.valid_x * w))
        assert task.eval_type == EvalType.RMS_ERROR
    assert not np.array_equal(tasks[0].meta["w"], tasks[1].meta["w"])


def test_linear_features_train_then_valid_from_the_data_rng() -> None:
    d = gen.scalar_linear_regression(3, 5, 2, data_seed=11, param_seed=22)
    x = gen.seeded_rng(11 + gen.LINEAR_DATA_OFFSET).standard_normal((7, 3))
    assert np.array_equal(d.train_x, x[:5]) and np.array_equal(d.valid_x, x[5:])
    w = gen.seeded_rng(22 + gen.LINEAR_PARAM_OFFSET).standard_normal(3)
    assert np.array_equal(d.meta["w"], w)


def test_same_seeds_give_identical_arrays() -> None:
    for kind in ("scalar_linear_regression", "scalar_2layer_nn_regression",
                 "binary_gaussian_classification"):
        spec = TaskSpec(kind, features_size=5, num_train_examples=30, num_valid_examples=10,
                        num_tasks=2, num_train_epochs=3)
        a, b = build_tasks([spec]), build_tasks([spec])
        for ta, tb in zip(a, b, strict=True):
            for name in ("train_x", "train_y", "valid_x", "valid_y", "train_order"):
                assert np.array_equal(getattr(ta, name), getattr(tb, name)), (kind, name)
        assert not np.array_equal(a[0].train_x, a[1].train_x)


def test_teacher_has_zeroed_units_and_matching_labels() -> None:
    spec = TaskSpec("scalar_2layer_nn_regression", features_size=5, num_train_examples=50,
                    num_valid_examples=20)
    (task,) = build_tasks([spec])
    w, u = task.meta["W"], task.meta["u"]
    assert w.shape == (5, 5) and u.shape == (5,)
    assert not w[0].any() and not w[2].any() and u[0] == 0.0 and u[2] == 0.0
    assert w[1].all() and u[1] != 0.0
    for x, y in ((task.train_x, task.train_y), (task.valid_x, task.valid_y)):
        hidden = np.stack([rowsums(w * row[None, :]) for row in x])
        assert np.array_equal(y, rowsums(np.maximum(hidden, 0.0) * u))
    assert (task.train_y != 0).any()


def test_teacher_needs_three_features() -> None:
    with pytest.raises(ConfigError, match="features_size >= 3"):
        TaskSpec("scalar_2layer_nn_regression", features_size=2, num_train_examples=5,
                 num_valid_examples=5)


def test_unit_test_tasks() -> None:
    common = {"features_size": 3, "num_train_examples": 4, "num_valid_examples": 2,
              "eval_type": "RMS_ERROR"}
    (zeros,) = build_tasks([TaskSpec("unit_test_zeros", **common)])
    assert not zeros.train_x.any() and not zeros.valid_y.any()
    (ones,) = build_tasks([TaskSpec("unit_test_ones", **common)])
    assert (ones.train_x == 1).all() and (ones.valid_y == 1).all()
    (inc,) = build_tasks([TaskSpec("unit_test_increment", increment=0.5, **common)])
    assert inc.train_y.tolist() == [0.0, 0.5, 1.0, 1.5]
    assert inc.train_x[3].tolist() == [1.5, 1.5, 1.5]
    assert inc.valid_y.tolist() == [0.0, 0.5]  # validation restarts at 0
    fixed = TaskSpec("unit_test_fixed", eval_type="ACCURACY",
                     train_features=((1, 2), (3, 4)), train_labels=(1, (0,)),
                     valid_features=((5, 6),), valid_labels=(1,))
    assert (fixed.features_size, fixed.num_train_examples, fixed.num_valid_examples) == (2, 2, 1)
    (task,) = build_tasks([fixed])
    assert task.train_x.tolist() == [[1, 2], [3, 4]] and task.train_y.tolist() == [1, 0]
    assert task.valid_x.tolist() == [[5, 6]] and task.eval_type == EvalType.ACCURACY


def test_unit_test_tasks_need_an_eval_type() -> None:
    with pytest.raises(ConfigError, match="eval_type is required"):
        TaskSpec("unit_test_zeros", features_size=1, num_train_examples=1, num_valid_examples=1)


def test_binary_gaussian_classification() -> None:
    d = gen.binary_gaussian_classification(8, 400, 101, data_seed=1, param_seed=2)
    assert set(np.unique(d.train_y)) == {0.0, 1.0}
    assert d.train_y.sum() == 200 and d.valid_y.sum() == 51  # equal classes
    assert not np.array_equal(d.train_y[:200], np.ones(200))  # shuffled
    assert np.allclose(d.train_x.mean(axis=0), 0.0) and np.allclose(d.train_x.std(axis=0), 1.0)
    raw = d.valid_x * d.meta["feature_std"] + d.meta["feature_mean"]
    assert np.allclose(raw.mean(axis=0), d.meta["means"][d.valid_y.astype(int)].mean(axis=0),
                       atol=0.5)
    big = gen.binary_gaussian_classification(8, 2000, 2000, data_seed=3, param_seed=4)
    m1 = big.train_x[big.train_y == 1].mean(axis=0)
    m0 = big.train_x[big.train_y == 0].mean(axis=0)
    pred = ((big.valid_x - m0) ** 2).sum(1) > ((big.valid_x - m1) ** 2).sum(1)
    accuracy = (pred == (big.valid_y == 1)).mean()
    assert 0.55 < accuracy < 0.95  # learnable but overlapping
    with pytest.raises(ConfigError, match="ACCURACY"):
        TaskSpec("binary_gaussian_classification", features_size=2, num_train_examples=5,
                 num_valid_examples=5, eval_type="RMS_ERROR")


# ---------------------------------------------------------------- epoch orders

def test_epoch_orders() -> None:
    order = train_order(50, 4, data_seed=11001)
    assert order.shape == (4, 50) and order.dtype == np.int64
    assert order[0].tolist() == list(range(50))
    for row in order[1:]:
        assert sorted(row.tolist()) == list(range(50))
    assert len({tuple(row) for row in order}) == 4
    assert np.array_equal(order, train_order(50, 4, data_seed=11001))
    assert np.array_equal(train_order(50, 2, data_seed=11001), order[:2])


def test_epoch_orders_are_successive_shuffles() -> None:
    rng = gen.seeded_rng(11001 + gen.ORDER_OFFSET)
    expected = np.arange(10)
    rng.shuffle(expected)
    first = expected.copy()
    rng.shuffle(expected)
    order = train_order(10, 3, data_seed=11001)
    assert np.array_equal(order[1], first) and np.array_equal(order[2], expected)


def test_tasks_are_indexed_in_spec_order_and_named() -> None:
    specs = [linear_spec(num_tasks=2),
             TaskSpec("unit_test_ones", features_size=2, num_train_examples=3,
                      num_valid_examples=1, eval_type="RMS_ERROR", num_train_epochs=2)]
    tasks = build_tasks(specs, start_index=5)
    assert [t.index for t in tasks] == [5, 6, 7]
    assert tasks[0].name == "scalar_linear_regression[F=4, param_seed=1001, data_seed=11001]"
    assert tasks[1].name == "scalar_linear_regression[F=4, param_seed=1012, data_seed=11012]"
    assert tasks[2].name.startswith("unit_test_ones[F=2")
    assert tasks[2].train_order.shape == (2, 3)
    assert tasks[0].data_seed == 11001 and tasks[0].param_seed == 1001


# ---------------------------------------------------------------- npz datasets

def write_npz(path: Path, **overrides) -> Path:
    """An npz dataset with 6 train and 3 valid examples of 2 features, with overrides."""
    rng = np.random.default_rng(0)
    arrays = {"train_x": rng.normal(size=(6, 2)), "train_y": rng.normal(size=6),
              "valid_x": rng.normal(size=(3, 2)), "valid_y": rng.normal(size=(3, 1))}
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_npz_round_trip_with_train_order(tmp_path: Path) -> None:
    order = np.array([[5, 4, 3, 2, 1, 0], [0, 2, 4, 1, 3, 5], [1, 0, 2, 3, 4, 5]])
    path = write_npz(tmp_path / "d.npz", train_order=order, extra=np.zeros(3))
    with np.load(path) as f:
        saved = {k: f[k] for k in f.files}
    tasks = load_tasks(str(path), num_train_epochs=2)
    (task,) = tasks
    assert np.array_equal(task.train_x, saved["train_x"])
    assert np.array_equal(task.train_y, saved["train_y"])
    assert np.array_equal(task.valid_y, saved["valid_y"][:, 0])
    assert np.array_equal(task.train_order, order[:2])
    assert task.eval_type == EvalType.RMS_ERROR and task.num_train_epochs == 2
    assert task.name.startswith("dataset[d.npz, F=2")


def test_npz_without_order_uses_shuffles_and_infers_accuracy(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", train_y=np.array([0, 1, 1, 0, 1, 0]),
                     valid_y=np.array([1.0, 0.0, 1.0]))
    (task,) = load_tasks(str(path), num_train_epochs=3)
    assert task.eval_type == EvalType.ACCURACY
    assert np.array_equal(task.train_order, train_order(6, 3, task.data_seed))
    (task,) = load_tasks(str(path), eval_type="RMS_ERROR")
    assert task.eval_type == EvalType.RMS_ERROR


def test_dataset_takes_first_rows(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz")
    d = load_dataset(path, num_train_examples=4, num_valid_examples=2)
    assert d.train_x.shape == (4, 2) and d.valid_y.shape == (2,)
    with pytest.raises(DataError, match="num_train_examples is 7 but the file has only 6"):
        load_dataset(path, num_train_examples=7)


BAD_NPZ = [
    ({"valid_y": None}, "missing array\\(s\\) valid_y; the file has train_x, train_y, valid_x"),
    ({"train_x": np.zeros(6)}, "train_x must be 2-D"),
    ({"train_x": np.zeros((6, 2, 1))}, "train_x must be 2-D"),
    ({"train_y": np.zeros((6, 2))}, "train_y must have shape \\(N,\\) or \\(N, 1\\)"),
    ({"train_y": np.zeros(5)}, "train_x has 6 examples but train_y has 5 labels"),
    ({"valid_x": np.zeros((3, 3))}, "train_x has 2 features but valid_x has 3"),
    ({"train_y": np.array([0, 1, np.nan, 0, 0, 0.0])}, "train_y holds 1 NaN or infinite"),
    ({"valid_x": np.array([[0, 1], [2, np.inf], [0, 0]])},
     "valid_x holds 1 NaN or infinite value\\(s\\), the first at row 1, column 1"),
    ({"train_x": np.array([["a", "b"]] * 6)}, "train_x must be numeric"),
    ({"valid_y": np.array([1j, 2j, 3j])}, "valid_y must be numeric"),
    ({"train_order": np.array([[0, 1, 2, 3, 4]])}, "train_order must have shape \\(epochs, 6\\)"),
    ({"train_order": np.array([[0, 1, 2, 3, 4, 6]])}, "index 6 at position 5, out of range"),
    ({"train_order": np.array([[0, 1, 2, 3, 4, 4]])}, "not a permutation of 0..5 \\(index 4"),
    ({"train_order": np.arange(6.0)}, "train_order must hold integer"),
    ({"train_x": np.array([[1, "a"]] * 6, dtype=object)},
     "cannot read array train_x .*arrays must be numeric"),
    ({"train_x": np.zeros((0, 2)), "train_y": np.zeros(0)}, "train_x has no examples"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_NPZ)
def test_bad_npz_raises_data_error(tmp_path: Path, overrides: dict, message: str) -> None:
    path = write_npz(tmp_path / "bad.npz", **overrides)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(path)
    assert "bad.npz" in str(info.value)


def test_bad_npz_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dataset file not found"):
        load_dataset(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    with pytest.raises(DataError, match="junk.npz: not a valid .npz file"):
        load_dataset(junk)
    single = tmp_path / "single.npz"
    with single.open("wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(DataError, match="not a valid .npz file"):
        load_dataset(single)
    with pytest.raises(DataError, match="missing array\\(s\\) train_x.*no arrays"):
        np.savez(tmp_path / "empty.npz")
        load_dataset(tmp_path / "empty.npz")


def test_npz_feature_size_and_order_rows(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", train_order=np.array([[1, 0, 2, 3, 4, 5]]))
    with pytest.raises(DataError, match="features_size is 3 but the data has 2 features"):
        load_dataset(path, features_size=3)
    with pytest.raises(DataError, match="train_order has 1 row\\(s\\) but the task has 2"):
        load_dataset(path, num_train_epochs=2)
    with pytest.raises(DataError, match="num_train_examples must be 6, got 4"):
        load_dataset(path, num_train_examples=4)


# ---------------------------------------------------------------- csv datasets

def test_csv_with_split_column(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,split,label,b\n1,train,0,2\n3,valid,1,4\n5,train,1,6\n\n7,valid,0,8\n")
    d = load_dataset(path)
    assert d.train_x.tolist() == [[1, 2], [5, 6]] and d.train_y.tolist() == [0, 1]
    assert d.valid_x.tolist() == [[3, 4], [7, 8]] and d.valid_y.tolist() == [1, 0]
    assert d.eval_type == EvalType.ACCURACY


def test_csv_without_split_column_is_a_fixed_shuffle(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    rows = "".join(f"{i},{2 * i},{i * 0.5}\n" for i in range(10))
    path.write_text("x1,x2,target\n" + rows)  # no label/y column: the last one is the label
    d = load_dataset(path, valid_fraction=0.3)
    assert d.train_x.shape == (7, 2) and d.valid_x.shape == (3, 2)
    assert np.array_equal(d.train_y, d.train_x[:, 0] * 0.5)
    ids = sorted([*d.train_x[:, 0].tolist(), *d.valid_x[:, 0].tolist()])
    assert ids == list(range(10))
    assert d.eval_type == EvalType.RMS_ERROR
    again = load_dataset(path, valid_fraction=0.3)
    assert np.array_equal(again.train_x, d.train_x)


def test_csv_y_column_is_the_label(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("\ufeffy,f\n1,2\n3,4\n5,6\n", encoding="utf-8")  # with a byte-order mark
    d = load_dataset(path)
    assert sorted([*d.train_y, *d.valid_y]) == [1, 3, 5]


BAD_CSV = [
    ("", "the CSV file is empty"),
    ("a,label\n", "no data rows"),
    ("label\n1\n2\n", "no feature columns"),
    ("a,label\n1,2\n3\n", "line 3 has 1 cells but the header has 2 columns"),
    ("a,label\n1,2\nx,4\n", "line 3, column 'a': 'x' is not a number"),
    ("a,label\n1,2\n3,\n", "line 3, column 'label': '' is not a number"),
    ("a,label\n1,nan\n3,4\n", "line 2, column 'label': 'nan' is not a finite"),
    ("a,label,split\n1,2,train\n3,4,test\n", "line 3, column 'split': 'test' is not"),
    ("a,label,split\n1,2,train\n3,4,train\n", "each split needs at least one row"),
    ("a,a,label\n1,2,3\n", "names column 'a' twice"),
    ("a,label\n1,2\n", "cannot be split"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CSV)
def test_bad_csv_raises_data_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(path)
    assert "bad.csv" in str(info.value)


# ---------------------------------------------------------------- TOML specs

def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_toml_two_specs(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", """
[[tasks]]
type = "scalar_linear_regression_task"
features_size = 4
num_train_examples = 10
num_valid_examples = 5
num_tasks = 2
data_seeds = [1000000]
param_seeds = 2000000

[[tasks]]
unit_test_increment_task = { increment = 2.0 }
features_size = 2
num_train_examples = 3
num_valid_examples = 2
num_train_epochs = 2
eval_type = "rms_error"
""")
    specs = load_task_file(path)
    assert specs[0] == TaskSpec("scalar_linear_regression", features_size=4,
                                num_train_examples=10, num_valid_examples=5, num_tasks=2,
                                eval_type=EvalType.RMS_ERROR, data_seeds=(1000000,),
                                param_seeds=(2000000,))
    assert specs[1].type == "unit_test_increment" and specs[1].increment == 2.0
    tasks = load_tasks(str(path))
    assert [t.index for t in tasks] == [0, 1, 2]
    assert tasks[1].data_seed == 1000001 and tasks[1].param_seed == 2000001
    assert tasks[2].train_y.tolist() == [0, 2, 4] and tasks[2].train_order.shape == (2, 3)


def test_toml_style_key_with_empty_table(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", """
[[tasks]]
scalar_2layer_nn_regression_task = {}
features_size = 3
num_train_examples = 10
num_valid_examples = 5
""")
    (spec,) = load_task_file(path)
    assert spec.type == "scalar_2layer_nn_regression" and spec.eval_type == EvalType.RMS_ERROR


def test_toml_dataset_spec(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    write_npz(tmp_path / "data" / "d.npz", train_order=np.tile(np.arange(6), (3, 1)))
    path = write(tmp_path / "t.toml", """
[[tasks]]
dataset = "data/d.npz"
num_train_epochs = 3
num_valid_examples = 2
""")
    (spec,) = load_task_file(path)
    assert spec.dataset == tmp_path / "data" / "d.npz"
    assert (spec.features_size, spec.num_train_examples, spec.num_valid_examples) == (2, 6, 2)
    assert spec.eval_type == EvalType.RMS_ERROR
    (task,) = load_tasks(str(path))
    assert task.train_order.shape == (3, 6) and task.num_valid == 2
    bad = write(tmp_path / "bad.toml", '[[tasks]]\ndataset = "data/d.npz"\nfeatures_size = 5\n')
    with pytest.raises(DataError, match="features_size is 5 but the data has 2"):
        load_task_file(bad)


LINEAR = ('[[tasks]]\ntype = "scalar_linear_regression"\nfeatures_size = 4\n'
          'num_valid_examples = 1\n')
PROJECTED = ('[[tasks]]\ntype = "projected_binary_classification"\nfeatures_size = 16\n'
             'num_train_examples = 100\nnum_valid_examples = 100\n')
TOML_ERRORS = [
    (LINEAR + "num_train_examples = 1\nnum_example = 3\n",
     "table 1: unknown key 'num_example' for scalar_linear_regression.*valid keys: type, "),
    ('[[tasks]]\ntype = "unit_test_zeros"\nfeatures_size = "4"\n',
     "table 1: features_size must be an integer, got '4'"),
    ('[[tasks]]\ntype = "scalar_linear_regression"\nnum_train_examples = 1\n',
     "table 1: scalar_linear_regression: features_size is required"),
    ('[[tasks]]\ntype = "linear"\n', "unknown task type 'linear'; valid types"),
    ('[[tasks]]\nfeatures_size = 4\n', "no task type"),
    (LINEAR + 'num_train_examples = 1\neval_type = "ACCURACY"\n', "needs eval_type RMS_ERROR"),
    (LINEAR + "num_train_examples = 0\n", "num_train_examples must be at least 1, got 0"),
    ('[[tasks]]\ntype = "unit_test_zeros"\neval_type = "F1"\n',
     "eval_type must be RMS_ERROR or ACCURACY, got 'F1'"),
    ('[[tasks]]\nscalar_linear_regression_task = { increment = 1 }\n',
     "unknown key 'increment' in scalar_linear_regression_task; it takes no keys"),
    ('[[tasks]]\nunit_test_increment_task = { incr = 1 }\n',
     "unknown key 'incr' in unit_test_increment_task \\(did you mean 'increment'\\?\\)"),
    ('[[tasks]]\ntype = "unit_test_ones"\ndata_seeds = [1.5]\n',
     "data_seeds must be an integer or a list of integers"),
    ('[[tasks]]\ntype = "unit_test_ones"\nunit_test_zeros_task = {}\n',
     "more than one task type"),
    ('[[task]]\ntype = "unit_test_ones"\n', "unknown top-level key 'task'"),
    ("tasks = 3\n", "'tasks' must be an array of tables"),
    ('[[tasks]]\ntype = "projected_binary_classification_task"\n',
     "dataset_name is required \\(mnist, fashion_mnist, cifar10\\)"),
    (PROJECTED + 'dataset_name = "svhn"\n', "dataset_name must be one of mnist"),
    (PROJECTED + 'dataset_name = "mnist"\npositive_class = 3\n',
     "give both positive_class and negative_class, or neither"),
    (PROJECTED + 'dataset_name = "mnist"\npositive_class = 5\nnegative_class = 3\n',
     "the positive class \\(label 1\\) is the smaller class id"),
    (PROJECTED + 'dataset_name = "mnist"\npositive_class = 5\nnegative_class = 10\n',
     "two different class ids 0..9"),
    (PROJECTED + 'dataset_name = "mnist"\nheld_out_pairs = [[1, 1]]\n',
     "held_out_pairs: a class pair is two different class ids"),
    (PROJECTED + 'dataset_name = "mnist"\nheld_out_pairs = "some"\n',
     "held_out_pairs must be a list of \\[positive, negative\\] pairs or one of"),
    (PROJECTED + 'dataset_name = "mnist"\npairs = [[1, 2]]\nheld_out_pairs = [[2, 1]]\n',
     "no class pair is left"),
    (PROJECTED + 'dataset_name = "mnist"\nmax_supported_data_seed = 0\n',
     "min_supported_data_seed \\(0\\) must be less than max_supported_data_seed"),
    ('[[tasks]]\nprojected_binary_classification_task = { dataset_name = "mnist" }\n'
     'features_size = 4\nnum_train_examples = 9000\nnum_valid_examples = 10\n',
     "num_train_examples is at most 8000"),
    ("[[tasks]\n", "invalid TOML"),
]


@pytest.mark.parametrize(("text", "message"), TOML_ERRORS)
def test_toml_errors_name_the_key_table_and_file(tmp_path: Path, text: str,
                                                 message: str) -> None:
    path = write(tmp_path / "tasks.toml", text)
    with pytest.raises(ConfigError, match=message) as info:
        load_task_file(path)
    assert str(info.value).startswith(f"{path}: error:")


def test_second_table_error_names_table_two(tmp_path: Path) -> None:
    data = {"tasks": [{"type": "unit_test_ones", "features_size": 1, "num_train_examples": 1,
                       "num_valid_examples": 1, "eval_type": "RMS_ERROR"},
                      {"type": "unit_test_ones", "features_size": 1.0}]}
    with pytest.raises(ConfigError, match="x.toml: error: \\[\\[tasks\\]\\] table 2: "
                                          "features_size must be an integer"):
        parse_task_specs(data, "x.toml", Path("."))


# ---------------------------------------------------------------- load_tasks

def test_builtin_task_sets() -> None:
    assert builtin_task_names() == ["linear", "nonlinear", "demo_search", "mnist",
                                    "fashion_mnist", "cifar10"]
    linear = load_tasks("linear")
    assert len(linear) == 10 and linear[0].num_train == 1000 and linear[0].num_valid == 100
    assert linear[0].features == 4 and linear[9].param_seed == 1005
    demo = load_tasks("demo_search")
    assert demo[0].num_train == 100 and demo[0].num_valid == 100
    assert np.array_equal(demo[0].meta["w"], linear[0].meta["w"])
    nonlinear = load_tasks("nonlinear", num_train_epochs=2)
    assert "W" in nonlinear[0].meta and nonlinear[0].train_order.shape == (2, 1000)
    with pytest.raises(ConfigError, match="needs eval_type RMS_ERROR"):
        load_tasks("linear", eval_type="ACCURACY")


def test_load_tasks_unknown_name_or_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown task set 'cifar'.*linear, nonlinear, demo_search"):
        load_tasks("cifar")
    with pytest.raises(DataError, match="file not found.*linear, nonlinear"):
        load_tasks(str(tmp_path / "missing.toml"))


def test_spec_overrides_are_validated() -> None:
    spec = linear_spec()
    with pytest.raises(ConfigError, match="num_tasks must be at least 1"):
        replace(spec, num_tasks=0)
    with pytest.raises(ConfigError, match="valid_fraction"):
        TaskSpec("dataset", dataset=Path("x.csv"), valid_fraction=1.5)
