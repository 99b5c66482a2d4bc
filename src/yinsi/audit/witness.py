"""The high-water mark kept outside the database (外部留存的检查点).

After every checkpoint the log writes the newest checkpoint of each chain to a small JSON file next to
the signing key (``YINSI_AUDIT_WITNESS_FILE``, default ``<data dir>/audit_witness.json``). Someone who
can rewrite the database can delete the tail of a chain together with its last checkpoints and fix the
head row; they cannot make the database agree with this file. ``verify`` checks that the checkpoint
recorded here is still in the database, unchanged. Keep copies off the host too (``yinsi audit checkpoint
--json``) for the case where the host itself is compromised.

Records only move forward: a checkpoint number lower than the one on file never replaces it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from yinsi.audit.errors import AuditError
from yinsi.config import data_dir

try:  # POSIX advisory locks; elsewhere concurrent writers may lose a record, never corrupt the file
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

WITNESS_FILE_ENV = "YINSI_AUDIT_WITNESS_FILE"
DEFAULT_WITNESS_FILE = "audit_witness.json"
FORMAT = "yinsi.audit.witness/1"

log = logging.getLogger("yinsi.audit")


def default_witness_file() -> Path:
    configured = os.environ.get(WITNESS_FILE_ENV, "").strip()
    return Path(configured).expanduser() if configured else data_dir() / DEFAULT_WITNESS_FILE


@dataclass(frozen=True)
class WitnessRecord:
    """The newest checkpoint of one chain as last seen by this host."""

    chain_uid: str
    tenant: str
    database: str
    checkpoint_no: int
    upto_seq: int
    root: str
    checkpoint_hash: str


def read_witness(path: Path) -> dict[str, WitnessRecord]:
    """Records by chain uid; an absent file is empty. Raises ``AuditError`` if the file is unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AuditError(f"外部留存文件 {path} 无法读取：{exc.strerror}") from None
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError("unknown format")
        return {uid: WitnessRecord(**rec) for uid, rec in data["chains"].items()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise AuditError(f"外部留存文件 {path} 已损坏：{exc}") from None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def record(path: Path, rec: WitnessRecord) -> None:
    """Store ``rec`` unless the file already holds a newer checkpoint of that chain."""
    with _locked(path):
        records = read_witness(path)
        old = records.get(rec.chain_uid)
        if old is not None and old.checkpoint_no >= rec.checkpoint_no:
            return
        records[rec.chain_uid] = rec
        data: dict[str, Any] = {"format": FORMAT, "chains": {uid: asdict(r) for uid, r in sorted(records.items())}}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


def record_quietly(path: Path, rec: WitnessRecord) -> None:
    """``record``, but a failure is logged, not raised: the checkpoint is already committed."""
    try:
        record(path, rec)
    except (OSError, AuditError) as exc:
        log.warning("审计检查点已保存，但未能写入外部留存文件 %s：%s", path, exc)
