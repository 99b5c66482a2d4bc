"""Tables of policy-change notices (变更告知) and security incidents (个人信息安全事件), migration 0013.

- ``policy_notice_plans``: one per published version whose change is announced (``kind`` ``change``) or per
  announced service termination (``kind`` ``termination``): the diff's Chinese summary, whether it is major
  or reduces rights, when notices are sent and by when they must arrive, and for a termination the sweep.
- ``policy_notices``: one notice to one person through one channel; ``outbox_id`` is the outbox message
  that carries it (e-mail, SMS) — in-app notices are posted, not sent.
- ``incidents``: the PIPL 57 record (JSON, free text written by staff), severity, the regulator-report clock,
  the window and items of the affected PI, the reason for a public announcement, and the life cycle.
- ``incident_subjects``: the people affected (the app's subject ids), whether each is a minor, and where the
  finding came from (processing records or the data map).
- ``incident_notices``: a notice to a person, a guardian, or the public announcement.

Every row carries its tenant; addresses are never stored here (they stay encrypted in the outbox).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yinsi.storage.tables import LABEL_LEN, MYSQL_TABLE_ARGS, TENANT_ID_LEN, Base
from yinsi.storage.types import LargeText, UTCDateTime

RowId = BigInteger().with_variant(Integer(), "sqlite")
SUBJECT_LEN = 128
SHORT_LEN = 32
STAFF_LEN = 64
INCIDENT_ID_LEN = 32
TITLE_LEN = 200


class PolicyNoticePlan(Base):
    """The notices of one announced change (or termination) of a tenant's policy."""

    __tablename__ = "policy_notice_plans"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "label", name="uq_policy_notice_plans_tenant_kind_label"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    kind: Mapped[str] = mapped_column(String(SHORT_LEN))
    label: Mapped[str] = mapped_column(String(LABEL_LEN))
    old_label: Mapped[str | None] = mapped_column(String(LABEL_LEN))
    effective_date: Mapped[date] = mapped_column(Date)
    send_at: Mapped[datetime] = mapped_column(UTCDateTime())
    arrive_by: Mapped[datetime] = mapped_column(UTCDateTime())
    major: Mapped[bool] = mapped_column(Boolean)
    rights_reducing: Mapped[bool] = mapped_column(Boolean)
    summary: Mapped[str] = mapped_column(LargeText)
    details: Mapped[str] = mapped_column(LargeText)
    channels: Mapped[str] = mapped_column(String(500))
    people: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(SHORT_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(STAFF_LEN))
    sweep_status: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    sweep_result: Mapped[str | None] = mapped_column(LargeText)
    swept_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PolicyNotice(Base):
    """One notice of a change to one person through one channel."""

    __tablename__ = "policy_notices"
    __table_args__ = (
        UniqueConstraint("plan_id", "subject_id", "channel", name="uq_policy_notices_plan_id_subject_id"),
        Index("ix_policy_notices_due", "tenant_id", "status", "due_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    plan_id: Mapped[int] = mapped_column(RowId, ForeignKey("policy_notice_plans.id"))
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_LEN))
    channel: Mapped[str] = mapped_column(String(SHORT_LEN))
    status: Mapped[str] = mapped_column(String(SHORT_LEN))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outbox_id: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(String(500))


class IncidentRow(Base):
    """A personal-information security incident (个人信息安全事件) and its PIPL 57 record."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_tenant_status", "tenant_id", "status"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(INCIDENT_ID_LEN), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    title: Mapped[str] = mapped_column(String(TITLE_LEN))
    status: Mapped[str] = mapped_column(String(SHORT_LEN))
    record: Mapped[str] = mapped_column(LargeText)
    severity: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    critical_infrastructure: Mapped[bool] = mapped_column(Boolean)
    discovered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_by: Mapped[str] = mapped_column(String(STAFF_LEN))
    report_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    report_note: Mapped[str | None] = mapped_column(String(500))
    overdue_alert_id: Mapped[int | None] = mapped_column(BigInteger)
    items: Mapped[str | None] = mapped_column(LargeText)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    affected_count: Mapped[int | None] = mapped_column(Integer)
    announcement_reason: Mapped[str | None] = mapped_column(LargeText)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(STAFF_LEN))
    close_note: Mapped[str | None] = mapped_column(String(500))


class IncidentSubject(Base):
    """One person affected by an incident."""

    __tablename__ = "incident_subjects"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    incident_id: Mapped[str] = mapped_column(String(INCIDENT_ID_LEN), ForeignKey("incidents.id"),
                                             primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_LEN), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    minor: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(SHORT_LEN))
    items: Mapped[str] = mapped_column(LargeText)


class IncidentNotice(Base):
    """A notice of an incident: to a person, to a minor's guardian, or the public announcement."""

    __tablename__ = "incident_notices"
    __table_args__ = (
        Index("ix_incident_notices_incident", "tenant_id", "incident_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    incident_id: Mapped[str] = mapped_column(String(INCIDENT_ID_LEN), ForeignKey("incidents.id"))
    subject_id: Mapped[str | None] = mapped_column(String(SUBJECT_LEN))
    audience: Mapped[str] = mapped_column(String(SHORT_LEN))
    channel: Mapped[str] = mapped_column(String(SHORT_LEN))
    status: Mapped[str] = mapped_column(String(SHORT_LEN))
    outbox_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(String(500))
