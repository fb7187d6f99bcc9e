"""Reading the user's files: devices, FIFOs, folders and oversized files are refused before
anything is read, for programs, configurations and task files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from azc.errors import AzcError, ConfigError
from azc.files import MAX_CONFIG_BYTES, MAX_PROGRAM_BYTES, read_text
from azc.frontend import parse_file
from azc.search.config import load_config
from azc.tasks import load_task_file


def test_a_regular_small_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "p.az"
    path.write_text("def Predict():\n  s1 = s0 + s0\n")
    assert parse_file(path).sizes() == (0, 1, 0)


@pytest.mark.parametrize("reader,limit", [
    (lambda p: parse_file(p), MAX_PROGRAM_BYTES),
    (lambda p: load_config(str(p)), MAX_CONFIG_BYTES),
    (lambda p: load_task_file(p), MAX_CONFIG_BYTES),
])
def test_oversized_folders_and_devices_are_refused(tmp_path: Path, reader, limit) -> None:
    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.truncate(limit + 1)  # sparse: nothing is written, the size is what counts
    with pytest.raises(AzcError, match="more than the limit"):
        reader(big)
    with pytest.raises(AzcError, match="is a folder"):
        reader(tmp_path)
    with pytest.raises(AzcError, match="not a regular file"):
        reader(Path("/dev/zero"))


def test_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "p.az"
    path.write_bytes(b"\xff\xfe def")
    with pytest.raises(AzcError, match="not UTF-8 text"):
        parse_file(path)
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        read_text(path, "configuration", 100, ConfigError)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code = ("import sys; from azc.frontend import parse_file; from azc.search.config import "
            "load_config\nfor f in (parse_file, load_config):\n  try:\n    f(sys.argv[1])\n"
            "  except Exception as e:\n    print(type(e).__name__, e)")
    # in a child process: opening a FIFO for reading would block this test for ever
    out = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.count("not a regular file") == 2, out.stdout + out.stderr
