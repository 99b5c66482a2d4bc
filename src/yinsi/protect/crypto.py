"""Field encryption (字段加密): one value at a time, authenticated, with a self-describing header.

Token format (bytes), version 1::

    b"YS1" | alg (1 byte) | key version (4 bytes, big-endian) | nonce | ciphertext | tag

=====  ====================  ========  =====  ====================================================
 alg   name                  key       nonce  notes
=====  ====================  ========  =====  ====================================================
 1     ``aes-256-gcm``       32 bytes  12     the default
 2     ``sm4-gcm``           16 bytes  12     GB/T 32907 block cipher in GCM (RFC 8998 test vector)
 3     ``sm4-cbc-hmac-sm3``  32 bytes  16     encrypt-then-MAC, for OpenSSL builds without SM4-GCM
=====  ====================  ========  =====  ====================================================

The tag is 16 bytes in every case. The associated data is the 8-byte header followed by the tenant and
the field name (each length-prefixed), so a token moved to another tenant or column, or whose header is
edited, fails authentication: :class:`~yinsi.protect.errors.InvalidCiphertext`, never garbage.

The safe front door is :class:`FieldCipher` (obtained from :class:`yinsi.protect.keys.KeyRing`); the
functions below it (``seal``/``open_sealed``) are the sharp tools the key layer is built from.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from hmac import compare_digest
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from yinsi.protect.errors import InvalidCiphertext, KeyNotFound, UnsupportedAlgorithm
from yinsi.protect.sm2 import sm2_generate_keypair, sm2_sign, sm2_verify

__all__ = [
    "MAGIC",
    "Algorithm",
    "DataKey",
    "FieldCipher",
    "Header",
    "KeySource",
    "MacAlgorithm",
    "algorithm_support",
    "check_supported",
    "generate_key",
    "hmac_digest",
    "open_sealed",
    "read_header",
    "seal",
    "sm2_generate_keypair",
    "sm2_sign",
    "sm2_verify",
    "sm4_gcm_supported",
]

MAGIC = b"YS1"
_HEADER = struct.Struct(">3sBI")
HEADER_LEN = _HEADER.size  # 8
TAG_LEN = 16
MAX_KEY_VERSION = 2**32 - 1


class Algorithm(StrEnum):
    """Field-encryption algorithms (the value stored in ``data_keys.algorithm``)."""

    AES_256_GCM = "aes-256-gcm"
    SM4_GCM = "sm4-gcm"
    SM4_CBC_HMAC_SM3 = "sm4-cbc-hmac-sm3"

    @property
    def wire_id(self) -> int:
        return _WIRE_IDS[self]

    @classmethod
    def from_wire_id(cls, wire_id: int) -> Algorithm | None:
        return _BY_WIRE_ID.get(wire_id)

    @property
    def key_size(self) -> int:
        return _KEY_SIZES[self]

    @property
    def is_sm(self) -> bool:
        """One of the Chinese national (商用密码) algorithms."""
        return self is not Algorithm.AES_256_GCM


class MacAlgorithm(StrEnum):
    """Keyed hashes for blind indexes and pseudonyms."""

    HMAC_SHA256 = "hmac-sha256"
    HMAC_SM3 = "hmac-sm3"


_WIRE_IDS = {Algorithm.AES_256_GCM: 1, Algorithm.SM4_GCM: 2, Algorithm.SM4_CBC_HMAC_SM3: 3}
_BY_WIRE_ID = {v: k for k, v in _WIRE_IDS.items()}
_KEY_SIZES = {Algorithm.AES_256_GCM: 32, Algorithm.SM4_GCM: 16, Algorithm.SM4_CBC_HMAC_SM3: 32}
_NONCE_SIZES = {Algorithm.AES_256_GCM: 12, Algorithm.SM4_GCM: 12, Algorithm.SM4_CBC_HMAC_SM3: 16}


# --- what this machine supports ---------------------------------------------------------------------


@cache
def sm4_supported() -> bool:
    """Whether the OpenSSL inside ``cryptography`` has SM4 at all (CBC)."""
    try:
        enc = Cipher(algorithms.SM4(bytes(16)), modes.CBC(bytes(16))).encryptor()
        enc.update(bytes(16))
        enc.finalize()
        return True
    except Exception:  # UnsupportedAlgorithm, or SM4 missing from the module in an old cryptography
        return False


@cache
def sm4_gcm_supported() -> bool:
    """Whether SM4-GCM works *and* gives the RFC 8998 (appendix A.1) test-vector result."""
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    iv = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plain = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
                          "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")
    expected_tag = "83de3541e4c2b58177e065a9bf7b62ec"
    expected_head = "17f399f08c67d5ee19d0dc9969c4bb7d"
    try:
        enc = Cipher(algorithms.SM4(key), modes.GCM(iv)).encryptor()
        enc.authenticate_additional_data(aad)
        ct = enc.update(plain) + enc.finalize()
        return ct[:16].hex() == expected_head and enc.tag.hex() == expected_tag
    except Exception:
        return False


@cache
def sm3_supported() -> bool:
    try:
        h = hashes.Hash(hashes.SM3())
        h.update(b"abc")
        # GB/T 32905 example 1
        return h.finalize().hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    except Exception:
        return False


def algorithm_support() -> dict[str, bool]:
    """Which algorithms this installation can run (``yinsi keys algorithms`` prints it)."""
    return {
        Algorithm.AES_256_GCM.value: True,
        Algorithm.SM4_GCM.value: sm4_gcm_supported(),
        Algorithm.SM4_CBC_HMAC_SM3.value: sm4_supported() and sm3_supported(),
        MacAlgorithm.HMAC_SHA256.value: True,
        MacAlgorithm.HMAC_SM3.value: sm3_supported(),
    }


@cache
def _supported(name: str) -> bool:
    return algorithm_support()[name]


def check_supported(alg: Algorithm | MacAlgorithm) -> None:
    """Raise :class:`UnsupportedAlgorithm` (naming the OpenSSL build) if ``alg`` cannot run here."""
    if not _supported(alg.value):
        from cryptography.hazmat.backends.openssl.backend import backend

        raise UnsupportedAlgorithm(
            f"本机的 cryptography/OpenSSL（{backend.openssl_version_text()}）不支持 {alg.value}"
            + ("；可改用 sm4-cbc-hmac-sm3" if alg is Algorithm.SM4_GCM and sm4_supported() else "")
        )


def preferred_sm_algorithm() -> Algorithm:
    """SM4-GCM where OpenSSL has it, else SM4-CBC with HMAC-SM3 (encrypt-then-MAC)."""
    return Algorithm.SM4_GCM if sm4_gcm_supported() else Algorithm.SM4_CBC_HMAC_SM3


def generate_key(alg: Algorithm) -> bytes:
    """Fresh random key material of the right size for ``alg`` (from the OS CSPRNG)."""
    return os.urandom(alg.key_size)


# --- primitives -------------------------------------------------------------------------------------


def _hash(mac: MacAlgorithm) -> hashes.HashAlgorithm:
    return hashes.SM3() if mac is MacAlgorithm.HMAC_SM3 else hashes.SHA256()


def hmac_digest(mac: MacAlgorithm, key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 or HMAC-SM3 (32 bytes)."""
    h = hmac.HMAC(key, _hash(mac))
    h.update(data)
    return h.finalize()


def _cbc_hmac_tag(mac_key: bytes, aad: bytes, iv: bytes, ct: bytes) -> hmac.HMAC:
    # As AES-CBC-HMAC in RFC 7518 5.2: MAC over AAD || IV || ciphertext || AAD length in bits.
    h = hmac.HMAC(mac_key, hashes.SM3())
    h.update(aad + iv + ct + struct.pack(">Q", len(aad) * 8))
    return h


def seal(alg: Algorithm, key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate: returns ``nonce | ciphertext | tag`` (a fresh random nonce each call)."""
    check_supported(alg)
    if len(key) != alg.key_size:
        raise ValueError(f"{alg.value} needs a {alg.key_size}-byte key, got {len(key)} bytes")
    nonce = os.urandom(_NONCE_SIZES[alg])
    if alg is Algorithm.AES_256_GCM:
        return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)
    if alg is Algorithm.SM4_GCM:
        enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(aad)
        ct = enc.update(plaintext) + enc.finalize()
        return nonce + ct + enc.tag
    mac_key, enc_key = key[:16], key[16:]
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    cbc = Cipher(algorithms.SM4(enc_key), modes.CBC(nonce)).encryptor()
    ct = cbc.update(padded) + cbc.finalize()
    return nonce + ct + _cbc_hmac_tag(mac_key, aad, nonce, ct).finalize()[:TAG_LEN]


def open_sealed(alg: Algorithm, key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Verify and decrypt what :func:`seal` returned; any mismatch raises :class:`InvalidCiphertext`."""
    check_supported(alg)
    if len(key) != alg.key_size:
        raise ValueError(f"{alg.value} needs a {alg.key_size}-byte key, got {len(key)} bytes")
    n = _NONCE_SIZES[alg]
    if len(sealed) < n + TAG_LEN:
        raise InvalidCiphertext("密文被截断（长度不足）")
    nonce, body = sealed[:n], sealed[n:]
    try:
        if alg is Algorithm.AES_256_GCM:
            return AESGCM(key).decrypt(nonce, body, aad)
        ct, tag = body[:-TAG_LEN], body[-TAG_LEN:]
        if alg is Algorithm.SM4_GCM:
            dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
            dec.authenticate_additional_data(aad)
            return dec.update(ct) + dec.finalize()
        mac_key, enc_key = key[:16], key[16:]
        expected = _cbc_hmac_tag(mac_key, aad, nonce, ct).finalize()[:TAG_LEN]
        if not compare_digest(expected, tag) or not ct or len(ct) % 16:
            raise InvalidTag
        cbc = Cipher(algorithms.SM4(enc_key), modes.CBC(nonce)).decryptor()
        padded = cbc.update(ct) + cbc.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except (InvalidTag, ValueError):
        raise InvalidCiphertext("密文校验失败") from None


# --- the token format -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """What a token says about itself: format version 1, the algorithm and the data-key version."""

    algorithm: Algorithm
    key_version: int

    def pack(self) -> bytes:
        return _HEADER.pack(MAGIC, self.algorithm.wire_id, self.key_version)


def _as_bytes(token: bytes | bytearray | memoryview) -> bytes:
    if isinstance(token, bytes):
        return token
    if isinstance(token, (bytearray, memoryview)):
        return bytes(token)
    raise TypeError(f"a ciphertext token is bytes, not {type(token).__name__}")


def read_header(token: bytes | bytearray | memoryview) -> Header:
    """The header of a token, without decrypting it (rotation uses it to tell which rows are done).

    Raises :class:`InvalidCiphertext` if ``token`` is not a Yinsi ciphertext.
    """
    raw = _as_bytes(token)
    if len(raw) < HEADER_LEN or raw[:3] != MAGIC:
        raise InvalidCiphertext("不是 Yinsi 密文（缺少 YS1 头部）")
    _, wire, version = _HEADER.unpack_from(raw)
    alg = Algorithm.from_wire_id(wire)
    if alg is None:
        raise InvalidCiphertext(f"密文的算法编号 {wire} 未知")
    return Header(alg, version)


def is_token(value: object) -> bool:
    """Whether ``value`` looks like a Yinsi token (bytes starting with the YS1 header). No decryption."""
    try:
        read_header(value)  # type: ignore[arg-type]
    except (InvalidCiphertext, TypeError):
        return False
    return True


def length_prefixed(text: str) -> bytes:
    """UTF-8 bytes of ``text`` after a 2-byte length (unambiguous concatenation in associated data)."""
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("name too long for associated data")
    return struct.pack(">H", len(raw)) + raw


def associated_data(header: Header, tenant: str, field_name: str) -> bytes:
    """The bytes a token is bound to: its header, its tenant and its field."""
    return header.pack() + length_prefixed(tenant) + length_prefixed(field_name)


@dataclass(frozen=True)
class DataKey:
    """An unwrapped data key (数据密钥) of one version. Lives in memory only; never printed."""

    version: int
    algorithm: Algorithm
    material: bytes = field(repr=False)


class KeySource(Protocol):
    """Where a :class:`FieldCipher` gets its keys (the :class:`~yinsi.protect.keys.KeyRing`)."""

    def active_data_key(self, tenant: str) -> DataKey: ...

    def data_key(self, tenant: str, version: int) -> DataKey: ...


def _check_name(kind: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{kind} must be a non-empty string, got {value!r}")


class FieldCipher:
    """Encrypts and decrypts one tenant's field values (字段加密).

    ``encrypt(field, plaintext)`` returns a token bound to this tenant and ``field`` (use the column's
    name, e.g. ``"users.phone"``); ``decrypt`` gives the text back or raises
    :class:`~yinsi.protect.errors.InvalidCiphertext` (tampered, truncated, another tenant's or field's,
    unknown key version) — or :class:`~yinsi.protect.errors.MasterKeyError` if the keys cannot be
    unwrapped at all. Tokens always use the tenant's active key version;
    older versions still decrypt until rotation has re-encrypted them.
    """

    def __init__(self, tenant: str, keys: KeySource) -> None:
        _check_name("tenant", tenant)
        self.tenant = tenant
        self._keys = keys

    def __repr__(self) -> str:
        return f"FieldCipher(tenant={self.tenant!r})"

    def encrypt(self, field_name: str, plaintext: str) -> bytes:
        """Encrypt text under the active data key."""
        _check_name("field", field_name)
        if not isinstance(plaintext, str):
            raise TypeError(f"plaintext is str, not {type(plaintext).__name__}; use encrypt_bytes for bytes")
        return self.encrypt_bytes(field_name, plaintext.encode("utf-8"))

    def decrypt(self, field_name: str, token: bytes | bytearray | memoryview) -> str:
        """Decrypt a token written by :meth:`encrypt` for this tenant and ``field``."""
        raw = self.decrypt_bytes(field_name, token)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidCiphertext(f"字段 {field_name} 的明文不是 UTF-8 文本（是否用 encrypt_bytes 写入？）") from None

    def encrypt_bytes(self, field_name: str, plaintext: bytes) -> bytes:
        _check_name("field", field_name)
        key = self._keys.active_data_key(self.tenant)
        header = Header(key.algorithm, key.version)
        return header.pack() + seal(key.algorithm, key.material, bytes(plaintext),
                                    associated_data(header, self.tenant, field_name))

    def decrypt_bytes(self, field_name: str, token: bytes | bytearray | memoryview) -> bytes:
        _check_name("field", field_name)
        raw = _as_bytes(token)
        header = read_header(raw)
        try:
            key = self._keys.data_key(self.tenant, header.key_version)
        except KeyNotFound:
            raise InvalidCiphertext(
                f"租户 {self.tenant} 没有密钥版本 {header.key_version}：密文不属于该租户、已被篡改，或其密钥已被删除"
            ) from None
        if key.algorithm is not header.algorithm:
            raise InvalidCiphertext(
                f"密文的算法 {header.algorithm.value} 与租户 {self.tenant} 的密钥版本 {key.version} "
                f"（{key.algorithm.value}）不符"
            )
        try:
            return open_sealed(key.algorithm, key.material, raw[HEADER_LEN:],
                               associated_data(header, self.tenant, field_name))
        except InvalidCiphertext:
            raise InvalidCiphertext(
                f"密文校验失败：已被篡改，或不属于租户 {self.tenant} 的字段 {field_name}（密钥版本 {header.key_version}）"
            ) from None

    def encrypt_text(self, field_name: str, plaintext: str) -> str:
        """As :meth:`encrypt`, as base64 text (for ``VARCHAR`` columns); it starts with ``WVMx``."""
        return base64.b64encode(self.encrypt(field_name, plaintext)).decode("ascii")

    def decrypt_text(self, field_name: str, token: str) -> str:
        """Decrypt what :meth:`encrypt_text` returned."""
        return self.decrypt(field_name, decode_text_token(token))

    def reencrypt(self, field_name: str, token: bytes | bytearray | memoryview) -> bytes | None:
        """The token re-encrypted under the active key, or ``None`` if it already uses it (rotation)."""
        active = self._keys.active_data_key(self.tenant)
        header = read_header(token)
        if header.key_version == active.version:
            return None
        return self.encrypt_bytes(field_name, self.decrypt_bytes(field_name, token))


def decode_text_token(token: str) -> bytes:
    """The bytes of a base64 text token; :class:`InvalidCiphertext` if it is not one."""
    if not isinstance(token, str):
        raise TypeError(f"a text token is str, not {type(token).__name__}")
    try:
        raw = base64.b64decode(token.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidCiphertext("不是 Yinsi 密文（base64 无效）") from None
    read_header(raw)
    return raw
