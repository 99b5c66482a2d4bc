"""App access and people's sessions (issue 9): app API keys, deep-link signing keys, people's sessions, and
the rate limits of one-time login codes.

- ``api_keys``: a tenant's app keys; only the SHA-256 of the secret is kept (and, during a rotation's grace
  period, the previous secret's).
- ``app_link_keys``: the key a tenant's app signs deep links with (an HS256 secret, encrypted with the
  tenant's data key, or the app's public key as a JWK); ``app_link_jtis``: used token ids until they expire.
- ``login_challenges``: the subject (encrypted) a login code was sent for.
- ``subject_sessions``: people's sessions; subject as a blind index and encrypted, token as SHA-256.
- ``rate_events``: attempts counted by the rate limits, keyed by a keyed hash (never an IP or a contact).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
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
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("previous_hash", sa.String(64), nullable=True),
        sa.Column("previous_valid_until", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("rotated_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
        sa.Column("last_used_at", TIMESTAMP, nullable=True),
        _tenant_fk("api_keys"),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        **MYSQL,
    )
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant_id"])
    op.create_table(
        "app_link_keys",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("issuer", sa.String(200), nullable=False),
        sa.Column("secret_encrypted", LARGE_TEXT, nullable=True),
        sa.Column("public_jwk", LARGE_TEXT, nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        _tenant_fk("app_link_keys"),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_app_link_keys"),
        **MYSQL,
    )
    op.create_table(
        "app_link_jtis",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("jti_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        _tenant_fk("app_link_jtis"),
        sa.PrimaryKeyConstraint("tenant_id", "jti_hash", name="pk_app_link_jtis"),
        **MYSQL,
    )
    op.create_index("ix_app_link_jtis_expires", "app_link_jtis", ["expires_at"])
    op.create_table(
        "login_challenges",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subject_kind", sa.String(64), nullable=False),
        sa.Column("subject_encrypted", LARGE_TEXT, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        _tenant_fk("login_challenges"),
        sa.PrimaryKeyConstraint("id", name="pk_login_challenges"),
        **MYSQL,
    )
    op.create_table(
        "subject_sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subject_index", sa.String(64), nullable=False),
        sa.Column("subject_encrypted", LARGE_TEXT, nullable=False),
        sa.Column("subject_kind", sa.String(64), nullable=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        _tenant_fk("subject_sessions"),
        sa.PrimaryKeyConstraint("id", name="pk_subject_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_subject_sessions_token_hash"),
        **MYSQL,
    )
    op.create_index("ix_subject_sessions_tenant_subject", "subject_sessions", ["tenant_id", "subject_index"])
    op.create_table(
        "rate_events",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("bucket", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        _tenant_fk("rate_events"),
        sa.PrimaryKeyConstraint("id", name="pk_rate_events"),
        **MYSQL,
    )
    op.create_index("ix_rate_events_key", "rate_events", ["tenant_id", "bucket", "key_hash", "at"])
    op.create_index("ix_rate_events_at", "rate_events", ["at"])


def downgrade() -> None:
    # Tables go with their indexes (MariaDB refuses to drop an index a foreign key uses).
    for table in ("rate_events", "subject_sessions", "login_challenges", "app_link_jtis", "app_link_keys",
                  "api_keys"):
        op.drop_table(table)
