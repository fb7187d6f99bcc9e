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


def export(program, out, **options):  # type: ignore[no-untyped-def]
    """Compile a program into a standalone predictor folder (see azc.export.export)."""
    from azc.export import export as _export
    return _export(program, out, **options)


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name == "Estimator":  # imported on first use: it pulls in the JIT
        from azc.estimator import Estimator
        return Estimator
    raise AttributeError(f"module 'azc' has no attribute {name!r}")


from azc.frontend import parse, parse_file  # noqa: E402
from azc.ir import Component, Instr, MemoryConfig, Program  # noqa: E402
from azc.printer import format_program as format  # noqa: E402

__version__ = "0.1.0"

__all__ = [
           "AzcError",
           "Component",
           "Estimator",
           "Instr",
           "MemoryConfig",
           "Program",
           "__version__",
           "evaluate",
           "evolve",
           "export",
           "format",
           "parse",
           "parse_file",
]
