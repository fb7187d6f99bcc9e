"""The search space: allowed ops, sizes and memory, and random instructions in it.

A `SearchSpace` says what evolution may write: the ops allowed in each
component function, the init/min/max sizes, the memory (S, V, M) and the
feature size F.  It makes random instructions exactly as the original's
`SetOpAndRandomizeParams` (docs/semantics.md §6.3): the op uniformly from the component's
list, then the parameters in a fixed order — set ops: output, then constants;
unary ops: input, then output; binary ops: in1, in2, output — with scalar
and vector outputs never at address 0 (s0 is the label, v0 the features).

Element indices are drawn as the original's fractions f ~ U[0, 1) and stored
as the index floor(F * f) for the search's F.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from azc.errors import ConfigError
from azc.ir import MAX_INSTRUCTIONS, NOOP, RECORD, Component, Instr, MemoryConfig
from azc.ops import OPS, Kind, Op
from azc.search.random import SearchRandom

UNLIMITED = MAX_INSTRUCTIONS  # no *_size_max given: the most a component may have
_POOL = 2048
_DTYPE = np.dtype([("op", "<i2"), ("out", "<i2"), ("in1", "<i2"), ("in2", "<i2"),
                   ("c0", "<f8"), ("c1", "<f8"), ("c2", "<f8")])


@dataclass(frozen=True)
class SearchSpace:
    """What evolution may write."""

    memory: MemoryConfig
    features: int
    ops: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    size_init: tuple[int, int, int]
    size_min: tuple[int, int, int] = (0, 0, 0)
    size_max: tuple[int, int, int] = (UNLIMITED, UNLIMITED, UNLIMITED)
    _op_rows: tuple = field(init=False, repr=False, compare=False)
    _makers: dict = field(init=False, repr=False, compare=False)
    _pool_keys: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for comp, ops in zip(Component, self.ops):
            for op in ops:
                o = OPS[op]
                if o.out is None:
                    continue
                if o.out is not Kind.MATRIX and self.memory.size(o.out) < 2:
                    raise ConfigError(f"{o.name} in {comp.attr}_ops writes a {o.out.word}, but "
                                      f"the memory has no {o.out.word} address besides "
                                      f"{o.out.letter}0")
                for k in (*o.ins, o.out):
                    if self.memory.size(k) < 1:
                        raise ConfigError(f"{o.name} in {comp.attr}_ops needs {k.word} "
                                          f"addresses, but the memory has none")
        object.__setattr__(self, "_op_rows", tuple(tuple(OPS[o] for o in ops)
                                                   for ops in self.ops))
        makers = {op.id: self._maker(op) for op in OPS if op.out is not None and op.ins}
        object.__setattr__(self, "_makers", makers)
        object.__setattr__(self, "_pool_keys",
                           tuple(("space", int(c), self.ops[c]) for c in Component))

    def _maker(self, op: Op):
        """A fast maker of random instructions of an op with inputs (draw order in, in2, out)."""
        assert op.out is not None
        sizes = [self.memory.size(k) for k in op.ins]
        lo = 0 if op.out is Kind.MATRIX else 1
        span = self.memory.size(op.out) - lo
        pack, new, oid = RECORD.pack, bytes.__new__, op.id

        def draw(rnd: SearchRandom, n: int) -> int:
            return rnd.integer(n)

        if len(sizes) == 1:
            n1 = sizes[0]

            def make1(rnd: SearchRandom) -> Instr:
                in1 = draw(rnd, n1)
                return new(Instr, pack(oid, lo + draw(rnd, span), in1, 0, 0.0, 0.0, 0.0))
            return make1
        n1, n2 = sizes

        def make2(rnd: SearchRandom) -> Instr:
            in1 = draw(rnd, n1)
            in2 = draw(rnd, n2)
            return new(Instr, pack(oid, lo + draw(rnd, span), in1, in2, 0.0, 0.0, 0.0))
        return make2

    def mutable(self) -> list[Component]:
        """The components evolution may change (those with allowed ops)."""
        return [c for c in Component if self.ops[c]]

    def allowed(self) -> dict[Component, frozenset[int]]:
        """Allowed op ids per component (for verify())."""
        return {c: frozenset(self.ops[c]) for c in Component}

    def random_op(self, comp: Component, rnd: SearchRandom) -> Op:
        """An op drawn uniformly from the component's list."""
        return rnd.choice(self._op_rows[comp])

    def random_instr(self, op: Op, rnd: SearchRandom) -> Instr:
        """A new instruction of this op with randomized parameters (docs/semantics.md §6.3)."""
        make = self._makers.get(op.id)
        if make is not None:
            return make(rnd)
        if op.out is None:
            return NOOP
        return self._with_consts(op, self.output(op.out, rnd), rnd)

    def input(self, kind: Kind, rnd: SearchRandom) -> int:
        """An input address: any address of the kind."""
        return rnd.integer(self.memory.size(kind))

    def output(self, kind: Kind, rnd: SearchRandom) -> int:
        """An output address: never s0 or v0 (matrix outputs may be m0)."""
        if kind is Kind.MATRIX:
            return rnd.integer(self.memory.matrices)
        return rnd.between(1, self.memory.size(kind))

    def _with_consts(self, op: Op, out: int, rnd: SearchRandom) -> Instr:
        c = (*op.random_params(rnd, self.features), 0.0, 0.0, 0.0)
        return Instr(op.id, out, c0=c[0], c1=c[1], c2=c[2])

    def random_component(self, comp: Component, size: int,
                         rnd: SearchRandom) -> tuple[Instr, ...]:
        """`size` random instructions for a component (no-ops if it has no allowed ops)."""
        if not self.ops[comp]:
            return (NOOP,) * size
        pool = rnd.pools.get(self._pool_keys[comp])
        if pool is None or len(pool) < size:
            pool = self.fill_pool(comp, rnd, max(size, _POOL))
        out = tuple(pool[-size:])
        del pool[-size:]
        return out

    def random_instrs(self, comp: Component, rnd: SearchRandom) -> Instr:
        """One random instruction of a component (op uniform from its list, then params)."""
        pool = rnd.pools.get(self._pool_keys[comp])
        if not pool:
            pool = self.fill_pool(comp, rnd, _POOL)
        return pool.pop()

    def fill_pool(self, comp: Component, rnd: SearchRandom, n: int) -> list[Instr]:
        """Draw n random instructions of a component at once (numpy), into rnd's pools.

        Same distribution as `random_instr(random_op(...))` (docs/semantics.md §6.3), drawn
        in bulk: the op uniformly from the list, addresses uniformly (outputs
        never s0/v0), constants as the original draws them.
        """
        g = rnd.gen
        ops = np.array(self.ops[comp], dtype=np.int16)
        rec = np.zeros(n, dtype=_DTYPE)
        chosen = ops[g.integers(0, len(ops), n)]
        rec["op"] = chosen
        for oid in np.unique(chosen):
            sel = np.flatnonzero(chosen == oid)
            k = len(sel)
            op = OPS[int(oid)]
            if op.out is None:
                continue
            for name, kind in zip(("in1", "in2"), op.ins):
                rec[name][sel] = g.integers(0, self.memory.size(kind), k)
            lo = 0 if op.out is Kind.MATRIX else 1
            rec["out"][sel] = g.integers(lo, self.memory.size(op.out), k)
            self._bulk_consts(op, rec, sel, g)
        buf = rec.tobytes()
        pool = rnd.pools.setdefault(self._pool_keys[comp], [])
        new = bytes.__new__
        pool[:0] = [new(Instr, buf[i:i + 32]) for i in range(0, 32 * n, 32)]
        return pool

    def _bulk_consts(self, op: Op, rec: np.ndarray, sel: np.ndarray,
                     g: np.random.Generator) -> None:
        for i, param in enumerate(op.params):  # slot by slot, as `_with_consts`
            rec[f"c{i}"][sel] = param.draw_many(g, self.features, len(sel))
