"""The tamper-evident audit log (issue 5): entries, chain heads, signed checkpoints, signer keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types used in yinsi.storage (a migration must not change when the models do).
MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
LARGE_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "audit_chains",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("chain_uid", sa.String(36), nullable=False),
        sa.Column("hash_alg", sa.String(16), nullable=False),
        sa.Column("sign_alg", sa.String(16), nullable=False),
        sa.Column("checkpoint_every", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("frontier", LARGE_TEXT, nullable=False),
        sa.Column("last_checkpoint_no", sa.Integer(), nullable=False),
        sa.Column("last_checkpoint_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_checkpoint_hash", sa.String(64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_audit_chains"),
        **MYSQL,
    )
    op.create_table(
        "audit_entries",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(128), nullable=True),
        sa.Column("items", LARGE_TEXT, nullable=False),
        sa.Column("reason", LARGE_TEXT, nullable=True),
        sa.Column("details", LARGE_TEXT, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "seq", name="pk_audit_entries"),
        **MYSQL,
    )
    op.create_index("ix_audit_entries_tenant_subject", "audit_entries", ["tenant_id", "subject", "seq"])
    op.create_table(
        "audit_keys",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("public_key", sa.String(512), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("endorsed_by", sa.String(64), nullable=True),
        sa.Column("endorsement", sa.String(512), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_audit_keys"),
        **MYSQL,
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("checkpoint_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("chain_uid", sa.String(36), nullable=False),
        sa.Column("upto_seq", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("tip_hash", sa.String(64), nullable=False),
        sa.Column("prev_checkpoint_hash", sa.String(64), nullable=True),
        sa.Column("checkpoint_hash", sa.String(64), nullable=False),
        sa.Column("hash_alg", sa.String(16), nullable=False),
        sa.Column("sign_alg", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(512), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["audit_keys.key_id"], name="fk_audit_checkpoints_key_id_audit_keys"),
        sa.PrimaryKeyConstraint("tenant_id", "checkpoint_no", name="pk_audit_checkpoints"),
        sa.UniqueConstraint("tenant_id", "upto_seq", name="uq_audit_checkpoints_tenant_id_upto_seq"),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_keys")
    op.drop_index("ix_audit_entries_tenant_subject", table_name="audit_entries")
    op.drop_table("audit_entries")
    op.drop_table("audit_chains")
