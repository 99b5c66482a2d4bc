"""Tables of the consent and permission ledger (同意与权限台账) and the processing record (处理记录).

Events are append-only facts; ``consent_state`` and ``permission_state`` are projections rebuilt from
them (``yinsi consent rebuild``). Every row carries its tenant. JSON lists are stored as text.

Subjects are pseudonymous here: every ``subject_id`` column holds the tenant's keyed pseudonym of the app's
subject id (``p_`` + 26 base32 characters, HMAC under the tenant's non-rotating pseudonym key, the same
pseudonym as in the audit log), never the id itself, since an app may key its users by phone number.
``subjects`` is the directory back to the app's id: ``subject_encrypted`` holds it encrypted (field
``subjects.subject``), beside the birth date, also encrypted (``subjects.birth_date``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yinsi.storage.tables import HASH_LEN, LABEL_LEN, MYSQL_TABLE_ARGS, NAME_LEN, TENANT_ID_LEN, Base
from yinsi.storage.types import LargeText, UTCDateTime

SUBJECT_LEN = 128
SCOPE_LEN = 200
SHORT_LEN = 32

#: An auto-incrementing 64-bit key; SQLite only auto-increments INTEGER PRIMARY KEY.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class Subject(Base):
    """A person as the app knows them (个人信息主体): the pseudonym of the app's user id, that id
    encrypted, and what the gate needs of them (a birth date for the under-14 rule M1, encrypted; never
    the ID number it may come from). Every pseudonym in the ledger tables has a row here."""

    __tablename__ = "subjects"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_LEN), primary_key=True)  # the pseudonym
    #: the app's subject id, encrypted (field ``subjects.subject``)
    subject_encrypted: Mapped[str | None] = mapped_column(LargeText)
    #: ISO birth date, encrypted (field ``subjects.birth_date``); NULL when not registered
    birth_date_encrypted: Mapped[str | None] = mapped_column(LargeText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: projection of ``restriction_events``: JSON {scope: since (ISO 8601)}, NULL when none is in force
    restrictions: Mapped[str | None] = mapped_column(LargeText)


class ConsentEvent(Base):
    """One consent fact (ISO/IEC TS 27560 consent record fields), never updated."""

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_tenant_subject", "tenant_id", "subject_id", "id"),
        UniqueConstraint("record_id", name="uq_consent_events_record_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(36))
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_LEN))
    scope: Mapped[str] = mapped_column(String(SCOPE_LEN))
    kind: Mapped[str] = mapped_column(String(SHORT_LEN))
    event: Mapped[str] = mapped_column(String(SHORT_LEN))
    policy_label: Mapped[str] = mapped_column(String(LABEL_LEN))
    shown_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    purposes: Mapped[str] = mapped_column(LargeText)
    items: Mapped[str] = mapped_column(LargeText)
    recipients: Mapped[str] = mapped_column(LargeText)
    disclosures: Mapped[str] = mapped_column(LargeText)
    controller: Mapped[str] = mapped_column(String(NAME_LEN))
    storage_location: Mapped[str | None] = mapped_column(String(NAME_LEN))
    retention: Mapped[str | None] = mapped_column(LargeText)
    jurisdiction: Mapped[str] = mapped_column(String(SHORT_LEN))
    withdrawal_method: Mapped[str | None] = mapped_column(String(NAME_LEN))
    channel: Mapped[str] = mapped_column(String(SHORT_LEN))
    collection_method: Mapped[str] = mapped_column(String(SHORT_LEN))
    language: Mapped[str] = mapped_column(String(SHORT_LEN))
    actor: Mapped[str | None] = mapped_column(String(SUBJECT_LEN))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PermissionEvent(Base):
    """One device-permission fact: granted, denied or revoked on a device."""

    __tablename__ = "permission_events"
    __table_args__ = (
        Index("ix_permission_events_tenant_subject", "tenant_id", "subject_id", "id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_LEN))
    device_id: Mapped[str] = mapped_column(String(SUBJECT_LEN))
    permission: Mapped[str] = mapped_column(String(SHORT_LEN))
    event: Mapped[str] = mapped_column(String(SHORT_LEN))
    feature: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RestrictionEvent(Base):
    """One restriction-of-processing fact (限制处理, PIPL 44): placed or lifted, for all or one function."""

    __tablename__ = "restriction_events"
    __table_args__ = (
        Index("ix_restriction_events_tenant_subject", "tenant_id", "subject_id", "id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_LEN))
    scope: Mapped[str] = mapped_column(String(SCOPE_LEN))
    event: Mapped[str] = mapped_column(String(SHORT_LEN))
    request_ref: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    actor: Mapped[str | None] = mapped_column(String(SUBJECT_LEN))
    reason: Mapped[str] = mapped_column(LargeText)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsentStateRow(Base):
    """Projection: the current state of each consent scope of a subject."""

    __tablename__ = "consent_state"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_LEN), primary_key=True)
    scope: Mapped[str] = mapped_column(String(SCOPE_LEN), primary_key=True)
    status: Mapped[str] = mapped_column(String(SHORT_LEN))
    kind: Mapped[str] = mapped_column(String(SHORT_LEN))
    policy_label: Mapped[str] = mapped_column(String(LABEL_LEN))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime())
    last_event_id: Mapped[int] = mapped_column(BigInteger)


class PermissionStateRow(Base):
    """Projection: the current state of each permission on each device of a subject."""

    __tablename__ = "permission_state"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_LEN), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(SUBJECT_LEN), primary_key=True)
    permission: Mapped[str] = mapped_column(String(SHORT_LEN), primary_key=True)
    status: Mapped[str] = mapped_column(String(SHORT_LEN))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_denied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_event_id: Mapped[int] = mapped_column(BigInteger)


class ProcessingRecord(Base):
    """One gate decision (处理记录): who asked to do what with which PI, for what, on which basis."""

    __tablename__ = "processing_records"
    __table_args__ = (
        Index("ix_processing_records_tenant_subject", "tenant_id", "subject_id", "id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_LEN))
    action: Mapped[str] = mapped_column(String(SHORT_LEN))
    feature: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    purpose: Mapped[str | None] = mapped_column(String(NAME_LEN))
    items: Mapped[str] = mapped_column(LargeText)
    recipient: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    destination: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    allowed: Mapped[bool] = mapped_column(Boolean)
    basis: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    reasons: Mapped[str] = mapped_column(LargeText)
    policy_label: Mapped[str] = mapped_column(String(LABEL_LEN))
    actor: Mapped[str | None] = mapped_column(String(SUBJECT_LEN))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())


#: Field names the encrypted columns' tokens are bound to.
SUBJECT_FIELD = "subjects.subject"
BIRTH_DATE_FIELD = "subjects.birth_date"


def register_rotation_columns() -> None:
    """Put the encrypted columns of the subject directory in the key-rotation registry."""
    from yinsi.protect.registry import EncryptedColumn, register_encrypted_column

    register_encrypted_column(EncryptedColumn("subjects", "subject_encrypted", field=SUBJECT_FIELD))
    register_encrypted_column(EncryptedColumn("subjects", "birth_date_encrypted", field=BIRTH_DATE_FIELD))
