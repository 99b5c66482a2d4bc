"""Errors of the encryption and key layer (加密与密钥).

Every failure is an exception, never a silent fallback or garbage plaintext (pyca/cryptography's
``InvalidToken`` is the model). Messages are in Chinese because operators read them in the CLI; they name
the tenant, field, key version or file involved, never a key or a plaintext.
"""

from __future__ import annotations


class ProtectError(Exception):
    """Base class: a protection problem an operator or developer must act on."""


class MasterKeyError(ProtectError):
    """The master key (主密钥) is missing, malformed, too openly readable, or not the one that wrapped the
    data keys."""


class KeyNotFound(ProtectError):
    """A tenant has no data key of the requested purpose or version (run ``yinsi keys create``)."""


class InvalidCiphertext(ProtectError):
    """A ciphertext failed authentication or is not a Yinsi ciphertext: tampered, truncated, or written for
    another tenant, another field or under another key. Nothing of the plaintext is returned."""


class UnsupportedAlgorithm(ProtectError):
    """The algorithm is unknown, or the installed OpenSSL (through ``cryptography``) cannot run it."""


class RotationError(ProtectError):
    """A key rotation cannot proceed (unknown table or column, a value that is not a Yinsi ciphertext)."""


class UnknownTenant(ProtectError):
    """The tenant is not in Yinsi's database (keys hang off a published tenant)."""


class InvalidIdentifier(ProtectError, ValueError):
    """A value given for a blind index is not a valid identifier of its kind. The message never repeats the
    value (it is personal information)."""
