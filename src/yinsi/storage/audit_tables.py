"""Tables of the tamper-evident audit log (审计日志), written only by ``yinsi.audit``.

- ``audit_entries``: the append-only entries, one hash chain per tenant, primary key ``(tenant_id, seq)``.
- ``audit_chains``: one head row per chain (its algorithms, last seq and hash, the Merkle frontier and
  the last checkpoint). Appenders lock it (``SELECT … FOR UPDATE``, or SQLite's write lock), which
  serialises appends to one chain without blocking other tenants.
- ``audit_checkpoints``: signed checkpoints over the Merkle root of entries ``1..upto_seq``.
- ``audit_keys``: public keys of the checkpoint signers, by key id (installation-wide: one key signs the
  checkpoints of every chain; the public key is not tenant data).

There is deliberately no foreign key to ``tenants``: the audit trail must be writable before a tenant's
first publication, and deleting a tenant must never be able to cascade into its audit trail.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yinsi.storage.tables import HASH_LEN, MYSQL_TABLE_ARGS, TENANT_ID_LEN, Base
from yinsi.storage.types import LargeText, UTCDateTime

ACTOR_LEN = 128
ACTION_LEN = 32
SUBJECT_LEN = 128
ALG_LEN = 16
UID_LEN = 36
KEY_ID_LEN = 64
SIGNATURE_LEN = 512


class AuditChainRow(Base):
    """The head of one tenant's chain (链头). Mutable state derived from the entries; verification
    cross-checks it but never trusts it."""

    __tablename__ = "audit_chains"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), primary_key=True)
    chain_uid: Mapped[str] = mapped_column(String(UID_LEN))
    hash_alg: Mapped[str] = mapped_column(String(ALG_LEN))
    sign_alg: Mapped[str] = mapped_column(String(ALG_LEN))
    checkpoint_every: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    #: RFC 6962 compact range: the roots of the perfect subtrees of the entries 1..last_seq, as hex.
    frontier: Mapped[str] = mapped_column(LargeText)
    last_checkpoint_no: Mapped[int] = mapped_column(Integer)
    last_checkpoint_seq: Mapped[int] = mapped_column(BigInteger)
    last_checkpoint_hash: Mapped[str | None] = mapped_column(String(HASH_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEntryRow(Base):
    """One audit entry (审计记录), never updated. ``subject`` is a pseudonym, ``items`` PI item IDs."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_tenant_subject", "tenant_id", "subject", "seq"),
        MYSQL_TABLE_ARGS,
    )

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(ACTOR_LEN))
    action: Mapped[str] = mapped_column(String(ACTION_LEN))
    subject: Mapped[str | None] = mapped_column(String(SUBJECT_LEN))
    items: Mapped[str] = mapped_column(LargeText)
    reason: Mapped[str | None] = mapped_column(LargeText)
    details: Mapped[str] = mapped_column(LargeText)
    prev_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    entry_hash: Mapped[str] = mapped_column(String(HASH_LEN))


class AuditKeyRow(Base):
    """A checkpoint signer's public key (签名公钥). ``endorsed_by`` is the key's successor after a rotation,
    whose signature over this row (``endorsement``) keeps old checkpoints verifiable from the new key."""

    __tablename__ = "audit_keys"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    key_id: Mapped[str] = mapped_column(String(KEY_ID_LEN), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(ALG_LEN))
    public_key: Mapped[str] = mapped_column(String(SIGNATURE_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    endorsed_by: Mapped[str | None] = mapped_column(String(KEY_ID_LEN))
    endorsement: Mapped[str | None] = mapped_column(String(SIGNATURE_LEN))


class AuditCheckpointRow(Base):
    """A signed checkpoint (签名检查点): the Merkle root of entries 1..upto_seq, the tip, and a link to
    the previous checkpoint."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = (
        UniqueConstraint("tenant_id", "upto_seq", name="uq_audit_checkpoints_tenant_id_upto_seq"),
        MYSQL_TABLE_ARGS,
    )

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), primary_key=True)
    checkpoint_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    chain_uid: Mapped[str] = mapped_column(String(UID_LEN))
    upto_seq: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[str] = mapped_column(String(HASH_LEN))
    tip_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    prev_checkpoint_hash: Mapped[str | None] = mapped_column(String(HASH_LEN))
    checkpoint_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    hash_alg: Mapped[str] = mapped_column(String(ALG_LEN))
    sign_alg: Mapped[str] = mapped_column(String(ALG_LEN))
    key_id: Mapped[str] = mapped_column(String(KEY_ID_LEN), ForeignKey("audit_keys.key_id"))
    signature: Mapped[str] = mapped_column(String(SIGNATURE_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
