"""Consent and permission ledger, projections and processing records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
LARGE_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "subjects",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_subjects_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("tenant_id", "subject_id", name="pk_subjects"),
        **MYSQL,
    )
    op.create_table(
        "consent_events",
        sa.Column("id", EVENT_ID, autoincrement=True, nullable=False),
        sa.Column("record_id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("policy_label", sa.String(64), nullable=False),
        sa.Column("shown_hash", sa.String(64), nullable=False),
        sa.Column("purposes", LARGE_TEXT, nullable=False),
        sa.Column("items", LARGE_TEXT, nullable=False),
        sa.Column("recipients", LARGE_TEXT, nullable=False),
        sa.Column("disclosures", LARGE_TEXT, nullable=False),
        sa.Column("controller", sa.String(500), nullable=False),
        sa.Column("storage_location", sa.String(500), nullable=True),
        sa.Column("retention", LARGE_TEXT, nullable=True),
        sa.Column("jurisdiction", sa.String(32), nullable=False),
        sa.Column("withdrawal_method", sa.String(500), nullable=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("collection_method", sa.String(32), nullable=False),
        sa.Column("language", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=True),
        sa.Column("event_time", TIMESTAMP, nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_consent_events_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("id", name="pk_consent_events"),
        sa.UniqueConstraint("record_id", name="uq_consent_events_record_id"),
        **MYSQL,
    )
    op.create_index("ix_consent_events_tenant_subject", "consent_events", ["tenant_id", "subject_id", "id"])
    op.create_table(
        "permission_events",
        sa.Column("id", EVENT_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("permission", sa.String(32), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("feature", sa.String(64), nullable=True),
        sa.Column("event_time", TIMESTAMP, nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_permission_events_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("id", name="pk_permission_events"),
        **MYSQL,
    )
    op.create_index("ix_permission_events_tenant_subject", "permission_events", ["tenant_id", "subject_id", "id"])
    op.create_table(
        "consent_state",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("policy_label", sa.String(64), nullable=False),
        sa.Column("event_time", TIMESTAMP, nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "subject_id", "scope", name="pk_consent_state"),
        **MYSQL,
    )
    op.create_table(
        "permission_state",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("permission", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("changed_at", TIMESTAMP, nullable=False),
        sa.Column("last_denied_at", TIMESTAMP, nullable=True),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "subject_id", "device_id", "permission", name="pk_permission_state"),
        **MYSQL,
    )
    op.create_table(
        "processing_records",
        sa.Column("id", EVENT_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("feature", sa.String(64), nullable=True),
        sa.Column("purpose", sa.String(500), nullable=True),
        sa.Column("items", LARGE_TEXT, nullable=False),
        sa.Column("recipient", sa.String(64), nullable=True),
        sa.Column("destination", sa.String(64), nullable=True),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("basis", sa.String(32), nullable=True),
        sa.Column("reasons", LARGE_TEXT, nullable=False),
        sa.Column("policy_label", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(128), nullable=True),
        sa.Column("decided_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_processing_records_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("id", name="pk_processing_records"),
        **MYSQL,
    )
    op.create_index("ix_processing_records_tenant_subject", "processing_records", ["tenant_id", "subject_id", "id"])


def downgrade() -> None:
    op.drop_table("processing_records")
    op.drop_table("permission_state")
    op.drop_table("consent_state")
    op.drop_table("permission_events")
    op.drop_table("consent_events")
    op.drop_table("subjects")
