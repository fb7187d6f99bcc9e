"""The checkpoint file: a run's whole state as plain data, read without running code.

A checkpoint is one file, written atomically by the experiment driver:

    AZC-CHECKPOINT\\n                              magic line
    {"format": "azc-checkpoint", "version": 3,   header line (JSON): the sizes of the
     "document_bytes": N, "arrays_bytes": M,      two parts and the SHA-256 of both
     "sha256": "..."}\\n
    N bytes: the document (JSON, UTF-8)          counters, configuration, task specs,
                                                 random states, programs as .az text
    M bytes: the arrays (.npz)                   fitnesses, random buffers, pre-drawn
                                                 instructions, FEC tables

Reading checks the magic, the format version, the sizes and the checksum before
anything is decoded; the arrays are read with `allow_pickle=False`; the
document names only the few classes of a run's state (configuration
dataclasses, enums, task specs), built from their fields, and programs are
parsed from text and checked against the memory.  Nothing in the file can make
azc run code: a file that is not such a checkpoint, of another version,
truncated or altered, is refused with a `CheckpointError`.

Floats are exact: JSON numbers are written as Python's repr (the shortest text
that reads back to the same float64; NaN and infinities as NaN / Infinity), and
program constants as the printer writes them (`parse(format(p)) == p`).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import io
import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from azc.backend.fec_table import NativeFecTable
from azc.errors import AzcError, CheckpointError
from azc.frontend import parse
from azc.ir import RECORD_SIZE, Component, Instr, MemoryConfig, Program, check_instr, verify
from azc.printer import format_program

MAGIC = b"AZC-CHECKPOINT\n"
FORMAT = "azc-checkpoint"
VERSION = 3  # 1, 2: pickles (checkpoint.pkl) of azc before the data-only format
_MAX_HEADER = 4096


# --- plain values: the classes a checkpoint may name ----------------------------------------

def _classes() -> dict[str, type]:
    from azc.search.config import BudgetConfig, ExperimentConfig
    from azc.search.evaluator import EvalCounters
    from azc.search.fec import FecConfig
    from azc.search.generator import InitialPopulation
    from azc.search.hurdles import HurdleConfig
    from azc.search.mutator import MutationType
    from azc.tasks.spec import TaskSpec
    from azc.tasks.task import EvalType
    return {c.__name__: c for c in (ExperimentConfig, MemoryConfig, TaskSpec, FecConfig,
                                    BudgetConfig, EvalCounters, InitialPopulation, HurdleConfig,
                                    MutationType, EvalType, Component)}


_SKIP = {"ExperimentConfig": {"raw"}}  # fields not kept (the TOML document, unused on resume)


def encode_value(x: Any) -> Any:
    """A JSON value for x: plain values as they are; tuples, paths, the enums and
    dataclasses of `_classes` tagged (`{"$tuple": [...]}`, ...)."""
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, enum.Enum):
        return {"$enum": type(x).__name__, "name": x.name}
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x)
    if isinstance(x, tuple):
        return {"$tuple": [encode_value(v) for v in x]}
    if isinstance(x, list):
        return [encode_value(v) for v in x]
    if isinstance(x, dict):
        return {"$dict": [[encode_value(k), encode_value(v)] for k, v in x.items()]}
    if isinstance(x, Path):
        return {"$path": str(x)}
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        name = type(x).__name__
        if _classes().get(name) is not type(x):
            raise TypeError(f"a checkpoint cannot hold a {name}")
        skip = _SKIP.get(name, set())
        return {"$dataclass": name,
                "fields": {f.name: encode_value(getattr(x, f.name))
                           for f in dataclasses.fields(x) if f.init and f.name not in skip}}
    raise TypeError(f"a checkpoint cannot hold a {type(x).__name__}")


def decode_value(x: Any) -> Any:
    """The value of `encode_value` (ValueError for anything else)."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, list):
        return [decode_value(v) for v in x]
    if not isinstance(x, dict) or len(x) not in (1, 2):
        raise ValueError(f"unexpected value {str(x)[:60]}")
    if "$tuple" in x and isinstance(x["$tuple"], list):
        return tuple(decode_value(v) for v in x["$tuple"])
    if "$dict" in x and isinstance(x["$dict"], list):
        return {decode_value(k): decode_value(v) for k, v in x["$dict"]}
    if "$path" in x and isinstance(x["$path"], str):
        return Path(x["$path"])
    classes = _classes()
    if "$enum" in x:
        cls = classes.get(x["$enum"])
        if cls is None or not issubclass(cls, enum.Enum) or not isinstance(x.get("name"), str):
            raise ValueError(f"unknown enum {x['$enum']!r}")
        return cls[x["name"]]
    if "$dataclass" in x and isinstance(x.get("fields"), dict):
        cls = classes.get(x["$dataclass"])
        if cls is None or not dataclasses.is_dataclass(cls):
            raise ValueError(f"unknown class {x['$dataclass']!r}")
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        fields = x["fields"]
        if not set(fields) <= names:
            raise ValueError(f"{cls.__name__} has no field {sorted(set(fields) - names)[0]!r}")
        return cls(**{k: decode_value(v) for k, v in fields.items()})
    raise ValueError(f"unexpected value {str(x)[:60]}")


# --- writing ------------------------------------------------------------------------------

class _Writer:
    """Collects the document's arrays and programs (each distinct program once)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.programs: list[str] = []
        self._index: dict[Program, int] = {}

    def array(self, arr: np.ndarray) -> str:
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.ascontiguousarray(arr)
        return name

    def program(self, p: Program | None) -> int | None:
        if p is None:
            return None
        i = self._index.get(p)
        if i is None:
            if any(ins.slot >= 0 for _, _, ins in p.instructions()):  # pragma: no cover
                # text places random ops at their slots (no-ops in front): not the same Program
                raise AzcError("a checkpoint cannot hold a program with explicit random-"
                               "stream slots (a bug in azc)")
            i = self._index[p] = len(self.programs)
            self.programs.append(format_program(p))
        return i

    def programs_array(self, ps: list[Program]) -> str:
        return self.array(np.array([self.program(p) for p in ps], dtype=np.int64))

    def random(self, rnd: Any) -> dict:
        pools = []
        for key, pool in rnd.pools.items():
            recs = np.frombuffer(b"".join(pool), dtype=np.uint8).reshape(len(pool), RECORD_SIZE)
            pools.append([encode_value(key), self.array(recs)])
        return {"seed": rnd.seed, "bit_generator": rnd.gen.bit_generator.state,
                "u": self.array(np.array(rnd._u, dtype=np.float64)),
                "z": self.array(np.array(rnd._z, dtype=np.float64)), "pools": pools}

    def evaluator(self, state: dict | None) -> dict | None:
        if state is None:
            return None
        fec = state["fec"]
        return {"counters": encode_value(state["counters"]),
                "fec": None if fec is None else {
                    "cache_size": fec.cache_size, "forget_every": fec.forget_every,
                    "arrays": {k: self.array(v) for k, v in fec.arrays().items()}}}

    def evo(self, state: dict | None) -> dict | None:
        if state is None:
            return None
        programs = state["programs"]
        return {"programs": None if programs is None else self.programs_array(programs),
                "fitness": None if programs is None else self.array(
                    np.asarray(state["fitness"], dtype=np.float64)),
                "head": None if state.get("head") is None else self.array(
                    np.asarray(state["head"], dtype=np.float64)),
                **{k: int(state[k]) for k in ("next_slot", "generations", "individuals")}}

    def island(self, state: dict) -> dict:
        return {"rnd": self.random(state["rnd"]), "evaluator": self.evaluator(state["evaluator"]),
                "evo": self.evo(state["evo"]), "steps_init": int(state["steps_init"])}


# the Run attributes stored as they are (JSON values); the others are handled one by one
_PLAIN = ("seed", "experiment", "best_select", "best_search", "individuals", "train_steps",
          "elapsed", "history", "stopped", "steps_init", "last_report", "max_individuals",
          "time_limit", "workers", "migrate_every", "island_seeds", "base_individuals",
          "base_steps", "log_bytes")
_OPTIONAL = {"log_bytes": 0}  # attributes older checkpoints of this format lack
_OTHERS = ("config", "rnd", "best_program", "evo", "evaluator", "search_specs", "arch",
           "idle_arch", "island_states")
RUN_ATTRIBUTES = frozenset(_PLAIN + _OTHERS)  # every attribute of a Run (a test checks it)


def dumps(run: Any) -> bytes:
    """The checkpoint of a run (at a safe point: a batch or barrier boundary)."""
    from azc import __version__
    w = _Writer()
    island_states = run.arch.states() if run.arch is not None else run.island_states
    doc = {
        "format": FORMAT, "version": VERSION, "azc": __version__,
        "config": encode_value(run.config),
        "run": {k: encode_value(getattr(run, k)) for k in _PLAIN},
        "rnd": w.random(run.rnd),
        "best_program": w.program(run.best_program),
        "search_specs": encode_value(run.search_specs),
        "evaluator": w.evaluator(None if run.evaluator is None else run.evaluator.state()),
        "evo": w.evo(None if run.evo is None else run.evo.state()),
        "island_states": None if island_states is None else [w.island(s)
                                                             for s in island_states],
    }
    doc["programs"] = w.programs  # after everything that adds programs
    document = json.dumps(doc, separators=(",", ":")).encode()
    buf = io.BytesIO()
    np.savez(buf, **w.arrays)  # type: ignore[arg-type]
    arrays = buf.getvalue()
    header = {"format": FORMAT, "version": VERSION, "document_bytes": len(document),
              "arrays_bytes": len(arrays),
              "sha256": hashlib.sha256(document + arrays).hexdigest()}
    return MAGIC + json.dumps(header).encode() + b"\n" + document + arrays


# --- reading ------------------------------------------------------------------------------

def _split(data: bytes, src: str) -> tuple[bytes, bytes]:
    """The document and the arrays of a checkpoint file, checked (CheckpointError)."""
    if data[:1] == b"\x80" or data.startswith(b"(dp") or data.startswith(b"}q"):
        raise CheckpointError(f"{src} is a Python pickle, not an azc checkpoint: refused, "
                              f"never unpickled (a pickle can run any code). Checkpoints of "
                              f"older azc were pickles: resume it with that version or start "
                              f"again")
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise CheckpointError(f"{src} is truncated ({len(data)} bytes): it cannot be "
                                  f"resumed")
        raise CheckpointError(f"{src} is not an azc checkpoint")
    end = data.find(b"\n", len(MAGIC), len(MAGIC) + _MAX_HEADER)
    try:
        if end < 0:
            raise ValueError("no header line")
        header = json.loads(data[len(MAGIC):end])
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError("not a checkpoint header")
    except (ValueError, UnicodeDecodeError):
        if end < 0 and len(data) < len(MAGIC) + _MAX_HEADER:
            raise CheckpointError(f"{src} is truncated ({len(data)} bytes): it cannot be "
                                  f"resumed") from None
        raise CheckpointError(f"{src} is not an azc checkpoint (its header is not one)") from None
    version = header.get("version")
    if version != VERSION:
        raise CheckpointError(f"{src} has checkpoint format version {version!r}, but this azc "
                              f"reads version {VERSION}: resume it with the azc that wrote "
                              f"it or start again")
    n, m, digest = header.get("document_bytes"), header.get("arrays_bytes"), header.get("sha256")
    if not (isinstance(n, int) and isinstance(m, int) and isinstance(digest, str)
            and n >= 0 and m >= 0):
        raise CheckpointError(f"{src} is not an azc checkpoint (its header is incomplete)")
    body = data[end + 1:]
    if len(body) < n + m:
        raise CheckpointError(f"{src} is truncated ({len(body)} of {n + m} bytes after its "
                              f"header): it cannot be resumed")
    if len(body) > n + m or hashlib.sha256(body).hexdigest() != digest:
        raise CheckpointError(f"{src} is corrupted: its SHA-256 checksum does not match its "
                              f"contents")
    return body[:n], body[n:]


class _Reader:
    """Decodes the document's parts; every failure is a ValueError / KeyError / TypeError."""

    def __init__(self, doc: dict, arrays: dict[str, np.ndarray], memory: MemoryConfig):
        self.doc, self._arrays = doc, arrays
        texts = doc["programs"]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ValueError("programs must be a list of texts")
        self.programs = [parse(t, f"<checkpoint program {i}>", memory)
                         for i, t in enumerate(texts)]

    def array(self, name: Any, dtype: type, ndim: int = 1) -> np.ndarray:
        arr = self._arrays[name]
        if arr.dtype != np.dtype(dtype) or arr.ndim != ndim:
            raise ValueError(f"array {name}: expected {ndim}-D {np.dtype(dtype)}, got "
                             f"{arr.ndim}-D {arr.dtype}")
        return arr

    def program(self, i: Any) -> Program | None:
        if i is None:
            return None
        if not isinstance(i, int) or not 0 <= i < len(self.programs):
            raise ValueError(f"no program {i!r}")
        return self.programs[i]

    def random(self, d: dict) -> Any:
        from azc.search.random import SearchRandom
        rnd = SearchRandom(int(d["seed"]))
        state = d["bit_generator"]
        if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
            raise ValueError("the random state is not a PCG64 state")
        rnd.gen.bit_generator.state = state
        rnd._u = self.array(d["u"], np.float64).tolist()
        rnd._z = self.array(d["z"], np.float64).tolist()
        for key, name in d["pools"]:
            recs = self.array(name, np.uint8, 2)
            if recs.shape[1] != RECORD_SIZE:
                raise ValueError(f"array {name}: records of {recs.shape[1]} bytes")
            raw = recs.tobytes()
            rnd.pools[decode_value(key)] = [Instr.from_record(raw[i:i + RECORD_SIZE])
                                            for i in range(0, len(raw), RECORD_SIZE)]
        return rnd

    def evaluator(self, d: dict | None) -> dict | None:
        if d is None:
            return None
        from azc.search.evaluator import EvalCounters
        counters = decode_value(d["counters"])
        if not isinstance(counters, EvalCounters):
            raise ValueError("the evaluator's counters are not EvalCounters")
        fec = d["fec"]
        if fec is not None:
            arrays = {k: self._arrays[v] for k, v in fec["arrays"].items()}
            fec = NativeFecTable.from_arrays(int(fec["cache_size"]), int(fec["forget_every"]),
                                             arrays)
        return {"fec": fec, "counters": counters}

    def evo(self, d: dict | None) -> dict | None:
        if d is None:
            return None
        counts = {k: _int(d[k]) for k in ("next_slot", "generations", "individuals")}
        if d["programs"] is None:
            return {"programs": None, "fitness": None, **counts}
        refs = self.array(d["programs"], np.int64)
        fitness = self.array(d["fitness"], np.float64).copy()
        head = None if d.get("head") is None else self.array(d["head"], np.float64).copy()
        if len(refs) != len(fitness) or (head is not None and len(head) != len(fitness)):
            raise ValueError("a population with as many programs as fitnesses")
        return {"programs": [self.program(int(i)) for i in refs], "fitness": fitness,
                "head": head, **counts}

    def island(self, d: dict) -> dict:
        return {"rnd": self.random(d["rnd"]), "evaluator": self.evaluator(d["evaluator"]),
                "evo": self.evo(d["evo"]), "steps_init": _int(d["steps_init"])}


def _int(x: Any) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise ValueError(f"expected an integer, got {x!r}")
    return x


def loads(data: bytes, src: str, run_type: Any) -> Any:
    """The run of a checkpoint, a `run_type` (the experiment driver's Run); CheckpointError
    if it is not a valid azc checkpoint of this version."""
    from azc.search.config import ExperimentConfig, check_config
    document, array_bytes = _split(data, src)
    try:
        doc = json.loads(document)
        with np.load(io.BytesIO(array_bytes), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if (not isinstance(doc, dict) or doc.get("format") != FORMAT
                or doc.get("version") != VERSION):
            raise ValueError("the document is not a checkpoint of this version")
        config = decode_value(doc["config"])
        if not isinstance(config, ExperimentConfig):
            raise ValueError("the configuration is not an ExperimentConfig")
        check_config(config)
        r = _Reader(doc, arrays, config.memory)
        run = run_type(config, 0)
        plain = doc["run"]
        plain = {**_OPTIONAL, **plain}
        if set(plain) != set(_PLAIN):
            raise ValueError("the run's attributes are not those of this azc")
        for k in _PLAIN:
            setattr(run, k, decode_value(plain[k]))
        for k in ("seed", "experiment", "individuals", "train_steps", "steps_init",
                  "last_report", "workers", "migrate_every", "base_individuals", "base_steps",
                  "log_bytes"):
            _int(getattr(run, k))
        run.rnd = r.random(doc["rnd"])
        run.best_program = r.program(doc["best_program"])
        specs = decode_value(doc["search_specs"])
        run.search_specs = None if specs is None else list(specs)
        states = doc["island_states"]
        run.island_states = None if states is None else [r.island(s) for s in states]
        evaluator, evo = r.evaluator(doc["evaluator"]), r.evo(doc["evo"])
        if (evaluator is None) != (evo is None):
            raise ValueError("an evaluator without its evolution")
        if not (isinstance(run.best_select, float) and isinstance(run.history, list)):
            raise ValueError("bad best_select or history")
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError,
            MemoryError, RecursionError, struct.error, AzcError) as err:
        raise CheckpointError(f"{src} cannot be resumed: its contents are inconsistent "
                              f"({type(err).__name__}: {err})") from None
    if evo is not None:
        assert evaluator is not None
        try:
            run.restore_search(evaluator, evo)
        except AzcError as err:
            raise CheckpointError(f"{src} cannot be resumed: {err.message}") from None
    return run


def check_state_programs(evo_state: dict, rnd: Any, memory: MemoryConfig) -> None:
    """VerifyError unless the population and pre-drawn instructions of a restored state fit
    the memory at the search's feature size (`memory.features`)."""
    for p in evo_state["programs"] or ():
        verify(p, memory)
    for pool in rnd.pools.values():
        for ins in pool:
            problem = check_instr(ins, memory)
            if problem is not None:
                raise CheckpointError(f"a pre-drawn instruction: {problem[0]}")


def same_config(a: Any, b: Any) -> list[str]:
    """The fields in which two configurations differ (their source files aside)."""
    return [f.name for f in dataclasses.fields(a)
            if f.compare and f.name != "source" and not _equal(getattr(a, f.name),
                                                               getattr(b, f.name))]


def _equal(x: Any, y: Any) -> bool:
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return bool(x == y)
