"""Policy-change notices and security incidents (issue 13 items 3-4).

- ``policy_notice_plans``: one per announced change of a policy version or announced service termination
  (summary, major / rights-reducing, when notices go out and by when they must arrive, the final sweep).
- ``policy_notices``: one notice to one person through one channel (the outbox message that carries it).
- ``incidents``: the PIPL 57 record, severity, the regulator-report clock, window and items, announcement
  reason, life cycle.
- ``incident_subjects``: the people affected; ``incident_notices``: notices to people, guardians, the public.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
LARGE_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants")


def upgrade() -> None:
    op.create_table(
        "policy_notice_plans",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("old_label", sa.String(64), nullable=True),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("send_at", TIMESTAMP, nullable=False),
        sa.Column("arrive_by", TIMESTAMP, nullable=False),
        sa.Column("major", sa.Boolean(), nullable=False),
        sa.Column("rights_reducing", sa.Boolean(), nullable=False),
        sa.Column("summary", LARGE_TEXT, nullable=False),
        sa.Column("details", LARGE_TEXT, nullable=False),
        sa.Column("channels", sa.String(500), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("sweep_status", sa.String(32), nullable=True),
        sa.Column("sweep_result", LARGE_TEXT, nullable=True),
        sa.Column("swept_at", TIMESTAMP, nullable=True),
        _tenant_fk("policy_notice_plans"),
        sa.PrimaryKeyConstraint("id", name="pk_policy_notice_plans"),
        sa.UniqueConstraint("tenant_id", "kind", "label", name="uq_policy_notice_plans_tenant_kind_label"),
        **MYSQL,
    )
    op.create_table(
        "policy_notices",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("plan_id", ROW_ID, nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("due_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.Column("outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        _tenant_fk("policy_notices"),
        sa.ForeignKeyConstraint(["plan_id"], ["policy_notice_plans.id"], name="fk_policy_notices_plan_id_policy_notice_plans"),
        sa.PrimaryKeyConstraint("id", name="pk_policy_notices"),
        sa.UniqueConstraint("plan_id", "subject_id", "channel", name="uq_policy_notices_plan_id_subject_id"),
        **MYSQL,
    )
    op.create_index("ix_policy_notices_due", "policy_notices", ["tenant_id", "status", "due_at"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("record", LARGE_TEXT, nullable=False),
        sa.Column("severity", sa.String(32), nullable=True),
        sa.Column("critical_infrastructure", sa.Boolean(), nullable=False),
        sa.Column("discovered_at", TIMESTAMP, nullable=False),
        sa.Column("opened_at", TIMESTAMP, nullable=False),
        sa.Column("opened_by", sa.String(64), nullable=False),
        sa.Column("report_due_at", TIMESTAMP, nullable=True),
        sa.Column("reported_at", TIMESTAMP, nullable=True),
        sa.Column("report_note", sa.String(500), nullable=True),
        sa.Column("overdue_alert_id", sa.BigInteger(), nullable=True),
        sa.Column("items", LARGE_TEXT, nullable=True),
        sa.Column("window_start", TIMESTAMP, nullable=True),
        sa.Column("window_end", TIMESTAMP, nullable=True),
        sa.Column("affected_count", sa.Integer(), nullable=True),
        sa.Column("announcement_reason", LARGE_TEXT, nullable=True),
        sa.Column("notified_at", TIMESTAMP, nullable=True),
        sa.Column("closed_at", TIMESTAMP, nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("close_note", sa.String(500), nullable=True),
        _tenant_fk("incidents"),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
        **MYSQL,
    )
    op.create_index("ix_incidents_tenant_status", "incidents", ["tenant_id", "status"])
    op.create_table(
        "incident_subjects",
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("minor", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("items", LARGE_TEXT, nullable=False),
        _tenant_fk("incident_subjects"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name="fk_incident_subjects_incident_id_incidents"),
        sa.PrimaryKeyConstraint("incident_id", "subject_id", name="pk_incident_subjects"),
        **MYSQL,
    )
    op.create_table(
        "incident_notices",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=True),
        sa.Column("audience", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        _tenant_fk("incident_notices"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name="fk_incident_notices_incident_id_incidents"),
        sa.PrimaryKeyConstraint("id", name="pk_incident_notices"),
        **MYSQL,
    )
    op.create_index("ix_incident_notices_incident", "incident_notices", ["tenant_id", "incident_id"])


def downgrade() -> None:
    # Tables go with their indexes (MariaDB refuses to drop an index a foreign key uses).
    for table in ("incident_notices", "incident_subjects", "incidents", "policy_notices", "policy_notice_plans"):
        op.drop_table(table)
