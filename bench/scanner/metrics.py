"""Exact-span precision, recall and F1 per type."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

Span = tuple[str, int, int]  # (type, start, end)


class Scores:
    def __init__(self) -> None:
        self.tp: Counter[str] = Counter()
        self.fp: Counter[str] = Counter()
        self.fn: Counter[str] = Counter()

    def add(self, gold: Iterable[Span], predicted: Iterable[Span], types: Iterable[str] | None = None) -> None:
        only = None if types is None else set(types)
        g = {s for s in gold if only is None or s[0] in only}
        p = {s for s in predicted if only is None or s[0] in only}
        for s in g & p:
            self.tp[s[0]] += 1
        for s in p - g:
            self.fp[s[0]] += 1
        for s in g - p:
            self.fn[s[0]] += 1

    def row(self, pi_type: str) -> dict[str, float]:
        tp, fp, fn = self.tp[pi_type], self.fp[pi_type], self.fn[pi_type]
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
                "tp": tp, "fp": fp, "fn": fn}

    def micro(self, types: Iterable[str]) -> dict[str, float]:
        ts = list(types)
        tp = sum(self.tp[t] for t in ts)
        fp = sum(self.fp[t] for t in ts)
        fn = sum(self.fn[t] for t in ts)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "tp": tp, "fp": fp, "fn": fn}
