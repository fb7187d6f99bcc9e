"""azc: AutoML-Zero as a compiler.

Programs of three component functions (Setup, Predict, Learn) written in the
.az language are parsed into an immutable IR, optimized, and run by a
reference interpreter or compiled to native code; regularized evolution
discovers them from scratch.
"""

from azc.resources import ensure_aliases as _ensure_aliases

_ensure_aliases()

from azc.errors import AzcError  # noqa: E402
from azc.evaluation import evaluate  # noqa: E402


def evolve(config, seed=None, **options):  # type: ignore[no-untyped-def]
    """Run evolution (see azc.search.experiment.evolve); returns an EvolveResult."""
    from azc.search.experiment import evolve as _evolve
    return _evolve(config, seed, **options)


from azc.frontend import parse, parse_file  # noqa: E402
from azc.ir import Component, Instr, MemoryConfig, Program  # noqa: E402
from azc.printer import format_program as format  # noqa: E402

__version__ = "0.1.0"

__all__ = [
           "AzcError",
           "Component",
           "Instr",
           "MemoryConfig",
           "Program",
           "__version__",
           "evaluate",
           "format",
           "parse",
           "parse_file",
]
