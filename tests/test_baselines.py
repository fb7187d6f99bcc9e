"""Tuned baselines: chosen on the select tasks only, written as programs that score the same."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from azc import baselines
from azc.baselines import score, tune_baselines, write_baselines
from azc.cli import main
from azc.frontend import parse_file
from azc.resources import config_dir
from azc.search.config import parse_config
from azc.tasks.spec import build_tasks


def small_config(tmp_path: Path):
    """The shipped baseline_gaussian configuration with small, few tasks (and its file)."""
    text = (config_dir() / "baseline_gaussian.toml").read_text()
    text = text.replace("num_train_examples = 8000", "num_train_examples = 300")
    text = text.replace("num_valid_examples = 1000", "num_valid_examples = 100")
    text = text.replace("num_tasks = 100", "num_tasks = 4")
    text = text.replace("num_tasks = 10\n", "num_tasks = 3\n")
    path = tmp_path / "small.toml"
    path.write_text(text)
    return parse_config(tomllib.loads(text), str(path), name="small"), path


@pytest.fixture(autouse=True)
def small_grids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(baselines, "LEARNING_RATES", (1e-3, 1e-2, 1e-1))
    monkeypatch.setattr(baselines, "INIT_SCALES", (0.1, 1.0))


def test_choice_is_the_best_on_select_and_never_looks_at_final(tmp_path: Path) -> None:
    cfg, _ = small_config(tmp_path)
    tuned = tune_baselines(cfg)
    assert [b.name for b in tuned] == ["logistic_regression", "neural_net"]
    lr, nn = tuned
    assert len(lr.trials) == 3 and len(nn.trials) == 6
    for b in tuned:
        assert b.select.fitness == max(f for _, f in b.trials)
        assert b.params == next(p for p, f in b.trials if f == b.select.fitness)
        assert len(b.final.task_fitness) == 4 and len(b.select.task_fitness) == 3
    # the same choice whatever the final tasks are
    other = build_tasks([t.__class__(**{**t.__dict__, "data_seeds": (777,)})
                         for t in cfg.final_tasks])
    again = tune_baselines(cfg, final_tasks=other)
    assert [b.params for b in again] == [b.params for b in tuned]
    assert [b.final.task_fitness for b in again] != [b.final.task_fitness for b in tuned]


def test_written_programs_score_what_was_reported(tmp_path: Path) -> None:
    cfg, _ = small_config(tmp_path)
    tuned = tune_baselines(cfg)
    written = write_baselines(tmp_path / "out", cfg, tuned)
    assert [p.name for p in written] == ["logistic_regression.az", "neural_net.az",
                                         "baselines.json"]
    final = build_tasks(list(cfg.final_tasks))
    for b, path in zip(tuned, written):
        assert path.read_text().startswith(f"# Tuned baseline {b.name}")
        assert score(parse_file(path), final, cfg).fitness == b.final.fitness
    doc = json.loads(written[-1].read_text())
    assert doc["baselines"][0]["final_fitness"] == tuned[0].final.fitness


def test_cli_baseline_with_a_compared_program(tmp_path: Path, capsys) -> None:
    _, path = small_config(tmp_path)
    assert main(["baseline", str(path), "--out", str(tmp_path / "b"), "-q",
                 "--compare", "linear_sgd"]) == 0
    out = capsys.readouterr().out
    assert "logistic_regression" in out and "neural_net" in out and "linear_sgd" in out
    assert (tmp_path / "b" / "neural_net.az").exists()
    doc = json.loads((tmp_path / "b" / "baselines.json").read_text())
    assert "linear_sgd" in doc["compared"]
    with pytest.raises(SystemExit):
        main(["baseline", str(path), "--dataset", "svhn"])
