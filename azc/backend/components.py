"""The mixed tier: compiled task loops inside the native interpreter.

The native interpreter runs any program with no compile.  When an
evaluation is long enough — many examples, F=16 — compiling the program's
training and validation loops, with its Predict and Learn inlined, pays for
itself: the interpreter keeps running Setup and then calls the compiled
loops (`kernels.loop_kernel_module`), which hold the scalars and vectors in
registers across examples (2-4x faster than interpreting at F=16).  Kernels
are keyed by the live code of Predict and Learn, so children that differ only
in Setup, or only in dead code, share one.

When the tasks pair up (two in a row of the same shape, as in the large
configuration's ten tasks), code whose Predict and Learn use only scalar and
vector ops gets paired loops instead (`kernels.paired_kernel_module`): two
tasks run at once on interleaved memory, so that the dependency chains of
SGD-like programs (dot product, sigmoid, update) of the two tasks overlap.

The cost model (`CostModel`) estimates from the op table the time compiling
saves per example, and compiles when the saving over the evaluations it
expects of this code exceeds the measured compile time.

Native code is freed only with its engine: kernels are compiled in batches
into engines of bounded size and at most `max_engines` engines are kept (the
oldest is closed, with its kernels), so memory stays bounded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from azc.backend.contracts import CODE_RECORD, PAIR_SHAPE, Layout, ProgSlot
from azc.backend.irtext import dedupe
from azc.backend.jit import Compiler, Engine
from azc.backend.kernels import loop_kernel_module, pairable, paired_kernel_module
from azc.backend.protocol import paired_on_stack
from azc.ir import Instr, MemoryConfig
from azc.ops import OPS


@dataclass
class CostModel:
    """When compiling a program's task loops pays: time saved per example, expected
    evaluations of the same code, measured compile time.

    Interpreting costs the protocol (about 30 ns per example, the training sigmoid
    included) plus the ops (`Op.interp_ns`).  Compiled loops cost about 12 ns plus the
    matrix ops (the same loops in both tiers) plus a third of the other ops, which
    run in registers without dispatch (calibrated on evolved programs of the large
    configuration, F=16).  Code seen `uses` times before is expected to be
    evaluated `1 + reuse * uses` times from now on (with `reuse` 1, the rule of
    ski rental: compile once the time lost by not having compiled reaches the
    compile time; in a search, code that recurs tends to be a population's
    staple, so its future is often longer than its past).
    """

    compile_seconds: float = 0.02   # running estimate, updated with measurements
    reuse: float = 1.0

    @staticmethod
    def saved_ns(predict: Sequence[Instr], learn: Sequence[Instr], F: int) -> float:
        """Estimated time compiled loops save per example, in nanoseconds."""
        matrix = other = 0.0
        for i in (*predict, *learn):
            op = OPS[i.op]
            if op.out is None:
                continue
            if op.touches_matrices:
                matrix += op.interp_ns(F)
            else:
                other += op.interp_ns(F)
        interpreted = 30.0 + matrix + other
        compiled = 12.0 + matrix + other / 3
        return interpreted - compiled

    def pays(self, examples: int, saved_ns: float, uses: int) -> bool:
        """Whether compiling pays for code evaluated `uses` times before, on `examples`."""
        saved = examples * saved_ns * 1e-9
        return saved * (1 + self.reuse * uses) > self.compile_seconds

    def observe(self, seconds_per_kernel: float) -> None:
        """Update the compile-time estimate with a measurement."""
        self.compile_seconds = 0.8 * self.compile_seconds + 0.2 * seconds_per_kernel


class ComponentKernels:
    """Compiled task loops by live Predict/Learn key, compiled in batches, bounded."""

    def __init__(self, memory: MemoryConfig, features: int, compiler: Compiler | None = None,
                 engine_size: int = 64, max_engines: int = 8):
        self.layout = Layout.of(memory, features)
        self.features = features
        self.compiler = compiler or Compiler(opt=1, engine_size=engine_size)
        self.compiler.engine_size = engine_size
        self.max_engines = max_engines
        self.kernels: dict[bytes, tuple[int, Engine, int]] = {}  # address, engine, field
        self.engines: OrderedDict[int, Engine] = OrderedDict()
        self.cost = CostModel()
        self.uses: dict[bytes, int] = {}
        self.compiled = 0
        self.hits = 0

    def get(self, key: bytes) -> tuple[int, int] | None:
        """(descriptor field, function address) of a key's loops, if compiled and alive
        (`ProgSlot.LOOPS`: `loop_kernel_module`, `ProgSlot.PAIRED_LOOPS`:
        `paired_kernel_module`)."""
        k = self.kernels.get(key)
        if k is None or k[1].closed:
            return None
        self.hits += 1
        return k[2], k[0]

    def count_use(self, key: bytes) -> int:
        """Count an evaluation of this code; the uses before it."""
        n = self.uses.get(key, 0)
        if len(self.uses) > 200_000:
            self.uses.clear()
        self.uses[key] = n + 1
        return n

    def compile(self, items: list[tuple[bytes, Sequence[Instr], Sequence[Instr]]],
                paired: bool = False) -> None:
        """Compile (key, predict, learn) in one module (`paired`: paired loops for the code
        that has them)."""
        if not items:
            return
        parts, names, fields = [], [], []
        for i, (_, predict, learn) in enumerate(items):
            if paired and pairable(predict, learn) and paired_on_stack(self.layout):
                parts.append(paired_kernel_module(predict, learn, self.layout, f"ck{i}"))
                fields.append(ProgSlot.PAIRED_LOOPS)
            else:
                parts.append(loop_kernel_module(predict, learn, self.layout, f"ck{i}"))
                fields.append(ProgSlot.LOOPS)
            names.append(f"ck{i}")
        seen: set[str] = set()
        module = "\n".join(dedupe(t, seen) for t in parts)
        engine, addrs, seconds = self.compiler.compile_text(module, names, len(items))
        self.cost.observe(seconds / len(items))
        self.compiled += len(items)
        self.engines[id(engine)] = engine
        self.engines.move_to_end(id(engine))
        for i, (key, _, _) in enumerate(items):
            self.kernels[key] = (addrs[i], engine, fields[i])
        while len(self.engines) > self.max_engines:
            _, old = self.engines.popitem(last=False)
            if old is self.compiler.engine:
                self.compiler.engine = None
            self.kernels = {k: v for k, v in self.kernels.items() if v[1] is not old}
            old.close()

    def close(self) -> None:
        """Free all compiled code."""
        for engine in self.engines.values():
            engine.close()
        self.engines.clear()
        self.kernels.clear()


_shared: dict[tuple, ComponentKernels] = {}


def component_kernels(memory: MemoryConfig, features: int) -> ComponentKernels:
    """The process-wide compiled components of a layout and F."""
    key = (memory.scalars, memory.vectors, memory.matrices, features)
    ck = _shared.get(key)
    if ck is None:
        ck = _shared[key] = ComponentKernels(MemoryConfig(*key[:3]), features)
    return ck


def pairs_up(tasks) -> bool:
    """Whether a `TaskBatch`'s tasks pair up: an even number, tasks 2i and 2i+1 of the
    same shape (the native interpreter runs such pairs in paired loops)."""
    cols = list(PAIR_SHAPE)
    shape = tasks.desc[:, cols]
    return len(shape) % 2 == 0 and bool((shape[0::2] == shape[1::2]).all())


def attach(ck: ComponentKernels, enc, examples: int, paired: bool = False) -> int:
    """Give the programs of `enc` compiled task loops where the cost model says so.

    `enc` is an `azc.backend.native.Encoded` batch about to be run on tasks
    totalling `examples` examples per program; `ProgSlot.LOOPS` (or `PAIRED_LOOPS`,
    loops, with `paired`: see `pairs_up`) is set for the programs that get
    kernels (compiled now, in one batch, if needed).  Returns how many programs
    run with compiled loops.
    """
    code = enc.code
    base = code.ctypes.data
    raw = code.tobytes()
    F = ck.features
    pending: dict[bytes, tuple] = {}
    rows: list[tuple[int, bytes]] = []
    for r in range(len(enc.progs)):
        d = enc.progs[r]
        p0, pn = int(d[ProgSlot.PREDICT_CODE]) - base, int(d[ProgSlot.PREDICT_LEN])
        l0, ln = int(d[ProgSlot.LEARN_CODE]) - base, int(d[ProgSlot.LEARN_LEN])
        pb, lb = raw[p0:p0 + CODE_RECORD * pn], raw[l0:l0 + CODE_RECORD * ln]
        key = pb + b"|" + lb + (b"|paired" if paired else b"")  # one kernel of each kind
        rows.append((r, key))
        if ck.get(key) is not None or key in pending:
            continue
        uses = ck.count_use(key)
        predict = [Instr.from_record(pb[i:i + CODE_RECORD])
                   for i in range(0, len(pb), CODE_RECORD)]
        learn = [Instr.from_record(lb[i:i + CODE_RECORD]) for i in range(0, len(lb), CODE_RECORD)]
        if ck.cost.pays(examples, ck.cost.saved_ns(predict, learn, F), uses):
            pending[key] = (key, predict, learn)
    if pending:
        ck.compile(list(pending.values()), paired)
    n = 0
    for r, key in rows:
        got = ck.get(key)
        if got is not None:
            enc.progs[r, got[0]] = got[1]
            n += 1
    return n
