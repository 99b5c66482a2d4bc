"""Envelope-encryption keys and protected data (issue 5).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
LARGE_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("key_version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("retired_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_data_keys_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("tenant_id", "purpose", "key_version", name="pk_data_keys"),
        **MYSQL,
    )
    op.create_table(
        "key_rotations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_key_rotations_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("id", name="pk_key_rotations"),
        **MYSQL,
    )
    op.create_index("ix_key_rotations_tenant_status", "key_rotations", ["tenant_id", "status"])
    op.create_table(
        "key_rotation_columns",
        sa.Column("rotation_id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(128), nullable=False),
        sa.Column("column_name", sa.String(128), nullable=False),
        sa.Column("field_name", sa.String(200), nullable=False),
        sa.Column("cursor", LARGE_TEXT, nullable=True),
        sa.Column("pass_no", sa.Integer(), nullable=False),
        sa.Column("pass_seen", sa.BigInteger(), nullable=False),
        sa.Column("pass_changed", sa.BigInteger(), nullable=False),
        sa.Column("total_reencrypted", sa.BigInteger(), nullable=False),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["rotation_id"], ["key_rotations.id"],
                                name="fk_key_rotation_columns_rotation_id_key_rotations"),
        sa.PrimaryKeyConstraint("rotation_id", "table_name", "column_name", name="pk_key_rotation_columns"),
        **MYSQL,
    )
    op.create_table(
        "subject_identifiers",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("blind_index", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_subject_identifiers_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("tenant_id", "subject_id", "kind", name="pk_subject_identifiers"),
        **MYSQL,
    )
    op.create_index("ix_subject_identifiers_lookup", "subject_identifiers", ["tenant_id", "kind", "blind_index"])


def downgrade() -> None:
    op.drop_table("subject_identifiers")
    op.drop_table("key_rotation_columns")
    op.drop_table("key_rotations")
    op.drop_table("data_keys")
