"""Deep links from a tenant's app into the privacy center (应用跳转登录): the app signs a short-lived JWT
for its logged-in user and Yinsi turns it into a person's session (:mod:`yinsi.auth.people`).

The tenant registers one signing key (an administrator, action ``configure``):

- **HS256**: Yinsi generates a 256-bit secret, shows it once, and keeps it encrypted with the tenant's data
  key (it is needed to verify). The HMAC key is the ASCII bytes of the secret text as shown.
- **The app's public key** (ES256 on P-256, or EdDSA on Ed25519), as a PEM or a JWK. The private key never
  leaves the app. Tokens may say ``alg`` ``ES256``, or ``EdDSA`` / ``Ed25519`` for an Ed25519 key.

Verification uses joserfc. A token must carry ``iss`` (the issuer registered with the key, by default the
tenant id), ``aud`` = ``yinsi:<tenant>``, ``sub`` (the subject's id in the app), ``iat``, ``exp`` at most
10 minutes after ``iat``, and ``jti`` (used once: Yinsi keeps the SHA-256 of every used ``jti`` until the
token expires and refuses a replay); ``kind`` (a subject kind of the data map) is optional. Clocks may
differ by :data:`LEEWAY` seconds. See docs/auth.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from yinsi.audit import AuditAction
from yinsi.auth.apikeys import require_configure
from yinsi.auth.principals import AuthError, StaffPrincipal
from yinsi.config import database_url, is_default_database
from yinsi.protect.errors import KeyNotFound
from yinsi.protect.keys import KeyRing
from yinsi.services.audit_trail import AuditTrail
from yinsi.storage.auth_tables import APP_LINK_SECRET_FIELD, ISSUER_LEN, AppLinkJtiRow, AppLinkKeyRow
from yinsi.storage.engine import make_engine, make_session_factory
from yinsi.storage.migrate import ensure_current
from yinsi.storage.tables import Tenant

Clock = Callable[[], datetime]

#: The longest a deep-link token may live (``exp - iat``).
MAX_LIFETIME = timedelta(minutes=10)
#: Clock difference tolerated between the app and Yinsi, in seconds.
LEEWAY = 30
#: How often (seconds, per process) expired ``jti`` rows are purged.
PURGE_EVERY = 300.0
MAX_SUBJECT_LEN = 128
MAX_JTI_LEN = 200
MAX_TOKEN_LEN = 8192

HS256, ES256, EDDSA = "HS256", "ES256", "EdDSA"
_ACCEPTED = {HS256: [HS256], ES256: [ES256], EDDSA: ["Ed25519", EDDSA]}

_INVALID = "应用签发的登录凭证无效（签名不符、格式错误或算法不符），请回到应用重新进入"
_EXPIRED = "应用签发的登录凭证已过期，请回到应用重新进入"
_AUDIENCE = "应用签发的登录凭证不是签发给本服务的（iss 或 aud 不符）"
_LIFETIME = "应用签发的登录凭证有效期超过 10 分钟，不予接受"
_REPLAYED = "该登录凭证已使用过，请回到应用重新进入"
_NOT_CONFIGURED = "该应用尚未配置跳转登录的签名密钥"


def utcnow() -> datetime:
    return datetime.now(UTC)


def audience(tenant: str) -> str:
    """The ``aud`` a deep-link token for ``tenant`` must carry."""
    return f"yinsi:{tenant}"


@dataclass(frozen=True)
class AppLinkClaims:
    """What a verified deep-link token says (``kind`` may be ``None``: the data map's first subject)."""

    subject: str
    kind: str | None
    jti: str
    expires_at: datetime


def _fail(detail: str) -> AuthError:
    return AuthError("invalid_app_token", detail)


def _public_key(text: str) -> tuple[Any, str]:
    """The app's public key from a PEM or a JWK (JSON), and its algorithm (``ES256`` or ``EdDSA``)."""
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey, OKPKey

    raw = (text or "").strip()
    if not raw:
        raise ValueError("公钥为空")
    data: Any = raw
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except ValueError:
            raise ValueError("公钥不是有效的 JWK（JSON）") from None
        if not isinstance(data, dict):
            raise ValueError("公钥不是有效的 JWK（JSON 对象）")
        if "d" in data:
            raise ValueError("这是私钥：请只提供应用的公钥（私钥不应离开应用）")
    elif "PRIVATE KEY" in raw:
        raise ValueError("这是私钥：请只提供应用的公钥（私钥不应离开应用）")
    for cls, kty, alg, curve in ((ECKey, "EC", ES256, "P-256"), (OKPKey, "OKP", EDDSA, "Ed25519")):
        if isinstance(data, dict) and data.get("kty") != kty:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                key = cls.import_key(data)
        except (JoseError, ValueError, TypeError):
            continue
        if key.is_private:
            raise ValueError("这是私钥：请只提供应用的公钥（私钥不应离开应用）")
        if key.as_dict().get("crv") != curve:
            raise ValueError(f"仅支持 P-256（ES256）与 Ed25519（EdDSA）公钥，该密钥的曲线为 {key.as_dict().get('crv')}")
        return key, alg
    raise ValueError("无法识别公钥：须为 P-256（ES256）或 Ed25519（EdDSA）公钥，PEM 或 JWK 格式")


def _fingerprint(jwk: dict[str, Any]) -> str:
    from joserfc.jwk import thumbprint

    return str(thumbprint(jwk))


class AppLinks:
    """Registration and verification of a tenant's deep-link key on one database."""

    def __init__(self, sessions: sessionmaker[Session], audit: AuditTrail, clock: Clock = utcnow) -> None:
        self.sessions = sessions
        self.audit = audit
        self.clock = clock
        self._purged = 0.0

    @property
    def ring(self) -> KeyRing:
        return self.audit.ring

    def _cipher(self, tenant: str) -> Any:
        try:
            return self.ring.cipher(tenant)
        except KeyNotFound:
            self.audit.ensure_tenant_keys(tenant)
            return self.ring.cipher(tenant)

    def _require_tenant(self, tenant: str) -> None:
        with self.sessions() as s:
            if s.get(Tenant, tenant) is None:
                raise ValueError(f"租户 {tenant} 不存在（先发布其隐私政策：yinsi policy publish）")

    # --- administration ----------------------------------------------------------------------------------
    def set_hs256(self, admin: StaffPrincipal, tenant: str, *, issuer: str | None = None) -> dict[str, Any]:
        """Generate a new HS256 secret for the tenant's app (replacing any earlier key) and return it with
        the claims to use; ``secret`` is shown this once."""
        from joserfc.jwk import OctKey

        require_configure(self.sessions, admin, tenant, mfa=True)
        self._require_tenant(tenant)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
        fingerprint = _fingerprint(OctKey.import_key(secret.encode("ascii")).as_dict(private=True))
        token = self._cipher(tenant).encrypt_text(APP_LINK_SECRET_FIELD, secret)
        info = self._store(admin, tenant, "hs256", HS256, issuer, token, None, fingerprint)
        return {**info, "secret": secret}

    def set_public_key(self, admin: StaffPrincipal, tenant: str, key_text: str, *,
                       issuer: str | None = None) -> dict[str, Any]:
        """Register the app's public key (PEM or JWK; ES256 or EdDSA), replacing any earlier key."""
        require_configure(self.sessions, admin, tenant, mfa=True)
        key, alg = _public_key(key_text)
        jwk = key.as_dict(private=False)
        return self._store(admin, tenant, "public", alg, issuer, None, json.dumps(jwk, sort_keys=True),
                           _fingerprint(jwk))

    def _store(self, admin: StaffPrincipal, tenant: str, kind: str, alg: str, issuer: str | None,
               secret_token: str | None, jwk: str | None, fingerprint: str) -> dict[str, Any]:
        iss = (issuer or tenant).strip()
        if not iss or len(iss) > ISSUER_LEN:
            raise ValueError(f"iss 不能为空，且不超过 {ISSUER_LEN} 个字符")
        self._require_tenant(tenant)
        now = self.clock()
        with self.sessions() as s:
            row = s.get(AppLinkKeyRow, tenant)
            if row is None:
                row = AppLinkKeyRow(tenant_id=tenant)
                s.add(row)
            row.kind, row.algorithm, row.issuer = kind, alg, iss
            row.secret_encrypted, row.public_jwk, row.fingerprint = secret_token, jwk, fingerprint
            row.created_at, row.created_by = now, admin.staff_id
            self.audit.record_in(s, tenant, admin.staff_id, AuditAction.CONFIG_CHANGE,
                                 details={"op": "app_link_key_set", "kind": kind, "algorithm": alg,
                                          "fingerprint": fingerprint})
            s.commit()
            return _view(row)

    def show(self, admin: StaffPrincipal, tenant: str) -> dict[str, Any] | None:
        """The registered key (never the HS256 secret), or ``None``."""
        require_configure(self.sessions, admin, tenant)
        with self.sessions() as s:
            row = s.get(AppLinkKeyRow, tenant)
            return _view(row) if row is not None else None

    # --- verification ------------------------------------------------------------------------------------
    def verify(self, s: Session, tenant: str, token: str) -> AppLinkClaims:
        """Check ``token`` for ``tenant`` and consume its ``jti`` in ``s`` (the caller commits; a replay
        fails there or here). ``AuthError`` (``invalid_app_token``) otherwise."""
        from joserfc import jwt
        from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
        from joserfc.jwk import ECKey, OctKey, OKPKey

        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LEN:
            raise _fail(_INVALID)
        row = s.get(AppLinkKeyRow, tenant)
        if row is None:
            raise _fail(_NOT_CONFIGURED)
        key: Any
        if row.kind == "hs256" and row.secret_encrypted:
            secret = self._cipher(tenant).decrypt_text(APP_LINK_SECRET_FIELD, row.secret_encrypted)
            key = OctKey.import_key(secret.encode("ascii"))
        elif row.public_jwk:
            data = json.loads(row.public_jwk)
            key = (ECKey if data.get("kty") == "EC" else OKPKey).import_key(data)
        else:
            raise _fail(_NOT_CONFIGURED)
        now = self.clock()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # joserfc warns that "EdDSA" is deprecated (RFC 9864)
                decoded = jwt.decode(token, key, algorithms=_ACCEPTED[row.algorithm])
            claims = decoded.claims
            registry = jwt.JWTClaimsRegistry(
                now=int(now.timestamp()), leeway=LEEWAY,
                iss={"essential": True, "value": row.issuer}, aud={"essential": True, "value": audience(tenant)},
                sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
                jti={"essential": True},
            )
            registry.validate(claims)
        except ExpiredTokenError:
            raise _fail(_EXPIRED) from None
        except (InvalidClaimError, MissingClaimError) as exc:
            raise _fail(_AUDIENCE if exc.claim in ("iss", "aud") else _INVALID) from None
        except (JoseError, ValueError, TypeError):
            raise _fail(_INVALID) from None
        sub, jti, kind = claims.get("sub"), claims.get("jti"), claims.get("kind")
        if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUBJECT_LEN or not isinstance(jti, str) \
                or len(jti) > MAX_JTI_LEN or (kind is not None and not isinstance(kind, str)):
            raise _fail(_INVALID)
        exp, iat = claims["exp"], claims["iat"]
        if exp - iat > MAX_LIFETIME.total_seconds():
            raise _fail(_LIFETIME)
        expires = datetime.fromtimestamp(exp, UTC)
        self._purge(s, now)
        jti_hash = hashlib.sha256(jti.encode("utf-8")).hexdigest()
        if s.get(AppLinkJtiRow, (tenant, jti_hash)) is not None:
            raise _fail(_REPLAYED)
        s.add(AppLinkJtiRow(tenant_id=tenant, jti_hash=jti_hash, expires_at=expires + timedelta(seconds=LEEWAY)))
        try:
            s.flush()
        except IntegrityError:  # another process used it at the same moment
            s.rollback()
            raise _fail(_REPLAYED) from None
        return AppLinkClaims(sub, kind, jti, expires)

    def _purge(self, s: Session, now: datetime) -> None:
        if time.monotonic() - self._purged > PURGE_EVERY:
            self._purged = time.monotonic()
            s.execute(delete(AppLinkJtiRow).where(AppLinkJtiRow.expires_at < now)
                      .execution_options(synchronize_session=False))


class AppLinkService(AppLinks):
    """:class:`AppLinks` with its own engine (for the CLI and the API's staff routes)."""

    def __init__(self, url: str | None = None, *, clock: Clock = utcnow) -> None:
        self.url = url or database_url()
        ensure_current(self.url, auto_upgrade=is_default_database(self.url))
        self.engine = make_engine(self.url, pool_recycle=300)
        sessions = make_session_factory(self.engine)
        super().__init__(sessions, AuditTrail(sessions), clock)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> AppLinkService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _view(row: AppLinkKeyRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tenant": row.tenant_id, "kind": row.kind, "algorithm": row.algorithm, "issuer": row.issuer,
        "audience": audience(row.tenant_id), "fingerprint": row.fingerprint,
        "max_lifetime_seconds": int(MAX_LIFETIME.total_seconds()),
        "created_at": row.created_at.isoformat(), "created_by": row.created_by,
    }
    if row.public_jwk:
        out["public_jwk"] = json.loads(row.public_jwk)
    return out
