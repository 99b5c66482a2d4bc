"""Tables of staff access control (工作人员访问控制) and abnormal-activity detection (异常行为监测).

``staff`` and ``staff_roles`` say who works for a tenant and in which roles (RULES S3: least privilege,
administrator, operator and auditor separated). ``staff_persons`` is the human behind one or more accounts
(four-eyes approvals need two people, not two accounts); ``staff`` also holds the login credentials
(Argon2id password hash, encrypted TOTP secret, lockout) and ``staff_sessions`` the server-side sessions
and staff API tokens, kept only as the SHA-256 of the token. ``access_requests`` are approvals (审批): bulk exports and
staff access to minors' PI (S6), each naming subjects only by pseudonym. ``activity_events`` and
``activity_alerts`` hold the app's login and registration events and the alerts raised on them, with every
account, device and IP replaced by a keyed pseudonym: never in the clear.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from yinsi.storage.tables import MYSQL_TABLE_ARGS, NAME_LEN, TENANT_ID_LEN, Base
from yinsi.storage.types import LargeText, UTCDateTime

STAFF_ID_LEN = 64
ROLE_LEN = 32
KIND_LEN = 32
STATUS_LEN = 16
REQUEST_ID_LEN = 32
PSEUDONYM_LEN = 64
RULE_LEN = 64
REASON_LEN = 500
HASH_TEXT_LEN = 255
TOKEN_NAME_LEN = 200

#: An auto-incrementing 64-bit key; SQLite only auto-increments INTEGER PRIMARY KEY.
RowId = BigInteger().with_variant(Integer(), "sqlite")


class StaffPersonRow(Base):
    """The person (自然人) behind one or more staff accounts of a tenant. ``contact_index`` is a blind index
    of a contact given when an account was created (never the contact itself); unique per tenant, so two
    accounts given the same contact are one person."""

    __tablename__ = "staff_persons"
    __table_args__ = (
        UniqueConstraint("tenant_id", "contact_index"),
        MYSQL_TABLE_ARGS,
    )

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(STAFF_ID_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    contact_index: Mapped[str | None] = mapped_column(String(PSEUDONYM_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StaffRow(Base):
    """A member of a tenant's staff (工作人员). Staff belong to one tenant; ``active`` false = 停用.

    ``password_hash`` is Argon2id (``yinsi.protect.passwords``); ``totp_secret_encrypted`` the TOTP secret
    encrypted with the tenant's data key; ``totp_last_step`` the last accepted TOTP time step (a code is
    accepted once); ``failed_logins`` and ``locked_until`` the lockout state."""

    __tablename__ = "staff"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(STAFF_ID_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(STAFF_ID_LEN))
    person_id: Mapped[str | None] = mapped_column(String(STAFF_ID_LEN))  # staff_persons.person_id (never None)
    password_hash: Mapped[str | None] = mapped_column(String(HASH_TEXT_LEN))
    totp_secret_encrypted: Mapped[str | None] = mapped_column(LargeText)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StaffSessionRow(Base):
    """A staff login session (``kind`` ``session``: idle timeout and absolute lifetime) or staff API token
    (``api_token``: named, fixed lifetime, revocable). ``token_hash`` is the SHA-256 of the token, which is
    never stored; ``mfa`` says whether a second factor was verified."""

    __tablename__ = "staff_sessions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "staff_id"], ["staff.tenant_id", "staff.staff_id"]),
        UniqueConstraint("token_hash", name="uq_staff_sessions_token_hash"),
        Index("ix_staff_sessions_tenant_staff", "tenant_id", "staff_id", "kind"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(REQUEST_ID_LEN), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN))
    staff_id: Mapped[str] = mapped_column(String(STAFF_ID_LEN))
    token_hash: Mapped[str] = mapped_column(String(PSEUDONYM_LEN))
    kind: Mapped[str] = mapped_column(String(STATUS_LEN))
    mfa: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str | None] = mapped_column(String(TOKEN_NAME_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StaffRoleRow(Base):
    """One role held by a member of staff (see ``yinsi.staff.roles.Role``)."""

    __tablename__ = "staff_roles"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "staff_id"], ["staff.tenant_id", "staff.staff_id"]),
        MYSQL_TABLE_ARGS,
    )

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(STAFF_ID_LEN), primary_key=True)
    role: Mapped[str] = mapped_column(String(ROLE_LEN), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    granted_by: Mapped[str | None] = mapped_column(String(STAFF_ID_LEN))


class AccessRequestRow(Base):
    """An approval (审批): ``kind`` is ``export`` (masked bulk export), ``unmask_bulk`` (bulk export in
    clear) or ``minor_access`` (access to one minor's PI, S6). Subjects are pseudonyms only: ``subject`` for
    a single-subject request, ``subjects`` a JSON list for exports. ``status``: pending, approved,
    rejected, used, expired."""

    __tablename__ = "access_requests"
    __table_args__ = (
        Index("ix_access_requests_tenant_status", "tenant_id", "status"),
        Index("ix_access_requests_tenant_subject", "tenant_id", "subject"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(REQUEST_ID_LEN), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    kind: Mapped[str] = mapped_column(String(KIND_LEN))
    requester: Mapped[str] = mapped_column(String(STAFF_ID_LEN))
    subject: Mapped[str | None] = mapped_column(String(PSEUDONYM_LEN))
    subjects: Mapped[str] = mapped_column(LargeText)
    subject_count: Mapped[int] = mapped_column(Integer)
    minor_count: Mapped[int] = mapped_column(Integer)
    items: Mapped[str] = mapped_column(LargeText)
    unmasked: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(REASON_LEN))
    status: Mapped[str] = mapped_column(String(STATUS_LEN))
    approver: Mapped[str | None] = mapped_column(String(STAFF_ID_LEN))
    decision_note: Mapped[str | None] = mapped_column(String(REASON_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ActivityEventRow(Base):
    """One login or registration event of the app (kind ``login_success``, ``login_failure``,
    ``registration``); account, device and IP are keyed pseudonyms of the tenant."""

    __tablename__ = "activity_events"
    __table_args__ = (
        Index("ix_activity_events_account", "tenant_id", "account_key", "event_time"),
        Index("ix_activity_events_device", "tenant_id", "device_key", "event_time"),
        Index("ix_activity_events_ip", "tenant_id", "ip_key", "event_time"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    kind: Mapped[str] = mapped_column(String(KIND_LEN))
    account_key: Mapped[str] = mapped_column(String(PSEUDONYM_LEN))
    device_key: Mapped[str | None] = mapped_column(String(PSEUDONYM_LEN))
    ip_key: Mapped[str | None] = mapped_column(String(PSEUDONYM_LEN))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ActivityAlertRow(Base):
    """An alert (告警) raised by a rate rule on one account, device or IP (``key_kind``; ``key_hash`` is its
    pseudonym). ``count`` is the largest number seen within ``window_seconds``; ``status`` open or
    acknowledged."""

    __tablename__ = "activity_alerts"
    __table_args__ = (
        Index("ix_activity_alerts_tenant_status", "tenant_id", "status"),
        Index("ix_activity_alerts_key", "tenant_id", "rule", "key_hash"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    rule: Mapped[str] = mapped_column(String(RULE_LEN))
    key_kind: Mapped[str] = mapped_column(String(STATUS_LEN))
    key_hash: Mapped[str] = mapped_column(String(PSEUDONYM_LEN))
    count: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    window_seconds: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(STATUS_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(STAFF_ID_LEN))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(String(REASON_LEN))


#: The field name the TOTP secrets' tokens are bound to.
TOTP_FIELD = "staff.totp_secret"


def register_rotation_columns() -> None:
    """Put the encrypted TOTP secrets in the key-rotation registry (``yinsi keys rotate``)."""
    from yinsi.protect.registry import EncryptedColumn, register_encrypted_column

    register_encrypted_column(EncryptedColumn("staff", "totp_secret_encrypted", field=TOTP_FIELD))
