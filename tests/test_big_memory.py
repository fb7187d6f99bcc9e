"""Memories that grow with F stay off the native stack (issue 15).

A memory of more than a few MB (matrices at F = 784 or 1000, or the most addresses
the limits allow at small F) used to live on the native stack, so evaluating,
fitting or predicting with it died by SIGSEGV.  Each path runs in a child process
here, so that a crash fails the test instead of the run, and is checked against the
reference interpreter.  Example counts are small: compiling for F in the hundreds
takes seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from azc.backend.contracts import Layout
from azc.ir import MAX_ADDRESSES, MemoryConfig

PRELUDE = """
import numpy as np
import azc
from azc.interp import evaluate_task
from azc.ir import MemoryConfig
from azc.tasks.task import EvalType, Task

def same(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))

def task(F, n=12, nv=6, seed=0, index=0, epochs=1, eval_type=EvalType.RMS_ERROR):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + nv, F)) / np.sqrt(F)
    y = x @ rng.normal(size=F)
    if eval_type == EvalType.ACCURACY:
        y = (y > 0).astype(float)
    return Task(x[:n], y[:n], x[n:], y[n:], eval_type, num_train_epochs=epochs, index=index,
                train_order=np.tile(np.arange(n), (epochs, 1)))
"""


def run_child(code: str, tmp_path: Path, timeout: float = 1800) -> str:
    """Run `code` (after PRELUDE) in a child Python; fail unless it exits 0 (a signal is a
    negative return code)."""
    script = tmp_path / "child.py"
    script.write_text(PRELUDE + textwrap.dedent(code))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=timeout, cwd=tmp_path, env=dict(os.environ))
    assert out.returncode >= 0, f"died by signal {-out.returncode}\n{out.stderr[-3000:]}"
    assert out.returncode == 0, out.stderr[-3000:]
    assert "DONE" in out.stdout, out.stdout[-2000:]
    return out.stdout


BIGGEST = (MAX_ADDRESSES, MAX_ADDRESSES, MAX_ADDRESSES)
INTERPRETED = (MAX_ADDRESSES - 1,) * 3  # the native interpreter's largest memory


def test_the_cases_here_are_beyond_the_stack() -> None:
    """The memories below are far larger than a thread's stack (8 MB)."""
    for mem, F in [((5, 9, 2), 800), ((3, 3, 16), 300), (BIGGEST, 8), ((5, 3, 1), 3072)]:
        assert Layout.of(MemoryConfig(*mem), F).size * 8 > 8 * 2**20
    # the search's default memory stays on the stack (`contracts.on_stack`)
    assert Layout.of(MemoryConfig(20, 20, 20), 16).size * 8 <= 64 * 1024


def test_eval_neural_net_on_800_features(tmp_path: Path) -> None:
    """`azc eval neural_net` on a dataset of 800 features: the interpreter's result."""
    run_child("""
        prog = azc.parse_file(azc.resources.example_file("neural_net"))
        t = task(800, eval_type=EvalType.ACCURACY)
        jit = azc.evaluate(prog, t, record=True)
        ref = azc.evaluate(prog, t, backend="interp", record=True)
        assert same(jit.fitness, ref.fitness), (jit.fitness, ref.fitness)
        assert same(jit.tasks[0].valid_predictions, ref.tasks[0].valid_predictions)
        print("DONE")
    """, tmp_path)


MATRIX_PROGRAM = """
def Setup():
  m0 = gaussian(0.0, 0.1)
  m1 = uniform(-0.1, 0.1)
  m2 = matmul(m0, m1)
  m2 = transpose(m2)
  m1 = matmul(m1, m1)
  m0 = transpose(m0)
  m2 = matmul(m2, m0)
  m3 = transpose(m2)
  m4 = transpose(m3)
  m5 = transpose(m4)
  m6 = transpose(m5)
  m7 = transpose(m6)
  m8 = transpose(m7)
  m9 = transpose(m8)
  m10 = transpose(m9)
  m11 = transpose(m10)
  m12 = transpose(m11)
  m13 = transpose(m12)
  m14 = transpose(m13)
  m15 = transpose(m14)
def Predict():
  v1 = dot(m15, v0)
  s1 = dot(v1, v0)
def Learn():
  s2 = s0 - s1
  v2 = s2 * v0
  v1 = v1 + v2
"""


def test_eval_matrix_products_with_many_matrices(tmp_path: Path) -> None:
    """Matrix products and transposes (their F*F temporaries on the heap, the operands
    aliased) in a memory of 16 matrices at F = 300: the interpreter's result."""
    run_child(f"""
        prog = azc.parse({MATRIX_PROGRAM!r})
        t = task(300, n=3, nv=3)
        mem = MemoryConfig(3, 3, 16)
        for seed in (0, 7):
            jit = azc.evaluate(prog, t, mem, seed=seed, record=True)
            ref = azc.evaluate(prog, t, mem, seed=seed, backend="interp", record=True)
            assert same(jit.fitness, ref.fitness), (jit.fitness, ref.fitness)
            assert same(jit.tasks[0].valid_predictions, ref.tasks[0].valid_predictions)
        print("DONE")
    """, tmp_path)


def test_estimator_neural_net_on_800_features(tmp_path: Path) -> None:
    """`azc.Estimator("neural_net")` fit and predict on 800 features: the interpreter's
    validation predictions."""
    run_child("""
        prog = azc.parse_file(azc.resources.example_file("neural_net"))
        t = task(800)
        ref = evaluate_task(prog, t, MemoryConfig.fitting(prog), seed=3, record=True)
        est = azc.Estimator("neural_net", random_state=3).fit(t.train_x, t.train_y)
        assert same(est.predict(t.valid_x), ref.valid_predictions)
        assert same(est.predict(t.valid_x), ref.valid_predictions)
        print("DONE")
    """, tmp_path)


def test_estimator_with_the_largest_memory(tmp_path: Path) -> None:
    """`Estimator("linear_sgd", memory=...)` with every address the limits allow."""
    run_child(f"""
        prog = azc.parse_file(azc.resources.example_file("linear_sgd"))
        t = task(8)
        mem = MemoryConfig(*{BIGGEST!r})
        ref = evaluate_task(prog, t, mem, record=True)
        est = azc.Estimator("linear_sgd", memory={BIGGEST!r}).fit(t.train_x, t.train_y)
        assert same(est.predict(t.valid_x), ref.valid_predictions)
        jit = azc.evaluate(prog, t, mem, record=True)
        assert same(jit.tasks[0].valid_predictions, ref.valid_predictions)
        print("DONE")
    """, tmp_path)


def test_exported_predictors_with_big_memories(tmp_path: Path) -> None:
    """`azc export` of neural_net at F = 784 and of linear_sgd with the largest memory:
    the export's fit and the exported predictor's fit and predict match the interpreter."""
    from azc.export import find_c_compiler
    try:
        find_c_compiler()
    except Exception as exc:
        pytest.skip(f"no C compiler: {exc}")
    run_child(f"""
        from azc._runtime import predictor as rt
        for name, F, mem in (("neural_net", 784, None), ("linear_sgd", 8, {BIGGEST!r})):
            prog = azc.parse_file(azc.resources.example_file(name))
            t = task(F)
            np.savez(f"{{name}}.npz", train_x=t.train_x, train_y=t.train_y,
                     valid_x=t.valid_x, valid_y=t.valid_y, train_order=t.train_order)
            m = MemoryConfig(*mem) if mem else MemoryConfig.fitting(prog)
            ref = evaluate_task(prog, t, m, seed=2, record=True)
            res = azc.export(prog, f"out-{{name}}", tasks=f"{{name}}.npz", seed=2,
                             memory=MemoryConfig(*mem) if mem else None)
            assert same(res.fitness, ref.fitness), (res.fitness, ref.fitness)
            model = rt.Model(f"out-{{name}}", random_state=2).fit(t.train_x, t.train_y)
            assert same(model.predict(t.valid_x), ref.valid_predictions), name
            assert same(rt.load(f"out-{{name}}").predict(t.valid_x), model.predict(t.valid_x))
        print("DONE")
    """, tmp_path)


SLOW = pytest.mark.skipif(not os.environ.get("AZC_SLOW_TESTS"),
                          reason="compiling the native interpreter at F = 3072 takes minutes "
                                 "(set AZC_SLOW_TESTS=1)")


@pytest.mark.parametrize("F", [784, pytest.param(3072, marks=SLOW)])
def test_search_evaluator_at_large_F(F: int, tmp_path: Path) -> None:
    """The search's evaluator (native interpreter, DCE, FEC) and its mixed tier (compiled
    task loops, paired when the layout allows) on the demo configuration's memory at
    F = 784 (raw MNIST pixels) and 3072 (CIFAR-10): the interpreter's fitnesses."""
    run_child(f"""
        from azc.backend.components import ComponentKernels, attach
        from azc.backend.native import Encoded, interpreter
        from azc.passes import dce
        from azc.search.config import FecConfig
        from azc.search.evaluator import SearchEvaluator
        F = {F}
        mem = MemoryConfig(5, 3, 1)
        tasks = [task(F, n=6, nv=4, seed=s, index=s) for s in range(2)]
        progs = [azc.parse_file(azc.resources.example_file("linear_sgd")),
                 azc.parse("def Setup():\\n  m0 = uniform(-0.1, 0.1)\\n  v1 = norm(m0, axis=0)\\n"
                           "def Predict():\\n  s1 = dot(v1, v0)\\n"
                           "def Learn():\\n  v1 = dot(m0, v0)\\n  m0 = transpose(m0)\\n")]
        seeds = np.array([5, 6], dtype=np.uint64)
        ref = np.array([[evaluate_task(p, t, mem, seed=int(s)).fitness for t in tasks]
                        for p, s in zip(progs, seeds)])
        ev = SearchEvaluator(tasks, mem, fec=FecConfig(num_train_examples=2,
                                                       num_valid_examples=2))
        assert same(ev.evaluate_tasks(progs, seeds), ref)
        # the compiled loops (work on the memory in place) and paired loops (not for a
        # paired memory beyond the stack: plain compiled loops instead)
        ck = ComponentKernels(mem, F)
        ck.cost.compile_seconds = -1.0
        enc = Encoded.of([dce(p) for p in progs])
        assert attach(ck, enc, 10**9, paired=True) == 2
        out = interpreter(mem, F).run_batch(enc, tasks, seeds)
        assert same(out[:, :, 0], ref)
        ck.close()
        print("DONE")
    """, tmp_path)


def test_evolve_demo_at_784_features(tmp_path: Path) -> None:
    """`azc evolve` of the demo configuration on raw-MNIST-sized features (a few hundred
    individuals)."""
    from azc.resources import config_dir
    text = (config_dir() / "demo.toml").read_text()
    text = text.replace("features_size = 4", "features_size = 784")
    for a, b in (("population_size = 1000", "population_size = 30"),
                 ("num_train_examples = 1000", "num_train_examples = 20"),
                 ("num_train_examples = 100\n", "num_train_examples = 20\n"),
                 ("num_valid_examples = 100\n", "num_valid_examples = 10\n"),
                 ("num_tasks = 100\n", "num_tasks = 2\n"), ("num_tasks = 10\n", "num_tasks = 4\n")):
        assert a in text, a
        text = text.replace(a, b)
    (tmp_path / "big.toml").write_text(text)
    out = run_child("""
        r = azc.evolve("big.toml", 1, max_individuals=300, quiet=True, workers=1)
        assert r.individuals >= 300 and np.isfinite(r.final_fitness)
        print("DONE", r.individuals)
    """, tmp_path)
    assert "DONE" in out


def test_a_failed_allocation_raises_memory_error(tmp_path: Path) -> None:
    """The native interpreter (the search's) with its largest memory gives the reference's
    fitness; when the driver cannot allocate such a memory (here: an address-space limit
    set after compiling), the kernel and the native interpreter raise MemoryError: no
    crash, no garbage."""
    run_child(f"""
        import resource
        from azc.backend.native import interpreter
        prog = azc.parse_file(azc.resources.example_file("linear_sgd"))
        t = task(16)  # 71 MB: beyond what malloc keeps for reuse (32 MB)
        mem = MemoryConfig(*{INTERPRETED!r})
        seeds = np.zeros(1, dtype=np.uint64)
        before = azc.evaluate(prog, t, mem).fitness
        it = interpreter(mem, 16)
        assert it.run_batch([prog], [t], seeds)[0, 0, 0] == before
        assert before == evaluate_task(prog, t, mem).fitness
        # a kernel is compiled for the memory its live code needs: the last matrix, here
        far = azc.parse("def Setup():\\n  m32766 = uniform(-0.1, 0.1)\\n"
                        "def Predict():\\n  s1 = norm(m32766)\\ndef Learn():\\n  s2 = s0 - s1\\n")
        far_fitness = azc.evaluate(far, t, mem).fitness
        assert far_fitness == evaluate_task(far, t, mem).fitness
        vm = int([ln for ln in open("/proc/self/status") if ln.startswith("VmSize")][0].split()[1])
        resource.setrlimit(resource.RLIMIT_AS, ((vm + 8192) * 1024, resource.RLIM_INFINITY))
        for run in (lambda: azc.evaluate(far, t, mem), lambda: it.run_batch([prog], [t], seeds)):
            try:
                run()
            except MemoryError:
                pass
            else:
                raise AssertionError("no MemoryError")
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        assert azc.evaluate(far, t, mem).fitness == far_fitness
        assert it.run_batch([prog], [t], seeds)[0, 0, 0] == before
        print("DONE")
    """, tmp_path)


def test_native_interpreter_takes_the_largest_memory() -> None:
    """MAX_ADDRESSES addresses per kind: the last address works natively as in the reference."""
    import numpy as np

    from azc.backend.native import interpreter
    from azc.frontend import parse
    from azc.interp import evaluate_task
    from azc.ir import MAX_ADDRESSES, MemoryConfig
    from azc.tasks import load_tasks
    a = MAX_ADDRESSES - 1
    p = parse(f"def Setup():\n  s{a} = 0.1\n  v{a} = gaussian(0.0, 0.5)\ndef Predict():\n"
              f"  s1 = dot(v{a}, v0)\n  s1 = s1 * s{a}\ndef Learn():\n  s{a - 1} = s0 - s1\n"
              f"  v{a - 1} = s{a - 1} * v0\n  v{a} = v{a} + v{a - 1}\n")
    mem = MemoryConfig(MAX_ADDRESSES, MAX_ADDRESSES, 0)
    tasks = load_tasks("linear")[:2]
    out = interpreter(mem, 4).run_batch([p], tasks, np.array([5], dtype=np.uint64))
    assert out[0, :, 0].tolist() == [evaluate_task(p, t, mem, seed=5).fitness for t in tasks]


@pytest.mark.parametrize("F", [65, 100, 300])
def test_row_reductions_beyond_the_lane_form_agree_with_the_reference(F: int) -> None:
    """Above ROW_REDUCE_LANES the matrix-vector product and the row norm, mean and
    standard deviation are loops per row: the same sums, in the same order."""
    import numpy as np

    from azc.backend import cache
    from azc.backend.emitters import ROW_REDUCE_LANES
    from azc.backend.native import interpreter
    from azc.frontend import parse
    from azc.interp import evaluate_task
    from azc.ir import MemoryConfig
    from azc.tasks import Task
    assert F > ROW_REDUCE_LANES
    rng = np.random.default_rng(F)
    x, y = rng.normal(size=(30, F)), rng.normal(size=30)
    task = Task(x[:20], y[:20], x[20:], y[20:])
    p = parse("def Setup():\n  m1 = gaussian(0.1, 1.3)\n  s3 = 0.0001\ndef Predict():\n"
              "  v3 = dot(m1, v0)\n  v4 = norm(m1, axis=1)\n  v5 = mean(m1, axis=1)\n"
              "  v6 = std(m1, axis=1)\n  s1 = dot(v3, v4)\n  s2 = dot(v5, v6)\n  s1 = s1 + s2\n"
              "  s1 = s1 * s3\ndef Learn():\n  m1 = outer(v0, v6)\n")
    mem = MemoryConfig(4, 7, 2)
    ref = evaluate_task(p, task, mem, seed=3, record=True)
    assert np.isfinite(ref.valid_predictions).all()
    for got in (interpreter(mem, F).run(p, [task], seed=3, record=True)[0],
                cache.evaluate_tasks(p, [task], mem, seed=3, record=True)[0]):
        assert got.fitness == ref.fitness
        assert np.array_equal(got.valid_predictions, ref.valid_predictions)
