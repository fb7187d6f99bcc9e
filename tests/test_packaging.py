"""The installed package: the grammar and runtime ship with it, the command runs anywhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from azc.resources import example_names, grammar_file, runtime_file

REPO = Path(__file__).resolve().parents[1]


def test_resources_are_found() -> None:
    assert grammar_file().is_file()
    assert runtime_file("rng.py").is_file()
    assert {"linear_sgd", "neural_net", "all_ops"} <= set(example_names())


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_installed_command_runs_outside_the_checkout(tmp_path: Path) -> None:
    """`azc` on PATH (as pip installed it) evaluates a shipped example from another folder."""
    exe = shutil.which("azc") or str(Path(sys.executable).parent / "azc")
    if not Path(exe).exists():
        pytest.skip("the azc command is not installed")
    where = _run([sys.executable, "-c", "import azc; print(azc.__file__)"], tmp_path)
    assert where.returncode == 0, where.stderr
    out = _run([exe, "eval", "linear_sgd", "--task", "linear", "--json"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["fitness"] > 0.9999


def test_command_reports_errors_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.az"
    bad.write_text("def Setup():\n  s1 = dot(s0, v1)\n")
    out = _run([sys.executable, "-m", "azc.cli", "check", str(bad)], tmp_path)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert f"{bad}:2:8: error: dot() takes" in out.stderr
