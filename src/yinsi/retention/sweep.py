"""``yinsi retention sweep``: delete (or anonymise) the rows past their period, table by table, in batches.

Each batch selects the primary keys of expired rows (the same WHERE as the plan) and deletes or anonymises
exactly those in its own transaction, so an interrupted sweep run again with the same ``now`` continues
with what is left and never touches a row twice: a deleted row is gone, an anonymised one no longer has PI
to clear. Rows a legal hold keeps are counted with the hold's reason and left alone. After each table the
expired rows are read back (none may remain) and one audit entry records the counts (no PI).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import MetaData, Table, and_, delete, false, func, or_, select, tuple_, update

from yinsi.domain.datamap import DataMap, EraseAction
from yinsi.domain.policy import Declaration
from yinsi.domain.retention import TableRule, table_rules
from yinsi.retention.plan import _at, expired_clause
from yinsi.stores.base import store_url

BATCH = 50_000
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


def sweep_table(dm: DataMap, url: str, rule: TableRule, now: datetime, *, dry_run: bool = False,
                batch: int = BATCH, progress: Progress | None = None) -> TableSweep:
    from yinsi.stores.sql import _engine

    engine = _engine(url)
    t = Table(rule.table, MetaData(), autoload_with=engine)
    pk = list(t.primary_key.columns)
    if not pk:
        raise ValueError(f"表 {rule.table} 没有主键，无法分批清理")
    where = expired_clause(t, rule, now)
    columns = [c for c in _anonymise_columns(dm, rule) if t.c[c].nullable] if rule.action == "anonymise" else []
    if rule.action == "anonymise":
        where = and_(where, or_(*[t.c[c].is_not(None) for c in columns])) if columns else and_(where, false())
    dated = t.c[rule.time_column]
    past = dated <= _at(dated, rule.cutoff(now))
    name = f"{rule.store}.{rule.table}"
    with engine.connect() as conn:
        n_expired = conn.execute(select(func.count()).select_from(t).where(where)).scalar_one()
    if dry_run:
        with engine.connect() as conn:
            n_past = conn.execute(select(func.count()).select_from(t).where(past)).scalar_one()
        held = n_past - n_expired if rule.action == "delete" else 0
        return TableSweep(rule.store, rule.table, rule.action, 0, held, rule.hold_rule, rule.hold_basis,
                          n_expired, True)
    removed = 0
    while rule.action == "delete" and len(pk) == 1 and n_expired:
        # one statement per batch: the database picks the keys and deletes them (no round trip of keys);
        # when all the expired rows fit in one batch, a plain DELETE … WHERE
        with engine.begin() as conn:
            if n_expired <= batch and not removed:
                stmt = delete(t).where(where)
            elif engine.dialect.name in ("mysql", "mariadb"):
                stmt = delete(t).where(where).with_dialect_options(mysql_limit=batch)
            else:
                stmt = delete(t).where(pk[0].in_(select(pk[0]).where(where).limit(batch).scalar_subquery()))
            n = conn.execute(stmt).rowcount
        if not n:
            break
        removed += n
        if progress is not None:
            progress(name, n)
    while not (rule.action == "delete" and len(pk) == 1):
        with engine.begin() as conn:
            keys = [tuple(r) for r in conn.execute(select(*pk).where(where).order_by(*pk).limit(batch))]
            if not keys:
                break
            match = pk[0].in_([k[0] for k in keys]) if len(pk) == 1 else tuple_(*pk).in_(keys)
            if rule.action == "delete":
                conn.execute(delete(t).where(match))
            else:
                conn.execute(update(t).where(match).values({c: None for c in columns}))
        removed += len(keys)
        if progress is not None:
            progress(name, len(keys))
    with engine.connect() as conn:
        remaining = conn.execute(select(func.count()).select_from(t).where(where)).scalar_one()
        # after the sweep, the rows still past their period are the ones a hold keeps
        held = conn.execute(select(func.count()).select_from(t).where(past)).scalar_one() if rule.action == "delete" else 0
    if remaining:
        raise SweepIncomplete(f"{name} 清理后仍有 {remaining} 行过期数据")
    return TableSweep(rule.store, rule.table, rule.action, removed, held, rule.hold_rule, rule.hold_basis, 0, False)


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
