"""The witness (外部见证): each chain's newest checkpoint, kept where Yinsi's database owner cannot reach.

After every checkpoint the log also records it in a witness store *outside* the data directory and the
database. Someone who can rewrite the database can delete the tail of a chain together with its last
checkpoints, fix the head row, or delete a whole chain and start a new one; they cannot make the database
agree with the witness. ``verify`` checks that the checkpoint recorded there is still in the database,
unchanged, and says loudly when no witness is configured or the witness is gone (``--strict`` fails).

Stores (``YINSI_AUDIT_WITNESS``):

- a **directory** (another mount, a share the database owner cannot write): the file
  ``yinsi-audit-witness.json`` in it. The directory must exist; it is never created, so an unmounted
  share is noticed instead of silently replaced by a local directory;
- a **database URL** (``postgresql+psycopg://…``, ``sqlite:////mnt/witness/w.db``): a table
  ``yinsi_audit_witness`` in *another* database, created on first use.

A store inside the data directory, or in the very database being witnessed (however its URL or path is
spelled: compared canonically), is refused. The older setting ``YINSI_AUDIT_WITNESS_FILE`` names a file (same rules).
Records only move forward: a checkpoint number lower than the one on file never replaces it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from yinsi.audit.errors import AuditError
from yinsi.audit.location import canonical_database, inside, sqlite_file
from yinsi.config import data_dir

try:  # POSIX advisory locks; elsewhere concurrent writers may lose a record, never corrupt the file
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

WITNESS_ENV = "YINSI_AUDIT_WITNESS"
WITNESS_FILE_ENV = "YINSI_AUDIT_WITNESS_FILE"
WITNESS_FILE_NAME = "yinsi-audit-witness.json"
FORMAT = "yinsi.audit.witness/1"

log = logging.getLogger("yinsi.audit")


class WitnessMissing(AuditError):
    """The configured witness is not there (deleted, or its share not mounted)."""


@dataclass(frozen=True)
class WitnessRecord:
    """The newest checkpoint of one chain as last witnessed."""

    chain_uid: str
    tenant: str
    database: str
    checkpoint_no: int
    upto_seq: int
    root: str
    checkpoint_hash: str
    #: An RFC 3161 timestamp token over the checkpoint (base64 DER), when a TSA is configured.
    timestamp: str | None = None


class WitnessStore(Protocol):
    #: For people: where the witness is (a path, or a URL without password).
    description: str

    def read(self) -> dict[str, WitnessRecord]:
        """Records by chain uid. ``WitnessMissing`` if the store is gone, ``AuditError`` if unreadable."""

    def record(self, rec: WitnessRecord) -> None:
        """Store ``rec`` unless the store already holds a newer checkpoint of that chain."""

    def check_separate(self, database: str) -> None:
        """``AuditError`` unless the store is outside the data directory and apart from ``database``."""


def _refuse_inside_data_dir(path: Path, what: str) -> None:
    if inside(path, data_dir()):
        raise AuditError(
            f"外部见证{what} {path} 位于 Yinsi 数据目录 {data_dir()} 之内：能改写数据库的人也能改写它，起不到见证作用。"
            "请改为另一块磁盘或共享目录、或另一个数据库（环境变量 YINSI_AUDIT_WITNESS）")


class FileWitness:
    """A JSON file; ``directory`` set: the file ``yinsi-audit-witness.json`` in an existing directory."""

    def __init__(self, path: Path, *, directory: bool = False) -> None:
        self.directory = directory
        self.path = path / WITNESS_FILE_NAME if directory else path
        self.description = str(path)
        _refuse_inside_data_dir(self.path, "目录" if directory else "文件")

    def check_separate(self, database: str) -> None:
        db_file = sqlite_file(database)
        if db_file is not None and inside(self.path, db_file):
            raise AuditError(f"外部见证 {self.description} 就是被见证的数据库文件；请放到另一处")

    def _present(self) -> None:
        parent = self.path.parent
        if self.directory and not parent.is_dir():
            raise WitnessMissing(f"外部见证目录 {parent} 不存在（被删除或未挂载）")

    def read(self) -> dict[str, WitnessRecord]:
        self._present()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if self.directory:
                return {}
            raise WitnessMissing(f"外部见证文件 {self.path} 不存在（被删除或尚未写入）") from None
        except OSError as exc:
            raise AuditError(f"外部见证文件 {self.path} 无法读取：{exc.strerror}") from None
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError("unknown format")
            return {uid: WitnessRecord(**rec) for uid, rec in data["chains"].items()}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise AuditError(f"外部见证文件 {self.path} 已损坏：{exc}") from None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if not self.directory:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._present()
        if fcntl is None:  # pragma: no cover
            yield
            return
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def record(self, rec: WitnessRecord) -> None:
        with self._locked():
            try:
                records = self.read()
            except WitnessMissing:
                records = {}
            old = records.get(rec.chain_uid)
            if old is not None and old.checkpoint_no >= rec.checkpoint_no:
                return
            records[rec.chain_uid] = rec
            data: dict[str, Any] = {"format": FORMAT, "chains": {uid: asdict(r) for uid, r in sorted(records.items())}}
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)


_META = MetaData()
WITNESS_TABLE = Table(
    "yinsi_audit_witness", _META,
    Column("chain_uid", String(36), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("database_name", String(512), nullable=False),
    Column("checkpoint_no", Integer, nullable=False),
    Column("upto_seq", Integer, nullable=False),
    Column("root", String(64), nullable=False),
    Column("checkpoint_hash", String(64), nullable=False),
    Column("timestamp_token", Text, nullable=True),
)


class DatabaseWitness:
    """A table in another database (``yinsi_audit_witness``), created on first record."""

    def __init__(self, url: str) -> None:
        try:
            self.canonical = canonical_database(url)
        except ArgumentError:
            raise AuditError("外部见证数据库地址无效（YINSI_AUDIT_WITNESS）") from None
        self.url = url
        self.description = self.canonical
        db_file = sqlite_file(url)
        if db_file is not None:
            _refuse_inside_data_dir(db_file, "数据库")
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def check_separate(self, database: str) -> None:
        if canonical_database(database) == self.canonical:
            raise AuditError(f"外部见证数据库 {self.canonical} 就是被见证的数据库本身；请使用另一个数据库")

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                try:
                    self._engine = create_engine(self.url, hide_parameters=True, pool_pre_ping=True)
                except (ArgumentError, NoSuchModuleError, ModuleNotFoundError) as exc:
                    raise AuditError(f"外部见证数据库 {self.canonical} 无法使用：{type(exc).__name__}") from None
            return self._engine

    def read(self) -> dict[str, WitnessRecord]:
        db_file = sqlite_file(self.url)
        if db_file is not None and not db_file.exists():
            raise WitnessMissing(f"外部见证数据库 {db_file} 不存在（被删除或未挂载）")
        try:
            with self.engine.connect() as conn:
                if not conn.dialect.has_table(conn, WITNESS_TABLE.name):
                    raise WitnessMissing(f"外部见证数据库 {self.canonical} 中没有见证表（被删除或尚未写入）")
                rows = conn.execute(select(WITNESS_TABLE)).all()
        except SQLAlchemyError as exc:
            raise AuditError(f"外部见证数据库 {self.canonical} 无法读取：{type(exc).__name__}") from None
        return {r.chain_uid: WitnessRecord(r.chain_uid, r.tenant, r.database_name, r.checkpoint_no, r.upto_seq, r.root,
                                           r.checkpoint_hash, r.timestamp_token) for r in rows}

    def record(self, rec: WitnessRecord) -> None:
        values = {**asdict(rec)}
        values["database_name"] = values.pop("database")
        values["timestamp_token"] = values.pop("timestamp")
        try:
            _META.create_all(self.engine, tables=[WITNESS_TABLE])
            with self.engine.begin() as conn:
                old = conn.execute(select(WITNESS_TABLE.c.checkpoint_no).where(
                    WITNESS_TABLE.c.chain_uid == rec.chain_uid).with_for_update()).scalar()
                if old is None:
                    conn.execute(insert(WITNESS_TABLE).values(values))
                elif old < rec.checkpoint_no:
                    conn.execute(update(WITNESS_TABLE).where(WITNESS_TABLE.c.chain_uid == rec.chain_uid).values(values))
        except SQLAlchemyError as exc:
            raise AuditError(f"外部见证数据库 {self.canonical} 无法写入：{type(exc).__name__}") from None

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def witness_from_env() -> WitnessStore | None:
    """The store configured by ``YINSI_AUDIT_WITNESS`` (a directory or a database URL) or the older
    ``YINSI_AUDIT_WITNESS_FILE``; ``None`` when neither is set. ``AuditError`` for a store that would not
    be out of the database owner's reach."""
    value = os.environ.get(WITNESS_ENV, "").strip()
    if value:
        if "://" in value:
            return DatabaseWitness(value)
        return FileWitness(Path(value).expanduser(), directory=True)
    legacy = os.environ.get(WITNESS_FILE_ENV, "").strip()
    if legacy:
        return FileWitness(Path(legacy).expanduser())
    return None


def record_quietly(store: WitnessStore, rec: WitnessRecord) -> None:
    """``store.record``, but a failure is logged, not raised: the checkpoint is already committed
    (``verify`` then reports the witness as behind or missing)."""
    try:
        store.record(rec)
    except (OSError, AuditError) as exc:
        log.warning("审计检查点已保存，但未能写入外部见证 %s：%s", store.description, exc)
