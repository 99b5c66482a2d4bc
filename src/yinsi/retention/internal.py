"""``yinsi retention sweep-internal``: Yinsi's own records past their period (docs/retention.md).

Per tenant and kind of record (``yinsi.domain.retention.INTERNAL_PERIODS``), each batch selects the keys of
records that ended at or before the cutoff and deletes exactly those in its own transaction (a finished
rights request together with its transitions and steps; an export package's file is removed and the
request's result no longer points to it). An interrupted sweep run again continues with what is left.
Afterwards the same selection is read back (nothing may remain) and one audit entry per kind records the
count, the period and its reason (no PI). A finished request whose vault rows are still held is kept.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, delete, exists, func, or_, select, update

from yinsi.domain.retention import InternalRule, internal_rules
from yinsi.storage.auth_tables import LoginChallengeRow, RateEventRow, SubjectSessionRow
from yinsi.storage.consent_tables import ProcessingRecord
from yinsi.storage.notify_tables import OutboxMessage, VerificationCodeRow
from yinsi.storage.rights_tables import LegalHoldRecord, RequestStep, RequestTransition, RightsRequest
from yinsi.storage.staff_tables import StaffSessionRow
from yinsi.storage.tables import Tenant

log = logging.getLogger(__name__)
BEIJING = ZoneInfo("Asia/Shanghai")
BATCH = 5_000
FINISHED = ("completed", "refused", "withdrawn")
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class InternalSweep:
    tenant: str
    name: str
    days: int
    rule: str
    reason: str
    raised_from: int | None
    removed: int  # deleted (or, for packages, files removed) in this run; the count due on a dry run
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Kind:
    table: Any  # the ORM class
    key: Any  # its primary-key column
    tenant: Any
    over: Callable[[datetime, date], Any]  # the WHERE of records past their period (cutoff, Beijing cutoff day)


def _kinds() -> dict[str, _Kind]:
    v, o, r = VerificationCodeRow, OutboxMessage, RightsRequest
    ls, ss, st = LoginChallengeRow, SubjectSessionRow, StaffSessionRow
    no_hold = ~exists().where(LegalHoldRecord.request_id == r.id)
    return {
        "verification_codes": _Kind(v, v.id, v.tenant_id, lambda c, d: func.coalesce(v.finished_at, v.expires_at) <= c),
        "outbox": _Kind(o, o.id, o.tenant_id, lambda c, d: or_(
            and_(o.status == "sent", o.sent_at <= c), and_(o.status.in_(("expired", "dead")), o.created_at <= c))),
        "export_packages": _Kind(r, r.id, r.tenant_id, lambda c, d: and_(
            r.state == "completed", r.updated_at <= c, r.result.like("%.zip.enc%"))),
        "rights_requests": _Kind(r, r.id, r.tenant_id, lambda c, d: and_(
            r.state.in_(FINISHED), r.updated_at <= c, no_hold)),
        "processing_records": _Kind(ProcessingRecord, ProcessingRecord.id, ProcessingRecord.tenant_id,
                                    lambda c, d: ProcessingRecord.decided_at <= c),
        "legal_holds": _Kind(LegalHoldRecord, LegalHoldRecord.id, LegalHoldRecord.tenant_id,
                             lambda c, d: LegalHoldRecord.hold_until < d),
        "login_challenges": _Kind(ls, ls.id, ls.tenant_id, lambda c, d: ls.expires_at <= c),
        "subject_sessions": _Kind(ss, ss.id, ss.tenant_id, lambda c, d: or_(ss.expires_at <= c, ss.revoked_at <= c)),
        "staff_sessions": _Kind(st, st.id, st.tenant_id, lambda c, d: or_(st.expires_at <= c, st.revoked_at <= c)),
        "rate_events": _Kind(RateEventRow, RateEventRow.id, RateEventRow.tenant_id, lambda c, d: RateEventRow.at <= c),
    }


def _where(kind: _Kind, rule: InternalRule, tenant: str, now: datetime) -> Any:
    cutoff = rule.cutoff(now)
    # the vault's hold_until is a date (Beijing): a row held until D is released from D + 1 + days
    day = now.astimezone(BEIJING).date() - timedelta(days=rule.days)
    return and_(kind.tenant == tenant, kind.over(cutoff, day))


def _drop_package(result: str | None) -> tuple[str | None, Path | None]:
    """The request's result without its package path, and that path."""
    try:
        data = json.loads(result or "")
    except ValueError:
        return result, None
    if not isinstance(data, dict) or not isinstance(data.get("package"), str):
        return result, None
    path = Path(data.pop("package"))
    data["package_deleted"] = True
    return json.dumps(data, ensure_ascii=False), path


def _batch(engine: Engine, name: str, kind: _Kind, where: Any, batch: int) -> int:
    """Delete one batch; returns how many records it removed (0: nothing left)."""
    with engine.begin() as conn:
        keys = list(conn.execute(select(kind.key).where(where).order_by(kind.key).limit(batch)).scalars())
        if not keys:
            return 0
        if name == "export_packages":
            rows = conn.execute(select(RightsRequest.id, RightsRequest.result).where(RightsRequest.id.in_(keys)))
            for rid, result in rows:
                new, path = _drop_package(result)
                if path is not None:
                    path.unlink(missing_ok=True)  # a file already gone (an earlier, interrupted run) is fine
                # a result that names no package: no longer selected either
                conn.execute(update(RightsRequest).where(RightsRequest.id == rid).values(
                    result=new if path is not None else json.dumps({"package_deleted": True})))
            return len(keys)
        if name == "rights_requests":
            conn.execute(delete(RequestTransition).where(RequestTransition.request_id.in_(keys)))
            conn.execute(delete(RequestStep).where(RequestStep.request_id.in_(keys)))
        conn.execute(delete(kind.table).where(kind.key.in_(keys)))
        return len(keys)


class SweepIncomplete(RuntimeError):
    """Records past their period were still there when read back."""


def tenants(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(Tenant.id).order_by(Tenant.id)).scalars())


def sweep_internal(engine: Engine, tenant: str, now: datetime, *, overrides: Mapping[str, int] | None = None,
                   dry_run: bool = False, batch: int = BATCH, progress: Progress | None = None,
                   audit: Callable[[InternalSweep], None] | None = None) -> list[InternalSweep]:
    """Sweep one tenant's records of every kind; ``audit`` is called after each kind that removed any."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    kinds = _kinds()
    out: list[InternalSweep] = []
    for rule in internal_rules(overrides):
        kind = kinds[rule.name]
        where = _where(kind, rule, tenant, now)
        removed = 0
        if dry_run:
            with engine.connect() as conn:
                removed = conn.execute(select(func.count()).select_from(kind.table).where(where)).scalar_one()
        else:
            while n := _batch(engine, rule.name, kind, where, batch):
                removed += n
                if progress is not None:
                    progress(rule.name, n)
            with engine.connect() as conn:  # read back
                left = conn.execute(select(func.count()).select_from(kind.table).where(where)).scalar_one()
            if left:
                raise SweepIncomplete(f"{rule.name} 清理后仍有 {left} 条过期记录")
        done = InternalSweep(tenant, rule.name, rule.days, rule.rule, rule.reason, rule.raised_from, removed, dry_run)
        if audit is not None and removed and not dry_run:
            audit(done)
        out.append(done)
    return out
