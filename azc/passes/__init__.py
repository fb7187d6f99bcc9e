"""IR -> IR passes and the pipeline that runs them.

Each pass is a pure function in its own module, with its contract in the
module docstring:

* `fold(program, features)` (fold.py): constant folding and propagation
  through the op table's reference semantics; valid at that feature size.
* `dce(program)` (dce.py): dead-code removal by AutoML-Zero's memory model
  (liveness over Setup -> (Predict -> Learn)* -> Predict, seeded by s1).

The pipeline runs fold (only when the feature size is given, or with
`fold_scalars`: then only the scalar-only ops, valid at every F) and dce
alternately until neither changes the program: folding makes the inputs of
replaced instructions dead.  The other way round cannot happen with these
two passes -- a location read by live code keeps every write that makes it
non-invariant, and its Setup-exit value never depends on a dead write -- so
the loop ends after one productive round and one that confirms it (a test
checks this); the loop stays so that further passes compose.  Each pass
preserves the predictions and fitness of the program, so the pipeline does
too; both keep the random-stream slots of surviving random ops (canonical
form, `azc.ir.canonical_slots`).

Passes never import llvmlite, the backend or the search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azc.ir import Program, structural_hash
from azc.ops import NO_OP
from azc.passes.dce import dce
from azc.passes.fold import fold

__all__ = ["PASSES", "PassStats", "dce", "fold", "optimize", "optimize_with_stats",
           "optimized_hash"]

# (name, function): the passes in pipeline order, for docs and the CLI; the first line of a
# function's docstring says what it does.  fold also takes the feature size.
PASSES: list[tuple[str, Callable[..., Program]]] = [
    ("fold", fold),  # constant folding and propagation (needs the feature size)
    ("dce", dce),    # dead-code and no-op removal by AutoML-Zero's memory model
]


def optimize(program: Program, features: int | None = None, *,
             fold_scalars: bool = False) -> Program:
    """Fold (when `features` is given) and dce, alternately, until a fixed point.

    Without `features`, `fold_scalars` still folds the scalar-only ops (the
    result is valid at every F); otherwise only dce runs.
    """
    if features is None and not fold_scalars:
        return dce(program)
    while True:
        new = dce(fold(program, features))
        if new == program:
            return new
        program = new


@dataclass
class PassStats:
    """What the pipeline did to one program."""

    removed: int = 0          # instructions removed by dce, no-ops included
    removed_noops: int = 0    # of which no-ops
    folded: int = 0           # instructions replaced by a constant by fold
    iterations: int = 0       # rounds of (fold, dce) run; with fold, the last changes nothing
    before: tuple[int, int, int] = (0, 0, 0)  # Setup, Predict, Learn sizes
    after: tuple[int, int, int] = (0, 0, 0)
    features: int | None = None
    fold_scalars: bool = False  # fold ran without a feature size: scalar-only ops

    def __str__(self) -> str:
        names = ("Setup", "Predict", "Learn")
        sizes = ", ".join(f"{n} {b} -> {a}" for n, b, a in zip(names, self.before, self.after))
        total = f"{sum(self.before)} -> {sum(self.after)} instructions"
        at = (f"F={self.features}" if self.features is not None else
              "scalar-only ops, no feature size")
        fold_line = ("fold: not run (no feature size)"
                     if self.features is None and not self.fold_scalars else
                     f"fold: {self.folded} instruction{_s(self.folded)} replaced by constants "
                     f"({at})")
        return "\n".join([
            f"optimized in {self.iterations} iteration{_s(self.iterations)}: {total}",
            f"  {sizes}",
            f"  dce: {self.removed} instruction{_s(self.removed)} removed "
            f"({self.removed_noops} no-op{_s(self.removed_noops)})",
            f"  {fold_line}",
        ])

    def as_dict(self) -> dict[str, Any]:
        """The statistics as plain data (for --json output)."""
        return {"removed": self.removed, "removed_noops": self.removed_noops,
                "folded": self.folded, "iterations": self.iterations,
                "before": list(self.before), "after": list(self.after),
                "features": self.features}


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _changed(old: Program, new: Program) -> int:
    """Instructions that differ at the same position (fold keeps positions)."""
    return sum(a != b for x, y in zip(old.components(), new.components())
               for a, b in zip(x[1], y[1]))


def optimize_with_stats(program: Program, features: int | None = None, *,
                        fold_scalars: bool = False) -> tuple[Program, PassStats]:
    """`optimize`, and what each pass did."""
    folding = features is not None or fold_scalars
    stats = PassStats(before=program.sizes(), features=features,
                      fold_scalars=fold_scalars and features is None)
    while True:
        stats.iterations += 1
        folded = fold(program, features) if folding else program
        stats.folded += _changed(program, folded)
        new = dce(folded)
        stats.removed += sum(folded.sizes()) - sum(new.sizes())
        stats.removed_noops += sum(ins.op == NO_OP.id for _, _, ins in folded.instructions())
        if new == program or not folding:
            break
        program = new
    stats.after = new.sizes()
    return new, stats


def optimized_hash(program: Program, features: int | None = None) -> str:
    """The structural hash of the optimized program: dead code does not change it."""
    return structural_hash(optimize(program, features))
