"""Random and corrupted programs at every native entry point, in a child process.

The child feeds programs made of random 32-byte records (any op id, any
address, any constant: NaN, infinities, huge and negative indices) and
valid programs with one field corrupted to the native interpreter, the
native dead-code removal and the JIT kernels. Each call either runs or
raises VerifyError; the child must never die by a signal (a read or write
outside the memory would, sooner or later).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from azc.backend.native import Encoded, interpreter, native_dce
from azc.ir import RECORD_DTYPE, RECORD_SIZE, Instr, MemoryConfig, Program, bad_records
from azc.ops import OPS

CHILD = r"""
import struct, sys
import numpy as np
from azc.backend import cache
from azc.backend.native import Encoded, interpreter, native_dce
from azc.errors import VerifyError
from azc.ir import Instr, MemoryConfig, Program
from azc.ops import OPS
from azc.resources import example_file
from azc.frontend import parse_file
from azc.tasks import load_tasks

rng = np.random.default_rng(int(sys.argv[1]))
mem = MemoryConfig(4, 3, 2)
tasks = load_tasks("linear")[:1]
tasks = [type(tasks[0])(t.train_x[:20], t.train_y[:20], t.valid_x[:10], t.valid_y[:10])
         for t in tasks]
valid = [parse_file(example_file(n)) for n in ("linear_sgd", "neural_net")]
interp = interpreter(mem, 4)
dce = native_dce(mem)
CONSTS = [0.0, 1.0, 3.0, 4.0, 5.0, -1.0, 2.5, 1e300, -1e300, float("nan"), float("inf"),
          70000.0, 2.0**40]
FIELDS = ("<h", 0), ("<h", 2), ("<h", 4), ("<h", 6), ("<d", 8), ("<d", 16), ("<d", 24)

def record():
    ints = [int(rng.integers(-3, len(OPS) + 3)) if rng.random() < 0.9 else
            int(rng.integers(-32768, 32768))]
    ints += [int(rng.choice([0, 1, 2, 3, 4, 5, 40, 32767, -1, -32768])) for _ in range(3)]
    return Instr.from_record(struct.pack("<hhhhddd", *ints,
                                         *(float(rng.choice(CONSTS)) for _ in range(3))))

def corrupted(p):
    comps = [list(p.setup), list(p.predict), list(p.learn)]
    c = [k for k in range(3) if comps[k]][int(rng.integers(0, 2))]
    i = int(rng.integers(0, len(comps[c])))
    raw = bytearray(comps[c][i])
    fmt, at = FIELDS[int(rng.integers(0, len(FIELDS)))]
    value = int(rng.choice([-1, 5, 40, 32767, -32768, 70])) if fmt == "<h" else \
        float(rng.choice(CONSTS))
    struct.pack_into(fmt, raw, at, value)
    comps[c][i] = Instr.from_record(bytes(raw))
    return Program(*map(tuple, comps))

calls = rejected = 0
for it in range(int(sys.argv[2])):
    if rng.random() < 0.5:
        progs = [Program(*(tuple(record() for _ in range(int(rng.integers(0, 5))))
                           for _ in range(3))) for _ in range(3)]
    else:
        progs = [corrupted(valid[int(rng.integers(0, 2))]) for _ in range(3)]
    for call in ("interp", "dce", "kernel", "one"):
        calls += 1
        try:
            if call == "interp":
                interp.run_batch(progs, tasks, np.zeros(3, dtype=np.uint64))
            elif call == "dce":
                dce.run(Encoded.of(progs))
            elif call == "kernel":
                cache.evaluate_tasks(progs[0], tasks, mem)
            else:
                interp.run(progs[1], tasks)
        except VerifyError:
            rejected += 1
print("calls", calls, "rejected", rejected)
"""


def test_native_entry_points_never_crash() -> None:
    root = Path(__file__).parent.parent
    for seed in (1, 2):
        run = subprocess.run([sys.executable, "-c", CHILD, str(seed), "150"], cwd=root,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
        calls, rejected = (int(w) for w in run.stdout.split()[1::2])
        assert calls == 600 and 0 < rejected < calls  # both kinds happen


def _random_records(rng, n: int, ops: int) -> bytes:
    """n records with fields near the limits of a (4, 3, 2) memory at F = 4 (and beyond)."""
    rec = np.zeros(n, dtype=RECORD_DTYPE)
    rec["op"] = np.where(rng.random(n) < 0.95, rng.integers(-2, ops + 2, n),
                         rng.integers(-32768, 32768, n))
    for f in ("out", "in1", "in2"):
        rec[f] = rng.choice([0, 1, 2, 3, 4, 5, 63, 64, 32767, -1, -32768], n,
                            p=[.2, .2, .15, .1, .1, .05, .04, .04, .04, .04, .04])
    for f in ("c0", "c1", "c2"):
        rec[f] = rng.choice([0.0, 1.0, 3.0, 3.5, 4.0, -0.0, -1.0, 1e300, np.nan, np.inf,
                             -np.inf, 0.5, 2.0**60], n)
    return rec.tobytes()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_native_check_is_bad_records(seed: int) -> None:
    """The native boundary check finds exactly the programs `bad_records` rejects (the
    interpreter's: a memory and F; the DCE's: 64 addresses per kind, no F)."""
    rng = np.random.default_rng(seed)
    mem = MemoryConfig(4, 3, 2)
    interp, dce = interpreter(mem, 4), native_dce(mem)
    programs = []
    for _ in range(3000):
        comps = [Instr.from_record(r) for r in _chunks(_random_records(
            rng, int(rng.integers(0, 7)), len(OPS)))]
        cut = sorted(rng.integers(0, len(comps) + 1, 2))
        programs.append(Program(tuple(comps[:cut[0]]), tuple(comps[cut[0]:cut[1]]),
                                tuple(comps[cut[1]:])))
    for checker, memory in ((interp, mem.with_features(4)), (dce, MemoryConfig(64, 64, 64))):
        enc = Encoded.of(programs)
        want = [bool(len(bad_records(Encoded.of([p]).code, memory))) for p in programs]
        assert 0.2 < np.mean(want) < 0.98  # both kinds, often
        got = [checker._bad_program(enc.progs[i:i + 1].ctypes.data, 1) == 0
               for i in range(len(programs))]
        assert got == want
        first = checker._bad_program(enc.progs.ctypes.data, len(programs))
        assert first == (want.index(True) if any(want) else -1)


def _chunks(raw: bytes) -> list[bytes]:
    return [raw[i:i + RECORD_SIZE] for i in range(0, len(raw), RECORD_SIZE)]
