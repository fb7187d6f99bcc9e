"""The native-interpreter tier: any program, encoded, run with no per-program compile.

One LLVM module per (memory layout, F), generated from the same per-op
emitters and the same protocol driver as compiled kernels (azc.backend.interpreter) and
compiled once per process.  A program is encoded as 32-byte records (op,
out, in1, in2 as int16; c0, c1, c2 as float64; a random op keeps slot + 1 in
in1), so encoding costs a join: an `Instr` is its own record.  `run_batch` evaluates many
programs on the same tasks in one native call.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from azc.backend.contracts import (
    CODE_RECORD,
    CODE_SLOTS,
    LENGTH_SLOTS,
    OUT_WIDTH,
    PROG_WIDTH,
    ProgSlot,
    TaskField,
)
from azc.backend.fec_hash import fec_hash_function
from azc.backend.interpreter import interpreter_module
from azc.backend.jit import (
    Compiler,
    Engine,
    TaskBatch,
    check_outputs,
    default_compiler,
    memory_on_heap,
)
from azc.backend.native_dce import dce_module, mask_words
from azc.backend.record_check import record_check
from azc.errors import JitError, VerifyError
from azc.interp import DEFAULT_MAX_ABS_ERROR
from azc.ir import MAX_ADDRESSES, Component, Instr, MemoryConfig, Program, verify
from azc.ops import Op, on_change
from azc.results import TaskResult
from azc.tasks.task import Task

_ONE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_double,
                        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
_BATCH = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p,
                          ctypes.c_int64, ctypes.c_void_p, ctypes.c_double, ctypes.c_void_p,
                          ctypes.c_int64)
_CHECK = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64)


@dataclass
class Encoded:
    """Programs encoded for the interpreter: code bytes and the program descriptors."""

    code: np.ndarray      # uint8 buffer holding every record
    progs: np.ndarray     # int64 (n, PROG_WIDTH): (pointer, length) per component

    @staticmethod
    def of(programs: Sequence[Program]) -> Encoded:
        """Encode programs into one buffer: every instruction is its own record."""
        lengths = np.array([(len(p.setup), len(p.predict), len(p.learn)) for p in programs],
                           dtype=np.int64).reshape(-1, 3)
        code = np.frombuffer(b"".join([b"".join(p.setup) + b"".join(p.predict)
                                       + b"".join(p.learn) for p in programs]) or b"\0",
                             dtype=np.uint8).copy()
        starts = np.cumsum(np.concatenate([[0], lengths.ravel()]))[:-1].reshape(-1, 3)
        progs = np.zeros((len(programs), PROG_WIDTH), dtype=np.int64)
        progs[:, CODE_SLOTS] = starts * CODE_RECORD + code.ctypes.data
        progs[:, LENGTH_SLOTS] = lengths
        return Encoded(code, progs)


class NativeInterpreter:
    """Evaluates encoded programs with the native interpreter of one layout and F."""

    def __init__(self, memory: MemoryConfig, features: int, compiler: Compiler | None = None):
        self.memory = memory
        self.features = features
        if max(memory.scalars, memory.vectors, memory.matrices) > MAX_ADDRESSES:
            raise JitError(f"the native interpreter supports at most {MAX_ADDRESSES} addresses "
                           f"per kind")
        compiler = compiler or default_compiler()
        name = (f"azc_interp_s{memory.scalars}_v{memory.vectors}_m{memory.matrices}"
                f"_f{features}")  # unique per layout: engines resolve symbols by name
        text = (interpreter_module(memory, features, name)
                + record_check(f"{name}_check", memory.with_features(features)))
        engine, addrs, self.compile_seconds = compiler.compile_text(
            text, [name, f"{name}_batch", f"{name}_check"])
        self._engine: Engine = engine
        self._one = _ONE(addrs[0])
        self._batch = _BATCH(addrs[1])
        self._bad_program = _CHECK(addrs[2])
        self.on_heap = memory_on_heap(memory, features)

    def check(self, program: Program) -> None:
        """Raise unless the program fits this interpreter's memory."""
        from azc.ir import verify
        verify(program, self.memory.with_features(self.features))

    def run(self, program: Program, tasks: Sequence[Task], seed: int = 0,
            max_abs_error: float = DEFAULT_MAX_ABS_ERROR, num_train: int | None = None,
            num_valid: int | None = None, record: bool = False,
            record_errors: bool = False) -> list[TaskResult]:
        """One program on tasks, with TaskResults like the other backends."""
        self.check(program)
        enc = Encoded.of([program])
        batch = TaskBatch.of(tasks, self.features)
        shim: Any = _InterpKernel(self, enc)  # quacks like a Kernel for TaskBatch.run
        return batch.run(shim, seed, max_abs_error, num_train, num_valid, record, record_errors)

    def run_batch(self, programs: Sequence[Program] | Encoded, tasks: Sequence[Task] | TaskBatch,
                  seeds: np.ndarray, max_abs_error: float = DEFAULT_MAX_ABS_ERROR,
                  num_train: int | None = None, num_valid: int | None = None,
                  errors: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Many programs on the same tasks: outputs (n, tasks, OUT_WIDTH).

        With `errors` = (train, valid) float64 arrays of shape (n, tasks, k),
        the per-example absolute errors of the first epoch are recorded there
        (k at least the requested train / valid counts).  `tasks` may be a
        TaskBatch built once by the caller (saves rebuilding its descriptor).

        Every record of the programs is checked against the memory and F first,
        in native code (`azc.backend.record_check`: ops, addresses, element
        indices), so that native code never reads or writes outside its memory.
        """
        enc = programs if isinstance(programs, Encoded) else Encoded.of(programs)
        self._check_records(programs, enc)
        n = len(enc.progs)
        batch = tasks if isinstance(tasks, TaskBatch) else TaskBatch.of(tasks, self.features)
        if batch.features != self.features:
            raise JitError(f"the task batch has F={batch.features}, the interpreter "
                           f"F={self.features}")
        tasks = batch.tasks
        batch._set_requests(num_train, num_valid)
        out = np.empty((n, len(tasks), OUT_WIDTH), dtype=np.float64)
        seeds = np.ascontiguousarray(seeds, dtype=np.uint64)
        stride = 0
        if errors is not None:
            tr, va = errors
            if tr.shape != va.shape or tr.shape[:2] != (n, len(tasks)) or \
                    not (tr.flags.c_contiguous and va.flags.c_contiguous) or \
                    tr.dtype != np.float64 or va.dtype != np.float64:
                raise JitError(f"error buffers must be two C-contiguous float64 arrays of shape "
                               f"({n}, {len(tasks)}, k), got {tr.shape} and {va.shape}")
            if tr.shape[2] < batch.record_need:  # errors are recorded for the first epoch only
                raise JitError(f"error buffers hold {tr.shape[2]} errors per task; recording "
                               f"needs {batch.record_need}")
            rows = batch.rows * (tr.shape[2] * 8)
            batch.desc[:, TaskField.REC_TRAIN_ERR] = tr.ctypes.data + rows
            batch.desc[:, TaskField.REC_VALID_ERR] = va.ctypes.data + rows
            stride = tr.strides[0]
        try:
            self._batch(enc.progs.ctypes.data, n, batch.desc.ctypes.data, len(tasks),
                        seeds.ctypes.data, float(max_abs_error), out.ctypes.data, stride)
        finally:
            if errors is not None:
                batch.desc[:, TaskField.REC_TRAIN_ERR] = 0
                batch.desc[:, TaskField.REC_VALID_ERR] = 0
        if self.on_heap:
            check_outputs(out)
        return out

    def _check_records(self, programs: Sequence[Program] | Encoded, enc: Encoded) -> None:
        """VerifyError unless every record fits this interpreter's memory and F."""
        bad = self._bad_program(enc.progs.ctypes.data, len(enc.progs))
        if bad < 0:
            return
        memory = self.memory.with_features(self.features)
        if not isinstance(programs, Encoded):  # verify's located message
            verify(programs[bad], memory)
        raise VerifyError(f"encoded program {bad} has an instruction that does not "
                          f"fit the memory ({memory})")


class _InterpKernel:
    """Adapts the interpreter to TaskBatch.run (which calls `cfunc` like a kernel's)."""

    def __init__(self, interp: NativeInterpreter, enc: Encoded):
        self.interp, self.enc = interp, enc
        self.engine = interp._engine
        self.on_heap = interp.on_heap

    def cfunc(self, desc: int, ntasks: int, seed: int, maxerr: float, out: int) -> None:
        self.interp._one(desc, ntasks, seed, maxerr, out, self.enc.progs.ctypes.data, 0)


_interpreters: dict[tuple, NativeInterpreter] = {}


def interpreter(memory: MemoryConfig, features: int) -> NativeInterpreter:
    """The (process-wide, compiled once) interpreter of a layout and F."""
    key = (memory.scalars, memory.vectors, memory.matrices, features)
    it = _interpreters.get(key)
    if it is None:
        it = NativeInterpreter(MemoryConfig(*key[:3]), features)
        _interpreters[key] = it
    return it


_DCE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
                        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


_FEC_HASH = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                             ctypes.c_void_p, ctypes.c_void_p)


class NativeDCE:
    """Dead-code removal, compaction and hashing of encoded programs in one native call.

    The same analysis as azc.passes.dce (tested against it), for programs
    of a memory of at most `words` * 64 addresses per kind (`mask_words`).
    The module also holds the FEC fingerprint hash.  Compiled once per
    process and number of words (`native_dce`).
    """

    def __init__(self, compiler: Compiler | None = None, words: int = 1):
        compiler = compiler or default_compiler()
        self.words = words
        top = 64 * words
        text = (dce_module(words=words) + fec_hash_function()
                + record_check("azc_dce_check", MemoryConfig(top, top, top)))
        engine, addrs, self.compile_seconds = compiler.compile_text(
            text, ["azc_dce", "azc_fec_hash", "azc_dce_check"])
        self._engine = engine
        self._fn = _DCE(addrs[0])
        self._fec_hash = _FEC_HASH(addrs[1])
        self._bad_program = _CHECK(addrs[2])

    def fec_hash(self, train_err: np.ndarray, valid_err: np.ndarray, out: np.ndarray,
                 task_index: np.ndarray, n_req: np.ndarray) -> np.ndarray:
        """FEC fingerprints (uint64, (programs, tasks)) of errors recorded by `run_batch`.

        `out` is run_batch's output (`OutField.NUM_TRAIN_ERR` and `NUM_VALID_ERR` count
        the recorded errors); `task_index` and `n_req` are int64 per task.
        """
        n, T, k = train_err.shape
        fps = np.empty((n, T), dtype=np.uint64)
        tidx = np.ascontiguousarray(task_index, dtype=np.int64)
        nreq = np.ascontiguousarray(n_req, dtype=np.int64)
        self._fec_hash(train_err.ctypes.data, valid_err.ctypes.data, out.ctypes.data, n, T, k,
                       tidx.ctypes.data, nreq.ctypes.data, fps.ctypes.data)
        return fps

    def run(self, enc: Encoded) -> tuple[Encoded, np.ndarray]:
        """(live programs, hashes): the compacted programs and two 64-bit hashes each.

        The result's descriptors hold the number of live random ops
        (`ProgSlot.LIVE_RANDOM`) and of live instructions (`ProgSlot.LIVE_INSTRS`).
        The records are checked first, in native code (ops, and addresses within
        the `words` * 64 per kind its masks hold).
        """
        bad = self._bad_program(enc.progs.ctypes.data, len(enc.progs))
        if bad >= 0:
            raise VerifyError(f"encoded program {bad} has an instruction that is not one of "
                              f"a memory of at most {64 * self.words} addresses per kind")
        n = len(enc.progs)
        out_code = np.empty_like(enc.code)
        out_progs = np.zeros_like(enc.progs)
        hashes = np.empty((n, 2), dtype=np.uint64)
        longest = int(enc.progs[:, LENGTH_SLOTS].max()) if n else 0
        flags = np.empty(max(longest, 1), dtype=np.uint8)
        self._fn(enc.progs.ctypes.data, n, enc.code.ctypes.data, out_code.ctypes.data,
                 out_progs.ctypes.data, hashes.ctypes.data, flags.ctypes.data)
        return Encoded(out_code, out_progs), hashes


_dce: dict[int, NativeDCE] = {}


def native_dce(memory: MemoryConfig | None = None) -> NativeDCE:
    """The process-wide native DCE for programs of a memory (one per `mask_words`).

    Without a memory: the one-word DCE, for memories of at most 64 addresses per kind.
    """
    words = 1 if memory is None else mask_words(memory)
    if words not in _dce:
        _dce[words] = NativeDCE(words=words)
    return _dce[words]


@on_change
def _rebuild(added: tuple[Op, ...], removed: tuple[Op, ...]) -> None:
    """The interpreters and the native DCE are generated from the op table: a changed table
    builds them again on next use."""
    _interpreters.clear()
    _dce.clear()


def decode(enc: Encoded, index: int) -> Program:
    """Program `index` of an encoded batch, back as IR (random ops keep their slots)."""
    comps = []
    base = enc.code.ctypes.data
    raw = enc.code.tobytes()
    for c in Component:
        ptr, n = int(enc.progs[index, ProgSlot.code(c)]), int(enc.progs[index, ProgSlot.length(c)])
        off = ptr - base
        instrs = [Instr.from_record(raw[off + CODE_RECORD * i: off + CODE_RECORD * (i + 1)])
                  for i in range(n)]
        comps.append(tuple(instrs))
    from azc.ir import canonical_slots, slot_at
    return Program(*(canonical_slots(cs, [slot_at(x, i) for i, x in enumerate(cs)])
                     for cs in comps))
