"""The train budget (docs/semantics.md §4.6): reject programs much costlier than a baseline.

A program's cost is the sum of its ops' costs (the original's compute_cost
table, in the op table): `setup_cost` over Setup, `train_cost` over Predict
and Learn, all instructions counted (no-ops and dead code included, as in
the original).  With N*E training examples, a program trains on all of them
if `setup + N*E*train <= factor * (base_setup + N*E*base_train)` for the
baseline algorithm padded to the experiment's init sizes, and on none
otherwise (task fitness 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from azc.errors import ConfigError
from azc.ir import Program
from azc.ops import OpColumn

COSTS = OpColumn(lambda op: op.cost)


def program_costs(program: Program) -> tuple[int, int]:
    """(setup cost, train cost) of a program."""
    c = COSTS
    setup = sum(c[i[0]] for i in program.setup)
    train = sum(c[i[0]] for i in program.predict) + sum(c[i[0]] for i in program.learn)
    return setup, train


@dataclass(frozen=True)
class TrainBudget:
    """The budget against a baseline program (already padded to the init sizes)."""

    baseline: Program
    threshold_factor: float = 2.0

    def __post_init__(self) -> None:
        if self.threshold_factor <= 0:
            raise ConfigError(f"train_budget_threshold_factor must be positive, got "
                              f"{self.threshold_factor}")
        _, train = program_costs(self.baseline)
        if train <= 0:
            raise ConfigError("the train budget's baseline has no Predict/Learn instructions")

    def allows(self, program: Program, examples: int) -> bool:
        """Whether a program may train on `examples` (N*E) examples."""
        setup, train = program_costs(program)  # (the original aborts when train is 0)
        base_setup, base_train = program_costs(self.baseline)
        return setup + examples * train <= self.threshold_factor * (
            base_setup + examples * base_train)
