"""Envelope encryption (信封加密): the master key, per-tenant wrapped keys, and the :class:`KeyRing`.

Key hierarchy::

    master key (主密钥, 32 bytes; key file or YINSI_MASTER_KEY; never in the database)
      └─ wraps, per tenant (rows of ``data_keys``, AES-256-GCM or SM4 under a key derived from the master):
           data keys, purpose "data", versions 1, 2, ...   → field encryption (AES-256-GCM / SM4)
           index key, purpose "index", version 1          → blind indexes (HMAC-SHA256 / HMAC-SM3)
           pseudonym key, purpose "pseudonym", version 1  → pseudonyms (HMAC-SHA256 / HMAC-SM3)

A tenant chooses a *suite* when its keys are created: ``standard`` (AES-256-GCM, HMAC-SHA256) or ``sm``
(the Chinese national algorithms 国密: SM4 for fields, HMAC-SM3 for indexes and pseudonyms, and SM4 to wrap
its keys). Rotation makes a new data-key version; the index and pseudonym keys stay, so blind indexes and
pseudonyms are stable across rotations.

Master key from the environment:

``YINSI_MASTER_KEY``
    base64 of 32 random bytes (for containers whose secrets arrive as variables).
``YINSI_MASTER_KEY_FILE``
    path of a key file; default ``<YINSI_DATA_DIR>/master.key``, created by ``yinsi keys init`` with
    permissions 0600. A file readable by group or others is refused.

Failing safe: every wrapped key row carries the *key check value* of the master key that wrapped it
(``master_key_id``: the first 8 bytes of HMAC-SHA256 of a constant under the master key; it reveals
nothing about the key). A key ring checks it before it wraps or unwraps anything
(:meth:`KeyRing.check_master_key`), so a wrong master key is reported at start, with what to do, and never
wraps new keys beside the old ones; and no master key is ever created while the database holds keys
wrapped by another (:func:`refuse_new_master_key`).
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from yinsi.config import data_dir, make_private_dir
from yinsi.protect.blind_index import compute_blind_index
from yinsi.protect.crypto import (
    Algorithm,
    DataKey,
    FieldCipher,
    MacAlgorithm,
    check_supported,
    generate_key,
    hmac_digest,
    length_prefixed,
    open_sealed,
    preferred_sm_algorithm,
    seal,
)
from yinsi.protect.errors import InvalidCiphertext, KeyNotFound, MasterKeyError, ProtectError, UnknownTenant
from yinsi.protect.pseudonyms import compute_pseudonym
from yinsi.storage.keys_tables import DataKeyRow
from yinsi.storage.tables import Tenant

MASTER_KEY_ENV = "YINSI_MASTER_KEY"
MASTER_KEY_FILE_ENV = "YINSI_MASTER_KEY_FILE"
MASTER_KEY_FILE_NAME = "master.key"
MASTER_KEY_SIZE = 32
#: Seconds a process trusts its cached "active data key" before asking the database again, so that a
#: rotation run elsewhere is picked up. Rows written meanwhile with the old version are caught by the
#: rotation's verification pass.
DEFAULT_ACTIVE_TTL = 30.0


class Purpose(StrEnum):
    DATA = "data"
    INDEX = "index"
    PSEUDONYM = "pseudonym"


class Suite(StrEnum):
    """A tenant's algorithm family."""

    STANDARD = "standard"
    SM = "sm"


class KeyStatus(StrEnum):
    ACTIVE = "active"
    RETIRING = "retiring"
    RETIRED = "retired"


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- the master key ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MasterKey:
    """The key-encryption key (主密钥). ``source`` says where it came from (a path or the variable)."""

    material: bytes = field(repr=False)
    source: str

    def __post_init__(self) -> None:
        if len(self.material) != MASTER_KEY_SIZE:
            raise MasterKeyError(f"主密钥必须为 {MASTER_KEY_SIZE} 字节（来源：{self.source}，实际 {len(self.material)} 字节）")

    @property
    def fingerprint(self) -> str:
        """16 hex digits that identify this master key without revealing it (stored beside wrapped keys)."""
        return hmac_digest(MacAlgorithm.HMAC_SHA256, self.material, b"yinsi/master-key-id/v1")[:8].hex()

    def _kek(self, alg: Algorithm) -> bytes:
        mac = MacAlgorithm.HMAC_SM3 if alg.is_sm else MacAlgorithm.HMAC_SHA256
        derived = hmac_digest(mac, self.material, b"yinsi/kek/v1/" + alg.value.encode())
        return derived[: alg.key_size]

    @staticmethod
    def _aad(tenant: str, purpose: str, version: int, algorithm: str) -> bytes:
        return (b"yinsi/data-key/v1" + length_prefixed(tenant) + length_prefixed(purpose)
                + struct.pack(">I", version) + length_prefixed(algorithm))

    def wrap(self, key: bytes, *, tenant: str, purpose: str, version: int, algorithm: str, sm: bool) -> bytes:
        """Wrap a tenant key, bound to its row (tenant, purpose, version, algorithm)."""
        alg = preferred_sm_algorithm() if sm else Algorithm.AES_256_GCM
        sealed = seal(alg, self._kek(alg), key, self._aad(tenant, purpose, version, algorithm))
        return bytes([alg.wire_id]) + sealed  # the wrap algorithm, numbered as in tokens

    def unwrap(self, wrapped: bytes, *, tenant: str, purpose: str, version: int, algorithm: str) -> bytes:
        raw = bytes(wrapped)
        alg = Algorithm.from_wire_id(raw[0]) if raw else None
        if alg is None:
            raise InvalidCiphertext(f"租户 {tenant} 的 {purpose} 密钥版本 {version} 的封装格式未知")
        try:
            return open_sealed(alg, self._kek(alg), raw[1:], self._aad(tenant, purpose, version, algorithm))
        except InvalidCiphertext:
            raise InvalidCiphertext(
                f"租户 {tenant} 的 {purpose} 密钥版本 {version} 无法解封：数据库中的封装密钥被改动或被移到了别处"
            ) from None


def master_key_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the master key file is (``YINSI_MASTER_KEY_FILE`` or ``<data dir>/master.key``)."""
    env = os.environ if environ is None else environ
    configured = env.get(MASTER_KEY_FILE_ENV, "").strip()
    return Path(configured).expanduser().resolve() if configured else data_dir() / MASTER_KEY_FILE_NAME


def _decode(text: str, source: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise MasterKeyError(f"主密钥不是有效的 base64 文本（来源：{source}）") from None
    if len(raw) != MASTER_KEY_SIZE:
        raise MasterKeyError(f"主密钥必须为 {MASTER_KEY_SIZE} 字节（来源：{source}，实际 {len(raw)} 字节）")
    return raw


def load_master_key(environ: Mapping[str, str] | None = None) -> MasterKey:
    """The configured master key, or :class:`MasterKeyError` saying what to do."""
    env = os.environ if environ is None else environ
    value = env.get(MASTER_KEY_ENV, "").strip()
    if value and env.get(MASTER_KEY_FILE_ENV, "").strip():
        raise MasterKeyError(f"同时设置了 {MASTER_KEY_ENV} 与 {MASTER_KEY_FILE_ENV}；只能设置其中一个")
    if value:
        return MasterKey(_decode(value, f"环境变量 {MASTER_KEY_ENV}"), f"环境变量 {MASTER_KEY_ENV}")
    path = master_key_path(env)
    if not path.is_file():
        raise MasterKeyError(f"找不到主密钥文件 {path}；请运行 yinsi keys init，或设置环境变量 {MASTER_KEY_ENV}")
    if os.name == "posix":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise MasterKeyError(f"主密钥文件 {path} 的权限过宽（{mode:04o}）；请执行：chmod 600 {path}")
    return MasterKey(_decode(path.read_text(encoding="ascii", errors="replace"), str(path)), str(path))


def create_master_key_file(path: Path | None = None) -> MasterKey:
    """Write a new random master key to ``path`` (default :func:`master_key_path`) with permissions 0600.

    An existing file is never overwritten: replacing the master key would make every wrapped key
    unreadable.
    """
    target = path or master_key_path()
    make_private_dir(target.parent)
    material = os.urandom(MASTER_KEY_SIZE)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise MasterKeyError(f"主密钥文件 {target} 已存在，不会覆盖（覆盖会使所有已封装的密钥无法解开）") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(base64.b64encode(material).decode("ascii") + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return MasterKey(material, str(target))


def _restore_hint() -> str:
    return (f"请把原来的主密钥文件恢复到 {master_key_path()}（权限 0600），或设置环境变量 {MASTER_KEY_FILE_ENV} "
            f"指向它（容器中也可用 {MASTER_KEY_ENV}）；不要新建主密钥：新主密钥解不开已加密的数据")


def wrapping_fingerprints(session: Session) -> set[str]:
    """The key check values (fingerprints) of the master keys that wrapped the keys in the database."""
    return set(session.scalars(select(DataKeyRow.master_key_id).distinct()).all())


def wrong_master_key_error(key: MasterKey, expected: set[str]) -> MasterKeyError:
    return MasterKeyError(
        f"主密钥不对：数据库中的租户密钥由指纹为 {'、'.join(sorted(expected))} 的主密钥封装，"
        f"而当前主密钥（来源：{key.source}）的指纹为 {key.fingerprint}。{_restore_hint()}"
    )


def refuse_new_master_key(session: Session, path: Path) -> None:
    """:class:`MasterKeyError` if the database already holds keys: a new master key could not unwrap them."""
    expected = wrapping_fingerprints(session)
    if expected:
        raise MasterKeyError(
            f"找不到主密钥文件 {path}，而数据库中已有由主密钥（指纹 {'、'.join(sorted(expected))}）封装的租户密钥，"
            f"因此不会新建主密钥。{_restore_hint()}"
        )


# --- the key ring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyInfo:
    """A key version's metadata (what ``yinsi keys list`` shows); never the key."""

    tenant: str
    purpose: str
    version: int
    algorithm: str
    status: str
    master_key_id: str
    created_at: datetime
    retired_at: datetime | None


@dataclass(frozen=True)
class _MacKey:
    algorithm: MacAlgorithm
    material: bytes = field(repr=False)


def data_algorithm(suite: Suite) -> Algorithm:
    return preferred_sm_algorithm() if suite is Suite.SM else Algorithm.AES_256_GCM


def mac_algorithm(suite: Suite) -> MacAlgorithm:
    return MacAlgorithm.HMAC_SM3 if suite is Suite.SM else MacAlgorithm.HMAC_SHA256


class KeyRing:
    """Loads and unwraps tenant keys from Yinsi's database; unwrapped keys are cached in memory only.

    ``KeyRing(session_factory, master_key)`` or ``KeyRing.open(url)``. The front door:
    ``cipher(tenant)`` → :class:`~yinsi.protect.crypto.FieldCipher`, ``blind_index(tenant, kind, value)``,
    ``pseudonymise(tenant, subject_id)``. Keys are created by ``provision(tenant, suite)``.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        master_key: MasterKey,
        *,
        clock: Callable[[], datetime] = _utcnow,
        active_ttl: float = DEFAULT_ACTIVE_TTL,
    ) -> None:
        self._sessions = session_factory
        self.master_key = master_key
        self._clock = clock
        self._active_ttl = active_ttl
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str, int], tuple[str, bytes]] = {}  # (algorithm, material)
        self._active: dict[str, tuple[float, DataKey]] = {}
        self._engine: Engine | None = None
        self._checked = False

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str | None = None,
        master_key: MasterKey | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
        active_ttl: float = DEFAULT_ACTIVE_TTL,
    ) -> KeyRing:
        """A key ring on the database at ``url`` (default: the configured one) with the configured master
        key. The default embedded database is migrated automatically; others must be current."""
        from yinsi.config import database_url, is_default_database
        from yinsi.storage.engine import make_engine, make_session_factory
        from yinsi.storage.migrate import ensure_current

        target = url or database_url()
        key = master_key or load_master_key()
        ensure_current(target, auto_upgrade=is_default_database(target))
        engine = make_engine(target)
        ring = cls(make_session_factory(engine), key, clock=clock, active_ttl=active_ttl)
        ring._engine = engine
        try:
            ring.check_master_key()
        except BaseException:
            engine.dispose()
            raise
        return ring

    def close(self) -> None:
        """Forget cached keys and dispose of the engine :meth:`open` created."""
        self.forget()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> KeyRing:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The engine of Yinsi's database (the one the session factory is bound to)."""
        bind = self._sessions.kw.get("bind")
        if not isinstance(bind, Engine):
            raise RuntimeError("the key ring's session factory is not bound to an engine")
        return bind

    def now(self) -> datetime:
        """The key ring's clock (UTC)."""
        return self._clock()

    def session(self) -> Session:
        """A new session on Yinsi's database (the caller manages its transaction)."""
        return self._sessions()

    def forget(self) -> None:
        """Drop every unwrapped key from memory."""
        with self._lock:
            self._keys.clear()
            self._active.clear()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def check_master_key(self) -> None:
        """:class:`MasterKeyError` (saying what to do) if the database holds keys and none was wrapped by
        this master key. Checked once per key ring, before the first key is wrapped or unwrapped."""
        if self._checked:
            return
        with self._session() as session:
            expected = wrapping_fingerprints(session)
        if expected and self.master_key.fingerprint not in expected:
            raise wrong_master_key_error(self.master_key, expected)
        self._checked = True

    # -- provisioning ------------------------------------------------------------------------------

    def provision(self, tenant: str, suite: Suite | str = Suite.STANDARD) -> bool:
        """Create the tenant's data key (version 1), index key and pseudonym key if it has none.

        Returns ``True`` if keys were created, ``False`` if the tenant already had them (whatever its
        suite: changing the suite of an existing tenant is a rotation, ``rotate --algorithm``).
        """
        suite = Suite(suite)
        alg, mac = data_algorithm(suite), mac_algorithm(suite)
        check_supported(alg)
        check_supported(mac)
        self.check_master_key()
        now = self._clock()
        try:
            with self._session() as session:
                if session.get(Tenant, tenant) is None:
                    raise UnknownTenant(f"租户 {tenant} 不存在；请先发布其隐私政策（yinsi policy publish）")
                existing = session.scalars(
                    select(DataKeyRow.purpose).where(DataKeyRow.tenant_id == tenant).distinct()
                ).all()
                if existing:
                    return False
                for purpose, algorithm, material in (
                    (Purpose.DATA, alg.value, generate_key(alg)),
                    (Purpose.INDEX, mac.value, os.urandom(32)),
                    (Purpose.PSEUDONYM, mac.value, os.urandom(32)),
                ):
                    session.add(self._row(tenant, purpose, 1, algorithm, material, suite is Suite.SM, now))
        except IntegrityError:  # another process provisioned the tenant at the same moment
            return False
        return True

    def _row(self, tenant: str, purpose: Purpose, version: int, algorithm: str, material: bytes, sm: bool,
             now: datetime) -> DataKeyRow:
        wrapped = self.master_key.wrap(material, tenant=tenant, purpose=purpose.value, version=version,
                                       algorithm=algorithm, sm=sm)
        return DataKeyRow(tenant_id=tenant, purpose=purpose.value, key_version=version, algorithm=algorithm,
                          wrapped_key=wrapped, master_key_id=self.master_key.fingerprint,
                          status=KeyStatus.ACTIVE.value, created_at=now, retired_at=None)

    def add_data_key_version(
        self,
        tenant: str,
        algorithm: Algorithm | None = None,
        *,
        also: Callable[[Session, DataKey], None] | None = None,
    ) -> DataKey:
        """Make a new data-key version the active one; the previous active version becomes ``retiring``.

        ``algorithm`` defaults to the current one (switching between AES and SM4 is allowed here).
        ``also(session, key)`` runs in the same transaction (rotation records itself there, so a crash
        cannot leave a new version without its rotation).
        """
        self.check_master_key()
        now = self._clock()
        with self._session() as session:
            rows = session.scalars(
                select(DataKeyRow).where(DataKeyRow.tenant_id == tenant, DataKeyRow.purpose == Purpose.DATA.value)
                .order_by(DataKeyRow.key_version)
            ).all()
            if not rows:
                raise KeyNotFound(f"租户 {tenant} 还没有数据密钥；请运行：yinsi keys create {tenant}")
            alg = algorithm or Algorithm(rows[-1].algorithm)
            check_supported(alg)
            version = rows[-1].key_version + 1
            for row in rows:
                if row.status == KeyStatus.ACTIVE.value:
                    row.status = KeyStatus.RETIRING.value
            material = generate_key(alg)
            session.add(self._row(tenant, Purpose.DATA, version, alg.value, material, alg.is_sm, now))
            key = DataKey(version, alg, material)
            if also is not None:
                session.flush()
                also(session, key)
        with self._lock:
            self._active.pop(tenant, None)
        return key

    def retire(self, tenant: str, versions: list[int]) -> None:
        """Mark superseded data-key versions ``retired`` (no registered ciphertext uses them any more)."""
        if not versions:
            return
        now = self._clock()
        with self._session() as session:
            for row in session.scalars(
                select(DataKeyRow).where(DataKeyRow.tenant_id == tenant, DataKeyRow.purpose == Purpose.DATA.value,
                                         DataKeyRow.key_version.in_(versions))
            ):
                if row.status == KeyStatus.ACTIVE.value:
                    raise ProtectError(f"租户 {tenant} 的数据密钥版本 {row.key_version} 是当前版本，不能停用")
                if row.status != KeyStatus.RETIRED.value:
                    row.status = KeyStatus.RETIRED.value
                    row.retired_at = now

    def list_keys(self, tenant: str | None = None) -> list[KeyInfo]:
        with self._session() as session:
            query = select(DataKeyRow).order_by(DataKeyRow.tenant_id, DataKeyRow.purpose, DataKeyRow.key_version)
            if tenant is not None:
                query = query.where(DataKeyRow.tenant_id == tenant)
            return [
                KeyInfo(r.tenant_id, r.purpose, r.key_version, r.algorithm, r.status, r.master_key_id,
                        r.created_at, r.retired_at)
                for r in session.scalars(query)
            ]

    def suite(self, tenant: str) -> Suite:
        """The tenant's suite, from its index key's algorithm (fixed at provisioning)."""
        return Suite.SM if self._mac_key(tenant, Purpose.INDEX).algorithm is MacAlgorithm.HMAC_SM3 else Suite.STANDARD

    # -- key loading -------------------------------------------------------------------------------

    def _unwrap(self, row: DataKeyRow) -> bytes:
        if row.master_key_id != self.master_key.fingerprint:
            raise MasterKeyError(
                f"租户 {row.tenant_id} 的 {row.purpose} 密钥版本 {row.key_version} 由另一个主密钥封装"
                f"（指纹 {row.master_key_id}），当前主密钥（{self.master_key.source}）的指纹为 "
                f"{self.master_key.fingerprint}。{_restore_hint()}"
            )
        return self.master_key.unwrap(row.wrapped_key, tenant=row.tenant_id, purpose=row.purpose,
                                      version=row.key_version, algorithm=row.algorithm)

    def _load(self, tenant: str, purpose: Purpose, version: int | None) -> tuple[int, str, bytes]:
        """(version, algorithm, material); ``version=None`` means the active one (always from the DB)."""
        self.check_master_key()
        if version is not None:
            cache_key = (tenant, purpose.value, version)
            with self._lock:
                if cache_key in self._keys:
                    return (version, *self._keys[cache_key])
        with self._session() as session:
            query = select(DataKeyRow).where(DataKeyRow.tenant_id == tenant, DataKeyRow.purpose == purpose.value)
            if version is None:
                query = query.where(DataKeyRow.status == KeyStatus.ACTIVE.value)
            else:
                query = query.where(DataKeyRow.key_version == version)
            row = session.scalars(query.order_by(DataKeyRow.key_version.desc()).limit(1)).first()
            if row is None:
                which = "当前" if version is None else f"版本 {version} 的"
                raise KeyNotFound(f"租户 {tenant} 没有{which}{purpose.value} 密钥；"
                                  f"如尚未创建，请运行：yinsi keys create {tenant}")
            material = self._unwrap(row)
            cache_key = (tenant, purpose.value, row.key_version)
            with self._lock:
                self._keys[cache_key] = (row.algorithm, material)
            return row.key_version, row.algorithm, material

    def active_data_key(self, tenant: str) -> DataKey:
        """The data key new ciphertexts use (cached for ``active_ttl`` seconds)."""
        now = time.monotonic()
        with self._lock:
            cached = self._active.get(tenant)
            if cached is not None and cached[0] > now:
                return cached[1]
        version, algorithm, material = self._load(tenant, Purpose.DATA, None)
        key = DataKey(version, Algorithm(algorithm), material)
        with self._lock:
            self._active[tenant] = (now + self._active_ttl, key)
        return key

    def data_key(self, tenant: str, version: int) -> DataKey:
        """A data key by version (for decryption); retired versions still decrypt."""
        v, algorithm, material = self._load(tenant, Purpose.DATA, version)
        return DataKey(v, Algorithm(algorithm), material)

    def _mac_key(self, tenant: str, purpose: Purpose) -> _MacKey:
        _, algorithm, material = self._load(tenant, purpose, 1)
        return _MacKey(MacAlgorithm(algorithm), material)

    # -- the front door ----------------------------------------------------------------------------

    def cipher(self, tenant: str) -> FieldCipher:
        """Field encryption for ``tenant``."""
        return FieldCipher(tenant, self)

    def blind_index(self, tenant: str, kind: str, value: str) -> str:
        """The tenant's blind index of an identifier (see :mod:`yinsi.protect.blind_index`)."""
        key = self._mac_key(tenant, Purpose.INDEX)
        return compute_blind_index(key.algorithm, key.material, kind, value)

    def pseudonymise(self, tenant: str, subject_id: str) -> str:
        """The tenant's stable pseudonym for a subject (see :mod:`yinsi.protect.pseudonyms`)."""
        key = self._mac_key(tenant, Purpose.PSEUDONYM)
        return compute_pseudonym(key.algorithm, key.material, subject_id)
