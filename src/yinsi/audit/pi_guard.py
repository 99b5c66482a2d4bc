"""A minimal guard that keeps obvious personal information out of audit entries (审计日志去标识化).

Refused, wherever they appear in an entry's text (actor, subject, items, reason, every key and value of
``details``, numbers included): mainland mobile numbers (with ``+86``, spaces, dashes or full-width digits),
18-digit resident ID numbers with a valid birth date and ISO 7064 check digit, and e-mail addresses.
This is a last line of defence, not the PI scanner: callers must log pseudonyms and PI item IDs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import date

from yinsi.audit.errors import PIInAuditEntry

# Boundaries exclude ASCII letters and digits, so a digit run inside a hex hash or a longer number (order
# numbers, timestamps) is not taken for a phone number, while "手机13800138000" or "u_13800138000" is.
_MOBILE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?![0-9A-Za-z])")
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])([1-9]\d{5})(\d{4})(\d{2})(\d{2})\d{3}[0-9Xx](?![0-9A-Za-z])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_card_checksum_ok(number: str) -> bool:
    """ISO 7064 MOD 11-2 check digit of an 18-character resident ID number (GB 11643)."""
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def _valid_birth(year: str, month: str, day: str) -> bool:
    try:
        born = date(int(year), int(month), int(day))
    except ValueError:
        return False
    return 1900 <= born.year <= 2100


def find_pi(text: str) -> str | None:
    """The kind of obvious PI in ``text`` (手机号码 / 身份证号 / 电子邮箱), or ``None``."""
    norm = text if text.isascii() else unicodedata.normalize("NFKC", text)
    if "@" in norm and _EMAIL.search(norm):
        return "电子邮箱"
    for m in _ID_CARD.finditer(norm):
        if _valid_birth(m.group(2), m.group(3), m.group(4)) and id_card_checksum_ok(m.group(0)):
            return "身份证号"
    if _MOBILE.search(norm):
        return "手机号码"
    return None


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        yield path, str(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield f"{path} 的键名", str(k)
            yield from _strings(v, f"{path}.{k}")  # reached only when the key itself passed
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def _texts(value: object, out: list[str]) -> None:
    """The texts ``_strings`` yields, without their paths (the fast pass: paths matter only on a hit)."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        out.append(str(value))
    elif isinstance(value, dict):
        for k, v in value.items():
            out.append(str(k))
            if isinstance(v, str):
                out.append(v)
            else:
                _texts(v, out)
    elif isinstance(value, list | tuple):
        for v in value:
            if isinstance(v, str):
                out.append(v)
            else:
                _texts(v, out)


def check_no_pi(value: object, field: str) -> None:
    """Raise ``PIInAuditEntry`` if any text in ``value`` (recursively) looks like PI."""
    check_fields([(field, value)])


def check_fields(fields: list[tuple[str, object]]) -> None:
    """``check_no_pi`` over several named values, scanning all their texts in one pass (no match can span
    two texts: the separator is a newline, which none of the patterns crosses)."""
    flat: list[str] = []
    for _, value in fields:
        _texts(value, flat)
    if find_pi("\n".join(flat)) is None:
        return
    for path, text in (pair for field, value in fields for pair in _strings(value, field)):
        kind = find_pi(text)
        if kind is not None:
            raise PIInAuditEntry(path, kind)
