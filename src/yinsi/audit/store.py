"""Core-level access to the audit tables (the hot paths avoid ORM overhead)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

from sqlalchemy import BindParameter, Row, String, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from yinsi.audit.model import AuditEntry, Checkpoint
from yinsi.storage.audit_tables import AuditChainRow, AuditCheckpointRow, AuditEntryRow, AuditKeyRow

CHAINS = cast(Table, AuditChainRow.__table__)
ENTRIES = cast(Table, AuditEntryRow.__table__)
CHECKPOINTS = cast(Table, AuditCheckpointRow.__table__)
KEYS = cast(Table, AuditKeyRow.__table__)

# The append path's statements, built once (building and coercing statements costs more than running them).
_TENANT: BindParameter[str] = bindparam("b_tenant", type_=String())
SELECT_HEAD = select(CHAINS).where(CHAINS.c.tenant_id == _TENANT)
SELECT_HEAD_FOR_UPDATE = SELECT_HEAD.with_for_update()
#: SQLite: a write takes the database write lock, so the head cannot change until the transaction ends.
TOUCH_HEAD = update(CHAINS).where(CHAINS.c.tenant_id == _TENANT).values(last_seq=CHAINS.c.last_seq)
TOUCH_HEAD_RETURNING = TOUCH_HEAD.returning(*CHAINS.c)
INSERT_ENTRIES = insert(ENTRIES)
ADVANCE_HEAD = update(CHAINS).where(CHAINS.c.tenant_id == _TENANT).values(
    last_seq=bindparam("b_seq"), last_hash=bindparam("b_hash"), frontier=bindparam("b_frontier"))
ADVANCE_HEAD_AND_CHECKPOINT = ADVANCE_HEAD.values(
    last_checkpoint_no=bindparam("b_cp_no"), last_checkpoint_seq=bindparam("b_cp_seq"),
    last_checkpoint_hash=bindparam("b_cp_hash"))


def row_to_entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(row.tenant_id, row.seq, row.recorded_at, row.actor, row.action, row.subject,
                      tuple(json.loads(row.items)), row.reason, json.loads(row.details), row.prev_hash, row.entry_hash)


def row_to_checkpoint(row: Row[Any], *, created: bool = True) -> Checkpoint:
    return Checkpoint(row.tenant_id, row.chain_uid, row.checkpoint_no, row.upto_seq, row.root, row.tip_hash,
                      row.prev_checkpoint_hash, row.hash_alg, row.sign_alg, row.key_id, row.created_at, row.signature,
                      row.checkpoint_hash, created)


def iter_entry_rows(session: Session, tenant: str, *, upto: int | None = None, page: int = 2000) -> Iterator[Row[Any]]:
    """Entry rows in seq order, read in pages by key (bounded memory on long chains)."""
    last = 0
    while True:
        stmt = select(ENTRIES).where(ENTRIES.c.tenant_id == tenant, ENTRIES.c.seq > last)
        if upto is not None:
            stmt = stmt.where(ENTRIES.c.seq <= upto)
        rows = session.execute(stmt.order_by(ENTRIES.c.seq).limit(page)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
