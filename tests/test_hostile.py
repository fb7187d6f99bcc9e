"""Hostile and careless input to the Python API and the CLI: one clear error each."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import pytest

from azc.errors import AzcError
from azc.search.experiment import evolve
from tests.test_search import tiny_config

API_CASES = [
    ({"seed": 1.5}, "seed must be an integer >= 0, got 1.5"),
    ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ({"seed": "abc"}, "seed must be an integer >= 0, got 'abc'"),
    ({"max_individuals": 0}, "max_individuals must be an integer >= 1, got 0"),
    ({"time_limit": math.nan}, "time_limit must be a number of seconds > 0, got nan"),
    ({"time_limit": -3}, "time_limit must be a number of seconds > 0"),
    ({"checkpoint_every": -1}, "checkpoint_every must be a number of seconds > 0"),
    ({"callback": 5}, "callback must be a function of one progress record, got 5"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ({"batch_size": -1}, "batch_size must be an integer >= 1"),
    ({"workers": "2"}, "workers must be an integer from 1 to 1024, got '2'"),
    ({"workers": 0}, "workers must be an integer from 1 to 1024"),
    ({"workers": True}, "workers must be an integer"),
    ({"migrate_every": -1}, "migrate_every must be an integer >= 1 \\(generations\\)"),
]


@pytest.mark.parametrize(("kwargs", "message"), API_CASES)
def test_evolve_arguments_are_checked_first(kwargs: dict, message: str) -> None:
    with pytest.raises(AzcError, match=message):
        evolve(tiny_config(), quiet=True, **kwargs)


def test_evolve_needs_a_config_or_a_run() -> None:
    with pytest.raises(AzcError, match="evolve needs a configuration"):
        evolve(None)
    with pytest.raises(AzcError, match="config must be an ExperimentConfig"):
        evolve(5)  # type: ignore[arg-type]


def test_resume_refuses_options_it_cannot_honour(tmp_path: Path) -> None:
    def stop(record: dict) -> None:
        if record.get("event") == "progress" and record["individuals"] >= 2000:
            os.kill(os.getpid(), signal.SIGINT)

    part = evolve(tiny_config(), seed=3, quiet=True, out_dir=tmp_path / "run", callback=stop)
    assert part.stopped == "interrupted"
    for option, message in (({"seed": 4}, "--seed cannot change it"),
                            ({"workers": 2}, "--workers cannot change it"),
                            ({"batch_size": 7}, "--batch-size cannot change it"),
                            ({"dataset": "mnist"}, "--dataset cannot change them")):
        with pytest.raises(AzcError, match=message):
            evolve(None, resume=tmp_path / "run", quiet=True, **option)
    done = evolve(None, resume=tmp_path / "run", quiet=True)
    assert done.stopped != "interrupted"
    with pytest.raises(AzcError, match="holds a finished run \\(result.json\\)"):
        evolve(tiny_config(), quiet=True, out_dir=tmp_path / "run")


def test_sigterm_stops_a_run_that_resumes_to_the_same_result(tmp_path: Path) -> None:
    def stop(record: dict) -> None:
        if record.get("event") == "progress" and record["individuals"] >= 2000:
            os.kill(os.getpid(), signal.SIGTERM)

    full = evolve(tiny_config(), seed=3, quiet=True)
    part = evolve(tiny_config(), seed=3, quiet=True, out_dir=tmp_path / "run", callback=stop)
    assert part.stopped == "interrupted" and (tmp_path / "run" / "checkpoint.ckpt").exists()
    done = evolve(None, resume=tmp_path / "run", quiet=True)
    assert (done.program, done.individuals, done.final_fitness) == (
        full.program, full.individuals, full.final_fitness)


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return "?"


CHILD = """
import sys
from tests.test_search import tiny_config
from azc.search.experiment import evolve
r = evolve(tiny_config(max_train_steps=10**9), seed=3, out_dir=sys.argv[1], workers=2,
           quiet=True, checkpoint_every=1000)
print("STOPPED", r.stopped)
"""


@pytest.mark.parametrize("signals", [1, 2])
def test_sigterm_with_workers_saves_and_leaves_no_process(tmp_path: Path, signals: int) -> None:
    import subprocess
    import sys
    import time
    out = tmp_path / "run"
    root = Path(__file__).parent.parent
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(out)], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "log.jsonl").exists() or "progress" not in (out / "log.jsonl").read_text():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    workers = _children(proc.pid)
    assert workers  # the second island's process
    for _ in range(signals):
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "STOPPED interrupted" in stdout and "Traceback" not in stderr
    assert (out / "checkpoint.ckpt").exists()
    deadline = time.monotonic() + 10  # (the exit of a process takes a moment to show)
    while [pid for pid in workers if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [(pid, _cmdline(pid)) for pid in workers if _alive(pid)]
    resumed = evolve(None, resume=out, quiet=True, max_individuals=1)
    assert resumed.individuals > 0


def test_the_log_of_a_resumed_run_reads_as_one_run(tmp_path: Path) -> None:
    import json

    def stop(record: dict) -> None:
        if record.get("event") == "progress" and record["individuals"] >= 3000:
            os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "run"
    evolve(tiny_config(), seed=3, quiet=True, out_dir=out, callback=stop)
    with (out / "log.jsonl").open("a") as f:  # what a run killed later had written
        f.write(json.dumps({"event": "progress", "individuals": 10**9}) + "\n")
    (out / "checkpoint.ckpt.x1y2.tmp").write_bytes(b"\0" * 1000)  # a write cut short
    evolve(None, resume=out, quiet=True)
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    seen = [r["individuals"] for r in records if r["event"] == "progress"]
    assert seen == sorted(seen) and 10**9 not in seen and len(seen) > 3
    assert sum(r["event"] == "experiment" for r in records) == 1  # one candidate, one run
    assert not list(out.glob("*.tmp"))


def test_a_second_run_on_one_folder_is_refused_naming_the_first(tmp_path: Path) -> None:
    from azc.search.guard import RunLock
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):  # a run in progress
        with pytest.raises(AzcError, match=f"in use by a run of process {os.getpid()}"):
            evolve(tiny_config(), quiet=True, out_dir=out)
        with pytest.raises(AzcError, match="in use by a run of process"):
            evolve(None, resume=out, quiet=True)
    result = evolve(tiny_config(), quiet=True, out_dir=out, max_individuals=500)
    assert result.individuals >= 500  # the lock goes with the run that held it


CLI_CASES = [
    (["export", "linear_sgd", "--features", "4", "-o", "{tmp}/file/sub"],
     "error: cannot create {tmp}/file/sub: {tmp}/file is not a folder"),
    (["export", "linear_sgd", "--features", "100000000", "-o", "{tmp}/out"],
     "error: the feature size is at most 65536, got 100000000"),
    (["llvm", "linear_sgd", "--features", "1000000000", "--asm"],
     "error: the feature size is at most 65536, got 1000000000"),
    (["show", "linear_sgd", "--optimized", "--features", "2000000000000"],
     "error: the feature size is at most 65536"),
    (["check", "linear_sgd", "--features", "65536", "--matrices", "20"],
     "takes 640 GiB, more than the limit of 4 GiB; use fewer addresses"),
]


@pytest.mark.parametrize(("argv", "message"), CLI_CASES)
def test_cli_refuses_with_one_line(tmp_path: Path, capsys, argv: list, message: str) -> None:
    from azc.cli import main
    (tmp_path / "file").write_text("")
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 1 and message.replace("{tmp}", str(tmp_path)) in err and "\n" not in err


def test_the_memory_limit_can_be_raised(monkeypatch) -> None:
    from azc.errors import VerifyError
    from azc.ir import MemoryConfig
    with pytest.raises(VerifyError, match="more than the limit of 4 GiB"):
        MemoryConfig(2, 1, 1, 32768)
    monkeypatch.setenv("AZC_MAX_MEMORY", "9G")
    assert MemoryConfig(2, 1, 1, 32768).nbytes == 8 * (2 + 32768 + 32768 ** 2)
    monkeypatch.setenv("AZC_MAX_MEMORY", "lots")
    with pytest.raises(VerifyError, match="AZC_MAX_MEMORY='LOTS' is not a size"):
        MemoryConfig(2, 1, 1, 4)


@pytest.mark.parametrize(("over", "message"), [
    ({"num_train_examples": 10**12}, "need 3.73e\\+04 GiB, more than the limit of 4 GiB"),
    ({"num_tasks": 10**9}, "1000000000 task\\(s\\) of 100 train"),
    ({"num_train_epochs": 10**9}, "over 1000000000 epoch\\(s\\) need"),
    ({"features_size": 9223372036854775807}, "features_size is at most 65536"),
])
def test_task_sizes_are_refused_before_anything_is_made(over: dict, message: str) -> None:
    from azc.errors import ConfigError
    from azc.tasks import TaskSpec
    spec = {"features_size": 4, "num_train_examples": 100, "num_valid_examples": 10, **over}
    with pytest.raises(ConfigError, match=message):
        TaskSpec("scalar_linear_regression", **spec)


def test_population_size_has_a_limit() -> None:
    from azc.errors import ConfigError
    with pytest.raises(ConfigError, match="population_size: must be at most 1000000"):
        tiny_config(population_size=10**12)
    with pytest.raises(ConfigError, match="learn_size_max: must be at most 10000"):
        tiny_config(learn_size_max=10**9)


def test_a_component_has_at_most_10000_instructions(tmp_path: Path, capsys) -> None:
    from azc.cli import main
    path = tmp_path / "long.az"
    path.write_text("def Setup():\n" + "  s2 = s1 + s3\n" * 10_001 + "def Predict():\n  pass\n")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:10002:3: error: Setup has more than 10000 instructions" in err


def _tiny_toml(tmp_path: Path) -> Path:
    """The shipped linear configuration, small enough for a test run of a few seconds."""
    from azc.resources import config_dir
    text = (config_dir() / "linear.toml").read_text()
    for old, new in (("population_size = 1000", "population_size = 100"),
                     ("max_train_steps = 100000000", "max_train_steps = 20000000"),
                     ("progress_every = 10000", "progress_every = 1000\nbatch_size = 10"),
                     ("num_train_examples = 10000", "num_train_examples = 200"),
                     ("num_tasks = 100", "num_tasks = 5")):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


def test_kill_9_then_resume_ends_as_an_uninterrupted_run(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys
    import time
    config = _tiny_toml(tmp_path)
    root = Path(__file__).parent.parent
    cli = [sys.executable, "-m", "azc.cli", "evolve", str(config), "--seed", "3",
           "--workers", "1", "-q"]
    full = subprocess.run([*cli, "--out", str(tmp_path / "full")], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen([*cli, "--out", str(out), "--checkpoint-every", "0.3"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.ckpt").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.5)
    proc.kill()
    proc.wait(timeout=30)
    if (out / "result.json").exists():
        pytest.skip("the run finished before it could be killed")
    resumed = subprocess.run([sys.executable, "-m", "azc.cli", "evolve", "--resume", str(out),
                              "-q"], cwd=root, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "full" / "result.json").read_text())
    b = json.loads((out / "result.json").read_text())
    for key in ("final_fitness", "select_fitness", "individuals", "train_steps"):
        assert a[key] == b[key], key
    assert (tmp_path / "full" / "best.az").read_text() == (out / "best.az").read_text()
    seen = [json.loads(line).get("individuals") for line in
            (out / "log.jsonl").read_text().splitlines()
            if json.loads(line)["event"] == "progress"]
    assert seen == sorted(seen)


def test_islands_stop_near_a_small_individual_limit() -> None:
    result = evolve(tiny_config(), seed=2, quiet=True, workers=2, max_individuals=500)
    assert 500 <= result.individuals < 500 + 2 * 100  # at most one generation of each island


def test_three_signals_stop_at_once_and_keep_the_last_checkpoint(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time
    config = _tiny_toml(tmp_path)
    out = tmp_path / "run"
    root = Path(__file__).parent.parent
    proc = subprocess.Popen([sys.executable, "-m", "azc.cli", "evolve", str(config), "--seed",
                             "3", "--workers", "2", "-q", "--out", str(out),
                             "--checkpoint-every", "0.2"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.ckpt").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    workers = _children(proc.pid)
    for _ in range(3):
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.005)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run reached a safe point before the third signal")
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    deadline = time.monotonic() + 10
    while [pid for pid in workers if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)]
    resumed = evolve(None, resume=out, quiet=True, max_individuals=1)
    assert resumed.individuals > 0
