"""Tables of the notification outbox (通知发件箱) and of identity-verification codes (身份验证码).

``outbox`` is a transactional outbox: a row is written in the same transaction as the change that causes
the notice, and a deliverer sends it afterwards through a channel adapter (at least once). The recipient
address, subject and body are PI (a phone number, an e-mail address, a one-time code): they are kept only
encrypted, in ``payload`` (field ``outbox.payload``, a Yinsi token of a JSON object), and erased once the
message is sent or has expired; ``recipient_masked`` is what staff see.

``verification_codes`` holds one row per challenge: the code's Argon2id hash only, never the code.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from yinsi.storage.tables import MYSQL_TABLE_ARGS, TENANT_ID_LEN, Base
from yinsi.storage.types import UTCDateTime

CHANNEL_LEN = 16
KIND_LEN = 32
REF_LEN = 128
STATUS_LEN = 16
MASKED_LEN = 200
ERROR_LEN = 500
CODE_HASH_LEN = 200
CHALLENGE_ID_LEN = 36

#: An auto-incrementing 64-bit key; SQLite only auto-increments INTEGER PRIMARY KEY.
MessageId = BigInteger().with_variant(Integer(), "sqlite")


class OutboxMessage(Base):
    """One message to send (发件箱消息).

    ``status``: ``pending`` (to send at ``next_attempt_at``; a deliverer that claims it pushes
    ``next_attempt_at`` forward by its lease, so a crashed deliverer's message comes back by itself),
    ``sent`` (the channel accepted it), ``dead`` (gave up: a permanent refusal or too many attempts; the
    payload is kept so staff can requeue it) or ``expired`` (not sent before ``expires_at``, e.g. a
    verification code that would no longer work). ``payload`` is NULL once sent or expired.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_tenant_ref", "tenant_id", "ref"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(MessageId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    channel: Mapped[str] = mapped_column(String(CHANNEL_LEN))
    kind: Mapped[str] = mapped_column(String(KIND_LEN))
    ref: Mapped[str | None] = mapped_column(String(REF_LEN))
    recipient_masked: Mapped[str] = mapped_column(String(MASKED_LEN))
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(STATUS_LEN))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(ERROR_LEN))
    provider_id: Mapped[str | None] = mapped_column(String(MASKED_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class VerificationCodeRow(Base):
    """One identity-verification challenge (身份验证): a one-time code sent to an address already on record.

    ``status``: ``pending``, ``verified`` (used once; never again), ``locked`` (``max_attempts`` wrong
    codes), ``expired``, or ``superseded`` (a newer code was sent for the same request).
    """

    __tablename__ = "verification_codes"
    __table_args__ = (
        Index("ix_verification_codes_tenant_request", "tenant_id", "request_ref", "created_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(CHALLENGE_ID_LEN), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    request_ref: Mapped[str] = mapped_column(String(REF_LEN))
    channel: Mapped[str] = mapped_column(String(CHANNEL_LEN))
    recipient_masked: Mapped[str] = mapped_column(String(MASKED_LEN))
    code_hash: Mapped[str] = mapped_column(String(CODE_HASH_LEN))
    status: Mapped[str] = mapped_column(String(STATUS_LEN))
    attempts: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    outbox_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


def register_rotation_columns() -> None:
    """Put ``outbox.payload`` in the key-rotation registry, so ``yinsi keys rotate`` re-encrypts pending and
    dead messages. Call it once the ``outbox`` table exists in every migrated database (migration 0006);
    a registered column whose table is missing makes every rotation fail."""
    from yinsi.protect.registry import EncryptedColumn, register_encrypted_column

    register_encrypted_column(EncryptedColumn("outbox", "payload", field=OUTBOX_PAYLOAD_FIELD))


#: The field name ``outbox.payload`` tokens are encrypted with.
OUTBOX_PAYLOAD_FIELD = "outbox.payload"
