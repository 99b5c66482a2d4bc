"""Staff authentication (issue 9): people behind staff accounts, passwords, second factors, sessions.

- ``staff_persons``: the human behind one or more staff accounts of a tenant (four-eyes approvals must come
  from a different person, not only a different account). ``contact_index`` is a blind index of a contact
  (never the contact), unique per tenant: two accounts given the same contact belong to one person.
- ``staff``: ``person_id`` (existing accounts each become their own person; kept by the code, not by a
  foreign key: on SQLite adding one would rebuild ``staff``, which ``staff_roles`` rows refer to), ``password_hash``
  (Argon2id), ``totp_secret_encrypted`` (encrypted with the tenant's data key), ``totp_last_step`` (a TOTP
  code is accepted once), ``failed_logins`` and ``locked_until`` (lockout).
- ``staff_sessions``: server-side login sessions and staff API tokens; only the SHA-256 of a token is kept.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
LARGE_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "staff_persons",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("contact_index", sa.String(64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_staff_persons_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("tenant_id", "person_id", name="pk_staff_persons"),
        sa.UniqueConstraint("tenant_id", "contact_index", name="uq_staff_persons_tenant_id_contact_index"),
        **MYSQL,
    )
    with op.batch_alter_table("staff") as batch:
        batch.add_column(sa.Column("person_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("password_hash", sa.String(255), nullable=True))
        batch.add_column(sa.Column("totp_secret_encrypted", LARGE_TEXT, nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("password_changed_at", TIMESTAMP, nullable=True))
    # Every existing account becomes its own person (the rows carry no contact to tie them together).
    op.execute(
        "INSERT INTO staff_persons (tenant_id, person_id, name, contact_index, created_at) "
        "SELECT tenant_id, staff_id, name, NULL, created_at FROM staff"
    )
    op.execute("UPDATE staff SET person_id = staff_id")
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("staff_id", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mfa", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id", "staff_id"], ["staff.tenant_id", "staff.staff_id"],
                                name="fk_staff_sessions_tenant_id_staff"),
        sa.PrimaryKeyConstraint("id", name="pk_staff_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_staff_sessions_token_hash"),
        **MYSQL,
    )
    op.create_index("ix_staff_sessions_tenant_staff", "staff_sessions", ["tenant_id", "staff_id", "kind"])


def downgrade() -> None:
    op.drop_table("staff_sessions")
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("password_changed_at")
        batch.drop_column("locked_until")
        batch.drop_column("failed_logins")
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_secret_encrypted")
        batch.drop_column("password_hash")
        batch.drop_column("person_id")
    op.drop_table("staff_persons")
