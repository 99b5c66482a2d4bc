"""Rights requests keep PI-keyed subjects and third-party requesters encrypted (issue 4).

``rights_requests.identity_encrypted`` holds, encrypted, the key of a subject kind keyed by PI (a visitor
known by IP) and the person who asked on someone's behalf; ``subject_id`` then holds ``bi:`` and a blind
index, and ``requester`` only ``self`` or ``other``. Revision 0007 was never released, so there are no
earlier rows to rewrite.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LARGE_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("rights_requests") as batch:
        batch.add_column(sa.Column("identity_encrypted", LARGE_TEXT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rights_requests") as batch:
        batch.drop_column("identity_encrypted")
