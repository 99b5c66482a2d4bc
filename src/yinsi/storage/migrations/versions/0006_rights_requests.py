"""Rights requests, verification codes, execution plans and the notification outbox (issue 4).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Placeholder in the chain; filled in when its tables are added."""


def downgrade() -> None:
    """Placeholder in the chain."""
