"""Tables of app access (应用接入) and people's sessions (个人会话).

- ``api_keys``: a tenant's app API keys. Only the SHA-256 of a key's secret is kept (``secret_hash``); the
  token ``yk_<id>_<secret>`` is shown once when the key is created or rotated. After a rotation with a grace
  period the previous secret's hash stays in ``previous_hash`` until ``previous_valid_until``.
- ``app_link_keys``: how a tenant's app signs deep links into the privacy center: a Yinsi-generated HS256
  secret (``secret_encrypted``, encrypted with the tenant's data key: it is needed to verify) or the app's
  public key (``public_jwk``, ES256 or EdDSA; not secret).
- ``app_link_jtis``: the ``jti`` of every deep-link token already used (its SHA-256), until the token
  expires: a replayed token is refused.
- ``login_challenges``: which subject a one-time login code was sent for (encrypted; the code itself is in
  ``verification_codes``, hashed).
- ``subject_sessions``: people's sessions. The subject is kept as a blind index (``subject_index``) and
  encrypted (``subject_encrypted``): a subject's key may itself be PI. Only the SHA-256 of the session
  token is kept.
- ``rate_events``: one row per rate-limited attempt (a code requested, a code checked), keyed by a keyed
  hash of the IP, the contact or the subject (the tenant's blind index), never by the value itself.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yinsi.storage.tables import MYSQL_TABLE_ARGS, TENANT_ID_LEN, Base
from yinsi.storage.types import LargeText, UTCDateTime

KEY_ID_LEN = 32
HASH_LEN = 64
NAME_LEN = 200
SCOPES_LEN = 200
ACTOR_LEN = 64
KIND_LEN = 16
ALG_LEN = 16
ISSUER_LEN = 200
SUBJECT_KIND_LEN = 64
SESSION_ID_LEN = 32
CHALLENGE_ID_LEN = 36
BUCKET_LEN = 32

#: An auto-incrementing 64-bit key; SQLite only auto-increments INTEGER PRIMARY KEY.
RowId = BigInteger().with_variant(Integer(), "sqlite")

#: Field names the encrypted columns are encrypted with (bound into each token).
APP_LINK_SECRET_FIELD = "app_link_keys.secret"
SESSION_SUBJECT_FIELD = "subject_sessions.subject"
CHALLENGE_SUBJECT_FIELD = "login_challenges.subject"


class ApiKeyRow(Base):
    """One API key of a tenant's app. ``scopes``: sorted, comma-separated ``AppScope`` values."""

    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ix_api_keys_tenant", "tenant_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(KEY_ID_LEN), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    scopes: Mapped[str] = mapped_column(String(SCOPES_LEN))
    secret_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    previous_hash: Mapped[str | None] = mapped_column(String(HASH_LEN))
    previous_valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(ACTOR_LEN))
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(ACTOR_LEN))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AppLinkKeyRow(Base):
    """The key a tenant's app signs deep links with (one per tenant; setting a new one replaces it).

    ``kind``: ``hs256`` (``secret_encrypted`` holds the shared secret, encrypted) or ``public``
    (``public_jwk`` holds the app's public key as a JWK; ``algorithm`` ES256 or EdDSA). ``issuer`` is the
    ``iss`` the tokens must carry; ``fingerprint`` the RFC 7638 thumbprint shown to administrators."""

    __tablename__ = "app_link_keys"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(KIND_LEN))
    algorithm: Mapped[str] = mapped_column(String(ALG_LEN))
    issuer: Mapped[str] = mapped_column(String(ISSUER_LEN))
    secret_encrypted: Mapped[str | None] = mapped_column(LargeText)
    public_jwk: Mapped[str | None] = mapped_column(LargeText)
    fingerprint: Mapped[str] = mapped_column(String(HASH_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(ACTOR_LEN))


class AppLinkJtiRow(Base):
    """A deep-link token already used: the SHA-256 of its ``jti``, kept until the token expires."""

    __tablename__ = "app_link_jtis"
    __table_args__ = (
        Index("ix_app_link_jtis_expires", "expires_at"),
        MYSQL_TABLE_ARGS,
    )

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"), primary_key=True)
    jti_hash: Mapped[str] = mapped_column(String(HASH_LEN), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoginChallengeRow(Base):
    """The subject a login code was sent for (``id`` is the ``verification_codes`` challenge id)."""

    __tablename__ = "login_challenges"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[str] = mapped_column(String(CHALLENGE_ID_LEN), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    subject_kind: Mapped[str] = mapped_column(String(SUBJECT_KIND_LEN))
    subject_encrypted: Mapped[str] = mapped_column(LargeText)
    channel: Mapped[str] = mapped_column(String(KIND_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SubjectSessionRow(Base):
    """A person's session (会话). It ends at ``expires_at`` (absolute), after the idle timeout since
    ``last_seen_at``, or when ``revoked_at`` is set (logout)."""

    __tablename__ = "subject_sessions"
    __table_args__ = (
        UniqueConstraint("token_hash", name="uq_subject_sessions_token_hash"),
        Index("ix_subject_sessions_tenant_subject", "tenant_id", "subject_index"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(String(SESSION_ID_LEN), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    subject_index: Mapped[str] = mapped_column(String(HASH_LEN))
    subject_encrypted: Mapped[str] = mapped_column(LargeText)
    subject_kind: Mapped[str | None] = mapped_column(String(SUBJECT_KIND_LEN))
    method: Mapped[str] = mapped_column(String(KIND_LEN))
    token_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RateEventRow(Base):
    """One attempt counted by a rate limit: ``bucket`` names the limit (``code_ip``, ``code_contact`` …),
    ``key_hash`` is the tenant's keyed hash of what is limited (an IP, a contact, a subject)."""

    __tablename__ = "rate_events"
    __table_args__ = (
        Index("ix_rate_events_key", "tenant_id", "bucket", "key_hash", "at"),
        Index("ix_rate_events_at", "at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LEN), ForeignKey("tenants.id"))
    bucket: Mapped[str] = mapped_column(String(BUCKET_LEN))
    key_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


def register_rotation_columns() -> None:
    """Put the encrypted columns of these tables in the key-rotation registry (``yinsi keys rotate``)."""
    from yinsi.protect.registry import EncryptedColumn, register_encrypted_column

    register_encrypted_column(EncryptedColumn("app_link_keys", "secret_encrypted", field=APP_LINK_SECRET_FIELD))
    register_encrypted_column(EncryptedColumn("subject_sessions", "subject_encrypted", field=SESSION_SUBJECT_FIELD))
    register_encrypted_column(EncryptedColumn("login_challenges", "subject_encrypted",
                                              field=CHALLENGE_SUBJECT_FIELD))
