"""Export: the standalone predictor folder against the reference interpreter.

The exported library (fitted by azc.interp's protocol), the shipped
predictor.py (in this process, in a fresh virtual environment with numpy
only, and from C through model.h) and the in-process `azc.Estimator` must all
give the interpreter's numbers bit for bit: validation predictions, fitness
and the memory after the evaluation.  Then pickling, scikit-learn's estimator
checks, and every error a user can cause.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import textwrap
import venv
import warnings
from pathlib import Path

import numpy as np
import pytest
from azc._runtime import predictor as rt
from hypothesis import HealthCheck, given, settings

import azc
from azc import cli
from azc.backend import model as native
from azc.backend.contracts import STATE_HEADER, Layout, ModelStatus
from azc.backend.jit import Target
from azc.errors import ExportError
from azc.estimator import Estimator, jit_library
from azc.export import export, find_c_compiler
from azc.frontend import parse, parse_file
from azc.interp import Executor, evaluate_task
from azc.ir import MemoryConfig
from azc.printer import format_program
from azc.resources import runtime_file
from azc.results import sigmoid
from azc.tasks import load_tasks
from azc.tasks.task import EvalType, Task

from . import strategies as azs
from .test_frontend import EXAMPLES
from .test_jit import same

LINEAR = parse_file(EXAMPLES / "linear_sgd.az")
NEURAL = parse_file(EXAMPLES / "neural_net.az")


def interp_memory(program, task: Task, seed: int) -> tuple[float, np.ndarray]:
    """(fitness, memory buffer) after azc.interp's evaluation of a task."""
    mem = MemoryConfig.fitting(program).with_features(task.features)
    ex = Executor(program, task, mem, seed=seed)
    with np.errstate(all="ignore"):
        fitness = ex.execute()
    return fitness, Layout.of(mem, task.features).pack(ex.mem.s, ex.mem.v, ex.mem.m)


def classification_task(features: int = 4, n: int = 300, nv: int = 100, seed: int = 3) -> Task:
    """A linearly separable binary task with 0/1 labels."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=features)
    x, vx = rng.normal(size=(n, features)), rng.normal(size=(nv, features))
    return Task(x, (x @ w > 0).astype(float), vx, (vx @ w > 0).astype(float),
                EvalType.ACCURACY, name="separable")


@pytest.fixture(scope="module")
def linear_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("linear") / "model"
    export(LINEAR, out, tasks="linear")
    return out


@pytest.fixture(scope="module")
def neural_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("neural") / "model"
    export(NEURAL, out, tasks="nonlinear", seed=5)
    return out


def test_the_loader_speaks_the_backend_abi() -> None:
    assert rt.ABI_VERSION == native.ABI_VERSION
    assert rt.MAGIC == native.MAGIC
    assert rt.STATE_FIELDS == native.STATE_FIELDS
    assert rt.INFO_INT_FIELDS == native.INFO_INT_FIELDS
    assert rt.INFO_STR_FIELDS == native.INFO_STR_FIELDS
    assert set(rt.PROTOTYPES) <= set(native.EXPORTED)
    assert (rt.RMS_ERROR, rt.ACCURACY) == (EvalType.RMS_ERROR, EvalType.ACCURACY)
    assert (rt.STATUS_OK, rt.STATUS_STOPPED, rt.STATUS_BADSTATE, rt.STATUS_EINVAL) == (
        ModelStatus.OK, ModelStatus.STOPPED, ModelStatus.EBADSTATE, ModelStatus.EINVAL)
    assert rt.STATE_WORDS * 8 == STATE_HEADER
    header = runtime_file("model.h").read_text()
    assert f"#define AZC_MODEL_ABI_VERSION {native.ABI_VERSION}" in header
    assert f"0x{native.MAGIC:016X}ULL" in header
    for name, code in native.STATUS.items():
        assert re.search(rf"#define {name} \(?{code}\)?", header), name
    for name in native.EXPORTED:
        assert f" {name}(" in header or f"*{name}(" in header, name


def test_folder_holds_everything_and_nothing_from_azc(linear_export: Path) -> None:
    names = {p.name for p in linear_export.iterdir()}
    assert names == {"libmodel.so", "model.h", "predictor.py", "program.az", "manifest.json",
                     "state.npz", "state.bin", "README.md", "example.c"}
    manifest = json.loads((linear_export / "manifest.json").read_text())
    assert manifest["features"] == 4 and manifest["eval_type"] == "RMS_ERROR"
    assert manifest["memory"] == {"scalars": 5, "vectors": 3, "matrices": 0}
    assert manifest["abi_version"] == native.ABI_VERSION
    assert manifest["target"]["cpu"] == Target.host().cpu
    assert manifest["files"]["library"] == "libmodel.so" and manifest["fit"]["num_train"] == 1000
    assert parse((linear_export / "program.az").read_text()) == LINEAR
    assert "import azc" not in (linear_export / "predictor.py").read_text()
    assert "#define AZC_MODEL_FEATURES 4" in (linear_export / "model.h").read_text()
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm not installed")
    undefined = subprocess.run([nm, "-D", "--undefined-only", str(linear_export / "libmodel.so")],
                               capture_output=True, text=True, check=True).stdout
    symbols = {line.split()[-1].split("@")[0] for line in undefined.splitlines() if line.strip()}
    libc_libm = {"exp", "log", "cos", "sin", "tan", "asin", "acos", "atan", "memcpy", "memset",
                 "aligned_alloc", "free", "__cxa_finalize", "__gmon_start__",
                 "_ITM_deregisterTMCloneTable", "_ITM_registerTMCloneTable"}
    assert symbols <= libc_libm, symbols - libc_libm


@pytest.mark.parametrize("which", ["linear", "neural"])
def test_exported_examples_match_the_interpreter(which: str, linear_export: Path,
                                                 neural_export: Path) -> None:
    program, folder, seed, task_set = ((LINEAR, linear_export, 0, "linear") if which == "linear"
                                       else (NEURAL, neural_export, 5, "nonlinear"))
    task = load_tasks(task_set)[0]
    mem = MemoryConfig.fitting(program)
    expected = evaluate_task(program, task, mem, seed=seed, record=True)
    fitness, memory = interp_memory(program, task, seed)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["fitness"] == expected.fitness == fitness
    # The saved state is the interpreter's memory after the evaluation, bit for bit.
    saved = rt.load(folder)
    assert same(saved.state_[rt.STATE_WORDS:], memory)
    assert saved.train_steps_ == task.num_train and not saved.stopped_early_
    # fit + predict with the shipped loader: the interpreter's validation predictions.
    model = rt.Model(folder, random_state=seed).fit(task.train_x[task.train_order[0]],
                                                    task.train_y[task.train_order[0]])
    assert same(model.predict(task.valid_x), expected.valid_predictions)
    assert same(model.predict(task.valid_x), expected.valid_predictions)  # predict is pure
    # ... and the in-process estimator, the same.
    est = Estimator(program, random_state=seed).fit(task.train_x, task.train_y)
    assert same(est.predict(task.valid_x), expected.valid_predictions)


def test_gaussian_init_depends_on_the_seed(neural_export: Path) -> None:
    task = load_tasks("nonlinear")[0]
    a = rt.Model(neural_export, random_state=1).fit(task.train_x, task.train_y)
    b = rt.Model(neural_export, random_state=2).fit(task.train_x, task.train_y)
    assert not np.array_equal(a.memory()["m"][0], b.memory()["m"][0])
    expected = evaluate_task(NEURAL, task, MemoryConfig.fitting(NEURAL), seed=2, record=True)
    assert same(b.predict(task.valid_x), expected.valid_predictions)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large,
                                                                 HealthCheck.function_scoped_fixture])
@given(azs.programs_on_tasks(max_features=6, max_size=6))
def test_random_programs_exported_match_the_interpreter(tmp_path: Path, case) -> None:
    mem, prog, task, seed = case
    where = f"\n{format_program(prog)}\non task {task.name} ({task.eval_type.name}), seed {seed}"
    out = tmp_path / "model"
    result = export(prog, out, memory=mem, tasks=task, seed=seed)
    expected = evaluate_task(prog, task, mem, seed=seed, record=True)
    assert result.fitness == expected.fitness, where
    # the saved state is the interpreter's memory after the whole evaluation
    ex = Executor(prog, task, mem, seed=seed)
    with np.errstate(all="ignore"):
        ex.execute()
    saved = np.load(out / "state.npz")["state"]
    layout = Layout.of(mem, task.features)
    assert same(saved[rt.STATE_WORDS:], layout.pack(ex.mem.s, ex.mem.v, ex.mem.m)), where
    if task.num_train_epochs > 1:
        return
    # one epoch: fit, then the interpreter's validation predictions (up to a stop)
    lib = rt.Library.open(out)
    state = lib.new_state(seed, int(task.eval_type))
    order = task.train_order[0]
    status, trained = lib.fit(state, np.ascontiguousarray(task.train_x[order]),
                              np.ascontiguousarray(task.train_y[order]), 100.0)
    assert (status == rt.STATUS_STOPPED) == expected.stopped_early, where
    if status == rt.STATUS_OK:
        assert trained == task.num_train, where
        s1, _ = lib.predict(state, task.valid_x)
        assert same(s1[:len(expected.valid_predictions)], expected.valid_predictions), where
        # the estimator's in-process library computes the same
        jit = jit_library(prog, mem, task.features)
        jstate = jit.new_state(seed, int(task.eval_type))
        jit.fit(jstate, np.ascontiguousarray(task.train_x[order]),
                np.ascontiguousarray(task.train_y[order]), 100.0)
        assert same(jit.predict(jstate, task.valid_x)[0], s1), where
        assert same(jstate, state), where


def test_classification_and_the_estimator_agree_with_the_export(tmp_path: Path) -> None:
    task = classification_task()
    out = tmp_path / "clf"
    result = export(NEURAL, out, tasks=task, seed=4)
    expected = evaluate_task(NEURAL, task, MemoryConfig.fitting(NEURAL), seed=4, record=True)
    assert result.fitness == expected.fitness
    assert result.manifest["task_type"] == "classification"
    model = rt.Model(out, random_state=4).fit(task.train_x, task.train_y)
    est = Estimator(NEURAL, eval_type="ACCURACY", random_state=4).fit(task.train_x,
                                                                      task.train_y)
    s1 = model.predict_raw(task.valid_x)
    assert same(s1, expected.valid_predictions)
    assert same(est.predict_raw(task.valid_x), s1)
    proba = model.predict_proba(task.valid_x)
    assert same(est.predict_proba(task.valid_x), proba)
    assert np.array_equal(proba[:, 1], [sigmoid(x) for x in s1])  # libm's exp, as the protocol
    assert np.array_equal(model.predict(task.valid_x), (proba[:, 1] > 0.5).astype(float))
    assert model.score(task.valid_x, task.valid_y) == pytest.approx(expected.fitness)
    assert hasattr(model, "predict_proba")
    assert not hasattr(Estimator(LINEAR), "predict_proba")
    # string labels map to classes_ like scikit-learn's classifiers
    labels = np.where(task.train_y > 0.5, "yes", "no")
    named = Estimator(NEURAL, eval_type="ACCURACY", random_state=4).fit(task.train_x, labels)
    assert list(named.classes_) == ["no", "yes"]
    assert np.array_equal(named.predict(task.valid_x) == "yes",
                          model.predict(task.valid_x) == 1.0)


def test_generic_target_and_a_c_program_give_the_same_numbers(tmp_path: Path,
                                                              linear_export: Path) -> None:
    task = load_tasks("nonlinear")[1].with_index(0)
    out = tmp_path / "generic"
    export(NEURAL, out, features=4, target="generic")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"]["cpu"] in ("x86-64", "generic") and manifest["fit"] is None
    expected = evaluate_task(NEURAL, task, MemoryConfig.fitting(NEURAL), seed=9, record=True)
    model = rt.Model(out, random_state=9).fit(task.train_x, task.train_y)
    assert same(model.predict(task.valid_x), expected.valid_predictions)
    # A C program compiled against model.h, linked with the library.
    main = tmp_path / "main.c"
    main.write_text(textwrap.dedent("""
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include "model.h"
        static double *slurp(const char *path, long count) {
            double *a = malloc(count * sizeof(double));
            FILE *f = fopen(path, "rb");
            if (!f || fread(a, sizeof(double), count, f) != (size_t)count) exit(3);
            fclose(f);
            return a;
        }
        int main(int argc, char **argv) {
            long n = atol(argv[1]), nv = atol(argv[2]);
            const azc_model_info_t *info = azc_model_info();
            if (info->features != AZC_MODEL_FEATURES ||
                info->abi_version != AZC_MODEL_ABI_VERSION) return 4;
            double *x = slurp("train_x.bin", n * AZC_MODEL_FEATURES);
            double *y = slurp("train_y.bin", n);
            double *vx = slurp("valid_x.bin", nv * AZC_MODEL_FEATURES);
            double *out = malloc(nv * sizeof(double));
            azc_model_state *m = azc_model_new(9);
            int64_t trained = -1;
            if (azc_model_fit(m, x, y, n, 100.0, &trained) != AZC_OK || trained != n) return 5;
            if (azc_model_fit(NULL, x, y, n, 100.0, NULL) != AZC_EBADSTATE) return 6;
            if (azc_model_predict(m, vx, -1, out, NULL) != AZC_EINVAL) return 7;
            azc_model_state *copy = malloc(azc_model_state_size());
            memcpy(copy, m, azc_model_state_size());
            if (azc_model_predict(copy, vx, nv, out, NULL) != AZC_OK) return 8;
            if (copy->predict_count != nv || copy->train_steps != n) return 9;
            fwrite(out, sizeof(double), nv, stdout);
            copy->fingerprint ^= 1;  /* a state of another model of the same size */
            if (azc_model_predict(copy, vx, nv, out, NULL) != AZC_EBADSTATE) return 10;
            free(copy);
            azc_model_free(m);
            return 0;
        }
    """))
    for name in ("train_x", "train_y", "valid_x"):
        np.ascontiguousarray(getattr(task, name)).tofile(tmp_path / f"{name}.bin")
    exe = tmp_path / "main"
    cc = find_c_compiler()
    subprocess.run([*cc, str(main), "-I", str(out), "-L", str(out), "-lmodel",
                    f"-Wl,-rpath,{out}", "-o", str(exe)], check=True, capture_output=True)
    run = subprocess.run([str(exe), str(task.num_train), str(task.num_valid)], cwd=tmp_path,
                         capture_output=True, timeout=60)
    assert run.returncode == 0, run
    assert same(np.frombuffer(run.stdout, dtype=np.float64), expected.valid_predictions)
    # The shipped example.c, with the fitted state (state.bin) of an export.
    predict = tmp_path / "predict"
    subprocess.run([*cc, str(linear_export / "example.c"), "-I", str(linear_export), "-L",
                    str(linear_export), "-lmodel", f"-Wl,-rpath,{linear_export}", "-o",
                    str(predict)], check=True, capture_output=True)
    rows = load_tasks("linear")[0].valid_x
    text = "\n".join(" ".join(repr(float(v)) for v in row) for row in rows) + "\n"
    run = subprocess.run([str(predict), str(linear_export / "state.bin")], input=text,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    printed = np.array([float(line) for line in run.stdout.split()])
    assert same(printed, rt.load(linear_export).predict(rows))
    # what it refuses: text that is not numbers, short rows, a state of another size
    for rows_text, message in (("1 2 x 4\n", "row 1: number 3 is not a number"),
                           (text + "1 2\n", f"row {len(rows) + 1} needs 4 numbers, got 2")):
        bad = subprocess.run([str(predict)], input=rows_text, capture_output=True, text=True,
                             timeout=60)
        assert bad.returncode == 1 and message in bad.stderr, bad.stderr
    other = bytearray((linear_export / "state.bin").read_bytes())
    at = 8 * rt.STATE_FIELDS.index("fingerprint")
    other[at] ^= 1  # the state of another model (same size)
    (tmp_path / "other.bin").write_bytes(bytes(other))
    bad = subprocess.run([str(predict), str(tmp_path / "other.bin")], input=text,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "not a state of this model" in bad.stderr
    longer = tmp_path / "longer.bin"
    longer.write_bytes((linear_export / "state.bin").read_bytes() + b"\0" * 8)
    bad = subprocess.run([str(predict), str(longer)], input=text, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 1 and "not a state of this model (exactly" in bad.stderr


def test_pickling_round_trips(neural_export: Path) -> None:
    task = load_tasks("nonlinear")[0]
    model = rt.load(neural_export)
    before = model.predict(task.valid_x)
    again = pickle.loads(pickle.dumps(model))
    assert same(again.predict(task.valid_x), before)
    assert again.get_params() == model.get_params()
    est = Estimator(NEURAL, random_state=3).fit(task.train_x, task.train_y)
    clone = pickle.loads(pickle.dumps(est))
    assert "_lib" not in clone.__dict__
    assert same(clone.predict(task.valid_x), est.predict(task.valid_x))
    # partial_fit continues on the unpickled copy exactly as on the original
    est.partial_fit(task.valid_x, task.valid_y)
    clone.partial_fit(task.valid_x, task.valid_y)
    assert same(clone.predict(task.train_x[:50]), est.predict(task.train_x[:50]))
    assert clone.train_steps_ == task.num_train + task.num_valid
    # the learned memory can be saved and loaded through the exported folder's state file
    saved = est.save(neural_export.parent / "est.npz")
    m2 = rt.Model(neural_export)
    m2._load_state(saved, m2._library_for(None))
    assert same(m2.predict(task.valid_x), est.predict(task.valid_x))


def test_fresh_venv_with_only_numpy(tmp_path: Path, neural_export: Path) -> None:
    """predictor.py in a new virtual environment that has numpy and nothing else."""
    env_dir = tmp_path / "venv"
    try:
        venv.EnvBuilder(with_pip=True).create(env_dir)
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"cannot create a virtual environment: {exc}")
    python = env_dir / "bin" / "python"
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "numpy"],
                         capture_output=True, text=True, env=environ, timeout=600)
    if pip.returncode != 0:
        pytest.skip(f"pip install numpy failed (no package registry?): {pip.stderr[-500:]}")
    task = load_tasks("nonlinear")[0]
    np.save(tmp_path / "valid_x.npy", task.valid_x)
    np.save(tmp_path / "train_x.npy", task.train_x)
    np.save(tmp_path / "train_y.npy", task.train_y)
    script = tmp_path / "use.py"
    script.write_text(textwrap.dedent(f"""
        import importlib.util, pickle, sys
        import numpy as np
        for name in ("azc", "llvmlite", "sklearn"):
            assert importlib.util.find_spec(name) is None, name + " is installed"
        sys.path.insert(0, {str(neural_export)!r})
        import predictor
        m = predictor.load({str(neural_export)!r})
        vx = np.load("valid_x.npy")
        np.save("loaded.npy", m.predict(vx))
        m2 = pickle.loads(pickle.dumps(m))
        np.save("unpickled.npy", m2.predict(vx))
        fresh = predictor.Model(random_state=5).fit(np.load("train_x.npy"), np.load("train_y.npy"))
        np.save("fitted.npy", fresh.predict(vx))
        try:
            m.predict(vx[:, :3])
        except ValueError as e:
            print("bad-shape:", e)
    """))
    run = subprocess.run([str(python), str(script)], cwd=tmp_path, capture_output=True,
                         text=True, env=environ, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "X has 3 features, but Model is expecting 4 features" in run.stdout
    expected = evaluate_task(NEURAL, task, MemoryConfig.fitting(NEURAL), seed=5, record=True)
    for name in ("loaded", "unpickled", "fitted"):
        assert same(np.load(tmp_path / f"{name}.npy"), expected.valid_predictions), name


# ---------------------------------------------------------------------------
# Errors.
# ---------------------------------------------------------------------------

def test_bad_input_is_a_clear_exception(linear_export: Path) -> None:
    task = load_tasks("linear")[0]
    model = rt.Model(linear_export)
    with pytest.raises(rt.NotFittedError, match="not fitted yet"):
        model.predict(task.valid_x)
    model.fit(task.train_x, task.train_y)
    with pytest.raises(rt.InputError, match="X has 3 features, but Model is expecting 4"):
        model.predict(task.valid_x[:, :3])
    with pytest.raises(rt.InputError, match="X has 5 features, but Model is expecting 4"):
        rt.Model(linear_export).fit(np.ones((3, 5)), np.ones(3))
    bad = task.valid_x.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"contains NaN \(first at row 7\)"):
        model.predict(bad)
    bad[7, 2] = np.inf
    with pytest.raises(ValueError, match="contains infinity"):
        model.fit(bad, np.ones(len(bad)))
    with pytest.raises(ValueError, match="Reshape your data"):
        model.predict(task.valid_x[0])
    with pytest.raises(ValueError, match="y contains NaN"):
        model.fit(task.train_x, np.full(task.num_train, np.nan))
    with pytest.raises(ValueError, match="X has 10 samples but y has 9"):
        model.fit(task.train_x[:10], task.train_y[:9])
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        Estimator(NEURAL, eval_type="ACCURACY").fit(task.train_x[:9], np.arange(9) % 3)
    with pytest.raises(ValueError, match="invalid parameter 'alpha'"):
        model.set_params(alpha=1)
    with pytest.raises(azc.AzcError, match="element index 3 is out of range"):
        Estimator("def Setup():\n  v1[3] = 1.0\n").fit(np.ones((2, 2)), np.ones(2))


def test_training_stops_like_the_protocol() -> None:
    task = load_tasks("linear")[0]
    diverging = parse("def Setup():\n  s2 = 10.0\ndef Predict():\n  s1 = dot(v0, v1)\n"
                      "def Learn():\n  s3 = s0 - s1\n  s4 = s3 * s2\n  v2 = v0 * s4\n"
                      "  v1 = v1 + v2\n")
    expected = evaluate_task(diverging, task, MemoryConfig.fitting(diverging), record=True)
    assert expected.stopped_early
    est = Estimator(diverging)
    with pytest.warns(rt.TrainingStoppedWarning, match="training stopped at step"):
        est.fit(task.train_x, task.train_y)
    assert est.stopped_early_ and est.train_steps_ == expected.train_steps


def test_library_for_another_cpu_is_refused(tmp_path: Path) -> None:
    host = Target.host()
    if not host.triple.startswith("x86_64") or rt.host_cpu_flags() is None:
        pytest.skip("needs an x86-64 Linux host")
    lacking = [f for f, flag in rt.CPUINFO_FLAGS.items() if flag not in rt.host_cpu_flags()]
    if not lacking:
        pytest.skip("this CPU has every feature we know of")
    other = Target(host.triple, "x86-64", f"+{lacking[0]}")
    out = tmp_path / "other"
    export(LINEAR, out, features=4, target=other)
    with pytest.raises(rt.LibraryError, match=f"uses {re.escape(lacking[0])}, which this CPU "
                                              f"lacks"):
        rt.load(out)
    # without the manifest, the library's own report is checked before any model code runs
    with pytest.raises(rt.LibraryError, match="illegal instruction"):
        rt.Library.open(out / "libmodel.so")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["target"]["features"] = ""
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OSError, match="Export the program again on this machine"):
        rt.Model(out).fit(np.ones((2, 4)), np.ones(2))
    assert rt.missing_cpu_features("+avx2,-avx512f,+sse4.1", {"avx2"}) == ["sse4.1"]


def test_export_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ExportError, match="feature size is unknown"):
        export(LINEAR, tmp_path / "a")
    with pytest.raises(ExportError, match="--features is 3 but the task data has 4"):
        export(LINEAR, tmp_path / "a", features=3, tasks="linear")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="other files in it"):
        export(LINEAR, busy, features=4)
    monkeypatch.setenv("CC", "no-such-compiler-azc")
    with pytest.raises(ExportError, match=r"the C compiler in \$CC"):
        export(LINEAR, tmp_path / "b", features=4)
    monkeypatch.delenv("CC")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ExportError, match="no C compiler found"):
        export(LINEAR, tmp_path / "b", features=4)
    with pytest.raises(ExportError, match="unknown target"):
        export(LINEAR, tmp_path / "b", features=4, target="arm")


def test_cli_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = load_tasks("linear")[0]
    data = tmp_path / "data.npz"
    np.savez(data, train_x=task.train_x, train_y=task.train_y, valid_x=task.valid_x,
             valid_y=task.valid_y, train_order=task.train_order)
    out = tmp_path / "model"
    assert cli.main(["export", "linear_sgd", "-o", str(out), "--train", str(data)]) == 0
    printed = capsys.readouterr().out
    assert "fitness 1 after 1000 training steps" in printed and "libmodel.so" in printed
    model = rt.load(out)
    expected = evaluate_task(LINEAR, task, MemoryConfig.fitting(LINEAR), record=True)
    assert same(model.predict(task.valid_x), expected.valid_predictions)
    assert cli.main(["export", "linear_sgd", "-o", str(tmp_path / "x")]) == 1
    assert "feature size is unknown" in capsys.readouterr().err
    # re-exporting into the same folder replaces it, even with its library loaded
    assert cli.main(["export", "neural_net", "-o", str(out), "--features", "4"]) == 0
    assert not (out / "state.npz").exists()
    assert rt.Model(out).fit(task.train_x, task.train_y).memory()["m"].shape == (2, 4, 4)


# ---------------------------------------------------------------------------
# scikit-learn (a test dependency only).
# ---------------------------------------------------------------------------

def _sklearn_estimators() -> list:
    return [Estimator(LINEAR), Estimator(NEURAL, eval_type="ACCURACY", random_state=1)]


def _checks():
    try:
        from sklearn.utils.estimator_checks import parametrize_with_checks
    except ImportError:
        return pytest.mark.skip(reason="scikit-learn is not installed")
    # Checks that do not apply are not generated, by the estimator's tags: multi-output
    # and multi-label (one prediction s1 per example), multiclass (sigmoid of one score:
    # binary only, the multiclass check expects the ValueError it gets), sparse input
    # (dense features only; the sparse checks expect the TypeError it gets), sample
    # weights (fit has none).  Scores are tagged poor: a program may learn nothing.
    with warnings.catch_warnings():  # azc does not depend on sklearn, so no BaseEstimator
        warnings.filterwarnings("ignore", "Estimator Estimator does not inherit")
        return parametrize_with_checks(_sklearn_estimators(),
                                       expected_failed_checks=lambda e: {})


@_checks()
def test_scikit_learn_estimator_checks(estimator, check) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rt.TrainingStoppedWarning)
        check(estimator)


def test_in_scikit_learn_pipelines_and_cross_validation() -> None:
    sklearn = pytest.importorskip("sklearn")
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    assert sklearn.base.is_regressor(Estimator(LINEAR))
    assert sklearn.base.is_classifier(Estimator(LINEAR, eval_type="ACCURACY"))
    task = load_tasks("linear")[0]
    scores = cross_val_score(make_pipeline(StandardScaler(), Estimator(LINEAR)),
                             task.train_x, task.train_y, cv=3)
    assert scores.min() > 0.99
    clf = classification_task()
    acc = cross_val_score(Estimator(NEURAL, eval_type="ACCURACY", epochs=3), clf.train_x,
                          clf.train_y, cv=3)
    assert acc.mean() > 0.8


@pytest.mark.parametrize("params,message", [
    ({"epochs": 2.5}, "epochs must be an integer of at least 1, got 2.5"),
    ({"epochs": "3"}, "epochs must be an integer of at least 1, got '3'"),
    ({"epochs": True}, "epochs must be an integer"),
    ({"epochs": 0}, "epochs must be an integer of at least 1, got 0"),
    ({"max_abs_error": float("nan")}, "max_abs_error must be a number >= 0"),
    ({"max_abs_error": -1.0}, "max_abs_error must be a number >= 0"),
    ({"max_abs_error": "100"}, "max_abs_error must be a number >= 0"),
])
def test_estimator_parameters_are_checked_when_fitting(params, message) -> None:
    X = np.arange(12, dtype=np.float64).reshape(6, 2) / 10
    y = X.sum(axis=1)
    with pytest.raises(ValueError, match=re.escape(message)):
        Estimator(LINEAR, **params).fit(X, y)
    Estimator(LINEAR, epochs=np.int64(2), max_abs_error=float("inf")).fit(X, y)  # fine


def test_a_state_of_another_model_is_refused(linear_export: Path, neural_export: Path) -> None:
    lin, nn = rt.Library.open(linear_export), rt.Library.open(neural_export)
    assert lin.info["fingerprint"] != nn.info["fingerprint"]
    state = lin.new_state(1)
    lin.check_state(state)
    other = state.copy()
    other[:rt.STATE_WORDS].view(np.uint64)[rt.STATE_FIELDS.index("fingerprint")] ^= 1
    with pytest.raises(rt.LibraryError, match="does not belong"):
        lin.check_state(other)
