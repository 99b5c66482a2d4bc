"""A detected span of personal information (个人信息) in a text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Result:
    """One detection: ``text[start:end]`` of the ORIGINAL text is a value of ``type``.

    ``start``/``end`` are character offsets (Python ``str`` indices), not bytes. ``validated`` is true when
    a checksum or structural check (ID checksum, Luhn, address parser) confirmed the value, not only a
    pattern; it wins overlaps against pattern-only results.
    """

    type: str
    start: int
    end: int
    text: str
    score: float
    recognizer: str
    explanation: str
    validated: bool = False

    def to_dict(self, *, text: str | None = None) -> dict[str, Any]:
        """The JSON contract ``{type, start, end, text, score}``; ``text`` may be replaced by a mask."""
        return {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "text": self.text if text is None else text,
            "score": round(self.score, 3),
        }
