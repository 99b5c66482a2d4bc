"""Identity verification by one-time code (一次性验证码身份验证) for rights requests.

Rules (docs/notify.md):

- **Only PI already held (R8, GB/T 35273 8.5).** The code goes to an address the operator *already holds*
  for the subject: the caller looks it up (the app's own data, or Yinsi's encrypted
  ``subject_identifiers``) and passes it as ``address_on_record``. If the person also typed an address
  (``claimed``), it must equal the one on record, else nothing is sent (:class:`AddressNotOnRecord`);
  the refusal never reveals the address on record. Nothing the person types is stored.
- **Codes are never stored.** A 6-digit code from :mod:`secrets`; only its Argon2id hash is kept
  (:mod:`yinsi.protect.passwords`); the message carrying it sits in the outbox encrypted and is erased once
  sent.
- **Expiry, attempts, single use.** A code lives ``ttl`` (10 minutes); ``max_attempts`` (5) wrong codes lock
  it; a code that verified once never verifies again; a newer code for the same request supersedes the
  older ones.
- **Resend limit.** At most 3 codes per request per rolling hour, and 60 seconds between two codes.

Time is an argument (``now``); only the outermost call defaults it to the current UTC time.
The caller owns the transaction and must commit after :func:`check_code` even when the code was wrong
(the attempt counter is part of the protection).
"""

from __future__ import annotations

import functools
import hmac
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from yinsi.notify.channels import EMAIL, SMS
from yinsi.notify.errors import NotifyError
from yinsi.notify.messages import verification_code_text
from yinsi.notify.outbox import Outbox, mask_address, normalise_address
from yinsi.protect.passwords import hash_one_time_code, new_one_time_code, verify_one_time_code
from yinsi.storage.notify_tables import REF_LEN, VerificationCodeRow

__all__ = [
    "AddressNotOnRecord",
    "Challenge",
    "ChannelKind",
    "ResendLimited",
    "ResendPolicy",
    "VerificationError",
    "VerificationResult",
    "check_code",
    "start_verification",
]

ChannelKind = Literal["sms", "email"]

CODE_DIGITS = 6
DEFAULT_TTL = timedelta(minutes=10)
DEFAULT_MAX_ATTEMPTS = 5
MESSAGE_KIND = "verification_code"
BEIJING = timezone(timedelta(hours=8), "CST")

PENDING, VERIFIED, LOCKED, EXPIRED, SUPERSEDED = "pending", "verified", "locked", "expired", "superseded"

_CHANNEL_ZH = {SMS: "手机号", EMAIL: "电子邮箱"}


@functools.cache
def _dummy_hash() -> str:
    """Verified against when there is nothing to verify, so that costs the same time as a wrong code."""
    return hash_one_time_code("000000")


class VerificationError(Exception):
    """Verification cannot start; the message is Chinese and may be shown to the person."""


class AddressNotOnRecord(VerificationError):
    """The address the person gave is not the one on record (R8): no code is sent."""


class ResendLimited(VerificationError):
    """Too many codes for this request; ``retry_after`` says when the next one may be sent."""

    def __init__(self, message: str, retry_after: datetime) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class ResendPolicy:
    """At most ``max_per_window`` codes per request in any ``window``, ``min_interval`` apart."""

    max_per_window: int = 3
    window: timedelta = timedelta(hours=1)
    min_interval: timedelta = timedelta(seconds=60)


@dataclass(frozen=True)
class Challenge:
    """A code that was sent (never the code itself)."""

    id: str
    tenant: str
    request_ref: str
    channel: str
    masked_address: str
    created_at: datetime
    expires_at: datetime
    max_attempts: int
    outbox_id: int

    @property
    def notice_zh(self) -> str:
        """What to tell the person, e.g. “验证码已发送至 138****8000，10分钟内有效。”"""
        minutes = max(1, int((self.expires_at - self.created_at).total_seconds() // 60))
        return f"验证码已发送至{_CHANNEL_ZH.get(self.channel, '')} {self.masked_address}，{minutes}分钟内有效。"


@dataclass(frozen=True)
class VerificationResult:
    """``ok`` and a Chinese reason; ``status`` is machine-readable: ``verified``, ``wrong_code``,
    ``locked``, ``expired``, ``used``, ``superseded``, ``unknown`` or ``conflict`` (retry)."""

    ok: bool
    reason_zh: str
    attempts_left: int
    status: str


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def start_verification(
    session: Session,
    outbox: Outbox,
    tenant: str,
    request_ref: str,
    channel_kind: ChannelKind,
    address_on_record: str,
    *,
    claimed: str | None = None,
    now: datetime | None = None,
    ttl: timedelta = DEFAULT_TTL,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    resend: ResendPolicy | None = None,
    app_name: str | None = None,
) -> Challenge:
    """Send a one-time code for ``request_ref`` to ``address_on_record`` through the outbox (in ``session``'s
    transaction: the code exists and is sent only if the caller commits) and return the challenge.

    Raises :class:`AddressNotOnRecord` if ``claimed`` is given and differs from the address on record,
    :class:`ResendLimited` past the resend limit, :class:`VerificationError` for an unusable address.
    """
    at = now or _utcnow()
    policy = resend or ResendPolicy()
    if channel_kind not in (SMS, EMAIL):
        raise ValueError(f"channel_kind is 'sms' or 'email', not {channel_kind!r}")
    if not request_ref or len(request_ref) > REF_LEN:
        raise ValueError(f"request_ref has 1 to {REF_LEN} characters")
    if ttl <= timedelta(0) or max_attempts < 1:
        raise ValueError("ttl must be positive and max_attempts at least 1")
    what = _CHANNEL_ZH[channel_kind]
    try:
        on_record = normalise_address(channel_kind, address_on_record)
    except NotifyError:
        raise VerificationError(f"记录中的{what}无效，无法发送验证码；请联系客服核实身份") from None
    if claimed is not None:
        try:
            given = normalise_address(channel_kind, claimed)
        except NotifyError:
            given = ""
        if not _same(given, on_record):
            raise AddressNotOnRecord(f"您填写的{what}与账号记录不一致，无法发送验证码。请使用账号绑定的{what}。")

    recent = session.execute(
        select(func.count(), func.min(VerificationCodeRow.created_at), func.max(VerificationCodeRow.created_at))
        .where(VerificationCodeRow.tenant_id == tenant, VerificationCodeRow.request_ref == request_ref,
               VerificationCodeRow.created_at > at - policy.window)
    ).one()
    count = int(recent[0] or 0)
    oldest: datetime | None = recent[1]  # min/max keep the column type: aware UTC datetimes
    latest: datetime | None = recent[2]
    if count >= policy.max_per_window and oldest is not None:
        retry_after = oldest + policy.window
        raise ResendLimited(f"验证码发送过于频繁（每小时最多 {policy.max_per_window} 次），请于 "
                            f"{_local(retry_after)} 后再试", retry_after)
    if latest is not None and at - latest < policy.min_interval:
        retry_after = latest + policy.min_interval
        seconds = max(1, int((retry_after - at).total_seconds()))
        raise ResendLimited(f"验证码已发送，请 {seconds} 秒后再重新获取", retry_after)

    session.execute(
        update(VerificationCodeRow)
        .where(VerificationCodeRow.tenant_id == tenant, VerificationCodeRow.request_ref == request_ref,
               VerificationCodeRow.status == PENDING)
        .values(status=SUPERSEDED, finished_at=at)
        .execution_options(synchronize_session=False)
    )
    code, code_hash = new_one_time_code(CODE_DIGITS)
    expires_at = at + ttl
    text = verification_code_text(code, max(1, int(ttl.total_seconds() // 60)), app_name)
    outbox_id = outbox.enqueue_in(
        session, tenant, channel_kind, on_record, text.subject, text.body, MESSAGE_KIND, request_ref,
        now=at, expires_at=expires_at, template=text.template, params=text.params,
    )
    del code, text
    masked = mask_address(channel_kind, on_record)
    row = VerificationCodeRow(
        id=str(uuid.uuid4()), tenant_id=tenant, request_ref=request_ref, channel=channel_kind,
        recipient_masked=masked, code_hash=code_hash, status=PENDING, attempts=0, max_attempts=max_attempts,
        outbox_id=outbox_id, created_at=at, expires_at=expires_at, finished_at=None,
    )
    session.add(row)
    session.flush()
    return Challenge(row.id, tenant, request_ref, channel_kind, masked, at, expires_at, max_attempts, outbox_id)


def _local(moment: datetime) -> str:
    """Beijing time for people (UTC+8, no daylight saving)."""
    return moment.astimezone(BEIJING).strftime("%H:%M")


def _normalise_code(code: str) -> str | None:
    if not isinstance(code, str):
        return None
    text = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", code))
    return text if re.fullmatch(rf"\d{{{CODE_DIGITS}}}", text) else None


_FINISHED = {
    VERIFIED: ("该验证码已使用过，请重新获取验证码", "used"),
    LOCKED: ("验证码错误次数过多，已失效，请重新获取验证码", "locked"),
    EXPIRED: ("验证码已过期，请重新获取验证码", "expired"),
    SUPERSEDED: ("已发送新的验证码，此验证码已失效，请使用最新收到的验证码", "superseded"),
}


def check_code(
    session: Session,
    challenge_id: str,
    code: str,
    now: datetime | None = None,
    *,
    tenant: str | None = None,
) -> VerificationResult:
    """Check ``code`` against the challenge (constant-time, Argon2id); counts the attempt.

    ``tenant``, when given, must own the challenge (else it is ``unknown``). Commit afterwards whatever the
    result: the attempt counter and the lock live in this transaction.
    """
    at = now or _utcnow()
    row = session.get(VerificationCodeRow, challenge_id, populate_existing=True) if challenge_id else None
    if row is None or (tenant is not None and row.tenant_id != tenant):
        verify_one_time_code(_dummy_hash(), "999999")  # same cost as a real check
        return VerificationResult(False, "验证码无效，请重新获取验证码", 0, "unknown")
    if row.status in _FINISHED:
        reason, status = _FINISHED[row.status]
        return VerificationResult(False, reason, 0, status)
    base = (
        update(VerificationCodeRow)
        .where(VerificationCodeRow.id == row.id, VerificationCodeRow.status == PENDING,
               VerificationCodeRow.attempts == row.attempts)
        .execution_options(synchronize_session=False)
    )
    if at >= row.expires_at:
        session.execute(base.values(status=EXPIRED, finished_at=at))
        session.expire(row)
        reason, status = _FINISHED[EXPIRED]
        return VerificationResult(False, reason, 0, status)
    given = _normalise_code(code)
    if given is not None:
        ok = verify_one_time_code(row.code_hash, given)
    else:  # not six digits: a wrong code, at the same cost
        verify_one_time_code(_dummy_hash(), "999999")
        ok = False
    attempts = row.attempts + 1
    left = max(0, row.max_attempts - attempts)
    new_status = VERIFIED if ok else (LOCKED if left == 0 else PENDING)
    result = session.execute(base.values(
        attempts=attempts, status=new_status, finished_at=at if new_status != PENDING else None,
    ))
    session.expire(row)
    if int(getattr(result, "rowcount", 0) or 0) != 1:  # another check of the same code got there first
        return VerificationResult(False, "验证正在处理中，请稍后重试", 0, "conflict")
    if ok:
        return VerificationResult(True, "身份验证成功", left, "verified")
    if new_status == LOCKED:
        return VerificationResult(False, "验证码错误次数过多，此验证码已失效，请重新获取验证码", 0, "locked")
    return VerificationResult(False, f"验证码错误，还可尝试 {left} 次", left, "wrong_code")
