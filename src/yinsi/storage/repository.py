"""Repositories (Cosmic Python): collections of stored objects; they never commit.

Every method takes the tenant: no query crosses tenants.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from yinsi.storage.tables import PolicyVersion, Tenant


def history_key(v: PolicyVersion) -> tuple[date, datetime, int]:
    """Order of versions: by effective date (or, where the text gives none, the publication date), then
    publication time, then insertion order. Sorted in Python: NULL ordering differs between backends."""
    return (v.effective_date or v.published_at.date(), v.published_at, v.id)


class TenantRepository:
    """Tenants (租户)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, tenant_id: str) -> Tenant | None:
        return self.session.get(Tenant, tenant_id)

    def add(self, tenant: Tenant) -> None:
        self.session.add(tenant)


class PolicyVersionRepository:
    """Published policy versions, one tenant at a time."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, version: PolicyVersion) -> None:
        self.session.add(version)

    def get(self, tenant_id: str, label: str) -> PolicyVersion | None:
        stmt = select(PolicyVersion).where(PolicyVersion.tenant_id == tenant_id, PolicyVersion.label == label)
        return self.session.scalars(stmt).one_or_none()

    def list_for_tenant(self, tenant_id: str) -> list[PolicyVersion]:
        """The tenant's versions in history order (see ``history_key``)."""
        stmt = select(PolicyVersion).where(PolicyVersion.tenant_id == tenant_id)
        return sorted(self.session.scalars(stmt), key=history_key)

    def latest_label(self, tenant_id: str) -> str | None:
        """The label of ``latest`` without loading any declaration text (one narrow query)."""
        rows = self.session.execute(select(PolicyVersion.label, PolicyVersion.effective_date, PolicyVersion.published_at,
                                           PolicyVersion.id).where(PolicyVersion.tenant_id == tenant_id)).all()
        if not rows:
            return None
        return str(max(rows, key=lambda r: (r.effective_date or r.published_at.date(), r.published_at, r.id)).label)

    def latest(self, tenant_id: str) -> PolicyVersion | None:
        """The last version in history order, or ``None`` if the tenant has published nothing."""
        versions = self.list_for_tenant(tenant_id)
        return versions[-1] if versions else None
