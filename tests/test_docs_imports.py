"""Every import the documentation shows works when it is the first thing a program does.

README.md and docs/*.md are read: the imports of ```python blocks (parsed), and any other line of the
form ``from yinsi… import …`` / ``import yinsi…``. Each runs alone in a fresh interpreter, so an import
that only works after another module was loaded (a circular import) fails here.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```[ \t]*(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
IMPORT_LINE = re.compile(
    r"^\s*(?:>>>\s*)?((?:from\s+yinsi[\w.]*\s+import\s+[\w, ]+)|(?:import\s+yinsi[\w.]*(?:\s+as\s+\w+)?))\s*$", re.M)


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _python_imports(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:  # an excerpt with "..." or prompts: fall back to the import lines
        return [m.group(1) for m in IMPORT_LINE.finditer(code)]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            ours = node.level == 0 and (node.module or "").split(".")[0] == "yinsi"
        elif isinstance(node, ast.Import):
            ours = any(a.name.split(".")[0] == "yinsi" for a in node.names)
        else:
            continue
        if ours:
            found.append(ast.unparse(node))
    return found


def documented_imports() -> list[tuple[str, str]]:
    """(where, statement) for every yinsi import shown in the documentation, without repeats."""
    seen: dict[str, str] = {}
    for doc in _documents():
        text = doc.read_text(encoding="utf-8")
        where = doc.relative_to(ROOT).as_posix()
        for fence in FENCE.finditer(text):
            if fence.group(1).lower() in ("python", "py", "pycon"):
                for statement in _python_imports(fence.group(2)):
                    seen.setdefault(statement, where)
        for m in IMPORT_LINE.finditer(text):
            seen.setdefault(ast.unparse(ast.parse(m.group(1).strip())), where)
    return [(where, statement) for statement, where in seen.items()]


IMPORTS = documented_imports()


def test_the_documentation_shows_imports() -> None:
    assert len(IMPORTS) >= 10  # the parser finds them (a broken pattern would make the test below vacuous)
    assert any("KeyRing" in s for _, s in IMPORTS)


@pytest.mark.parametrize(("where", "statement"), IMPORTS, ids=[f"{w}: {s}" for w, s in IMPORTS])
def test_documented_import_runs_in_a_fresh_interpreter(where: str, statement: str) -> None:
    done = subprocess.run([sys.executable, "-c", statement], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    last = (done.stderr.strip().splitlines() or [""])[-1]
    assert done.returncode == 0, f"{where}: `{statement}` fails: {last}"
