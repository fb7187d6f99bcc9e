"""The JIT: LLVM IR text -> native code with llvmlite, and calls into kernels.

Facts about llvmlite 0.50 (LLVM 22), measured here, that shape this module:
- only `initialize_native_target()` / `initialize_native_asmprinter()` are
  called (`llvm.initialize()` raises);
- optimization uses the new pass manager, one module pass manager per run;
- `create_mcjit_compiler(mod, tm)` owns `tm`: every engine gets its own
  target machine, and a separate one is kept for the optimization passes;
- machine code is freed only when its engine is closed, so kernels live in
  engines of bounded size that the kernel cache closes when all their
  kernels are evicted (see cache.py);
- every module is parsed in an LLVM context of its own: uniqued constants and
  the distinct metadata the inliner makes (noalias scopes) live as long as
  their context, so in the global context they would accumulate forever
  (about 0.4 MiB per batch of 100 kernels).  A module added to an engine
  keeps its context until the engine is closed (llvmlite drops its
  references to the modules before it disposes of the engine);
- object code made by `TargetMachine.emit_object` loads into an engine with
  `add_object_file` (no optimization or codegen; the references to libm
  resolve to the process's symbols), which is how kernels come back from the
  on-disk cache.  LLVM does not check object code it is given (truncated or
  garbage bytes crash the process), so only object code whose checksum the
  disk cache verified is ever loaded.

No fast-math flags are ever used: kernels agree with the reference
interpreter bit for bit (transcendental functions are the same libm calls).
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from azc.backend.contracts import (
    DESC_WIDTH,
    OUT_WIDTH,
    RECORD_FIELDS,
    Layout,
    OutField,
    TaskField,
    on_stack,
)
from azc.backend.emitters import rng_functions
from azc.backend.irtext import dedupe
from azc.backend.kernels import kernel_module
from azc.errors import JitError
from azc.interp import DEFAULT_MAX_ABS_ERROR
from azc.ir import MemoryConfig, Program, structural_hash
from azc.results import TaskResult
from azc.tasks.task import Task

KERNEL_SIGNATURE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                    ctypes.c_double, ctypes.c_void_p)
RUNNER_SIGNATURE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                    ctypes.c_int64, ctypes.c_int64)

LLVM_LOCK = threading.RLock()  # LLVM calls are serialized: one lock for all callers
_initialized = False


def _llvm():
    """llvmlite.binding, with the native target initialized once."""
    global _initialized
    import llvmlite.binding as llvm
    with LLVM_LOCK:
        if not _initialized:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            _initialized = True
    return llvm


@dataclass(frozen=True)
class Target:
    """What code is generated for: triple, CPU name and CPU features."""

    triple: str
    cpu: str
    features: str

    @staticmethod
    def host() -> Target:
        """The machine this process runs on."""
        llvm = _llvm()
        return Target(llvm.get_process_triple(), llvm.get_host_cpu_name(),
                      llvm.get_host_cpu_features().flatten())

    @staticmethod
    def generic() -> Target:
        """Portable x86-64 (or the host architecture's baseline) code."""
        llvm = _llvm()
        triple = llvm.get_process_triple()
        cpu = "x86-64" if triple.startswith("x86_64") else "generic"
        return Target(triple, cpu, "")

    def machine(self, opt: int = 2, reloc: str = "default", codemodel: str = "jitdefault"):
        """A new llvmlite TargetMachine for this target."""
        llvm = _llvm()
        target = llvm.Target.from_triple(self.triple)
        return target.create_target_machine(cpu=self.cpu, features=self.features, opt=opt,
                                            reloc=reloc, codemodel=codemodel)


def optimize_module(module, target: Target, level: int) -> None:
    """Optimize a parsed module in place.

    Level 1 is azc's lean pipeline: inline the op functions, promote the
    memory to registers (SROA), combine and simplify; it gives kernels as fast
    as LLVM's -O1 at about half the compile time (bench/bench_compile.py).
    Levels 2 and 3 run LLVM's default pipelines.  Level 0 only inlines.
    """
    llvm = _llvm()
    tm = target.machine(opt=max(level, 1))
    pto = llvm.create_pipeline_tuning_options(speed_level=max(level, 1))
    pb = llvm.create_pass_builder(tm, pto)
    if level >= 2:
        pm = pb.getModulePassManager()
    else:
        pm = llvm.create_new_module_pass_manager()
        pm.add_always_inliner_pass()
        if level == 1:
            pm.add_sroa_pass()
            pm.add_instruction_combine_pass()
            pm.add_simplify_cfg_pass()
            pm.add_sroa_pass()
            pm.add_global_dead_code_eliminate_pass()
    pm.run(module, pb)


def parse_ir(text: str):
    """Parse and verify LLVM IR text, in a new LLVM context (freed with the module, or
    with the engine it is added to); a JitError with the LLVM message if it is invalid."""
    llvm = _llvm()
    try:
        mod = llvm.parse_assembly(text, context=llvm.create_context())
        mod.verify()
    except RuntimeError as err:
        raise JitError(f"invalid LLVM IR generated (a bug in azc): {err}") from None
    return mod


class Engine:
    """One MCJIT execution engine; native code lives until `close()`."""

    def __init__(self, target: Target, codegen_opt: int = 2):
        llvm = _llvm()
        self.target = target
        self._tm = target.machine(opt=codegen_opt)  # owned by the engine: never reuse
        self._engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), self._tm)
        self.modules = 0
        self.kernels = 0
        self.closed = False
        self._contexts: list = []  # of the added modules: disposed only after the engine

    def add(self, module, names: Sequence[str], kernels: int = 1) -> list[int]:
        """Add an optimized module holding `kernels` kernels; the named functions' addresses."""
        if self.closed:
            raise JitError("engine already closed")
        with LLVM_LOCK:
            self._contexts.append(getattr(module, "_context", None))
            self._engine.add_module(module)
            self._engine.finalize_object()
            addrs = [self._engine.get_function_address(n) for n in names]
        if not all(addrs):
            raise JitError(f"symbols missing after compile: {names}")
        self.modules += 1
        self.kernels += kernels
        return addrs

    def add_object(self, data: bytes, names: Sequence[str], kernels: int = 1) -> list[int]:
        """Load object code (from `Compiler.object_code`); the named functions' addresses.

        No optimization or code generation runs.  `data` must be object code
        this process (or one with the same `Compiler.fingerprint`) emitted:
        LLVM does not validate it.
        """
        if self.closed:
            raise JitError("engine already closed")
        llvm = _llvm()
        with LLVM_LOCK:
            self._engine.add_object_file(llvm.ObjectFileRef.from_data(data))
            self._engine.finalize_object()
            addrs = [self._engine.get_function_address(n) for n in names]
        if not all(addrs):
            raise JitError(f"symbols missing in object code: {names}")
        self.modules += 1
        self.kernels += kernels
        return addrs

    def close(self) -> None:
        """Free all native code of this engine."""
        if not self.closed:
            self.closed = True
            with LLVM_LOCK:
                self._engine.close()
                self._contexts.clear()

    def __del__(self) -> None:
        # Dispose of the engine before the contexts of its modules, whatever order the
        # attributes would be released in (at exit, leave it all to the process's end).
        if sys.is_finalizing():
            return
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def memory_on_heap(memory: MemoryConfig, features: int) -> bool:
    """Whether native code of this memory and F allocates its memory on the heap (it is
    too large for the stack): its outputs are then checked (`check_outputs`)."""
    return not on_stack(max(Layout.of(memory, features).size, 1))


def check_outputs(out: np.ndarray) -> None:
    """Raise MemoryError if native code could not allocate its memory: a driver that
    fails to allocate marks every task's output row with STOPPED_EARLY -1."""
    if (out[..., OutField.STOPPED_EARLY] < 0).any():
        raise MemoryError("native code could not allocate the memory of the program")


@dataclass(eq=False)
class Kernel:
    """A compiled program: one native call evaluates it on every task of a descriptor."""

    key: str
    features: int
    address: int
    runner_address: int
    engine: Engine
    compile_seconds: float
    memory: MemoryConfig
    cfunc: Any = field(repr=False, default=None)
    runner: Any = field(repr=False, default=None)
    on_heap: bool = field(repr=False, default=False)

    def __post_init__(self) -> None:
        self.cfunc = KERNEL_SIGNATURE(self.address)
        self.runner = RUNNER_SIGNATURE(self.runner_address)
        self.on_heap = memory_on_heap(self.memory, self.features)

    def run_component(self, buffer: np.ndarray, kind: int, *, seed: int = 0, task: int = 0,
                      index: int = 0) -> None:
        """Run one component on a flat memory buffer in place (kind: 0 Setup, 1 Predict,
        2 Learn, 3 validation Predict); the buffer has this kernel's memory layout."""
        if self.engine.closed:
            raise JitError("this kernel's native code was freed (evicted from the cache)")
        size = Layout.of(self.memory, self.features).size
        if buffer.dtype != np.float64 or not buffer.flags.c_contiguous or buffer.size < size:
            raise JitError(f"memory buffer must be {size} contiguous float64")
        self.runner(buffer.ctypes.data, seed & 0xFFFFFFFFFFFFFFFF, task, kind, index)

    def run(self, tasks: Sequence[Task], seed: int = 0,
            max_abs_error: float = DEFAULT_MAX_ABS_ERROR, num_train: int | None = None,
            num_valid: int | None = None, record: bool = False,
            record_errors: bool = False) -> list[TaskResult]:
        """Evaluate on tasks (all of this kernel's F); one native call."""
        if self.engine.closed:
            raise JitError("this kernel's native code was freed (evicted from the cache)")
        batch = TaskBatch.of(tasks, self.features)
        return batch.run(self, seed, max_abs_error, num_train, num_valid, record, record_errors)


class TaskBatch:
    """The int64 descriptor of a list of tasks, and the buffers results are written to.

    Building one costs tens of microseconds, so `TaskBatch.of` keeps the last
    four (tasks are immutable; the batch holds references to their arrays, so
    callers with many one-off task sets build their batches themselves).
    """

    _recent: ClassVar[dict[tuple, TaskBatch]] = {}

    @classmethod
    def of(cls, tasks: Sequence[Task], features: int) -> TaskBatch:
        """The (cached) batch of a list of tasks."""
        key = (features, *map(id, tasks))
        batch = cls._recent.get(key)
        if batch is None or any(a is not b for a, b in zip(batch.tasks, tasks)):
            batch = cls(tasks, features)
            if len(cls._recent) >= 4:
                cls._recent.pop(next(iter(cls._recent)))
            cls._recent[key] = batch
        return batch

    def __init__(self, tasks: Sequence[Task], features: int):
        for t in tasks:
            if t.features != features:
                raise JitError(f"task {t.name} has F={t.features}, the kernel F={features}")
        self.tasks = list(tasks)
        self.features = features
        self.rows = np.arange(len(tasks), dtype=np.int64)
        desc = np.zeros((len(tasks), DESC_WIDTH), dtype=np.int64)
        for r, t in enumerate(tasks):
            desc[r, TaskField.TRAIN_X] = t.train_x.ctypes.data
            desc[r, TaskField.TRAIN_Y] = t.train_y.ctypes.data
            desc[r, TaskField.VALID_X] = t.valid_x.ctypes.data
            desc[r, TaskField.VALID_Y] = t.valid_y.ctypes.data
            assert t.train_order is not None  # Task always fills it in
            desc[r, TaskField.ORDER] = t.train_order.ctypes.data
            desc[r, TaskField.NUM_TRAIN] = t.num_train
            desc[r, TaskField.NUM_VALID] = t.num_valid
            desc[r, TaskField.EPOCHS] = t.num_train_epochs
            desc[r, TaskField.EVAL_TYPE] = int(t.eval_type)
            desc[r, TaskField.INDEX] = t.index
        self.desc = desc
        self.out = np.zeros((len(tasks), OUT_WIDTH), dtype=np.float64)
        self.full_train = np.array([t.max_train_steps for t in tasks], dtype=np.int64)
        self.full_valid = np.array([t.num_valid for t in tasks], dtype=np.int64)
        self._requests: tuple | None = None
        self.record_need = 0
        self._set_requests(None, None)

    def _set_requests(self, num_train: int | None, num_valid: int | None) -> None:
        if self._requests == (num_train, num_valid):
            return
        n = self.full_train if num_train is None else np.clip(num_train, 0, self.full_train)
        self.desc[:, TaskField.NUM_TRAIN_REQ] = n
        self.desc[:, TaskField.NUM_VALID_REQ] = (self.full_valid if num_valid is None
                                                 else num_valid)
        self._requests = (num_train, num_valid)
        # errors recorded per task (first epoch only): the longest of train and valid
        tr = np.minimum(self.desc[:, TaskField.NUM_TRAIN], self.desc[:, TaskField.NUM_TRAIN_REQ])
        va = np.minimum(self.full_valid, self.desc[:, TaskField.NUM_VALID_REQ])
        self.record_need = int(max(tr.max(initial=0), va.max(initial=0)))

    def fitness(self, kernel: Kernel, seed: int = 0,
                max_abs_error: float = DEFAULT_MAX_ABS_ERROR, num_train: int | None = None,
                num_valid: int | None = None) -> np.ndarray:
        """Per-task fitness only (the fast path: no result objects, no recording)."""
        if kernel.engine.closed:
            raise JitError("this kernel's native code was freed (evicted from the cache)")
        self._set_requests(num_train, num_valid)
        kernel.cfunc(self.desc.ctypes.data, len(self.tasks), seed & 0xFFFFFFFFFFFFFFFF,
                     float(max_abs_error), self.out.ctypes.data)
        if kernel.on_heap:
            check_outputs(self.out)
        return self.out[:, OutField.FITNESS].copy()

    def run(self, kernel: Kernel, seed: int, max_abs_error: float, num_train: int | None,
            num_valid: int | None, record: bool, record_errors: bool) -> list[TaskResult]:
        """Call the kernel and turn its outputs into TaskResults."""
        desc = self.desc
        self._set_requests(num_train, num_valid)
        keep: list[np.ndarray] = []
        bufs: list[dict[TaskField, np.ndarray]] = []
        recording = record or record_errors
        for r, t in enumerate(self.tasks):
            if not recording:
                bufs.append({})
                continue
            n_all = int(desc[r, TaskField.NUM_TRAIN_REQ])
            b: dict[TaskField, np.ndarray] = {}
            if record:
                b[TaskField.REC_TRAIN_PRED] = np.empty(max(n_all, 1))
                b[TaskField.REC_VALID_PRED] = np.empty(t.num_valid)
            if record_errors:
                b[TaskField.REC_TRAIN_ERR] = np.empty(t.num_train)
                b[TaskField.REC_VALID_ERR] = np.empty(t.num_valid)
            for rec in RECORD_FIELDS:
                desc[r, rec] = b[rec].ctypes.data if rec in b else 0
            keep.extend(b.values())
            bufs.append(b)
        try:
            kernel.cfunc(desc.ctypes.data, len(self.tasks), seed & 0xFFFFFFFFFFFFFFFF,
                         float(max_abs_error), self.out.ctypes.data)
        finally:
            if recording:
                desc[:, list(RECORD_FIELDS)] = 0
        if kernel.on_heap:
            check_outputs(self.out)
        results = []
        for r in range(len(self.tasks)):
            o = self.out[r]
            steps = int(o[OutField.TRAIN_STEPS])
            res = TaskResult(fitness=float(o[OutField.FITNESS]), train_steps=steps,
                             stopped_early=bool(o[OutField.STOPPED_EARLY]))
            b = bufs[r]
            if record:
                res.train_predictions = b[TaskField.REC_TRAIN_PRED][:steps].copy()
                res.valid_predictions = \
                    b[TaskField.REC_VALID_PRED][:int(o[OutField.NUM_VALID_PRED])].copy()
            if record_errors:
                res.train_errors = \
                    b[TaskField.REC_TRAIN_ERR][:int(o[OutField.NUM_TRAIN_ERR])].tolist()
                res.valid_errors = \
                    b[TaskField.REC_VALID_ERR][:int(o[OutField.NUM_VALID_ERR])].tolist()
            results.append(res)
        return results


def kernel_symbol(key: str) -> str:
    """The name of a kernel compiled alone (`Compiler.object_code`): a function of its key
    only, so its object code can be saved and loaded by key."""
    return "azk_" + re.sub(r"[^0-9A-Za-z_]", "_", key)


# Files whose content decides the code a kernel compiles to (besides the program).
_CODE_SOURCES = ("backend/irtext.py", "backend/contracts.py", "backend/emit.py",
                 "backend/emitters.py", "backend/protocol.py", "backend/driver.py",
                 "backend/kernels.py", "backend/jit.py", "ops.py")
_source_digest: str | None = None


def source_digest() -> str:
    """A digest of azc's code generator (lowering, JIT, op table, runtime IR).

    Part of `Compiler.fingerprint`, so object code saved by a different
    version of the code generator is never loaded, even when azc's version
    number did not change (a development checkout).
    """
    global _source_digest
    if _source_digest is None:
        from pathlib import Path
        root = Path(__file__).resolve().parents[1]
        h = hashlib.blake2b(digest_size=8)
        for rel in _CODE_SOURCES:
            h.update((root / rel).read_bytes())
        h.update(rng_functions().encode())
        _source_digest = h.hexdigest()
    return _source_digest


class Compiler:
    """Compiles programs to kernels, filling engines of bounded size.

    `compiled` counts the functions LLVM generated code for (two per kernel),
    `loaded` the kernels loaded from object code without compiling.
    """

    def __init__(self, target: Target | None = None, opt: int = 1, codegen_opt: int = 2,
                 engine_size: int = 256):
        self.target = target or Target.host()
        self.opt = opt
        self.codegen_opt = codegen_opt
        self.engine_size = engine_size
        self.engine: Engine | None = None
        self.compiled = 0
        self.loaded = 0
        self.compile_seconds = 0.0
        self._emitter: Any = None  # a target machine for emit_object, never given to an engine
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        """Everything besides the program that decides a kernel's object code: azc's version
        and code generator, llvmlite's version, the target triple, CPU name and features, and
        the optimization levels.  The on-disk cache keys object code on it."""
        if self._fingerprint is None:
            import llvmlite

            import azc
            t = self.target
            self._fingerprint = (f"azc {azc.__version__} {source_digest()}|llvmlite "
                                 f"{llvmlite.__version__}|{t.triple}|{t.cpu}|{t.features}|"
                                 f"opt {self.opt}|codegen {self.codegen_opt}")
        return self._fingerprint

    def _engine(self) -> Engine:
        if self.engine is None or self.engine.closed or self.engine.kernels >= self.engine_size:
            self.engine = Engine(self.target, self.codegen_opt)
        return self.engine

    def compile_text(self, text: str, names: Sequence[str],
                     kernels: int = 1) -> tuple[Engine, list[int], float]:
        """Parse, optimize, generate code and load it; (engine, addresses, seconds).

        The module is compiled to object code and the object code loaded into
        the engine (`emit_object` + `add_object_file`: the same code generation
        as MCJIT's own), so the LLVM module and its context are freed right
        away instead of living on in the engine: about half the resident
        memory per cached kernel.
        """
        start = time.perf_counter()
        with LLVM_LOCK:
            data = self._emit(text)
            engine = self._engine()
            addrs = engine.add_object(data, names, kernels)
        seconds = time.perf_counter() - start
        self.compiled += len(names)
        self.compile_seconds += seconds
        return engine, addrs, seconds

    def compile(self, program: Program, features: int, key: str | None = None) -> Kernel:
        """One program's kernel (memory: the smallest that fits it)."""
        return self.compile_many([program], features, [key] if key else None)[0]

    def compile_many(self, programs: Sequence[Program], features: int,
                     keys: Sequence[str] | None = None) -> list[Kernel]:
        """Several programs' kernels in one module (cheaper per program than one by one)."""
        return self.compile_with_memory(programs, features,
                                        [MemoryConfig.fitting(p) for p in programs], keys)

    def compile_with_memory(self, programs: Sequence[Program], features: int,
                            memories: Sequence[MemoryConfig],
                            keys: Sequence[str] | None = None) -> list[Kernel]:
        """Kernels with given memory layouts (one module for all programs)."""
        keys = list(keys) if keys else [structural_hash(p) for p in programs]
        parts: list[str] = []
        names = []
        declared: set[str] = set()
        for i, (prog, mem, key) in enumerate(zip(programs, memories, keys)):
            name = f"k{i}_{key[:12]}"
            text = kernel_module(prog, mem, features, name)
            parts.append(dedupe(text, declared))
            names += [name, f"{name}_run"]
        engine, addrs, seconds = self.compile_text("\n".join(parts), names, len(programs))
        per = seconds / max(1, len(programs))
        return [Kernel(key, features, addrs[2 * i], addrs[2 * i + 1], engine, per, mem)
                for i, (key, mem) in enumerate(zip(keys, memories))]

    def object_code(self, program: Program, memory: MemoryConfig, features: int,
                    key: str) -> bytes:
        """The object code of one program's kernel, alone in its module (symbols
        `kernel_symbol(key)` and its `_run`): parse, optimize, codegen."""
        name = kernel_symbol(key)
        data = self._emit(kernel_module(program, memory, features, name))
        self.compiled += 2
        return data

    def _emit(self, text: str) -> bytes:
        """Parse, optimize and generate the object code of a module."""
        with LLVM_LOCK:
            mod = parse_ir(text)
            optimize_module(mod, self.target, self.opt)
            if self._emitter is None:
                self._emitter = self.target.machine(opt=self.codegen_opt)
            return self._emitter.emit_object(mod)

    def load_object(self, data: bytes, memory: MemoryConfig, features: int,
                    key: str) -> Kernel:
        """A kernel from its object code (`object_code`), with no LLVM compile.

        Its `compile_seconds` is the time the load took."""
        start = time.perf_counter()
        kernel = self._add_object(data, memory, features, key)
        self.loaded += 1
        kernel.compile_seconds = time.perf_counter() - start
        return kernel

    def _add_object(self, data: bytes, memory: MemoryConfig, features: int,
                    key: str) -> Kernel:
        name = kernel_symbol(key)
        with LLVM_LOCK:
            engine = self._engine()
            addrs = engine.add_object(data, [name, f"{name}_run"])
        return Kernel(key, features, addrs[0], addrs[1], engine, 0.0, memory)

    def compile_object(self, program: Program, memory: MemoryConfig, features: int,
                       key: str) -> tuple[Kernel, bytes]:
        """(kernel, its object code): one program compiled alone, so that its object code
        can be saved under its key (slower per program than `compile_many`'s batches)."""
        start = time.perf_counter()
        data = self.object_code(program, memory, features, key)
        kernel = self._add_object(data, memory, features, key)
        kernel.compile_seconds = time.perf_counter() - start
        self.compile_seconds += kernel.compile_seconds
        return kernel, data

    def llvm_ir(self, program: Program, features: int, optimized: bool = False) -> str:
        """The LLVM IR of a program's kernel (optionally after optimization)."""
        text = kernel_module(program, MemoryConfig.fitting(program), features)
        if not optimized:
            return text
        with LLVM_LOCK:
            mod = parse_ir(text)
            optimize_module(mod, self.target, max(self.opt, 1))
        return str(mod)

    def assembly(self, program: Program, features: int) -> str:
        """The native assembly of a program's kernel."""
        text = kernel_module(program, MemoryConfig.fitting(program), features)
        with LLVM_LOCK:
            mod = parse_ir(text)
            optimize_module(mod, self.target, max(self.opt, 1))
            return self.target.machine(opt=self.codegen_opt).emit_assembly(mod)


_default: Compiler | None = None


def default_compiler() -> Compiler:
    """The process-wide compiler."""
    global _default
    if _default is None:
        _default = Compiler()
    return _default
