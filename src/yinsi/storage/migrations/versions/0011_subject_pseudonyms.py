"""Subject ids are pseudonymous inside Yinsi (issue 11 item 4): an app that keys its users by phone number
leaks nothing through Yinsi's tables.

- Every ``subject_id`` of the ledger (``subjects``, ``consent_events``, ``permission_events``,
  ``restriction_events``, ``consent_state``, ``permission_state``), of ``processing_records`` and of
  ``subject_identifiers`` is replaced by the tenant's keyed pseudonym of it (HMAC under the tenant's
  pseudonym key, which key rotation never changes; the same pseudonym as in the audit log).
- ``subjects`` becomes the directory back to the app's id: ``subject_encrypted`` (field
  ``subjects.subject``) for every pseudonym found in those tables; ``birth_date`` is replaced by
  ``birth_date_encrypted`` (field ``subjects.birth_date``).
- ``rights_requests.subject_id`` holds ``bi:`` and the tenant's blind index for every subject kind (before:
  only for kinds keyed by PI), the id itself moving into ``identity_encrypted``.

Converting existing rows needs the master key (``YINSI_MASTER_KEY`` / ``YINSI_MASTER_KEY_FILE`` /
``<data dir>/master.key``), as any command that reads Yinsi's encrypted columns does; a database without
such rows needs nothing. The downgrade restores the ids from the directory (rights requests keep the
``bi:`` form, which the earlier code reads through ``identity_encrypted``).

Revision ID: 0011
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LARGE_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
SUBJECT_FIELD = "subjects.subject"
BIRTH_DATE_FIELD = "subjects.birth_date"
IDENTITY_FIELD = "rights_requests.identity"
#: tables whose ``subject_id`` becomes the pseudonym (``subjects`` is handled apart: it is the directory)
PSEUDONYMOUS = ("consent_events", "permission_events", "restriction_events", "consent_state", "permission_state",
                "processing_records", "subject_identifiers")


def _ring(conn: sa.Connection) -> Any:
    from sqlalchemy.orm import sessionmaker

    from yinsi.protect.keys import KeyRing
    from yinsi.services.audit_trail import master_key

    sessions = sessionmaker(bind=conn)
    ring = KeyRing(sessions, master_key(sessions))
    ring.check_master_key()
    return ring


def _tenant_ring(ring: Any, tenant: str, done: set[str]) -> Any:
    if tenant not in done:
        ring.provision(tenant)  # keys are created only if the tenant has none
        done.add(tenant)
    return ring


def _distinct(conn: sa.Connection, table: str) -> set[tuple[str, str]]:
    return {(t, s) for t, s in conn.execute(sa.text(f"SELECT DISTINCT tenant_id, subject_id FROM {table}"))}


def upgrade() -> None:
    conn = op.get_bind()
    old_subjects = [(t, s, b) for t, s, b in conn.execute(
        sa.text("SELECT tenant_id, subject_id, birth_date FROM subjects"))]
    op.add_column("subjects", sa.Column("subject_encrypted", LARGE_TEXT, nullable=True))
    op.add_column("subjects", sa.Column("birth_date_encrypted", LARGE_TEXT, nullable=True))
    pairs = {(t, s) for t, s, _ in old_subjects}
    for table in PSEUDONYMOUS:
        pairs |= _distinct(conn, table)
    requests = [(rid, t, s, ident) for rid, t, s, ident in conn.execute(sa.text(
        "SELECT id, tenant_id, subject_id, identity_encrypted FROM rights_requests")) if not s.startswith("bi:")]
    if pairs or requests:
        ring = _ring(conn)
        provisioned: set[str] = set()
        refs: dict[tuple[str, str], str] = {}
        for tenant, subject in sorted(pairs):
            refs[(tenant, subject)] = _tenant_ring(ring, tenant, provisioned).pseudonymise(tenant, subject)
        births = {(t, s): b for t, s, b in old_subjects}
        now = datetime.now(UTC)
        for (tenant, subject), ref in refs.items():
            cipher = ring.cipher(tenant)
            token = cipher.encrypt_text(SUBJECT_FIELD, subject)
            birth = births.get((tenant, subject))
            if isinstance(birth, str):
                birth = date.fromisoformat(birth[:10])
            birth_token = cipher.encrypt_text(BIRTH_DATE_FIELD, birth.isoformat()) if birth is not None else None
            if (tenant, subject) in births:
                conn.execute(sa.text(
                    "UPDATE subjects SET subject_id = :ref, subject_encrypted = :token, birth_date_encrypted = :birth "
                    "WHERE tenant_id = :tenant AND subject_id = :subject"),
                    {"ref": ref, "token": token, "birth": birth_token, "tenant": tenant, "subject": subject})
            else:
                conn.execute(sa.table("subjects", sa.column("tenant_id"), sa.column("subject_id"),
                                      sa.column("subject_encrypted"), sa.column("created_at", sa.DateTime(True)))
                             .insert().values(tenant_id=tenant, subject_id=ref, subject_encrypted=token,
                                              created_at=now))
            for table in PSEUDONYMOUS:
                conn.execute(sa.text(f"UPDATE {table} SET subject_id = :ref "
                                     "WHERE tenant_id = :tenant AND subject_id = :subject"),
                             {"ref": ref, "tenant": tenant, "subject": subject})
        for rid, tenant, subject, ident in requests:
            _tenant_ring(ring, tenant, provisioned)
            cipher = ring.cipher(tenant)
            identity = json.loads(cipher.decrypt_text(IDENTITY_FIELD, ident)) if ident else {}
            identity["subject"] = subject
            conn.execute(sa.text("UPDATE rights_requests SET subject_id = :ref, identity_encrypted = :ident "
                                 "WHERE id = :id"),
                         {"ref": "bi:" + ring.blind_index(tenant, "text", subject),
                          "ident": cipher.encrypt_text(IDENTITY_FIELD, json.dumps(identity, ensure_ascii=False,
                                                                                  separators=(",", ":"))),
                          "id": rid})
    with op.batch_alter_table("subjects") as batch:
        batch.drop_column("birth_date")


def downgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("subjects") as batch:
        batch.add_column(sa.Column("birth_date", sa.Date(), nullable=True))
    rows = list(conn.execute(sa.text(
        "SELECT tenant_id, subject_id, subject_encrypted, birth_date_encrypted FROM subjects "
        "WHERE subject_encrypted IS NOT NULL")))
    if rows:
        ring = _ring(conn)
        for tenant, ref, token, birth_token in rows:
            cipher = ring.cipher(tenant)
            subject = cipher.decrypt_text(SUBJECT_FIELD, token)
            birth = date.fromisoformat(cipher.decrypt_text(BIRTH_DATE_FIELD, birth_token)) if birth_token else None
            for table in PSEUDONYMOUS:
                conn.execute(sa.text(f"UPDATE {table} SET subject_id = :subject "
                                     "WHERE tenant_id = :tenant AND subject_id = :ref"),
                             {"ref": ref, "tenant": tenant, "subject": subject})
            conn.execute(sa.table("subjects", sa.column("tenant_id"), sa.column("subject_id"),
                                  sa.column("birth_date", sa.Date()))
                         .update().where(sa.column("tenant_id") == tenant, sa.column("subject_id") == ref)
                         .values(subject_id=subject, birth_date=birth))
    with op.batch_alter_table("subjects") as batch:
        batch.drop_column("birth_date_encrypted")
        batch.drop_column("subject_encrypted")
