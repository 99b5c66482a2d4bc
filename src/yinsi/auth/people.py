"""People's sessions (个人信息主体的会话): how a data subject proves who they are to the privacy center.

Two ways in:

1. **A one-time code to a contact already on record** (R8: no new PI is collected). The person gives a
   phone number (or e-mail address); Yinsi finds the one subject whose attribute named by the data map's
   ``subjects[].verify_by`` equals it, in the app's own database, and sends a code there through the outbox
   (:func:`yinsi.rights.verification.start_verification`). When no subject (or more than one) matches,
   the answer is the same (a challenge with the masked address and expiry) but nothing is sent: the
   endpoint does not tell who is a user. The challenge exists either way and counts wrong codes the same.
2. **A deep link signed by the tenant's app** (:mod:`yinsi.auth.applinks`).

Rate limits (DB-backed sliding windows, :mod:`yinsi.auth.ratelimit`, keyed by the tenant's keyed hash of
the IP, the contact or the subject): codes per contact (5 an hour, one a minute) and per IP (20 an hour)
refuse with ``AuthError(code="rate_limited", status=429, retry_after=…)``; code checks per IP (60 an hour)
likewise. Codes per subject (10 an hour, over all its contacts) are limited **silently**: past the limit the
answer is unchanged and no code is sent, since a 429 there would say that two contacts belong to one person.

Sessions live in ``subject_sessions``: the subject as a blind index and encrypted, the token (``yps_…``,
32 random bytes) as its SHA-256 only. A session ends after :data:`SESSION_IDLE` (30 minutes) without use,
:data:`SESSION_LIFETIME` (12 hours) after it began, or at logout. ``last_seen_at`` is written at most once
a minute. Sessions are deleted a day after they end, login challenges a day after they expire.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from yinsi.auth.applinks import AppLinks
from yinsi.auth.principals import AuthError, PersonPrincipal
from yinsi.auth.ratelimit import Limit, RateLimiter
from yinsi.config import database_url, is_default_database
from yinsi.domain.datamap import DataMap
from yinsi.protect.errors import KeyNotFound, UnknownTenant
from yinsi.protect.keys import KeyRing
from yinsi.services.audit_trail import AuditTrail
from yinsi.storage.auth_tables import CHALLENGE_SUBJECT_FIELD, SESSION_SUBJECT_FIELD, LoginChallengeRow, SubjectSessionRow
from yinsi.storage.engine import make_engine, make_session_factory
from yinsi.storage.migrate import ensure_current
from yinsi.storage.notify_tables import VerificationCodeRow
from yinsi.storage.tables import PolicyVersion

Clock = Callable[[], datetime]

SESSION_IDLE = timedelta(minutes=30)
SESSION_LIFETIME = timedelta(hours=12)
#: ``last_seen_at`` is written at most this often.
TOUCH_EVERY = timedelta(seconds=60)
TOKEN_PREFIX = "yps_"
LOGIN_REF_PREFIX = "login:"
CODE_TTL = timedelta(minutes=10)
#: Ended sessions and expired login challenges are deleted this long after they end.
RETAIN_ENDED = timedelta(days=1)
#: How often (seconds, per process) they are looked for.
PURGE_EVERY = 300.0

SMS, EMAIL = "sms", "email"
_CONTACT_ZH = {SMS: "手机号", EMAIL: "电子邮箱"}
INVALID_SESSION = "会话无效或已过期，请重新登录"


@dataclass(frozen=True)
class PersonLimits:
    """The rate limits of code logins (see the module docstring)."""

    codes_per_contact: Limit = field(default_factory=lambda: Limit("code_contact", 5, timedelta(hours=1)))
    contact_interval: Limit = field(default_factory=lambda: Limit("code_contact_gap", 1, timedelta(seconds=60)))
    codes_per_ip: Limit = field(default_factory=lambda: Limit("code_ip", 20, timedelta(hours=1)))
    codes_per_subject: Limit = field(default_factory=lambda: Limit("code_subject", 10, timedelta(hours=1)))
    checks_per_ip: Limit = field(default_factory=lambda: Limit("check_ip", 60, timedelta(hours=1)))


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _candidates(channel: str, normalised: str, given: str) -> list[str]:
    """The forms the app may have stored a contact in."""
    forms = [normalised, given.strip()]
    if channel == SMS:
        forms += [f"+86{normalised}", f"+86 {normalised}", f"86{normalised}",
                  f"{normalised[:3]}-{normalised[3:7]}-{normalised[7:]}",
                  f"{normalised[:3]} {normalised[3:7]} {normalised[7:]}"]
    return list(dict.fromkeys(f for f in forms if f))


class PersonAuthService:
    """People's logins and sessions on one database.

    ``datamaps``: tenant → data map (to find the subject behind a contact); ``store_urls``: store id →
    address (else the map's ``connection``); ``channels``: outbox channel adapters (default: from the
    environment, see docs/notify.md). ``deliver``: ``"inline"`` sends a code before ``start_code``
    returns; ``"background"`` sends it from a thread (the API's choice: the answer then takes as long
    whether or not a code was sent); ``"none"`` leaves it to a deliverer (``yinsi notify deliver``).
    """

    def __init__(self, url: str | None = None, *, datamaps: Mapping[str, DataMap] | None = None,
                 store_urls: Mapping[str, str] | None = None, channels: Mapping[str, Any] | None = None,
                 clock: Clock = utcnow, limits: PersonLimits | None = None, deliver: str = "inline") -> None:
        if deliver not in ("inline", "background", "none"):
            raise ValueError("deliver is 'inline', 'background' or 'none'")
        self.url = url or database_url()
        ensure_current(self.url, auto_upgrade=is_default_database(self.url))
        self.engine = make_engine(self.url, pool_recycle=300)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.datamaps = dict(datamaps or {})
        self.store_urls = dict(store_urls or {})
        self.clock = clock
        self.limits = limits or PersonLimits()
        self.deliver_mode = deliver
        self.audit = AuditTrail(self.sessions)
        self.links = AppLinks(self.sessions, self.audit, clock)
        self.rate = RateLimiter(lambda: self.audit.ring)
        self._channels = channels
        self._outbox: Any = None
        self._keyed: set[str] = set()
        self._purged = 0.0

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> PersonAuthService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- wiring ------------------------------------------------------------------------------------------
    @property
    def ring(self) -> KeyRing:
        return self.audit.ring

    @property
    def outbox(self) -> Any:
        if self._outbox is None:
            from yinsi.notify.outbox import Outbox
            from yinsi.notify.settings import NotifySettings

            channels = self._channels if self._channels is not None else NotifySettings.from_env().channels()
            self._outbox = Outbox(self.sessions, self.ring, channels, clock=self.clock)
        return self._outbox

    def deliver(self, tenant: str | None = None) -> Any:
        """Send the due outbox messages now."""
        return self.outbox.deliver(tenant=tenant)

    def _keys(self, tenant: str) -> None:
        """The tenant's keys exist and are loaded before any write transaction (SQLite has one writer)."""
        if tenant in self._keyed:
            return
        try:
            try:
                self.ring.blind_index(tenant, "text", "-")
            except KeyNotFound:
                self.audit.ensure_tenant_keys(tenant)
            self.ring.active_data_key(tenant)
        except UnknownTenant:
            raise AuthError("unknown_tenant", f"租户 {tenant} 不存在", status=404) from None
        self._keyed.add(tenant)

    def _encrypt(self, tenant: str, field: str, value: str) -> str:
        return str(self.ring.cipher(tenant).encrypt_text(field, value))

    def _decrypt(self, tenant: str, field: str, token: str) -> str:
        return str(self.ring.cipher(tenant).decrypt_text(field, token))

    def _subject_index(self, tenant: str, kind: str | None, subject: str) -> str:
        return self.ring.blind_index(tenant, "text", f"subject:{kind or ''}:{subject}")

    # --- one-time codes ----------------------------------------------------------------------------------
    def start_code(self, tenant: str, contact: str, *, channel: str = SMS, ip: str | None = None,
                   kind: str | None = None) -> dict[str, Any]:
        """Send a login code to ``contact`` if it is on record for exactly one subject; answer the same way
        whether or not it is. Returns ``challenge_id``, ``channel``, ``masked_address``, ``expires_at``
        and a Chinese ``notice``. ``AuthError`` for a malformed contact (400), a rate limit (429), or
        a tenant that cannot verify by this channel (503)."""
        from yinsi.notify.errors import NotifyError
        from yinsi.notify.outbox import mask_address, normalise_address

        if channel not in (SMS, EMAIL):
            raise AuthError("invalid_channel", "验证码只能通过短信（sms）或电子邮件（email）发送", status=400)
        what = _CONTACT_ZH[channel]
        try:
            address = normalise_address(channel, contact)
        except NotifyError:
            raise AuthError("invalid_contact", f"{what}格式无效", status=400) from None
        kinds = self._verifiable_kinds(tenant, channel, kind)
        self._keys(tenant)
        now = self.clock()
        contact_key = self.rate.key(tenant, "contact", f"{channel}:{address}")
        checks = [(self.limits.codes_per_contact, contact_key), (self.limits.contact_interval, contact_key)]
        if ip:
            checks.append((self.limits.codes_per_ip, self.rate.key(tenant, "ip", ip)))
        with self.sessions() as s:
            self.rate.check(s, tenant, checks, now)
        match = self._find(tenant, kinds, channel, address, contact)
        subject_key = self.rate.key(tenant, "subject", f"{match[0]}:{match[1]}") if match else None
        encrypted = self._encrypt(tenant, CHALLENGE_SUBJECT_FIELD, match[1]) if match else None
        app_name = self._app_name(tenant)
        ref = f"{LOGIN_REF_PREFIX}{contact_key}"
        sent = False
        with self.sessions() as s:
            self.rate.record(s, tenant, checks, now)
            if match is not None and subject_key is not None and encrypted is not None and \
                    self.rate.retry_after(s, tenant, self.limits.codes_per_subject, subject_key, now) is None:
                from yinsi.rights.verification import ResendPolicy, start_verification

                self.rate.record(s, tenant, [(self.limits.codes_per_subject, subject_key)], now)
                challenge = start_verification(
                    s, self.outbox, tenant, ref, channel, address, now=now, ttl=CODE_TTL,  # type: ignore[arg-type]
                    resend=ResendPolicy(max_per_window=1_000_000, min_interval=timedelta(0)), app_name=app_name)
                s.add(LoginChallengeRow(id=challenge.id, tenant_id=tenant, subject_kind=match[0],
                                        subject_encrypted=encrypted, channel=channel, created_at=now,
                                        expires_at=challenge.expires_at))
                challenge_id, expires_at = challenge.id, challenge.expires_at
                sent = True
            else:
                challenge_id, expires_at = self._decoy(s, tenant, ref, channel, mask_address(channel, address), now)
            s.commit()
        if sent:
            self._deliver(tenant)
        minutes = int(CODE_TTL.total_seconds() // 60)
        masked = mask_address(channel, address)
        return {"challenge_id": challenge_id, "channel": channel, "masked_address": masked,
                "expires_at": expires_at.isoformat(),
                "notice": f"如该{what}已在账号中登记，验证码已发送至 {masked}，{minutes}分钟内有效。"}

    def _verifiable_kinds(self, tenant: str, channel: str, kind: str | None) -> list[tuple[str, str]]:
        """(subject kind, attribute) pairs whose ``verify_by`` names this channel."""
        dm = self.datamaps.get(tenant)
        pairs = [(s.id, s.verify_by[channel]) for s in (dm.subjects if dm is not None else [])
                 if channel in s.verify_by and (kind is None or s.id == kind)]
        if not pairs:
            raise AuthError("login_unavailable", f"该应用未配置通过{_CONTACT_ZH[channel]}验证码登录", status=503)
        return pairs

    def _find(self, tenant: str, kinds: list[tuple[str, str]], channel: str, address: str,
              given: str) -> tuple[str, str] | None:
        """The one (kind, subject key) whose contact on record is ``address``; ``None`` for none or several."""
        from yinsi.stores.base import StoreUnavailable, find_subjects

        dm = self.datamaps[tenant]
        found: list[tuple[str, str]] = []
        try:
            for kind, attribute in kinds:
                found += [(kind, key) for key in find_subjects(dm, kind, attribute, _candidates(channel, address, given),
                                                                self.store_urls)]
        except (StoreUnavailable, SQLAlchemyError):
            raise AuthError("login_unavailable", "暂时无法发送验证码，请稍后再试", status=503) from None
        return found[0] if len(found) == 1 else None

    def _decoy(self, s: Session, tenant: str, ref: str, channel: str, masked: str,
               now: datetime) -> tuple[str, datetime]:
        """A challenge like a real one (a hashed random code nobody receives), so checking codes against
        it behaves exactly as for a real one."""
        from yinsi.protect.passwords import new_one_time_code
        from yinsi.rights.verification import DEFAULT_MAX_ATTEMPTS, PENDING, SUPERSEDED

        s.execute(update(VerificationCodeRow)
                  .where(VerificationCodeRow.tenant_id == tenant, VerificationCodeRow.request_ref == ref,
                         VerificationCodeRow.status == PENDING)
                  .values(status=SUPERSEDED, finished_at=now).execution_options(synchronize_session=False))
        _, code_hash = new_one_time_code(6)
        row = VerificationCodeRow(id=str(uuid.uuid4()), tenant_id=tenant, request_ref=ref, channel=channel,
                                  recipient_masked=masked, code_hash=code_hash, status=PENDING, attempts=0,
                                  max_attempts=DEFAULT_MAX_ATTEMPTS, outbox_id=None, created_at=now,
                                  expires_at=now + CODE_TTL, finished_at=None)
        s.add(row)
        return row.id, row.expires_at

    def _app_name(self, tenant: str) -> str | None:
        with self.sessions() as s:
            return s.scalar(select(PolicyVersion.app_name).where(PolicyVersion.tenant_id == tenant)
                            .order_by(PolicyVersion.id.desc()).limit(1))

    def _deliver(self, tenant: str) -> None:
        if self.deliver_mode == "inline":
            self.deliver(tenant)
        elif self.deliver_mode == "background":
            threading.Thread(target=self._deliver_quietly, args=(tenant,), daemon=True).start()

    def _deliver_quietly(self, tenant: str) -> None:
        with contextlib.suppress(Exception):  # a failed delivery stays in the outbox; the deliverer retries it
            self.deliver(tenant)

    def verify_code(self, tenant: str, challenge_id: str, code: str, *,
                    ip: str | None = None) -> tuple[str, PersonPrincipal]:
        """Check the code of a login challenge; on success start a session and return ``(token,
        principal)``. ``AuthError`` ``invalid_code`` (401, Chinese reason: wrong, expired, locked …) or
        ``rate_limited`` (429)."""
        from yinsi.rights.verification import check_code

        self._keys(tenant)
        now = self.clock()
        if ip:
            hit = [(self.limits.checks_per_ip, self.rate.key(tenant, "ip", ip))]
            with self.sessions() as s:
                self.rate.check(s, tenant, hit, now)
                self.rate.record(s, tenant, hit, now)
                s.commit()
        cid = challenge_id if isinstance(challenge_id, str) and len(challenge_id) <= 36 else ""
        with self.sessions() as s:
            row = s.get(VerificationCodeRow, cid) if cid else None
            if row is None or not row.request_ref.startswith(LOGIN_REF_PREFIX):
                cid = ""  # a rights request's challenge never logs anyone in
            login = s.get(LoginChallengeRow, cid) if cid else None
            subject = self._decrypt(tenant, CHALLENGE_SUBJECT_FIELD, login.subject_encrypted) \
                if login is not None and login.tenant_id == tenant else None
            kind, method = (login.subject_kind, login.channel) if login is not None else (None, "")
        index = self._subject_index(tenant, kind, subject) if subject is not None else None
        session_secret = self._encrypt(tenant, SESSION_SUBJECT_FIELD, subject) if subject is not None else None
        with self.sessions() as s:
            result = check_code(s, cid, code, now, tenant=tenant)
            if result.ok and subject is not None and index is not None and session_secret is not None:
                token, principal = self._new_session(s, tenant, subject, kind, method, index, session_secret, now)
                s.execute(delete(LoginChallengeRow).where(LoginChallengeRow.id == cid))  # no longer needed
                s.commit()
                return token, principal
            s.commit()
        reason = result.reason_zh if not result.ok else "验证码无效，请重新获取验证码"
        raise AuthError("invalid_code", reason)

    # --- deep links --------------------------------------------------------------------------------------
    def from_app_token(self, tenant: str, token: str, *, ip: str | None = None) -> tuple[str, PersonPrincipal]:
        """A session from a deep-link token signed by the tenant's app (see :mod:`yinsi.auth.applinks`)."""
        try:
            self._keys(tenant)
        except AuthError:
            raise AuthError("invalid_app_token", "该应用尚未配置跳转登录的签名密钥") from None
        now = self.clock()
        dm = self.datamaps.get(tenant)
        try:
            with self.sessions() as s:
                claims = self.links.verify(s, tenant, token)
                kind = claims.kind or (dm.subjects[0].id if dm is not None and dm.subjects else None)
                if dm is not None and kind is not None and dm.subject(kind) is None:
                    raise AuthError("invalid_app_token", "登录凭证中的 kind 不是该应用的个人信息主体类型")
                index = self._subject_index(tenant, kind, claims.subject)
                secret = self._encrypt(tenant, SESSION_SUBJECT_FIELD, claims.subject)
                result = self._new_session(s, tenant, claims.subject, kind, "app_token", index, secret, now)
                s.commit()
                return result
        except IntegrityError:  # the same jti, used by another process at the same moment
            raise AuthError("invalid_app_token", "该登录凭证已使用过，请回到应用重新进入") from None

    # --- sessions ----------------------------------------------------------------------------------------
    def _new_session(self, s: Session, tenant: str, subject: str, kind: str | None, method: str, index: str,
                     encrypted: str, now: datetime) -> tuple[str, PersonPrincipal]:
        self._purge(s, now)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        sid = secrets.token_hex(16)
        s.add(SubjectSessionRow(id=sid, tenant_id=tenant, subject_index=index, subject_encrypted=encrypted,
                                subject_kind=kind, method=method, token_hash=_sha256(token), created_at=now,
                                last_seen_at=now, expires_at=now + SESSION_LIFETIME, revoked_at=None))
        return token, PersonPrincipal(tenant, subject, kind, sid, method)

    def _purge(self, s: Session, now: datetime) -> None:
        """Every few minutes (per process): delete sessions over for a day and login challenges expired for
        a day (all tenants: nothing in them is needed once they are over)."""
        mono = time.monotonic()
        if mono - self._purged < PURGE_EVERY:
            return
        self._purged = mono
        ended = now - RETAIN_ENDED
        s.execute(delete(SubjectSessionRow).where(or_(
            SubjectSessionRow.expires_at < ended, SubjectSessionRow.revoked_at < ended,
            SubjectSessionRow.last_seen_at < ended - SESSION_IDLE)).execution_options(synchronize_session=False))
        s.execute(delete(LoginChallengeRow).where(LoginChallengeRow.expires_at < now - RETAIN_ENDED)
                  .execution_options(synchronize_session=False))

    def authenticate(self, token: str) -> PersonPrincipal:
        """The person of a live session, or ``AuthError`` (``invalid_session``, 401)."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            raise AuthError("invalid_session", INVALID_SESSION)
        now = self.clock()
        with self.sessions() as s:
            row = s.scalars(select(SubjectSessionRow)
                            .where(SubjectSessionRow.token_hash == _sha256(token))).one_or_none()
            if row is None or row.revoked_at is not None or now >= row.expires_at \
                    or now >= row.last_seen_at + SESSION_IDLE:
                raise AuthError("invalid_session", INVALID_SESSION)
            subject = self._decrypt(row.tenant_id, SESSION_SUBJECT_FIELD, row.subject_encrypted)
            principal = PersonPrincipal(row.tenant_id, subject, row.subject_kind, row.id, row.method)
            if now - row.last_seen_at >= TOUCH_EVERY:
                s.execute(update(SubjectSessionRow).where(SubjectSessionRow.id == row.id,
                                                          SubjectSessionRow.last_seen_at < now)
                          .values(last_seen_at=now).execution_options(synchronize_session=False))
                s.commit()
        return principal

    def logout(self, token: str) -> None:
        """End the session of ``token`` (nothing happens for an unknown or ended one)."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return
        with self.sessions() as s:
            s.execute(update(SubjectSessionRow)
                      .where(SubjectSessionRow.token_hash == _sha256(token), SubjectSessionRow.revoked_at.is_(None))
                      .values(revoked_at=self.clock()).execution_options(synchronize_session=False))
            s.commit()

    def revoke_subject(self, tenant: str, subject: str, kind: str | None = None) -> int:
        """End every live session of a subject (e.g. once their account is cancelled); returns how many."""
        self._keys(tenant)
        if kind is None:
            dm = self.datamaps.get(tenant)
            kind = dm.subjects[0].id if dm is not None and dm.subjects else None
        index = self._subject_index(tenant, kind, subject)
        with self.sessions() as s:
            result = s.execute(update(SubjectSessionRow)
                               .where(SubjectSessionRow.tenant_id == tenant, SubjectSessionRow.subject_index == index,
                                      SubjectSessionRow.revoked_at.is_(None))
                               .values(revoked_at=self.clock()).execution_options(synchronize_session=False))
            s.commit()
        return int(getattr(result, "rowcount", 0) or 0)
