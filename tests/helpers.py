"""Shared helpers for tests: load the minimal fixture, optionally edited as YAML text."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

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


def stored_subject(url: str, tenant: str, subject: str) -> str:
    """What Yinsi's tables hold for the app's subject id: the tenant's pseudonym of it (issue 11)."""
    from yinsi.protect.keys import KeyRing

    with KeyRing.open(url) as ring:
        return ring.pseudonymise(tenant, subject)


def subject_row(ring: Any, tenant: str, subject: str, birth: date | None, created_at: datetime) -> Any:
    """A ``subjects`` row as Yinsi writes it: the pseudonym, the id and the birth date encrypted (issue 11)."""
    from yinsi.storage.consent_tables import BIRTH_DATE_FIELD, SUBJECT_FIELD, Subject

    cipher = ring.cipher(tenant)
    return Subject(tenant_id=tenant, subject_id=ring.pseudonymise(tenant, subject),
                   subject_encrypted=cipher.encrypt_text(SUBJECT_FIELD, subject),
                   birth_date_encrypted=cipher.encrypt_text(BIRTH_DATE_FIELD, birth.isoformat()) if birth else None,
                   created_at=created_at)
