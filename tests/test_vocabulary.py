"""The vocabulary (service/vocabulary.py) is spelled once and imported from there.

The classes, verdicts, prediction roles and the feature grid are stored in the
tables TAP publishes; a second spelling of one of them is a second place to
forget when it changes. Docstrings and comments may name them; code may not.
The web page's JavaScript and the VOTable templates are not Python and not scanned.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from service import vocabulary
from service.vocabulary import (
    CLASSES,
    FEATURE_WINDOW,
    RELEVANCE_VERDICTS,
    ROLES,
    VERDICTS,
)

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "service" / "vocabulary.py"
#: The page roles (``surprise``, ``similar``) are left out: the same words name a column,
#: a command and an endpoint, and they are never stored as values.
WORDS = frozenset({*CLASSES, *VERDICTS, *ROLES, *RELEVANCE_VERDICTS})
#: A word as an SQL/ADQL string literal inside a longer string.
QUOTED = re.compile("'(" + "|".join(re.escape(w) for w in sorted(WORDS)) + ")'")
#: The names the vocabulary defines.
NAMES = frozenset(name for name in vars(vocabulary) if name.isupper())
#: Where a role's word means something else: the iterate job's ``query`` result and the
#: role counts of its summary, and the campaign API's ``ROLE=query`` (the batch VOTable).
OTHER_MEANINGS = {
    ("service/jobs/iterate.py", "query"),
    ("service/jobs/iterate.py", "padding"),
    ("service/web/api.py", "query"),
}


def _modules(*folders: str) -> Iterator[tuple[str, ast.Module]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path != HOME:
                yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text())


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_no_module_spells_a_word_of_the_vocabulary() -> None:
    spelled = []
    for name, tree in _modules("service"):
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or id(node) in docstrings:
                continue
            value = node.value
            word = isinstance(value, str) and (value in WORDS or QUOTED.search(value))
            if word and (name, value) not in OTHER_MEANINGS:
                spelled.append(f"{name}:{node.lineno}: {value!r}")
            grid = isinstance(value, int | float) and not isinstance(value, bool)
            if grid and value in FEATURE_WINDOW:
                spelled.append(f"{name}:{node.lineno}: {value!r} (the feature grid)")
    assert not spelled, "import these from service.vocabulary:\n" + "\n".join(spelled)


def test_no_module_defines_or_relays_the_vocabulary() -> None:
    """Not ``CLASSES = (...)`` again, and not ``schema.CLASSES`` or ``from service.learn
    import CLASSES``: one definition, one way to reach it. (Tests may write down the
    words they expect; they too import the vocabulary from its home.)"""
    found = []
    for name, tree in _modules("service", "tests", "benchmarks"):
        for node in tree.body if not name.startswith("tests/") else []:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            found += [
                f"{name}:{node.lineno}: defines {t.id}"
                for t in targets
                if isinstance(t, ast.Name) and t.id in NAMES
            ]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module != "service.vocabulary":
                found += [
                    f"{name}:{node.lineno}: imports {alias.name} from {node.module}"
                    for alias in node.names
                    if alias.name in NAMES
                ]
            if isinstance(node, ast.Attribute) and node.attr in NAMES:
                owner = node.value
                if not (isinstance(owner, ast.Name) and owner.id == "vocabulary"):
                    found.append(f"{name}:{node.lineno}: reads {ast.unparse(node)}")
    assert not found, "\n".join(found)


def test_the_words_are_the_stored_ones() -> None:
    """The database and TAP hold these strings: renaming one is a migration, not an edit."""
    assert CLASSES == ("single-peak", "double-peak", "absorption")
    assert (*CLASSES, "not-sure", "bad") == VERDICTS
    assert ROLES == ("query", "precision-sample", "padding", "candidate")
    assert CLASSES[:2] == vocabulary.TARGET_CLASSES
    assert ROLES[:3] == vocabulary.BATCH_ROLES
    assert (vocabulary.HOU_EMISSION, vocabulary.HOU_NONE) == ("emission", "none")
    assert (*FEATURE_WINDOW, vocabulary.FEATURE_PIXELS) == (6519.0, 6732.0, 140)
