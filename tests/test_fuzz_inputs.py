"""Hypothesis fuzzing of what azc reads: program text and bytes, configurations, datasets.

Whatever the input, the readers either accept it or raise an AzcError (one
clear message); never another exception.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azc.errors import AzcError
from azc.frontend import parse, parse_file
from azc.resources import config_dir
from azc.search.config import parse_config

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
WORDS = st.sampled_from(["def", "Setup", "Predict", "Learn", "():", "\n", "  ", "s1", "v0",
                         "m2", "=", "+", "dot(", ")", ",", "0.5", "gaussian(", "[", "]", "#",
                         "s99999999", "v0[3]", "m0[1, 2]", "noop", "pass", "1e400", "nan"])


@FUZZ
@given(st.text(max_size=400))
def test_parser_on_any_text(text: str) -> None:
    try:
        parse(text)
    except AzcError:
        pass


@FUZZ
@given(st.lists(WORDS, max_size=60).map(" ".join))
def test_parser_on_program_like_text(text: str) -> None:
    try:
        parse(text)
    except AzcError:
        pass


@FUZZ
@given(st.binary(max_size=400))
def test_program_files_of_any_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "p.az"
    path.write_bytes(data)
    try:
        parse_file(path)
    except AzcError:
        pass


VALUES = st.recursive(
    st.none().map(lambda _: "x") | st.booleans() | st.integers(-2**70, 2**70)
    | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=6)
DEMO = tomllib.loads((config_dir() / "linear.toml").read_text())
KEYS = st.sampled_from([*sorted(DEMO), "fec", "train_budget", "hurdles", "island_tasks"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=3))
def test_configurations_with_any_values(changes: dict) -> None:
    data = {**DEMO, **changes}
    try:
        parse_config(data, "fuzz.toml")
    except AzcError:
        pass


TASK_KEYS = st.sampled_from(["features_size", "num_train_examples", "num_valid_examples",
                             "num_tasks", "num_train_epochs", "eval_type", "data_seeds",
                             "dataset_name", "positive_class", "held_out_pairs", "pairs",
                             "max_supported_data_seed", "type", "increment"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(TASK_KEYS, VALUES, max_size=3))
def test_task_tables_with_any_values(changes: dict) -> None:
    from azc.tasks import parse_task_list
    table = {"type": "projected_binary_classification", "dataset_name": "mnist",
             "features_size": 4, "num_train_examples": 10, "num_valid_examples": 10, **changes}
    try:
        parse_task_list([table], "fuzz.toml", Path("."))
    except AzcError:
        pass


@FUZZ
@given(st.binary(max_size=600), st.sampled_from(["x.npz", "x.csv"]))
def test_dataset_files_of_any_bytes(tmp_path: Path, data: bytes, name: str) -> None:
    from azc.tasks import load_dataset
    path = tmp_path / name
    path.write_bytes(data)
    try:
        load_dataset(path)
    except AzcError:
        pass


@FUZZ
@given(st.dictionaries(st.sampled_from(["train_x", "train_y", "valid_x", "valid_y",
                                        "train_order"]),
                       st.sampled_from([np.zeros((3, 2)), np.ones(3), np.full((2, 2), np.nan),
                                        np.array(["a", "b"]), np.zeros((0, 2)),
                                        np.arange(6).reshape(2, 3), np.zeros((3, 2, 1))]),
                       max_size=5))
def test_npz_datasets_with_any_arrays(tmp_path: Path, arrays: dict) -> None:
    from azc.tasks import load_dataset
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    try:
        load_dataset(path)
    except AzcError:
        pass
