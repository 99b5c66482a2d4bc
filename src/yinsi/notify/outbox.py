"""The transactional outbox (事务性发件箱): a notice exists if and only if the change that caused it committed.

Writing: :meth:`Outbox.enqueue_in` adds a row to the *caller's* session, so the message commits or rolls
back with the change (a rights request's state, a cancellation) that caused it. Nothing is sent then.

Sending: :meth:`Outbox.deliver` works in short transactions of its own:

1. *Claim* due messages (``pending`` and ``next_attempt_at <= now``): each claim is a compare-and-set on
   ``attempts`` that adds one attempt and pushes ``next_attempt_at`` forward by the lease. Two deliverers
   never claim the same message at once; a deliverer that dies after claiming leaves a message that is due
   again when the lease runs out.
2. *Send* it through the channel adapter, outside any transaction.
3. *Mark* it: ``sent`` (the payload is erased) once the channel accepted it; on a temporary failure
   ``next_attempt_at = now + backoff`` (30 s, 1 min, 2 min … capped at 6 h); ``dead`` after a permanent
   refusal or ``max_attempts`` attempts; ``expired`` if it was not sent before its ``expires_at``.

So a message is never lost (it is marked sent only after the channel accepted it), and it may be sent
twice: if the process dies between the channel accepting it and the mark committing, the message is sent
again after the lease (at least once, 至少一次). Channels get a stable ``message_id`` to de-duplicate.

The recipient address, subject and body are PI (a phone number, a one-time code): the row keeps them only
encrypted with the tenant's data key (field ``outbox.payload``), and erases them once sent or expired.
Errors are stored and logged without addresses or digits runs; nothing here logs an address or a body.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from yinsi.notify.channels import EMAIL, SMS, Channel, OutgoingMessage
from yinsi.notify.errors import ChannelError, NotifyError
from yinsi.protect.blind_index import normalise
from yinsi.protect.crypto import FieldCipher
from yinsi.protect.errors import InvalidIdentifier, KeyNotFound, ProtectError
from yinsi.protect.masking import mask_email, mask_generic, mask_mobile
from yinsi.storage.notify_tables import (
    CHANNEL_LEN,
    ERROR_LEN,
    KIND_LEN,
    MASKED_LEN,
    OUTBOX_PAYLOAD_FIELD,
    REF_LEN,
    OutboxMessage,
)

__all__ = ["DeliveryOutcome", "DeliveryReport", "MessageInfo", "MessageStatus", "Outbox", "RetryPolicy"]

log = logging.getLogger(__name__)

PAYLOAD_VERSION = 1
_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MessageStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"
    EXPIRED = "expired"


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff: attempt *n* failing waits ``min(base * 2**(n-1), max_delay)``.

    ``lease`` is how long a claimed message is reserved for its deliverer (longer than any send takes);
    ``max_attempts`` claims in all, then the message is ``dead``.
    """

    max_attempts: int = 8
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=6)
    lease: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay <= timedelta(0) or self.max_delay < self.base_delay or self.lease <= timedelta(0):
            raise ValueError("delays and the lease must be positive, max_delay >= base_delay")

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th attempt failed."""
        exponent = max(0, min(attempts - 1, 40))
        delay: timedelta = self.base_delay * (2**exponent)
        return min(delay, self.max_delay)


@dataclass(frozen=True)
class DeliveryOutcome:
    """What happened to one message in one :meth:`Outbox.deliver` run (no address, no body)."""

    message_id: int
    channel: str
    kind: str
    outcome: str  # "sent" | "retry" | "dead" | "expired"
    attempts: int
    error: str | None = None
    next_attempt_at: datetime | None = None


@dataclass
class DeliveryReport:
    outcomes: list[DeliveryOutcome] = field(default_factory=list)

    def _count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)

    @property
    def sent(self) -> int:
        return self._count("sent")

    @property
    def retrying(self) -> int:
        return self._count("retry")

    @property
    def dead(self) -> int:
        return self._count("dead")

    @property
    def expired(self) -> int:
        return self._count("expired")

    @property
    def attempted(self) -> int:
        return len(self.outcomes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempted": self.attempted, "sent": self.sent, "retrying": self.retrying, "dead": self.dead,
            "expired": self.expired,
            "messages": [
                {"id": o.message_id, "channel": o.channel, "kind": o.kind, "outcome": o.outcome,
                 "attempts": o.attempts, "error": o.error,
                 "next_attempt_at": o.next_attempt_at.isoformat() if o.next_attempt_at else None}
                for o in self.outcomes
            ],
        }


@dataclass(frozen=True)
class MessageInfo:
    """A message as staff may see it: the recipient masked, never the body."""

    id: int
    tenant: str
    channel: str
    kind: str
    ref: str | None
    recipient_masked: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    expires_at: datetime | None
    sent_at: datetime | None

    @classmethod
    def of(cls, row: OutboxMessage) -> MessageInfo:
        return cls(row.id, row.tenant_id, row.channel, row.kind, row.ref, row.recipient_masked, row.status,
                   row.attempts, row.next_attempt_at, row.last_error, row.created_at, row.expires_at, row.sent_at)


class CipherSource(Protocol):
    """What the outbox needs of a :class:`~yinsi.protect.keys.KeyRing`."""

    def cipher(self, tenant: str) -> FieldCipher: ...


def normalise_address(channel: str, to: str) -> str:
    """The canonical address for ``channel`` (a mainland mobile number for SMS, a lower-cased e-mail
    address for e-mail; other channels' addresses, e.g. push tokens, are kept as given)."""
    if not isinstance(to, str) or not to.strip():
        raise NotifyError("收件地址不能为空")
    try:
        if channel == SMS:
            return normalise("mobile_phone", to)
        if channel == EMAIL:
            return normalise("email", to)
    except InvalidIdentifier as exc:
        raise NotifyError(f"收件地址无效：{exc}") from None
    return to.strip()


def mask_address(channel: str, to: str) -> str:
    """The address as it may be displayed (138****8000, z***@example.com)."""
    if channel == SMS:
        return mask_mobile(to)
    if channel == EMAIL:
        return mask_email(to)
    return mask_generic(to)


def scrub(text: str, *secrets_: str) -> str:
    """``text`` without the given values, e-mail addresses or runs of 6+ digits (phones, codes)."""
    out = text
    for value in secrets_:
        if value:
            out = out.replace(value, "***")
    out = re.sub(r"[^\s@<>(),;:\"']+@[^\s@<>(),;:\"']+", "***@***", out)
    out = re.sub(r"\d{6,}", lambda m: "*" * len(m.group()), out)
    return out[:ERROR_LEN]


def _check_name(what: str, value: str, limit: int) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value) or len(value) > limit:
        raise NotifyError(f"{what} 应为小写英文标识（不超过 {limit} 个字符），实际为 {value!r}")
    return value


class Outbox:
    """The outbox on Yinsi's database.

    ``session_factory`` opens the deliverer's own sessions; ``keys`` (a :class:`~yinsi.protect.keys.KeyRing`)
    encrypts and decrypts payloads; ``channels`` maps a channel name (``email``, ``sms``) to its adapter —
    a process that only enqueues needs none.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        keys: CipherSource,
        channels: Mapping[str, Channel] | None = None,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._sessions = session_factory
        self._keys = keys
        self.channels: dict[str, Channel] = dict(channels or {})
        self.retry = retry or RetryPolicy()
        self._clock = clock

    @classmethod
    def from_env(
        cls,
        session_factory: sessionmaker[Session],
        keys: CipherSource,
        environ: Mapping[str, str] | None = None,
        *,
        retry: RetryPolicy | None = None,
    ) -> Outbox:
        """An outbox with the channels configured by ``YINSI_SMTP_*`` and ``YINSI_SMS_OUTBOX_DIR``."""
        from yinsi.notify.settings import NotifySettings

        return cls(session_factory, keys, NotifySettings.from_env(environ).channels(), retry=retry)

    # -- writing -----------------------------------------------------------------------------------

    def enqueue_in(
        self,
        session: Session,
        tenant: str,
        channel: str,
        to: str,
        subject: str,
        body: str,
        kind: str,
        ref: str | None = None,
        *,
        now: datetime | None = None,
        expires_at: datetime | None = None,
        template: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> int:
        """Add a message to ``session`` (the caller's transaction) and return its id; the caller commits.

        ``to`` is validated and normalised for the channel; ``expires_at`` drops a message that could not
        be sent in time (a verification code after its expiry); ``template``/``params`` are for SMS
        gateways that only send pre-approved templates.
        """
        _check_name("渠道", channel, CHANNEL_LEN)
        _check_name("消息类型", kind, KIND_LEN)
        if ref is not None and (not ref or len(ref) > REF_LEN):
            raise NotifyError(f"ref 应为 1–{REF_LEN} 个字符")
        if not isinstance(body, str) or not body.strip():
            raise NotifyError("消息正文不能为空")
        address = normalise_address(channel, to)
        at = now or self._clock()
        payload = json.dumps(
            {"v": PAYLOAD_VERSION, "to": address, "subject": subject, "body": body, "template": template,
             "params": {str(k): str(v) for k, v in (params or {}).items()}},
            ensure_ascii=False, sort_keys=True,
        ).encode("utf-8")
        try:
            token = self._keys.cipher(tenant).encrypt_bytes(OUTBOX_PAYLOAD_FIELD, payload)
        except KeyNotFound:
            raise NotifyError(f"租户 {tenant} 还没有数据密钥，无法加密收件地址；请运行：yinsi keys create {tenant}") from None
        row = OutboxMessage(
            tenant_id=tenant, channel=channel, kind=kind, ref=ref,
            recipient_masked=mask_address(channel, address)[:MASKED_LEN], payload=token,
            status=MessageStatus.PENDING.value, attempts=0, next_attempt_at=at, last_error=None, provider_id=None,
            created_at=at, expires_at=expires_at, sent_at=None,
        )
        session.add(row)
        session.flush()
        return row.id

    # -- sending -----------------------------------------------------------------------------------

    def deliver(self, limit: int = 100, *, now: datetime | None = None, tenant: str | None = None) -> DeliveryReport:
        """Send up to ``limit`` due messages (of one tenant, or all); see the module docstring.

        ``now`` fixes the clock for the whole run (tests); by default the outbox's clock is read at each step.
        """
        clock: Callable[[], datetime] = (lambda: now) if now is not None else self._clock
        report = DeliveryReport()
        for message, attempts in self._claim(limit, clock(), tenant, report):
            report.outcomes.append(self._send_one(message, attempts, clock))
        return report

    def _claim(self, limit: int, now: datetime, tenant: str | None,
               report: DeliveryReport) -> list[tuple[OutgoingMessage, int]]:
        claimed: list[tuple[OutgoingMessage, int]] = []
        with self._sessions() as session, session.begin():
            query = select(OutboxMessage).where(OutboxMessage.status == MessageStatus.PENDING.value,
                                                OutboxMessage.next_attempt_at <= now)
            if tenant is not None:
                query = query.where(OutboxMessage.tenant_id == tenant)
            rows = session.scalars(query.order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)).all()
            for row in rows:
                base = update(OutboxMessage).where(
                    OutboxMessage.id == row.id, OutboxMessage.status == MessageStatus.PENDING.value,
                    OutboxMessage.attempts == row.attempts,
                ).execution_options(synchronize_session=False)
                if row.expires_at is not None and now >= row.expires_at:
                    if self._cas(session, base.values(status=MessageStatus.EXPIRED.value, payload=None,
                                                      last_error="未能在有效期内发出")):
                        report.outcomes.append(DeliveryOutcome(row.id, row.channel, row.kind, "expired", row.attempts))
                        log.info("outbox message %s expired unsent", row.id)
                    continue
                if row.attempts >= self.retry.max_attempts:  # every earlier claim died mid-way
                    error = "多次投递中断，已放弃"
                    if self._cas(session, base.values(status=MessageStatus.DEAD.value, last_error=error)):
                        report.outcomes.append(DeliveryOutcome(row.id, row.channel, row.kind, "dead", row.attempts, error))
                    continue
                try:
                    message = self._decrypt(row)
                except (ProtectError, ValueError, KeyError, TypeError) as exc:
                    error = scrub(f"消息内容无法解密（{type(exc).__name__}）")
                    if self._cas(session, base.values(status=MessageStatus.DEAD.value, last_error=error,
                                                      attempts=row.attempts + 1)):
                        report.outcomes.append(DeliveryOutcome(row.id, row.channel, row.kind, "dead",
                                                               row.attempts + 1, error))
                        log.error("outbox message %s cannot be decrypted: %s", row.id, error)
                    continue
                if self._cas(session, base.values(attempts=row.attempts + 1,
                                                  next_attempt_at=now + self.retry.lease)):
                    claimed.append((message, row.attempts + 1))
        return claimed

    @staticmethod
    def _cas(session: Session, statement: Any) -> bool:
        result = session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0) == 1

    def _decrypt(self, row: OutboxMessage) -> OutgoingMessage:
        if row.payload is None:
            raise ValueError("no payload")
        data = json.loads(self._keys.cipher(row.tenant_id).decrypt_bytes(OUTBOX_PAYLOAD_FIELD, row.payload))
        if data.get("v") != PAYLOAD_VERSION:
            raise ValueError("unknown payload version")
        return OutgoingMessage(
            message_id=row.id, tenant=row.tenant_id, channel=row.channel, to=data["to"], subject=data["subject"],
            body=data["body"], kind=row.kind, ref=row.ref, template=data.get("template"),
            params=dict(data.get("params") or {}),
        )

    def _send_one(self, message: OutgoingMessage, attempts: int, clock: Callable[[], datetime]) -> DeliveryOutcome:
        adapter = self.channels.get(message.channel)
        permanent = False
        provider_id: str | None = None
        error: str | None = None
        if adapter is None:
            error = f"没有配置渠道 {message.channel} 的适配器"
        else:
            try:
                provider_id = adapter.send(message)
            except ChannelError as exc:
                error, permanent = scrub(str(exc), message.to), exc.permanent
            except Exception as exc:  # an adapter bug or an unexpected library error: retry
                error = scrub(f"{type(exc).__name__}: {exc}", message.to)
        now = clock()
        where = update(OutboxMessage).where(
            OutboxMessage.id == message.message_id, OutboxMessage.status == MessageStatus.PENDING.value,
        ).execution_options(synchronize_session=False)
        with self._sessions() as session, session.begin():
            if error is None:
                session.execute(where.values(status=MessageStatus.SENT.value, sent_at=now, payload=None,
                                             last_error=None,
                                             provider_id=scrub(provider_id or "", message.to)[:MASKED_LEN] or None))
                log.info("outbox message %s sent via %s (attempt %s)", message.message_id, message.channel, attempts)
                return DeliveryOutcome(message.message_id, message.channel, message.kind, "sent", attempts)
            mine = where.where(OutboxMessage.attempts == attempts)  # not if another deliverer reclaimed it since
            if permanent or attempts >= self.retry.max_attempts:
                session.execute(mine.values(status=MessageStatus.DEAD.value, last_error=error))
                log.warning("outbox message %s via %s given up after %s attempt(s): %s", message.message_id,
                            message.channel, attempts, error)
                return DeliveryOutcome(message.message_id, message.channel, message.kind, "dead", attempts, error)
            next_at = now + self.retry.delay(attempts)
            session.execute(mine.values(next_attempt_at=next_at, last_error=error))
            log.warning("outbox message %s via %s failed (attempt %s), retry at %s: %s", message.message_id,
                        message.channel, attempts, next_at.isoformat(), error)
            return DeliveryOutcome(message.message_id, message.channel, message.kind, "retry", attempts, error, next_at)

    # -- staff operations --------------------------------------------------------------------------

    def requeue(self, message_id: int, *, tenant: str | None = None, now: datetime | None = None) -> bool:
        """Put a ``dead`` message back in the queue with a fresh attempt budget; ``False`` if it is not dead."""
        at = now or self._clock()
        statement = update(OutboxMessage).where(
            OutboxMessage.id == message_id, OutboxMessage.status == MessageStatus.DEAD.value,
            OutboxMessage.payload.is_not(None),
        )
        if tenant is not None:
            statement = statement.where(OutboxMessage.tenant_id == tenant)
        with self._sessions() as session, session.begin():
            return self._cas(session, statement.values(status=MessageStatus.PENDING.value, attempts=0,
                                                       next_attempt_at=at, last_error=None)
                             .execution_options(synchronize_session=False))

    def get(self, message_id: int, *, tenant: str | None = None) -> MessageInfo | None:
        with self._sessions() as session:
            row = session.get(OutboxMessage, message_id)
            if row is None or (tenant is not None and row.tenant_id != tenant):
                return None
            return MessageInfo.of(row)

    def messages(self, tenant: str, ref: str | None = None, *, status: str | None = None) -> list[MessageInfo]:
        """The tenant's messages (about ``ref``, in ``status``), oldest first."""
        query = select(OutboxMessage).where(OutboxMessage.tenant_id == tenant)
        if ref is not None:
            query = query.where(OutboxMessage.ref == ref)
        if status is not None:
            query = query.where(OutboxMessage.status == status)
        with self._sessions() as session:
            return [MessageInfo.of(r) for r in session.scalars(query.order_by(OutboxMessage.id))]

    def prune(self, before: datetime, *, tenant: str | None = None) -> int:
        """Delete ``sent`` and ``expired`` messages created before ``before``; returns how many."""
        statement = delete(OutboxMessage).where(
            OutboxMessage.status.in_([MessageStatus.SENT.value, MessageStatus.EXPIRED.value]),
            OutboxMessage.created_at < before,
        )
        if tenant is not None:
            statement = statement.where(OutboxMessage.tenant_id == tenant)
        with self._sessions() as session, session.begin():
            result = session.execute(statement.execution_options(synchronize_session=False))
            return int(getattr(result, "rowcount", 0) or 0)
