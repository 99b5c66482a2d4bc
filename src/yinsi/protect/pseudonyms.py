"""Keyed pseudonyms (假名化): one stable pseudonym per subject per tenant, unlinkable across tenants.

``pseudonym = "p_" + base32(HMAC(pseudonym_key, "yinsi/pseudonym/v1" 0x00 subject_id)[:16])`` in lower
case without padding: 28 characters, e.g. ``p_3hq7k2...``. HMAC is HMAC-SHA256 or HMAC-SM3 (the tenant's
suite); the pseudonym key is a per-tenant wrapped key (purpose ``pseudonym``) that rotation never changes.
The same subject id under two tenants gives unrelated pseudonyms; without the key a pseudonym cannot be
traced back (the subject ids of an app are often guessable, so an unkeyed hash would not do).
"""

from __future__ import annotations

import base64

from yinsi.protect.crypto import MacAlgorithm, hmac_digest

__all__ = ["PREFIX", "compute_pseudonym", "is_pseudonym"]

PREFIX = "p_"
_BYTES = 16
_LENGTH = len(PREFIX) + 26


def compute_pseudonym(mac: MacAlgorithm, key: bytes, subject_id: str) -> str:
    """The pseudonym of ``subject_id`` under a tenant's pseudonym key."""
    if not isinstance(subject_id, str) or not subject_id:
        raise ValueError("subject_id must be a non-empty string")
    digest = hmac_digest(mac, key, b"yinsi/pseudonym/v1\x00" + subject_id.encode("utf-8"))[:_BYTES]
    return PREFIX + base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` has the shape of a Yinsi pseudonym (says nothing about which tenant)."""
    body = value[len(PREFIX):]
    return (value.startswith(PREFIX) and len(value) == _LENGTH
            and all(c in "abcdefghijklmnopqrstuvwxyz234567" for c in body))
