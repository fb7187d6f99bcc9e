"""Dead-code removal by AutoML-Zero's memory model: `dce(program) -> program`.

Contract
--------
`dce` returns a program that gives the same training and validation
predictions (hence the same fitness) as its input on every task, seed and
feature size, with every dead instruction and every NO_OP removed.  It is
pure, idempotent (`dce(dce(p)) == dce(p)`), never adds instructions, and
returns its input object unchanged when there is nothing to remove.

Liveness
--------
Memory persists from Setup into every Predict and Learn, across examples,
epochs and into validation, so liveness is a fixed point over the loop

    Setup -> (Predict -> Learn)*, with validation Predicts interleaved

(a Predict is followed by a Learn or a Predict, or ends the run; a Learn is
always followed by a Predict; Setup by a Predict).  A location is a
(kind, address) pair; a whole vector or matrix is one location.

* The only observable output is `s1` at the end of every Predict (the
  prediction; on ACCURACY tasks the harness also rewrites s1 = sigmoid(s1)
  after a training Predict, which reads s1 anyway).
* The harness writes `s0` and `v0` at the entry of every Predict and Learn,
  so they are never live across a component boundary into them.
* Within a component, walking backwards: an instruction is live iff it
  writes a location live after it.  A live instruction kills its output
  (removes it from the live set), then adds its inputs.  The element
  element setters (`op.partial_write`) keep the other elements of their
  output: they read their output and do not kill it.
* Across components (least fixed point, starting from empty sets):
  live_out(Predict) = {s1} | live_in'(Learn) | live_in'(Predict),
  live_out(Learn) = live_in'(Predict), live_out(Setup) = live_in'(Predict),
  where live_in' = live_in - {s0, v0}.

Random ops
----------
Random ops have no effect besides their output, so a dead random op is
removed like any other dead instruction.  The random generator is
counter-based: a draw is a pure function of (seed, task, execution,
instruction slot, element), never of the draws before it, so removing a
random op does not change the draws of the others -- provided every
surviving random op keeps its slot.  The slot of a random op is `ins.slot`
when >= 0, else its position in the original component (NO_OPs count).
In a component that loses instructions, survivors are rebound with
`azc.ir.canonical_slots`: an explicit slot where the slot differs from the
new position, -1 where it equals it.  A component that loses nothing is
returned as it is.

This module is plain Python over tuples and sets (no numpy): the evolution
loop runs it on every child.
"""

from __future__ import annotations

from collections.abc import Sequence

from azc.ir import Instr, Program, canonical_slots, slot_at
from azc.ops import OpColumn

Loc = tuple[int, int]

S1: Loc = (0, 1)
HARNESS: frozenset[Loc] = frozenset({(0, 0), (1, 0)})  # s0 and v0, written at every entry

_OUT_KIND = OpColumn(lambda op: -1 if op.out is None else int(op.out))
_IN_KINDS = OpColumn(lambda op: tuple(int(k) for k in op.ins))
_PARTIAL = OpColumn(lambda op: op.partial_write)


def sweep(instrs: Sequence[Instr], live_out: set[Loc]) -> tuple[set[Loc], list[bool]]:
    """Backward liveness through one component: (live_in, which instructions are live)."""
    live = set(live_out)
    mask = [False] * len(instrs)
    for i in range(len(instrs) - 1, -1, -1):
        ins = instrs[i]
        kind = _OUT_KIND[ins.op]
        if kind < 0:
            continue  # NO_OP
        out = (kind, ins.out)
        if out not in live:
            continue
        mask[i] = True
        if not _PARTIAL[ins.op]:
            live.discard(out)  # a full write kills; element setters keep the rest
        kinds = _IN_KINDS[ins.op]
        if kinds:
            live.add((kinds[0], ins.in1))
            if len(kinds) > 1:
                live.add((kinds[1], ins.in2))
    return live, mask


def liveness(program: Program) -> tuple[list[bool], list[bool], list[bool]]:
    """Which instructions of Setup, Predict and Learn are live (least fixed point)."""
    live_p: set[Loc] = set()
    live_l: set[Loc] = set()
    while True:
        out_p = {S1}
        out_p.update(live_p, live_l)
        out_p -= HARNESS
        new_p, mask_p = sweep(program.predict, out_p)
        new_l, mask_l = sweep(program.learn, new_p - HARNESS)
        if new_p == live_p and new_l == live_l:
            break
        live_p, live_l = new_p, new_l
    _, mask_s = sweep(program.setup, live_p - HARNESS)
    return mask_s, mask_p, mask_l


def _keep(instrs: tuple[Instr, ...], mask: list[bool]) -> tuple[Instr, ...]:
    """The live instructions, random ops keeping their slots (canonical form)."""
    if all(mask):
        return instrs  # nothing moves
    kept = [i for i, live in enumerate(mask) if live]
    return canonical_slots([instrs[i] for i in kept], [slot_at(instrs[i], i) for i in kept])


def dce(program: Program) -> Program:
    """The program without dead instructions and NO_OPs (see the module docstring)."""
    masks = liveness(program)
    parts = [_keep(instrs, mask) for instrs, mask in
             zip((program.setup, program.predict, program.learn), masks)]
    if all(new is old for new, old in zip(parts, (program.setup, program.predict,
                                                  program.learn))):
        return program
    return Program(*parts)
