"""Character features for the name/address tagger (a linear-chain CRF, ``yinsi.scan.ner.model``).

Per character: the characters and character pairs/triples in a five-character window, character classes, and
lexicon facts from ``yinsi.scan.ner.lexicon`` (surname characters, compound surnames, form labels that precede a
name such as 姓名/联系人, forms of address that follow one such as 先生/女士, address units and address labels),
each with its distance to the character.
"""

from __future__ import annotations

import re
from functools import cache

from yinsi.scan.ner.lexicon import (
    ADDRESS_BEFORE,
    ADDRESS_UNITS,
    COMPOUND_SURNAMES,
    NAME_AFTER,
    NAME_BEFORE,
    SINGLE_SURNAMES,
)


def char_class(ch: str) -> str:
    """D digit, L Latin letter, H Han character, S space, P anything else."""
    if ch.isdigit():
        return "D"
    if ch.isascii() and ch.isalpha():
        return "L"
    if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf":
        return "H"
    if ch.isspace():
        return "S"
    return "P"


def _alternation(words: tuple[str, ...] | frozenset[str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)))


_NAME_BEFORE = _alternation(NAME_BEFORE)
_NAME_AFTER = _alternation(NAME_AFTER)
_ADDRESS_BEFORE = _alternation(ADDRESS_BEFORE)
_COMPOUND = _alternation(COMPOUND_SURNAMES)
_SEPARATORS = " :：\t=＝"


@cache
def _class_string(ch: str) -> str:
    return char_class(ch)


def _context_marks(text: str) -> list[list[str]]:
    n = len(text)
    marks: list[list[str]] = [[] for _ in range(n)]
    for m in _NAME_BEFORE.finditer(text):
        e = m.end()
        while e < n and text[e] in _SEPARATORS:
            e += 1
        for d in range(4):
            if e + d < n:
                marks[e + d].append(f"nb{d}")
    for m in _NAME_AFTER.finditer(text):
        s = m.start()
        tag = "nat" if len(m.group()) > 1 else "naf"
        for d in range(1, 5):
            if s - d >= 0:
                marks[s - d].append(f"{tag}{d}")
    for m in _ADDRESS_BEFORE.finditer(text):
        e = m.end()
        while e < n and text[e] in _SEPARATORS:
            e += 1
        for d in range(3):
            if e + d < n:
                marks[e + d].append(f"ab{d}")
    for m in _COMPOUND.finditer(text):
        marks[m.start()].append("cs0")
        marks[m.start() + 1].append("cs1")
    return marks


def sentence_features(text: str) -> list[list[str]]:
    """For each character of ``text``, the attribute strings the CRF scores."""
    n = len(text)
    p = "\x02\x02" + text + "\x03\x03"
    cls = "BB" + "".join(_class_string(ch) for ch in text) + "EE"
    sur = SINGLE_SURNAMES
    units = ADDRESS_UNITS
    marks = _context_marks(text)
    out: list[list[str]] = []
    for i in range(n):
        j = i + 2
        a, b, c, d, e = p[j - 2], p[j - 1], p[j], p[j + 1], p[j + 2]
        feats = [
            "c" + c, "l" + b, "r" + d, "L" + a, "R" + e,
            "lc" + b + c, "cr" + c + d, "Ll" + a + b, "rR" + d + e, "lr" + b + d,
            "lcr" + b + c + d, "k" + cls[j - 1:j + 2], "K" + cls[j - 2:j + 3],
        ]
        if c in sur:
            feats.append("s0")
        if b in sur:
            feats.append("s1")
        if a in sur:
            feats.append("s2")
        if c in units:
            feats.append("u0")
        if d in units:
            feats.append("u1")
        if marks[i]:
            feats.extend(marks[i])
        out.append(feats)
    return out
