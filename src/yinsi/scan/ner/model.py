"""Load and apply the trained name/address tagger (Viterbi decoding over BIO tags)."""

from __future__ import annotations

import gzip
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from yinsi.scan.ner.features import sentence_features

#: Sentences longer than this are tagged in pieces (cut after sentence punctuation when possible).
MAX_CHUNK = 200
_CUT_AFTER = "。！？；\n!?;"


class NerModel:
    """A first-order averaged perceptron over BIO tags (B-x, I-x, O) for a few entity kinds."""

    def __init__(self, tags: list[str], weights: dict[str, list[float]], transitions: list[list[float]],
                 lexicon: dict[str, frozenset[str]], meta: dict[str, Any] | None = None,
                 gazetteer: dict[str, str] | None = None) -> None:
        self.tags = tags
        self.gazetteer = gazetteer or {}
        self.weights = weights
        self.transitions = transitions
        self.lexicon = lexicon
        self.meta = meta or {}
        n = len(tags)
        self._allowed_prev: list[list[int]] = []
        self._start_ok: list[bool] = []
        for cur in tags:
            if cur.startswith("I-"):
                kind = cur[2:]
                self._allowed_prev.append([k for k, t in enumerate(tags) if t in (f"B-{kind}", f"I-{kind}")])
                self._start_ok.append(False)
            else:
                self._allowed_prev.append(list(range(n)))
                self._start_ok.append(True)

    # --- persistence -------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": "yinsi-ner-perceptron/1",
            "tags": self.tags,
            "transitions": self.transitions,
            "lexicon": {k: "".join(sorted(v)) for k, v in self.lexicon.items()},
            "gazetteer": self.gazetteer,
            "weights": self.weights,
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NerModel:
        if data.get("format") != "yinsi-ner-perceptron/1":
            raise ValueError(f"unknown NER model format: {data.get('format')!r}")
        return cls(
            tags=list(data["tags"]),
            weights={k: list(v) for k, v in data["weights"].items()},
            transitions=[list(row) for row in data["transitions"]],
            lexicon={k: frozenset(v) for k, v in data["lexicon"].items()},
            meta=dict(data.get("meta", {})),
            gazetteer=dict(data.get("gazetteer", {})),
        )

    def save(self, path: Path) -> None:
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
            json.dump(self.to_json(), f, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def load(cls, path: Path) -> NerModel:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return cls.from_json(json.load(f))

    # --- inference ---------------------------------------------------------------------------------------
    def emissions(self, chars: str) -> list[list[float]]:
        n = len(self.tags)
        weights = self.weights
        rows: list[list[float]] = []
        for feats in sentence_features(chars, self.lexicon, self.gazetteer):
            row = [0.0] * n
            for f in feats:
                w = weights.get(f)
                if w is not None:
                    for k in range(n):
                        row[k] += w[k]
            rows.append(row)
        return rows

    def decode(self, chars: str) -> list[str]:
        """The best tag sequence for ``chars`` (one tag per character)."""
        if not chars:
            return []
        path = viterbi(self.emissions(chars), self.transitions, self._start_ok, self._allowed_prev)
        return [self.tags[k] for k in path]

    def spans(self, text: str) -> list[tuple[str, int, int]]:
        """``(kind, start, end)`` entity spans (end exclusive), tagging long texts chunk by chunk."""
        out: list[tuple[str, int, int]] = []
        for offset, chunk in _chunks(text):
            out.extend((kind, offset + s, offset + e) for kind, s, e in tags_to_spans(self.decode(chunk)))
        return out


def viterbi(emissions: list[list[float]], transitions: list[list[float]], start_ok: list[bool],
            allowed_prev: list[list[int]]) -> list[int]:
    """The best tag-index path through non-empty ``emissions`` (one score row per character).

    ``start_ok[k]``: tag ``k`` may open the sentence; ``allowed_prev[k]``: the tags that may precede tag ``k``.
    Shared by ``NerModel.decode`` and the trainer (``yinsi.scan.ner.train``).
    """
    n = len(start_ok)
    neg = float("-inf")
    score = [emissions[0][k] if start_ok[k] else neg for k in range(n)]
    back: list[list[int]] = []
    for row in emissions[1:]:
        new = [neg] * n
        ptr = [0] * n
        for cur in range(n):
            best, arg = neg, 0
            for prev in allowed_prev[cur]:
                s = score[prev] + transitions[prev][cur]
                if s > best:
                    best, arg = s, prev
            new[cur] = best + row[cur]
            ptr[cur] = arg
        back.append(ptr)
        score = new
    last = max(range(n), key=lambda k: score[k])
    path = [last]
    for ptr in reversed(back):
        last = ptr[last]
        path.append(last)
    path.reverse()
    return path


def tags_to_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """BIO tags to ``(kind, start, end)`` spans; a stray I- opens a span."""
    spans: list[tuple[str, int, int]] = []
    kind, start = "", -1
    for i, tag in enumerate([*tags, "O"]):
        if kind and not (tag.startswith("I-") and tag[2:] == kind):
            spans.append((kind, start, i))
            kind, start = "", -1
        if tag.startswith("B-") or (tag.startswith("I-") and not kind):
            kind, start = tag[2:], i
    return spans


def _chunks(text: str) -> list[tuple[int, str]]:
    """Pieces of at most ``MAX_CHUNK`` characters, cut after lines and sentence ends where possible."""
    pieces: list[tuple[int, str]] = []
    start, n = 0, len(text)
    while start < n:
        end = min(n, start + MAX_CHUNK)
        if end < n:
            cut = max(text.rfind(ch, start, end) for ch in _CUT_AFTER)
            if cut > start:
                end = cut + 1
        newline = text.find("\n", start, end)
        if newline >= 0:
            end = newline + 1
        piece = text[start:end]
        if piece.strip():
            pieces.append((start, piece))
        start = end
    return pieces


MODEL_FILE = "ner_model.json.gz"


@cache
def load_default_model() -> NerModel | None:
    """The shipped model, or ``None`` if the artefact has not been trained (``python -m yinsi.scan.ner.train``)."""
    resource = resources.files("yinsi.scan") / "data" / MODEL_FILE
    if not resource.is_file():
        return None
    with resources.as_file(resource) as path:
        return NerModel.load(path)
