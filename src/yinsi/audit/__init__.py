"""The tamper-evident audit log (防篡改审计日志, GB/T 35273 11.7; RULES S5, S3, S6).

Append-only, hash-chained entries per tenant; periodic signed checkpoints over a Merkle root; a
verifier that names the first bad entry. Entries hold pseudonymised subjects and PI item IDs, never PI
values. See ``docs/audit.md``.
"""

from __future__ import annotations

from yinsi.audit.errors import AuditError, AuditKeyError, ChainConfigConflict, InvalidAuditEntry, PIInAuditEntry
from yinsi.audit.hashing import HashAlg
from yinsi.audit.log import AuditLog, ChainInfo, InclusionProof
from yinsi.audit.model import ACTION_LABELS, SYSTEM_ACTOR, AuditAction, AuditEntry, AuditRecord, Checkpoint
from yinsi.audit.pi_guard import check_no_pi, find_pi
from yinsi.audit.signing import SignAlg
from yinsi.audit.verify import KINDS, Problem, VerifyResult

__all__ = [
    "ACTION_LABELS",
    "KINDS",
    "SYSTEM_ACTOR",
    "AuditAction",
    "AuditEntry",
    "AuditError",
    "AuditKeyError",
    "AuditLog",
    "AuditRecord",
    "ChainConfigConflict",
    "ChainInfo",
    "Checkpoint",
    "HashAlg",
    "InclusionProof",
    "InvalidAuditEntry",
    "PIInAuditEntry",
    "Problem",
    "SignAlg",
    "VerifyResult",
    "check_no_pi",
    "find_pi",
]
