"""The legal-hold vault (法定保存库, T2, T3): rows a law requires to be kept are captured at erasure into
``legal_holds``, encrypted with the tenant's key, with their basis and the day the hold ends, and removed
from the app; only Yinsi holds them, restricted, until the retention sweep deletes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from yinsi.audit import AuditAction
from yinsi.rights.context import BEIJING, Job, RightsContext, dumps
from yinsi.rights.plan import Operation
from yinsi.storage.rights_tables import HOLD_FIELD, LegalHoldRecord


@dataclass(frozen=True)
class HoldView:
    """One row in the legal-hold vault (metadata only)."""

    id: int
    request_id: str
    location: str
    source_key: str
    basis: str
    hold_until: date


def hold(ctx: RightsContext, job: Job, op: Operation, rows: Sequence[Any]) -> int:
    """Move held rows into the encrypted legal-hold vault (T3) before they leave the live store;
    idempotent per row. Returns how many rows the vault holds for this operation.

    With the hold's ``date_column`` each row is held until *its* date + the period: a row past that is not
    kept (its deletion goes ahead), and for a column-level hold only the column and the date are kept.
    Without it, or for a row without a date, the period counts from today (never shorter than the law)."""
    loc = op.first
    legal = loc.legal_hold
    days = legal.min_days if legal is not None and legal.min_days else 3 * 365
    today = ctx.clock().astimezone(BEIJING).date()
    dated = legal.date_column if legal is not None else None
    basis = (legal.basis if legal is not None and legal.basis else "法律法规要求保存")[:500]
    cipher = ctx.cipher(job.tenant)
    with ctx.tx() as s:
        have = set(s.scalars(select(LegalHoldRecord.source_key).where(
            LegalHoldRecord.tenant_id == job.tenant, LegalHoldRecord.request_id == job.request_id,
            LegalHoldRecord.location_id == op.key)))
        for r in rows:
            if r.key in have:
                continue
            if op.action == "hold_column" and r.values.get(str(loc.column)) is None:
                continue  # a whole-row read (for the date): rows without a value hold nothing
            since = row_date(r.values.get(dated)) if dated else None
            until = (since or today) + timedelta(days=days)
            if until < today:
                continue  # the hold of this row has ended: nothing to keep
            values = r.values
            if dated and op.action == "hold_column":
                values = {k: v for k, v in r.values.items() if k in {str(loc.column), dated}}
            s.add(LegalHoldRecord(
                tenant_id=job.tenant, request_id=job.request_id, location_id=op.key, source_key=r.key[:500],
                basis=basis, payload_encrypted=cipher.encrypt_text(HOLD_FIELD, dumps(values)),
                hold_until=until, created_at=ctx.clock()))
            have.add(r.key)
    return len(have)


def row_date(value: Any) -> date | None:
    """A row's date column as a day (Beijing, for an aware time; a naive time as stored); None if empty."""
    if isinstance(value, datetime):
        return (value.astimezone(BEIJING) if value.tzinfo is not None else value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def hold_count(ctx: RightsContext, job: Job) -> int:
    """How many rows the vault holds for the request."""
    with ctx.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(LegalHoldRecord).where(
            LegalHoldRecord.tenant_id == job.tenant, LegalHoldRecord.request_id == job.request_id)) or 0)


def holds(ctx: RightsContext, tenant: str, request_id: str | None = None) -> list[HoldView]:
    """The legal-hold vault's rows of the tenant (metadata only; payloads stay encrypted)."""
    with ctx.sessions() as s:
        q = select(LegalHoldRecord).where(LegalHoldRecord.tenant_id == tenant)
        if request_id is not None:
            q = q.where(LegalHoldRecord.request_id == ctx.get(s, tenant, request_id).id)
        return [HoldView(h.id, h.request_id, h.location_id, h.source_key, h.basis, h.hold_until)
                for h in s.scalars(q.order_by(LegalHoldRecord.id))]


def release_holds(ctx: RightsContext, tenant: str, today: date | None = None) -> int:
    """The retention sweep of the vault: delete the rows whose hold ended before ``today`` (T1), audited."""
    day = today or ctx.clock().astimezone(BEIJING).date()
    with ctx.tx() as s:
        res = s.execute(delete(LegalHoldRecord).where(LegalHoldRecord.tenant_id == tenant,
                                                      LegalHoldRecord.hold_until < day)
                        .execution_options(synchronize_session=False))
        n = getattr(res, "rowcount", 0)
        ctx.audit.record_in(s, tenant, "retention-sweep", AuditAction.RIGHTS_REQUEST_STEP,
                            details={"legal_holds_released": int(n or 0), "before": day.isoformat()})
    return int(n or 0)
