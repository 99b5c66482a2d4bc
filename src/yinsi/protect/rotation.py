"""Data-key rotation (密钥轮换): a new key version, then every registered ciphertext re-encrypted under it.

How it survives interruption (Ctrl-C, ``kill -9``, a lost connection):

1. The new version and a ``key_rotations`` row are created in one transaction. Running the command again
   finds the ``running`` rotation and continues it; it never makes a second new version.
2. Each column is read in primary-key order, in batches. A batch's rewrites are committed together, then
   the cursor (the last key of the batch) is saved in ``key_rotation_columns``. After a crash the batch in
   flight is simply redone.
3. Nothing is encrypted twice: the header of each token names its key version, and a row already at the
   new version is skipped. A row is rewritten only if it still holds the token that was read
   (compare-and-set), so a concurrent update by the app is never overwritten with stale data.
4. A column is finished after a whole pass from its first row re-encrypted nothing; so rows written with
   the old version by processes whose cached active key had not yet expired are caught by the next pass.
5. When every column is finished, the superseded versions become ``retired``: no registered ciphertext
   uses them. (They still decrypt — a backup restored later stays readable.)

Columns come from the registry (:func:`register_encrypted_column`; Yinsi registers its own) plus those the
caller names. A column holds bytes tokens (``LargeBinary``) or base64 text tokens (``encrypt_text``).
Registered files (:func:`register_encrypted_files`: the packages of rights requests) are re-encrypted too,
each replaced atomically (temporary file, then rename), before any version is retired.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Engine, MetaData, Table, and_, bindparam, func, select, tuple_, update
from sqlalchemy.exc import NoSuchTableError
from sqlalchemy.orm import Session

from yinsi.protect import keys as _keys  # the module, not its names: keys → storage → this module is a cycle
from yinsi.protect.crypto import Algorithm, DataKey, decode_text_token, read_header
from yinsi.protect.errors import InvalidCiphertext, RotationError
from yinsi.protect.registry import (
    EncryptedColumn,
    EncryptedFiles,
    register_encrypted_column,
    register_encrypted_files,
    registered_columns,
    registered_files,
)
from yinsi.storage.keys_tables import DataKeyRow, KeyRotationColumnRow, KeyRotationRow

if TYPE_CHECKING:
    from yinsi.protect.keys import KeyRing

__all__ = [
    "ColumnProgress",
    "EncryptedColumn",
    "EncryptedFiles",
    "RotationResult",
    "RotationTarget",
    "register_encrypted_column",
    "register_encrypted_files",
    "registered_columns",
    "registered_files",
    "rotate_data_key",
    "running_rotation",
]

DEFAULT_BATCH_SIZE = 500
#: Passes per column before giving up on writers that keep using the old version.
MAX_PASSES = 5


#: Yinsi's own encrypted column: identifiers kept for look-up by blind index.
SUBJECT_IDENTIFIERS = register_encrypted_column(
    EncryptedColumn("subject_identifiers", "ciphertext", field="subject_identifiers.value",
                    key_columns=("tenant_id", "subject_id", "kind"))
)


@dataclass(frozen=True)
class RotationTarget:
    """A column and the database it lives in."""

    engine: Engine
    column: EncryptedColumn


@dataclass
class ColumnProgress:
    """What a progress bar shows for one column."""

    label: str
    pass_no: int
    total: int
    seen: int
    changed: int
    total_reencrypted: int
    finished: bool


@dataclass
class RotationResult:
    tenant: str
    to_version: int
    algorithm: str
    resumed: bool
    columns: list[ColumnProgress] = field(default_factory=list)
    retired_versions: list[int] = field(default_factory=list)
    #: The registered files (one entry per kind: rows are files).
    files: list[ColumnProgress] = field(default_factory=list)


def running_rotation(ring: KeyRing, tenant: str) -> KeyRotationRow | None:
    """The tenant's unfinished rotation, if any."""
    with ring.session() as session:
        return session.scalars(
            select(KeyRotationRow).where(KeyRotationRow.tenant_id == tenant, KeyRotationRow.status == "running")
            .order_by(KeyRotationRow.id.desc()).limit(1)
        ).first()


def _start(ring: KeyRing, tenant: str, algorithm: Algorithm | None, now: datetime) -> tuple[KeyRotationRow, bool]:
    existing = running_rotation(ring, tenant)
    if existing is not None:
        if algorithm is not None and algorithm.value != existing.algorithm:
            raise RotationError(
                f"租户 {tenant} 有一次未完成的轮换（到版本 {existing.to_version}，{existing.algorithm}）；"
                "请先不带 --algorithm 再运行一次以完成它"
            )
        return existing, True
    created: list[KeyRotationRow] = []

    def record(session: Session, key: DataKey) -> None:
        row = KeyRotationRow(tenant_id=tenant, to_version=key.version, algorithm=key.algorithm.value,
                             status="running", started_at=now, finished_at=None)
        session.add(row)
        session.flush()
        created.append(row)

    ring.add_data_key_version(tenant, algorithm, also=record)
    return created[0], False


class _Column:
    """A reflected column ready to scan."""

    def __init__(self, target: RotationTarget, tenant: str) -> None:
        spec = target.column
        self.engine = target.engine
        self.spec = spec
        try:
            self.table = Table(spec.table, MetaData(), autoload_with=target.engine)
        except NoSuchTableError:
            raise RotationError(f"数据库中没有表 {spec.table}") from None
        names = set(self.table.c.keys())
        if spec.column not in names:
            raise RotationError(f"表 {spec.table} 中没有列 {spec.column}")
        keys = spec.key_columns or tuple(c.name for c in self.table.primary_key.columns)
        if not keys:
            raise RotationError(f"表 {spec.table} 没有主键；请在登记加密列时给出 key_columns")
        missing = [k for k in (*keys, *([spec.tenant_column] if spec.tenant_column else [])) if k not in names]
        if missing:
            raise RotationError(f"表 {spec.table} 中没有列 {', '.join(missing)}")
        self.keys: list[Column[Any]] = [self.table.c[k] for k in keys]
        self.value: Column[Any] = self.table.c[spec.column]
        self.where = self.table.c[spec.tenant_column] == tenant if spec.tenant_column else None
        #: Rewrite one row only if it still holds the token that was read (executemany over a batch).
        self.compare_and_set = (
            update(self.table)
            .where(and_(*(k == bindparam(f"_ys_k{i}") for i, k in enumerate(self.keys)),
                        self.value == bindparam("_ys_old")))
            .values({self.value.name: bindparam("_ys_new")})
        )

    def _filtered(self, query: Any) -> Any:
        return query.where(self.where) if self.where is not None else query

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(self._filtered(select(func.count()).select_from(self.table))).scalar_one())

    def batch(self, cursor: list[Any] | None, size: int) -> list[Any]:
        query = self._filtered(select(*self.keys, self.value))
        if cursor is not None:
            query = query.where(self.keys[0] > cursor[0] if len(self.keys) == 1
                                else tuple_(*self.keys) > tuple_(*cursor))
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(*self.keys).limit(size)).all())

    def key_of(self, row: Any) -> list[Any]:
        values = list(row[: len(self.keys)])
        for v in values:
            if not isinstance(v, (int, str)) or isinstance(v, bool):
                raise RotationError(f"表 {self.spec.table} 的主键列类型 {type(v).__name__} 不支持（只支持整数和文本）")
        return values


def _reencrypt_value(ring: KeyRing, tenant: str, col: _Column, key: list[Any], value: Any, to_version: int) -> Any:
    """The new value for the column, or ``None`` if the row is already at ``to_version`` or empty."""
    if value is None:
        return None
    where = f"{col.spec.label}（主键 {', '.join(map(str, key))}）"
    try:
        raw = decode_text_token(value) if isinstance(value, str) else bytes(value)
        if read_header(raw).key_version == to_version:
            return None
        fresh = ring.cipher(tenant).reencrypt(col.spec.field_name, raw)
    except (InvalidCiphertext, TypeError) as exc:
        raise RotationError(f"{where} 的值无法解密：{exc}") from None
    if fresh is None:  # pragma: no cover - the active version moved under us
        raise RotationError(f"租户 {tenant} 的当前密钥版本已不是 {to_version}；是否有另一次轮换在运行？")
    if isinstance(value, str):
        return base64.b64encode(fresh).decode("ascii")
    return fresh


def rotate_data_key(
    ring: KeyRing,
    tenant: str,
    targets: Sequence[RotationTarget],
    *,
    algorithm: Algorithm | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pause: float = 0.0,
    on_progress: Callable[[ColumnProgress], None] | None = None,
) -> RotationResult:
    """Rotate the tenant's data key (or finish the rotation in progress) over ``targets``.

    ``pause`` seconds are slept after each committed batch (to spare a busy production database).
    ``on_progress`` is called after every batch.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    rotation, resumed = _start(ring, tenant, algorithm, ring.now())
    to_version = rotation.to_version
    active = ring.active_data_key(tenant)
    if active.version != to_version:
        raise RotationError(f"租户 {tenant} 的当前密钥版本是 {active.version}，而未完成的轮换要到版本 {to_version}")
    result = RotationResult(tenant, to_version, rotation.algorithm, resumed)
    for target in targets:
        col = _Column(target, tenant)
        result.columns.append(_rotate_column(ring, tenant, rotation.id, col, to_version, batch_size, pause,
                                             on_progress))
    for files in registered_files():
        result.files.append(_rotate_files(ring, tenant, files, to_version, on_progress))
    with ring.session() as session, session.begin():
        row = session.get(KeyRotationRow, rotation.id)
        assert row is not None
        unfinished = session.scalars(
            select(KeyRotationColumnRow).where(KeyRotationColumnRow.rotation_id == rotation.id,
                                               KeyRotationColumnRow.finished.is_(False))
        ).all()
        if unfinished:
            names = ", ".join(f"{c.table_name}.{c.column_name}" for c in unfinished)
            raise RotationError(f"本次轮换还有未完成的列：{names}；请在再次运行时一并给出这些列")
        if targets:
            retiring = session.scalars(
                select(DataKeyRow).where(DataKeyRow.tenant_id == tenant, DataKeyRow.purpose == _keys.Purpose.DATA.value,
                                         DataKeyRow.status == _keys.KeyStatus.RETIRING.value)
            ).all()
            for key_row in retiring:
                key_row.status = _keys.KeyStatus.RETIRED.value
                key_row.retired_at = ring.now()
                result.retired_versions.append(key_row.key_version)
        row.status = "done"
        row.finished_at = ring.now()
    return result


def _replace_file(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically, keeping it private (0600)."""
    tmp = path.with_name(path.name + ".rotating")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _rotate_files(ring: KeyRing, tenant: str, files: EncryptedFiles, to_version: int,
                  on_progress: Callable[[ColumnProgress], None] | None) -> ColumnProgress:
    """Re-encrypt the tenant's registered files still under an older key version (idempotent: a file
    already at ``to_version`` is left alone, so an interrupted run simply redoes the rest)."""
    paths = sorted({Path(p) for p in files.locate(ring.engine, tenant)})
    present = [p for p in paths if p.is_file()]
    progress = ColumnProgress(files.label, 1, len(present), 0, 0, 0, False)
    cipher = ring.cipher(tenant)
    for path in present:
        raw = path.read_bytes()
        try:
            if read_header(raw).key_version != to_version:
                fresh = cipher.reencrypt(files.field, raw)
                if fresh is not None:
                    _replace_file(path, fresh)
                    progress.changed += 1
                    progress.total_reencrypted += 1
        except InvalidCiphertext as exc:
            raise RotationError(f"文件 {path} 无法解密：{exc}") from None
        progress.seen += 1
        if on_progress:
            on_progress(progress)
    progress.finished = True
    if on_progress:
        on_progress(progress)
    return progress


def _progress_row(session: Session, rotation_id: int, col: _Column, now: datetime) -> KeyRotationColumnRow:
    row = session.get(KeyRotationColumnRow, (rotation_id, col.spec.table, col.spec.column))
    if row is None:
        row = KeyRotationColumnRow(rotation_id=rotation_id, table_name=col.spec.table, column_name=col.spec.column,
                                   field_name=col.spec.field_name, cursor=None, pass_no=1, pass_seen=0,
                                   pass_changed=0, total_reencrypted=0, finished=False, updated_at=now)
        session.add(row)
    elif row.field_name != col.spec.field_name:
        raise RotationError(f"{col.spec.label} 在本次轮换中登记的字段名是 {row.field_name}，不是 {col.spec.field_name}")
    return row


def _rotate_column(
    ring: KeyRing,
    tenant: str,
    rotation_id: int,
    col: _Column,
    to_version: int,
    batch_size: int,
    pause: float,
    on_progress: Callable[[ColumnProgress], None] | None,
) -> ColumnProgress:
    with ring.session() as session, session.begin():
        state = _progress_row(session, rotation_id, col, ring.now())
        snapshot = ColumnProgress(col.spec.label, state.pass_no, 0, state.pass_seen, state.pass_changed,
                                  state.total_reencrypted, state.finished)
        cursor: list[Any] | None = json.loads(state.cursor) if state.cursor else None
    if snapshot.finished:
        snapshot.total = snapshot.seen
        return snapshot
    snapshot.total = col.count()
    if on_progress:
        on_progress(snapshot)
    passes_this_run = 1
    while True:
        rows = col.batch(cursor, batch_size)
        changed = 0
        if rows:
            params = []
            for r in rows:
                key = col.key_of(r)
                new = _reencrypt_value(ring, tenant, col, key, r[len(col.keys)], to_version)
                if new is not None:
                    params.append({**{f"_ys_k{i}": v for i, v in enumerate(key)}, "_ys_old": r[len(col.keys)],
                                   "_ys_new": new})
            if params:
                with col.engine.begin() as conn:
                    conn.execute(col.compare_and_set, params)
            changed = len(params)  # a failed compare-and-set also counts: the next pass looks again
            cursor = col.key_of(rows[-1])
        end_of_pass = len(rows) < batch_size
        with ring.session() as session, session.begin():
            state = _progress_row(session, rotation_id, col, ring.now())
            state.pass_seen += len(rows)
            state.pass_changed += changed
            state.total_reencrypted += changed
            state.updated_at = ring.now()
            give_up = False
            if end_of_pass:
                if state.pass_changed == 0:
                    state.finished = True
                else:  # another pass; a run that gives up leaves a fresh pass for the next run
                    give_up = passes_this_run >= MAX_PASSES
                    passes_this_run += 1
                    state.pass_no += 1
                    state.pass_seen = 0
                    state.pass_changed = 0
                state.cursor = None
                cursor = None
            else:
                state.cursor = json.dumps(cursor, ensure_ascii=False)
            snapshot = ColumnProgress(col.spec.label, state.pass_no, snapshot.total, state.pass_seen,
                                      state.pass_changed, state.total_reencrypted, state.finished)
        if give_up:
            raise RotationError(
                f"{col.spec.label} 经过 {MAX_PASSES} 遍仍有旧版本密文写入；请确认所有进程已更新密钥缓存后再运行一次"
            )
        if on_progress:
            on_progress(snapshot)
        if snapshot.finished:
            return snapshot
        if end_of_pass:
            snapshot.total = col.count()
        if pause > 0:
            time.sleep(pause)

