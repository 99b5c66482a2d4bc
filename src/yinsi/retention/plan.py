"""``yinsi retention plan``: per store and table, how many rows are past their period now, how many a legal
hold keeps (and why), how many are still within it, and when the next ones expire.

The counts are read through each SQL store's address (``yinsi.stores.base.store_url``) with the same
cutoffs the pure planner defines (``yinsi.domain.retention``). Naive date columns are read as Beijing time
(as the demo app and many Chinese apps store them); ``now`` is always passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Column, MetaData, Table, and_, func, not_, or_, select

from yinsi.domain.datamap import DataMap
from yinsi.domain.policy import Declaration
from yinsi.domain.retention import TableRule, table_rules
from yinsi.stores.base import store_url

BEIJING = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class TablePlan:
    store: str
    table: str
    time_column: str
    max_days: int
    action: str
    total: int
    expired: int  # past the period and not held: the sweep removes them
    held: int  # past the period but kept by a legal hold
    within: int
    next_expiry: str | None  # ISO time (Beijing) at which the next kept row becomes due
    hold_days: int | None
    hold_rule: str | None
    hold_basis: str | None
    why: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _at(column: Column[Any], when: datetime) -> datetime:
    """``when`` in the column's own terms: aware for timezone columns, naive Beijing time otherwise."""
    if getattr(column.type, "timezone", False):
        return when
    return when.astimezone(BEIJING).replace(tzinfo=None)


def expired_clause(t: Table, rule: TableRule, now: datetime) -> Any:
    """The WHERE of the rows past their period and not held (the sweep deletes exactly these)."""
    dated = t.c[rule.time_column]
    past = dated <= _at(dated, rule.cutoff(now))
    hold_cut = rule.hold_cutoff(now)
    if hold_cut is None:
        return past
    held_col = t.c[rule.hold_column] if rule.hold_column else dated
    # a NULL hold date counts from the row's retention date
    hold_over = or_(and_(held_col.is_(None), dated <= _at(dated, hold_cut)), held_col <= _at(held_col, hold_cut))
    return and_(past, hold_over)


def plan_table(url: str, rule: TableRule, now: datetime) -> TablePlan:
    from yinsi.stores.sql import _engine

    engine = _engine(url)
    t = Table(rule.table, MetaData(), autoload_with=engine)
    dated = t.c[rule.time_column]
    past = dated <= _at(dated, rule.cutoff(now))
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(t)).scalar_one()
        n_past = conn.execute(select(func.count()).select_from(t).where(past)).scalar_one()
        expired = conn.execute(select(func.count()).select_from(t).where(expired_clause(t, rule, now))).scalar_one()
        oldest = conn.execute(select(func.min(dated)).where(not_(past))).scalar_one()
    nxt = None
    if oldest is not None:
        due = oldest + timedelta(days=rule.max_days)
        nxt = (due if due.tzinfo else due.replace(tzinfo=BEIJING)).isoformat()
    return TablePlan(rule.store, rule.table, rule.time_column, rule.max_days, rule.action, total, expired,
                     n_past - expired, total - n_past, nxt, rule.hold_days, rule.hold_rule, rule.hold_basis, rule.why)


def retention_plan(dm: DataMap, decl: Declaration | None, urls: Mapping[str, str], now: datetime) -> list[TablePlan]:
    """The plan of every SQL table with a retention period in ``dm`` (tenant-scoped: the map is one tenant's)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return [plan_table(store_url(dm, r.store, urls), r, now) for r in table_rules(dm, decl)]
