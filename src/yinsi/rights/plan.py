"""The execution plan of an erasure (删除/注销的执行计划): operations over the data map's locations.

``erasure_order`` (``yinsi.stores.plan``) orders the locations: Redis first, SQL children before parents,
manual steps last. This module turns the ordered groups into **operations**, the unit that is executed,
recorded as a step (``request_steps``) and read back:

- ``mark``: cancellation only, first of all: the subject's row gets its ``cancelled_marker`` (e.g.
  ``status = 'cancelled'``) so the app stops serving the account while the rest is erased;
- ``null``: one per table, every column the map sets to NULL at once (row stays);
- ``pseudonymise``: one per column location (row stays);
- ``hold_column``: a ``keep_legal_hold`` column of a table whose rows stay: the rows are captured into
  the legal-hold vault, then the column is cleared;
- ``delete``: one per table whose rows are deleted (every location of the table is then gone at once);
- ``hold``: one per table under a legal hold: its rows are captured into the encrypted vault (T3), then
  removed from the live table;
- ``redis`` / ``redis_hold``: one per Redis key pattern;
- ``manual``: one per manual step (a person performs and confirms it).

Each operation has a stable ``key`` (unique within a request, at most 200 characters), so a resumed run
finds the steps it already finished. Verification reads back every location of every operation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from yinsi.domain.datamap import EraseAction, Location, RowAction, StoreKind, Subject
from yinsi.stores.base import sql_erase_mode

OpAction = Literal["mark", "null", "pseudonymise", "hold_column", "delete", "hold", "redis", "redis_hold", "manual"]

ACTION_ZH: dict[str, str] = {
    "mark": "标记账号已注销", "null": "置空", "pseudonymise": "假名化", "hold_column": "法定保存后置空",
    "delete": "删除行", "hold": "移入法定保存库（隔离）后删除", "redis": "删除键", "redis_hold": "法定保存后删除键",
    "manual": "人工处理", "notify": "通知接收方删除（R13）",
}

KEY_LEN = 200


@dataclass(frozen=True)
class Operation:
    """One unit of an erasure plan (see the module docstring)."""

    key: str
    action: OpAction
    store: str
    locations: tuple[Location, ...]

    @property
    def first(self) -> Location:
        return self.locations[0]

    @property
    def holds(self) -> bool:
        return self.action in ("hold", "hold_column", "redis_hold")

    def describe(self) -> str:
        loc = self.first
        if loc.store_kind is StoreKind.SQL:
            cols = "、".join(str(x.column) for x in self.locations)
            where = f"{loc.table}.{cols}" if self.action in ("null", "pseudonymise", "hold_column") else loc.table
        elif loc.store_kind is StoreKind.REDIS:
            where = loc.key_pattern or ""
        else:
            where = loc.description or ""
        return f"{ACTION_ZH[self.action]}：{self.store} {where}"


def _key(text: str) -> str:
    if len(text) <= KEY_LEN:
        return text
    import hashlib

    return text[: KEY_LEN - 17] + "#" + hashlib.sha256(text.encode()).hexdigest()[:16]


def erasure_operations(groups: Sequence[Sequence[Location]], subject: Subject | None = None, *,
                       cancel: bool = False) -> list[Operation]:
    """The operations of an erasure over ``groups`` (from ``erasure_order``), in execution order.

    With ``cancel`` and a subject that declares a ``cancelled_marker``, a ``mark`` operation on the
    subject's own row comes first.
    """
    ops: list[Operation] = []
    if cancel and subject is not None and subject.cancelled_marker:
        anchor = next((loc for g in groups for loc in g if loc.store_kind is StoreKind.SQL
                       and loc.table == subject.table and loc.key_column == subject.key), None)
        if anchor is not None:
            ops.append(Operation(_key(f"{anchor.store}.{anchor.table}#mark@{anchor.subject}"), "mark", anchor.store,
                                 (anchor,)))
    for group in groups:
        first = group[0]
        if first.store_kind is StoreKind.REDIS:
            for loc in group:
                action: OpAction = "redis_hold" if loc.erase is EraseAction.KEEP_LEGAL_HOLD else "redis"
                ops.append(Operation(_key(loc.id), action, loc.store, (loc,)))
            continue
        if first.store_kind is StoreKind.MANUAL:
            step = first.id.split("/")[1]
            ops.append(Operation(_key(f"{first.store}/{step}@{first.subject}"), "manual", first.store, tuple(group)))
            continue
        deleting: list[Location] = []
        nulling: list[Location] = []
        for loc in group:
            mode = sql_erase_mode(loc)
            if mode == "delete":
                deleting.append(loc)
            elif loc.erase is EraseAction.KEEP_LEGAL_HOLD:
                ops.append(Operation(_key(loc.id + "#hold"), "hold_column", loc.store, (loc,)))
            elif mode == "null":
                nulling.append(loc)
            else:
                ops.append(Operation(_key(loc.id), "pseudonymise", loc.store, (loc,)))
        if nulling:  # one UPDATE for every column of the table that is set to NULL
            ops.append(Operation(_key(f"{first.store}.{first.table}#null@{first.subject}"), "null", first.store,
                                 tuple(nulling)))
        if deleting:
            held = any(loc.erase is EraseAction.KEEP_LEGAL_HOLD or loc.row_erase is RowAction.KEEP_LEGAL_HOLD
                       for loc in deleting)
            ops.append(Operation(_key(f"{first.store}.{first.table}#rows@{first.subject}"), "hold" if held else "delete",
                                 first.store, tuple(deleting)))
    keys = [op.key for op in ops]
    if len(set(keys)) != len(keys):  # a data-map bug would otherwise make two operations share one step
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"执行计划中有重复的步骤标识 {dup}")
    return ops


def layers(ops: Sequence[Operation], parents: Mapping[str, Mapping[str, set[str]]]) -> list[tuple[bool, list[Operation]]]:
    """The operations in layers, keeping the plan's order between layers: ``(concurrent, operations)``.

    ``parents`` is, per SQL store, table → the tables it references (``SqlConnector.dependencies``). SQL
    operations share a concurrent layer only if they are on the same store, on different tables, and
    neither table references the other (directly or transitively) or reaches the subject through the other
    (join path). Consecutive Redis operations of one store form a sequential layer (their order matters:
    a session key before the set that lists it). ``mark`` and manual operations are layers of their own.
    Since the plan is ordered children first, each layer can run at once and the layers one after another.
    """
    out: list[tuple[bool, list[Operation]]] = []
    current: list[Operation] = []
    concurrent = False

    def related(a: Operation, b: Operation) -> bool:
        if a.store != b.store or a.first.table == b.first.table:
            return True
        deps = parents.get(a.store, {})
        ta, tb = str(a.first.table), str(b.first.table)
        return tb in _reach_tables(a, deps) or ta in _reach_tables(b, deps)

    for op in ops:
        kind = op.first.store_kind
        sql = kind is StoreKind.SQL and op.action != "mark"
        redis = kind is StoreKind.REDIS
        if current and sql and concurrent and all(not related(op, other) for other in current):
            current.append(op)
            continue
        if current and redis and not concurrent and current[0].first.store_kind is StoreKind.REDIS \
                and current[0].store == op.store:
            current.append(op)
            continue
        if current:
            out.append((concurrent, current))
        current, concurrent = [op], sql
    if current:
        out.append((concurrent, current))
    return out


def _reach_tables(op: Operation, deps: Mapping[str, set[str]]) -> set[str]:
    """The tables ``op``'s table depends on: its foreign-key ancestors and the tables of its join paths."""
    seen: set[str] = set()
    todo = [str(op.first.table)]
    for loc in op.locations:
        for hop in loc.join:
            todo += [hop.from_table, hop.to_table]
    while todo:
        t = todo.pop()
        if t not in seen:
            seen.add(t)
            todo.extend(deps.get(t, ()))
    seen.discard(str(op.first.table))
    return seen


def locations_of(ops: Iterable[Operation]) -> list[Location]:
    """Every location the operations cover."""
    return [loc for op in ops for loc in op.locations]
