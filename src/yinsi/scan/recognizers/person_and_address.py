"""Person names (姓名) and addresses (地址) from the trained character tagger (``yinsi.scan.ner``).

Unlike the pattern recognizers there is no checksum: results carry the model's fixed score and are never
``validated``, so a checksum-validated number always wins an overlap against them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from yinsi.scan.ner.model import NerModel, load_default_model
from yinsi.scan.recognizer import Recognizer
from yinsi.scan.result import Result

_TYPE_OF_KIND = {"name": "person_name", "address": "address"}
_STRIP = " \t\r\n，。、；：:,.;（）()“”\"'"
#: What may stand between two address pieces that are one address (广东省深圳市 南山区…).
_ADDRESS_JOIN = " "
_EXPLANATION = "character tagger (CRF trained on public NER training splits: CLUENER2020, MSRA, Weibo, Resume)"


def merge_address_pieces(spans: list[tuple[str, int, int]], text: str) -> list[tuple[str, int, int]]:
    """Join address spans that touch (or are separated by a space only) into one: a postal address is one span
    from province to room even when the tagger breaks it."""
    out: list[tuple[str, int, int]] = []
    for kind, start, end in sorted(spans, key=lambda s: s[1]):
        if out and kind == "address" and out[-1][0] == "address":
            _, prev_start, prev_end = out[-1]
            if prev_end <= start and all(ch in _ADDRESS_JOIN for ch in text[prev_end:start]):
                out[-1] = ("address", prev_start, end)
                continue
        out.append((kind, start, end))
    return out


@dataclass
class NerRecognizer(Recognizer):
    """Runs the tagger once per text and reports its name and address spans (the shipped model is loaded on
    first use, so pattern-only scans never pay for it)."""

    model: NerModel | None = field(default=None, repr=False)
    score: float = 0.7

    @property
    def types(self) -> tuple[str, ...]:
        return ("person_name", "address")

    def analyze(self, text: str, normalized: str) -> Iterator[Result]:
        if self.model is None:
            self.model = load_default_model()
            if self.model is None:
                return
        for kind, start, end in merge_address_pieces(self.model.spans(normalized), normalized):
            pi_type = _TYPE_OF_KIND.get(kind)
            if pi_type is None:
                continue
            while start < end and normalized[start] in _STRIP:
                start += 1
            while end > start and normalized[end - 1] in _STRIP:
                end -= 1
            if end - start < 2 and pi_type == "person_name":
                continue
            if start >= end:
                continue
            yield Result(
                type=pi_type,
                start=start,
                end=end,
                text=text[start:end],
                score=self.score,
                recognizer=self.name,
                explanation=_EXPLANATION,
            )


def recognizer(model: NerModel | None = None) -> NerRecognizer:
    return NerRecognizer(name="NameAddressRecognizer", type="person_name", patterns=(), model=model)
