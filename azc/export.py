"""Export: a program compiled into a standalone predictor folder.

`export(program, out, ...)` writes a folder that holds everything a user
needs and nothing from azc:

    libmodel.so     the program as a native shared library with the C ABI of model.h
                    (LLVM O3 for the host CPU, or portable x86-64 with target="generic"),
                    linked by the system C compiler; it needs only libc and libm
    model.h         the C header of that ABI, with this model's sizes as #defines
    predictor.py    a ctypes + numpy loader with a scikit-learn style estimator
    program.az      the program in canonical form
    manifest.json   sizes, eval type, fitness, versions, CPU target, file names, ABI
    README.md       how to use the folder from Python and from C
    example.c       a C program that predicts rows read from standard input
    state.npz       (when fitted) the learned state, so `predictor.load(out)` predicts
    state.bin       (when fitted) the same state as raw azc_model_state bytes, for C

With tasks (a dataset, a built-in task set, a TOML file), the exported model
is fitted on the first task exactly as `azc eval` evaluates it (Setup, then
per epoch training in the task's order and a validation pass whose memory
carries on), by the exported library itself; the fitness it reaches is in
the manifest and the state after the evaluation in `state.npz`.

The library is built from the object code llvmlite emits (position
independent) and linked with `cc -shared ... -lm` (`$CC`, else cc, gcc or
clang on PATH).  This module owns building the folder; the LLVM text is
`azc.backend.model`, the loader `runtime/predictor.py`, the header
`runtime/model.h`.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from azc import interp
from azc._runtime import predictor as rt
from azc.backend import model as native
from azc.backend.contracts import Layout, StateWord
from azc.backend.jit import LLVM_LOCK, Target, optimize_module, parse_ir
from azc.errors import ExportError
from azc.frontend import SourceMap, parse_file_with_source, parse_with_source, run_features
from azc.interp import DEFAULT_MAX_ABS_ERROR
from azc.ir import MemoryConfig, Program, verify
from azc.printer import format_program
from azc.resources import example_file, runtime_file
from azc.results import MIN_FITNESS
from azc.tasks.task import EvalType, Task

LIBRARY = rt.LIBRARY
FILES = {"library": LIBRARY, "header": "model.h", "predictor": "predictor.py",
         "program": "program.az", "manifest": rt.MANIFEST, "readme": "README.md",
         "example": "example.c", "state": rt.STATE_FILE, "state_c": "state.bin"}
FIT_FILES = ("state", "state_c")
FORMAT = "azc-model"
HEADER_MARK = "/* @AZC_MODEL_CONSTANTS@ */"
OPT_LEVEL = 3


@dataclass
class ExportResult:
    """What `export` wrote: the folder, its manifest, and the fit (when tasks were given)."""

    folder: Path
    manifest: dict[str, Any]
    fitness: float | None = None
    files: list[str] = field(default_factory=list)

    @property
    def library(self) -> Path:
        """The shared library's path."""
        return self.folder / LIBRARY


def resolve_target(target: str | Target) -> tuple[str, Target]:
    """(name, Target) from "host", "generic" or a Target."""
    if isinstance(target, Target):
        return "custom", target
    if target == "host":
        return "host", Target.host()
    if target == "generic":
        return "generic", Target.generic()
    raise ExportError(f"unknown target {target!r}; use host or generic")


def find_c_compiler() -> list[str]:
    """The command of the system C compiler: $CC, else cc, gcc or clang on PATH."""
    env = os.environ.get("CC", "").strip()
    if env:
        cmd = shlex.split(env)
        if shutil.which(cmd[0]):
            return cmd
        raise ExportError(f"the C compiler in $CC ({env!r}) is not found on PATH")
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return [path]
    raise ExportError("no C compiler found to link the model library (looked for $CC, cc, "
                      "gcc and clang on PATH); install one, e.g. `apt-get install gcc`")


def model_text(program: Program, memory: MemoryConfig, features: int, eval_type: EvalType,
               target: Target) -> str:
    """The LLVM IR text of a program's standalone model."""
    return native.model_module(program, memory, features, eval_type=int(eval_type),
                               triple=target.triple, cpu=target.cpu,
                               cpu_features=target.features,
                               program_text=format_program(program))


def object_code(program: Program, memory: MemoryConfig, features: int, eval_type: EvalType,
                target: Target) -> bytes:
    """Position-independent object code of the model, optimized with LLVM's O3 pipeline."""
    text = model_text(program, memory, features, eval_type, target)
    with LLVM_LOCK:
        mod = parse_ir(text)
        optimize_module(mod, target, OPT_LEVEL)
        machine = target.machine(opt=OPT_LEVEL, reloc="pic", codemodel="default")
        return machine.emit_object(mod)


def link_library(obj: Path, out: Path, cc: list[str] | None = None) -> list[str]:
    """Link object code into a shared library with libm; the command that did it."""
    cmd = [*(cc or find_c_compiler()), "-shared", "-o", str(out), str(obj), "-lm"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except OSError as exc:
        raise ExportError(f"cannot run the C compiler {cmd[0]}: {exc}") from None
    if proc.returncode != 0:
        raise ExportError(f"linking the model library failed ({shlex.join(cmd)}):\n"
                          f"{proc.stderr.strip()}")
    return cmd


def header_text(memory: MemoryConfig, features: int, eval_type: EvalType) -> str:
    """model.h with this model's sizes filled in."""
    text = runtime_file("model.h").read_text()
    if HEADER_MARK not in text:  # pragma: no cover - the shipped header has the mark
        raise ExportError("runtime/model.h lacks its constants mark")
    return text.replace(HEADER_MARK, native.header_constants(memory, features,
                                                              int(eval_type)).rstrip())


# ---------------------------------------------------------------------------
# Fitting by the evaluation protocol, with the exported library.
# ---------------------------------------------------------------------------

@dataclass
class FitReport:
    """How the exported model was fitted (one task, by azc's evaluation protocol)."""

    task: str
    fitness: float
    train_steps: int
    stopped_early: bool
    epochs: int
    num_train: int
    num_valid: int
    seed: int


def validation_fitness(s1: np.ndarray, proba: np.ndarray | None, labels: np.ndarray,
                       eval_type: EvalType, max_abs_error: float) -> tuple[float, int]:
    """(fitness, examples validated) of one validation pass of the library, by the
    reference's rules (`azc.interp.validation_error`, `validation_fitness`).

    Validation stops at the first error that is NaN or above `max_abs_error`
    (fitness 0); the loss is summed in order and divided by the full size.
    """
    accuracy = eval_type is EvalType.ACCURACY
    loss = 0.0
    for j in range(len(labels)):
        p = float(proba[j]) if accuracy and proba is not None else None
        err, term = interp.validation_error(float(labels[j]), float(s1[j]), accuracy, p)
        loss += term
        if math.isnan(abs(err)) or abs(err) > max_abs_error:
            return MIN_FITNESS, j + 1
    return interp.validation_fitness(loss, len(labels), accuracy), len(labels)


def protocol_fit(lib: rt.Library, task: Task, seed: int,
                 max_abs_error: float = DEFAULT_MAX_ABS_ERROR) -> tuple[np.ndarray, FitReport]:
    """(state, report): the library run on a task exactly as azc.interp evaluates it.

    The state is the memory after the evaluation (training and validation
    passes).  Keys: task index 0; training step t as (Predict, t) and
    (Learn, t); validation example j of epoch e as (Valid, e * Nv + j).
    """
    eval_type = task.eval_type
    state = lib.new_state(seed, int(eval_type))
    header = state[:rt.STATE_WORDS].view(np.int64)
    nv = task.num_valid
    best = MIN_FITNESS
    stopped = False
    orders = task.train_order
    assert orders is not None  # Task fills it in
    for epoch in range(task.num_train_epochs):
        order = orders[epoch]
        x = np.ascontiguousarray(task.train_x[order])
        y = np.ascontiguousarray(task.train_y[order])
        status, _ = lib.fit(state, x, y, max_abs_error)
        if status == rt.STATUS_STOPPED:
            stopped = True
            if epoch == 0:
                best = MIN_FITNESS
            break
        header[StateWord.PREDICT_COUNT] = epoch * nv
        trial = state.copy()
        s1, proba = lib.predict(trial, task.valid_x, proba=True)
        fitness, done = validation_fitness(s1, proba, task.valid_y, eval_type, max_abs_error)
        if done == nv:
            state[:] = trial
        else:  # validation stopped at example done - 1: run just those on the state
            lib.predict(state, np.ascontiguousarray(task.valid_x[:done]))
        best = max(fitness, best)
    report = FitReport(task.name, best, int(header[StateWord.TRAIN_STEPS]), stopped,
                       task.num_train_epochs, task.num_train, nv, seed)
    return state, report


# ---------------------------------------------------------------------------
# The folder.
# ---------------------------------------------------------------------------

def _load_program(program: Program | str | Path
                  ) -> tuple[Program, SourceMap | None, Path | None]:
    if isinstance(program, Program):
        return program, None, None
    if isinstance(program, Path) or (isinstance(program, str) and "\n" not in program
                                     and (Path(program).exists() or example_file(program))):
        path = Path(program)
        if not path.exists():
            shipped = example_file(str(program))
            if shipped is None:
                raise ExportError(f"no such program file: {program}")
            path = shipped
        return *parse_file_with_source(path), path
    if isinstance(program, str):
        return *parse_with_source(program), None
    raise ExportError(f"expected a Program, program text or a .az path, got "
                      f"{type(program).__name__}")


def _run_info(path: Path | None, program: Program) -> dict[str, Any]:
    """What a run folder says about its best.az: F (from its header) and the fitness."""
    if path is None:
        return {}
    info: dict[str, Any] = {}
    try:
        features = run_features(path.read_text())
    except OSError:
        features = None
    if features is not None:
        info["features"] = features
    result = path.parent / "result.json"
    if result.is_file():
        try:
            data = json.loads(result.read_text())
        except (OSError, ValueError):
            data = {}
        if data.get("program") == format_program(program) and "final_fitness" in data:
            info["final_fitness"] = data["final_fitness"]
            info["config"] = data.get("config")
    return info


def _resolve_tasks(tasks: str | Path | Task | Sequence[Task] | None,
                   eval_type: str | EvalType | None) -> list[Task]:
    if tasks is None:
        return []
    if isinstance(tasks, Task):
        return [tasks]
    if isinstance(tasks, (str, Path)):
        from azc.tasks import load_tasks
        return load_tasks(str(tasks), eval_type=eval_type)
    out = list(tasks)
    if not all(isinstance(t, Task) for t in out):
        raise ExportError("tasks must be Task objects, a task name, a TOML file or a dataset")
    return out


def _check_out(out: Path) -> None:
    """Refuse to write into anything but a new or empty folder or an earlier export."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder")
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ExportError(f"cannot create {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {out}: no permission to write in {parent}")
    if out.is_dir() and any(out.iterdir()):
        manifest = out / rt.MANIFEST
        try:
            ok = json.loads(manifest.read_text()).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            ok = False
        if not ok:
            raise ExportError(f"{out} is a folder with other files in it; export into a new "
                              f"or empty folder (or an earlier export, which is replaced)")


def export(program: Program | str | Path, out: str | Path, *, features: int | None = None,
           memory: MemoryConfig | None = None,
           tasks: str | Path | Task | Sequence[Task] | None = None,
           eval_type: str | EvalType | None = None, target: str | Target = "host",
           seed: int = 0, max_abs_error: float = DEFAULT_MAX_ABS_ERROR) -> ExportResult:
    """Compile a program into a standalone predictor folder `out` (see the module docstring).

    - `program`: a Program, program text, a .az path or a shipped example name;
    - `features`: F (default: from the tasks, or from a run's best.az header);
    - `memory`: address counts (default: the smallest that fits the program);
    - `tasks`: fit the model on the first of these tasks (a dataset path,
      built-in name or TOML file, or Task objects) and save its state;
    - `eval_type`: RMS_ERROR (regression) or ACCURACY (binary classification);
      default the tasks', else RMS_ERROR;
    - `target`: "host" (this CPU, the fastest), "generic" (any x86-64) or a Target;
    - `seed`: the random ops' seed for the fit (also the saved model's random_state).
    """
    prog, source, path = _load_program(program)
    run = _run_info(path, prog)
    if source is not None:
        source.features(features)  # a given F must agree with a run's header
    task_list = _resolve_tasks(tasks, eval_type)
    if task_list and task_list[0].index != 0:
        task_list[0] = task_list[0].with_index(0)
    F = features
    if task_list:
        if F is not None and F != task_list[0].features:
            raise ExportError(f"--features is {F} but the task data has "
                              f"{task_list[0].features} features")
        F = task_list[0].features
    if F is None:
        F = run.get("features")
    if F is None:
        raise ExportError("the feature size is unknown: give features (--features F) or "
                          "training data (--train DATA / --task TASK)")
    if F < 1:
        raise ExportError(f"the feature size must be at least 1, got {F}")
    etype = (task_list[0].eval_type if task_list and eval_type is None
             else EvalType.parse(eval_type or EvalType.RMS_ERROR))
    mem = (memory or MemoryConfig.fitting(prog)).with_features(F)
    if source is not None:
        source.verify(prog, mem)
    else:
        verify(prog, mem)
    target_name, tgt = resolve_target(target)
    out = Path(out)
    _check_out(out)
    cc = find_c_compiler()

    import llvmlite

    import azc
    with tempfile.TemporaryDirectory(prefix="azc-export-") as tmp:
        build = Path(tmp)
        obj = build / "model.o"
        obj.write_bytes(object_code(prog, mem, F, etype, tgt))
        link_cmd = link_library(obj, build / LIBRARY, cc)
        obj.unlink()
        (build / FILES["header"]).write_text(header_text(mem, F, etype))
        shutil.copy2(runtime_file("predictor.py"), build / FILES["predictor"])
        shutil.copy2(runtime_file("example.c"), build / FILES["example"])
        (build / FILES["program"]).write_text(format_program(prog))
        report = None
        if task_list:
            try:
                lib = rt.Library.open(build / LIBRARY)
            except rt.LibraryError as exc:
                raise ExportError(f"cannot fit the model here: {exc}") from None
            state, report = protocol_fit(lib, task_list[0], seed, max_abs_error)
            _save_state(build / FILES["state"], state, seed, max_abs_error, etype)
            state.tofile(build / FILES["state_c"])
        manifest = _manifest(prog, mem, F, etype, target_name, tgt, report, run, link_cmd,
                             seed, llvmlite.__version__, azc.__version__)
        (build / FILES["manifest"]).write_text(json.dumps(manifest, indent=2) + "\n")
        (build / FILES["readme"]).write_text(_readme(manifest))
        files = sorted(p.name for p in build.iterdir())
        try:
            _install(build, out, files, fitted=report is not None)
        except OSError as err:
            raise ExportError(f"cannot write the predictor folder {out}: "
                              f"{err.strerror or err}") from None
    return ExportResult(out, manifest, report.fitness if report else None, files)


def _install(build: Path, out: Path, files: list[str], fitted: bool) -> None:
    """Move the built files into `out`; a new file replaces the old by rename (a loaded
    library stays valid), and an unfitted export removes a fitted one's state."""
    out.mkdir(parents=True, exist_ok=True)
    for key in FIT_FILES:
        stale = out / FILES[key]
        if stale.exists() and not fitted:
            stale.unlink()
    for name in files:
        tmp_file = out / f".{name}.tmp"
        shutil.copy2(build / name, tmp_file)
        os.replace(tmp_file, out / name)


def _save_state(file: Path, state: np.ndarray, seed: int, max_abs_error: float,
                eval_type: EvalType) -> None:
    meta = json.dumps({"random_state": seed, "seed": seed, "max_abs_error": max_abs_error,
                       "epochs": 1, "abi_version": native.ABI_VERSION})
    arrays = {"state": state, "meta": np.array(meta)}
    if eval_type is EvalType.ACCURACY:
        arrays["classes"] = np.array([0.0, 1.0])
    np.savez(file, **arrays)  # type: ignore[arg-type]


def _manifest(prog: Program, mem: MemoryConfig, F: int, etype: EvalType, target_name: str,
              tgt: Target, report: FitReport | None, run: dict[str, Any], link_cmd: list[str],
              seed: int, llvmlite_version: str, azc_version: str) -> dict[str, Any]:
    fit = None
    if report is not None:
        fit = {"task": report.task, "fitness": report.fitness, "seed": report.seed,
               "epochs": report.epochs, "num_train": report.num_train,
               "num_valid": report.num_valid, "train_steps": report.train_steps,
               "stopped_early": report.stopped_early}
    fitness = report.fitness if report is not None else run.get("final_fitness")
    return {
        "format": FORMAT,
        "abi_version": native.ABI_VERSION,
        "azc_version": azc_version,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "features": F,
        "memory": {"scalars": mem.scalars, "vectors": mem.vectors, "matrices": mem.matrices},
        "memory_size": Layout.of(mem, F).size,
        "state_size": native.state_size(Layout.of(mem, F)),
        "eval_type": etype.name,
        "task_type": "classification" if etype is EvalType.ACCURACY else "regression",
        "uses_random": prog.uses_random(),
        "fitness": fitness,
        "fitness_source": ("fit" if report is not None else
                           ("run" if "final_fitness" in run else None)),
        "fit": fit,
        "search": ({"final_fitness": run["final_fitness"], "config": run.get("config")}
                   if "final_fitness" in run else None),
        "target": {"name": target_name, "triple": tgt.triple, "cpu": tgt.cpu,
                   "features": tgt.features},
        "build": {"opt_level": OPT_LEVEL, "llvmlite": llvmlite_version,
                  "link": " ".join([Path(link_cmd[0]).name, "-shared", "-o", LIBRARY,
                                    "model.o", "-lm"])},
        "files": {k: v for k, v in FILES.items() if k not in FIT_FILES or report is not None},
        "seed": seed,
    }


def _readme(manifest: dict[str, Any]) -> str:
    kind = manifest["task_type"]
    fitted = manifest["fit"] is not None
    F = manifest["features"]
    return f"""# An azc model ({kind}, F={F})

Exported by azc {manifest['azc_version']} for CPU `{manifest['target']['cpu']}`
({manifest['target']['triple']}); C ABI version {manifest['abi_version']}.
{'Fitted on ' + manifest['fit']['task'] + f" (fitness {manifest['fit']['fitness']:.6g})."
 if fitted else 'Not fitted: call fit first.'}

Python (numpy only):

```python
import sys; sys.path.insert(0, "path/to/this/folder")
import predictor
m = predictor.load("path/to/this/folder")   # {'the fitted model' if fitted else 'unfitted'}
m.fit(X_train, y_train)                      # X: (n, {F}) float64
print(m.predict(X))
```

C (see model.h, and example.c):

```c
#include "model.h"
azc_model_state *m = azc_model_new(0);
azc_model_fit(m, x_train, y_train, n_train, 100.0, NULL);
azc_model_predict(m, x, n, out, NULL);
azc_model_free(m);
```

    cc example.c -I. -L. -lmodel -Wl,-rpath,'$ORIGIN' -o predict
    ./predict {'state.bin ' if fitted else ''}< rows.txt        # F numbers per row

`program.az` is the program; `manifest.json` says what was built.
"""


__all__ = ["ExportResult", "FitReport", "export", "find_c_compiler", "link_library",
           "model_text", "object_code", "protocol_fit", "resolve_target", "validation_fitness"]


class _CallableModule(types.ModuleType):
    """This module, callable as `export`: importing the submodule azc.export sets the
    attribute `azc.export` to it, and `azc.export(...)` must still export."""

    def __call__(self, *args: Any, **kwargs: Any) -> ExportResult:
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
