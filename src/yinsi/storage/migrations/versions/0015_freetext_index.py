"""The free-text index (issue 10 item 1): keyed hashes of the identifiers mentioned in the data map's free-text
columns, and how far each column has been indexed.

- ``freetext_columns``: a tenant's free-text column (store, table, column) with the index's high-water marks
  (highest primary key as text, highest ``updated_at`` seen) and counters.
- ``freetext_tokens``: (tenant, token, column, row key): the row mentions an identifier whose normalised form
  hashes to ``token`` under the tenant's index key. No text and no identifier is stored in clear.

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "freetext_columns",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("store", sa.String(190), nullable=False),
        sa.Column("table_name", sa.String(190), nullable=False),
        sa.Column("column_name", sa.String(190), nullable=False),
        sa.Column("key_mark", sa.String(190), nullable=True),
        sa.Column("updated_mark", TIMESTAMP, nullable=True),
        sa.Column("rows_indexed", sa.BigInteger(), nullable=False),
        sa.Column("indexed_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_freetext_columns_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("id", name="pk_freetext_columns"),
        sa.UniqueConstraint("tenant_id", "store", "table_name", "column_name", name="uq_freetext_columns_column"),
        **MYSQL,
    )
    op.create_table(
        "freetext_tokens",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("column_id", ROW_ID, nullable=False),
        sa.Column("row_key", sa.String(190), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_freetext_tokens_tenant_id_tenants"),
        sa.ForeignKeyConstraint(["column_id"], ["freetext_columns.id"],
                                name="fk_freetext_tokens_column_id_freetext_columns"),
        sa.PrimaryKeyConstraint("tenant_id", "token", "column_id", "row_key", name="pk_freetext_tokens"),
        **MYSQL,
    )
    op.create_index("ix_freetext_tokens_row", "freetext_tokens", ["column_id", "row_key"])


def downgrade() -> None:
    op.drop_table("freetext_tokens")
    op.drop_table("freetext_columns")
