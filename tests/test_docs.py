"""The documentation: self-contained, cited correctly, and complete where code can tell.

- No tracked file refers to material outside the repository.
- Every `docs/X.md §N` citation (in code, tests, configs and the docs) names
  a numbered section that exists in that document.
- docs/configuration.md names every key the configuration and task readers
  accept (read from their source, not from a list kept here).
- docs/language.md names every function of the language.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

from azc.ops import OPS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# Written in pieces so that this file does not match itself.
OUTSIDE = [
    re.compile(r"spec/" + r"dsl\.md"),
    re.compile(r"spec/" + r"automl-zero\.md"),
    re.compile(r"\bautoml-zero" + r"\.md"),
    re.compile(r"(?<![\w/])dsl" + r"\.md"),
    re.compile(r"DESIGN" + r"\.md"),
    re.compile(r"\.\./" + r"shared"),
    re.compile(r"shared" + r" folder", re.IGNORECASE),
    re.compile(r"\bspec" + r"\s*§", re.IGNORECASE),
    re.compile(r"\bspec" + r" \d", re.IGNORECASE),
]

SECTION = r"§\d+(?:\.\d+)*"
CITATION = re.compile(
    r"(?<![\w/.-])(?:docs/)?(?P<doc>[a-z_]+)\.md"
    rf"(?P<tail>\s+{SECTION}(?:\s*(?:-|–|,|and|or)\s*§?\d+(?:\.\d+)*)*)")
HEADING = re.compile(r"^#{1,6}\s+§(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)


def tracked_texts() -> dict[str, str]:
    """Every tracked file that is text, by its path in the repository."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                         check=True).stdout.decode()
    texts = {}
    for rel in filter(None, out.split("\0")):
        path = ROOT / rel
        if not path.is_file():
            continue
        try:
            texts[rel] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def outside_references(texts: dict[str, str]) -> list[str]:
    """`path:line: text` for every line that refers to material outside the repository."""
    found = []
    for rel, text in texts.items():
        for number, line in enumerate(text.splitlines(), start=1):
            if any(p.search(line) for p in OUTSIDE):
                found.append(f"{rel}:{number}: {line.strip()}")
    return found


def sections(doc: Path) -> set[str]:
    """The section numbers of a document's headings (`## §4.`, `### §4.3 ...`)."""
    return set(HEADING.findall(doc.read_text(encoding="utf-8")))


def bad_citations(texts: dict[str, str]) -> list[str]:
    """`path: citation` for every citation of a section that does not exist."""
    known: dict[str, set[str]] = {}
    bad = []
    for rel, text in texts.items():
        for m in CITATION.finditer(text):
            doc = DOCS / f"{m['doc']}.md"
            if m["doc"] not in known:
                known[m["doc"]] = sections(doc) if doc.is_file() else set()
            for number in re.findall(r"\d+(?:\.\d+)*", m["tail"]):
                if number not in known[m["doc"]]:
                    bad.append(f"{rel}: {m.group(0).strip()} (no §{number} in docs/{doc.name})")
    return bad


def citations(texts: dict[str, str]) -> int:
    """How many section citations there are."""
    return sum(len(CITATION.findall(text)) for text in texts.values())


def _literal(tree: ast.AST, name: str, function: str | None = None) -> object:
    """The literal value assigned to `name` (at module level, or inside `function`)."""
    scope = tree
    if function is not None:
        scope = next(n for n in ast.walk(tree)
                     if isinstance(n, ast.FunctionDef) and n.name == function)
    for node in ast.walk(scope):
        targets = (node.targets if isinstance(node, ast.Assign) else
                   [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            assert node.value is not None
            return ast.literal_eval(node.value)
    raise AssertionError(f"no assignment to {name}")


def config_keys() -> set[str]:
    """Every key the experiment reader accepts: top level, aliases, and the keys of its
    sections ([fec], [train_budget], [hurdles])."""
    tree = ast.parse((ROOT / "azc" / "search" / "config.py").read_text())
    keys = set(_literal(tree, "_TOP_KEYS"))  # type: ignore[arg-type]
    keys |= set(_literal(tree, "_ALIASES"))  # type: ignore[arg-type]
    sections = _literal(tree, "_SECTION_KEYS")
    assert isinstance(sections, dict) and {"fec", "train_budget", "hurdles"} <= set(sections)
    for names in sections.values():
        keys |= set(names)
    return keys


def task_keys() -> set[str]:
    """Every key and task type the task-spec reader accepts."""
    tree = ast.parse((ROOT / "azc" / "tasks" / "spec.py").read_text())
    keys = set(_literal(tree, "_COMMON_KEYS"))  # type: ignore[arg-type]
    by_type = _literal(tree, "_TYPE_KEYS")
    assert isinstance(by_type, dict)
    for specific in by_type.values():
        keys |= set(specific)
    keys |= set(_literal(tree, "TASK_TYPES"))  # type: ignore[arg-type]
    return keys


def missing_keys(doc_text: str, keys: set[str]) -> list[str]:
    """The keys a document does not mention as `key` (or, for a table, as `[key]`)."""
    return sorted(k for k in keys if f"`{k}`" not in doc_text and f"`[{k}]`" not in doc_text)


# ---------------------------------------------------------------- the tests

def test_no_tracked_file_refers_to_outside_material() -> None:
    assert outside_references(tracked_texts()) == []


def test_outside_references_are_found() -> None:
    # (each written in pieces so that this file does not match itself)
    lines = {"a.py": "x = 1  # see spec" + " §4.3\n", "b.md": "the " + "DESIGN" + ".md file\n",
             "c.py": "(spec" + " 4.3)\n", "d.md": "in the shared " + "folder\n",
             "e.py": "ok: docs/semantics.md §4.3\n"}
    assert [r.split(":")[0] for r in outside_references(lines)] == ["a.py", "b.md", "c.py",
                                                                    "d.md"]


def test_every_section_citation_exists() -> None:
    texts = tracked_texts()
    assert citations(texts) > 20  # the code does cite the docs
    assert bad_citations(texts) == []


def test_bad_citations_are_found() -> None:
    # (the bad citations are written in pieces so that this file does not hold them)
    texts = {"a.py": "(docs/semantics.md §4.3-§4.5, " + "§99)\n",
             "b.py": "see docs/semantics.md §4.3\n", "c.md": "semantics.md " + "§77.1\n",
             "d.py": "docs/nothing.md " + "§1\n"}
    bad = bad_citations(texts)
    assert [b.split(":")[0] for b in bad] == ["a.py", "c.md", "d.py"]
    assert "§99" in bad[0]


@pytest.mark.parametrize("doc", ["semantics.md", "datasets.md"])
def test_numbered_sections_are_unique(doc: str) -> None:
    numbers = HEADING.findall((DOCS / doc).read_text(encoding="utf-8"))
    assert numbers and len(numbers) == len(set(numbers))


def test_configuration_doc_names_every_config_key() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    keys = config_keys()
    assert {"population_size", "fec", "cache_size", "train_budget_baseline",
            "max_scalar_addresses"} <= keys
    assert missing_keys(text, keys) == []


def test_configuration_doc_names_every_task_key() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    keys = task_keys()
    assert {"features_size", "increment", "valid_fraction", "unit_test_fixed"} <= keys
    assert missing_keys(text, keys) == []


def test_missing_keys_are_found() -> None:
    assert missing_keys("`a` and b, `[d]`", {"a", "b", "c", "d"}) == ["b", "c"]


def test_language_doc_names_every_function() -> None:
    text = (DOCS / "language.md").read_text(encoding="utf-8")
    names = {op.func for op in OPS if op.func.isidentifier()}
    assert "dot" in names and "uniform" in names
    assert sorted(n for n in names if not re.search(rf"\b{n}\b", text)) == []
