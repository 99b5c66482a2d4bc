"""The retention use cases: plan and sweep one tenant's app data, audited in Yinsi's database."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from yinsi.audit import AuditAction
from yinsi.audit.log import AuditLog
from yinsi.config import database_url, is_default_database
from yinsi.domain.datamap import DataMap
from yinsi.domain.policy import Declaration
from yinsi.retention.internal import InternalSweep, sweep_internal, tenants
from yinsi.retention.plan import TablePlan, retention_plan
from yinsi.retention.sweep import BATCH, Progress, TableSweep, sweep
from yinsi.storage.engine import make_engine, make_session_factory
from yinsi.storage.migrate import ensure_current

ACTOR = "system:retention"


class RetentionError(ValueError):
    """A request the retention service refuses (message in Chinese, no PI)."""


class RetentionService:
    def __init__(self, url: str | None = None) -> None:
        self.url = url or database_url()
        ensure_current(self.url, auto_upgrade=is_default_database(self.url))
        self.engine = make_engine(self.url)
        self.log = AuditLog(make_session_factory(self.engine))

    def close(self) -> None:
        self.engine.dispose()

    @staticmethod
    def _check(tenant: str, dm: DataMap) -> None:
        if dm.tenant != tenant:
            raise RetentionError(f"数据地图属于租户 {dm.tenant}，不是 {tenant}")

    def plan(self, tenant: str, dm: DataMap, decl: Declaration | None, urls: Mapping[str, str],
             now: datetime) -> list[TablePlan]:
        self._check(tenant, dm)
        return retention_plan(dm, decl, urls, now)

    def sweep(self, tenant: str, dm: DataMap, decl: Declaration | None, urls: Mapping[str, str], now: datetime,
              *, dry_run: bool = False, batch: int = BATCH, progress: Progress | None = None) -> list[TableSweep]:
        """Sweep; one audit entry per table swept, with its counts, the hold's reason and ``now``."""
        self._check(tenant, dm)

        def audit(done: TableSweep) -> None:
            reason = (f"保存期限届满清理：{done.store}.{done.table}"
                      + (f"；{done.held} 行依法保留（{done.hold_rule}：{done.hold_basis}）" if done.held else ""))
            self.log.append(tenant, ACTOR, AuditAction.OTHER, reason=reason, details={
                "kind": "retention_sweep", "store": done.store, "table": done.table, "action": done.action,
                "removed": done.removed, "held": done.held, "hold_rule": done.hold_rule, "now": now.isoformat()})

        return sweep(dm, decl, urls, now, dry_run=dry_run, batch=batch, progress=progress, audit=audit)

    def sweep_internal(self, now: datetime, *, tenant: str | None = None, overrides: Mapping[str, int] | None = None,
                       dry_run: bool = False, progress: Progress | None = None) -> list[InternalSweep]:
        """Yinsi's own records past their period, for ``tenant`` or every tenant; one audit entry per tenant
        and kind of record removed, with the count, the period, its reason and a raised period's law."""

        def audit(done: InternalSweep) -> None:
            reason = f"内部数据保存期限届满清理：{done.name}（{done.days} 天，{done.rule}：{done.reason}）"
            if done.raised_from is not None:
                reason += f"；配置的 {done.raised_from} 天短于法定最短保存期，按法定期限执行"
            self.log.append(done.tenant, ACTOR, AuditAction.OTHER, reason=reason, details={
                "kind": "retention_sweep_internal", "records": done.name, "removed": done.removed,
                "days": done.days, "rule": done.rule, "raised_from": done.raised_from, "now": now.isoformat()})

        out: list[InternalSweep] = []
        for t in [tenant] if tenant else tenants(self.engine):
            out += sweep_internal(self.engine, t, now, overrides=overrides, dry_run=dry_run, progress=progress,
                                  audit=audit)
        return out
