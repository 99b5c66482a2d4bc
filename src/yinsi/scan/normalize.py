"""One-to-one character normalisation for matching: full-width digits, letters and signs become ASCII.

Every mapping replaces one character by one character, so an offset in the normalised text is the same
offset in the original text: results never need remapping.
"""

from __future__ import annotations

import re

_TABLE: dict[int, int] = {}
for _code in range(0xFF01, 0xFF5F):  # full-width ASCII variants (全角字符) ！ .. ～
    _TABLE[_code] = _code - 0xFEE0
for _dash in "‐‑‒–—―−﹣":
    _TABLE[ord(_dash)] = ord("-")
_TABLE[0x3000] = ord(" ")  # ideographic space (全角空格)
_TABLE[0x00A0] = ord(" ")  # no-break space
# The full-width colon and comma stay as they are: they are Chinese punctuation that separates a context word
# from a value ("手机：138…"), and turning them into ASCII would glue them onto IPv6 or MAC candidates.
for _keep in "：，；":
    _TABLE.pop(ord(_keep), None)


_NEEDS = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_TABLE)) + "]+")


def _translate_run(m: re.Match[str]) -> str:
    return m.group().translate(_TABLE)


def normalize(text: str) -> str:
    """``text`` with full-width forms mapped to ASCII, same length, same offsets.

    Only the runs that need it are translated: ``str.translate`` looks every character up in a dict, which on
    Chinese text (where such characters are a few punctuation marks) costs several times more than finding them.
    """
    if text.isascii() or _NEEDS.search(text) is None:
        return text
    return _NEEDS.sub(_translate_run, text)


_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}


def ascii_lower(text: str) -> str:
    """``text`` with ASCII letters lower-cased only (``str.lower`` may change the length, e.g. for “İ”)."""
    return text.translate(_LOWER)
