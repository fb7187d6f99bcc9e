"""Where azc's shipped files are: the grammar, the runtime, examples, configs.

In a built wheel, `grammar/`, `runtime/` and `examples/` of the repository are
installed as the packages `azc._grammar`, `azc._runtime` and `azc.examples`.
In a source checkout that is not installed, the same names are made to point
at the repository folders, so `from azc._runtime import rng` works either way.
This module must not import anything else from azc.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_ALIASES = {"_grammar": "grammar", "_runtime": "runtime", "examples": "examples"}


def ensure_aliases() -> None:
    """Make azc._grammar, azc._runtime and azc.examples importable in a checkout."""
    for alias, folder in _ALIASES.items():
        name = f"azc.{alias}"
        if name in sys.modules or (_PACKAGE_DIR / alias).is_dir():
            continue
        path = _PACKAGE_DIR.parent / folder
        init = path / "__init__.py"
        if not init.exists():
            continue
        spec = importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[str(path)])
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)


def package_path(alias: str) -> Path:
    """The folder holding the files of azc.<alias> (installed or in a checkout)."""
    installed = _PACKAGE_DIR / alias
    if installed.is_dir():
        return installed
    module = sys.modules.get(f"azc.{alias}")
    if module is not None and getattr(module, "__path__", None):
        return Path(next(iter(module.__path__)))
    return _PACKAGE_DIR.parent / _ALIASES.get(alias, alias)


def grammar_file() -> Path:
    """The Lark grammar of the .az language."""
    return package_path("_grammar") / "azc.lark"


def runtime_file(name: str) -> Path:
    """A file of the runtime (e.g. rng.ll, predictor.py)."""
    return package_path("_runtime") / name


def example_file(name: str) -> Path | None:
    """A shipped example program by name (with or without .az), or None."""
    stem = name[:-3] if name.endswith(".az") else name
    path = package_path("examples") / f"{stem}.az"
    return path if path.is_file() else None


def example_names() -> list[str]:
    """The names of the shipped example programs."""
    return sorted(p.stem for p in package_path("examples").glob("*.az"))


def config_dir() -> Path:
    """The folder of shipped experiment configurations."""
    return _PACKAGE_DIR / "configs"
