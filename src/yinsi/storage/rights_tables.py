"""Tables of rights requests (个人信息权利请求): requests, their state transitions, the steps of their
execution plans, and the legal-hold vault where data that cannot yet be deleted is isolated (T3).

Request details, plan snapshots (the subject's attributes read before erasure) and vault payloads may hold
PI: they are stored encrypted (FieldCipher text tokens) and registered for key rotation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yinsi.storage.consent_tables import SHORT_LEN, SUBJECT_LEN, EventId
from yinsi.storage.tables import LABEL_LEN, MYSQL_TABLE_ARGS, NAME_LEN, TENANT_ID_LEN, Base
from yinsi.storage.types import LargeText, UTCDateTime

REQUEST_ID_LEN = 36
LOCATION_LEN = 200


class RightsRequest(Base):
    """One request, its current state (the transitions are the history) and its deadline."""

    __tablename__ = "rights_requests"
    __table_args__ = (
        Index("ix_rights_requests_tenant_state", "tenant_id", "state"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(REQUEST_ID_LEN), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    subject_kind: Mapped[str] = mapped_column(String(SHORT_LEN))
    # the subject's key; for a subject kind keyed by PI (a visitor's IP) "bi:" + its blind index instead
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_LEN))
    type: Mapped[str] = mapped_column(String(SHORT_LEN))
    state: Mapped[str] = mapped_column(String(SHORT_LEN))
    channel: Mapped[str] = mapped_column(String(SHORT_LEN))
    requester: Mapped[str] = mapped_column(String(SUBJECT_LEN))  # "self", or "other" (who: identity_encrypted)
    # {"subject": PI-keyed subject key, "requester": who asked for the person}, encrypted; else NULL
    identity_encrypted: Mapped[str | None] = mapped_column(LargeText)
    policy_label: Mapped[str] = mapped_column(String(LABEL_LEN))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_date: Mapped[date] = mapped_column(Date)
    deadline_rule: Mapped[str] = mapped_column(String(SHORT_LEN))
    deadline_explanation: Mapped[str] = mapped_column(LargeText)
    deadline_provisional: Mapped[bool] = mapped_column(Boolean)
    details_encrypted: Mapped[str | None] = mapped_column(LargeText)
    plan_encrypted: Mapped[str | None] = mapped_column(LargeText)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the process executing the request ("host:pid") and until when its claim holds (renewed per layer)
    lease_owner: Mapped[str | None] = mapped_column(String(SHORT_LEN * 4))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refusal_ground: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    refusal_detail: Mapped[str | None] = mapped_column(LargeText)
    result: Mapped[str | None] = mapped_column(LargeText)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RequestTransition(Base):
    """One state change of a request (append-only)."""

    __tablename__ = "request_transitions"
    __table_args__ = (
        Index("ix_request_transitions_request", "request_id", "id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(REQUEST_ID_LEN), ForeignKey("rights_requests.id"))
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN))
    from_state: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    to_state: Mapped[str] = mapped_column(String(SHORT_LEN))
    actor: Mapped[str] = mapped_column(String(SUBJECT_LEN))
    note: Mapped[str] = mapped_column(LargeText)
    refusal_ground: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class RequestStep(Base):
    """One step of a request's execution plan: a data-map location and what to do there.

    A step is marked done only after its store committed; running the plan again skips done steps and
    repeats the others, whose operations are idempotent (deleting what is gone, nulling what is null).
    """

    __tablename__ = "request_steps"
    __table_args__ = (
        UniqueConstraint("request_id", "location_id", "action", name="uq_request_steps_request_location_action"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(REQUEST_ID_LEN), ForeignKey("rights_requests.id"))
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN))
    seq: Mapped[int] = mapped_column(Integer)
    location_id: Mapped[str] = mapped_column(String(LOCATION_LEN))
    action: Mapped[str] = mapped_column(String(SHORT_LEN))
    status: Mapped[str] = mapped_column(String(SHORT_LEN))
    attempts: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(LargeText)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LegalHoldRecord(Base):
    """Data kept under a statutory minimum (T2), isolated from any further processing (T3) until released
    to the retention sweep on ``hold_until``. The payload is encrypted."""

    __tablename__ = "legal_holds"
    __table_args__ = (
        UniqueConstraint("request_id", "location_id", "source_key", name="uq_legal_holds_request_id_location_id"),
        Index("ix_legal_holds_tenant_until", "tenant_id", "hold_until"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    request_id: Mapped[str] = mapped_column(String(REQUEST_ID_LEN))
    location_id: Mapped[str] = mapped_column(String(LOCATION_LEN))
    source_key: Mapped[str] = mapped_column(String(NAME_LEN))
    basis: Mapped[str] = mapped_column(String(NAME_LEN))
    payload_encrypted: Mapped[str] = mapped_column(LargeText)
    hold_until: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


#: Field names the encrypted columns' tokens are bound to.
DETAILS_FIELD = "rights_requests.details"
PLAN_FIELD = "rights_requests.plan"
IDENTITY_FIELD = "rights_requests.identity"
HOLD_FIELD = "legal_holds.payload"


def register_rotation_columns() -> None:
    """Put the encrypted columns of these tables in the key-rotation registry (``yinsi keys rotate``)."""
    from yinsi.protect.registry import (
        EncryptedColumn,
        EncryptedFiles,
        register_encrypted_column,
        register_encrypted_files,
    )

    register_encrypted_column(EncryptedColumn("rights_requests", "details_encrypted", field=DETAILS_FIELD))
    register_encrypted_column(EncryptedColumn("rights_requests", "plan_encrypted", field=PLAN_FIELD))
    register_encrypted_column(EncryptedColumn("rights_requests", "identity_encrypted", field=IDENTITY_FIELD))
    register_encrypted_column(EncryptedColumn("legal_holds", "payload_encrypted", field=HOLD_FIELD))
    register_encrypted_files(EncryptedFiles("rights.export", field="rights.export", locate=_package_files))


def _package_files(engine: Any, tenant: str) -> Iterable[Path]:
    from yinsi.rights.export import package_files

    return package_files(engine, tenant)
