"""The data-only checkpoint (azc.search.checkpoint): exact round trips, and every file that
is not a valid checkpoint of this azc refused with a CheckpointError -- old pickles never
unpickled, nothing in a file run."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pickle
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from azc.errors import AzcError, CheckpointError
from azc.frontend import parse
from azc.ir import NOOP, Instr, MemoryConfig, Program
from azc.ops import OPS, Const
from azc.printer import format_program
from azc.search import checkpoint, experiment

from .test_search import tiny_config

ROOT = Path(__file__).resolve().parent.parent




def _interrupted(folder: Path, workers: int = 1, at: int = 3000, **over) -> Path:
    """A run folder holding the checkpoint of a run stopped by Ctrl-C at `at` individuals."""
    def stop(record):
        if record.get("event") == "progress" and record["individuals"] >= at:
            os.kill(os.getpid(), signal.SIGINT)
    r = experiment.evolve(tiny_config(**over), seed=3, quiet=True, out_dir=folder, callback=stop,
                          workers=workers, max_individuals=12_000)
    assert r.stopped == "interrupted"
    assert (folder / experiment.CHECKPOINT).is_file()
    return folder


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    return _interrupted(tmp_path_factory.mktemp("run"))


@pytest.fixture
def folder(saved: Path, tmp_path: Path) -> Path:
    """A copy of the saved run folder, free to damage."""
    (tmp_path / experiment.CHECKPOINT).write_bytes((saved / experiment.CHECKPOINT).read_bytes())
    return tmp_path


def _resume_error(folder: Path) -> str:
    with pytest.raises(CheckpointError) as info:
        experiment.evolve(None, resume=folder, quiet=True)
    return str(info.value)


def _rebuild(data: bytes, edit_doc=None, edit_arrays=None) -> bytes:
    """The checkpoint with its document and arrays edited, and a valid checksum."""
    document, array_bytes = checkpoint._split(data, "x")
    doc = json.loads(document)
    with np.load(io.BytesIO(array_bytes), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    if edit_doc:
        edit_doc(doc)
    if edit_arrays:
        edit_arrays(doc, arrays)
    document = json.dumps(doc).encode()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    header = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION,
              "document_bytes": len(document), "arrays_bytes": len(buf.getvalue()),
              "sha256": hashlib.sha256(document + buf.getvalue()).hexdigest()}
    return checkpoint.MAGIC + json.dumps(header).encode() + b"\n" + document + buf.getvalue()


# --- round trips ------------------------------------------------------------------------------

def _state(run) -> dict:
    """Everything a resumed run continues from, as comparable values."""
    evo, ev, rnd = run.evo, run.evaluator, run.rnd
    return {
        "plain": {k: getattr(run, k) for k in checkpoint._PLAIN},
        "config": run.config, "specs": run.search_specs, "best": run.best_program,
        "rng": (rnd.seed, rnd.gen.bit_generator.state, rnd._u, rnd._z, rnd.pools),
        "population": (evo.population.programs, evo.population.fitness.tolist(),
                       evo.next_slot, evo.generations, evo.individuals),
        "counters": ev.counters,
        "fec": {k: v.tolist() for k, v in ev.fec_table.arrays().items()},
    }


def test_save_load_round_trip_is_exact(saved: Path) -> None:
    data = (saved / experiment.CHECKPOINT).read_bytes()
    run = experiment.load_checkpoint(saved)
    again = checkpoint.dumps(run)
    assert again == data  # the loaded state is byte for byte the saved one
    twin = checkpoint.loads(again, "again", experiment.Run)
    a, b = _state(run), _state(twin)
    assert repr(a["plain"]) == repr(b["plain"])  # (NaN-safe)
    for key in ("config", "specs", "best", "rng", "population", "counters", "fec"):
        assert a[key] == b[key], key
    assert run.evo.population.programs and len(run.rnd._u) > 0
    assert run.evaluator.fec_table is not None and len(run.evaluator.fec_table) > 0
    # the rebuilt search continues exactly as the loaded one
    for r in (run, twin):
        r.evo.step()
    assert _state(run)["population"] == _state(twin)["population"]
    assert _state(run)["fec"] == _state(twin)["fec"]


def test_island_checkpoint_round_trip_is_exact(tmp_path: Path) -> None:
    folder = _interrupted(tmp_path, workers=2, at=4000, migrate_every=2)
    data = (folder / experiment.CHECKPOINT).read_bytes()
    run = experiment.load_checkpoint(folder)
    assert run.workers == 2 and run.island_states is not None and len(run.island_states) == 2
    assert checkpoint.dumps(run) == data
    for s in run.island_states:
        assert s["evo"]["programs"] and s["evaluator"]["fec"] is not None


def test_the_checkpoint_knows_every_attribute_of_a_run() -> None:
    """A new Run attribute must be stored (or deliberately not) by the checkpoint."""
    assert set(experiment.Run(tiny_config(), 1).__dict__) == checkpoint.RUN_ATTRIBUTES


def _special_instrs(features: int) -> list[Instr]:
    """Every op, with extreme constants of each kind."""
    f64 = [0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308,
           0.1, -1 / 3, 2.0 ** -1022, 123456789.123456789]
    f32 = [float(np.float32(v)) for v in (0.1, -1 / 3, 1e-45, 3.4028234663852886e38, 1e-38)]
    f32 += [0.0, -0.0, math.inf, math.nan]
    out = []
    for op in OPS:
        for k in range(len(f64)):
            consts = [{Const.F64: f64[k], Const.F32: f32[k % len(f32)],
                       Const.INDEX: float((k * 7) % features)}[c] for c in op.consts]
            out.append(Instr.make(op, out=1, in1=1, in2=0, consts=consts))
    return out


def test_program_text_round_trip_is_exact() -> None:
    """Programs are stored as .az text: format then parse gives the same records, constants
    included (float64 repr, shortest float32 text, signed zeros, NaN, infinities)."""
    instrs = _special_instrs(features=8)
    mem = MemoryConfig(features=8)
    for i in range(0, len(instrs), 25):
        part = tuple(instrs[i:i + 25])
        p = Program(part, part[::-1], (NOOP, *part))
        assert parse(format_program(p), "p.az", mem) == p
    # and every program of a real checkpoint
    run = experiment.evolve(tiny_config(), seed=2, quiet=True, max_individuals=2000)
    assert parse(format_program(run.program)) == run.program


# --- refused files ----------------------------------------------------------------------------

class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_an_old_pickle_checkpoint_is_refused_never_unpickled(tmp_path: Path, protocol) -> None:
    marker = tmp_path / "marker"
    evil = pickle.dumps({"version": 2, "run": _Evil(marker)}, protocol=protocol)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.pkl").write_bytes(evil)
    message = _resume_error(run_dir)
    assert "checkpoint.pkl was written by an older azc" in message
    assert "resume it with that version or start again" in message
    # the same pickle under the new name: refused as a pickle
    (run_dir / experiment.CHECKPOINT).write_bytes(evil)
    message = _resume_error(run_dir)
    assert ("is a Python pickle" in message and "never unpickled" in message) or \
        "is not an azc checkpoint" in message
    # and from the command line: one error line, nothing run
    proc = subprocess.run([sys.executable, "-c", "import sys; from azc.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", "evolve", "--resume", str(run_dir)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "error:" in proc.stderr and experiment.CHECKPOINT in proc.stderr
    assert not marker.exists()
    # a new run does not start in a folder holding an old checkpoint either
    (run_dir / experiment.CHECKPOINT).unlink()
    with pytest.raises(Exception, match="already holds a run"):
        experiment.evolve(tiny_config(), quiet=True, out_dir=run_dir)
    assert not marker.exists()


@pytest.mark.parametrize("part", ["document", "arrays", "header-sha"])
def test_a_tampered_checkpoint_fails_its_checksum(folder: Path, part: str) -> None:
    path = folder / experiment.CHECKPOINT
    data = bytearray(path.read_bytes())
    body = data.index(b"\n", len(checkpoint.MAGIC)) + 1
    if part == "document":
        i = data.index(b'"individuals":', body) + len(b'"individuals":')
        data[i:i + 1] = b"9" if data[i:i + 1] != b"9" else b"8"
    elif part == "arrays":
        data[-200] ^= 0x01
    else:
        i = data.index(b'"sha256": "') + len(b'"sha256": "')
        data[i:i + 1] = b"0" if data[i:i + 1] != b"0" else b"1"
    path.write_bytes(bytes(data))
    message = _resume_error(folder)
    assert "is corrupted: its SHA-256 checksum does not match" in message


def test_another_format_version_is_refused(folder: Path) -> None:
    path = folder / experiment.CHECKPOINT
    data = path.read_bytes()
    end = data.index(b"\n", len(checkpoint.MAGIC))
    header = json.loads(data[len(checkpoint.MAGIC):end])
    for version in (2, 4, "3", None):
        header["version"] = version
        path.write_bytes(checkpoint.MAGIC + json.dumps(header).encode() + data[end:])
        message = _resume_error(folder)
        assert f"has checkpoint format version {version!r}" in message
        assert f"this azc reads version {checkpoint.VERSION}" in message


@pytest.mark.parametrize("content", [
    b"", b"hello\n", b"PK\x03\x04" + bytes(100), b'{"format": "azc-checkpoint"}\n',
    b"\x93NUMPY\x01\x00", bytes(range(256)) * 10,
    checkpoint.MAGIC + b"not json\n" + bytes(10),
    checkpoint.MAGIC + b'{"format": "something else", "version": 3}\n',
    checkpoint.MAGIC + b'{"format": "azc-checkpoint", "version": 3}\n',
    checkpoint.MAGIC + b"x" * 5000,
])
def test_a_foreign_file_is_not_a_checkpoint(tmp_path: Path, content: bytes) -> None:
    (tmp_path / experiment.CHECKPOINT).write_bytes(content)
    message = _resume_error(tmp_path)
    assert re.search(r"is not an azc checkpoint|is truncated", message), message
    if content and not content.startswith(checkpoint.MAGIC):  # refused at its first line
        assert message.endswith(f"{experiment.CHECKPOINT} is not an azc checkpoint"), message


def test_a_truncated_checkpoint_is_refused(folder: Path) -> None:
    path = folder / experiment.CHECKPOINT
    data = path.read_bytes()
    body = data.index(b"\n", len(checkpoint.MAGIC)) + 1
    for n in (1, len(checkpoint.MAGIC) - 3, len(checkpoint.MAGIC) + 10, body, body + 100,
              len(data) // 2, len(data) - 1):
        path.write_bytes(data[:n])
        message = _resume_error(folder)
        assert "is truncated" in message, (n, message)
    path.write_bytes(data + b"\0")
    assert "is corrupted" in _resume_error(folder)


def test_a_directory_or_missing_checkpoint(tmp_path: Path) -> None:
    assert "nothing to resume" in _resume_error(tmp_path)
    (tmp_path / experiment.CHECKPOINT).mkdir()
    assert "is not a regular file" in _resume_error(tmp_path)


def _first_pool(doc: dict) -> str:
    return doc["rnd"]["pools"][0][1]


@pytest.mark.parametrize("what,edit_doc,edit_arrays,fragment", [
    ("a program out of the memory", lambda d: d["programs"].__setitem__(
        0, d["programs"][0].replace("def Predict():", "def Predict():\n  s1 = s0 + s999",
                                    1)), None, "address s999 is out of range"),
    ("an address no record holds", lambda d: d["programs"].__setitem__(
        0, d["programs"][0].replace("def Predict():", "def Predict():\n  s1 = s0 + s99999",
                                    1)), None, "inconsistent"),
    ("a program that is not .az", lambda d: d["programs"].__setitem__(0, "import os"), None,
     "inconsistent"),
    ("an unknown class", lambda d: d["config"].__setitem__("$dataclass", "Popen"), None,
     "unknown class 'Popen'"),
    ("an unknown enum", lambda d: d["config"]["fields"]["initial_population"].__setitem__(
        "$enum", "Signals"), None, "unknown enum 'Signals'"),
    ("a missing attribute", lambda d: d["run"].pop("experiment"), None,
     "the run's attributes are not those of this azc"),
    ("a bad random state", lambda d: d["rnd"]["bit_generator"].__setitem__(
        "bit_generator", "MT19937"), None, "not a PCG64 state"),
    ("a population of two programs", None, lambda d, a: a.__setitem__(
        d["evo"]["programs"], np.array([0, 1])), "as many programs as fitnesses"),
    ("a program reference out of range", None, lambda d, a: a.__setitem__(
        d["evo"]["programs"], a[d["evo"]["programs"]] + 10**6), "no program"),
    ("fitness of another dtype", None, lambda d, a: a.__setitem__(
        d["evo"]["fitness"], a[d["evo"]["fitness"]].astype(np.float32)), "expected 1-D float64"),
    ("a FEC link out of range", None, lambda d, a: a[
        d["evaluator"]["fec"]["arrays"]["next"]].__setitem__(3, 10**8),
     "next holds a slot out of range"),
    ("a FEC table without its entries", None, lambda d, a: a[
        d["evaluator"]["fec"]["arrays"]["table"]].__setitem__(slice(None), 1),
     "does not hold its entries"),
    ("a pre-drawn instruction out of the memory", None, lambda d, a: a[_first_pool(d)].__setitem__(
        (0, slice(2, 4)), 200), "a pre-drawn instruction"),
])
def test_inconsistent_contents_are_refused(folder: Path, what, edit_doc, edit_arrays,
                                           fragment) -> None:
    """A checkpoint with a valid checksum but contents no run can have: a clear error before
    any of it reaches native code."""
    path = folder / experiment.CHECKPOINT
    path.write_bytes(_rebuild(path.read_bytes(), edit_doc, edit_arrays))
    message = _resume_error(folder)
    assert "cannot be resumed" in message and fragment in message, (what, message)


def test_the_unedited_rebuild_resumes(folder: Path) -> None:
    """(The rebuild of the test above changes nothing by itself.)"""
    path = folder / experiment.CHECKPOINT
    path.write_bytes(_rebuild(path.read_bytes()))
    assert experiment.load_checkpoint(folder).individuals > 0


def test_another_configuration_beside_resume_is_refused(folder: Path) -> None:
    with pytest.raises(CheckpointError, match=r"another configuration .*population_size"):
        experiment.evolve(tiny_config(population_size=50), resume=folder, quiet=True)
    with pytest.raises(CheckpointError, match=r"another configuration .*batch_size"):
        experiment.evolve(tiny_config(batch_size=7), resume=folder, quiet=True)
    with pytest.raises(AzcError, match=r"--batch-size cannot change it"):
        experiment.evolve(tiny_config(), resume=folder, quiet=True, batch_size=7)


def test_the_same_configuration_beside_resume_continues(saved: Path, tmp_path: Path) -> None:
    full = experiment.evolve(tiny_config(), seed=3, quiet=True, max_individuals=12_000)
    (tmp_path / experiment.CHECKPOINT).write_bytes((saved / experiment.CHECKPOINT).read_bytes())
    resumed = experiment.evolve(tiny_config(), resume=tmp_path, quiet=True)
    assert (resumed.program, resumed.individuals, resumed.final_fitness) == (
        full.program, full.individuals, full.final_fitness)


def test_a_failed_write_leaves_the_last_checkpoint_and_no_temp_file(
        folder: Path, monkeypatch) -> None:
    path = folder / experiment.CHECKPOINT
    before = path.read_bytes()
    run = experiment.load_checkpoint(folder)

    def fail(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        experiment.save_checkpoint(run, folder)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == [experiment.CHECKPOINT]


# --- nothing in azc unpickles a file ----------------------------------------------------------

_PATTERN = re.compile(r"pickle\.loads?\b|\bUnpickler\b|allow_pickle\s*=\s*True|"
                      r"\b(cPickle|dill|shelve|jsonpickle|cloudpickle|marshal)\b|"
                      r"yaml\.load\b|torch\.load\b")


def _unsafe(line: str) -> bool:
    """Whether a source line may unpickle: pickle's loaders, an Unpickler, another
    pickling library, or np.load without allow_pickle=False on the same line."""
    return bool(_PATTERN.search(line)) or (
        bool(re.search(r"\bnp\.load\(|numpy\.load\(", line))
        and not re.search(r"allow_pickle\s*=\s*False", line))
# the one reader of pickles: CIFAR-10 batches, by an unpickler that resolves only a tiny
# whitelist of checking stand-ins (azc.tasks.images.safe_unpickle)
_ALLOWED = {("azc/tasks/images.py", "class _SafeUnpickler(pickle.Unpickler):")}


def test_no_source_unpickles_a_file() -> None:
    hits = set()
    for top in ("azc", "runtime"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in (".py", ".c", ".h", ".pyx") or not path.is_file():
                continue
            for line in path.read_text().splitlines():
                if _unsafe(line):
                    hits.add((path.relative_to(ROOT).as_posix(), line.strip()))
    assert hits == _ALLOWED, sorted(hits - _ALLOWED)


def test_the_grep_catches_unpickling() -> None:
    for bad in ("x = pickle.loads(data)", "pickle.load(f)", "np.load(p, allow_pickle=True)",
                "np.load(p)", "class U(pickle.Unpickler):", "import dill", "marshal.loads(b)"):
        assert _unsafe(bad), bad
    for fine in ("np.load(path, allow_pickle=False)", "pickle.dumps(x)", "# a pickle",
                 "with np.load(io.BytesIO(b), allow_pickle=False) as z:"):
        assert not _unsafe(fine), fine
