"""The ledger's subject directory as notices and incidents need it: from the id stored in the ledger tables
(``consent_state``, ``processing_records``, ``subjects``) to the app's subject id (to find the person's
contact in ``subject_identifiers``) and birth date (minors), and back.

The ledger stores either the app's id itself or, once subjects are pseudonymised (issue 11), the tenant's
keyed pseudonym with the app's id and the birth date encrypted in ``subjects``. Both layouts are read here,
so callers never depend on which one the database has.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yinsi.storage.consent_tables import Subject

__all__ = ["pseudonymised", "resolve", "stored_id"]

_SUBJECT_FIELD = "subjects.subject"
_BIRTH_FIELD = "subjects.birth_date"
_BATCH = 500


def pseudonymised() -> bool:
    """Whether the ledger keeps pseudonyms (the app's id encrypted in ``subjects``)."""
    return hasattr(Subject, "subject_encrypted")


def stored_id(ring: Any, tenant: str, app_id: str) -> str:
    """The id the ledger tables hold for the app's subject ``app_id``."""
    return str(ring.pseudonymise(tenant, app_id)) if pseudonymised() else app_id


def resolve(s: Session, ring: Any, tenant: str, ids: Iterable[str]) -> dict[str, tuple[str, date | None]]:
    """Stored id → (the app's subject id, birth date or ``None``) for each of ``ids``."""
    wanted = sorted(set(ids))
    out: dict[str, tuple[str, date | None]] = {i: (i, None) for i in wanted}
    enc = pseudonymised()
    cols: list[Any] = [Subject.subject_id]
    cols += [getattr(Subject, "subject_encrypted"), getattr(Subject, "birth_date_encrypted")] if enc else [  # noqa: B009
        getattr(Subject, "birth_date")]  # noqa: B009
    cipher = ring.cipher(tenant) if enc and wanted else None
    for k in range(0, len(wanted), _BATCH):
        for row in s.execute(select(*cols).where(Subject.tenant_id == tenant,
                                                 Subject.subject_id.in_(wanted[k:k + _BATCH]))):
            if cipher is None:
                out[row[0]] = (row[0], row[1])
                continue
            app_id = _decrypt(cipher, _SUBJECT_FIELD, row[1]) if row[1] else row[0]
            birth = date.fromisoformat(_decrypt(cipher, _BIRTH_FIELD, row[2])) if row[2] else None
            out[row[0]] = (str(app_id), birth)
    return out


def _decrypt(cipher: Any, field: str, token: str | bytes) -> str:
    if isinstance(token, str):
        return str(cipher.decrypt_text(field, token))
    return str(cipher.decrypt(field, token))
