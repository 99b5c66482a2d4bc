"""The recognizer contract: one small unit per PI type, with patterns, context words and a validate hook.

Modelled on Presidio's ``PatternRecognizer``: a recognizer lists its regular expressions (each with a base
score), the context words that make a match more likely (and, for Yinsi, the words that make it a look-alike
such as an order number), and ``validate`` where checksums live. Adding a type is adding one module under
``yinsi.scan.recognizers`` and one line in its ``__init__``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from yinsi.scan.normalize import ascii_lower
from yinsi.scan.result import Result

#: Words that mark the following number as a look-alike (an order, waybill or serial number, a code, a time).
LOOKALIKE_CONTEXT: tuple[str, ...] = (
    "订单", "单号", "编号", "流水号", "交易号", "运单", "快递", "物流", "工单", "序列号", "批次", "批号",
    "发票", "券码", "兑换码", "验证码", "校验码", "时间戳", "timestamp", "商品码", "条码", "货号", "合同号",
    "order", "sku", "serial", "tracking",
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
    #: Separators inside grouped values: a grouped match touching another group (``sep + boundary char``) is a
    #: fragment of a longer number and is dropped.
    separators: str = ""
    #: The validate hook: True when a checksum confirms the value, False to reject it, None when there is none.
    validator: Callable[[str], bool | None] | None = None
    #: What a passing ``validator`` proved, for explanations (e.g. "Luhn check passed").
    validated_reason: str = "checksum passed"
    _compiled: list[tuple[Pattern, re.Pattern[str]]] = field(default_factory=list, init=False, repr=False)
    _positive: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _negative: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _anchor: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    @property
    def types(self) -> tuple[str, ...]:
        """The types this recognizer can return."""
        return (self.type,)

    def __post_init__(self) -> None:
        self._compiled = [(p, re.compile(p.regex)) for p in self.patterns]
        self._positive = _alternation(self.context)
        self._negative = _alternation(self.negative_context)
        self._anchor = _alternation(self.context, re.IGNORECASE)

    # --- hooks -------------------------------------------------------------------------------------------
    def validate(self, value: str) -> bool | None:
        """True: a checksum confirmed the value; False: reject it; None: no checksum for this type."""
        return self.validator(value) if self.validator is not None else None

    def explain(self, value: str, validated: bool | None) -> str:
        """Why the value was accepted, for the result's explanation."""
        return self.validated_reason if validated else "pattern match"

    def candidates(self, normalized: str) -> Iterator[Candidate]:
        """All raw pattern matches in the normalised text.

        A recognizer whose context is required only looks right after its context words, which is both the
        rule and much faster than matching e.g. every Latin word as a possible WeChat ID.
        """
        if self.context_required:
            yield from self._anchored_candidates(normalized)
            return
        for pattern, regex in self._compiled:
            for m in regex.finditer(normalized):
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
        if self.requires_any and not any(ch in normalized for ch in self.requires_any):
            return
        for cand in self.candidates(normalized):
            if not self._bounded(normalized, cand):
                continue
            context = self._context(normalized, cand.start)
            if context is False or (context is None and self.context_required):
                continue
            validated = self.validate(cand.value)
            if validated is False:
                continue
            score = cand.pattern.score
            why = [f"pattern {cand.pattern.name}"]
            if validated:
                score += self.validated_boost
                why.append(self.explain(cand.value, validated))
            if context:
                score += self.context_boost
                why.append(f"context word “{context}”")
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

    def _context(self, s: str, start: int) -> str | bool | None:
        """The nearest context word before ``start``; False if a look-alike word is nearer; None if neither."""
        if not self.context and not self.negative_context:
            return None
        window = ascii_lower(s[max(0, start - self.context_window):start])
        pos_end, pos_word = _last(window, self._positive)
        neg_end, neg_word = _last(window, self._negative)
        if neg_end > pos_end:
            # "证件编号", "设备编号": a context word right before the look-alike word qualifies it.
            neg_start = neg_end - len(neg_word)
            gap = window[pos_end:neg_start]
            if pos_end < 0 or neg_start < pos_end or len(gap) > 2 or any(ch in _PUNCTUATION for ch in gap):
                return False
        return pos_word if pos_end >= 0 else None


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
