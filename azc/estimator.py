"""`azc.Estimator`: a program as a scikit-learn style estimator, compiled in this process.

The estimator is the exported predictor's `Model` (runtime/predictor.py)
over the same native code: the standalone model module of
`azc.backend.model`, optimized with LLVM's O3 pipeline for this CPU and
loaded into an in-process JIT engine instead of a shared library.  So its
numbers are the exported library's, bit for bit, and the reference
interpreter's (`azc.interp`) for the same seed.

The library is compiled when the estimator is first fitted on data of F
features, once per (program, memory, F) in this process (a small cache), so
clones in pipelines and cross-validation share it.  Pickles carry the
program, the parameters and the learned state; the native code is rebuilt
on first use after unpickling.

Bad data raises the loader's `InputError` (a ValueError, as scikit-learn
expects of estimators); a program that does not fit its memory at the data's
F raises azc's VerifyError.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from azc._runtime import predictor as rt
from azc.backend import model as native
from azc.backend.jit import LLVM_LOCK, Engine, Target, optimize_module, parse_ir
from azc.errors import AzcError
from azc.frontend import parse, parse_file
from azc.interp import DEFAULT_MAX_ABS_ERROR
from azc.ir import MemoryConfig, Program, structural_hash, verify
from azc.ops import Op, on_change
from azc.printer import format_program
from azc.resources import example_file
from azc.tasks.task import EvalType

CACHE_SIZE = 32
_cache: OrderedDict[tuple, rt.Library] = OrderedDict()
_cache_lock = threading.Lock()
_programs: dict[str, Program] = {}


@on_change
def _forget(added: tuple[Op, ...], removed: tuple[Op, ...]) -> None:
    """Parsed programs and compiled models depend on the op table."""
    with _cache_lock:
        _cache.clear()
    _programs.clear()


def resolve_program(program: Program | str) -> Program:
    """A Program from a Program, program text, a .az path or a shipped example name."""
    if isinstance(program, Program):
        return program
    if not isinstance(program, str):
        raise AzcError(f"program must be a Program, program text or a .az path, got "
                       f"{type(program).__name__}")
    cached = _programs.get(program)
    if cached is not None:
        return cached
    from pathlib import Path
    if "\n" not in program and (Path(program).is_file() or example_file(program)):
        path = Path(program) if Path(program).is_file() else example_file(program)
        assert path is not None
        prog = parse_file(path)
    else:
        prog = parse(program)
    if len(_programs) > 256:
        _programs.clear()
    _programs[program] = prog
    return prog


def jit_library(program: Program, memory: MemoryConfig, features: int) -> rt.Library:
    """The model library of a program at F, compiled in-process (cached)."""
    key = (structural_hash(program), memory.scalars, memory.vectors, memory.matrices, features)
    with _cache_lock:
        lib = _cache.get(key)
        if lib is not None:
            _cache.move_to_end(key)
            return lib
    target = Target.host()
    text = native.model_module(program, memory, features, eval_type=int(EvalType.RMS_ERROR),
                               triple=target.triple, cpu=target.cpu,
                               cpu_features=target.features,
                               program_text=format_program(program))
    names = list(rt.PROTOTYPES)
    with LLVM_LOCK:
        mod = parse_ir(text)
        optimize_module(mod, target, 3)
        engine = Engine(target, codegen_opt=3)
        addrs = engine.add(mod, names)
    lib = rt.Library.from_addresses(dict(zip(names, addrs)),
                                    f"azc JIT model (F={features}, {memory})", engine)
    with _cache_lock:
        _cache[key] = lib
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)  # the engine closes when no estimator holds it
    return lib


class Estimator(rt.Model):
    """A program as a scikit-learn estimator (regressor or binary classifier).

    - `program`: a Program, program text, a .az path or a shipped example;
    - `eval_type`: "RMS_ERROR" (a regressor) or "ACCURACY" (a binary
      classifier: s1 goes through a sigmoid, as in azc's evaluation);
    - `random_state`: seed of the program's random ops (int, None, numpy
      RandomState or Generator); the same seed draws what `azc eval --seed`
      draws;
    - `max_abs_error`: a training error above it (or NaN) stops training;
    - `epochs`: passes over the data in `fit`;
    - `memory`: a MemoryConfig or (scalars, vectors, matrices); default the
      smallest that fits the program.

    `fit(X, y)` then `predict(X)` on a single-epoch task gives the
    interpreter's validation predictions exactly; see runtime/predictor.py
    for everything else (partial_fit, predict_proba, predict_raw, memory()).
    """

    _required_parameters = ("program",)

    def __init__(self, program: Program | str, eval_type: str = "RMS_ERROR",
                 random_state: Any = 0, max_abs_error: float = DEFAULT_MAX_ABS_ERROR,
                 epochs: int = 1, memory: MemoryConfig | tuple[int, int, int] | None = None):
        self.program = program
        self.eval_type = eval_type
        self.random_state = random_state
        self.max_abs_error = max_abs_error
        self.epochs = epochs
        self.memory = memory

    def __repr__(self) -> str:
        args = []
        for name, value in self.get_params().items():
            if name == "program" and isinstance(value, Program):
                s, p, lr = value.sizes()
                value = f"<program {s}/{p}/{lr} {structural_hash(value)[:8]}>"
                args.append(f"{name}={value}")
            else:
                args.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(args)})"

    def _program(self) -> Program:
        return resolve_program(self.program)

    def _memory(self, program: Program, features: int) -> MemoryConfig:
        mem = self.memory
        if mem is None:
            mem = MemoryConfig.fitting(program)
        elif not isinstance(mem, MemoryConfig):
            try:
                s, v, m = mem
            except (TypeError, ValueError):
                raise rt.InputError(f"memory must be a MemoryConfig or (scalars, vectors, "
                                    f"matrices), got {mem!r}") from None
            mem = MemoryConfig(int(s), int(v), int(m))
        mem = mem.with_features(features)
        verify(program, mem)
        return mem

    def _library_for(self, features: int | None) -> rt.Library:
        if features is None:
            if "n_features_in_" not in self.__dict__:
                raise rt.not_fitted(f"This {type(self).__name__} instance is not fitted yet: "
                                    f"its feature size is unknown")
            features = int(self.n_features_in_)
        lib = self.__dict__.get("_lib")
        if lib is not None and lib.features == features:
            return lib
        program = self._program()
        lib = jit_library(program, self._memory(program, features), features)
        self._lib = lib
        return lib

    def _eval_type(self) -> int:
        try:
            return int(EvalType.parse(self.eval_type))
        except AzcError as exc:
            raise rt.InputError(exc.message) from None

    def _predict_random(self) -> bool:
        try:
            from azc.ops import OPS
            return any(OPS[i.op].random for i in self._program().predict)
        except Exception:
            return False

    def save(self, path: Any = None) -> Any:
        """Write the fitted state to `path` (a folder or a .npz file)."""
        if path is None:
            raise rt.InputError("Estimator.save needs a path (a folder or a .npz file)")
        return super().save(path)


__all__ = ["Estimator", "jit_library", "resolve_program"]
