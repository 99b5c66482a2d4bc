"""``yinsi retention sweep``: delete (or anonymise) the rows past their period, table by table, in batches.

Each batch selects the primary keys of expired rows (the same WHERE as the plan) and deletes or anonymises
exactly those in its own transaction, so an interrupted sweep run again with the same ``now`` continues
with what is left and never touches a row twice: a deleted row is gone, an anonymised one no longer has PI
to clear. Rows a legal hold keeps are counted with the hold's reason and left alone. After each table the
expired rows are read back (none may remain) and one audit entry records the counts (no PI).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, MetaData, Table, and_, delete, false, func, inspect, not_, or_, select, tuple_, update

from yinsi.domain.datamap import DataMap, EraseAction
from yinsi.domain.policy import Declaration
from yinsi.domain.retention import TableRule, table_rules
from yinsi.retention.plan import _at, expired_clause
from yinsi.stores.base import store_url

BATCH = 200_000  # rows per transaction: large batches, few statements per table
Progress = Callable[[str, int], None]  # (store.table, rows done in this batch)


class SweepIncomplete(RuntimeError):
    """Expired rows were still there when read back."""


@dataclass(frozen=True)
class TableSweep:
    store: str
    table: str
    action: str
    removed: int  # deleted or anonymised in this run
    held: int
    hold_rule: str | None
    hold_basis: str | None
    remaining: int  # expired rows read back afterwards (0 unless dry run)
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _anonymise_columns(dm: DataMap, rule: TableRule) -> list[str]:
    """PI columns of the table cleared on anonymisation (not the time and hold date columns)."""
    store = dm.store(rule.store)
    table = store.tables[rule.table]  # type: ignore[union-attr]
    keep = {rule.time_column, rule.hold_column}
    return [n for n, c in table.columns.items()
            if c.item and n not in keep and c.erase is not EraseAction.KEEP_LEGAL_HOLD]


_REFLECTED: dict[tuple[str, str], tuple[float, Table]] = {}
REFLECT_TTL = 60.0  # seconds a reflected table is reused (a sweep of many tenants reflects each table once)


def _table(engine: Any, url: str, name: str) -> Table:
    """The table's columns and primary key (two catalog queries; indexes, foreign keys, constraints and
    comments, which full reflection also reads, are not needed), reused for ``REFLECT_TTL`` seconds."""
    key = (url, name)
    hit = _REFLECTED.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < REFLECT_TTL:
        return hit[1]
    with engine.connect() as conn:
        insp = inspect(conn)
        cols = insp.get_columns(name)
        pk = set(insp.get_pk_constraint(name).get("constrained_columns") or [])
    t = Table(name, MetaData(), *[Column(c["name"], c["type"], primary_key=c["name"] in pk,
                                         nullable=c.get("nullable", True)) for c in cols])
    _REFLECTED[key] = (now, t)
    return t


def _held_clause(t: Table, rule: TableRule, now: datetime) -> Any:
    """The rows past their period that a hold still keeps (for the count after the sweep)."""
    dated = t.c[rule.time_column]
    past = dated <= _at(dated, rule.cutoff(now))
    hold_cut = rule.hold_cutoff(now)
    if hold_cut is None:
        return false()
    if rule.hold_column is None:  # one index range: (hold cutoff, period cutoff]
        return and_(past, dated > _at(dated, hold_cut))
    return and_(past, not_(expired_clause(t, rule, now)))


def sweep_table(dm: DataMap, url: str, rule: TableRule, now: datetime, *, dry_run: bool = False,
                batch: int = BATCH, progress: Progress | None = None) -> TableSweep:
    from yinsi.stores.sql import _engine

    engine = _engine(url)
    t = _table(engine, url, rule.table)
    pk = list(t.primary_key.columns)
    if not pk:
        raise ValueError(f"表 {rule.table} 没有主键，无法分批清理")
    where = expired_clause(t, rule, now)
    columns = [c for c in _anonymise_columns(dm, rule) if t.c[c].nullable] if rule.action == "anonymise" else []
    if rule.action == "anonymise":
        where = and_(where, or_(*[t.c[c].is_not(None) for c in columns])) if columns else and_(where, false())
    name = f"{rule.store}.{rule.table}"
    if dry_run:
        with engine.connect() as conn:
            n_expired = conn.execute(select(func.count()).select_from(t).where(where)).scalar_one()
            held = conn.execute(select(func.count()).select_from(t).where(_held_clause(t, rule, now))).scalar_one()
        return TableSweep(rule.store, rule.table, rule.action, 0, held if rule.action == "delete" else 0,
                          rule.hold_rule, rule.hold_basis, n_expired, True)

    def change(conn: Any, match: Any) -> int:
        if rule.action == "delete":
            return int(conn.execute(delete(t).where(match)).rowcount or 0)
        return int(conn.execute(update(t).where(match).values({c: None for c in columns})).rowcount or 0)

    removed = 0
    key = pk[0]
    integer_key = len(pk) == 1 and _is_integer(key)
    if integer_key:
        # walk the primary key in ranges: one statement per batch, each a range scan of the key's index that
        # never revisits what an earlier batch removed (a LIMIT-ed subquery re-reads the dead rows every time)
        with engine.connect() as conn:
            lo, hi = conn.execute(select(select(func.min(key)).where(where).scalar_subquery(),
                                         select(func.max(key)).where(where).scalar_subquery())).one()
        step = batch
        while lo is not None and lo <= hi:
            upper = min(lo + step, hi + 1)
            with engine.begin() as conn:
                n = change(conn, and_(where, key >= lo, key < upper))
            removed += n
            if n and progress is not None:
                progress(name, n)
            lo = upper
            # sparse expired keys: widen the range (up to 16 batches of keys) so few statements find nothing
            step = min(step * 2, batch * 16) if n < batch // 2 else max(batch, step * batch // max(n, 1))
    while not integer_key:
        with engine.begin() as conn:
            keys = [tuple(r) for r in conn.execute(select(*pk).where(where).order_by(*pk).limit(batch))]
            if not keys:
                break
            n = change(conn, key.in_([k[0] for k in keys]) if len(pk) == 1 else tuple_(*pk).in_(keys))
        removed += len(keys)
        if progress is not None:
            progress(name, len(keys))
    with engine.connect() as conn:
        # read back: nothing past its period and not held may remain
        remaining = conn.execute(select(func.count()).select_from(
            select(key).where(where).limit(1).subquery())).scalar_one()
        held = conn.execute(select(func.count()).select_from(t).where(_held_clause(t, rule, now))).scalar_one() \
            if rule.action == "delete" else 0
    if remaining:
        raise SweepIncomplete(f"{name} 清理后仍有过期数据")
    return TableSweep(rule.store, rule.table, rule.action, removed, held, rule.hold_rule, rule.hold_basis, 0, False)


def _is_integer(column: Any) -> bool:
    try:
        return column.type.python_type is int
    except NotImplementedError:
        return False


def sweep(dm: DataMap, decl: Declaration | None, urls: Mapping[str, str], now: datetime, *,
          dry_run: bool = False, batch: int = BATCH, progress: Progress | None = None,
          audit: Callable[[TableSweep], None] | None = None) -> list[TableSweep]:
    """Sweep every SQL table of ``dm`` with a retention period; ``audit`` is called after each table."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    out = []
    for rule in table_rules(dm, decl):
        done = sweep_table(dm, store_url(dm, rule.store, urls), rule, now, dry_run=dry_run, batch=batch,
                           progress=progress)
        if audit is not None and not dry_run:
            audit(done)
        out.append(done)
    return out
