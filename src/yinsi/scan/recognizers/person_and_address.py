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
        for kind, start, end in self.model.spans(normalized):
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
                explanation="character tagger (averaged perceptron trained on CLUENER2020 train)",
            )


def recognizer(model: NerModel | None = None) -> NerRecognizer:
    return NerRecognizer(name="NameAddressRecognizer", type="person_name", patterns=(), model=model)
