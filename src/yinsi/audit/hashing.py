"""Hash algorithms of a chain: SHA-256 (default) or SM3 (GB/T 32905, 国密杂凑算法)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from enum import StrEnum

from cryptography.hazmat.primitives import hashes

HashFn = Callable[[bytes], bytes]

#: The hash of "no previous entry": the ``prev_hash`` of entry 1.
GENESIS_HASH = "0" * 64


class HashAlg(StrEnum):
    SHA256 = "sha256"
    SM3 = "sm3"

    @property
    def label(self) -> str:
        return {"sha256": "SHA-256", "sm3": "SM3"}[self.value]


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def hash_fn(alg: str) -> HashFn:
    """The digest function of ``alg`` (32-byte output for both algorithms)."""
    if alg == HashAlg.SHA256:
        return _sha256
    if alg == HashAlg.SM3:
        return _sm3
    raise ValueError(f"unknown audit hash algorithm {alg!r} (expected one of: sha256, sm3)")
