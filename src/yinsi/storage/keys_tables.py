"""Tables of envelope encryption (信封加密) and of protected identifiers (受保护的标识符).

``data_keys`` holds every tenant's keys *wrapped* by the master key, never in the clear: the field
encryption keys (purpose ``data``, one version per rotation), the blind-index key (``index``) and the
pseudonym key (``pseudonym``). ``key_rotations`` and ``key_rotation_columns`` record rotation progress
so an interrupted rotation resumes. ``subject_identifiers`` lets Yinsi find a subject by phone number,
ID number or e-mail through a blind index, holding the value itself only encrypted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from yinsi.storage.tables import MYSQL_TABLE_ARGS, TENANT_ID_LEN, Base
from yinsi.storage.types import LargeText, UTCDateTime

PURPOSE_LEN = 16
ALGORITHM_LEN = 32
STATUS_LEN = 16
FINGERPRINT_LEN = 32
IDENT_LEN = 128
FIELD_LEN = 200
SUBJECT_LEN = 128
KIND_LEN = 32
BLIND_INDEX_LEN = 64


class DataKeyRow(Base):
    """One version of one tenant key, wrapped (AES-256-GCM or SM4 under the master key).

    ``status``: ``active`` (used to encrypt; one per tenant and purpose), ``retiring`` (superseded, still
    used by some ciphertext), ``retired`` (no registered ciphertext uses it; still able to decrypt, e.g. a
    restored backup). ``master_key_id`` is the fingerprint of the master key that wrapped it.
    """

    __tablename__ = "data_keys"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(PURPOSE_LEN), primary_key=True)
    key_version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    algorithm: Mapped[str] = mapped_column(String(ALGORITHM_LEN))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    master_key_id: Mapped[str] = mapped_column(String(FINGERPRINT_LEN))
    status: Mapped[str] = mapped_column(String(STATUS_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class KeyRotationRow(Base):
    """One rotation of a tenant's data key to ``to_version`` (``running`` until every column is done)."""

    __tablename__ = "key_rotations"
    __table_args__ = (
        Index("ix_key_rotations_tenant_status", "tenant_id", "status"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    to_version: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(ALGORITHM_LEN))
    status: Mapped[str] = mapped_column(String(STATUS_LEN))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class KeyRotationColumnRow(Base):
    """Progress of one rotation over one encrypted column. A column is scanned in primary-key order in
    passes; ``cursor`` is the last key committed in the current pass (JSON), ``pass_seen``/``pass_changed``
    count rows read and rewritten in it. The column is ``finished`` after a whole pass rewrote nothing."""

    __tablename__ = "key_rotation_columns"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    rotation_id: Mapped[int] = mapped_column(Integer, ForeignKey("key_rotations.id"), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(IDENT_LEN), primary_key=True)
    column_name: Mapped[str] = mapped_column(String(IDENT_LEN), primary_key=True)
    field_name: Mapped[str] = mapped_column(String(FIELD_LEN))
    cursor: Mapped[str | None] = mapped_column(LargeText)
    pass_no: Mapped[int] = mapped_column(Integer)
    pass_seen: Mapped[int] = mapped_column(BigInteger)
    pass_changed: Mapped[int] = mapped_column(BigInteger)
    total_reencrypted: Mapped[int] = mapped_column(BigInteger)
    finished: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SubjectIdentifierRow(Base):
    """A subject's identifier of one kind (``mobile_phone``, ``id_card``, ``email``): its blind index for
    look-up and the value encrypted (field ``subject_identifiers.value``). Never the value in clear."""

    __tablename__ = "subject_identifiers"
    __table_args__ = (
        Index("ix_subject_identifiers_lookup", "tenant_id", "kind", "blind_index"),
        MYSQL_TABLE_ARGS,
    )

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_LEN), primary_key=True)
    kind: Mapped[str] = mapped_column(String(KIND_LEN), primary_key=True)
    blind_index: Mapped[str] = mapped_column(String(BLIND_INDEX_LEN))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
