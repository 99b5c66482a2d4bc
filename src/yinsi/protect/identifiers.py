"""Protected identifiers (受保护的标识符): Yinsi keeps a subject's phone number, ID number or e-mail only as
a blind index (to find the subject) and a ciphertext (to contact or verify them), never in the clear.

Rows live in ``subject_identifiers``; the ciphertext's field is ``subject_identifiers.value`` and key
rotation re-encrypts it (it is in the rotation registry). The subject is the tenant's pseudonym of the app's
id, as everywhere in Yinsi's tables; ``subjects`` maps it back (the id encrypted, :mod:`yinsi.protect.subjects`).
"""

from __future__ import annotations

from sqlalchemy import delete, select

from yinsi.protect.blind_index import canonical_kind, normalise
from yinsi.protect.keys import KeyRing
from yinsi.protect.rotation import SUBJECT_IDENTIFIERS
from yinsi.storage.consent_tables import SUBJECT_FIELD, Subject
from yinsi.storage.keys_tables import SubjectIdentifierRow

__all__ = ["find_subjects", "forget_identifiers", "reveal_identifier", "store_identifier"]

FIELD = SUBJECT_IDENTIFIERS.field_name


def store_identifier(ring: KeyRing, tenant: str, subject_id: str, kind: str, value: str) -> str:
    """Record (or replace) the subject's identifier of ``kind``; returns its blind index.

    The normalised value is what is encrypted (``+86 138-0013-8000`` is kept as ``13800138000``).
    """
    name = canonical_kind(kind)
    index = ring.blind_index(tenant, name, value)
    cipher = ring.cipher(tenant)
    token = cipher.encrypt(FIELD, normalise(name, value))
    ref = ring.pseudonymise(tenant, subject_id)
    subject_token = cipher.encrypt_text(SUBJECT_FIELD, subject_id)
    now = ring.now()
    with ring.session() as session, session.begin():
        if session.get(Subject, (tenant, ref)) is None:  # the directory row: pseudonym → the id, encrypted
            session.add(Subject(tenant_id=tenant, subject_id=ref, subject_encrypted=subject_token,
                                birth_date_encrypted=None, created_at=now))
            session.flush()
        row = session.get(SubjectIdentifierRow, (tenant, ref, name))
        if row is None:
            session.add(SubjectIdentifierRow(tenant_id=tenant, subject_id=ref, kind=name, blind_index=index,
                                             ciphertext=token, created_at=now))
        else:
            row.blind_index = index
            row.ciphertext = token
    return index


def find_subjects(ring: KeyRing, tenant: str, kind: str, value: str) -> list[str]:
    """The subjects of ``tenant`` whose identifier of ``kind`` equals ``value`` (after normalisation)."""
    name = canonical_kind(kind)
    index = ring.blind_index(tenant, name, value)
    with ring.session() as session:
        tokens = list(session.scalars(
            select(Subject.subject_encrypted).join(SubjectIdentifierRow, (
                SubjectIdentifierRow.tenant_id == Subject.tenant_id)
                & (SubjectIdentifierRow.subject_id == Subject.subject_id)).where(
                SubjectIdentifierRow.tenant_id == tenant, SubjectIdentifierRow.kind == name,
                SubjectIdentifierRow.blind_index == index, Subject.subject_encrypted.is_not(None))))
    cipher = ring.cipher(tenant)
    return sorted(cipher.decrypt_text(SUBJECT_FIELD, t) for t in tokens if t)


def reveal_identifier(ring: KeyRing, tenant: str, subject_id: str, kind: str) -> str | None:
    """Decrypt the subject's identifier of ``kind`` (callers log the access: it is unmasking)."""
    name = canonical_kind(kind)
    ref = ring.pseudonymise(tenant, subject_id)
    with ring.session() as session:
        row = session.get(SubjectIdentifierRow, (tenant, ref, name))
        token = None if row is None else row.ciphertext
    return None if token is None else ring.cipher(tenant).decrypt(FIELD, token)


def forget_identifiers(ring: KeyRing, tenant: str, subject_id: str) -> int:
    """Delete every identifier of the subject (erasure, account cancellation); returns how many."""
    ref = ring.pseudonymise(tenant, subject_id)
    with ring.session() as session, session.begin():
        result = session.execute(delete(SubjectIdentifierRow).where(
            SubjectIdentifierRow.tenant_id == tenant, SubjectIdentifierRow.subject_id == ref))
        return int(getattr(result, "rowcount", 0) or 0)
