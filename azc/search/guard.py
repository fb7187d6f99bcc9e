"""Guards of a run: `evolve`'s argument checks and the lock on a run folder."""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path

import numpy as np

from azc.errors import AzcError
from azc.search.config import ExperimentConfig

MAX_WORKERS = 1024  # processes on one machine


def check_evolve_arguments(config, seed, max_individuals, time_limit, checkpoint_every,
                            callback, batch_size, workers, migrate_every, resume) -> None:
    """AzcError naming the first argument of `evolve` that is not what it takes."""
    def integer(value: object) -> bool:
        return isinstance(value, int | np.integer) and not isinstance(value, bool)

    def number(value: object) -> bool:
        return (isinstance(value, int | float | np.integer | np.floating)
                and not isinstance(value, bool) and math.isfinite(float(value)))

    if config is None and resume is None:
        raise AzcError("evolve needs a configuration (an ExperimentConfig, a TOML path or a "
                       "shipped name such as \"demo\") or resume=<run folder>")
    if config is not None and not isinstance(config, ExperimentConfig | str | Path):
        raise AzcError(f"config must be an ExperimentConfig, a TOML path or a shipped name, "
                       f"got {type(config).__name__}")
    checks = (
        ("seed", seed, lambda v: integer(v) and 0 <= v < 2**64, "an integer >= 0"),
        ("max_individuals", max_individuals, lambda v: integer(v) and v >= 1,
         "an integer >= 1"),
        ("time_limit", time_limit, lambda v: number(v) and v > 0, "a number of seconds > 0"),
        ("checkpoint_every", checkpoint_every, lambda v: number(v) and v > 0,
         "a number of seconds > 0"),
        ("callback", callback, callable, "a function of one progress record"),
        ("batch_size", batch_size, lambda v: integer(v) and v >= 1, "an integer >= 1"),
        ("workers", workers, lambda v: integer(v) and 1 <= v <= MAX_WORKERS,
         f"an integer from 1 to {MAX_WORKERS}"),
        ("migrate_every", migrate_every, lambda v: integer(v) and v >= 1,
         "an integer >= 1 (generations)"))
    for name, value, ok, what in checks:
        if value is not None and not ok(value):
            raise AzcError(f"{name} must be {what}, got {value!r}")


class RunLock:
    """An exclusive lock on a run folder for the life of a run (`run.lock`, flock: the
    kernel releases it when the process ends, even by kill -9), so that a second run on
    the same folder is refused, naming the process that holds it."""

    NAME = "run.lock"

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        if self.folder is None or not self.folder.is_dir():
            return self  # resume of a missing folder: load_checkpoint says so
        try:
            import fcntl
        except ImportError:  # not on Linux or macOS: no lock
            return self
        path = self.folder / self.NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise AzcError(f"{self.folder} is in use by a run of {holder}; wait for it to "
                           f"end, or choose another --out folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {platform.node()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock; the file may stay
            self.fd = None
