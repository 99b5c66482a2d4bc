"""The tamper-evident audit log (防篡改审计日志, GB/T 35273 11.7; RULES S5, S3, S6).

Append-only, hash-chained entries per tenant; periodic signed checkpoints over a Merkle root; a
verifier that names the first bad entry. Entries hold pseudonymised subjects and PI item IDs, never PI
values. See ``docs/audit.md``.
"""

from __future__ import annotations

from yinsi.audit.errors import AuditError, AuditKeyError, ChainConfigConflict, InvalidAuditEntry, PIInAuditEntry
from yinsi.audit.hashing import HashAlg
from yinsi.audit.log import AuditLog, ChainInfo, CheckpointTimer, ConsistencyProof, InclusionProof, checkpoint_pending
from yinsi.audit.model import ACTION_LABELS, SYSTEM_ACTOR, AuditAction, AuditEntry, AuditRecord, Checkpoint
from yinsi.audit.pi_guard import check_no_pi, find_pi
from yinsi.audit.signing import SignAlg
from yinsi.audit.verify import KINDS, WARNING_KINDS, Problem, VerifyResult
from yinsi.audit.witness import DatabaseWitness, FileWitness, WitnessStore

__all__ = [
    "ACTION_LABELS",
    "KINDS",
    "SYSTEM_ACTOR",
    "WARNING_KINDS",
    "AuditAction",
    "AuditEntry",
    "AuditError",
    "AuditKeyError",
    "AuditLog",
    "AuditRecord",
    "ChainConfigConflict",
    "ChainInfo",
    "Checkpoint",
    "CheckpointTimer",
    "ConsistencyProof",
    "DatabaseWitness",
    "FileWitness",
    "HashAlg",
    "InclusionProof",
    "InvalidAuditEntry",
    "PIInAuditEntry",
    "Problem",
    "SignAlg",
    "VerifyResult",
    "WitnessStore",
    "check_no_pi",
    "checkpoint_pending",
    "find_pi",
]
