"""Reading the user's files: regular files only, of a bounded size, checked before opening.

A program, a configuration or a task file is read whole, so a device
(`/dev/zero`), a FIFO (which would block on open) or a file far larger than
any real one is refused at once with an error naming the file and the limit,
instead of reading until memory runs out or waiting for ever.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from azc.errors import AzcError

MiB = 1 << 20
MAX_PROGRAM_BYTES = 1 * MiB   # a .az program (3 x MAX_INSTRUCTIONS fit in a third of it)
MAX_CONFIG_BYTES = 4 * MiB    # an experiment configuration or a task file (TOML)


def regular_file(path: str | Path, what: str, limit: int,
                 error: type[AzcError] = AzcError) -> Path:
    """`path`, checked to be a regular file of at most `limit` bytes (without opening it)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as err:
        raise error(f"cannot read {what} {p}: {err.strerror or err}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{what} {p} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {p} is not a regular file (a device, FIFO or socket)")
    if st.st_size > limit:
        raise error(f"{what} {p} is {st.st_size / MiB:.1f} MiB, more than the limit of "
                    f"{limit / MiB:.0f} MiB")
    return p


def read_bytes(path: str | Path, what: str, limit: int,
               error: type[AzcError] = AzcError) -> bytes:
    """The contents of a regular file of at most `limit` bytes (`regular_file`)."""
    p = regular_file(path, what, limit, error)
    try:
        with open(p, "rb") as f:
            data = f.read(limit + 1)
    except OSError as err:
        raise error(f"cannot read {what} {p}: {err.strerror or err}") from None
    if len(data) > limit:  # it grew since the check
        raise error(f"{what} {p} is more than the limit of {limit / MiB:.0f} MiB")
    return data


def read_text(path: str | Path, what: str, limit: int,
              error: type[AzcError] = AzcError) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes."""
    data = read_bytes(path, what, limit, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not UTF-8 text") from None
