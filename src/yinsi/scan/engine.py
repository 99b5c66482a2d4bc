"""``scan_text``: run the registry's recognizers over a text and resolve overlaps deterministically."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from yinsi.scan.normalize import normalize
from yinsi.scan.recognizer import Layout, Recognizer
from yinsi.scan.registry import PATTERN_TYPES, RecognizerRegistry, default_registry
from yinsi.scan.result import Result


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
    found: list[tuple[int, Result]] = []
    for priority, recognizer in enumerate(recognizers):
        if layout is not None and recognizer.type in _PATTERN_SET and type(recognizer).analyze is _PATTERN_ANALYZE:
            results = recognizer.analyze_table(text, normalized, layout)
        else:
            results = recognizer.analyze(text, normalized)
        for result in results:
            if result.score >= min_score and (wanted is None or result.type in wanted):
                found.append((priority, result))
    return resolve_overlaps(found)


_PATTERN_SET = frozenset(PATTERN_TYPES)
_PATTERN_ANALYZE = Recognizer.analyze


def resolve_overlaps(found: list[tuple[int, Result]]) -> list[Result]:
    """Keep a non-overlapping subset: checksum-validated beats pattern-only, then longer beats shorter, then the
    higher score, then the earlier recognizer in the registry, then the earlier start."""
    if not found:
        return []
    ranked = sorted(
        found,
        key=lambda pr: (not pr[1].validated, -(pr[1].end - pr[1].start), -pr[1].score, pr[0], pr[1].start),
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
