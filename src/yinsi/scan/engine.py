"""``scan_text``: run the registry's recognizers over a text and resolve overlaps deterministically.

Two prefilters keep whole-table and long-text scans fast without changing what is found:

* pattern types: every value of the numeric types (phones, IDs, cards, IMEI, QQ, passports) holds a run of five
  digits (after full-width normalisation), so one shared pass finds those runs; without one these recognizers
  are skipped, and in a long text their expressions run only around the runs (with a margin for "+86 ",
  "(010)" or a passport letter);
* the name/address tagger: it runs only on the sentences that can hold a name or an address — those with a
  surname character, an address unit, or a name or address context word — and its spans are shifted back.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import replace
from functools import cache

from yinsi.scan.normalize import normalize
from yinsi.scan.recognizer import Layout, Recognizer
from yinsi.scan.registry import PATTERN_TYPES, RecognizerRegistry, default_registry
from yinsi.scan.result import Result

#: Texts at least this long are matched around the digit runs only (shorter ones are matched whole: cheaper).
WINDOW_MIN_CHARS = 256
_DIGIT_RUN = re.compile(r"[0-9](?:[ \-.]?[0-9]){4,}")
_MARGIN_BEFORE = 7  # "(+86) ", "0086 ", "E"
_MARGIN_AFTER = 2


def scan_text(
    text: str,
    *,
    types: Iterable[str] | None = None,
    registry: RecognizerRegistry | None = None,
    min_score: float = 0.0,
) -> list[Result]:
    """Every PI span in ``text``, non-overlapping, ordered by position; offsets index ``text`` itself.

    ``types`` restricts the scan to those type names (e.g. ``["mobile_phone", "id_card"]``);
    ``min_score`` drops weaker results (each recognizer already drops its own below its threshold).
    """
    reg = registry or default_registry()
    recognizers = reg.for_types(types)
    wanted = None if types is None else set(types)
    normalized = normalize(text)
    # A table given as text (CSV/TSV with a header line): each cell's context is its column header.
    layout = Layout.detect(normalized) if "\n" in normalized else None
    runs: list[tuple[int, int]] | None = None
    found: list[tuple[int, Result]] = []
    for priority, recognizer in enumerate(recognizers):
        results: Iterable[Result]
        if recognizer.type in _PATTERN_SET and type(recognizer).analyze is _PATTERN_ANALYZE:
            windows = None
            if recognizer.needs_digit_run:
                if runs is None:
                    runs = digit_runs(normalized)
                if not runs:
                    continue
                windows = runs if len(normalized) >= WINDOW_MIN_CHARS else None
            results = recognizer.analyze_table(text, normalized, layout, windows)
        elif not set(recognizer.types) & _PATTERN_SET:
            results = _gated(recognizer, text, normalized)
        else:
            results = recognizer.analyze(text, normalized)
        for result in results:
            if result.score >= min_score and (wanted is None or result.type in wanted):
                found.append((priority, result))
    return resolve_overlaps(found)


_PATTERN_SET = frozenset(PATTERN_TYPES)
_PATTERN_ANALYZE = Recognizer.analyze


def digit_runs(normalized: str) -> list[tuple[int, int]]:
    """The merged stretches of ``normalized`` around runs of five or more digits, with a margin each side."""
    out: list[tuple[int, int]] = []
    n = len(normalized)
    for m in _DIGIT_RUN.finditer(normalized):
        begin, end = max(0, m.start() - _MARGIN_BEFORE), min(n, m.end() + _MARGIN_AFTER)
        if out and begin <= out[-1][1]:
            out[-1] = (out[-1][0], end)
        else:
            out.append((begin, end))
    return out


_SENTENCE_END = re.compile(r"[。！？!?；;\n]")


@cache
def _name_gate() -> re.Pattern[str]:
    """Characters without which a sentence holds no name or address the tagger could find."""
    from yinsi.scan.ner import lexicon

    chars = set(lexicon.SINGLE_SURNAMES) | set(lexicon.ADDRESS_UNITS)
    chars |= {w[0] for w in lexicon.COMPOUND_SURNAMES}
    for words in (lexicon.NAME_BEFORE, lexicon.NAME_AFTER, lexicon.ADDRESS_BEFORE):
        chars |= {ch for w in words for ch in w}
    return re.compile("[" + "".join(sorted(chars)) + "]")


def name_segments(normalized: str) -> list[tuple[int, int]]:
    """The runs of sentences of ``normalized`` that pass the name/address gate (adjacent ones joined)."""
    gate = _name_gate()
    out: list[tuple[int, int]] = []
    start = 0
    n = len(normalized)
    while start < n:
        m = _SENTENCE_END.search(normalized, start)
        end = m.end() if m else n
        if gate.search(normalized, start, end):
            if out and out[-1][1] == start:
                out[-1] = (out[-1][0], end)
            else:
                out.append((start, end))
        start = end
    return out


def _gated(recognizer: Recognizer, text: str, normalized: str) -> Iterator[Result]:
    """The model recognizer's results, run on the gated sentences only, offsets into the whole text."""
    segments = name_segments(normalized)
    if len(segments) == 1 and segments[0] == (0, len(normalized)):
        yield from recognizer.analyze(text, normalized)
        return
    for begin, end in segments:
        for r in recognizer.analyze(text[begin:end], normalized[begin:end]):
            yield replace(r, start=r.start + begin, end=r.end + begin)


def resolve_overlaps(found: list[tuple[int, Result]]) -> list[Result]:
    """Keep a non-overlapping subset: checksum-validated beats pattern-only, a pattern type beats the tagger's
    names and addresses (a tagger span running over a phone or a MAC address must not swallow it), then longer
    beats shorter, then the higher score, then the earlier recognizer in the registry, then the earlier start."""
    if not found:
        return []
    ranked = sorted(
        found,
        key=lambda pr: (not pr[1].validated, pr[1].type not in _PATTERN_SET, -(pr[1].end - pr[1].start), -pr[1].score,
                        pr[0], pr[1].start),
    )
    starts: list[int] = []  # the kept spans, sorted and disjoint
    ends: list[int] = []
    taken: list[Result] = []
    for _, result in ranked:
        i = bisect_left(starts, result.start)
        if i > 0 and ends[i - 1] > result.start:
            continue
        if i < len(starts) and starts[i] < result.end:
            continue
        starts.insert(i, result.start)
        ends.insert(i, result.end)
        taken.append(result)
    taken.sort(key=lambda r: (r.start, r.end))
    return taken
