"""Rights requests keep PI-keyed subjects and third-party requesters encrypted; the ledger records
restrictions of processing (限制处理, PIPL 44) (issue 4).

- ``rights_requests.identity_encrypted`` holds, encrypted, the key of a subject kind keyed by PI (a visitor
  known by IP) and the person who asked on someone's behalf; ``subject_id`` then holds ``bi:`` and a blind
  index, and ``requester`` only ``self`` or ``other``. Revision 0007 was never released, so there are no
  earlier rows to rewrite.
- ``restriction_events``: append-only facts (placed / lifted, ``all`` or ``feature:<id>``);
  ``subjects.restrictions`` is their projection, read with the birth date on the gate's first look.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
LARGE_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("rights_requests") as batch:
        batch.add_column(sa.Column("identity_encrypted", LARGE_TEXT, nullable=True))
    with op.batch_alter_table("subjects") as batch:
        batch.add_column(sa.Column("restrictions", LARGE_TEXT, nullable=True))
    op.create_table(
        "restriction_events",
        sa.Column("id", EVENT_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("request_ref", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(128), nullable=True),
        sa.Column("reason", LARGE_TEXT, nullable=False),
        sa.Column("event_time", TIMESTAMP, nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_restriction_events_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("id", name="pk_restriction_events"),
        **MYSQL,
    )
    op.create_index("ix_restriction_events_tenant_subject", "restriction_events", ["tenant_id", "subject_id", "id"])


def downgrade() -> None:
    op.drop_table("restriction_events")  # with its index (MariaDB refuses to drop an index a foreign key uses)
    with op.batch_alter_table("subjects") as batch:
        batch.drop_column("restrictions")
    with op.batch_alter_table("rights_requests") as batch:
        batch.drop_column("identity_encrypted")
