"""The ``jobs`` table (作业): scheduled and queued work, the single source of truth for the jobs module.

A broker message (RabbitMQ, Redis) only carries a row's id; the row says whether the job is still to run,
who holds it (``lease_owner`` until ``lease_until``, renewed by heartbeats), how often it was tried and why
it last failed. ``key`` is the job's idempotency key: enqueuing the same key twice gives the same row, so a
duplicated enqueue or message never runs an effect twice. ``payload`` is a small JSON object of ids (never
personal information); ``last_error`` is scrubbed of addresses and digit runs.

``state``: ``queued`` (to run at ``run_after``; also after a failed attempt, with backoff), ``running``
(claimed; if the lease runs out the row can be claimed again), ``done``, ``dead`` (gave up after
``max_attempts`` attempts: the dead-letter list; staff may put it back with ``yinsi jobs retry``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yinsi.storage.tables import MYSQL_TABLE_ARGS, TENANT_ID_LEN, Base
from yinsi.storage.types import UTCDateTime

JOB_NAME_LEN = 100
JOB_KEY_LEN = 255
JOB_STATE_LEN = 16
JOB_OWNER_LEN = 120
JOB_ERROR_LEN = 500

#: An auto-incrementing 64-bit key; SQLite only auto-increments INTEGER PRIMARY KEY.
JobId = BigInteger().with_variant(Integer(), "sqlite")


class JobRow(Base):
    """One job: a registered task's name, its payload and where it stands."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("key", name="uq_jobs_key"),
        Index("ix_jobs_due", "state", "run_after"),
        Index("ix_jobs_tenant_state", "tenant_id", "state"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(JobId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str | None] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(JOB_NAME_LEN))
    key: Mapped[str] = mapped_column(String(JOB_KEY_LEN))
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(JOB_STATE_LEN))
    attempts: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(JOB_OWNER_LEN))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(JOB_ERROR_LEN))
    result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
