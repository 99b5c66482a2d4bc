"""The recognizer contract: one small unit per PI type, with patterns, context words and a validate hook.

Modelled on Presidio's ``PatternRecognizer``: a recognizer lists its regular expressions (each with a base
score), the context words that make a match more likely (and, for Yinsi, the words that make it a look-alike
such as an order number), and ``validate`` where checksums live. Adding a type is adding one module under
``yinsi.scan.recognizers`` and one line in its ``__init__``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from yinsi.scan.normalize import ascii_lower
from yinsi.scan.result import Result

#: Words that mark the following number as a look-alike (an order, waybill or serial number, a code, a time).
LOOKALIKE_CONTEXT: tuple[str, ...] = (
    "订单", "单号", "编号", "流水号", "交易号", "运单", "快递", "物流", "工单", "序列号", "批次", "批号",
    "发票", "券码", "兑换码", "验证码", "校验码", "时间戳", "timestamp", "商品码", "条码", "货号", "合同号",
    "order", "sku", "serial", "tracking", "学号", "工号", "考号", "准考证", "发票号码", "发票代码", "订单号码",
    "单号码",
)
#: Words that mark the following number as an amount or quantity (金额、数量), look-alikes for phone numbers.
AMOUNT_CONTEXT: tuple[str, ...] = (
    "金额", "成交额", "交易额", "销售额", "营业额", "营收", "收入", "余额", "价格", "售价", "总价", "单价", "报价",
    "市值", "估值", "合计", "总计", "共计", "数量", "库存", "销量", "人数", "预算", "price", "amount", "qty",
)


@dataclass(frozen=True, slots=True)
class Pattern:
    """A regular expression and the score a match gets before context and validation."""

    name: str
    regex: str
    score: float


@dataclass(frozen=True, slots=True)
class Candidate:
    """A match before it is accepted: offsets into the text and the matched (normalised) value."""

    start: int
    end: int
    value: str
    pattern: Pattern


@dataclass
class Recognizer:
    """A pattern recognizer for one type; ``validator`` is its checksum hook (subclasses may override
    ``candidates`` when a regular expression alone would be slow, as for e-mail addresses).

    Scoring: the pattern's score; ``validate`` returning True (a checksum passed) sets ``validated`` and adds
    ``validated_boost``; a context word in the ``context_window`` characters before the match adds
    ``context_boost``. Without a context word the result is dropped when ``context_required``. A look-alike
    word (``negative_context``) nearer than any context word drops the match.
    """

    name: str
    type: str
    patterns: tuple[Pattern, ...]
    context: tuple[str, ...] = ()
    negative_context: tuple[str, ...] = LOOKALIKE_CONTEXT
    context_window: int = 12
    context_required: bool = False
    context_boost: float = 0.15
    validated_boost: float = 0.15
    #: Results scoring below this after context and validation are dropped.
    min_score: float = 0.5
    #: Characters that must not touch the match on either side (so that a value is never cut out of a longer run).
    boundary: str = ""
    #: Characters whose presence is required for the recognizer to run at all (a cheap pre-filter).
    requires_any: str = ""
    #: Every value holds a run of five digits (single separators allowed between them): the engine then runs
    #: the recognizer only around such runs, which one shared pass finds.
    needs_digit_run: bool = False
    #: Separators inside grouped values: a grouped match touching another group (``sep + boundary char``) is a
    #: fragment of a longer number and is dropped.
    separators: str = ""
    #: The validate hook: True when a checksum confirms the value, False to reject it, None when there is none.
    validator: Callable[[str], bool | None] | None = None
    #: What a passing ``validator`` proved, for explanations (e.g. "Luhn check passed").
    validated_reason: str = "checksum passed"
    #: Phone-like numbers: a match that is an amount or quantity (a unit or decimals after it, a currency sign
    #: before it) or part of a URL or file name is no value of this type.
    reject_quantities: bool = False
    #: Score taken off when a look-alike word stands in the same clause but does not label this value.
    lookalike_penalty: float = 0.1
    _compiled: list[tuple[Pattern, re.Pattern[str]]] = field(default_factory=list, init=False, repr=False)
    _positive: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _negative: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _anchor: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _words: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _requires: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _negative_set: frozenset[str] = field(default=frozenset(), init=False, repr=False)

    @property
    def types(self) -> tuple[str, ...]:
        """The types this recognizer can return."""
        return (self.type,)

    def __post_init__(self) -> None:
        self._compiled = [(p, re.compile(p.regex)) for p in self.patterns]
        self._positive = _alternation(self.context)
        self._negative = _alternation(self.negative_context)
        self._anchor = _alternation(self.context, re.IGNORECASE)
        # Positive and look-alike words in ONE alternation, longest first: "发票号码" is one look-alike word,
        # not the look-alike "发票" followed by the context word "号码".
        self._words = _alternation((*self.context, *self.negative_context))
        self._negative_set = frozenset(self.negative_context) - frozenset(self.context)
        self._requires = re.compile("[" + re.escape(self.requires_any) + "]") if self.requires_any else None

    # --- hooks -------------------------------------------------------------------------------------------
    def validate(self, value: str) -> bool | None:
        """True: a checksum confirmed the value; False: reject it; None: no checksum for this type."""
        return self.validator(value) if self.validator is not None else None

    def explain(self, value: str, validated: bool | None) -> str:
        """Why the value was accepted, for the result's explanation."""
        return self.validated_reason if validated else "pattern match"

    def candidates(self, normalized: str, windows: Sequence[tuple[int, int]] | None = None) -> Iterator[Candidate]:
        """All raw pattern matches in the normalised text (only inside ``windows`` when given: the engine's
        prefilter found the stretches that can hold a value, and the rest of a long text is skipped).

        A recognizer whose context is required only looks right after its context words, which is both the
        rule and much faster than matching e.g. every Latin word as a possible WeChat ID.
        """
        if self.context_required:
            yield from self._anchored_candidates(normalized)
            return
        for pattern, regex in self._compiled:
            if windows is None:
                for m in regex.finditer(normalized):
                    yield Candidate(m.start(), m.end(), m.group(), pattern)
            else:
                for begin, end in windows:
                    for m in regex.finditer(normalized, begin, end):
                        yield Candidate(m.start(), m.end(), m.group(), pattern)

    def _anchored_candidates(self, normalized: str) -> Iterator[Candidate]:
        if self._anchor is None:
            return
        seen: set[tuple[int, int]] = set()
        for word in self._anchor.finditer(normalized):
            begin = word.end()
            if not is_standalone(ascii_lower(normalized[max(0, word.start() - 1):begin + 1]),
                                 1 if word.start() else 0, word.group().lower()):
                continue
            for pattern, regex in self._compiled:
                m = regex.search(normalized, begin, begin + self.context_window + 40)
                if m and m.start() - begin <= self.context_window and (m.start(), m.end()) not in seen:
                    seen.add((m.start(), m.end()))
                    yield Candidate(m.start(), m.end(), m.group(), pattern)

    # --- engine ------------------------------------------------------------------------------------------
    def analyze(self, text: str, normalized: str) -> Iterator[Result]:
        """Results for this type in ``text`` (``normalized`` is ``normalize(text)``, same length)."""
        return self.analyze_table(text, normalized, None)

    def analyze_table(self, text: str, normalized: str, layout: Layout | None,
                      windows: Sequence[tuple[int, int]] | None = None) -> Iterator[Result]:
        """``analyze`` where ``layout`` gives the column header of each cell when the text is a table (CSV/TSV),
        which then is the cell's context, and ``windows`` the stretches worth matching (see ``candidates``)."""
        if self._requires is not None and self._requires.search(normalized) is None:
            return
        for cand in self.candidates(normalized, windows):
            if not self._bounded(normalized, cand):
                continue
            if self.reject_quantities and quantity_or_locator(normalized, cand.start, cand.end):
                continue
            context = self._context(normalized, cand.start, layout)
            if context.owned or (context.word is None and self.context_required):
                continue
            validated = self.validate(cand.value)
            if validated is False:
                continue
            score = cand.pattern.score
            why = [f"pattern {cand.pattern.name}"]
            if validated:
                score += self.validated_boost
                why.append(self.explain(cand.value, validated))
            if context.word:
                score += self.context_boost
                why.append(f"context word “{context.word}”")
            elif context.lookalike:
                score -= self.lookalike_penalty
                why.append(f"look-alike word “{context.lookalike}” nearby does not label this value")
            if score < self.min_score:
                continue
            yield Result(
                type=self.type,
                start=cand.start,
                end=cand.end,
                text=text[cand.start:cand.end],
                score=round(min(score, 1.0), 3),
                recognizer=self.name,
                explanation="; ".join(why),
                validated=bool(validated),
            )

    def _bounded(self, s: str, cand: Candidate) -> bool:
        if not self.boundary:
            return True
        before = s[cand.start - 1] if cand.start else ""
        after = s[cand.end] if cand.end < len(s) else ""
        if (before and before in self.boundary) or (after and after in self.boundary):
            return False
        if self.separators:
            if before and before in self.separators and cand.start >= 2 and s[cand.start - 2] in self.boundary:
                return False
            if after and after in self.separators and cand.end + 1 < len(s) and s[cand.end + 1] in self.boundary:
                return False
        return True

    def _context(self, s: str, start: int, layout: Layout | None = None) -> Context:
        """What the words before ``start`` say about the value there.

        The context is the value's own line (a word on another line describes another value), or, in a table,
        its column header and what precedes the value in its cell. The last word before the value decides: a
        context word describes it; a look-alike word (订单号、发票号码、金额…) either labels it — only label
        characters (``：``, ``是``, ``为``, spaces…) between the word and the value — and the value is that
        look-alike, or it stands elsewhere in the clause and only weighs against it. A look-alike word right
        after a context word is qualified by it ("证件编号"); a clause break (。；！？) ends every word's reach.
        """
        if self._words is None:
            return _NO_CONTEXT
        header = layout.header_at(start) if layout is not None else None
        if header is not None:
            cell_start = layout.cell_start(start) if layout is not None else start
            window = ascii_lower(header + "：" + s[max(cell_start, start - self.context_window):start])
        else:
            begin = max(0, start - self.context_window)
            newline = s.rfind("\n", begin, start)
            window = ascii_lower(s[newline + 1 if newline >= 0 else begin:start])
        words = [(m.start(), m.end(), m.group()) for m in self._words.finditer(window)
                 if is_standalone(window, m.start(), m.group())]
        if not words:
            return _NO_CONTEXT
        w_start, w_end, word = words[-1]
        if word not in self._negative_set:
            return Context(word, None, False)
        gap = window[w_end:]
        if any(ch in _CLAUSE_BREAK for ch in gap):
            return _NO_CONTEXT
        if len(words) > 1:
            _, p_end, p_word = words[-2]
            between = window[p_end:w_start]
            if p_word not in self._negative_set and len(between) <= 2 and not any(ch in _PUNCTUATION for ch in between):
                return Context(p_word, None, False)
        if len(gap) <= 4 and all(ch in _LABEL for ch in gap):
            return Context(None, word, True)
        return Context(None, word, False)


@dataclass(frozen=True, slots=True)
class Context:
    """What the context says about one value: the context word describing it, a look-alike word near it, and
    whether that look-alike word labels the value itself (then the value is the look-alike)."""

    word: str | None
    lookalike: str | None
    owned: bool


_NO_CONTEXT = Context(None, None, False)
#: Characters that may stand between a label word and its value ("订单号：", "编号为", "单号 #").
_LABEL = frozenset(" \t：:是为号码#№=-_/（）()[]【】")
_CLAUSE_BREAK = frozenset("。；！？;!?\n")


class Layout:
    """The cells of a table given as text (CSV/TSV with a header line): for an offset, its column's header."""

    def __init__(self, cell_starts: list[int], cell_ends: list[int], headers: list[str]) -> None:
        self._starts = cell_starts
        self._ends = cell_ends
        self._headers = headers

    def _cell(self, offset: int) -> int:
        i = bisect_right(self._starts, offset) - 1
        return i if i >= 0 and offset < self._ends[i] + 1 else -1

    def header_at(self, offset: int) -> str | None:
        i = self._cell(offset)
        return self._headers[i] if i >= 0 else None

    def cell_start(self, offset: int) -> int:
        i = self._cell(offset)
        return self._starts[i] if i >= 0 else offset

    @classmethod
    def detect(cls, text: str, *, max_lines: int = 100_000) -> Layout | None:
        """The layout of ``text`` if its first line is a header of a delimited table (≥ 2 columns, every header
        cell a label without long digit runs) and the next line has as many fields; else ``None``."""
        first_end = text.find("\n")
        if first_end <= 0:
            return None
        header_line = text[:first_end].rstrip("\r")
        delimiter = "\t" if "\t" in header_line else "," if "," in header_line else ""
        if not delimiter:
            return None
        headers = [h.strip().strip('"') for h in header_line.split(delimiter)]
        if len(headers) < 2 or any(not h or _DIGIT_RUN.search(h) for h in headers):
            return None
        starts: list[int] = []
        ends: list[int] = []
        names: list[str] = []
        pos = first_end + 1
        lines = 0
        while pos < len(text) and lines < max_lines:
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            line = text[pos:end]
            fields = line.split(delimiter)
            if len(fields) == len(headers) and '"' not in line:
                cell = pos
                for name, value in zip(headers, fields, strict=True):
                    starts.append(cell)
                    ends.append(cell + len(value))
                    names.append(name)
                    cell += len(value) + 1
            elif lines == 0 and line.strip():
                return None
            pos = end + 1
            lines += 1
        return cls(starts, ends, names) if starts else None


_DIGIT_RUN = re.compile(r"[0-9]{5}")
#: Units and signs that make a number an amount or quantity.
_UNITS = ("元", "圆", "万", "亿", "块", "角", "美元", "美金", "港币", "人民币", "件", "个", "台", "次", "股", "份",
          "吨", "克", "斤", "公斤", "千克", "米", "平", "笔", "张", "条", "户", "人", "%", "‰", "kg", "km", "rmb", "usd",
          "cny")
_UNIT_AFTER = re.compile(r" ?(?:" + "|".join(re.escape(u) for u in _UNITS) + ")", re.IGNORECASE)
_CURRENCY = frozenset("¥￥$€£")
_LOCATOR = frozenset("/\\=_&?#%~")
_URL_START = re.compile(r"(?:https?|ftp)://|www\.", re.IGNORECASE)
_URL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:/?#@&=%+")
_PHONE_WORDS = frozenset({"tel", "phone", "mobile", "cell", "call", "fax", "no", "mob", "telephone", "cellphone"})
_PHONE_KEY = re.compile(r"(?:phone|mobile|tel|shouji|sjh|contact)[a-z_]*=$", re.IGNORECASE)


def quantity_or_locator(s: str, start: int, end: int) -> bool:
    """True when the number ``s[start:end]`` is an amount or quantity (a unit right after it, decimals, a
    currency sign before it) or part of a URL or a file name (a path, query value other than a phone
    parameter, or a name with an extension)."""
    after = s[end:end + 1]
    before = s[start - 1:start] if start else ""
    if after == "." and s[end + 1:end + 2].isdigit():
        return True
    if _UNIT_AFTER.match(s, end):
        return True
    lead = s[max(0, start - 2):start].strip()
    if lead and lead[-1] in _CURRENCY:
        return True
    if before.isascii() and before.isalpha():
        # "SF13812345678" is a waybill code; "tel13812345678" still a phone.
        left = start
        while left > 0 and s[left - 1].isascii() and s[left - 1].isalpha():
            left -= 1
        if s[left:start].lower() not in _PHONE_WORDS:
            return True
    if after.isascii() and after.isalpha() and after not in "xX":
        return True
    if after == "." and s[end + 1:end + 2].isascii() and s[end + 1:end + 2].isalpha():
        return True  # a file name: "13812345678.pdf", "IMG_13812345678.jpg"
    if (before and before in _LOCATOR) or (after and after in _LOCATOR):
        left = start
        while left > 0 and s[left - 1] in _URL_CHARS:
            left -= 1
        right = end
        while right < len(s) and s[right] in _URL_CHARS:
            right += 1
        token = s[left:start] + s[end:right]
        # "13812345678/13912345678" are two numbers; a path or query around the number has letters.
        if any(ch.isascii() and ch.isalpha() for ch in token):
            return not _PHONE_KEY.search(s[left:start])
    left = start
    while left > 0 and s[left - 1] in _URL_CHARS and start - left < 2048:
        left -= 1
    return left < start and _URL_START.search(s, left, start) is not None


_PUNCTUATION = "。，；！？、,.;!? \n"
_LATIN_WORD = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_@.")


def is_standalone(s: str, pos: int, word: str) -> bool:
    """False when a Latin context word is part of a longer token ("qq" in "@qq.com", "id" in "wxid")."""
    if not word.isascii():
        return True
    before = s[pos - 1] if pos else ""
    after = s[pos + len(word)] if pos + len(word) < len(s) else ""
    return before not in _LATIN_WORD and not (after.isascii() and (after.isalpha() or after in "@."))


def _alternation(words: tuple[str, ...], flags: int = 0) -> re.Pattern[str] | None:
    """One regular expression for a set of context words (longest first, so "qq群" beats "qq")."""
    if not words:
        return None
    return re.compile("|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)), flags)


def _last(window: str, words: re.Pattern[str] | None) -> tuple[int, str]:
    """End offset and text of the context word that ends last in ``window`` ((-1, "") if none)."""
    best_end, best_word = -1, ""
    if words is None:
        return best_end, best_word
    for m in words.finditer(window):
        if m.end() > best_end and is_standalone(window, m.start(), m.group()):
            best_end, best_word = m.end(), m.group()
    return best_end, best_word


def as_tuple(words: Iterable[str]) -> tuple[str, ...]:
    """Context words lower-cased (the context window is lower-cased before matching)."""
    return tuple(w.lower() for w in words)
