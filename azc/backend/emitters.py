"""The per-op LLVM emitters: one registered body per op of the op table.

Every op is one LLVM function with the same signature,

    void @op_<id>(ptr out, ptr a, ptr b, double c0, double c1, double c2, i64 key)

where `out`, `a`, `b` point at the operands (any of them may alias: every
emitter reads all inputs before it writes), `c0..c2` are the constants and
`key` the random-stream key of the instruction (random ops only).  A compiled
kernel calls these functions with constant pointers and constants (they are
`alwaysinline`, so LLVM sees straight-line code); the native interpreter calls
the same functions with run-time pointers.  The bodies follow the reference
semantics of azc.ops exactly: sums are ordered reductions starting from the
first element (llvm.vector.reduce.fadd without reassociation, start -0.0),
products are separate fmul (no FMA: no fast-math flags anywhere), the
transcendental functions are calls to the C library, min/max and heaviside are
the same compare-and-select as the interpreter.

Emitters are registered by op name (`lowering`), alone or per family by a
factory; `EMITTERS` must cover every op of the table with an output (a test
checks it), and the ops that also have a paired body (two tasks at once,
`PairEmit`) are those whose row says `paired`.
"""

from __future__ import annotations

from collections.abc import Callable

from azc.backend.emit import Emit, PairEmit
from azc.backend.irtext import HEAP_DECLARATIONS, Body, f64
from azc.errors import LoweringError
from azc.ops import OPS, Op, on_change
from azc.resources import runtime_file

OP_ARGS = "ptr %out, ptr %a, ptr %b, double %c0, double %c1, double %c2, i64 %key"


Emitter = Callable[[Emit, Op], None]

# The body of every op with an output, by op name; and the paired bodies that are not
# the op's own emitter run on `PairEmit` (the setters).
EMITTERS: dict[str, Emitter] = {}
PAIRED_EMITTERS: dict[str, Emitter] = {}


def lowering(*names: str, paired: bool = False) -> Callable[[Emitter], Emitter]:
    """Register an emitter for the ops of these names (`paired`: their body on paired
    memory, where it differs from the op's own emitter run on a `PairEmit`)."""
    def register(fn: Emitter) -> Emitter:
        table = PAIRED_EMITTERS if paired else EMITTERS
        for name in names:
            if name in table:
                raise LoweringError(f"op {name} has two emitters")
            table[name] = fn
        return fn
    return register


@on_change
def _forget_removed(added: tuple[Op, ...], removed: tuple[Op, ...]) -> None:
    """Ops removed from the table (the end of `azc.ops.extended`) lose their emitters."""
    for op in removed:
        EMITTERS.pop(op.name, None)
        PAIRED_EMITTERS.pop(op.name, None)


def libm_functions() -> tuple[str, ...]:
    """The C-library functions the ops of the table are."""
    return tuple(dict.fromkeys(op.libm for op in OPS if op.libm is not None))


def emitter(op: Op, paired: bool = False) -> Emitter:
    """The emitter of an op (`paired`: of its body on paired memory)."""
    if paired:
        if not op.paired:
            raise LoweringError(f"op {op.name} has no paired body")
        fn = PAIRED_EMITTERS.get(op.name)
        if fn is not None:
            return fn
    fn = EMITTERS.get(op.name)
    if fn is None:
        raise LoweringError(f"no LLVM emitter for op {op.name}")
    return fn


def emit_op(op: Op, e: Emit) -> None:
    """Write the body of @op_<id> (everything but the final ret)."""
    if op.out is not None:
        emitter(op)(e, op)


def emit_paired_op(op: Op, e: PairEmit) -> None:
    """Write the body of @op2_<id>: the op on paired memory."""
    emitter(op, paired=True)(e, op)


# --- families, registered by factories -------------------------------------------------

def _register_all(names_and_emitters: dict[str, Emitter]) -> None:
    for name, fn in names_and_emitters.items():
        lowering(name)(fn)


def scalar_binary(opcode: str) -> Emitter:
    """sc = sa <opcode> sb."""
    def emit(e: Emit, op: Op) -> None:
        e.sts("%out", e.sop(opcode, e.lds("%a"), e.lds("%b")))
    return emit


def scalar_libm(name: str) -> Emitter:
    """sc = name(sa), a C-library call."""
    def emit(e: Emit, op: Op) -> None:
        e.sts("%out", e.scall(name, e.lds("%a")))
    return emit


def vector_binary(opcode: str) -> Emitter:
    """vc = va <opcode> vb, elementwise."""
    def emit(e: Emit, op: Op) -> None:
        e.stv("%out", e.vop(opcode, e.ldv("%a"), e.ldv("%b")))
    return emit


RowFn = Callable[[Emit, str], str]
RowFn2 = Callable[[Emit, str, str], str]


def matrix_unary(row_fn: RowFn) -> Emitter:
    """An elementwise matrix op, row by row (each row read before it is written)."""
    def emit(e: Emit, op: Op) -> None:
        e.b.loop(e.F, lambda r: e.stv("%out", row_fn(e, e.ldv("%a", r)), r))
    return emit


def matrix_binary(row_fn: RowFn2) -> Emitter:
    """An elementwise binary matrix op, row by row."""
    def emit(e: Emit, op: Op) -> None:
        def body(r: str) -> None:
            x = e.ldv("%a", r)
            y = e.ldv("%b", r)
            e.stv("%out", row_fn(e, x, y), r)
        e.b.loop(e.F, body)
    return emit


def _heaviside_vec(e: Emit, x: str) -> str:
    return e.select_cmp("ogt", x, "zeroinitializer", e.const_vec(1.0), "zeroinitializer", True)


def _recip_vec(e: Emit, x: str) -> str:
    return e.vop("fdiv", e.const_vec(1.0), x)


def _min_first(e: Emit, x: str, y: str, vector: bool) -> str:
    return e.select_cmp("olt", y, x, y, x, vector)       # b < a ? b : a


def _max_first(e: Emit, x: str, y: str, vector: bool) -> str:
    return e.select_cmp("olt", x, y, y, x, vector)       # a < b ? b : a


_register_all({
    "SCALAR_SUM": scalar_binary("fadd"), "SCALAR_DIFF": scalar_binary("fsub"),
    "SCALAR_PRODUCT": scalar_binary("fmul"), "SCALAR_DIVISION": scalar_binary("fdiv"),
    "VECTOR_SUM": vector_binary("fadd"), "VECTOR_DIFF": vector_binary("fsub"),
    "VECTOR_PRODUCT": vector_binary("fmul"), "VECTOR_DIVISION": vector_binary("fdiv"),
    "MATRIX_HEAVYSIDE": matrix_unary(_heaviside_vec),
    "MATRIX_RECIPROCAL": matrix_unary(_recip_vec),
    "MATRIX_ABS": matrix_unary(lambda e, x: e.vcall("fabs", x)),
    "MATRIX_SUM": matrix_binary(lambda e, x, y: e.vop("fadd", x, y)),
    "MATRIX_DIFF": matrix_binary(lambda e, x, y: e.vop("fsub", x, y)),
    "MATRIX_PRODUCT": matrix_binary(lambda e, x, y: e.vop("fmul", x, y)),
    "MATRIX_DIVISION": matrix_binary(lambda e, x, y: e.vop("fdiv", x, y)),
    "MATRIX_MIN": matrix_binary(lambda e, x, y: e.select_cmp("olt", x, y, x, y, True)),
    "MATRIX_MAX": matrix_binary(lambda e, x, y: e.select_cmp("ogt", x, y, x, y, True)),
})


_register_all({op.name: scalar_libm(op.libm) for op in OPS if op.libm is not None})


# --- scalar and vector ops -------------------------------------------------------------

@lowering("SCALAR_ABS")
def _scalar_abs(e: Emit, op: Op) -> None:
    e.sts("%out", e.scall("llvm.fabs.f64", e.lds("%a")))


@lowering("SCALAR_RECIPROCAL")
def _scalar_reciprocal(e: Emit, op: Op) -> None:
    e.sts("%out", e.sop("fdiv", f64(1.0), e.lds("%a")))


@lowering("SCALAR_HEAVYSIDE")
def _scalar_heaviside(e: Emit, op: Op) -> None:
    e.sts("%out", e.select_cmp("oge", e.lds("%a"), f64(0.0), f64(1.0), f64(0.0), False))


@lowering("VECTOR_HEAVYSIDE")
def _vector_heaviside(e: Emit, op: Op) -> None:
    e.stv("%out", _heaviside_vec(e, e.ldv("%a")))


@lowering("SCALAR_VECTOR_PRODUCT")
def _scalar_vector_product(e: Emit, op: Op) -> None:
    e.stv("%out", e.vop("fmul", e.ldv("%b"), e.splat(e.lds("%a"))))


@lowering("SCALAR_BROADCAST")
def _scalar_broadcast(e: Emit, op: Op) -> None:
    e.stv("%out", e.splat(e.lds("%a")))


@lowering("VECTOR_RECIPROCAL")
def _vector_reciprocal(e: Emit, op: Op) -> None:
    e.stv("%out", _recip_vec(e, e.ldv("%a")))


@lowering("VECTOR_NORM")
def _vector_norm(e: Emit, op: Op) -> None:
    x = e.ldv("%a")
    e.sts("%out", e.scall("llvm.sqrt.f64", e.vsum(e.vop("fmul", x, x))))


@lowering("VECTOR_ABS")
def _vector_abs(e: Emit, op: Op) -> None:
    e.stv("%out", e.vcall("fabs", e.ldv("%a")))


@lowering("VECTOR_INNER_PRODUCT")
def _vector_inner_product(e: Emit, op: Op) -> None:
    e.sts("%out", e.vsum(e.vop("fmul", e.ldv("%a"), e.ldv("%b"))))


@lowering("SCALAR_MIN", "SCALAR_MAX")
def _scalar_min_max(e: Emit, op: Op) -> None:
    fn = _min_first if op.func == "minimum" else _max_first
    e.sts("%out", fn(e, e.lds("%a"), e.lds("%b"), False))


@lowering("VECTOR_MIN", "VECTOR_MAX")
def _vector_min_max(e: Emit, op: Op) -> None:
    fn = _min_first if op.func == "minimum" else _max_first
    e.stv("%out", fn(e, e.ldv("%a"), e.ldv("%b"), True))


@lowering("VECTOR_MEAN")
def _vector_mean(e: Emit, op: Op) -> None:
    e.sts("%out", e.sop("fdiv", e.vsum(e.ldv("%a")), f64(e.features)))


@lowering("VECTOR_ST_DEV")
def _vector_st_dev(e: Emit, op: Op) -> None:
    x = e.ldv("%a")
    e.sts("%out", _std(e, e.vsum(x), e.vsum(e.vop("fmul", x, x)), e.features))


# --- ops with a matrix -----------------------------------------------------------------

@lowering("VECTOR_OUTER_PRODUCT")
def _outer_product(e: Emit, op: Op) -> None:
    y = e.ldv("%b")
    e.b.loop(e.F, lambda r: e.stv("%out", e.vop("fmul", e.splat(e.lds("%a", r)), y), r))


@lowering("SCALAR_MATRIX_PRODUCT")
def _scalar_matrix_product(e: Emit, op: Op) -> None:
    s = e.splat(e.lds("%a"))
    e.b.loop(e.F, lambda r: e.stv("%out", e.vop("fmul", e.ldv("%b", r), s), r))


@lowering("MATRIX_VECTOR_PRODUCT")
def _matrix_vector_product(e: Emit, op: Op) -> None:
    e.stv("%out", _row_reduce(e, _times_b))


@lowering("VECTOR_COLUMN_BROADCAST")
def _column_broadcast(e: Emit, op: Op) -> None:
    e.b.loop(e.F, lambda r: e.stv("%out", e.splat(e.lds("%a", r)), r))


@lowering("VECTOR_ROW_BROADCAST")
def _row_broadcast(e: Emit, op: Op) -> None:
    v = e.ldv("%a")
    e.b.loop(e.F, lambda r: e.stv("%out", v, r))


@lowering("MATRIX_NORM", "MATRIX_MEAN", "MATRIX_ST_DEV")
def _matrix_stat(e: Emit, op: Op) -> None:
    """Frobenius norm, mean or standard deviation of a matrix."""
    b, F = e.b, e.F
    need_total, need_squares = op.func != "norm", op.func != "mean"
    tot, sq = b.alloca("double", "tot"), b.alloca("double", "sq")
    b(f"store double 0x8000000000000000, ptr {tot}, align 8")
    b(f"store double 0x8000000000000000, ptr {sq}, align 8")

    def row(r: str) -> None:
        x = e.ldv("%a", r)
        if need_total:
            t0 = e.lds(tot)
            e.sts(tot, e.vsum(x, t0))
        if need_squares:
            s0 = e.lds(sq)
            e.sts(sq, e.vsum(e.vop("fmul", x, x), s0))
    b.loop(F, row)
    if op.func == "norm":
        result = e.scall("llvm.sqrt.f64", e.lds(sq))
    elif op.func == "mean":
        result = e.sop("fdiv", e.lds(tot), f64(F * F))
    else:
        result = _std(e, e.lds(tot), e.lds(sq), F * F)
    e.sts("%out", result)


@lowering("MATRIX_COLUMN_NORM")
def _column_norm(e: Emit, op: Op) -> None:
    b, F = e.b, e.F
    acc = b.alloca(e.vt, "acc")
    x = e.ldv("%a", 0)
    b(f"store {e.vt} {e.vop('fmul', x, x)}, ptr {acc}, align 8")

    def col(r: str) -> None:
        y = e.ldv("%a", r)
        sq = e.vop("fmul", y, y)
        cur = b.t("v")
        b(f"{cur} = load {e.vt}, ptr {acc}, align 8")
        b(f"store {e.vt} {e.vop('fadd', cur, sq)}, ptr {acc}, align 8")
    b.loop(F, col, start=1)
    fin = b.t("v")
    b(f"{fin} = load {e.vt}, ptr {acc}, align 8")
    e.stv("%out", e.vcall("sqrt", fin))


@lowering("MATRIX_ROW_NORM")
def _row_norm(e: Emit, op: Op) -> None:
    e.stv("%out", e.vcall("sqrt", _row_reduce(e, _square)))


@lowering("MATRIX_ROW_MEAN")
def _row_mean(e: Emit, op: Op) -> None:
    e.stv("%out", e.vop("fdiv", _row_reduce(e, _itself), e.const_vec(e.F)))


@lowering("MATRIX_ROW_ST_DEV")
def _row_st_dev(e: Emit, op: Op) -> None:
    F = e.F
    total = _row_reduce(e, _itself)
    squares = _row_reduce(e, _square)
    mean = e.vop("fdiv", total, e.const_vec(F))
    sq = e.vop("fdiv", squares, e.const_vec(F))
    e.stv("%out", e.vcall("sqrt", e.vop("fsub", sq, e.vop("fmul", mean, mean))))


@lowering("MATRIX_TRANSPOSE")
def _transpose(e: Emit, op: Op) -> None:
    b, F = e.b, e.F
    tmp = e.temp(F * F)

    def row(r: str) -> None:
        def col(c: str) -> None:
            src = b.t()
            b(f"{src} = mul i64 {r}, {F}")
            s2 = b.t()
            b(f"{s2} = add i64 {src}, {c}")
            dst = b.t()
            b(f"{dst} = mul i64 {c}, {F}")
            d2 = b.t()
            b(f"{d2} = add i64 {dst}, {r}")
            e.sts(tmp, e.lds("%a", s2), d2)
        b.loop(F, col)
    b.loop(F, row)
    e.copy_rows("%out", tmp)


@lowering("MATRIX_MATRIX_PRODUCT")
def _matmul(e: Emit, op: Op) -> None:
    b, F = e.b, e.F
    tmp = e.temp(F * F)

    def product_row(i: str) -> None:
        acc = b.alloca(e.vt, "acc")
        first = e.vop("fmul", e.splat(e.lds("%a", e.row_index(i))), e.ldv("%b", 0))
        b(f"store {e.vt} {first}, ptr {acc}, align 8")

        def inner(k: str) -> None:
            base = e.row_index(i)
            ik = b.t()
            b(f"{ik} = add i64 {base}, {k}")
            prod = e.vop("fmul", e.splat(e.lds("%a", ik)), e.ldv("%b", k))
            cur = b.t("v")
            b(f"{cur} = load {e.vt}, ptr {acc}, align 8")
            b(f"store {e.vt} {e.vop('fadd', cur, prod)}, ptr {acc}, align 8")
        b.loop(F, inner, start=1)
        fin = b.t("v")
        b(f"{fin} = load {e.vt}, ptr {acc}, align 8")
        e.stv(tmp, fin, i)
    b.loop(F, product_row)
    e.copy_rows("%out", tmp)


# --- setters ---------------------------------------------------------------------------

@lowering("SCALAR_CONST_SET")
def _scalar_const_set(e: Emit, op: Op) -> None:
    e.sts("%out", "%c0")


@lowering("VECTOR_CONST_SET")
def _vector_const_set(e: Emit, op: Op) -> None:
    i = e.b.t()
    e.b(f"{i} = fptosi double %c0 to i64")
    e.sts("%out", "%c1", i)


@lowering("MATRIX_CONST_SET")
def _matrix_const_set(e: Emit, op: Op) -> None:
    b = e.b
    i, j, ij, idx = b.t(), b.t(), b.t(), b.t()
    b(f"{i} = fptosi double %c0 to i64")
    b(f"{j} = fptosi double %c1 to i64")
    b(f"{ij} = mul i64 {i}, {e.F}")
    b(f"{idx} = add i64 {ij}, {j}")
    e.sts("%out", "%c2", idx)


@lowering("SCALAR_CONST_SET", paired=True)
def _paired_scalar_const_set(e: Emit, op: Op) -> None:
    assert isinstance(e, PairEmit)
    e.sts("%out", e.splat_scalar("%c0"))


@lowering("VECTOR_CONST_SET", paired=True)
def _paired_vector_const_set(e: Emit, op: Op) -> None:
    assert isinstance(e, PairEmit)
    i, i2 = e.b.t(), e.b.t()
    e.b(f"{i} = fptosi double %c0 to i64")
    e.b(f"{i2} = mul i64 {i}, 2")
    p = e.gep("%out", i2)
    e.b(f"store {e.st} {e.splat_scalar('%c1')}, ptr {p}, align 8")


@lowering("SCALAR_UNIFORM_SET", "VECTOR_UNIFORM_SET", "MATRIX_UNIFORM_SET")
def _uniform_set(e: Emit, op: Op) -> None:
    b = e.b

    def draw(k: str) -> None:
        u = b.t()
        b(f"{u} = call double @azc_uniform01(i64 %key, i64 {k})")
        x = b.t()
        b(f"{x} = call double @azc_uniform(double %c0, double %c1, double {u})")
        e.sts("%out", x, k)
    b.loop(op.draws(e.F), draw)


@lowering("SCALAR_GAUSSIAN_SET", "VECTOR_GAUSSIAN_SET", "MATRIX_GAUSSIAN_SET")
def _gaussian_set(e: Emit, op: Op) -> None:
    b = e.b

    def draw(k: str) -> None:
        k2, k3 = b.t(), b.t()
        b(f"{k2} = mul i64 {k}, {op.values_per_draw}")  # two uniforms per value
        b(f"{k3} = add i64 {k2}, 1")
        u1, u2, x = b.t(), b.t(), b.t()
        b(f"{u1} = call double @azc_uniform01(i64 %key, i64 {k2})")
        b(f"{u2} = call double @azc_uniform01(i64 %key, i64 {k3})")
        b(f"{x} = call double @azc_gaussian(double %c0, double %c1, double {u1}, "
          f"double {u2})")
        e.sts("%out", x, k)
    b.loop(op.draws(e.F), draw)


# --- helpers of the matrix reductions --------------------------------------------------

# A term of a row reduction: term(e, x, j, scalar) is the value added for element j, where
# x is element j of one row (scalar) or column j of the matrix (a vector across the rows).
RowTerm = Callable[[Emit, str, str, bool], str]
ROW_REDUCE_LANES = 64  # beyond this F, each row is summed by a loop of its own


def _itself(e: Emit, x: str, j: str, scalar: bool) -> str:
    return x


def _square(e: Emit, x: str, j: str, scalar: bool) -> str:
    return e.sop("fmul", x, x) if scalar else e.vop("fmul", x, x)


def _times_b(e: Emit, x: str, j: str, scalar: bool) -> str:
    """x times element j of the vector `%b` (the matrix-vector product)."""
    bj = e.lds("%b", j)
    return e.sop("fmul", x, bj) if scalar else e.vop("fmul", x, e.splat(bj))


def _row_reduce(e: Emit, term: RowTerm) -> str:
    """Per-row left-to-right sums of term(element j), as a vector of the F row sums.

    Row i accumulates term(a[i][j]) for j = 0, 1, ..., F-1 in order, starting
    from j = 0: exactly the sequential sum of row i.  Up to ROW_REDUCE_LANES
    the F sums run side by side, vectorized across the rows (columns gathered
    into vectors); beyond, each row's sum is a loop (the gathers' code grows
    with F and LLVM's compile time with it).  `%a` is the matrix.
    """
    b, F = e.b, e.F
    if F in (2, 4, 8, 16):
        return _row_reduce_transposed(e, term)
    if F > ROW_REDUCE_LANES:
        return _row_reduce_loops(e, term)

    def column(j: int | str) -> str:
        base = e.gep("%a", j)
        col = "poison"
        for i in range(F):
            x = e.lds(base, i * F)
            nxt = b.t("col")
            b(f"{nxt} = insertelement {e.vt} {col}, double {x}, i64 {i}")
            col = nxt
        return col

    acc = b.alloca(e.vt, "acc")
    b(f"store {e.vt} {term(e, column(0), '0', False)}, ptr {acc}, align 8")

    def step(j: str) -> None:
        cur = b.t("v")
        b(f"{cur} = load {e.vt}, ptr {acc}, align 8")
        b(f"store {e.vt} {e.vop('fadd', cur, term(e, column(j), j, False))}, ptr {acc}, align 8")
    b.loop(F, step, start=1)
    out = b.t("v")
    b(f"{out} = load {e.vt}, ptr {acc}, align 8")
    return out


def _row_reduce_loops(e: Emit, term: RowTerm) -> str:
    """`_row_reduce` as loops: row i's sum in a scalar, element by element, then stored
    as element i of a temporary vector."""
    b, F = e.b, e.F
    sums = e.temp(F)
    acc = b.alloca("double", "acc")

    def row(i: str) -> None:
        base = e.gep("%a", e.row_index(i))
        e.sts(acc, term(e, e.lds(base, 0), "0", True))

        def element(j: str) -> None:
            e.sts(acc, e.sop("fadd", e.lds(acc), term(e, e.lds(base, j), j, True)))
        b.loop(F, element, start=1)
        e.sts(sums, e.lds(acc), i)
    b.loop(F, row)
    return e.ldv(sums)


def _row_reduce_transposed(e: Emit, term: RowTerm) -> str:
    """`_row_reduce` for F a power of two up to 16: the F columns come from a transpose
    of the F rows by log2(F) stages of two-row shuffles (no element-by-element
    gathers), then the same left-to-right sums, unrolled."""
    b, F = e.b, e.F
    rows = [e.ldv("%a", r) for r in range(F)]
    h = 1
    while h < F:
        # rows i and i + h (i in an even block of h) swap their odd and even h-blocks
        lo = ", ".join(f"i32 {k if (k // h) % 2 == 0 else F + k - h}" for k in range(F))
        hi = ", ".join(f"i32 {k + h if (k // h) % 2 == 0 else F + k}" for k in range(F))
        new = list(rows)
        for i in range(F):
            if (i // h) % 2:
                continue
            for j, mask in ((i, lo), (i + h, hi)):
                t = b.t("tr")
                b(f"{t} = shufflevector {e.vt} {rows[i]}, {e.vt} {rows[i + h]}, "
                  f"<{F} x i32> <{mask}>")
                new[j] = t
        rows = new
        h *= 2
    acc = term(e, rows[0], "0", False)
    for j in range(1, F):
        acc = e.vop("fadd", acc, term(e, rows[j], str(j), False))
    return acc


def _std(e: Emit, total: str, squares: str, n: int) -> str:
    """sqrt(squares / n - (total / n)^2): the one-pass standard deviation."""
    mean = e.sop("fdiv", total, f64(n))
    sq = e.sop("fdiv", squares, f64(n))
    return e.scall("llvm.sqrt.f64", e.sop("fsub", sq, e.sop("fmul", mean, mean)))


def op_function(op: Op, F: int, inline: bool = True, paired: bool = False) -> str:
    """The LLVM definition of @op_<id> at feature size F (@op2_<id> on paired memory)."""
    b = Body()
    b.block("entry")
    if paired:
        emit_paired_op(op, PairEmit(b, F))
    else:
        emit_op(op, Emit(b, F))
    for line in b.frees:
        b(line)
    b("ret void")
    attrs = "alwaysinline nounwind" if inline else "nounwind"
    return (f"define internal void @op{'2' if paired else ''}_{op.id}({OP_ARGS}) {attrs} {{\n"
            + b.render() + "\n}\n")


def declarations(F: int, paired: bool = False, heap: bool = False) -> str:
    """Declarations of the C library and LLVM intrinsics the emitters use (`paired`: also
    those of `PairEmit`; `heap`: the allocation functions, for a `Layout.heap` layout)."""
    vt, vs = f"<{F} x double>", f"v{F}f64"
    lines = [f"declare double @{name}(double) nounwind" for name in libm_functions()]
    widths = [F, 2, 2 * F] if paired else [F]
    lines += [f"declare <{w} x double> @llvm.{fn}.v{w}f64(<{w} x double>)"
              for w in dict.fromkeys(widths) for fn in ("sqrt", "fabs")]
    lines += [
        "declare double @llvm.sqrt.f64(double)",
        "declare double @llvm.fabs.f64(double)",
        f"declare double @llvm.vector.reduce.fadd.{vs}(double, {vt})",
        "declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)",
        "declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)",
    ]
    return "\n".join(lines) + "\n" + (HEAP_DECLARATIONS if heap else "")


def rng_functions() -> str:
    """The native random generator (runtime/rng.ll)."""
    return runtime_file("rng.ll").read_text()
