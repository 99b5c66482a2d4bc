"""App API keys (应用 API 密钥): how an app's back end authenticates to Yinsi.

A key belongs to one tenant and holds scopes (:class:`~yinsi.auth.principals.AppScope`). Its token is
``yk_<key_id>_<secret>``: ``key_id`` is 16 hex digits (not secret; it names the key in lists and audit
entries), ``secret`` 32 random bytes in URL-safe base64. Yinsi keeps only the SHA-256 of the secret and
compares it in constant time; the token is shown once, when the key is created or rotated.

- **Who manages keys.** Creating, listing, rotating and revoking a key needs an authenticated staff member
  of the key's tenant allowed to ``configure`` (the administrator, RULES S3), with a second factor in
  the session for creating and rotating (a new secret). Every change is audited
  (``config_change``, with the key id, name and scopes; never the secret).
- **Rotation.** ``rotate`` gives the key a new secret. The old one stops working at once, or after a grace
  period of at most 24 hours (``grace``) so an app can roll the new token out to all its servers first.
- **Revocation** is final.
- **Caching.** ``authenticate`` keeps a successful result in memory for :data:`CACHE_TTL` seconds (at most
  :data:`CACHE_SIZE` tokens), so the gate route does not read the database on every call. A key revoked
  or rotated through this service object stops working in this process at once; in other processes within
  ``CACHE_TTL`` seconds (5). ``last_used_at`` is written at most once a minute per key.
- ``create_unchecked`` makes a key without an administrator: for ``yinsi serve --demo`` and tests only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from yinsi.audit import AuditAction
from yinsi.auth.principals import ALL_APP_SCOPES, AppPrincipal, AppScope, AuthError, StaffPrincipal
from yinsi.config import database_url, is_default_database
from yinsi.services.audit_trail import AuditTrail
from yinsi.storage.auth_tables import NAME_LEN, ApiKeyRow
from yinsi.storage.engine import make_engine, make_session_factory
from yinsi.storage.migrate import ensure_current
from yinsi.storage.tables import Tenant

Clock = Callable[[], datetime]

TOKEN_PREFIX = "yk"
SECRET_BYTES = 32
#: Seconds a successful authentication is reused in this process (the bound on a revocation elsewhere).
CACHE_TTL = 5.0
#: Tokens remembered at most (the oldest is forgotten first).
CACHE_SIZE = 10_000
#: ``last_used_at`` is written at most this often per key.
LAST_USED_EVERY = timedelta(minutes=1)
#: The longest grace period a rotation may give the old secret.
MAX_GRACE = timedelta(hours=24)

_TOKEN = re.compile(r"yk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
INVALID_DETAIL = "API 密钥无效、已吊销或已轮换"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _new_secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode("ascii")


def parse_scopes(scopes: Iterable[AppScope | str]) -> frozenset[str]:
    """The scopes as a set of ``AppScope`` values; ``ValueError`` (Chinese) for an unknown or empty list."""
    out = set()
    for scope in scopes:
        value = str(scope).strip()
        if value not in ALL_APP_SCOPES:
            raise ValueError(f"未知的权限范围 {value!r}（可选：{'、'.join(s.value for s in AppScope)}）")
        out.add(value)
    if not out:
        raise ValueError("API 密钥至少需要一个权限范围（--scope）")
    return frozenset(out)


def require_configure(sessions: sessionmaker[Session], admin: StaffPrincipal, tenant: str, *,
                      mfa: bool = False) -> None:
    """Refuse (403) unless ``admin`` is an active member of ``tenant``'s staff whose roles, as recorded now
    (not as at login), allow ``configure`` (the administrator, S3); with ``mfa``, unless the session also
    passed a second factor (making credentials for an app is not done on a password alone)."""
    from yinsi.staff.roles import StaffAction, SubjectContext, authorize
    from yinsi.staff.service import load_staff

    if not isinstance(admin, StaffPrincipal):
        raise AuthError("not_authenticated", "需要先以工作人员身份登录", status=401)
    if admin.tenant != tenant:
        raise AuthError("forbidden", f"工作人员属于租户 {admin.tenant}，不能配置租户 {tenant}（租户隔离）",
                        status=403, rule="S3")
    with sessions() as s:
        member = load_staff(s, admin.tenant, admin.staff_id)
    decision = authorize(member, StaffAction.CONFIGURE, SubjectContext(tenant=tenant))
    if not decision.allowed:
        raise AuthError("forbidden", decision.reason_zh, status=403, rule=decision.rule)
    if mfa and not admin.mfa:
        raise AuthError("mfa_required", "创建或轮换应用密钥须在登录时通过动态验证码（第二因素）验证：请用 --totp 重新登录",
                        status=403, rule="S3")


class ApiKeyService:
    """App API keys on one database (see the module docstring)."""

    def __init__(self, url: str | None = None, *, clock: Clock = utcnow) -> None:
        self.url = url or database_url()
        ensure_current(self.url, auto_upgrade=is_default_database(self.url))
        self.engine = make_engine(self.url, pool_recycle=300)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.clock = clock
        self.audit = AuditTrail(self.sessions)
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[float, AppPrincipal]] = OrderedDict()
        self._last_used: dict[str, datetime] = {}

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ApiKeyService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- administration ----------------------------------------------------------------------------------
    def create(self, admin: StaffPrincipal, tenant: str, *, name: str,
               scopes: Iterable[AppScope | str]) -> tuple[str, str]:
        """A new key of ``tenant``: returns ``(key_id, token)``. The token is shown this once."""
        require_configure(self.sessions, admin, tenant, mfa=True)
        return self._create(tenant, name, scopes, admin.staff_id)

    def create_unchecked(self, tenant: str, name: str, scopes: Iterable[AppScope | str]) -> tuple[str, str]:
        """A new key without an administrator: **only** for ``yinsi serve --demo`` seeding and tests."""
        return self._create(tenant, name, scopes, "system")

    def _create(self, tenant: str, name: str, scopes: Iterable[AppScope | str], actor: str) -> tuple[str, str]:
        label = _check_name(name)
        wanted = parse_scopes(scopes)
        key_id, secret = secrets.token_hex(8), _new_secret()
        now = self.clock()
        with self.sessions() as s:
            if s.get(Tenant, tenant) is None:
                raise ValueError(f"租户 {tenant} 不存在（先发布其隐私政策：yinsi policy publish）")
            s.add(ApiKeyRow(id=key_id, tenant_id=tenant, name=label, scopes=",".join(sorted(wanted)),
                            secret_hash=_sha256(secret), previous_hash=None, previous_valid_until=None,
                            created_at=now, created_by=actor, rotated_at=None, revoked_at=None, revoked_by=None,
                            last_used_at=None))
            self.audit.record_in(s, tenant, actor, AuditAction.CONFIG_CHANGE,
                                 details={"op": "api_key_create", "key_id": key_id, "name": label,
                                          "scopes": sorted(wanted)})
            s.commit()
        return key_id, f"{TOKEN_PREFIX}_{key_id}_{secret}"

    def list(self, admin: StaffPrincipal, tenant: str) -> list[dict[str, Any]]:
        """The tenant's keys (revoked ones too), oldest first; never a secret or its hash."""
        require_configure(self.sessions, admin, tenant)
        with self.sessions() as s:
            rows = s.scalars(select(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant)
                             .order_by(ApiKeyRow.created_at, ApiKeyRow.id)).all()
            return [_view(r) for r in rows]

    def rotate(self, admin: StaffPrincipal, tenant: str, key_id: str, *, grace: timedelta = timedelta(0)) -> str:
        """Give the key a new secret and return its new token (shown once). The old secret stops working
        now, or after ``grace`` (at most 24 hours)."""
        require_configure(self.sessions, admin, tenant, mfa=True)
        if grace < timedelta(0) or grace > MAX_GRACE:
            raise ValueError("轮换宽限期须在 0 到 24 小时之间")
        secret = _new_secret()
        now = self.clock()
        with self.sessions() as s:
            row = self._own(s, tenant, key_id)
            if row.revoked_at is not None:
                raise ValueError(f"API 密钥 {key_id} 已吊销，不能轮换")
            row.previous_hash = row.secret_hash if grace > timedelta(0) else None
            row.previous_valid_until = now + grace if grace > timedelta(0) else None
            row.secret_hash = _sha256(secret)
            row.rotated_at = now
            self.audit.record_in(s, tenant, admin.staff_id, AuditAction.CONFIG_CHANGE,
                                 details={"op": "api_key_rotate", "key_id": key_id,
                                          "grace_seconds": int(grace.total_seconds())})
            s.commit()
        self._forget(key_id)
        return f"{TOKEN_PREFIX}_{key_id}_{secret}"

    def revoke(self, admin: StaffPrincipal, tenant: str, key_id: str) -> None:
        """Revoke the key for good (idempotent)."""
        require_configure(self.sessions, admin, tenant)
        with self.sessions() as s:
            row = self._own(s, tenant, key_id)
            if row.revoked_at is None:
                row.revoked_at, row.revoked_by = self.clock(), admin.staff_id
                row.previous_hash = row.previous_valid_until = None
                self.audit.record_in(s, tenant, admin.staff_id, AuditAction.CONFIG_CHANGE,
                                     details={"op": "api_key_revoke", "key_id": key_id})
                s.commit()
        self._forget(key_id)

    def _own(self, s: Session, tenant: str, key_id: str) -> ApiKeyRow:
        row = s.get(ApiKeyRow, key_id) if isinstance(key_id, str) and len(key_id) <= 32 else None
        if row is None or row.tenant_id != tenant:
            raise LookupError(f"租户 {tenant} 没有编号为 {key_id} 的 API 密钥")
        return row

    # --- authentication ----------------------------------------------------------------------------------
    def authenticate(self, token: str) -> AppPrincipal:
        """The app behind ``token`` (``Authorization: Bearer <token>``), or ``AuthError``
        (``invalid_api_key``, 401) without saying whether such a key exists."""
        if not isinstance(token, str):
            raise AuthError("invalid_api_key", INVALID_DETAIL)
        token = token.strip()
        cache_key = hashlib.sha256(token.encode("utf-8", "replace")).digest().hex()
        mono = time.monotonic()
        with self._lock:
            hit = self._cache.get(cache_key)
            if hit is not None and mono - hit[0] < CACHE_TTL:
                return hit[1]
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise AuthError("invalid_api_key", INVALID_DETAIL)
        key_id, secret = match.group(1), match.group(2)
        given = _sha256(secret)
        now = self.clock()
        with self.sessions() as s:
            row = s.get(ApiKeyRow, key_id)
            ok = False
            if row is not None and row.revoked_at is None:
                ok = hmac.compare_digest(given, row.secret_hash)
                if not ok and row.previous_hash and row.previous_valid_until and now < row.previous_valid_until:
                    ok = hmac.compare_digest(given, row.previous_hash)
            if not ok or row is None:
                raise AuthError("invalid_api_key", INVALID_DETAIL)
            principal = AppPrincipal(row.tenant_id, row.id, frozenset(row.scopes.split(",")) & ALL_APP_SCOPES)
            self._touch(s, row.id, now)
        with self._lock:
            self._cache[cache_key] = (mono, principal)
            self._cache.move_to_end(cache_key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return principal

    def _touch(self, s: Session, key_id: str, now: datetime) -> None:
        """Write ``last_used_at`` if this process has not for a minute (and no other process has either)."""
        last = self._last_used.get(key_id)
        if last is not None and now - last < LAST_USED_EVERY:
            return
        self._last_used[key_id] = now
        if len(self._last_used) > CACHE_SIZE:
            self._last_used.clear()
        s.execute(update(ApiKeyRow)
                  .where(ApiKeyRow.id == key_id,
                         or_(ApiKeyRow.last_used_at.is_(None), ApiKeyRow.last_used_at < now - LAST_USED_EVERY))
                  .values(last_used_at=now).execution_options(synchronize_session=False))
        s.commit()

    def _forget(self, key_id: str) -> None:
        with self._lock:
            for k in [k for k, (_, p) in self._cache.items() if p.key_id == key_id]:
                del self._cache[k]


def _check_name(name: str) -> str:
    label = (name or "").strip()
    if not label or len(label) > NAME_LEN:
        raise ValueError(f"API 密钥名称不能为空，且不超过 {NAME_LEN} 个字符")
    return label


def _view(row: ApiKeyRow) -> dict[str, Any]:
    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t is not None else None

    return {"key_id": row.id, "tenant": row.tenant_id, "name": row.name, "scopes": row.scopes.split(","),
            "token_prefix": f"{TOKEN_PREFIX}_{row.id}_", "status": "revoked" if row.revoked_at else "active",
            "created_at": iso(row.created_at), "created_by": row.created_by, "rotated_at": iso(row.rotated_at),
            "previous_valid_until": iso(row.previous_valid_until), "revoked_at": iso(row.revoked_at),
            "revoked_by": row.revoked_by, "last_used_at": iso(row.last_used_at)}
