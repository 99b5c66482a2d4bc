"""Minors and transfers abroad (issue 13 items 5-6).

- ``guardians``: a guardian's consent for a minor (identity as blind index and encrypted, relation,
  verification method, active or objected).
- ``minor_accounts``: self-supporting status, suspension after a guardian's objection, the deletion request
  opened when no verifiable guardian consent exists.
- ``abroad_assessments``: the recorded assessment of each foreign recipient (X1).
- ``abroad_people`` / ``abroad_counters`` / ``abroad_alerts``: distinct people whose PI went abroad per
  tenant and year (sensitive or not), their counts, and the threshold warnings raised (X2).

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
LARGE_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants")


def upgrade() -> None:
    op.create_table(
        "guardians",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("guardian_index", sa.String(64), nullable=False),
        sa.Column("guardian_encrypted", LARGE_TEXT, nullable=False),
        sa.Column("relation", sa.String(32), nullable=False),
        sa.Column("verification", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("verified_at", TIMESTAMP, nullable=False),
        sa.Column("objected_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _tenant_fk("guardians"),
        sa.PrimaryKeyConstraint("id", name="pk_guardians"),
        **MYSQL,
    )
    op.create_index("ix_guardians_subject", "guardians", ["tenant_id", "subject_id"])
    op.create_index("ix_guardians_guardian", "guardians", ["tenant_id", "guardian_index"])
    op.create_table(
        "minor_accounts",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("self_supporting", sa.Boolean(), nullable=False),
        sa.Column("self_supporting_evidence", sa.String(32), nullable=True),
        sa.Column("suspended_at", TIMESTAMP, nullable=True),
        sa.Column("suspension_rule", sa.String(32), nullable=True),
        sa.Column("deletion_request", sa.String(36), nullable=True),
        sa.Column("deletion_opened_at", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _tenant_fk("minor_accounts"),
        sa.PrimaryKeyConstraint("tenant_id", "subject_id", name="pk_minor_accounts"),
        **MYSQL,
    )
    op.create_table(
        "abroad_assessments",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("conclusion", sa.String(32), nullable=False),
        sa.Column("summary", LARGE_TEXT, nullable=False),
        sa.Column("assessor", sa.String(190), nullable=False),
        sa.Column("assessed_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        _tenant_fk("abroad_assessments"),
        sa.PrimaryKeyConstraint("id", name="pk_abroad_assessments"),
        **MYSQL,
    )
    op.create_index("ix_abroad_assessments_recipient", "abroad_assessments", ["tenant_id", "recipient"])
    op.create_table(
        "abroad_people",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("first_at", TIMESTAMP, nullable=False),
        _tenant_fk("abroad_people"),
        sa.PrimaryKeyConstraint("tenant_id", "year", "sensitive", "subject_id", name="pk_abroad_people"),
        **MYSQL,
    )
    op.create_table(
        "abroad_counters",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _tenant_fk("abroad_counters"),
        sa.PrimaryKeyConstraint("tenant_id", "year", "sensitive", name="pk_abroad_counters"),
        **MYSQL,
    )
    op.create_table(
        "abroad_alerts",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("level", sa.String(32), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("raised_at", TIMESTAMP, nullable=False),
        _tenant_fk("abroad_alerts"),
        sa.PrimaryKeyConstraint("tenant_id", "year", "sensitive", "level", name="pk_abroad_alerts"),
        **MYSQL,
    )


def downgrade() -> None:
    for table in ("abroad_alerts", "abroad_counters", "abroad_people", "abroad_assessments", "minor_accounts",
                  "guardians"):
        op.drop_table(table)
