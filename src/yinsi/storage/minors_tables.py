"""Tables for minors (未成年人, M1–M3) and transfers abroad (出境, X1–X2).

Subjects are the ledger's pseudonyms (``subject_id``, see :mod:`yinsi.storage.consent_tables`); a guardian's
identity is kept only as a blind index (``guardian_index``, to find the same guardian again) and encrypted
(``guardian_encrypted``, field ``guardians.identity``), never in clear.

- ``guardians``: a guardian's consent for a minor: who (protected), relation, how it was verified, and
  whether it still stands (``active``) or the guardian objected (``objected``).
- ``minor_accounts``: per minor, what the app must see: self-supporting status (民法典 18, M2), the
  suspension a guardian's objection puts on the account, and the deletion request opened automatically
  when no verifiable guardian consent exists (M3).
- ``abroad_assessments``: the recorded assessment of each foreign recipient (PIPL 55, X1).
- ``abroad_people``: one row per tenant, year (Beijing calendar), sensitive or not, and person whose PI went
  abroad: the distinct people X2 counts. ``abroad_counters`` holds their counts, kept in the same
  transaction as each new row, so reading a count is one row; ``abroad_alerts`` the thresholds already
  announced, so each warning is raised once a year.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yinsi.storage.consent_tables import SUBJECT_LEN
from yinsi.storage.tables import HASH_LEN, MYSQL_TABLE_ARGS, TENANT_ID_LEN, Base
from yinsi.storage.types import LargeText, UTCDateTime

ID_LEN = 36
SHORT = 32
RECIPIENT_LEN = 100
ACTOR_LEN = 190

GUARDIAN_FIELD = "guardians.identity"


class GuardianRow(Base):
    """A guardian's consent for one minor."""

    __tablename__ = "guardians"
    __table_args__ = (
        Index("ix_guardians_subject", "tenant_id", "subject_id"),
        Index("ix_guardians_guardian", "tenant_id", "guardian_index"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_LEN))
    guardian_index: Mapped[str] = mapped_column(String(HASH_LEN))
    guardian_encrypted: Mapped[str] = mapped_column(LargeText)
    relation: Mapped[str] = mapped_column(String(SHORT))
    verification: Mapped[str] = mapped_column(String(SHORT))
    state: Mapped[str] = mapped_column(String(SHORT))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    objected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MinorAccount(Base):
    """A minor's account status as the app sees it."""

    __tablename__ = "minor_accounts"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_LEN), primary_key=True)
    self_supporting: Mapped[bool] = mapped_column(Boolean, default=False)
    self_supporting_evidence: Mapped[str | None] = mapped_column(String(SHORT))
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    suspension_rule: Mapped[str | None] = mapped_column(String(SHORT))
    deletion_request: Mapped[str | None] = mapped_column(String(ID_LEN))
    deletion_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AbroadAssessment(Base):
    """The recorded assessment of a foreign recipient (个人信息保护影响评估, PIPL 55; X1)."""

    __tablename__ = "abroad_assessments"
    __table_args__ = (Index("ix_abroad_assessments_recipient", "tenant_id", "recipient"), MYSQL_TABLE_ARGS)

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    recipient: Mapped[str] = mapped_column(String(RECIPIENT_LEN))
    conclusion: Mapped[str] = mapped_column(String(SHORT))
    summary: Mapped[str] = mapped_column(LargeText)
    assessor: Mapped[str] = mapped_column(String(ACTOR_LEN))
    assessed_on: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AbroadPerson(Base):
    """A person whose PI went abroad in a year (distinct per tenant, year and sensitivity)."""

    __tablename__ = "abroad_people"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sensitive: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_LEN), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(RECIPIENT_LEN))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AbroadCounter(Base):
    """How many distinct people's PI went abroad this year (sensitive or not)."""

    __tablename__ = "abroad_counters"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sensitive: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    people: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AbroadAlert(Base):
    """A threshold warning already raised for a tenant and year."""

    __tablename__ = "abroad_alerts"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sensitive: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    level: Mapped[str] = mapped_column(String(SHORT), primary_key=True)
    people: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
