"""What an audit entry and a checkpoint are, and the exact bytes that are hashed and signed.

Canonical JSON (规范化 JSON): keys sorted, no whitespace, UTF-8 with non-ASCII characters as themselves,
no NaN or infinities. Times are UTC in ISO 8601 with microseconds and a ``Z``
(``2026-03-01T08:30:15.123456Z``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

ENTRY_FORMAT = 1
CHECKPOINT_TYPE = "yinsi.audit.checkpoint/1"
ENDORSEMENT_TYPE = "yinsi.audit.key-endorsement/1"


class AuditAction(StrEnum):
    """What happened (操作类型)."""

    PI_ACCESS = "pi_access"
    UNMASK = "unmask"
    EXPORT = "export"
    CONSENT_CHANGE = "consent_change"
    RIGHTS_REQUEST_STEP = "rights_request_step"
    POLICY_PUBLISH = "policy_publish"
    KEY_ROTATION = "key_rotation"
    CONFIG_CHANGE = "config_change"
    PERMISSION_CHANGE = "permission_change"
    PROCESSING_RESTRICTION = "processing_restriction"
    OTHER = "other"

    @property
    def label(self) -> str:
        """The Chinese name shown to auditors."""
        return ACTION_LABELS[self]


ACTION_LABELS: dict[AuditAction, str] = {
    AuditAction.PI_ACCESS: "访问个人信息",
    AuditAction.UNMASK: "查看未掩码信息",
    AuditAction.EXPORT: "导出",
    AuditAction.CONSENT_CHANGE: "同意变更",
    AuditAction.RIGHTS_REQUEST_STEP: "权利请求处理",
    AuditAction.POLICY_PUBLISH: "政策发布",
    AuditAction.KEY_ROTATION: "密钥轮换",
    AuditAction.CONFIG_CHANGE: "配置变更",
    AuditAction.PERMISSION_CHANGE: "权限变更",
    AuditAction.PROCESSING_RESTRICTION: "限制处理",
    AuditAction.OTHER: "其他",
}

#: The ``actor`` of entries written by Yinsi itself rather than by a member of staff.
SYSTEM_ACTOR = "system"


def canonical_json(obj: object) -> bytes:
    """The canonical encoding that is hashed and signed."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def format_time(ts: datetime) -> str:
    """UTC, microseconds, ``Z``; naive datetimes are refused."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("audit times must be timezone-aware")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class AuditRecord:
    """One entry to append (the caller's part; the log adds seq, time and hashes)."""

    actor: str
    action: AuditAction | str
    target_subject: str | None = None
    items: Sequence[str] = ()
    reason: str | None = None
    details: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class AuditEntry:
    """A recorded entry (审计记录)."""

    tenant: str
    seq: int
    time: datetime
    actor: str
    action: str
    subject: str | None
    items: tuple[str, ...]
    reason: str | None
    details: dict[str, Any] = field(hash=False)
    prev_hash: str
    entry_hash: str

    def payload(self) -> dict[str, Any]:
        """The object whose canonical JSON is hashed into ``entry_hash``."""
        return entry_payload(self.tenant, self.seq, self.time, self.actor, self.action, self.subject,
                             self.items, self.reason, self.details, self.prev_hash)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the time as ISO 8601 text."""
        return {
            "tenant": self.tenant, "seq": self.seq, "time": format_time(self.time), "actor": self.actor,
            "action": self.action, "subject": self.subject, "items": list(self.items), "reason": self.reason,
            "details": self.details, "prev_hash": self.prev_hash, "entry_hash": self.entry_hash,
        }


def entry_payload(tenant: str, seq: int, time: datetime, actor: str, action: str, subject: str | None,
                  items: Sequence[str], reason: str | None, details: Mapping[str, Any], prev_hash: str) -> dict[str, Any]:
    """The hashed form of an entry: ``entry_hash = H(canonical_json(payload))``."""
    return {
        "v": ENTRY_FORMAT,
        "chain": tenant,
        "seq": seq,
        "time": format_time(time),
        "actor": actor,
        "action": action,
        "subject": subject,
        "items": list(items),
        "reason": reason,
        "details": dict(details),
        "prev": prev_hash,
    }


@dataclass(frozen=True)
class Checkpoint:
    """A signed checkpoint (签名检查点) of one chain."""

    tenant: str
    chain_uid: str
    number: int
    upto_seq: int
    root: str
    tip_hash: str
    prev_checkpoint_hash: str | None
    hash_alg: str
    sign_alg: str
    key_id: str
    time: datetime
    signature: str
    checkpoint_hash: str
    #: False when ``AuditLog.checkpoint`` found the head already covered and returned the existing one.
    created: bool = True

    def payload(self) -> dict[str, Any]:
        return checkpoint_payload(self.tenant, self.chain_uid, self.number, self.upto_seq, self.root,
                                  self.tip_hash, self.prev_checkpoint_hash, self.hash_alg, self.sign_alg,
                                  self.key_id, self.time)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the signed payload plus signature and hash (what to keep off-site)."""
        return {**self.payload(), "signature": self.signature, "checkpoint_hash": self.checkpoint_hash,
                "created": self.created}


def checkpoint_payload(tenant: str, chain_uid: str, number: int, upto_seq: int, root: str, tip_hash: str,
                       prev_checkpoint_hash: str | None, hash_alg: str, sign_alg: str, key_id: str,
                       time: datetime) -> dict[str, Any]:
    """The signed form of a checkpoint; ``checkpoint_hash = H(canonical_json(payload))``.

    ``upto_seq`` and ``tip_hash`` are the chain's high-water mark when the checkpoint was made: entries
    1..upto_seq must exist, hash to ``root``, and end in ``tip_hash``.
    """
    return {
        "type": CHECKPOINT_TYPE,
        "chain": tenant,
        "chain_uid": chain_uid,
        "checkpoint": number,
        "upto_seq": upto_seq,
        "root": root,
        "tip_hash": tip_hash,
        "prev_checkpoint": prev_checkpoint_hash,
        "hash_alg": hash_alg,
        "sign_alg": sign_alg,
        "key_id": key_id,
        "time": format_time(time),
    }


def endorsement_payload(key_id: str, algorithm: str, public_key: str, successor: str) -> dict[str, Any]:
    """What a rotated-in key signs about its predecessor, so old checkpoints stay trusted."""
    return {"type": ENDORSEMENT_TYPE, "key_id": key_id, "algorithm": algorithm, "public_key": public_key,
            "successor": successor}
