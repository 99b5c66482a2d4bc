"""Checkpoint signing keys: Ed25519 (default, ``cryptography``) or SM2 (GB/T 32918, ``gmssl``).

The private key lives in a file outside the database, created on first use with mode 0600:

- Ed25519: ``YINSI_AUDIT_KEY_FILE``, default ``<data dir>/audit_signing.key`` (PKCS#8 PEM);
- SM2: ``YINSI_AUDIT_SM2_KEY_FILE``, default ``<data dir>/audit_signing_sm2.key`` (the private scalar in hex).

A key file inside the data directory — where the database owner of an embedded SQLite database can read
it — is stored **wrapped by the master key** (``YINSI-AUDIT-WRAPPED-KEY/1``, AES-256-GCM under a key derived
from the master key, bound to the algorithm); an unwrapped key found there (older installations) is wrapped
in place on first use. A key file outside the data directory (a key holder's mount, a secrets volume) is
kept as it is. Whoever holds the signing key and can write the database can forge checkpoints: a database
owner must hold neither the key file nor the master key (``YINSI_MASTER_KEY`` outside the data directory).

A key's id is the first 32 hex digits of ``SHA-256("<alg>:<public key hex>")``, so an id pins its key.
SM2 signatures come from :mod:`yinsi.protect.sm2` (SM3 with the default user ID ``1234567812345678``, a nonce
from ``secrets``, and no use of gmssl's ``public_key.lstrip("04")``, which corrupted about one key in 256).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from yinsi.audit.errors import AuditKeyError
from yinsi.audit.location import inside
from yinsi.config import data_dir
from yinsi.protect.errors import ProtectError
from yinsi.protect.sm2 import N as _SM2_N
from yinsi.protect.sm2 import sm2_public_key, sm2_sign, sm2_verify

KEY_FILE_ENV = "YINSI_AUDIT_KEY_FILE"
SM2_KEY_FILE_ENV = "YINSI_AUDIT_SM2_KEY_FILE"
DEFAULT_KEY_FILE = "audit_signing.key"
DEFAULT_SM2_KEY_FILE = "audit_signing_sm2.key"
if TYPE_CHECKING:
    from yinsi.protect.keys import MasterKey

_SM2_HEADER = "YINSI-AUDIT-SM2-PRIVATE-KEY"
WRAPPED_HEADER = "YINSI-AUDIT-WRAPPED-KEY/1"
_WRAP_TENANT = "*"
_WRAP_PURPOSE = "audit_signing"

log = logging.getLogger("yinsi.audit")


class SignAlg(StrEnum):
    ED25519 = "ed25519"
    SM2 = "sm2"

    @property
    def label(self) -> str:
        return {"ed25519": "Ed25519", "sm2": "SM2"}[self.value]


def key_id_for(alg: str, public_key_hex: str) -> str:
    return hashlib.sha256(f"{alg}:{public_key_hex}".encode()).hexdigest()[:32]


def default_key_file(alg: str) -> Path:
    """Where the private key of ``alg`` is kept (the environment variable wins)."""
    env, name = (SM2_KEY_FILE_ENV, DEFAULT_SM2_KEY_FILE) if alg == SignAlg.SM2 else (KEY_FILE_ENV, DEFAULT_KEY_FILE)
    configured = os.environ.get(env, "").strip()
    return Path(configured).expanduser() if configured else data_dir() / name


@dataclass(frozen=True)
class Signer:
    """A loaded private key."""

    alg: str
    public_key: str  # hex: Ed25519 raw 32 bytes; SM2 uncompressed x||y, 64 bytes
    _private: Ed25519PrivateKey | str

    @property
    def key_id(self) -> str:
        return key_id_for(self.alg, self.public_key)

    def sign(self, data: bytes) -> str:
        """The signature of ``data`` in hex."""
        if isinstance(self._private, Ed25519PrivateKey):
            return self._private.sign(data).hex()
        return sm2_sign(self._private, data)

    def private_bytes(self) -> bytes:
        """The key file content."""
        if isinstance(self._private, Ed25519PrivateKey):
            return self._private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return f"{_SM2_HEADER}\n{self._private}\n".encode("ascii")


def generate(alg: str) -> Signer:
    """A fresh key pair."""
    if alg == SignAlg.ED25519:
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return Signer(alg, public.hex(), key)
    if alg == SignAlg.SM2:
        d = secrets.randbelow(_SM2_N - 2) + 1
        return Signer(alg, _sm2_public(d), f"{d:064x}")
    raise ValueError(f"unknown audit signature algorithm {alg!r} (expected one of: ed25519, sm2)")


def _sm2_public(d: int) -> str:
    return sm2_public_key(f"{d:064x}")[2:]  # x || y, as key ids have always been computed


def parse_private(alg: str, data: bytes, where: str) -> Signer:
    """A signer from key file content."""
    try:
        if alg == SignAlg.ED25519:
            key = serialization.load_pem_private_key(data, password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("not an Ed25519 key")
            public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return Signer(alg, public.hex(), key)
        lines = data.decode("ascii").split()
        if len(lines) != 2 or lines[0] != _SM2_HEADER:
            raise ValueError("not a Yinsi SM2 key file")
        d = int(lines[1], 16)
        if not 1 <= d <= _SM2_N - 2:
            raise ValueError("private scalar out of range")
        return Signer(alg, _sm2_public(d), f"{d:064x}")
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise AuditKeyError(f"审计签名密钥文件 {where} 无法读取：{exc}") from None


def _check_permissions(path: Path) -> None:
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise AuditKeyError(
            f"审计签名密钥文件 {path} 的权限过宽（{mode:04o}），其他用户可能读取私钥；请执行：chmod 600 {path}")


def must_wrap(path: Path) -> bool:
    """Whether a key file at ``path`` is kept wrapped by the master key (it lies in the data directory)."""
    return inside(path, data_dir())


def _master_key() -> MasterKey:
    from yinsi.services.audit_trail import master_key  # the one place that decides when a master key may be created

    try:
        return master_key()
    except ProtectError as exc:
        raise AuditKeyError(f"审计签名密钥需要主密钥来封装或解封：{exc}") from None


def wrap_key(alg: str, content: bytes) -> bytes:
    """Key file content wrapped by the master key."""
    master = _master_key()
    wrapped = master.wrap(content, tenant=_WRAP_TENANT, purpose=_WRAP_PURPOSE, version=1,
                          algorithm=alg, sm=False)
    fingerprint = master.fingerprint
    return f"{WRAPPED_HEADER}\n{alg}\n{fingerprint}\n{base64.b64encode(wrapped).decode('ascii')}\n".encode("ascii")


def unwrap_key(alg: str, data: bytes, where: str) -> bytes:
    """The plain key file content of a wrapped key file."""
    try:
        header, file_alg, fingerprint, blob = data.decode("ascii").split()
        wrapped = base64.b64decode(blob, validate=True)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise AuditKeyError(f"审计签名密钥文件 {where} 已损坏") from None
    if header != WRAPPED_HEADER or file_alg != alg:
        raise AuditKeyError(f"审计签名密钥文件 {where} 不是 {alg} 密钥")
    master = _master_key()
    if master.fingerprint != fingerprint:
        raise AuditKeyError(f"审计签名密钥文件 {where} 由另一个主密钥（指纹 {fingerprint}）封装，当前主密钥无法解开；"
                            "请配置当初的主密钥（YINSI_MASTER_KEY 或 YINSI_MASTER_KEY_FILE）")
    try:
        raw: bytes = master.unwrap(wrapped, tenant=_WRAP_TENANT, purpose=_WRAP_PURPOSE, version=1,
                                   algorithm=alg)
    except ProtectError:
        raise AuditKeyError(f"审计签名密钥文件 {where} 无法解封（文件被改动）") from None
    return raw


def load_signer(alg: str, path: Path | None = None, *, create: bool = True) -> Signer | None:
    """The signer in ``path`` (default ``default_key_file(alg)``); a new key is written there first if
    the file does not exist and ``create`` is set, otherwise ``None`` is returned.

    Creation is atomic (the key is written to a temporary file that is hard-linked into place), so
    processes starting at the same time end up with the same key. Inside the data directory the key is
    wrapped by the master key (and an unwrapped one found there is wrapped in place).
    """
    path = path or default_key_file(alg)
    wrap = must_wrap(path)
    if not path.exists():
        if not create:
            return None
        content = generate(alg).private_bytes()
        _write_new_key(path, wrap_key(alg, content) if wrap else content)
    _check_permissions(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuditKeyError(f"审计签名密钥文件 {path} 无法读取：{exc.strerror}") from None
    if data.startswith(WRAPPED_HEADER.encode("ascii")):
        return parse_private(alg, unwrap_key(alg, data, str(path)), str(path))
    signer = parse_private(alg, data, str(path))
    if wrap:
        _rewrite(path, wrap_key(alg, data))
        log.warning("数据目录中的审计签名密钥文件 %s 原为明文，已改为由主密钥封装", path)
    return signer


def _rewrite(path: Path, content: bytes) -> None:
    try:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise AuditKeyError(f"无法改写审计签名密钥文件 {path}：{exc.strerror}") from None


def _write_new_key(path: Path, content: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if another process created the key meanwhile: use theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    except OSError as exc:
        raise AuditKeyError(f"无法创建审计签名密钥文件 {path}：{exc.strerror}") from None


def replace_key_file(path: Path, signer: Signer, retired_suffix: str) -> Path:
    """Move the current key file aside (``<name>.<retired_suffix>``) and write ``signer`` in its place."""
    retired = path.with_name(f"{path.name}.{retired_suffix}")
    content = signer.private_bytes()
    if must_wrap(path):
        content = wrap_key(signer.alg, content)
    try:
        os.replace(path, retired)
        _write_new_key(path, content)
    except OSError as exc:
        raise AuditKeyError(f"无法替换审计签名密钥文件 {path}：{exc.strerror}") from None
    return retired


def verify_signature(alg: str, public_key_hex: str, data: bytes, signature_hex: str) -> bool:
    """Whether ``signature_hex`` is a valid signature of ``data`` by the key; never raises."""
    try:
        sig = bytes.fromhex(signature_hex)
        if alg == SignAlg.ED25519:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(sig, data)
            return True
        if alg == SignAlg.SM2:
            if len(sig) != 64 or len(bytes.fromhex(public_key_hex)) != 64:
                return False
            return sm2_verify(public_key_hex, data, sig.hex())
    except (InvalidSignature, ValueError, TypeError, ArithmeticError):
        return False
    return False
