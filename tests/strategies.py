"""Every hypothesis strategy of the test suite.

Programs are drawn over all 65 ops with addresses inside a memory
configuration, constants in their stored types (float64 for op 56, float32
for 57-64, element indices < F) and including special values (NaN, ±inf,
±0, huge and tiny numbers).  Tasks are small and built directly, with
data from a drawn seed (sometimes with NaN, ±inf and huge features).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from azc.ir import NOOP, Instr, MemoryConfig, Program, as_float32, canonical_slots, slot_at
from azc.ops import NUM_OPS, OPS, Const, Kind
from azc.passes import dce
from azc.tasks.task import EvalType, Task

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, float("inf"), float("-inf"), float("nan"), 1e300,
           -1e300, 5e-324, 1e-308, 3.0e38, -3.0e38, 1e-45]


def f64() -> st.SearchStrategy[float]:
    """Any float64, special values likely."""
    return st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True),
                     st.floats(-10, 10))


def f32() -> st.SearchStrategy[float]:
    """Any float32 value (as a Python float)."""
    return st.one_of(st.sampled_from(SPECIAL), st.floats(width=32),
                     st.floats(-2, 2, width=32)).map(as_float32)


def feature_sizes(max_features: int = 32) -> st.SearchStrategy[int]:
    """Feature sizes 1..max_features, with small sizes and powers of two (16, 32) likely."""
    powers = [f for f in (1, 2, 4, 8, 16, 32) if f <= max_features]
    return st.one_of(st.integers(1, min(5, max_features)), st.sampled_from(powers),
                     st.integers(1, max_features))


def memories(max_features: int = 8,
             features: st.SearchStrategy[int] | None = None) -> st.SearchStrategy[MemoryConfig]:
    """Memory configurations with a feature size (drawn from `features`, default 1..max)."""
    return st.builds(MemoryConfig, st.integers(2, 8), st.integers(1, 6), st.integers(0, 4),
                     features if features is not None else st.integers(1, max_features))


@st.composite
def instrs(draw: st.DrawFn, memory: MemoryConfig, ops: list[int] | None = None) -> Instr:
    """One valid instruction for the memory (ops drawn from `ops`, default all 65)."""
    choices = [o for o in (ops if ops is not None else range(NUM_OPS))
               if all(memory.size(k) > 0 for k in OPS[o].ins)
               and (OPS[o].out is None or memory.size(OPS[o].out) > 0)]
    op = OPS[draw(st.sampled_from(choices))]

    def addr(kind: Kind) -> int:
        return draw(st.integers(0, memory.size(kind) - 1))

    ins = [addr(k) for k in op.ins]
    out = addr(op.out) if op.out is not None else 0
    consts = []
    for kind in op.consts:
        if kind is Const.INDEX:
            consts.append(draw(st.integers(0, (memory.features or 1) - 1)))
        elif kind is Const.F32:
            consts.append(draw(f32()))
        else:
            consts.append(draw(f64()))
    return Instr.make(op, out, *ins, consts=consts)


@st.composite
def programs(draw: st.DrawFn, memory: MemoryConfig, max_size: int = 8,
             ops: list[int] | None = None) -> Program:
    """A valid program for the memory."""
    parts = [tuple(draw(st.lists(instrs(memory, ops), max_size=max_size))) for _ in range(3)]
    return Program(*parts)


@st.composite
def memory_and_program(draw: st.DrawFn, max_features: int = 8,
                       max_size: int = 8) -> tuple[MemoryConfig, Program]:
    """A memory configuration and a valid program for it."""
    mem = draw(memories(max_features))
    return mem, draw(programs(mem, max_size))


WILD = [float("nan"), float("inf"), float("-inf"), 1e300, -1e300, 1e-300, 0.0, -0.0]


@st.composite
def tasks(draw: st.DrawFn, features: int, max_train: int = 6, max_valid: int = 4,
          max_epochs: int = 2, like: Task | None = None) -> Task:
    """A small task with F = `features`: data from a drawn seed, both eval types
    (with `like`, the shape of that task: examples, epochs, eval type).

    Sometimes (about one task in four) NaN, ±inf, huge and tiny values are
    planted among the features.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    if like is None:
        n = draw(st.integers(1, max_train))
        nv = draw(st.integers(1, max_valid))
        epochs = draw(st.integers(1, max_epochs))
        eval_type = draw(st.sampled_from([EvalType.RMS_ERROR, EvalType.ACCURACY]))
    else:
        n, nv = like.num_train, like.num_valid
        epochs, eval_type = like.num_train_epochs, like.eval_type
    wild = draw(st.integers(0, 3)) == 0
    rng = np.random.default_rng(seed)

    def features_of(count: int) -> np.ndarray:
        x = rng.normal(size=(count, features))
        if wild:
            planted = rng.random(x.shape) < 0.25
            x[planted] = rng.choice(WILD, size=int(planted.sum()))
        return x

    def labels_of(count: int) -> np.ndarray:
        if eval_type is EvalType.ACCURACY:
            return rng.integers(0, 2, size=count).astype(np.float64)
        return rng.normal(size=count)

    tx, ty, vx, vy = features_of(n), labels_of(n), features_of(nv), labels_of(nv)
    order = np.array([rng.permutation(n) for _ in range(epochs)], dtype=np.int64)
    return Task(tx, ty, vx, vy, eval_type, epochs, order, name=f"task-{seed}")


@st.composite
def op_subsets(draw: st.DrawFn, memory: MemoryConfig) -> list[int] | None:
    """None (all ops) a third of the time, else a few ops the memory can hold.

    Half of the subsets are rich in the setters 56-64 (element setters and
    random ops), whose interactions with the passes are the subtle ones.
    """
    pick = draw(st.integers(0, 2))
    if pick == 0:
        return None
    chosen = draw(st.lists(st.integers(0, NUM_OPS - 1), min_size=1, max_size=8, unique=True))
    if pick == 2:
        setters = draw(st.lists(st.integers(56, 64), min_size=1, max_size=4, unique=True))
        chosen = sorted(set(chosen[:4]) | set(setters))
    fits = [o for o in chosen if all(memory.size(k) > 0 for k in OPS[o].ins)
            and (OPS[o].out is None or memory.size(OPS[o].out) > 0)]
    return fits or None


# Ops that reduce what a component computed into the prediction s1.
SINKS = (1, 21, 27, 34, 50, 51, 54, 55)


@st.composite
def wired(draw: st.DrawFn, program: Program) -> Program:
    """The program with inputs rewired to read what it writes, and s1 often written.

    Random programs are mostly dead code.  Here each input becomes, with
    probability 1/3 each, the location of its kind written last before it
    (so chains form), or any location of its kind the program writes
    (values flow across components and runs), or stays; with probability
    1/3 an output becomes the location of its kind written last (updates and
    overwrites); and with probability 3/4 Predict ends with a reduction of
    the locations written last into s1 (one of `SINKS`).
    """
    written: dict[Kind, list[int]] = {k: [] for k in Kind}
    for _, _, ins in program.instructions():
        out = ins.output()
        if out is not None and out[1] not in written[out[0]]:
            written[out[0]].append(out[1])
    last: dict[Kind, int] = {}

    def rewire(ins: Instr, out: int | None = None) -> Instr:
        op = OPS[ins.op]
        addrs = [ins.in1, ins.in2]
        for j, kind in enumerate(op.ins):
            how = draw(st.integers(0, 2))
            if how == 0 and kind in last:
                addrs[j] = last[kind]
            elif how == 1 and written[kind]:
                addrs[j] = draw(st.sampled_from(written[kind]))
        if out is None:
            out = ins.out
            if op.out is not None and op.out in last and draw(st.integers(0, 2)) == 0:
                out = last[op.out]
        new = Instr.make(op, out, *addrs[:op.arity], consts=ins.consts[:len(op.consts)],
                         slot=ins.slot)
        if op.out is not None:
            last[op.out] = new.out
        return new

    parts = [[rewire(ins) for ins in body] for _, body in program.components()]
    last.clear()
    for ins in parts[0] + parts[2] + parts[1]:  # latest at the end of Predict: its own writes
        if OPS[ins.op].out is not None:
            last[OPS[ins.op].out] = ins.out
    sinks = [o for o in SINKS if all(k in last for k in OPS[o].ins)]
    if sinks and draw(st.integers(0, 3)) > 0:
        op = OPS[draw(st.sampled_from(sinks))]
        parts[1].append(Instr.make(op, 1, *[last[k] for k in op.ins]))
    return Program(*(tuple(p) for p in parts))


@st.composite
def pass_programs(draw: st.DrawFn, max_features: int = 8, max_size: int = 8,
                  features: st.SearchStrategy[int] | None = None, paired: bool = False
                  ) -> tuple[MemoryConfig, Program]:
    """A memory and a valid program for it, shaped to exercise the passes.

    Half the programs use all 65 ops, the others a few drawn ops; half the
    memories are tiny; half the programs are `wired`.  These make
    interactions (element setters after whole writes, random ops after dead
    code, values carried from one component run to the next) come up often.
    Feature sizes come from `features` (default 1..max_features).  With
    `paired`, three programs in four keep only the Predict and Learn
    instructions that have paired bodies (`azc.ops.PAIRED_OPS`).
    """
    fs = features if features is not None else st.integers(1, max_features)
    small = st.builds(MemoryConfig, st.integers(2, 4), st.integers(1, 3), st.integers(0, 2), fs)
    mem = draw(st.one_of(memories(max_features, fs), small))
    program = draw(programs(mem, max_size, draw(op_subsets(mem))))
    if draw(st.booleans()):
        program = draw(wired(program))
    if paired and draw(st.integers(0, 3)):
        from azc.ops import PAIRED_OPS
        program = program._replace(
            predict=tuple(i for i in program.predict if i.op in PAIRED_OPS),
            learn=tuple(i for i in program.learn if i.op in PAIRED_OPS))
    return mem, program


@st.composite
def programs_on_tasks(draw: st.DrawFn, max_features: int = 8, max_size: int = 8,
                      features: st.SearchStrategy[int] | None = None
                      ) -> tuple[MemoryConfig, Program, Task, int]:
    """A memory, a `pass_programs` program, a task at the memory's F and a seed."""
    mem, program = draw(pass_programs(max_features, max_size, features))
    task = draw(tasks(mem.features or 1))
    return mem, program, task, draw(st.integers(0, 2**32 - 1))


@st.composite
def task_lists(draw: st.DrawFn, features: int, max_tasks: int = 5) -> list[Task]:
    """1 to `max_tasks` tasks (indices 0, 1, ...), most of the same shape as the one
    before (the compiled loops run such tasks in pairs), some not."""
    out = [draw(tasks(features))]
    for _ in range(draw(st.integers(0, max_tasks - 1))):
        like = out[-1] if draw(st.integers(0, 3)) else None
        out.append(draw(tasks(features, like=like)))
    return [t.with_index(i) for i, t in enumerate(out)]


def reads(program: Program) -> set[tuple[int, int]]:
    """Every (kind, address) some instruction reads, the old output of 57/58 included."""
    locs = set()
    for _, _, ins in program.instructions():
        locs.update((int(k), a) for k, a in ins.inputs())
        if OPS[ins.op].partial_write:
            locs.add((int(OPS[ins.op].out), ins.out))
    return locs


@st.composite
def with_dead_code(draw: st.DrawFn, memory: MemoryConfig, program: Program,
                   max_extra: int = 4) -> tuple[MemoryConfig, Program]:
    """The program with dead instructions inserted, and a memory that holds them.

    Inserted instructions are no-ops and instructions of any op writing a
    location the program never reads (never s1), so they are dead; the
    memory grows by a few addresses of each kind so there always is one.
    The program's random ops keep their random-stream slots.
    """
    big = MemoryConfig(memory.scalars + 2, memory.vectors + 1, memory.matrices + 1,
                       memory.features)
    read = reads(program) | {(0, 1)}
    free = {kind: [a for a in range(big.size(kind)) if (int(kind), a) not in read]
            for kind in Kind}
    parts = []
    for _, body in program.components():
        merged: list[tuple[Instr, int | None]] = [(ins, slot_at(ins, i))
                                                  for i, ins in enumerate(body)]
        for _ in range(draw(st.integers(0, max_extra))):
            ins = draw(instrs(big))
            op = OPS[ins.op]
            if op.out is not None:
                out = draw(st.sampled_from(free[op.out]))
                ins = Instr.make(op, out, ins.in1, ins.in2, consts=ins.consts)
            merged.insert(draw(st.integers(0, len(merged))), (ins, None))
        slots = [j if s is None else s for j, (_, s) in enumerate(merged)]
        parts.append(canonical_slots([ins for ins, _ in merged], slots))
    return big, Program(*parts)


@st.composite
def memory_contents(draw: st.DrawFn, memory: MemoryConfig) -> np.ndarray:
    """A kernel memory buffer (azc.backend.contracts.Layout) with special values."""
    from azc.backend.contracts import Layout
    F = memory.features or 1
    S, V, M = memory.scalars, memory.vectors, memory.matrices
    n = S + V * F + M * F * F
    fill = draw(st.sampled_from(["special", "normal", "mixed"]))
    if fill == "normal":
        seed = draw(st.integers(0, 2**32 - 1))
        values = np.random.default_rng(seed).standard_normal(n)
    else:
        values = np.array(draw(st.lists(f64(), min_size=n, max_size=n)), dtype=np.float64)
        if fill == "mixed":
            seed = draw(st.integers(0, 2**32 - 1))
            mask = np.random.default_rng(seed).random(n) < 0.7
            values[mask] = np.random.default_rng(seed + 1).standard_normal(int(mask.sum()))
    return Layout.of(memory, F).pack(values[:S], values[S:S + V * F].reshape(V, F),
                                     values[S + V * F:].reshape(M, F, F))


@st.composite
def programs_with_dead_code(draw: st.DrawFn, max_features: int = 8, max_size: int = 8,
                            features: st.SearchStrategy[int] | None = None
                            ) -> tuple[MemoryConfig, Program, MemoryConfig, Program, Task, int]:
    """(memory, program, larger memory, program with dead code inserted, task, seed)."""
    mem, program = draw(pass_programs(max_features, max_size, features))
    big, padded = draw(with_dead_code(mem, program))
    return mem, program, big, padded, draw(tasks(mem.features or 1)), draw(
        st.integers(0, 2**32 - 1))


@st.composite
def with_slots(draw: st.DrawFn, program: Program, max_slot: int = 40) -> Program:
    """The program with some random ops bound to drawn random-stream slots (canonical form)."""
    parts = []
    for _, body in program.components():
        slots = [draw(st.integers(0, max_slot)) if OPS[ins.op].random and draw(st.booleans())
                 else slot_at(ins, i) for i, ins in enumerate(body)]
        parts.append(canonical_slots(body, slots))
    return Program(*parts)


# Memory sizes at the edges of the native DCE's 64-bit liveness words.
WORD_EDGES = (63, 64, 65, 100, 127, 128, 129, 191, 192, 193)


def wide_sizes(max_addresses: int, least: int) -> st.SearchStrategy[int]:
    """Numbers of addresses of a kind up to `max_addresses` (at least `least`), word edges
    (63, 64, 65, 127, ...) likely."""
    edges = [n for n in WORD_EDGES if least <= n <= max_addresses]
    sizes = st.integers(least, max_addresses)
    return st.one_of(st.sampled_from(edges), sizes) if edges else sizes


@st.composite
def relocated(draw: st.DrawFn, program: Program, memory: MemoryConfig) -> Program:
    """The program with each address moved up by a drawn multiple of 64 within `memory`.

    Every (kind, address) of the program is mapped to address + 64 j (j >= 0,
    the same j for every use of it), so the result reads and writes high
    addresses and addresses equal modulo 64 (s6 and s70), whose liveness a
    64-bit mask cannot tell apart.  The map is one-to-one for programs whose
    addresses are below 64.  Random ops keep their random-stream slots.
    """
    moved: dict[tuple[int, int], int] = {}

    def move(kind: Kind, addr: int) -> int:
        key = (int(kind), addr)
        if key not in moved:
            top = (memory.size(kind) - 1 - addr) // 64
            moved[key] = addr + 64 * draw(st.integers(0, max(top, 0)))
        return moved[key]

    parts = []
    for _, body in program.components():
        out = []
        for ins in body:
            op = OPS[ins.op]
            addrs = [move(k, a) for k, a in zip(op.ins, (ins.in1, ins.in2))]
            dst = move(op.out, ins.out) if op.out is not None else 0
            out.append(Instr.make(op, dst, *addrs, consts=ins.consts[:len(op.consts)],
                                  slot=ins.slot))
        parts.append(tuple(out))
    return Program(*parts)


@st.composite
def dce_programs(draw: st.DrawFn, max_addresses: int = 200, max_size: int = 8) -> Program:
    """A program for testing dead-code removal on encoded programs.

    Memories of up to `max_addresses` addresses per kind (half of them tiny,
    so that much is live; sizes at the edges of 64-bit words likely), all
    ops or a few (setters often), often `wired`, random ops often bound to
    explicit slots, no-ops sprinkled in, and now and then a component that
    is empty or all no-ops.  Above 64 addresses, programs are often drawn in
    a small memory and `relocated` into the large one (addresses 64 apart).
    """
    big = st.builds(MemoryConfig, wide_sizes(max_addresses, 2), wide_sizes(max_addresses, 1),
                    wide_sizes(max_addresses, 0), st.just(4))
    small = st.builds(MemoryConfig, st.integers(2, 4), st.integers(1, 3), st.integers(0, 2),
                      st.just(4))
    mem = draw(st.one_of(big, small))
    wide = max(mem.scalars, mem.vectors, mem.matrices) > 64 and draw(st.booleans())
    base = mem
    if wide:  # a small memory inside the large one
        base = MemoryConfig(min(draw(st.integers(2, 4)), mem.scalars),
                            min(draw(st.integers(1, 3)), mem.vectors),
                            min(draw(st.integers(0, 2)), mem.matrices), mem.features)
    program = draw(programs(base, max_size, draw(op_subsets(base))))
    if draw(st.booleans()):
        program = draw(wired(program))
    if wide:
        program = draw(relocated(program, mem))
    if draw(st.booleans()):
        program = draw(with_slots(program))
    parts = []
    for _, body in program.components():
        how = draw(st.integers(0, 5))
        if how == 0:
            body = (NOOP,) * draw(st.integers(0, 3))  # empty or all no-ops
        elif how == 1:  # no-ops inserted: the random ops after them keep their slots
            merged = [(ins, slot_at(ins, i)) for i, ins in enumerate(body)]
            for _ in range(draw(st.integers(1, 3))):
                merged.insert(draw(st.integers(0, len(merged))), (NOOP, -1))
            body = canonical_slots([ins for ins, _ in merged],
                                   [j if s < 0 else s for j, (_, s) in enumerate(merged)])
        parts.append(tuple(body))
    return Program(*parts)


@st.composite
def program_batches(draw: st.DrawFn, max_features: int = 32, max_size: int = 6,
                    max_programs: int = 5, max_tasks: int = 3
                    ) -> tuple[MemoryConfig, list[Program], list[Task], list[int]]:
    """A memory, several `pass_programs`-style programs for it, tasks at its F (with
    distinct task indices) and one 64-bit seed per program."""
    mem = draw(st.one_of(memories(max_features, feature_sizes(max_features)),
                         st.builds(MemoryConfig, st.integers(2, 4), st.integers(1, 3),
                                   st.integers(0, 2), feature_sizes(max_features))))
    n = draw(st.integers(1, max_programs))
    progs = []
    for _ in range(n):
        prog = draw(programs(mem, max_size, draw(op_subsets(mem))))
        progs.append(draw(wired(prog)) if draw(st.booleans()) else prog)
    F = mem.features or 1
    ts = draw(st.lists(tasks(F), min_size=1, max_size=max_tasks))
    ts = [replace(t, index=i) for i, t in enumerate(ts)]
    seeds = draw(st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n))
    return mem, progs, ts, seeds


def max_abs_errors() -> st.SearchStrategy[float]:
    """The protocol's error bound: the default (100) half the time, else small ones that
    stop training early often."""
    return st.sampled_from([100.0, 100.0, 1.0, 0.05])


@st.composite
def native_runs(draw: st.DrawFn, shared: MemoryConfig, dead_code: bool = False,
                max_size: int = 6) -> tuple:
    """(memory, program, task, seed, layout, num_train, num_valid, max_abs_error).

    A `programs_on_tasks` case at feature sizes 1-32 for the native
    interpreter; with `dead_code`, a `programs_with_dead_code` program after
    dce instead (its random ops are bound to explicit slots).  `layout`, the
    interpreter's memory, is the program's own one time in four, else
    `shared` (which must hold every memory drawn).  The requested training
    steps and validation examples are sometimes limited (or exceed the task).
    """
    features = feature_sizes(32)
    if dead_code:
        _, _, mem, padded, task, seed = draw(programs_with_dead_code(32, max_size, features))
        program = dce(padded)
    else:
        mem, program, task, seed = draw(programs_on_tasks(32, max_size, features))
    layout = mem if draw(st.integers(0, 3)) == 0 else shared
    num_train = draw(st.one_of(st.none(), st.integers(0, 2 * task.max_train_steps)))
    num_valid = draw(st.one_of(st.none(), st.integers(0, task.num_valid + 1)))
    return mem, program, task, seed, layout, num_train, num_valid, draw(max_abs_errors())
