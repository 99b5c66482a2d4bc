"""Staff, roles, approvals and abnormal-activity alerts (issue 5).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types used in yinsi.storage (a migration must not change when the models do).
MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
LARGE_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("staff_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_staff_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("tenant_id", "staff_id", name="pk_staff"),
        **MYSQL,
    )
    op.create_table(
        "staff_roles",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("staff_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("granted_at", TIMESTAMP, nullable=False),
        sa.Column("granted_by", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id", "staff_id"], ["staff.tenant_id", "staff.staff_id"],
                                name="fk_staff_roles_tenant_id_staff"),
        sa.PrimaryKeyConstraint("tenant_id", "staff_id", "role", name="pk_staff_roles"),
        **MYSQL,
    )
    op.create_table(
        "access_requests",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(64), nullable=True),
        sa.Column("subjects", LARGE_TEXT, nullable=False),
        sa.Column("subject_count", sa.Integer(), nullable=False),
        sa.Column("minor_count", sa.Integer(), nullable=False),
        sa.Column("items", LARGE_TEXT, nullable=False),
        sa.Column("unmasked", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("approver", sa.String(64), nullable=True),
        sa.Column("decision_note", sa.String(500), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=True),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("used_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_access_requests_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("id", name="pk_access_requests"),
        **MYSQL,
    )
    op.create_index("ix_access_requests_tenant_status", "access_requests", ["tenant_id", "status"])
    op.create_index("ix_access_requests_tenant_subject", "access_requests", ["tenant_id", "subject"])
    op.create_table(
        "activity_events",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("account_key", sa.String(64), nullable=False),
        sa.Column("device_key", sa.String(64), nullable=True),
        sa.Column("ip_key", sa.String(64), nullable=True),
        sa.Column("event_time", TIMESTAMP, nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_activity_events_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("id", name="pk_activity_events"),
        **MYSQL,
    )
    op.create_index("ix_activity_events_account", "activity_events", ["tenant_id", "account_key", "event_time"])
    op.create_index("ix_activity_events_device", "activity_events", ["tenant_id", "device_key", "event_time"])
    op.create_index("ix_activity_events_ip", "activity_events", ["tenant_id", "ip_key", "event_time"])
    op.create_table(
        "activity_alerts",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("key_kind", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("window_seconds", sa.Integer(), nullable=False),
        sa.Column("first_at", TIMESTAMP, nullable=False),
        sa.Column("last_at", TIMESTAMP, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.Column("acknowledged_at", TIMESTAMP, nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_activity_alerts_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("id", name="pk_activity_alerts"),
        **MYSQL,
    )
    op.create_index("ix_activity_alerts_tenant_status", "activity_alerts", ["tenant_id", "status"])
    op.create_index("ix_activity_alerts_key", "activity_alerts", ["tenant_id", "rule", "key_hash"])


def downgrade() -> None:
    op.drop_table("activity_alerts")
    op.drop_table("activity_events")
    op.drop_table("access_requests")
    op.drop_table("staff_roles")
    op.drop_table("staff")
