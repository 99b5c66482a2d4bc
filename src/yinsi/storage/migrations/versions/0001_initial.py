"""Tenants and published policy versions.

Revision ID: 0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types used in yinsi.storage (a migration must not change when the models do).
MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
LARGE_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        **MYSQL,
    )
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("app_name", sa.String(500), nullable=False),
        sa.Column("controller_name", sa.String(500), nullable=True),
        sa.Column("effective_date", sa.Date(), nullable=True),
        sa.Column("updated_date", sa.Date(), nullable=True),
        sa.Column("declaration_yaml", LARGE_TEXT, nullable=False),
        sa.Column("declaration_hash", sa.String(64), nullable=False),
        sa.Column("rendered_markdown", LARGE_TEXT, nullable=False),
        sa.Column("rendered_hash", sa.String(64), nullable=False),
        sa.Column("lint_errors", sa.Integer(), nullable=False),
        sa.Column("lint_warnings", sa.Integer(), nullable=False),
        sa.Column("published_at", TIMESTAMP, nullable=False),
        sa.Column("published_by", sa.String(500), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_policy_versions_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("id", name="pk_policy_versions"),
        sa.UniqueConstraint("tenant_id", "label", name="uq_policy_versions_tenant_id_label"),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("policy_versions")
    op.drop_table("tenants")
