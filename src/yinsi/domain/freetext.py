"""Identifiers inside free text (自由文本中的个人标识): what a text mentions, and how a person's mentions are
found, cut out and quoted. Pure functions, no I/O; :mod:`yinsi.rights.freetext` applies them to databases.

A person's identifier has a *kind*, from the PI item of the attribute it comes from: ``phone`` (mobile
numbers), ``id_card``, ``email``, ``plate`` (vehicle plates), ``name``, or ``text`` (anything else: matched
literally, never indexed). Each kind has a canonical form, so the written variants of one value match:

- phone: ``13812345678``, ``138 1234 5678``, ``138-1234-5678``, ``+86 138…``, ``0086…``, ``86…``, full-width
  digits; canonical: the 11 digits;
- id_card: spaces and dashes anywhere, ``x``/``X``; canonical: 18 characters upper-cased;
- email: any case; canonical: lower-cased;
- plate: ``京A12345``, ``京A·12345``, ``京 A-12345``, lower-case letters; canonical: upper-cased, no separators;
- name: the name itself (2–4 Chinese characters in practice).

**What the index sees** (:func:`tokens`): every phone, ID number, e-mail and plate shape in the text (the
shapes of the scanner's recognizers, without their checksum or context requirements, so that nothing a
person could recognise as their number is missed), and names only in name-like contexts: 2–4 Chinese
characters after a label (联系人、业主、住户、报修人、家属…), before a form of address (先生、女士、师傅…),
or right before a phone number, ID number or e-mail (``王芳（139…）``, ``张伟 电话：138…``). Each context
yields the 2-, 3- and 4-character candidates, so the index holds the name whatever its length. A name in
running text with none of these contexts ("张伟说楼上漏水") is not indexed: it is redacted only in rows found
through the person's other identifiers (see docs/datamap.md, "Free text").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: What replaces a redacted identifier in the text (fixed: people and tools may search for it).
MARKER = "[已删除]"
#: What replaces another person's identifier inside a passage quoted in a copy.
OTHER_MARKER = "[他人信息已隐去]"

KINDS = ("phone", "id_card", "email", "plate", "name", "text")
#: Kinds the index holds (``text`` identifiers are only matched inside rows found by the others).
INDEXED_KINDS = frozenset({"phone", "id_card", "email", "plate", "name"})

_FOLD = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_FOLD.update({ord(d): ord("-") for d in "‐‑‒–—―−﹣"})
_FOLD.update({0x3000: ord(" "), 0x00A0: ord(" ")})

_SEP = r"[ \-]?"
_PHONE = re.compile(r"(?<![\d])(?:(?:\+|00)?86[ \-]?)?(1[3-9]\d(?:[ \-]?\d){8})(?![\d])")
_ID = re.compile(r"(?<![\dA-Za-z])(\d{6}[ \-]?\d{4}[ \-]?\d{4}[ \-]?\d{3}[\dXx])(?![\dA-Za-z])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领"
_PLATE = re.compile(rf"([{_PROVINCES}])[ ·•.\-]?([A-Za-z])[ ·•.\-]?((?:[A-Za-z0-9][ ]?){{4}}[A-Za-z0-9](?:[A-Za-z0-9])?)"
                    r"(?![A-Za-z0-9])")
_CJK = "\u4e00-\u9fff"
_LABELS = ("紧急联系人|联系人|联系方式|姓名|业主|住户|租户|户主|报修人|申请人|投诉人|来访人|访客|家属|亲属|客户|"
           "经办人|收件人|登记人|车主|房东|租客|报案人|担保人|代理人")
_AFTER_LABEL = re.compile(rf"(?:{_LABELS})[ ]?(?:[：:]|是|为|叫)?[ ]?([{_CJK}]{{2,4}})")
_HONORIFICS = "先生|女士|小姐|师傅|阿姨|老师|太太|大爷|大妈|老板|同学|经理"
_BEFORE_HONORIFIC = re.compile(rf"([{_CJK}]{{2,4}})(?:{_HONORIFICS})")
#: Field labels written before a phone, ID number, e-mail or plate. They are not personal information: a
#: redaction keeps them ("业主身份证号[已删除]"), and they are never a name nor part of one.
_NUMBER_LABELS = ("身份证号码|身份证号|身份证|证件号码|证件号|手机号码|手机号|手机|联系电话|电话号码|电话|号码|联系方式|"
                  "电子邮箱|邮箱|邮件|车牌号码|车牌号|车牌")
#: What may stand between a name and the number that follows it ("张伟 电话：", "王芳（", "张伟身份证号").
_NAME_NUMBER_GAP = rf"[ ]?(?:[（(][ ]?|[，,]?[ ]?(?:{_NUMBER_LABELS}|tel|Tel|TEL)?[ ]?[：:]?[ ]?)"


def fold(text: str) -> str:
    """Full-width forms folded to ASCII, one character for one (offsets unchanged)."""
    return text.translate(_FOLD)


def canonical(kind: str, value: str) -> str | None:
    """The canonical form of ``value`` as an identifier of ``kind`` (``None``: not one)."""
    text = unicodedata.normalize("NFKC", value).strip()
    if kind == "phone":
        digits = re.sub(r"\D", "", text)
        for prefix in ("0086", "86"):
            if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
                digits = digits[len(prefix):]
        return digits if re.fullmatch(r"1[3-9]\d{9}", digits) else None
    if kind == "id_card":
        compact = re.sub(r"[\s\-]", "", text).upper()
        return compact if re.fullmatch(r"\d{17}[\dX]", compact) else None
    if kind == "email":
        return text.lower() if "@" in text else None
    if kind == "plate":
        compact = re.sub(r"[\s·•.\-]", "", text).upper()
        return compact if re.fullmatch(rf"[{_PROVINCES}][A-Z][A-Z0-9]{{5,6}}", compact) else None
    if kind == "name":
        name = re.sub(r"\s", "", text)
        return name if len(name) >= 2 else None
    return text or None


def kind_of_item(item: str | None) -> str:
    """The identifier kind of a PI item id (``contact.phone`` → ``phone``)."""
    name = (item or "").lower()
    if "id_card" in name or "id_document" in name or name.endswith("id_number"):
        return "id_card"
    if "phone" in name or "mobile" in name:
        return "phone"
    if "email" in name:
        return "email"
    if "plate" in name:
        return "plate"
    if name.endswith((".name", "_name")):
        return "name"
    return "text"


def _numbers(folded: str) -> Iterable[tuple[str, str, int, int]]:
    """(kind, canonical, start, end) of every number-like identifier in the folded text."""
    taken: list[tuple[int, int]] = []
    for m in _ID.finditer(folded):
        value = canonical("id_card", m.group(1))
        if value is not None:
            taken.append((m.start(), m.end()))
            yield "id_card", value, m.start(), m.end()
    for m in _PHONE.finditer(folded):
        if any(s < m.end() and m.start() < e for s, e in taken):
            continue
        value = canonical("phone", m.group(1))
        if value is not None:
            yield "phone", value, m.start(), m.end()
    for m in _EMAIL.finditer(folded):
        yield "email", m.group(0).lower(), m.start(), m.end()
    for m in _PLATE.finditer(folded):
        value = canonical("plate", m.group(0))
        if value is not None:
            yield "plate", value, m.start(), m.end()


def _prefixes(run: str) -> Iterable[str]:
    return (run[:n] for n in (2, 3, 4) if len(run) >= n)


def _suffixes(run: str) -> Iterable[str]:
    return (run[-n:] for n in (2, 3, 4) if len(run) >= n)


_TRAILING_LABEL = re.compile(rf"(?:的)?(?:{_NUMBER_LABELS})$")
_CJK_RUN_BEFORE = re.compile(rf"([{_CJK}]{{2,}}){_NAME_NUMBER_GAP}$")


def tokens(text: str) -> set[tuple[str, str]]:
    """The (kind, canonical value) pairs the index keeps for ``text`` (see the module docstring)."""
    folded = fold(text)
    out: set[tuple[str, str]] = set()
    for kind, value, start, _end in _numbers(folded):
        out.add((kind, value))
        if kind == "plate":
            continue
        m = _CJK_RUN_BEFORE.search(folded, max(0, start - 24), start)
        if m is not None:
            run = m.group(1)
            out.update(("name", s) for s in _suffixes(run))
            label = _TRAILING_LABEL.search(run)
            if label is not None:
                out.update(("name", s) for s in _suffixes(run[:label.start()]))
    for m in _AFTER_LABEL.finditer(folded):
        out.update(("name", p) for p in _prefixes(m.group(1)))
    for m in _BEFORE_HONORIFIC.finditer(folded):
        out.update(("name", s) for s in _suffixes(m.group(1)))
    return out


@dataclass(frozen=True)
class Identifier:
    """One identifier of a person: its kind, canonical form, and the pattern matching its written variants."""

    kind: str
    value: str

    def pattern(self) -> re.Pattern[str]:
        """Matches the written variants of the value in *folded* text (see :func:`fold`)."""
        v = self.value
        if self.kind == "phone":
            body = _SEP.join(re.escape(d) for d in v)
            return re.compile(rf"(?<![\d])(?:(?:\+|00)?86[ \-]?)?{body}(?![\d])")
        if self.kind == "id_card":
            body = _SEP.join("[Xx]" if c == "X" else re.escape(c) for c in v)
            return re.compile(rf"(?<![\dA-Za-z]){body}(?![\dA-Za-z])")
        if self.kind == "email":
            return re.compile(rf"(?<![A-Za-z0-9._%+\-]){re.escape(v)}(?![A-Za-z0-9\-])", re.IGNORECASE)
        if self.kind == "plate":
            body = "[ ·•.\\-]?".join(re.escape(c) for c in v)
            return re.compile(rf"{body}(?![A-Za-z0-9])", re.IGNORECASE)
        return re.compile(re.escape(v))


def identifiers(values: Sequence[tuple[str, str]]) -> list[Identifier]:
    """The person's identifiers from (kind, raw value) pairs; values that are not of their kind are kept
    as literal ``text`` identifiers (nothing the person gave is dropped)."""
    out: dict[tuple[str, str], Identifier] = {}
    for kind, raw in values:
        if not raw or not str(raw).strip():
            continue
        value = canonical(kind, str(raw))
        ident = Identifier(kind, value) if value is not None else Identifier("text", str(raw).strip())
        out.setdefault((ident.kind, ident.value), ident)
    return list(out.values())


def mentions(text: str, idents: Sequence[Identifier]) -> list[tuple[int, int, Identifier]]:
    """Every (start, end, identifier) where ``text`` mentions one of the identifiers, in text order."""
    folded = fold(text)
    found = [(m.start(), m.end(), ident) for ident in idents for m in ident.pattern().finditer(folded)
             if m.end() > m.start()]
    return sorted(found, key=lambda f: (f[0], -f[1]))


def merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching spans merged, in order."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def redact(text: str, spans: Iterable[tuple[int, int]], marker: str = MARKER) -> str:
    """``text`` with each span replaced by ``marker``; everything else unchanged."""
    parts: list[str] = []
    at = 0
    for s, e in merge(spans):
        parts.append(text[at:s])
        parts.append(marker)
        at = e
    parts.append(text[at:])
    return "".join(parts)


_LABEL_GAP = re.compile(rf"^{_NAME_NUMBER_GAP}$")
_AFTER_GAP = re.compile(r"^[ ]?[（(，, ]?[ ]?$")


_STRICT_GAP = re.compile(r"^[ ]?[（(]?$")


def adjacent(folded: str, name_start: int, name_end: int, start: int, end: int, *, strict: bool = False) -> bool:
    """Whether a name at ``[name_start, name_end)`` is right next to a mention at ``[start, end)``: directly
    before it with at most a label between ("张三 电话：138…", "王芳（139…"), or directly after it with at
    most a bracket or comma between ("138…（张三）")."""
    if name_end <= start:
        return bool((_STRICT_GAP if strict else _LABEL_GAP).match(folded[name_end:start]))
    if name_start >= end:  # after the mention: only a name found by the model or in brackets
        return not strict and bool(_AFTER_GAP.match(folded[end:name_start]))
    return False


_SENTENCE_END = "。！？!?\n；;"


def passage(text: str, start: int, end: int, limit: int = 200) -> str:
    """The sentence around ``[start, end)`` (cut at 。！？；, line breaks, or ``limit`` characters)."""
    s = start
    while s > 0 and text[s - 1] not in _SENTENCE_END and start - s < limit:
        s -= 1
    e = end
    while e < len(text) and text[e] not in _SENTENCE_END and e - end < limit:
        e += 1
    if e < len(text) and text[e] not in "\n":
        e += 1
    return text[s:e].strip()


#: A name after a label, ending where the Chinese run ends or a number's label begins ("联系人李建国电话138…").
_LABELLED_NAME = re.compile(rf"(?:{_LABELS})[ ]?(?:[：:]|是|为|叫)?[ ]?([{_CJK}]{{2,4}}?)"
                            rf"(?=(?:的)?(?:{_NUMBER_LABELS})|[^{_CJK}]|$)")
_BRACKETED_NAME = re.compile(rf"[（(]([{_CJK}]{{2,4}})[）)]")


_NOT_NAMES = frozenset({"电话", "手机", "号码", "联系", "联系方式", "联系电话", "手机号", "手机号码", "姓名", "邮箱",
                        "身份证", "身份证号", "证件", "证件号", "车牌", "车牌号", "联系人", "地址", "微信", "备注",
                        "来电", "回电", "致电"})


_LEADING_LABEL = re.compile(rf"^(?:{_LABELS})[ ]?(?:[：:]|是|为|叫)?[ ]?")


def without_labels(folded: str, start: int, end: int) -> tuple[int, int] | None:
    """The span of a name found at ``[start, end)`` of the folded text with the field labels at its ends
    left out (``张伟电话`` → ``张伟``, ``联系人张伟`` → ``张伟``); ``None`` when what remains is no name
    (``身份证号``, ``手机号码``, a single character). A label is not personal information: it stays."""
    while True:
        m = _TRAILING_LABEL.search(folded, start, end)
        if m is None or m.start() == end:
            break
        end = m.start()
    m = _LEADING_LABEL.match(folded, start, end)
    if m is not None and end - m.end() >= 2:
        start = m.end()
    if end - start < 2 or folded[start:end] in _NOT_NAMES:
        return None
    return start, end


def name_candidates(text: str) -> list[tuple[int, int, bool]]:
    """Spans that read as a name without a model, as (start, end, bare): 2–4 Chinese characters after a
    label (联系人：李建国) or in brackets (（李建国）). Used only next to a mention of the person. A bare run
    (``再次来电 138…`` reads like ``李建国 138…``) is never taken without the scanner's name model: too many
    ordinary words stand there; ``bare`` is kept for callers that add their own candidates."""
    folded = fold(text)
    out: dict[tuple[int, int], bool] = {}
    for rx, bare in ((_LABELLED_NAME, False), (_BRACKETED_NAME, False)):
        for m in rx.finditer(folded):
            span = without_labels(folded, m.start(1), m.end(1))
            if span is not None:
                out[span] = out.get(span, True) and bare
    return sorted((s, e, bare) for (s, e), bare in out.items())
