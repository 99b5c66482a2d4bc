"""Shared helpers for tests: load the minimal fixture, optionally edited as YAML text."""

from __future__ import annotations

from pathlib import Path

from yinsi.declarations import parse_declaration
from yinsi.domain.policy import Declaration

FIXTURES = Path(__file__).parent / "fixtures"
MINIMAL = FIXTURES / "minimal.yaml"
ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"


def minimal_text() -> str:
    return MINIMAL.read_text(encoding="utf-8")


def minimal(*edits: tuple[str, str]) -> Declaration:
    """The minimal declaration with textual (old, new) replacements applied; each must match."""
    text = minimal_text()
    for old, new in edits:
        assert old in text, f"edit target not in fixture: {old!r}"
        text = text.replace(old, new, 1)
    return parse_declaration(text, "minimal.yaml")
