"""Island task sets: islands searching on different tasks (the paper's MNIST workers)."""

from __future__ import annotations

import pytest

from azc.errors import ConfigError
from azc.search.islands import IslandReport, combined_best
from azc.tasks.spec import TaskSpec
from tests.test_search import tiny_config

OTHER = [{"type": "scalar_2layer_nn_regression", "features_size": 4, "num_train_examples": 100,
          "num_valid_examples": 50, "num_tasks": 3}]


def test_island_sets_are_taken_in_turn() -> None:
    cfg = tiny_config(island_tasks=[{"tasks": OTHER}])
    assert len(cfg.island_tasks) == 1 and cfg.island_tasks[0][0].type == \
        "scalar_2layer_nn_regression"
    base = list(cfg.search_tasks)
    assert cfg.island_search_tasks(0, base) == base
    assert cfg.island_search_tasks(1, base) == list(cfg.island_tasks[0])
    assert cfg.island_search_tasks(2, base) == base


def test_candidates_come_from_islands_on_the_search_tasks() -> None:
    from azc.search.generator import linear_algorithm
    a, b = linear_algorithm(0.1), linear_algorithm(0.2)
    reports = [IslandReport(0, 0, 0, f, p, 0.0, 0.0, 0, 0, 0, [])
               for f, p in ((0.5, a), (0.9, b), (0.7, a), (0.95, b))]
    assert combined_best(reports) == (b, 0.95)
    assert combined_best(reports, sets=2) == (a, 0.7)  # islands 1 and 3 search elsewhere


def test_a_search_on_two_task_sets() -> None:
    from azc.search.experiment import evolve
    cfg = tiny_config(island_tasks=[{"tasks": OTHER}], migrate_every=1)
    result = evolve(cfg, seed=4, quiet=True, workers=2, max_individuals=2000)
    assert result.individuals >= 2000 and result.final_fitness > 0


@pytest.mark.parametrize(("value", "message"), [
    ({"tasks": OTHER}, "island_tasks must be an array of tables"),
    ([{"task": OTHER}], "holds only a \\[\\[island_tasks.tasks\\]\\] array \\(unknown key 'task'"),
    ([{"tasks": [{**OTHER[0], "features_size": 5}]}], "island_tasks set 1 has features_size 5"),
    ([{"tasks": [{**OTHER[0], "num_task": 5}]}], "unknown key 'num_task'"),
])
def test_island_task_errors(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(island_tasks=value)


def test_hurdles_need_two_tasks_in_every_set() -> None:
    with pytest.raises(ConfigError, match="island_tasks set 1: hurdles need at least 2"):
        tiny_config(hurdles={}, island_tasks=[{"tasks": [{**OTHER[0], "num_tasks": 1}]}])


def test_dataset_flag_leaves_island_sets_alone() -> None:
    from azc.search.config import with_image_dataset
    proj = {"type": "projected_binary_classification", "dataset_name": "fashion_mnist",
            "features_size": 4, "num_train_examples": 100, "num_valid_examples": 50}
    mnist = {**proj, "dataset_name": "mnist"}
    cfg = tiny_config(search_tasks=[proj], select_tasks=[proj], final_tasks=[proj],
                      island_tasks=[{"tasks": [mnist, mnist]}])
    moved = with_image_dataset(cfg, "cifar10", {"mnist": "/data/mnist"})
    assert moved.search_tasks[0].dataset_name == "cifar10"
    spec: TaskSpec = moved.island_tasks[0][0]
    assert spec.dataset_name == "mnist" and str(spec.path) == "/data/mnist"
