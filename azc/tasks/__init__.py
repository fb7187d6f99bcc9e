"""Tasks: specs, synthetic generators, user datasets, and `load_tasks` to get them by name.

`load_tasks(arg)` is the one entry point for a command line: `arg` is a
built-in task set (`builtin_task_names()`), a `.toml` file of `[[tasks]]`
specs (see `azc.tasks.spec`), or a `.npz`/`.csv` dataset (see
`azc.tasks.datasets`).
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

from azc.errors import ConfigError, DataError
from azc.files import MAX_CONFIG_BYTES, read_text
from azc.tasks.datasets import Dataset, infer_eval_type, load_dataset
from azc.tasks.generators import TaskData, train_order
from azc.tasks.images import image_dataset_names
from azc.tasks.projected import HELD_OUT_PAIRS
from azc.tasks.spec import (
    DEFAULT_DATA_SEEDS,
    DEFAULT_PARAM_SEEDS,
    TASK_TYPES,
    TaskSpec,
    build_tasks,
    check_image_override,
    expand_seeds,
    image_datasets_read,
    parse_task_list,
    parse_task_specs,
    randomize_seeds,
    resolve_dataset,
    with_image_data,
)
from azc.tasks.task import EvalType, Task

__all__ = [
    "DEFAULT_DATA_SEEDS", "DEFAULT_PARAM_SEEDS", "TASK_TYPES", "Dataset", "EvalType", "Task",
    "TaskData", "TaskSpec", "build_tasks", "builtin_task_names", "builtin_task_specs",
    "check_image_override", "expand_seeds", "image_datasets_read", "infer_eval_type",
    "load_dataset", "load_task_file", "load_tasks", "parse_task_list", "parse_task_specs",
    "randomize_seeds", "resolve_dataset", "train_order", "with_image_data",
]

_BUILTINS: dict[str, tuple[TaskSpec, ...]] = {
    # 10 linear regression tasks, F=4, 1000 train / 100 valid, default seeds.
    "linear": (TaskSpec("scalar_linear_regression", features_size=4, num_train_examples=1000,
                        num_valid_examples=100, num_tasks=10, eval_type=EvalType.RMS_ERROR),),
    # The same with the 2-layer ReLU teacher.
    "nonlinear": (TaskSpec("scalar_2layer_nn_regression", features_size=4,
                           num_train_examples=1000, num_valid_examples=100, num_tasks=10,
                           eval_type=EvalType.RMS_ERROR),),
    # The demo's search tasks (run_demo.sh): 10 linear tasks of 100 train / 100 valid.
    "demo_search": (TaskSpec("scalar_linear_regression", features_size=4,
                             num_train_examples=100, num_valid_examples=100, num_tasks=10,
                             eval_type=EvalType.RMS_ERROR),),
}
# Projected binary image tasks (docs/semantics.md §5.6): 10 tasks on the 36 search pairs
# (the 9 recommended pairs held out), F=16, 8000 train / 1000 valid, seeds 0..99.
for _name in image_dataset_names():
    _BUILTINS[_name] = (TaskSpec("projected_binary_classification", features_size=16,
                                 num_train_examples=8000, num_valid_examples=1000,
                                 num_tasks=10, dataset_name=_name, held_out_pairs=HELD_OUT_PAIRS,
                                 max_supported_data_seed=100),)


def builtin_task_names() -> list[str]:
    """The names of the built-in task sets."""
    return list(_BUILTINS)


def builtin_task_specs(name: str) -> list[TaskSpec]:
    """The specs of a built-in task set; DataError listing the names if unknown."""
    if name not in _BUILTINS:
        raise DataError(f"unknown built-in task set {name!r}; built-in names: "
                        f"{', '.join(_BUILTINS)}")
    return list(_BUILTINS[name])


def load_task_file(path: str | Path) -> list[TaskSpec]:
    """The specs of a `.toml` task file (dataset paths relative to its folder)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"task file not found: {path}")
    text = read_text(path, "task file", MAX_CONFIG_BYTES, ConfigError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", where=str(path)) from None
    return parse_task_specs(data, str(path), path.parent)


def load_tasks(arg: str, eval_type: EvalType | str | None = None,
               num_train_epochs: int | None = None, dataset: str | None = None,
               data_paths: dict[str, str | Path] | None = None) -> list[Task]:
    """The tasks named by `arg`: a built-in name, a `.toml` task file, or a dataset.

    `eval_type` and `num_train_epochs`, when given, override those of every
    spec (and are checked against it: linear regression must stay RMS_ERROR).
    For a dataset without `eval_type` the eval type is inferred from its labels.
    `dataset` and `data_paths` move projected image tasks to another image
    dataset or path (`with_image_data`).
    """
    specs = _specs_for(arg)
    if dataset is not None or data_paths:
        check_image_override(specs, dataset, data_paths, arg)
        specs = with_image_data(specs, dataset, data_paths)
    if eval_type is not None:
        parsed = EvalType.parse(eval_type)
        specs = [replace(spec, eval_type=parsed) for spec in specs]
    if num_train_epochs is not None:
        specs = [replace(spec, num_train_epochs=num_train_epochs) for spec in specs]
    return build_tasks(specs)


def _specs_for(arg: str) -> list[TaskSpec]:
    """The (unresolved) specs `arg` names."""
    if arg in _BUILTINS:
        return list(_BUILTINS[arg])
    path = Path(arg)
    suffix = path.suffix.lower()
    known = f"built-in names: {', '.join(_BUILTINS)}; or a .toml task file or a .npz/.csv dataset"
    if suffix not in (".toml", ".npz", ".csv"):
        raise DataError(f"unknown task set {arg!r}; {known}")
    if not path.is_file():
        raise DataError(f"file not found: {arg} ({known})")
    if suffix == ".toml":
        return load_task_file(path)
    return [TaskSpec("dataset", dataset=path)]
