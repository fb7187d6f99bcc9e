"""Constant folding and propagation: `fold(program, features) -> program`.

Contract
--------
`fold` returns a program with the same instructions at the same positions,
except that scalar-output instructions whose result is known before the run
are replaced in place by `sc = <value>` (SCALAR_CONST).  On every task with
`features` features and every seed, it gives the same training and
validation predictions (bit for bit; a NaN may change its payload) and
fitness as its input.  The result depends on `features` (a vector or matrix
value has F elements): it is only valid at that F.  With `features=None`
only scalar-only ops fold (no vector or matrix input or output: their values
do not depend on F), and the result is valid at every F.  The pass is pure
and idempotent, and returns its input object unchanged when nothing folds.

Values are computed by the op table's reference semantics only
(`OPS[op].ref(a, b, k, F, None)` under `np.errstate(all="ignore")`), the
same calls the interpreter makes, so folding and interpretation cannot
disagree.  There are no algebraic identities (x * 0 is not 0 when x is NaN):
an instruction is replaced only by its exact computed value, NaN, +-inf and
-0 included.

What is known
-------------
A map location -> value (numpy float64 scalar, F-vector or F x F matrix) is
carried forward through each component:

* Setup starts from all-zero memory, so every location is known (0).
* A location is *invariant* if no Predict/Learn instruction writes it and it
  is not s0, s1 or v0 (the harness writes those); its value throughout
  training and validation is its value at the end of Setup.
* Predict starts with s0 = 0 (the harness zeroes it) and the invariants at
  their Setup-exit values; everything else (s1, v0, the locations that
  Predict or Learn write) is unknown.  Learn starts with the invariants
  only (s0 is the label there).
* A non-random instruction whose inputs are known (for the element setters
  element setter also the old value of its output) gives a known value; a random op,
  or any unknown input, makes its output unknown.

Random ops are never replaced, and positions never change, so random-stream
slots stay valid.  Vector and matrix results cannot be written as one
instruction: those instructions stay, but their values keep propagating
(`s4 = dot(v2, v2)` folds when v2 is known).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from azc.errors import VerifyError
from azc.ir import Component, Instr, Program
from azc.ops import OPS, SCALAR_CONST, Kind, OpColumn

Loc = tuple[int, int]
Env = dict[Loc, Any]  # location -> known value; None (or absent outside Setup) = unknown

S0: Loc = (0, 0)
VARIANT: frozenset[Loc] = frozenset({(0, 0), (0, 1), (1, 0)})  # s0, s1, v0: harness-written
CONST_SET = SCALAR_CONST.id

_OUT_KIND = OpColumn(lambda op: -1 if op.out is None else int(op.out))
# ops whose inputs and output are all scalars: their values do not depend on F
_SCALAR_ONLY = OpColumn(lambda op: op.out is Kind.SCALAR and all(k is Kind.SCALAR for k in op.ins))


def zero(kind: int, features: int | None) -> Any:
    """The value of a location of a kind in fresh memory (None: unknown without F)."""
    if kind == Kind.SCALAR:
        return np.float64(0.0)
    if features is None:
        return None
    if kind == Kind.VECTOR:
        return np.zeros(features, dtype=np.float64)
    return np.zeros((features, features), dtype=np.float64)


def stored(value: Any, kind: int, features: int | None) -> Any:
    """A result as the interpreter's memory holds it after the write."""
    if kind == Kind.SCALAR:
        return np.float64(value)
    assert features is not None, "a vector or matrix result needs the feature size"
    shape = (features,) if kind == Kind.VECTOR else (features, features)
    out = np.empty(shape, dtype=np.float64)
    out[...] = value
    return out


def _reads(ins: Instr) -> list[Loc]:
    """The locations an instruction reads, including the old output of an element setter."""
    op = OPS[ins.op]
    locs = [(int(k), a) for k, a in zip(op.ins, (ins.in1, ins.in2))]
    if op.partial_write:
        locs.append((_OUT_KIND[ins.op], ins.out))
    return locs


def _check_index(ins: Instr, features: int, component: Component, index: int) -> None:
    """Fail fast on an element index the feature size cannot hold."""
    op = OPS[ins.op]
    n_index = len(op.consts) - 1
    for i in range(n_index):
        if not 0 <= ins.consts[i] < features:
            raise VerifyError(f"element index {int(ins.consts[i])} is out of range for feature "
                              f"size F={features} (0..{features - 1})",
                              component=component.title, index=index, field=f"c{i}")


def known_result(ins: Instr, values: list[Any], features: int | None) -> Any:
    """The value an instruction writes, given its known inputs (see `_reads`)."""
    op = OPS[ins.op]
    a = values[0] if values else None
    b = values[1] if len(values) > 1 else None
    with np.errstate(all="ignore"):
        return stored(op.ref(a, b, ins.consts, features, None), _OUT_KIND[ins.op], features)


def fold_component(instrs: Sequence[Instr], env: Env, fresh: bool, features: int | None,
                   component: Component) -> tuple[tuple[Instr, ...], Env]:
    """Fold one component from a start map; the new instructions and the map at its end.

    `fresh` says that memory starts all zero (Setup): an absent location is
    known to be zero; otherwise an absent location is unknown.  Without
    `features`, only scalar-only ops are computed.
    """
    env = dict(env)
    out: list[Instr] = []
    for pos, ins in enumerate(instrs):
        op = OPS[ins.op]
        kind = _OUT_KIND[ins.op]
        if kind < 0:
            out.append(ins)
            continue
        loc = (kind, ins.out)
        if op.random or (features is None and not _SCALAR_ONLY[ins.op]):
            env[loc] = None
            out.append(ins)
            continue
        if op.partial_write:
            assert features is not None  # a vector or matrix output: known only with F
            _check_index(ins, features, component, pos)
        values = [env[r] if r in env else (zero(r[0], features) if fresh else None)
                  for r in _reads(ins)]
        if any(v is None for v in values):
            env[loc] = None
            out.append(ins)
            continue
        value = known_result(ins, values, features)
        env[loc] = value
        if kind == Kind.SCALAR and ins.op != CONST_SET:
            ins = Instr.make(CONST_SET, ins.out, consts=[float(value)])
        out.append(ins)
    return tuple(out), env


def variant_locations(program: Program) -> set[Loc]:
    """The locations that are not invariant: written by Predict or Learn, or s0, s1, v0."""
    locs = set(VARIANT)
    for instrs in (program.predict, program.learn):
        for ins in instrs:
            kind = _OUT_KIND[ins.op]
            if kind >= 0:
                locs.add((kind, ins.out))
    return locs


def entry_env(instrs: Sequence[Instr], setup_exit: Env, variant: set[Loc], features: int | None,
              label_zeroed: bool) -> Env:
    """What is known at the entry of Predict (`label_zeroed`) or Learn."""
    env: Env = {}
    for ins in instrs:
        if _OUT_KIND[ins.op] < 0:
            continue
        for r in _reads(ins):
            if r in variant:
                continue
            env[r] = setup_exit[r] if r in setup_exit else zero(r[0], features)
    if label_zeroed:
        env[S0] = np.float64(0.0)
    return env


def fold(program: Program, features: int | None) -> Program:
    """The program with known scalar results replaced by constants (module docstring)."""
    if features is not None and features < 1:
        raise VerifyError(f"the feature size must be at least 1, got {features}")
    setup, setup_exit = fold_component(program.setup, {}, True, features, Component.SETUP)
    variant = variant_locations(program)
    parts = [setup]
    for comp, zeroed in ((Component.PREDICT, True), (Component.LEARN, False)):
        instrs = program[comp]
        env = entry_env(instrs, setup_exit, variant, features, zeroed)
        new, _ = fold_component(instrs, env, False, features, comp)
        parts.append(new)
    if all(new == old for new, (_, old) in zip(parts, program.components())):
        return program
    return Program(*parts)
