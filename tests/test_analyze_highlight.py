"""Cutting a policy text into marked segments for the console's analyse page."""

from __future__ import annotations

from dataclasses import dataclass

from yinsi.analyze.highlight import segments


@dataclass
class F:
    start: int
    end: int


def test_segments_rejoin_to_the_text_and_overlaps_are_split_without_nesting() -> None:
    text = "甲乙丙丁戊己庚"
    segs = segments(text, [F(1, 4), F(3, 6), F(0, 0)])
    assert "".join(s.text for s in segs) == text
    assert [(s.text, s.finding) for s in segs] == [("甲", None), ("乙丙", 0), ("丁", 0), ("戊己", 1), ("庚", None)]
    assert segs[0].anchors == (2,) and segs[1].anchors == (0,) and segs[2].anchors == (1,)


def test_the_shortest_covering_finding_marks_a_segment_and_out_of_range_spans_are_clamped() -> None:
    segs = segments("abcdef", [F(0, 6), F(2, 3), F(4, 99)])
    assert [(s.text, s.finding) for s in segs] == [("ab", 0), ("c", 1), ("d", 0), ("ef", 2)]
    every = [i for s in segs for i in s.anchors]
    assert sorted(every) == [0, 1, 2]
    assert segments("", [F(0, 0)]) == [segments("", [F(0, 0)])[0]] and segments("", [F(0, 0)])[0].anchors == (0,)
