"""The `azc` command.

Subcommands parse their options, call the Python API, and print results; all
user errors arrive as AzcError and are printed as one message with exit
status 1 (2 for bad command-line usage, 130 when interrupted).  Errors in a
program file found after parsing (an address or element index out of range
for --scalars/--vectors/--matrices/--features) are located in the file like
parse errors, through the file's SourceMap.  The feature size of a run's
best.az comes from its header when --features is not given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from azc.errors import AzcError
from azc.frontend import SourceMap, parse_file_with_source
from azc.ir import MemoryConfig, Program
from azc.printer import format_program
from azc.resources import example_file, example_names
from azc.tasks.images import image_dataset_names


def load_program(arg: str) -> tuple[Program, SourceMap]:
    """A program from a path, or from the name of a shipped example, and where its
    instructions are in the file (`source.filename` is the file's path)."""
    path = Path(arg)
    if not path.exists():
        shipped = example_file(arg)
        if shipped is None:
            raise AzcError(f"no such program file: {arg} (shipped examples: "
                           f"{', '.join(example_names())})")
        path = shipped
    return parse_file_with_source(path)


def memory_from_args(args: argparse.Namespace, program: Program,
                     features: int | None = None) -> MemoryConfig:
    """Memory sizes from --scalars/--vectors/--matrices; the rest fit the program."""
    fit = MemoryConfig.fitting(program)
    return MemoryConfig(args.scalars if args.scalars is not None else fit.scalars,
                        args.vectors if args.vectors is not None else fit.vectors,
                        args.matrices if args.matrices is not None else fit.matrices,
                        features)


def _option(text: str, convert, ok, expected: str, bounds: str):
    """`convert(text)` if it converts and passes `ok`, else an argparse error."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
    return value


def _count(text: str) -> int:
    """A positive integer option (argparse type)."""
    return _option(text, int, lambda n: n >= 1, "a positive integer", "at least 1")


def _seed(text: str) -> int:
    """A seed option: an integer in [0, 2**64)."""
    return _option(text, int, lambda n: 0 <= n < 1 << 64, "a non-negative integer",
                   "in [0, 2**64)")


def _seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    return _option(text, float, lambda x: 0 < x < float("inf"), "a number of seconds",
                   "a positive number of seconds")


def _folder(text: str) -> str:
    """A folder option: an existing folder or a path that does not exist yet."""
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    return text


def _add_memory_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("memory (default: the smallest that fits the program)")
    g.add_argument("--scalars", type=_count, metavar="S", help="number of scalar addresses")
    g.add_argument("--vectors", type=_count, metavar="V", help="number of vector addresses")
    g.add_argument("--matrices", type=_count, metavar="M", help="number of matrix addresses")


def cmd_check(args: argparse.Namespace) -> int:
    program, source = load_program(args.program)
    mem = memory_from_args(args, program, source.features(args.features))
    source.verify(program, mem)
    s, p, lr = program.sizes()
    print(f"{source.filename}: ok ({s} Setup, {p} Predict, {lr} Learn instructions; fits {mem})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    program, source = load_program(args.program)
    features = source.features(args.features)
    if features is not None:
        source.verify(program, MemoryConfig.fitting(program, features))
    if args.optimized or args.stats:
        from azc.passes import optimize_with_stats
        optimized, stats = optimize_with_stats(program, features, fold_scalars=True)
        if args.stats:
            print(stats)
        if args.optimized:
            print(format_program(optimized), end="")
        return 0
    print(format_program(program), end="")
    return 0


def cmd_llvm(args: argparse.Namespace) -> int:
    from azc.backend.jit import default_compiler
    from azc.passes import optimize
    program, source = load_program(args.program)
    features = source.features(args.features)
    features = 4 if features is None else features
    source.verify(program, MemoryConfig.fitting(program, features))
    if not args.unoptimized:
        program = optimize(program, features)
    compiler = default_compiler()
    if args.asm:
        print(compiler.assembly(program, features), end="")
    else:
        print(compiler.llvm_ir(program, features, optimized=args.opt), end="")
    return 0


def _task_summary(tasks: list) -> str:
    from collections import Counter
    shapes = Counter((t.features, t.num_train, t.num_valid, t.num_train_epochs,
                      t.eval_type.name) for t in tasks)
    parts = []
    for (f, n, nv, e, kind), count in shapes.items():
        epochs = f", {e} epochs" if e > 1 else ""
        parts.append(f"{count} task{'s' if count != 1 else ''}, F={f}, {n} train, "
                     f"{nv} valid{epochs}, {kind}")
    return "; ".join(parts)


def cmd_eval(args: argparse.Namespace) -> int:
    from azc.evaluation import evaluate
    from azc.tasks import load_tasks
    program, source = load_program(args.program)
    path = source.filename
    tasks = load_tasks(args.task, eval_type=args.eval_type, num_train_epochs=args.epochs,
                       dataset=args.dataset, data_paths=dict(args.data) if args.data else None)
    mem = memory_from_args(args, program)
    for f in sorted({t.features for t in tasks}):
        source.verify(program, mem.with_features(f))
    start = time.perf_counter()
    result = evaluate(program, tasks, mem, backend=args.backend, seed=args.seed,
                      combination=args.combination, max_abs_error=args.max_abs_error,
                      record=args.json)
    elapsed = time.perf_counter() - start
    if args.json:
        out = result.to_json()
        for t in out["tasks"]:
            t.pop("train_predictions", None)
        print(json.dumps(out))
        return 0
    fits = result.task_fitness
    print(f"{path} on {args.task}: {_task_summary(tasks)}")
    print(f"memory: {mem}; backend: {args.backend}; {elapsed:.3f} s")
    print(f"fitness: {result.fitness:.10g} ({args.combination} of {len(fits)} task"
          f"{'s' if len(fits) != 1 else ''}; min {min(fits):.6g}, max {max(fits):.6g})")
    if args.verbose:
        for t, r in zip(tasks, result.tasks):
            stop = "  (stopped early)" if r.stopped_early else ""
            print(f"  task {t.index}: {r.fitness:.10g}  {t.name}{stop}")
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    from azc.opdoc import op_reference
    from azc.ops import OPS
    if args.markdown:
        print(op_reference(), end="")
        return 0
    for op in OPS:
        print(f"{op.id:3d}  {op.name:<26} {op.doc}")
    return 0


def cmd_evolve(args: argparse.Namespace) -> int:
    from azc.search.experiment import evolve
    out = args.out
    if out is None and args.resume is None and not args.no_save:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = Path(args.config).stem if args.config else "demo"
        out = str(Path("azc-runs") / f"{name}-seed{args.seed if args.seed is not None else 'cfg'}"
                  f"-{stamp}")
    result = evolve(args.config, seed=args.seed, max_individuals=args.max_individuals,
                    time_limit=args.time_limit, out_dir=out,
                    checkpoint_every=args.checkpoint_every, resume=args.resume,
                    quiet=args.quiet, batch_size=args.batch_size,
                    workers=args.workers or (None if args.resume else _cores()),
                    dataset=args.dataset,
                    data=dict(args.data) if args.data else None)
    print(format_program(result.simplified), end="")
    where = f"; saved in {result.out_dir}/" if result.out_dir else ""
    print(f"# final fitness {result.final_fitness:.6f} (select {result.select_fitness:.6f}); "
          f"{result.individuals:,} individuals, {result.elapsed:.1f} s, "
          f"stopped: {result.stopped}{where}", file=sys.stderr)
    return 0 if result.stopped != "interrupted" else 130


def cmd_baseline(args: argparse.Namespace) -> int:
    from azc.baselines import Scored, score, table, tune_baselines, write_baselines
    from azc.search.config import load_config, with_image_dataset
    from azc.tasks.spec import build_tasks
    cfg = with_image_dataset(load_config(args.config), args.dataset,
                             dict(args.data) if args.data else None)
    compare = [(arg, *load_program(arg)) for arg in args.compare or []]
    F = cfg.search_tasks[0].features_size or 1  # search tasks always give F (check_config)
    for _, program, source in compare:
        source.verify(program, MemoryConfig.fitting(program).with_features(F))
    say = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr))
    start = time.perf_counter()
    final = build_tasks(list(cfg.final_tasks))
    tuned = tune_baselines(cfg, seed=args.seed, progress=say, final_tasks=final)
    compared: dict[str, Scored] = {}
    for arg, program, _ in compare:
        say(f"scoring {arg} on {len(final)} final tasks")
        compared[arg] = score(program, final, cfg, args.seed)
    rows: list[tuple[str, str, Scored | None, Scored]] = [
        (b.name, ", ".join(f"{k}={v:.3g}" for k, v in b.params.items()), b.select, b.final)
        for b in tuned]
    rows += [(Path(arg).name, "as given", None, sc) for arg, sc in compared.items()]
    print(f"{cfg.name}: {len(final)} final tasks ({_task_summary(final)}); baselines tuned on "
          f"{sum(s.num_tasks for s in cfg.select_tasks)} select tasks; "
          f"{time.perf_counter() - start:.1f} s")
    print(table(rows))
    if not args.no_save:
        out = Path(args.out) if args.out else Path("azc-runs") / f"{cfg.name}-baselines"
        written = write_baselines(out, cfg, tuned, compared)
        print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _cores() -> int:
    """The cores this process may use."""
    import os
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cmd_plot(args: argparse.Namespace) -> int:
    from azc.plot import plot_run
    path = plot_run(args.dir, args.output)
    print(f"wrote {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from azc.export import export
    program, source = load_program(args.program)
    path = source.filename
    fit_of = args.train or args.task
    memory = None
    if any(x is not None for x in (args.scalars, args.vectors, args.matrices)):
        memory = memory_from_args(args, program)
    fitted = export(Path(path), args.output, features=args.features, memory=memory,
                    tasks=fit_of, eval_type=args.eval_type, target=args.target,
                    seed=args.seed, max_abs_error=args.max_abs_error)
    m = fitted.manifest
    mem = m["memory"]
    print(f"wrote {fitted.folder}/: {', '.join(fitted.files)}")
    print(f"model: F={m['features']}, memory {mem['scalars']}/{mem['vectors']}/"
          f"{mem['matrices']}, {m['task_type']} ({m['eval_type']}), CPU "
          f"{m['target']['cpu']} ({m['target']['name']}), ABI {m['abi_version']}")
    if m["fit"] is not None:
        f = m["fit"]
        stop = ", stopped early" if f["stopped_early"] else ""
        print(f"fitted on {fit_of} ({f['task']}): fitness {f['fitness']:.10g} after "
              f"{f['train_steps']} training steps{stop}; state saved")
    print(f"use: python -c \"import sys; sys.path.insert(0, '{fitted.folder}'); import "
          f"predictor; m = predictor.load('{fitted.folder}'); print(m.predict(X))\"")
    return 0


def _add_evolve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=_seed, help="the run's seed (default: the config's random_seed)")
    p.add_argument("--max-individuals", type=_count, metavar="N", help="stop after N individuals")
    p.add_argument("--time-limit", type=_seconds, metavar="SEC", help="stop after SEC seconds")
    p.add_argument("--out", type=_folder, metavar="DIR", help="folder for log.jsonl, best.az, "
                   "result.json and checkpoints (default: azc-runs/<config>-seed<N>-<time>)")
    p.add_argument("--no-save", action="store_true", help="write no files")
    p.add_argument("--checkpoint-every", type=_seconds, default=300.0, metavar="SEC",
                   help="seconds between checkpoints (default 300; always on Ctrl-C)")
    p.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR")
    p.add_argument("--batch-size", type=_count, metavar="B",
                   help="children per native call (1 = the original's exact order)")
    p.add_argument("--workers", type=_count, metavar="N",
                   help="processes: N islands with migration (default: the cores available; "
                   "results depend on N)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    _add_data_options(p)


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """--dataset and --data: which image dataset projected tasks read, and where."""
    p.add_argument("--dataset", choices=image_dataset_names(), metavar="NAME",
                   help="run the projected image tasks on this dataset instead: "
                   f"{', '.join(image_dataset_names())}")
    p.add_argument("--data", type=_data_path, action="append", metavar="NAME=PATH",
                   help="where dataset NAME is (a directory or archive); repeatable; "
                   "default: found by name (docs/datasets.md)")


def _data_path(text: str) -> tuple[str, str]:
    """A NAME=PATH option value."""
    name, sep, path = text.partition("=")
    name = name.strip()
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH (e.g. cifar10=~/cifar-10-batches-"
                                         f"bin), got '{text}'")
    if name not in image_dataset_names():
        raise argparse.ArgumentTypeError(f"unknown dataset '{name}' (known: "
                                         f"{', '.join(image_dataset_names())})")
    return name, path


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the azc command."""
    from azc import __version__
    parser = argparse.ArgumentParser(
        prog="azc", description="AutoML-Zero as a compiler: write, run and evolve ML "
        "algorithms made of Setup, Predict and Learn.")
    parser.add_argument("--version", action="version", version=f"azc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("check", help="parse and validate a program")
    p.add_argument("program", help="a .az file or the name of a shipped example")
    _add_memory_options(p)
    p.add_argument("--features", type=_count, metavar="F",
                   help="feature size to check indices (default: a run's best.az header)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("show", help="print a program in canonical form")
    p.add_argument("program", help="a .az file or the name of a shipped example")
    p.add_argument("--optimized", action="store_true",
                   help="print the program after dead-code removal and constant folding")
    p.add_argument("--stats", action="store_true", help="say what each pass removed")
    p.add_argument("--features", type=_count, metavar="F",
                   help="feature size (enables constant folding of vector/matrix ops; "
                   "default: a run's best.az header; without F only scalar ops fold)")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("llvm", help="print the LLVM IR (or assembly) of a program's kernel")
    p.add_argument("program", help="a .az file or the name of a shipped example")
    p.add_argument("--features", type=_count, metavar="F",
                   help="feature size (default: a run's best.az header, else 4)")
    p.add_argument("--asm", action="store_true", help="print native assembly instead")
    p.add_argument("--opt", action="store_true", help="print the IR after LLVM's passes")
    p.add_argument("--unoptimized", action="store_true",
                   help="skip azc's own passes (dead code, folding)")
    p.set_defaults(func=cmd_llvm)

    p = sub.add_parser("ops", help="list the 65 ops")
    p.add_argument("--markdown", action="store_true", help="the full reference as Markdown")
    p.set_defaults(func=cmd_ops)

    p = sub.add_parser("eval", help="evaluate a program on tasks and print its fitness")
    p.add_argument("program", help="a .az file or the name of a shipped example")
    p.add_argument("--task", required=True, metavar="TASK",
                   help="built-in task set (linear, nonlinear, ...), a TOML file of task "
                   "specs, or a .npz/.csv dataset")
    _add_memory_options(p)
    p.add_argument("--backend", choices=["interp", "jit"], default="jit",
                   help="JIT-compiled native code (default) or the reference interpreter")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the random ops (default 0)")
    p.add_argument("--combination", choices=["mean", "median"], default="mean",
                   help="how per-task fitnesses combine (default mean, as the original)")
    p.add_argument("--max-abs-error", type=float, default=100.0,
                   help="errors above this stop training (default 100)")
    p.add_argument("--eval-type", choices=["RMS_ERROR", "ACCURACY"],
                   help="for a dataset: regression or binary classification "
                   "(default: ACCURACY if all labels are 0/1)")
    p.add_argument("--epochs", type=_count, help="for a dataset: number of training epochs")
    p.add_argument("--json", action="store_true",
                   help="print {fitness, tasks: [{fitness, valid_predictions}]} as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="print every task's fitness")
    _add_data_options(p)
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("evolve", help="evolve programs as a configuration says")
    p.add_argument("config", nargs="?", default=None,
                   help="a TOML configuration or a shipped name (demo, linear, nonlinear)")
    _add_evolve_options(p)
    p.set_defaults(func=cmd_evolve)

    p = sub.add_parser("baseline", help="tune the hand-made logistic regression and neural "
                       "net on a configuration's select tasks; report them on its final tasks")
    p.add_argument("config", help="a TOML configuration or a shipped name (baseline, "
                   "classification, ...)")
    p.add_argument("--compare", action="append", metavar="PROGRAM",
                   help="also score this program (e.g. a run's best.az) on the final tasks; "
                   "repeatable")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the random ops (default 0)")
    p.add_argument("--out", type=_folder, metavar="DIR", help="folder for the tuned .az files "
                   "and baselines.json (default: azc-runs/<config>-baselines)")
    p.add_argument("--no-save", action="store_true", help="write no files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    _add_data_options(p)
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("demo", help="discover linear regression from scratch (evolve demo)")
    _add_evolve_options(p)
    p.set_defaults(func=cmd_evolve, config="demo")

    p = sub.add_parser("export", help="compile a program into a standalone predictor folder "
                       "(shared library, C header, Python loader)")
    p.add_argument("program", help="a .az file or the name of a shipped example")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="the folder to write (new, empty, or an earlier export)")
    p.add_argument("--features", type=_count, metavar="F",
                   help="feature size (default: the training data's, or a run's best.az)")
    _add_memory_options(p)
    fit = p.add_mutually_exclusive_group()
    fit.add_argument("--train", metavar="DATA",
                     help="fit the model on a dataset (.npz/.csv) and save its state")
    fit.add_argument("--task", metavar="TASK",
                     help="fit the model on the first task of a task set (linear, a TOML "
                     "file, a dataset) and save its state")
    p.add_argument("--target", choices=["host", "generic"], default="host",
                   help="code for this CPU (default, fastest) or for any x86-64 CPU")
    p.add_argument("--eval-type", choices=["RMS_ERROR", "ACCURACY"],
                   help="regression or binary classification (default: the data's, else "
                   "RMS_ERROR)")
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed of the random ops for the fit (default 0)")
    p.add_argument("--max-abs-error", type=float, default=100.0,
                   help="training errors above this stop training (default 100)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("plot", help="draw fitness over individuals from a run's log (PNG)")
    p.add_argument("dir", help="a run folder (with log.jsonl)")
    p.add_argument("-o", "--output", help="PNG path (default DIR/fitness.png)")
    p.set_defaults(func=cmd_plot)
    return parser


EXIT_ERROR = 1      # an expected failure: bad input, a missing file, ...
EXIT_USAGE = 2      # bad command-line usage (argparse)
EXIT_INTERNAL = 70  # a bug in azc (EX_SOFTWARE)
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Entry point of the azc command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AzcError as err:
        print(str(err), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except MemoryError:
        print("error: out of memory (a size in the input is too large for this machine; "
              "docs/configuration.md lists the sizes azc accepts)", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # a bug: one line, the traceback in a file
        print(f"internal error: {type(err).__name__}: {err} (a bug in azc; the traceback is "
              f"in {_write_traceback()}; please report it with that file)", file=sys.stderr)
        return EXIT_INTERNAL


def _write_traceback() -> str:
    """Write the current exception's traceback to a temporary file; its path."""
    import tempfile
    import traceback
    try:
        fd, path = tempfile.mkstemp(prefix="azc-traceback-", suffix=".txt")
        with open(fd, "w") as f:
            f.write(f"azc {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
        return path
    except OSError:
        traceback.print_exc()
        return "the output above"


if __name__ == "__main__":
    sys.exit(main())
