"""Passwords and one-time codes (口令与一次性验证码) hashed with Argon2id.

Parameters are explicit, not the library's defaults (which may change under us):

- passwords: RFC 9106 section 4 "second recommended option" — time cost 3, memory 64 MiB, parallelism 4,
  16-byte salt, 32-byte hash;
- one-time codes: time cost 2, memory 19 MiB, parallelism 1 (the OWASP minimum): a code lives minutes and
  is checked often, yet an offline guess still costs the attacker an Argon2id evaluation per code.

The stored string is the PHC format (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``): salt and parameters
travel with the hash, so raising the parameters later only needs :func:`needs_rehash` at the next login.
Neither the password nor the code appears in it.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import VerificationError

__all__ = [
    "CODE_HASHER",
    "PASSWORD_HASHER",
    "hash_one_time_code",
    "hash_password",
    "needs_rehash",
    "new_one_time_code",
    "verify_one_time_code",
    "verify_password",
]

PASSWORD_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4, hash_len=32, salt_len=16,
                                 type=Type.ID)
CODE_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16,
                             type=Type.ID)


def _text(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} is str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} must not be empty")
    return value


def hash_password(password: str) -> str:
    """The Argon2id hash (PHC string) of a password."""
    return PASSWORD_HASHER.hash(_text(password, "password"))


def _verify(hasher: PasswordHasher, stored: str, value: str, what: str) -> bool:
    try:
        return hasher.verify(stored, _text(value, what))
    except VerificationError:  # a mismatch; a malformed hash raises InvalidHashError instead
        return False


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches ``stored``. A malformed ``stored`` hash raises (it is a bug or tampering,
    not a wrong password): ``argon2.exceptions.InvalidHashError``."""
    return _verify(PASSWORD_HASHER, stored, password, "password")


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with other parameters than today's (rehash at the next good login)."""
    return PASSWORD_HASHER.check_needs_rehash(stored)


def new_one_time_code(digits: int = 6) -> tuple[str, str]:
    """A random numeric code (from :mod:`secrets`) and its hash: send the first, store the second."""
    if not 4 <= digits <= 12:
        raise ValueError("a one-time code has 4 to 12 digits")
    code = f"{secrets.randbelow(10**digits):0{digits}d}"
    return code, hash_one_time_code(code)


def hash_one_time_code(code: str) -> str:
    return CODE_HASHER.hash(_text(code, "code"))


def verify_one_time_code(stored: str, code: str) -> bool:
    """Whether ``code`` matches. Expiry and attempt limits are the caller's (they need a clock and a
    counter); this only compares."""
    return _verify(CODE_HASHER, stored, code, "code")
