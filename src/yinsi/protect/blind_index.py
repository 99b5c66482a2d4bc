"""Blind indexes (盲索引): find a subject by phone number, ID number or e-mail without storing them.

``index = hex(HMAC(k_kind, normalise(kind, value))[:16])`` — 32 hex digits (128 bits), where
``k_kind = HMAC(index_key, "yinsi/blind-index/v1" 0x00 kind)`` and HMAC is HMAC-SHA256 (``standard``
suite) or HMAC-SM3 (``sm`` suite). The per-tenant index key is its own wrapped key (purpose ``index``),
so indexes survive data-key rotation, differ between tenants, and differ between kinds. 128 bits keep
accidental collisions out of reach (about 2^64 values before one is likely) while halving storage; the
index is only as strong as the secrecy of the key: without it, 10^11 phone numbers cannot be tried.

Normalisation makes the formatted variants of one value index alike:

- ``mobile_phone``: full-width digits folded, everything but digits dropped, ``+86``/``0086``/``86``
  prefix removed; must then be 11 digits ``1[3-9]…``. Another country code (``+1 …``) is refused.
- ``id_card``: full-width folded, spaces and dashes dropped, ``x`` upper-cased; a 15-digit (1984–1999)
  number is upgraded to its 18-digit form (``19`` inserted, ISO 7064 MOD 11-2 check digit appended).
- ``email``: trimmed and lower-cased (whole address; Chinese providers treat local parts case-blind).
- ``bank_card``: digits only, 12–19 of them. ``passport``: folded, spaces dropped, upper-cased.
- ``text``: folded (NFKC), trimmed, inner whitespace collapsed; for anything else.

Aliases: ``phone``/``mobile`` → ``mobile_phone``, ``id``/``id_number`` → ``id_card``, ``e-mail`` → ``email``.
"""

from __future__ import annotations

import re
import unicodedata

from yinsi.protect.crypto import MacAlgorithm, hmac_digest
from yinsi.protect.errors import InvalidIdentifier

__all__ = ["INDEX_BYTES", "KINDS", "canonical_kind", "compute_blind_index", "normalise"]

INDEX_BYTES = 16
KINDS = ("mobile_phone", "id_card", "email", "bank_card", "passport", "text")
_ALIASES = {
    "phone": "mobile_phone", "mobile": "mobile_phone",
    "id": "id_card", "id_number": "id_card", "resident_id": "id_card",
    "e-mail": "email", "mail": "email",
}

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def canonical_kind(kind: str) -> str:
    """The canonical kind name, or ``ValueError`` naming the known kinds."""
    name = _ALIASES.get(kind, kind)
    if name not in KINDS:
        raise ValueError(f"unknown blind-index kind {kind!r}; known: {', '.join(KINDS)}")
    return name


def _fold(value: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"an identifier is str, not {type(value).__name__}")
    return unicodedata.normalize("NFKC", value).strip()


def id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check digit of an 18-digit resident ID number (GB 11643)."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def normalise(kind: str, value: str) -> str:
    """The canonical form of ``value`` for ``kind``; :class:`InvalidIdentifier` if it is not one."""
    kind = canonical_kind(kind)
    text = _fold(value)
    if kind == "mobile_phone":
        digits = re.sub(r"\D", "", text)
        international = text.lstrip("( ").startswith("+") or digits.startswith("00")
        for prefix in ("0086", "86"):
            if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
                digits = digits[len(prefix):]
                international = False
                break
        if international or not re.fullmatch(r"1[3-9]\d{9}", digits):
            raise InvalidIdentifier("手机号格式无效（应为 11 位中国大陆手机号，可带 +86）")
        return digits
    if kind == "id_card":
        compact = re.sub(r"[\s\-]", "", text).upper()
        if re.fullmatch(r"\d{15}", compact):
            first17 = compact[:6] + "19" + compact[6:]
            return first17 + id_check_digit(first17)
        if not re.fullmatch(r"\d{17}[\dX]", compact):
            raise InvalidIdentifier("身份证号格式无效（应为 18 位，末位可为 X；或 15 位旧号码）")
        return compact
    if kind == "email":
        lowered = text.lower()
        local, at, domain = lowered.partition("@")
        if not at or not local or not domain or "@" in domain or re.search(r"\s", lowered):
            raise InvalidIdentifier("电子邮箱格式无效")
        return lowered
    if kind == "bank_card":
        digits = re.sub(r"[\s\-]", "", text)
        if not re.fullmatch(r"\d{12,19}", digits):
            raise InvalidIdentifier("银行卡号格式无效（应为 12–19 位数字）")
        return digits
    if kind == "passport":
        compact = re.sub(r"\s", "", text).upper()
        if not re.fullmatch(r"[A-Z0-9]{5,17}", compact):
            raise InvalidIdentifier("护照号格式无效")
        return compact
    collapsed = re.sub(r"\s+", " ", text)
    if not collapsed:
        raise InvalidIdentifier("空值不能建立盲索引")
    return collapsed


def compute_blind_index(mac: MacAlgorithm, index_key: bytes, kind: str, value: str) -> str:
    """The blind index (32 lowercase hex digits) of ``value`` under a tenant's index key."""
    name = canonical_kind(kind)
    subkey = hmac_digest(mac, index_key, b"yinsi/blind-index/v1\x00" + name.encode("ascii"))
    return hmac_digest(mac, subkey, normalise(name, value).encode("utf-8"))[:INDEX_BYTES].hex()
