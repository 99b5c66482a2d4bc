"""The free-text index (自由文本索引): which rows of the data map's free-text columns mention which identifiers,
as keyed hashes in Yinsi's own database (tables ``freetext_columns`` and ``freetext_tokens``, migration 0015).

A token is ``HMAC(k, kind 0x00 canonical value)`` truncated to 128 bits, where ``k`` is derived from the
tenant's index key (the key ring's ``index`` purpose, HMAC-SHA256 or HMAC-SM3 with the tenant's suite): no
text and no identifier is stored in clear, tokens differ between tenants, and every query names the tenant.
What a text yields is :func:`yinsi.domain.freetext.tokens`.

The index is kept current incrementally: per column, the highest primary key indexed (``key_mark``): rows
above it are the *tail*, read in primary-key batches, each batch's tokens written with the new mark in one
transaction (a rerun continues, never doubles). When the map names the table's ``updated_at`` column, rows
changed since the highest value seen are indexed again. Rows the erasure rewrites are indexed again at once.
Rows deleted from the app leave stale tokens behind, which cost a lookup nothing but a missing row.
``yinsi freetext index TENANT`` runs it for a whole map; every erasure, copy and read-back runs the tail
first, so per request the work is the rows added since the last run plus one index lookup.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from yinsi.domain import freetext as ft
from yinsi.rights.context import RequestError
from yinsi.storage.freetext_tables import ROW_KEY_LEN, FreeTextColumn, FreeTextToken

BATCH = 5000
Progress = Callable[[str, int], None]


def key_column(t: Any, col: Any) -> Any:
    """The table's one primary-key column (a free-text table needs one)."""
    pk = list(t.primary_key.columns)
    if len(pk) != 1:
        raise RequestError(f"自由文本列 {col.id} 所在的表 {col.table} 需要单列主键（用于索引与逐行遮盖）")
    return pk[0]


def parse_key(pk: Any, key: str) -> Any:
    """A row key (text) in the primary key's Python type."""
    try:
        if pk.type.python_type is int:
            return int(key)
    except (NotImplementedError, ValueError):
        pass
    return key


class Hasher:
    """The tenant's keyed hash of (kind, canonical value)."""

    def __init__(self, key: bytes, sm3: bool = False) -> None:
        self.key, self.sm3 = key, sm3
        self._base = hmac.new(key, digestmod=hashlib.sha256)  # keyed once; copied per value

    def __call__(self, kind: str, value: str) -> str:
        data = kind.encode("ascii") + b"\x00" + value.encode("utf-8")
        if self.sm3:
            from yinsi.protect.crypto import MacAlgorithm, hmac_digest

            return hmac_digest(MacAlgorithm.HMAC_SM3, self.key, data)[:16].hex()
        h = self._base.copy()
        h.update(data)
        return h.digest()[:16].hex()


def tenant_hasher(ctx: Any, tenant: str) -> Hasher:
    """The hasher of ``tenant`` (its key derived from the tenant's index key; never stored)."""
    from yinsi.protect.keys import Suite

    key = bytes.fromhex(ctx.blind(tenant, "yinsi/freetext/v1"))
    return Hasher(key, ctx.audit.ring.suite(tenant) is Suite.SM)


class FreeTextIndex:
    """One tenant's free-text index (``sessions``: Yinsi's database)."""

    def __init__(self, sessions: sessionmaker[Session], tenant: str, hasher: Hasher, *, clock: Callable[[], datetime]
                 = lambda: datetime.now(UTC), batch: int = BATCH) -> None:
        self.sessions, self.tenant, self.hasher, self.clock, self.batch = sessions, tenant, hasher, clock, batch
        self._ids: dict[str, int] = {}

    # --- columns -------------------------------------------------------------------------------------
    def _column_row(self, s: Session, col: Any, *, lock: bool = False) -> FreeTextColumn:
        stmt = select(FreeTextColumn).where(FreeTextColumn.tenant_id == self.tenant, FreeTextColumn.store == col.store,
                                            FreeTextColumn.table_name == col.table,
                                            FreeTextColumn.column_name == col.column)
        row = s.scalars(stmt.with_for_update() if lock else stmt).one_or_none()
        if row is None:
            raise LookupError(col.id)
        return row

    def column_id(self, col: Any) -> int:
        cid = self._ids.get(col.id)
        if cid is not None:
            return cid
        with self.sessions() as s:
            try:
                cid = self._column_row(s, col).id
            except LookupError:
                s.add(FreeTextColumn(tenant_id=self.tenant, store=col.store, table_name=col.table,
                                     column_name=col.column, key_mark=None, updated_mark=None, rows_indexed=0))
                try:
                    s.commit()
                except IntegrityError:  # created at the same time by another run
                    s.rollback()
                cid = self._column_row(s, col).id
        self._ids[col.id] = cid
        return cid

    def state(self, col: Any) -> dict[str, Any]:
        """How far the column is indexed (for reports)."""
        self.column_id(col)
        with self.sessions() as s:
            row = self._column_row(s, col)
            return {"column": col.id, "key_mark": row.key_mark, "rows_indexed": row.rows_indexed,
                    "indexed_at": row.indexed_at.isoformat() if row.indexed_at else None}

    # --- tokens --------------------------------------------------------------------------------------
    def _token_rows(self, cid: int, rows: Iterable[tuple[str, str | None]]) -> list[dict[str, Any]]:
        out: dict[tuple[str, str], None] = {}
        for key, text in rows:
            if not text or len(key) > ROW_KEY_LEN:
                continue
            for kind, value in ft.tokens(text):
                out.setdefault((self.hasher(kind, value), key), None)
        return [{"tenant_id": self.tenant, "token": tok, "column_id": cid, "row_key": key} for tok, key in out]

    def _write(self, s: Session, cid: int, rows: Sequence[tuple[str, str | None]], *, replace: bool) -> None:
        if replace:
            keys = [k for k, _ in rows]
            for n in range(0, len(keys), 500):
                s.execute(delete(FreeTextToken).where(FreeTextToken.tenant_id == self.tenant,
                                                      FreeTextToken.column_id == cid,
                                                      FreeTextToken.row_key.in_(keys[n:n + 500])))
        _insert(s, self._token_rows(cid, rows))

    def refresh(self, conn: Any, col: Any, progress: Progress | None = None) -> int:
        """Index the column's tail (rows above the mark) and, with ``updated_at``, the rows changed since;
        returns how many rows were read."""
        cid = self.column_id(col)
        t = conn.table(col.table)
        pk = key_column(t, col)
        text_col = t.c[col.column]
        upd = t.c[col.updated_at] if col.updated_at else None
        read = 0
        while True:
            with self.sessions() as s:
                row = self._column_row(s, col, lock=True)
                stmt = select(pk, text_col, *([upd] if upd is not None else [])).order_by(pk).limit(self.batch)
                if row.key_mark is not None:
                    stmt = stmt.where(pk > parse_key(pk, row.key_mark))
                with conn.engine.connect() as c:
                    got = c.execute(stmt).all()
                if not got:
                    break
                batch = [(str(r[0]), r[1]) for r in got]
                self._write(s, cid, batch, replace=False)
                row.key_mark = str(got[-1][0])
                row.rows_indexed += len(got)
                if upd is not None:
                    seen = [_aware(r[2]) for r in got if r[2] is not None]
                    if seen and (row.updated_mark is None or max(seen) > _aware(row.updated_mark)):
                        row.updated_mark = max(seen)
                row.indexed_at = self.clock()
                s.commit()
            read += len(got)
            if progress is not None:
                progress(col.id, len(got))
            if len(got) < self.batch:
                break
        if upd is not None:
            read += self._refresh_updated(conn, col, cid, t, pk, text_col, upd, progress)
        return read

    def _refresh_updated(self, conn: Any, col: Any, cid: int, t: Any, pk: Any, text_col: Any, upd: Any,
                         progress: Progress | None) -> int:
        read = 0
        naive = not getattr(upd.type, "timezone", False)
        while True:
            with self.sessions() as s:
                row = self._column_row(s, col, lock=True)
                if row.updated_mark is None or row.key_mark is None:
                    return read
                mark = _aware(row.updated_mark)
                at = mark.replace(tzinfo=None) if naive else mark
                stmt = (select(pk, text_col, upd).where(upd > at, pk <= parse_key(pk, row.key_mark))
                        .order_by(upd, pk).limit(self.batch))
                with conn.engine.connect() as c:
                    got = c.execute(stmt).all()
                if not got:
                    return read
                self._write(s, cid, [(str(r[0]), r[1]) for r in got], replace=True)
                row.updated_mark = max(_aware(r[2]) for r in got)
                row.indexed_at = self.clock()
                s.commit()
            read += len(got)
            if progress is not None:
                progress(col.id, len(got))
            if len(got) < self.batch:
                return read

    def reindex(self, conn: Any, col: Any, keys: Sequence[str], texts: Mapping[str, str] | None = None) -> None:
        """Index these rows again from their current text (after the erasure rewrote them; ``texts``: the
        text each now holds, when the caller knows it, else read again)."""
        if not keys:
            return
        from yinsi.rights.freetext import _rows

        cid = self.column_id(col)
        if texts is None:
            texts = _rows(conn, col, keys)
        with self.sessions() as s:
            self._write(s, cid, [(k, texts.get(k)) for k in keys], replace=True)
            s.commit()

    def lookup(self, col: Any, idents: Sequence[ft.Identifier]) -> list[str]:
        """The row keys of ``col`` whose text mentioned one of the identifiers when it was indexed."""
        tokens = sorted({self.hasher(i.kind, i.value) for i in idents if i.kind in ft.INDEXED_KINDS})
        if not tokens:
            return []
        cid = self.column_id(col)
        with self.sessions() as s:
            keys = s.scalars(select(FreeTextToken.row_key).where(
                FreeTextToken.tenant_id == self.tenant, FreeTextToken.token.in_(tokens),
                FreeTextToken.column_id == cid)).all()
        return sorted(set(keys))


def _insert(s: Session, tokens: Sequence[dict[str, Any]]) -> None:
    """Insert token rows in the session's transaction: COPY on PostgreSQL, multi-row inserts elsewhere."""
    if not tokens:
        return
    conn = s.connection()
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy("COPY freetext_tokens (tenant_id, token, column_id, row_key) FROM STDIN") as cp:
            for t in tokens:
                cp.write_row((t["tenant_id"], t["token"], t["column_id"], t["row_key"]))
        return
    table = cast(Table, FreeTextToken.__table__)
    for n in range(0, len(tokens), 5000):
        conn.execute(insert(table), list(tokens[n:n + 5000]))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

