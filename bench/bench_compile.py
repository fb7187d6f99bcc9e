"""Compile time, kernel time and interpreter time for representative programs.

Prints, as medians: compile time per program (one module per program, and
batched 100 per module), kernel time per evaluation (one native call over all
tasks), reference-interpreter time, and their ratio — for the shipped
examples, random programs of the demo's search space, and large programs
(F=16, 8000 training examples).

    python bench/bench_compile.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import azc
from azc.backend.jit import Compiler
from azc.interp import evaluate_task
from azc.ir import Instr, MemoryConfig, Program
from azc.ops import OPS
from azc.passes import optimize
from azc.tasks import build_tasks, load_tasks
from azc.tasks.spec import TaskSpec

DEMO_OPS = [56, 27, 2, 3, 18, 23]


def random_program(rng: np.random.Generator, ops: list[int], sizes: tuple[int, int, int],
                   memory: MemoryConfig, features: int) -> Program:
    """A random program of the given component sizes (the generator's mechanics)."""
    def instr() -> Instr:
        op = OPS[int(rng.choice(ops))]
        ins = [int(rng.integers(0, memory.size(k))) for k in op.ins]
        out = int(rng.integers(1 if op.out.value < 2 else 0, memory.size(op.out)))
        consts = [float(rng.uniform(-1, 1)) for _ in op.consts]
        consts = [int(rng.integers(0, features)) if k == 2 else c
                  for k, c in zip([c.value for c in op.consts], consts)]
        return Instr.make(op, out, *ins, consts=consts)
    return Program(*(tuple(instr() for _ in range(n)) for n in sizes))


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_case(name: str, programs: list[Program], tasks, features: int, compiler: Compiler,
               interp_repeat: int, kernel_repeat: int) -> None:
    optimized = [optimize(p, features) for p in programs]
    single = [compiler.compile(p, features).compile_seconds for p in optimized]
    batch = compiler.compile_many(optimized, features)
    per_batched = batch[0].compile_seconds
    kern_t, interp_t = [], []
    for p, k in zip(programs[:5], batch[:5]):
        mem = MemoryConfig.fitting(p)
        kern_t.append(median_time(lambda k=k: k.run(tasks, seed=1), kernel_repeat))
        interp_t.append(median_time(
            lambda p=p, mem=mem: [evaluate_task(p, t, mem, seed=1) for t in tasks],
            interp_repeat))
    km, im = statistics.median(kern_t), statistics.median(interp_t)
    print(f"{name:<34} {statistics.median(single) * 1e3:9.2f} {per_batched * 1e3:9.2f} "
          f"{km * 1e6:12.1f} {im * 1e3:10.2f} {im / km:9.0f}x")
    sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer programs and repeats")
    ap.add_argument("--opt", type=int, default=1, help="LLVM optimization level (default 1)")
    args = ap.parse_args()
    n = 20 if args.quick else 100
    compiler = Compiler(opt=args.opt)
    rng = np.random.default_rng(0)

    demo_tasks = load_tasks("demo_search")
    linear10 = load_tasks("linear")
    big = build_tasks([TaskSpec("binary_gaussian_classification", features_size=16,
                                num_train_examples=8000, num_valid_examples=1000,
                                num_tasks=2, eval_type="ACCURACY")])
    ex = {name: azc.parse_file(f"examples/{name}.az") for name in
          ("linear_sgd", "neural_net", "all_ops")}
    demo_mem = MemoryConfig(4, 3, 1)
    demo_progs = [random_program(rng, DEMO_OPS, (10, 2, 8), demo_mem, 4) for _ in range(n)]
    big_mem = MemoryConfig(8, 14, 3)
    all_ops = [o.id for o in OPS if o.out is not None]
    big_progs = [random_program(rng, all_ops, (9, 12, 20), big_mem, 16) for _ in range(n)]

    print(f"azc compile bench (LLVM opt level {args.opt}); times are medians")
    print(f"{'case':<34} {'compile':>9} {'batched':>9} {'kernel':>12} {'interp':>10} "
          f"{'speedup':>10}")
    print(f"{'':<34} {'ms/prog':>9} {'ms/prog':>9} {'us/eval':>12} {'ms/eval':>10}")
    rep = 3 if args.quick else 5
    bench_case("linear_sgd, 10 demo tasks (F=4)", [ex["linear_sgd"]] * n, demo_tasks, 4,
               compiler, rep, 200)
    bench_case("linear_sgd, 10 linear tasks 1000/100", [ex["linear_sgd"]] * n, linear10, 4,
               compiler, 2, 50)
    bench_case("neural_net, 10 demo tasks (F=4)", [ex["neural_net"]] * n, demo_tasks, 4,
               compiler, rep, 200)
    bench_case("all_ops, 10 demo tasks (F=4)", [ex["all_ops"]] * n, demo_tasks, 4,
               compiler, rep, 200)
    bench_case("random demo-space programs", demo_progs, demo_tasks, 4, compiler, rep, 200)
    bench_case("neural_net, F=16, 2 x 8000/1000", [ex["neural_net"]] * n, big, 16, compiler,
               1, 10)
    bench_case("random all-op programs, F=16", big_progs, big, 16, compiler, 1, 10)


if __name__ == "__main__":
    main()
