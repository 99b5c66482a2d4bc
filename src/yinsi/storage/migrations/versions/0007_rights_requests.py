"""Rights requests: requests, transitions, execution steps, the legal-hold vault, the notification outbox
and identity-verification codes (issue 4).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
LARGE_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants")


def upgrade() -> None:
    op.create_table(
        "rights_requests",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("subject_kind", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("requester", sa.String(128), nullable=False),
        sa.Column("policy_label", sa.String(64), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("deadline_rule", sa.String(32), nullable=False),
        sa.Column("deadline_explanation", LARGE_TEXT, nullable=False),
        sa.Column("deadline_provisional", sa.Boolean(), nullable=False),
        sa.Column("details_encrypted", LARGE_TEXT, nullable=True),
        sa.Column("plan_encrypted", LARGE_TEXT, nullable=True),
        sa.Column("confirmed_at", TIMESTAMP, nullable=True),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_until", TIMESTAMP, nullable=True),
        sa.Column("refusal_ground", sa.String(32), nullable=True),
        sa.Column("refusal_detail", LARGE_TEXT, nullable=True),
        sa.Column("result", LARGE_TEXT, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        _tenant_fk("rights_requests"),
        sa.PrimaryKeyConstraint("id", name="pk_rights_requests"),
        **MYSQL,
    )
    op.create_index("ix_rights_requests_tenant_state", "rights_requests", ["tenant_id", "state"])
    op.create_table(
        "request_transitions",
        sa.Column("id", EVENT_ID, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=True),
        sa.Column("to_state", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("note", LARGE_TEXT, nullable=False),
        sa.Column("refusal_ground", sa.String(32), nullable=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["rights_requests.id"],
                                name="fk_request_transitions_request_id_rights_requests"),
        sa.PrimaryKeyConstraint("id", name="pk_request_transitions"),
        **MYSQL,
    )
    op.create_index("ix_request_transitions_request", "request_transitions", ["request_id", "id"])
    op.create_table(
        "request_steps",
        sa.Column("id", EVENT_ID, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("detail", LARGE_TEXT, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["rights_requests.id"],
                                name="fk_request_steps_request_id_rights_requests"),
        sa.PrimaryKeyConstraint("id", name="pk_request_steps"),
        sa.UniqueConstraint("request_id", "location_id", "action", name="uq_request_steps_request_location_action"),
        **MYSQL,
    )
    op.create_table(
        "legal_holds",
        sa.Column("id", EVENT_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("location_id", sa.String(200), nullable=False),
        sa.Column("source_key", sa.String(500), nullable=False),
        sa.Column("basis", sa.String(500), nullable=False),
        sa.Column("payload_encrypted", LARGE_TEXT, nullable=False),
        sa.Column("hold_until", sa.Date(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _tenant_fk("legal_holds"),
        sa.PrimaryKeyConstraint("id", name="pk_legal_holds"),
        sa.UniqueConstraint("request_id", "location_id", "source_key", name="uq_legal_holds_request_id_location_id"),
        **MYSQL,
    )
    op.create_index("ix_legal_holds_tenant_until", "legal_holds", ["tenant_id", "hold_until"])
    op.create_table(
        "outbox",
        sa.Column("id", EVENT_ID, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(128), nullable=True),
        sa.Column("recipient_masked", sa.String(200), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("provider_id", sa.String(200), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        _tenant_fk("outbox"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        **MYSQL,
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_tenant_ref", "outbox", ["tenant_id", "ref"])
    op.create_table(
        "verification_codes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("request_ref", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient_masked", sa.String(200), nullable=False),
        sa.Column("code_hash", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        _tenant_fk("verification_codes"),
        sa.PrimaryKeyConstraint("id", name="pk_verification_codes"),
        **MYSQL,
    )
    op.create_index("ix_verification_codes_tenant_request", "verification_codes",
                    ["tenant_id", "request_ref", "created_at"])


def downgrade() -> None:
    for table in ("verification_codes", "outbox", "legal_holds", "request_steps", "request_transitions",
                  "rights_requests"):
        op.drop_table(table)
