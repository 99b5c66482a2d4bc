"""The SQL connector: SQLite, PostgreSQL and MariaDB through SQLAlchemy Core.

Tables are reflected from the live database (``MetaData.reflect(only=...)``: the store's mapped tables,
plus the tables their foreign keys reference), and every statement is built with SQLAlchemy Core, so
subject values are always bound parameters, never formatted into SQL.

Rows reach a subject through the location's ``key_column`` (``table.key_column = :subject``) or its
``join`` hops, which become nested ``IN (SELECT ...)`` subqueries:
``invoices.order_id IN (SELECT orders.id FROM orders WHERE orders.agent_id = :subject)``.

Each ``erase`` is one transaction. Children before parents is the plan's job (``yinsi.stores.plan``):
this connector exposes the reflected foreign keys (``dependencies``) for it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy import (
    ColumnElement,
    Engine,
    MetaData,
    String,
    Table,
    and_,
    cast,
    delete,
    false,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.exc import InvalidRequestError, NoSuchTableError

from yinsi.domain.datamap import DataMap, EraseAction, Hop, Location, SqlStore, StoreKind, Subject
from yinsi.stores.base import PSEUDONYM_PREFIX, EraseResult, Row, StoreUnavailable, sql_erase_mode

#: Reflected schemas are reused for this many seconds (per URL and table set): a request does not pay for
#: reflection, and a schema change is seen within a minute.
REFLECT_TTL = 60.0

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_schemas: dict[tuple[str, tuple[str, ...]], tuple[float, MetaData]] = {}


def _engine(url: str) -> Engine:
    """One engine (and connection pool) per URL for the life of the process."""
    from yinsi.storage.engine import make_engine

    with _lock:
        engine = _engines.get(url)
        if engine is None:
            # No pre-ping: a rights request checks connections out dozens of times, and a ping each time
            # doubles its round trips. A connection the server dropped fails the step loudly (the request
            # goes to "error", retryable) and the pool replaces it; recycling keeps idle ones fresh.
            engine = _engines[url] = make_engine(url, pool_pre_ping=False, pool_recycle=300)
        return engine


def dispose_engines() -> None:
    """Close every cached engine and forget reflected schemas (tests, or after a schema migration)."""
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
        _schemas.clear()
    for engine in engines:
        engine.dispose()


class _NoMatch:
    """A subject value that cannot equal any value of the column (e.g. ``"abc"`` for an integer key)."""


_NO_MATCH = _NoMatch()


def _coerce(column: Any, value: str) -> Any:
    """The subject value in the column's Python type (an integer key compared with an ``int``)."""
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return value
    try:
        if python_type is int:
            return int(value)
        if python_type is Decimal:
            return Decimal(value)
        if python_type is float:
            return float(value)
    except (ValueError, ArithmeticError):
        return _NO_MATCH
    return value


def _is_text(column: Any) -> bool:
    try:
        return column.type.python_type is str
    except NotImplementedError:
        return False


class SqlConnector:
    """Reads, erases, verifies and corrects one SQL store's PI (see ``yinsi.stores.base``)."""

    kind = StoreKind.SQL

    def __init__(self, datamap: DataMap, store: SqlStore, url: str, *,
                 pseudonymise: Callable[[str], str],
                 resolver: Callable[[str, str], dict[str, str]] | None = None) -> None:
        self.datamap = datamap
        self.store = store
        self.url = url
        self.pseudonymise = pseudonymise
        self.resolver = resolver
        self.engine = _engine(url)
        self._metadata: MetaData | None = None
        self._attributes: dict[tuple[str, str], dict[str, str]] = {}
        self._pinned: dict[str, tuple[str, ...]] = {}

    # --- plan-time snapshots -------------------------------------------------------------------------
    def bind(self, attributes: dict[str, str], subject_value: str, kind: str | None = None) -> None:
        """Use these attributes (read at plan time, before anything was erased) for ``match`` reaches: after
        the subject's phone is cleared, rows whose ``visitor_phone`` held it are still found."""
        for subject in ([kind] if kind else [s.id for s in self.datamap.subjects]):
            self._attributes[(subject, subject_value)] = dict(attributes)

    def pin(self, pinned: dict[str, list[str]]) -> None:
        """Rows found at plan time (``reach_id`` → ``Row.key``s): an erasure and its read-back look at them
        as well as at the rows the reach finds now, so a row whose reaching column was itself erased (a
        matched phone, a self-reference) is still checked."""
        self._pinned.update({k: tuple(v) for k, v in pinned.items()})

    @staticmethod
    def reach_id(loc: Location) -> str:
        """The identity of a location's reach: ``table@subject`` (``#name`` when the table has several)."""
        return f"{loc.table}@{loc.subject}{loc.reach_suffix}"

    def reaching_keys(self, loc: Location, subject_value: str) -> list[str]:
        """The ``Row.key`` of every row reaching the subject at ``loc``'s reach (not counting pinned rows)."""
        t, _ = self._target(loc)
        pk = self._pk(t)
        if not pk:
            return []
        with self.engine.connect() as conn:
            found = conn.execute(select(*pk).where(self._reach(loc, subject_value, pinned=False))
                                 .order_by(*pk)).mappings().all()
        return [self._row_key(t, m) for m in found]

    def shared_split(self, loc: Location, subject_value: str) -> tuple[list[str], list[str]]:
        """For a shared table (``shared_via``): the rows reaching the subject that nobody else links to
        (erased with the table's action) and those another subject still links to (kept)."""
        t, _ = self._target(loc)
        pk = self._pk(t)
        if not pk:
            return [], []
        reach = self._reach(loc, subject_value, pinned=False, shared=False)
        with self.engine.connect() as conn:
            every = conn.execute(select(*pk).where(reach).order_by(*pk)).mappings().all()
            sole = {self._row_key(t, m) for m in conn.execute(
                select(*pk).where(reach, self._not_shared(loc, subject_value))).mappings().all()}
        keys = [self._row_key(t, m) for m in every]
        return [k for k in keys if k in sole], [k for k in keys if k not in sole]

    def _attribute(self, loc: Location, subject_value: str, name: str) -> str | None:
        attrs = self._attributes.get((loc.subject, subject_value))
        if attrs is None:
            if self.resolver is None:
                from yinsi.stores.base import AttributesUnavailable

                raise AttributesUnavailable(f"位置 {loc.id} 按主体属性匹配，但没有读取主体属性的途径")
            attrs = self._attributes[(loc.subject, subject_value)] = self.resolver(loc.subject, subject_value)
        return attrs.get(name)

    # --- schema --------------------------------------------------------------------------------------
    @property
    def metadata(self) -> MetaData:
        """The reflected schema of the store's mapped tables (once per connector; shared for a minute)."""
        if self._metadata is None:
            names = tuple(sorted(self.store.tables))
            key = (self.url, names)
            now = time.monotonic()
            with _lock:
                hit = _schemas.get(key)
            if hit is not None and now - hit[0] < REFLECT_TTL:
                self._metadata = hit[1]
            else:
                meta = MetaData()
                try:
                    meta.reflect(self.engine, only=list(names))
                except (InvalidRequestError, NoSuchTableError) as exc:
                    raise StoreUnavailable(f"SQL 存储 {self.store.id} 的数据库结构与数据地图不一致：{exc}") from None
                with _lock:
                    _schemas[key] = (now, meta)
                self._metadata = meta
        return self._metadata

    def table(self, name: str) -> Table:
        try:
            return self.metadata.tables[name]
        except KeyError:
            raise StoreUnavailable(f"SQL 存储 {self.store.id} 中没有表 {name}") from None

    def dependencies(self) -> dict[str, set[str]]:
        """Reflected foreign keys: table → the tables it references (its parents), self-references left out."""
        out: dict[str, set[str]] = {}
        for t in self.metadata.sorted_tables:
            out[t.name] = {fk.column.table.name for fk in t.foreign_keys if fk.column.table.name != t.name}
        return out

    def dependency_order(self) -> list[str]:
        """Table names, parents first (``MetaData.sorted_tables``); delete in reverse."""
        return [t.name for t in self.metadata.sorted_tables]

    # --- finding a subject's rows --------------------------------------------------------------------
    def _reach(self, loc: Location, subject_value: str, *, pinned: bool = True,
               shared: bool = True) -> ColumnElement[bool]:
        """The condition selecting the rows of ``loc.table`` that reach the subject: the reach itself, or
        a row pinned at plan time; in a shared table, never a row another subject still links to."""
        cond = self._reach_only(loc, subject_value)
        keys = self._pinned.get(self.reach_id(loc)) if pinned else None
        if keys:
            cond = or_(cond, self._where_row_keys(self.table(str(loc.table)), keys))
        if shared and loc.shared_via:
            cond = and_(cond, self._not_shared(loc, subject_value))
        return cond

    def _not_shared(self, loc: Location, subject_value: str) -> ColumnElement[bool]:
        """Rows of a shared table that no link row of another subject points at. The reach's first hop
        joins the table to its link table; the rest of the path says which link rows are the subject's."""
        first = loc.join[0]
        link = self.table(first.to_table)
        others = select(link.c[first.to_column]).where(link.c[first.to_column].is_not(None),
                                                       not_(self._hop(loc.join, 1, subject_value, first.to_table)))
        if self.engine.dialect.name in ("mysql", "mariadb"):
            inner = others.subquery()
            others = select(inner.c[0])
        return not_(self.table(first.from_table).c[first.from_column].in_(others))

    def _reach_only(self, loc: Location, subject_value: str) -> ColumnElement[bool]:
        if loc.table is None:
            raise ValueError(f"位置 {loc.id} 不是 SQL 位置")
        t = self.table(loc.table)
        if loc.match:
            conds = []
            for column, attribute in loc.match:
                raw = self._attribute(loc, subject_value, attribute)
                value = _NO_MATCH if raw is None or raw == "" else _coerce(t.c[column], raw)
                conds.append(false() if value is _NO_MATCH else t.c[column] == value)
            return and_(*conds)
        if loc.key_column:
            col = t.c[loc.key_column]
            value = _coerce(col, subject_value)
            return false() if value is _NO_MATCH else col == value
        if not loc.join:
            raise ValueError(f"位置 {loc.id} 既没有关联列也没有关联路径")
        return self._hop(loc.join, 0, subject_value, loc.table)

    def _hop(self, hops: Sequence[Hop], k: int, subject_value: str, target: str) -> ColumnElement[bool]:
        hop = hops[k]
        col = self.table(hop.from_table).c[hop.from_column]
        if k == len(hops) - 1:  # the last hop's from_column holds the subject id
            value = _coerce(col, subject_value)
            return false() if value is _NO_MATCH else col == value
        dst = self.table(hop.to_table)
        sub = select(dst.c[hop.to_column]).where(self._hop(hops, k + 1, subject_value, target))
        if hop.to_table == target and self.engine.dialect.name in ("mysql", "mariadb"):
            # MariaDB refuses UPDATE/DELETE whose subquery reads the target table: materialise it first.
            inner = sub.subquery()
            sub = select(inner.c[0])
        return col.in_(sub)

    def _pk(self, t: Table) -> list[Any]:
        return list(t.primary_key.columns)

    def _row_key(self, t: Table, mapping: Any) -> str:
        pk = self._pk(t)
        if pk:
            return f"{t.name}:" + ",".join(f"{c.name}={quote(str(mapping[c.name]), safe='')}" for c in pk)
        digest = hashlib.sha256(repr(tuple(mapping[c.name] for c in t.columns)).encode()).hexdigest()[:16]
        return f"{t.name}:row={digest}"

    def _rows(self, t: Table, column: str, where: Sequence[ColumnElement[bool]], whole: bool) -> list[Row]:
        pk = self._pk(t)
        stmt = select(t) if whole or not pk else select(*pk, t.c[column])
        stmt = stmt.where(*where).order_by(*pk)
        with self.engine.connect() as conn:
            result = conn.execute(stmt).mappings().all()
        if whole:
            return [Row(self._row_key(t, m), {c.name: m[c.name] for c in t.columns}) for m in result]
        return [Row(self._row_key(t, m), {column: m[column]}) for m in result]

    def _where_row_key(self, t: Table, row_key: str) -> ColumnElement[bool]:
        """The condition selecting the one row named by a ``Row.key`` of this table (by primary key)."""
        name, _, rest = row_key.partition(":")
        pk = {c.name: c for c in self._pk(t)}
        if name != t.name or not pk or not rest:
            raise ValueError(f"行标识 {row_key!r} 不属于表 {t.name}（或该表没有主键）")
        parts = dict(p.split("=", 1) for p in rest.split(","))
        if set(parts) != set(pk):
            raise ValueError(f"行标识 {row_key!r} 与表 {t.name} 的主键不符")
        conds = []
        for cname, raw in parts.items():
            value = _coerce(pk[cname], unquote(raw))
            conds.append(false() if value is _NO_MATCH else pk[cname] == value)
        return and_(*conds)

    def _where_row_keys(self, t: Table, row_keys: Sequence[str]) -> ColumnElement[bool]:
        """The rows named by several ``Row.key``s of this table (one ``IN`` for a one-column key)."""
        pk = self._pk(t)
        if len(pk) == 1:
            values = []
            for row_key in row_keys:
                _, _, rest = row_key.partition(":")
                value = _coerce(pk[0], unquote(rest.split("=", 1)[1])) if "=" in rest else _NO_MATCH
                if value is not _NO_MATCH:
                    values.append(value)
            return pk[0].in_(values) if values else false()
        return or_(*(self._where_row_key(t, k) for k in row_keys)) if row_keys else false()

    # --- the connector interface ---------------------------------------------------------------------
    def read(self, loc: Location, subject_value: str, *, whole: bool = False, shared: bool = True) -> list[Row]:
        """The location's values for the subject, one ``Row`` per row holding a value (NULL is no value).
        ``whole=True``: every row reaching the subject with all its columns (legal-hold capture).
        ``shared=False``: not the rows of a shared table another subject still links to (what erasure
        touches); a copy reads them too."""
        t, col = self._target(loc)
        where = [self._reach(loc, subject_value, shared=not shared)]
        if not whole:
            where.append(col.is_not(None))
        return self._rows(t, col.name, where, whole)

    def erase(self, loc: Location, subject_value: str) -> EraseResult:
        """Apply the location's erase action (``sql_erase_mode``) in one transaction; idempotent."""
        t, col = self._target(loc)
        mode = sql_erase_mode(loc)
        reach = self._reach(loc, subject_value)
        with self.engine.begin() as conn:
            if mode == "delete":
                n = conn.execute(delete(t).where(reach)).rowcount
                if not n:
                    return EraseResult(0, "已无数据")
                held = loc.erase is EraseAction.KEEP_LEGAL_HOLD
                return EraseResult(n, f"移出业务表 {n} 行（法定保存）" if held else f"删除 {n} 行")
            if mode == "null":
                n = conn.execute(update(t).where(reach, col.is_not(None)).values({col.name: None})).rowcount
                return EraseResult(n, f"置空 {n} 行" if n else "已无数据")
            values = conn.execute(select(col).distinct().where(reach, *self._not_pseudonym(col))).scalars().all()
            n = 0
            for old in values:
                new = self.pseudonymise(str(old))
                if not isinstance(new, str) or not new.startswith(PSEUDONYM_PREFIX):
                    raise ValueError(f"假名化函数返回的值不以 {PSEUDONYM_PREFIX} 开头，无法保证幂等：{loc.id}")
                n += conn.execute(update(t).where(reach, col == old).values({col.name: new})).rowcount
            return EraseResult(n, f"假名化 {n} 行" if n else "已无数据")

    def erase_captured(self, loc: Location, subject_value: str, capture: Callable[[list[Row]], None]) -> EraseResult:
        """Delete the rows reaching the subject at ``loc``'s table, handing them (all columns) to ``capture``
        *before* the deletion commits: ``capture`` stores them elsewhere (the legal-hold vault) and commits
        there; if it raises, the deletion rolls back. So a crash at any point leaves the rows either still
        here or safely captured (a repeated capture must skip rows it already holds). One statement
        (``DELETE … RETURNING``) where the database supports it, else a locking read and a delete in one
        transaction."""
        if sql_erase_mode(loc) != "delete":
            raise ValueError(f"位置 {loc.id} 不是按行删除的位置")
        t, _ = self._target(loc)
        reach = self._reach(loc, subject_value)
        if self.engine.dialect.name == "sqlite":
            # SQLite locks the whole file: a deletion held open while ``capture`` writes (perhaps to the same
            # file) would wait for itself. Capture first, then delete: the same order, two transactions.
            rows = self.read(loc, subject_value, whole=True, shared=False)
            if rows:
                capture(rows)
            with self.engine.begin() as conn:
                n = conn.execute(delete(t).where(reach)).rowcount
            return EraseResult(n, f"移出业务表 {n} 行（法定保存）" if n else "已无数据")
        with self.engine.begin() as conn:
            if conn.dialect.delete_returning:
                found = conn.execute(delete(t).where(reach).returning(*t.c)).mappings().all()
            else:
                found = conn.execute(select(t).where(reach).with_for_update()).mappings().all()
                if found:
                    conn.execute(delete(t).where(reach))
            rows = [Row(self._row_key(t, m), {c.name: m[c.name] for c in t.columns}) for m in found]
            if rows:
                capture(rows)
        n = len(rows)
        return EraseResult(n, f"移出业务表 {n} 行（法定保存）" if n else "已无数据")

    def null_columns(self, locs: Sequence[Location], subject_value: str) -> EraseResult:
        """Set several ``null`` columns of one table to NULL in one statement (rows reaching the subject
        where any of them is not NULL); idempotent. Every location must be a ``null`` location of the
        same table and reach."""
        first = locs[0]
        t, _ = self._target(first)
        cols = []
        for loc in locs:
            if loc.table != first.table or sql_erase_mode(loc) != "null" or (loc.key_column, loc.join) != (
                    first.key_column, first.join):
                raise ValueError(f"位置 {loc.id} 不能与 {first.id} 一起置空")
            cols.append(self._target(loc)[1])
        with self.engine.begin() as conn:
            n = conn.execute(update(t).where(self._reach(first, subject_value), or_(*(c.is_not(None) for c in cols)))
                             .values({c.name: None for c in cols})).rowcount
        return EraseResult(n, f"置空 {n} 行（{len(cols)} 列）" if n else "已无数据")

    def remaining_null(self, locs: Sequence[Location], subject_value: str) -> list[Row]:
        """The read-back of several ``null`` columns of one table in one query: the reaching rows where any
        of them still holds a value, with those columns (``Row.values``: column → value)."""
        first = locs[0]
        t, _ = self._target(first)
        cols = [self._target(loc)[1] for loc in locs]
        pk = self._pk(t)
        stmt = select(*pk, *cols).where(self._reach(first, subject_value), or_(*(c.is_not(None) for c in cols)))
        with self.engine.connect() as conn:
            found = conn.execute(stmt.order_by(*pk)).mappings().all()
        return [Row(self._row_key(t, m), {c.name: m[c.name] for c in cols if m[c.name] is not None}) for m in found]

    def remaining(self, loc: Location, subject_value: str) -> list[Row]:
        """What is still there after erasure: rows still reaching the subject (delete, legal hold), rows
        whose column is not NULL (null), rows whose value is not a pseudonym (pseudonymise)."""
        t, col = self._target(loc)
        mode = sql_erase_mode(loc)
        where = [self._reach(loc, subject_value)]
        if mode == "null":
            where.append(col.is_not(None))
        elif mode == "pseudonymise":
            where.extend(self._not_pseudonym(col))
        return self._rows(t, col.name, where, whole=False)

    def anything_left(self, checks: Sequence[Sequence[Location]], subject_value: str) -> list[bool]:
        """The read-back of many places at once: for each check, whether anything is still there, in one
        round trip per 100 checks (``SELECT EXISTS (…), EXISTS (…), …``). A check is one location (what
        ``remaining`` looks for) or several ``null`` columns of one table (what ``remaining_null`` looks for)."""
        from sqlalchemy import literal

        tests = []
        for locs in checks:
            loc = locs[0]
            t, col = self._target(loc)
            where = [self._reach(loc, subject_value)]
            if len(locs) > 1:
                where.append(or_(*(self._target(x)[1].is_not(None) for x in locs)))
            elif sql_erase_mode(loc) == "null":
                where.append(col.is_not(None))
            elif sql_erase_mode(loc) == "pseudonymise":
                where.extend(self._not_pseudonym(col))
            tests.append(select(literal(1)).select_from(t).where(*where).exists())
        out: list[bool] = []
        with self.engine.connect() as conn:
            for k in range(0, len(tests), 100):
                chunk = tests[k:k + 100]
                row = conn.execute(select(*(test.label(f"c{n}") for n, test in enumerate(chunk)))).one()
                out.extend(bool(value) for value in row)
        return out

    def correct(self, loc: Location, subject_value: str, new_value: Any, *, row_key: str | None = None,
                only_null: bool = False) -> int:
        """Set the location's column to ``new_value`` in the rows reaching the subject (only the row named
        by ``row_key``, a ``Row.key`` from ``read``, when given; only rows where it is NULL with
        ``only_null``: a supplement, 补充). Returns the rows updated."""
        t, col = self._target(loc)
        where = [self._reach(loc, subject_value)]
        if row_key is not None:
            where.append(self._where_row_key(t, row_key))
        if only_null:
            where.append(col.is_(None))
        with self.engine.begin() as conn:
            return int(conn.execute(update(t).where(*where).values({col.name: new_value})).rowcount)

    def mark(self, loc: Location, subject_value: str, values: dict[str, Any]) -> int:
        """Write ``values`` (non-PI columns, e.g. ``{"status": "cancelled"}``) into the rows reaching the
        subject at ``loc``'s table: the account is marked cancelled before its PI is erased. Idempotent."""
        if loc.table is None:
            raise ValueError(f"位置 {loc.id} 不是 SQL 位置")
        t = self.table(loc.table)
        missing = [c for c in values if c not in t.c]
        if missing:
            raise StoreUnavailable(f"表 {loc.table} 中没有列 {'、'.join(missing)}（数据地图与数据库结构不一致）")
        with self.engine.begin() as conn:
            return int(conn.execute(update(t).where(self._reach(loc, subject_value)).values(values)).rowcount)

    # --- subjects ------------------------------------------------------------------------------------
    def subject_attributes(self, subject: Subject, subject_value: str) -> dict[str, str]:
        """The subject's attribute columns (placeholder → value as text); NULL attributes left out."""
        if not subject.attributes:
            return {}
        t = self.table(subject.table)
        key = t.c[subject.key]
        value = _coerce(key, subject_value)
        if value is _NO_MATCH:
            return {}
        cols = [t.c[c].label(name) for name, c in subject.attributes.items()]
        with self.engine.connect() as conn:
            row = conn.execute(select(*cols).where(key == value).limit(1)).mappings().first()
        if row is None:
            return {}
        return {name: str(row[name]) for name in subject.attributes if row[name] is not None}

    def subjects_with(self, subject: Subject, attribute: str, values: Sequence[str], *, limit: int = 2) -> list[str]:
        """The keys (as text) of at most ``limit`` subjects whose ``attribute`` column equals one of
        ``values`` (the reverse of ``subject_attributes``: who has this phone number on record)."""
        column = subject.attributes.get(attribute)
        if column is None or not values:
            return []
        t = self.table(subject.table)
        key, col = t.c[subject.key], t.c[column]
        wanted = [v for v in (_coerce(col, value) for value in dict.fromkeys(values)) if v is not _NO_MATCH]
        if not wanted:
            return []
        with self.engine.connect() as conn:
            found = conn.execute(select(key).where(col.in_(wanted)).distinct().limit(limit)).scalars().all()
        return [str(k) for k in found]

    def close(self) -> None:
        """Nothing to release: engines are shared per URL (``dispose_engines`` closes them)."""

    # --- helpers -------------------------------------------------------------------------------------
    def _target(self, loc: Location) -> tuple[Table, Any]:
        if loc.store_kind is not StoreKind.SQL or loc.table is None or loc.column is None:
            raise ValueError(f"位置 {loc.id} 不是 SQL 列位置")
        if loc.store != self.store.id:
            raise ValueError(f"位置 {loc.id} 属于存储 {loc.store}，不是 {self.store.id}")
        t = self.table(loc.table)
        if loc.column not in t.c:
            raise StoreUnavailable(f"表 {loc.table} 中没有列 {loc.column}（数据地图与数据库结构不一致）")
        return t, t.c[loc.column]

    @staticmethod
    def _not_pseudonym(col: Any) -> list[ColumnElement[bool]]:
        text = col if _is_text(col) else cast(col, String)
        return [col.is_not(None), not_(text.startswith(PSEUDONYM_PREFIX, autoescape=True))]
