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
    "manual": "人工处理", "notify": "通知接收方删除（R13）", "redact": "自由文本中遮盖本人标识（每一行）",
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
            ops.append(Operation(_key(first.manual_key), "manual", first.store, tuple(group)))
            continue
        by_reach: dict[str | None, list[Location]] = {}  # a table with several reaches: one set of ops each
        for loc in group:
            by_reach.setdefault(loc.reach_name, []).append(loc)
        for members in by_reach.values():
            ops.extend(_table_operations(members))
    keys = [op.key for op in ops]
    if len(set(keys)) != len(keys):  # a data-map bug would otherwise make two operations share one step
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"执行计划中有重复的步骤标识 {dup}")
    return ops


def _table_operations(group: Sequence[Location]) -> list[Operation]:
    """The operations of one reach of one table (columns set to NULL at once, rows deleted at once)."""
    ops: list[Operation] = []
    first = group[0]
    suffix = first.reach_suffix  # empty for a table with one reach: keys as before
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
        ops.append(Operation(_key(f"{first.store}.{first.table}#null@{first.subject}{suffix}"), "null", first.store,
                             tuple(nulling)))
    if deleting:
        held = any(loc.erase is EraseAction.KEEP_LEGAL_HOLD or loc.row_erase is RowAction.KEEP_LEGAL_HOLD
                   for loc in deleting)
        ops.append(Operation(_key(f"{first.store}.{first.table}#rows@{first.subject}{suffix}"),
                             "hold" if held else "delete", first.store, tuple(deleting)))
    return ops


def layers(ops: Sequence[Operation], parents: Mapping[str, Mapping[str, set[str]]]) -> list[tuple[bool, list[Operation]]]:
    """The operations in layers, keeping the plan's order between related operations:
    ``(concurrent, operations)``.

    ``parents`` is, per SQL store, table → the tables it references (``SqlConnector.dependencies``). Two SQL
    operations are *related* if they are on the same table, or one's table references the other's
    (directly or transitively) or reaches the subject through it (join path). A run of consecutive SQL
    operations of one store (``mark`` excepted) is layered topologically: an operation goes one layer after
    the last related operation before it in the plan (the first layer if there is none), so every layer
    holds unrelated operations that can run at once, and related ones keep the plan's order (children
    first). Consecutive Redis operations of one store form a sequential layer (their order matters: a
    session key before the set that lists it). ``mark`` and manual operations are layers of their own.

    Linear in the operations: each operation's reach (``_reach_tables``) is computed once, each table's
    foreign-key ancestors once, and the layer of an operation is found from per-table maxima, never by
    comparing pairs.
    """
    out: list[tuple[bool, list[Operation]]] = []
    k, n = 0, len(ops)
    while k < n:
        op = ops[k]
        j = k + 1
        if op.first.store_kind is StoreKind.SQL and op.action != "mark":
            while j < n and ops[j].store == op.store and ops[j].first.store_kind is StoreKind.SQL \
                    and ops[j].action != "mark":
                j += 1
            out.extend((True, layer) for layer in _sql_layers(ops[k:j], parents.get(op.store, {})))
        elif op.first.store_kind is StoreKind.REDIS:
            while j < n and ops[j].store == op.store and ops[j].first.store_kind is StoreKind.REDIS:
                j += 1
            out.append((False, list(ops[k:j])))
        else:
            out.append((False, [op]))
        k = j
    return out


def _sql_layers(ops: Sequence[Operation], deps: Mapping[str, set[str]]) -> list[list[Operation]]:
    """Topological layers of one store's SQL operations (see ``layers``): ``op`` goes one layer after the
    last earlier operation on its table, on a table it reaches, or reaching its table."""
    closure: dict[str, frozenset[str]] = {}  # table → itself and its foreign-key ancestors
    on_table: dict[str, int] = {}  # table → the highest layer of an operation on it so far
    reaching: dict[str, int] = {}  # table → the highest layer of an operation that reaches it so far
    out: list[list[Operation]] = []
    for op in ops:
        table = str(op.first.table)
        reach = _reach_tables(op, deps, closure)
        level = max(on_table.get(table, -1), reaching.get(table, -1),
                    max((on_table.get(t, -1) for t in reach), default=-1)) + 1
        if level == len(out):
            out.append([])
        out[level].append(op)
        on_table[table] = max(on_table.get(table, -1), level)
        for t in reach:
            reaching[t] = max(reaching.get(t, -1), level)
    return out


def _ancestors(table: str, deps: Mapping[str, set[str]], closure: dict[str, frozenset[str]]) -> frozenset[str]:
    """``table`` and every table it references, directly or transitively (memoised in ``closure``)."""
    hit = closure.get(table)
    if hit is None:
        seen = {table}
        todo = list(deps.get(table, ()))
        while todo:
            t = todo.pop()
            if t not in seen:
                seen.add(t)
                known = closure.get(t)
                if known is not None:  # already closed: take it whole
                    seen |= known
                else:
                    todo.extend(deps.get(t, ()))
        hit = closure[table] = frozenset(seen)
    return hit


def _reach_tables(op: Operation, deps: Mapping[str, set[str]],
                  closure: dict[str, frozenset[str]] | None = None) -> set[str]:
    """The tables ``op``'s table depends on: its foreign-key ancestors and the tables of its join paths
    (with theirs). ``closure`` memoises each table's ancestors across the operations of one plan."""
    memo: dict[str, frozenset[str]] = {} if closure is None else closure
    table = str(op.first.table)
    seen = set(_ancestors(table, deps, memo))
    for loc in op.locations:
        for hop in loc.join:
            for t in (hop.from_table, hop.to_table):
                if t not in seen:
                    seen |= _ancestors(t, deps, memo)
    seen.discard(table)
    return seen


def locations_of(ops: Iterable[Operation]) -> list[Location]:
    """Every location the operations cover."""
    return [loc for op in ops for loc in op.locations]
