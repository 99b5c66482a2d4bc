"""Cutting a policy text into segments for showing its findings in place (the console's analyse page).

Findings may overlap; the text is split at every finding's start and end, so no segment is nested inside
another and each segment is marked at most once (by the shortest finding covering it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Protocol


class Span(Protocol):
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


@dataclass(frozen=True)
class Segment:
    """A run of the text; ``finding``: index of the finding that marks it (None: unmarked);
    ``anchors``: findings (by index) whose place starts here (the first one names the mark)."""

    text: str
    finding: int | None = None
    anchors: tuple[int, ...] = field(default=())


def segments(text: str, findings: Sequence[Span]) -> list[Segment]:
    """The text as consecutive segments (their texts joined give ``text``) with the findings' spans marked."""
    n = len(text)
    spans = [(max(0, min(f.start, n)), max(0, min(f.end, n))) for f in findings]
    spans = [(s, max(s, e)) for s, e in spans]
    cuts = sorted({0, n} | {s for s, _ in spans} | {e for _, e in spans})
    starts: dict[int, list[int]] = {}
    for i, (s, _) in enumerate(spans):
        starts.setdefault(s, []).append(i)
    out: list[Segment] = []
    for a, b in pairwise(cuts):
        covering = [i for i, (s, e) in enumerate(spans) if s <= a and e >= b and s < e]
        mark = min(covering, key=lambda i: (spans[i][1] - spans[i][0], i)) if covering else None
        anchors = starts.pop(a, [])
        if mark is not None and mark in anchors:  # the mark carries its own finding's anchor
            anchors.remove(mark)
            anchors.insert(0, mark)
        out.append(Segment(text[a:b], mark, tuple(anchors)))
    rest = [i for pos in sorted(starts) for i in starts[pos]]
    if rest:  # empty findings at the very end (or an empty text)
        out.append(Segment("", None, tuple(rest)))
    return out
