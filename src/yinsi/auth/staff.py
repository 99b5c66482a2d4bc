"""Staff authentication (工作人员身份认证): accounts with an Argon2id password and a TOTP second factor,
server-side sessions and staff API tokens. Every staff action of the CLI and the API starts from the
:class:`~yinsi.auth.principals.StaffPrincipal` that :meth:`StaffAuthService.authenticate` returns.

- **Bootstrap**: the first administrator of a tenant is created once (:meth:`StaffAuthService.bootstrap`);
  afterwards an administrator logged in with a second factor creates accounts.
- **Passwords**: Argon2id (:mod:`yinsi.protect.passwords`), at least :data:`MIN_PASSWORD_LEN` characters.
- **Second factor**: every account gets a TOTP secret (RFC 6238, 30 s, 6 digits), encrypted with the
  tenant's data key. Roles that can see PI (:func:`yinsi.staff.roles.needs_second_factor`, derived from the
  rights table) must give a code at login. A code is accepted once: the last accepted time step is kept.
- **Lockout**: :data:`MAX_FAILURES` wrong passwords or codes in a row lock the account for
  :data:`LOCKOUT`. A failed login never says whether the account exists.
- **Sessions**: a login yields an opaque token (32 random bytes); only its SHA-256 is stored. A session
  ends after :data:`SESSION_IDLE` without use or :data:`SESSION_LIFETIME` in all, at logout, when the
  account is deactivated or its password is reset. Staff API tokens are named, made from a session with a
  second factor, live at most :data:`API_TOKEN_MAX_TTL` and can be revoked.

Logins, failures, lockouts, logouts and tokens are written to the tenant's audit log (no password, code,
token or IP address in them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from yinsi.audit import AuditAction, find_pi
from yinsi.auth.principals import AuthError, StaffPrincipal
from yinsi.protect.errors import KeyNotFound
from yinsi.protect.passwords import hash_password, needs_rehash, verify_password
from yinsi.staff.errors import InvalidInput, NotFound
from yinsi.staff.roles import Role, StaffMember, needs_second_factor
from yinsi.staff.service import STAFF_ID_RE, StaffService, load_staff
from yinsi.storage.staff_tables import TOTP_FIELD, StaffRow, StaffSessionRow

__all__ = [
    "API_TOKEN_MAX_TTL",
    "LOCKOUT",
    "MAX_FAILURES",
    "SESSION_IDLE",
    "SESSION_LIFETIME",
    "ApiTokenInfo",
    "StaffAuthService",
    "totp_uri",
]

SESSION_IDLE = timedelta(minutes=30)
SESSION_LIFETIME = timedelta(hours=12)
API_TOKEN_MAX_TTL = timedelta(days=90)
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LEN = 10
MAX_PASSWORD_LEN = 1024
TOTP_STEP = 30
#: A session's last use is written at most this often (the idle timeout is 30 minutes).
TOUCH_EVERY = timedelta(seconds=60)

SESSION = "session"
API_TOKEN = "api_token"
_PREFIX = {SESSION: "yss_", API_TOKEN: "yst_"}

LOGIN_FAILED = "登录失败：工作人员标识、口令或动态验证码不正确，或账号已被暂时锁定（连续失败 5 次锁定 15 分钟）"
NOT_AUTHENTICATED = "未登录或登录已失效：请重新登录（yinsi login 租户 工作人员标识）"

_dummy: list[str] = []


def _dummy_hash() -> str:
    """A hash verified against when the account does not exist, so that a failure takes as long either way."""
    if not _dummy:
        _dummy.append(hash_password(secrets.token_urlsafe(16)))
    return _dummy[0]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    """The SHA-256 (hex) under which a session or API token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_id(prefix: str) -> str:
    return prefix + base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def totp_uri(secret: str, tenant: str, staff_id: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (as a QR code or pasted)."""
    return pyotp.TOTP(secret).provisioning_uri(name=f"{staff_id}@{tenant}", issuer_name="Yinsi")


def check_password_strength(password: str) -> None:
    """A usable password: :data:`MIN_PASSWORD_LEN` to :data:`MAX_PASSWORD_LEN` characters, not all alike."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LEN:
        raise InvalidInput(f"口令至少 {MIN_PASSWORD_LEN} 个字符")
    if len(password) > MAX_PASSWORD_LEN:
        raise InvalidInput(f"口令最多 {MAX_PASSWORD_LEN} 个字符")
    if len(set(password)) < 4:
        raise InvalidInput("口令过于简单：请使用至少 4 种不同的字符")


@dataclass(frozen=True)
class ApiTokenInfo:
    """A staff API token as listed (never the token itself)."""

    id: str
    staff_id: str
    name: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        def t(v: datetime | None) -> str | None:
            return None if v is None else v.astimezone(UTC).isoformat()

        return {"id": self.id, "staff_id": self.staff_id, "name": self.name, "created_at": t(self.created_at),
                "expires_at": t(self.expires_at), "revoked_at": t(self.revoked_at)}


class StaffAuthService:
    """Staff accounts, logins, sessions and staff API tokens on Yinsi's database at ``url``.

    Safe to keep for the life of a server process (one engine). ``clock`` gives the current time (UTC);
    tests pass one they move.
    """

    def __init__(self, url: str | None = None, *, clock: Callable[[], datetime] = _utcnow) -> None:
        from yinsi.audit import AuditLog
        from yinsi.config import database_url, is_default_database
        from yinsi.services.audit_trail import AuditTrail
        from yinsi.storage import ensure_current, make_engine, make_session_factory

        self.url = url or database_url()
        ensure_current(self.url, auto_upgrade=is_default_database(self.url))
        self.engine = make_engine(self.url)
        self.sessions = make_session_factory(self.engine)
        self.clock = clock
        self._trail = AuditTrail(self.sessions)
        self.audit: AuditLog = self._trail.log
        self.staff = StaffService(self.sessions, self.audit, None, clock=clock)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> StaffAuthService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- keys ------------------------------------------------------------------------------------

    def _keys(self, tenant: str) -> None:
        """Make sure the tenant has its keys (created on first use, as for rights requests)."""
        try:
            self._trail.ring.active_data_key(tenant)
        except KeyNotFound:
            self._trail.ensure_tenant_keys(tenant)

    def _encrypt(self, tenant: str, value: str) -> str:
        self._keys(tenant)
        return str(self._trail.ring.cipher(tenant).encrypt_text(TOTP_FIELD, value))

    def _decrypt(self, tenant: str, token: str) -> str:
        return str(self._trail.ring.cipher(tenant).decrypt_text(TOTP_FIELD, token))

    def _contact_index(self, tenant: str, contact: str | None) -> str | None:
        """A blind index of a phone number or e-mail address (never stored in clear)."""
        if contact is None or not contact.strip():
            return None
        kind = "email" if "@" in contact else "mobile_phone"
        try:
            self._keys(tenant)
            return self._trail.ring.blind_index(tenant, kind, contact)
        except ValueError:
            raise InvalidInput("联系方式须为中国大陆手机号码或电子邮箱地址") from None

    def _new_totp(self, tenant: str) -> tuple[str, str]:
        secret = pyotp.random_base32()
        return secret, self._encrypt(tenant, secret)

    # --- accounts --------------------------------------------------------------------------------

    def _credentials(self, tenant: str, password: str) -> tuple[dict[str, Any], str]:
        check_password_strength(password)
        secret, encrypted = self._new_totp(tenant)
        return {"password_hash": hash_password(password), "totp_secret_encrypted": encrypted,
                "password_changed_at": self.clock()}, secret

    def has_login_administrator(self, tenant: str) -> bool:
        """Whether ``tenant`` has an active administrator who can log in (has a password)."""
        with self.sessions() as s:
            return self._login_admin(s, tenant)

    @staticmethod
    def _login_admin(s: Session, tenant: str) -> bool:
        return StaffService._has_login_administrator(s, tenant)

    def bootstrap(self, tenant: str, staff_id: str, name: str, password: str, *,
                  contact: str | None = None) -> tuple[StaffMember, str]:
        """Create the tenant's first administrator (with a password and a TOTP secret, returned once).
        Refused (``already_bootstrapped``, 409) once the tenant has an administrator who can log in. An
        administrator added before logins existed (no password) is given these credentials instead."""
        if self.has_login_administrator(tenant):
            raise AuthError("already_bootstrapped",
                            f"租户 {tenant} 已有可登录的管理员：首位管理员只能创建一次，其他账号须由管理员登录后创建（S3）",
                            status=409, rule="S3")
        credentials, secret = self._credentials(tenant, password)
        index = self._contact_index(tenant, contact)
        with self.sessions() as s:
            existing = load_staff(s, tenant, staff_id)
        if existing is None:
            from yinsi.staff.errors import AccessDenied

            try:
                member = self.staff.add_staff(tenant, staff_id, name, [Role.ADMINISTRATOR], contact_index=index,
                                              credentials=credentials, bootstrap=True)
            except AccessDenied:  # another bootstrap won the race
                raise AuthError("already_bootstrapped", f"租户 {tenant} 已有可登录的管理员", status=409,
                                rule="S3") from None
        else:
            if existing.roles != {Role.ADMINISTRATOR} or not existing.active:
                raise InvalidInput(f"工作人员 {staff_id} 已存在于租户 {tenant}，且不是未设口令的管理员")
            with self.sessions() as s, s.begin():
                if self._login_admin(s, tenant):
                    raise AuthError("already_bootstrapped", f"租户 {tenant} 已有可登录的管理员", status=409, rule="S3")
                row = s.get(StaffRow, (tenant, staff_id))
                assert row is not None
                for key, value in credentials.items():
                    setattr(row, key, value)
                self.audit.append_in(s, tenant, staff_id, AuditAction.PERMISSION_CHANGE, details={
                    "step": "staff_credentials", "staff": staff_id, "bootstrap": True})
            member = existing
        return member, secret

    def create_account(self, admin: StaffPrincipal, staff_id: str, name: str, roles: Iterable[Role | str],
                       password: str, *, person_id: str | None = None, contact: str | None = None) -> str:
        """An administrator (logged in with a second factor) creates an account; returns its TOTP secret
        (shown once, for the new member's authenticator app). ``person_id`` or ``contact`` tie the account to
        the person behind another account (one person's accounts never approve each other's requests)."""
        self._require_mfa(admin, "创建工作人员账号")
        with self.sessions() as s:
            self._require_admin(s, admin)  # before the (deliberately slow) password hash
        credentials, secret = self._credentials(admin.tenant, password)
        index = self._contact_index(admin.tenant, contact)
        self.staff.add_staff(admin.tenant, staff_id, name, roles, actor=admin.staff_id, person_id=person_id,
                             contact_index=index, credentials=credentials)
        return secret

    def _require_mfa(self, principal: StaffPrincipal, what: str) -> None:
        if not principal.mfa:
            raise AuthError("mfa_required", f"{what}须在登录时通过动态验证码（第二因素）验证：请用 --totp 重新登录",
                            status=403, rule="S3")

    def _require_admin(self, s: Session, admin: StaffPrincipal) -> None:
        from yinsi.staff.errors import AccessDenied
        from yinsi.staff.roles import StaffAction, SubjectContext, authorize

        auth = authorize(load_staff(s, admin.tenant, admin.staff_id), StaffAction.MANAGE_STAFF,
                         SubjectContext(admin.tenant))
        if not auth:
            self.staff.audit_denied(admin.tenant, admin.staff_id, AuditAction.PERMISSION_CHANGE, None, (), None, auth)
            raise AccessDenied(auth)

    def set_password(self, principal: StaffPrincipal, old_password: str, new_password: str) -> None:
        """Change one's own password (the old one is checked); other sessions of the account end."""
        check_password_strength(new_password)
        with self.sessions() as s:
            row = s.get(StaffRow, (principal.tenant, principal.staff_id))
            stored = row.password_hash if row is not None else None
        if stored is None or not verify_password(stored, old_password):
            raise AuthError("wrong_password", "原口令不正确", status=403)
        self._store_password(principal.tenant, principal.staff_id, new_password, principal.staff_id,
                             keep_session=principal.session_id)

    def reset_password(self, admin: StaffPrincipal, staff_id: str, new_password: str, *,
                       new_totp: bool = False) -> str | None:
        """An administrator (with a second factor) sets another account's password, lifts its lockout and
        ends its sessions; with ``new_totp`` also gives it a new TOTP secret (returned once)."""
        self._require_mfa(admin, "重置口令")
        check_password_strength(new_password)
        if staff_id == admin.staff_id:
            raise InvalidInput("请用 yinsi staff password 修改本人的口令")
        with self.sessions() as s:
            self._require_admin(s, admin)
            if s.get(StaffRow, (admin.tenant, staff_id)) is None:
                raise NotFound(f"租户 {admin.tenant} 中没有工作人员 {staff_id}")
        secret = None
        extra: dict[str, Any] = {}
        if new_totp:
            secret, extra["totp_secret_encrypted"] = self._new_totp(admin.tenant)
            extra["totp_last_step"] = None
        self._store_password(admin.tenant, staff_id, new_password, admin.staff_id, extra=extra)
        return secret

    def _store_password(self, tenant: str, staff_id: str, password: str, actor: str, *,
                        keep_session: str | None = None, extra: dict[str, Any] | None = None) -> None:
        hashed = hash_password(password)
        now = self.clock()
        with self.sessions() as s, s.begin():
            s.execute(update(StaffRow).where(StaffRow.tenant_id == tenant, StaffRow.staff_id == staff_id).values(
                password_hash=hashed, password_changed_at=now, failed_logins=0, locked_until=None, **(extra or {})))
            q = update(StaffSessionRow).where(StaffSessionRow.tenant_id == tenant, StaffSessionRow.staff_id == staff_id,
                                              StaffSessionRow.revoked_at.is_(None))
            if keep_session is not None:
                q = q.where(StaffSessionRow.id != keep_session)
            s.execute(q.values(revoked_at=now))
            self.audit.append_in(s, tenant, actor, AuditAction.PERMISSION_CHANGE, details={
                "step": "password_set", "staff": staff_id, "new_totp": bool(extra)})

    # --- login -----------------------------------------------------------------------------------

    def _audit_event(self, tenant: str, actor: str, event: str, **details: Any) -> None:
        from yinsi.storage.tables import Tenant

        actor = actor if STAFF_ID_RE.match(actor or "") and not find_pi(actor) else "unknown"
        with self.sessions() as s:
            if s.get(Tenant, tenant) is None:
                return  # no audit chain for a tenant that does not exist
        self.audit.append(tenant, actor, AuditAction.OTHER, details={"event": event, **details})

    def _check_totp(self, s: Session, row: StaffRow, code: str) -> bool:
        """Whether ``code`` is the account's current TOTP (±1 step) and newer than the last accepted one;
        the step is recorded atomically, so a code is accepted once."""
        if not row.totp_secret_encrypted:
            return False
        clean = code.strip().replace(" ", "")
        if not (clean.isdigit() and len(clean) == 6):
            return False
        secret = self._decrypt(row.tenant_id, row.totp_secret_encrypted)
        totp = pyotp.TOTP(secret)
        now_step = int(self.clock().timestamp()) // TOTP_STEP
        for step in (now_step, now_step - 1, now_step + 1):
            if hmac.compare_digest(totp.at(step * TOTP_STEP), clean):
                done = s.execute(update(StaffRow).where(
                    StaffRow.tenant_id == row.tenant_id, StaffRow.staff_id == row.staff_id,
                    or_(StaffRow.totp_last_step.is_(None), StaffRow.totp_last_step < step),
                ).values(totp_last_step=step))
                return int(getattr(done, "rowcount", 0) or 0) == 1
        return False

    def _fail(self, tenant: str, staff_id: str, known: bool, why: str) -> AuthError:
        """Count a failure (lock the account after :data:`MAX_FAILURES`), audit it, and the generic error."""
        locked_until = None
        if known:
            now = self.clock()
            with self.sessions() as s, s.begin():
                s.execute(update(StaffRow).where(StaffRow.tenant_id == tenant, StaffRow.staff_id == staff_id)
                          .values(failed_logins=StaffRow.failed_logins + 1))
                row = s.get(StaffRow, (tenant, staff_id))
                if row is not None and row.failed_logins >= MAX_FAILURES:
                    locked_until = now + LOCKOUT
                    row.locked_until = locked_until
                    row.failed_logins = 0
        self._audit_event(tenant, staff_id if known else "unknown", "staff_login_failed", why=why)
        if locked_until is not None:
            self._audit_event(tenant, staff_id, "staff_locked_out", until=locked_until.astimezone(UTC).isoformat(),
                              minutes=int(LOCKOUT.total_seconds() // 60))
        return AuthError("login_failed", LOGIN_FAILED, status=401, rule="S3")

    def login(self, tenant: str, staff_id: str, password: str, totp_code: str | None = None, *,
              ip: str | None = None) -> tuple[str, StaffPrincipal]:
        """Check the password (and the TOTP code: required for roles that see PI) and open a session.
        Returns the session token (given once; only its hash is stored) and the principal. Failures raise
        ``AuthError("login_failed")`` whatever the cause; a correct password without the required code
        raises ``AuthError("totp_required")`` (not counted as a failure)."""
        del ip  # not stored: an IP address is PI; rate limits per address belong to the HTTP layer
        now = self.clock()
        with self.sessions() as s:
            row = s.get(StaffRow, (tenant, staff_id)) if STAFF_ID_RE.match(staff_id or "") else None
            member = load_staff(s, tenant, staff_id) if row is not None else None
        if row is None or member is None or row.password_hash is None:
            verify_password(_dummy_hash(), password or "-")
            raise self._fail(tenant, staff_id, False, "unknown_account")
        if row.locked_until is not None and row.locked_until > now:
            verify_password(_dummy_hash(), password or "-")
            self._audit_event(tenant, staff_id, "staff_login_failed", why="locked")
            raise AuthError("login_failed", LOGIN_FAILED, status=401, rule="S3")
        if not password or not verify_password(row.password_hash, password):
            raise self._fail(tenant, staff_id, True, "password")
        if not member.active:
            raise self._fail(tenant, staff_id, True, "inactive")
        need = needs_second_factor(member.roles)
        mfa = False
        if totp_code:
            with self.sessions() as s, s.begin():
                fresh = s.get(StaffRow, (tenant, staff_id))
                ok = fresh is not None and self._check_totp(s, fresh, totp_code)
            if not ok:
                raise self._fail(tenant, staff_id, True, "totp")
            mfa = True
        elif need:
            raise AuthError("totp_required", "此账号的角色可以接触个人信息，登录须输入动态验证码（--totp）",
                            status=401, rule="S3")
        token = _PREFIX[SESSION] + secrets.token_urlsafe(32)
        sid = _new_id("ses_")
        with self.sessions() as s, s.begin():
            values: dict[str, Any] = {"failed_logins": 0, "locked_until": None}
            if needs_rehash(row.password_hash):
                values["password_hash"] = hash_password(password)
            s.execute(update(StaffRow).where(StaffRow.tenant_id == tenant, StaffRow.staff_id == staff_id)
                      .values(**values))
            s.add(StaffSessionRow(id=sid, tenant_id=tenant, staff_id=staff_id, token_hash=token_hash(token),
                                  kind=SESSION, mfa=mfa, name=None, created_at=now, last_seen_at=now,
                                  expires_at=now + SESSION_LIFETIME, revoked_at=None))
            self.audit.append_in(s, tenant, staff_id, AuditAction.OTHER, details={
                "event": "staff_login", "session": sid, "mfa": mfa})
        roles = frozenset(r.value for r in member.roles)
        principal = StaffPrincipal(tenant, staff_id, row.person_id or staff_id, roles, mfa, sid)
        return token, principal

    # --- sessions and tokens ---------------------------------------------------------------------

    def authenticate(self, token: str) -> StaffPrincipal:
        """The principal of a valid session or staff API token; ``AuthError("not_authenticated")`` when the
        token is unknown, revoked, expired or idle too long, or the account is deactivated."""
        if not token or not token.startswith(tuple(_PREFIX.values())) or len(token) > 200:
            raise AuthError("not_authenticated", NOT_AUTHENTICATED)
        now = self.clock()
        with self.sessions() as s:
            row = s.scalar(select(StaffSessionRow).where(StaffSessionRow.token_hash == token_hash(token)))
            if row is None or row.revoked_at is not None or row.expires_at <= now:
                raise AuthError("not_authenticated", NOT_AUTHENTICATED)
            if row.kind == SESSION and row.last_seen_at + SESSION_IDLE <= now:
                raise AuthError("not_authenticated", "登录已因 30 分钟未操作而失效：请重新登录（yinsi login）")
            member = load_staff(s, row.tenant_id, row.staff_id)
            staff_row = s.get(StaffRow, (row.tenant_id, row.staff_id))
            if member is None or staff_row is None or not member.active:
                raise AuthError("not_authenticated", NOT_AUTHENTICATED)
            if needs_second_factor(member.roles) and not row.mfa:
                raise AuthError("mfa_required", "此账号现有的角色可以接触个人信息：请用动态验证码重新登录（--totp）",
                                status=401, rule="S3")
            sid, tenant, staff_id, mfa, last_seen = row.id, row.tenant_id, row.staff_id, row.mfa, row.last_seen_at
            person = staff_row.person_id or staff_row.staff_id
        if row.kind == SESSION and now - last_seen >= TOUCH_EVERY:
            with self.sessions() as s, s.begin():
                s.execute(update(StaffSessionRow).where(StaffSessionRow.id == sid).values(last_seen_at=now))
        return StaffPrincipal(tenant, staff_id, person, frozenset(r.value for r in member.roles), mfa, sid)

    def logout(self, token: str) -> None:
        """End the session (or revoke the API token) ``token`` names; an unknown token is ignored."""
        now = self.clock()
        with self.sessions() as s, s.begin():
            row = s.scalar(select(StaffSessionRow).where(StaffSessionRow.token_hash == token_hash(token or "")))
            if row is None or row.revoked_at is not None:
                return
            row.revoked_at = now
            tenant, staff_id, sid, kind = row.tenant_id, row.staff_id, row.id, row.kind
        self._audit_event(tenant, staff_id, "staff_logout" if kind == SESSION else "staff_token_revoked", session=sid)

    def create_api_token(self, principal: StaffPrincipal, *, name: str, ttl: timedelta) -> str:
        """A staff API token for scripts and the HTTP API, acting as ``principal``'s account: made only from a
        login session with a second factor, named, living ``ttl`` (at most :data:`API_TOKEN_MAX_TTL`).
        Returned once; only its hash is stored."""
        self._require_mfa(principal, "创建 API 令牌")
        label = (name or "").strip()
        if not label or len(label) > 200 or find_pi(label):
            raise InvalidInput("须为令牌起一个名称（最多 200 个字符，不含个人信息）")
        if ttl <= timedelta(0) or ttl > API_TOKEN_MAX_TTL:
            raise InvalidInput(f"令牌有效期须大于 0 且不超过 {API_TOKEN_MAX_TTL.days} 天")
        now = self.clock()
        with self.sessions() as s, s.begin():
            origin = s.get(StaffSessionRow, principal.session_id)
            if origin is None or origin.kind != SESSION or origin.staff_id != principal.staff_id \
                    or origin.tenant_id != principal.tenant:
                raise AuthError("session_required", "API 令牌只能在登录会话中创建（不能用另一个令牌创建）", status=403)
            token = _PREFIX[API_TOKEN] + secrets.token_urlsafe(32)
            tid = _new_id("tok_")
            s.add(StaffSessionRow(id=tid, tenant_id=principal.tenant, staff_id=principal.staff_id,
                                  token_hash=token_hash(token), kind=API_TOKEN, mfa=True, name=label, created_at=now,
                                  last_seen_at=now, expires_at=now + ttl, revoked_at=None))
            self.audit.append_in(s, principal.tenant, principal.staff_id, AuditAction.OTHER, details={
                "event": "staff_token_created", "token": tid, "expires_at": (now + ttl).astimezone(UTC).isoformat()})
        return token

    def list_api_tokens(self, principal: StaffPrincipal, *, include_inactive: bool = False) -> list[ApiTokenInfo]:
        """The account's own API tokens (an administrator sees those of the whole tenant)."""
        now = self.clock()
        with self.sessions() as s:
            q = select(StaffSessionRow).where(StaffSessionRow.tenant_id == principal.tenant,
                                              StaffSessionRow.kind == API_TOKEN)
            if Role.ADMINISTRATOR.value not in principal.roles:
                q = q.where(StaffSessionRow.staff_id == principal.staff_id)
            if not include_inactive:
                q = q.where(StaffSessionRow.revoked_at.is_(None), StaffSessionRow.expires_at > now)
            rows = s.scalars(q.order_by(StaffSessionRow.created_at, StaffSessionRow.id)).all()
            return [ApiTokenInfo(r.id, r.staff_id, r.name, r.created_at, r.expires_at, r.revoked_at) for r in rows]

    def revoke_api_token(self, principal: StaffPrincipal, token_id: str) -> None:
        """Revoke an API token by id: one's own, or (an administrator) any of the tenant's."""
        now = self.clock()
        with self.sessions() as s, s.begin():
            row = s.get(StaffSessionRow, token_id)
            if row is None or row.tenant_id != principal.tenant or row.kind != API_TOKEN or (
                    row.staff_id != principal.staff_id and Role.ADMINISTRATOR.value not in principal.roles):
                raise NotFound(f"没有 API 令牌 {token_id}")
            if row.revoked_at is None:
                row.revoked_at = now
                self.audit.append_in(s, principal.tenant, principal.staff_id, AuditAction.OTHER, details={
                    "event": "staff_token_revoked", "token": token_id, "staff": row.staff_id})
