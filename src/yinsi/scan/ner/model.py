"""Load and apply the trained name/address tagger: a linear-chain CRF over BIO tags (CRFsuite).

The shipped artefact ``yinsi/scan/data/ner_crf.crfsuite.gz`` is a gzip-compressed CRFsuite model (feature weights
only, no sentences) with a JSON sidecar ``ner_crf.json`` describing its training data; see
``yinsi.scan.ner.train``. Features: ``yinsi.scan.ner.features``.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pycrfsuite  # type: ignore[import-untyped]

from yinsi.scan.ner.features import sentence_features
from yinsi.scan.ner.lexicon import COMMON_SURNAMES

#: Sentences longer than this are tagged in pieces (cut after sentence punctuation when possible).
MAX_CHUNK = 200
_CUT_AFTER = "。！？；\n!?;"

MODEL_FILE = "ner_crf.crfsuite.gz"
META_FILE = "ner_crf.json"


class NerModel:
    """A CRFsuite tagger with the feature function it was trained with."""

    def __init__(self, model_bytes: bytes, meta: dict[str, Any] | None = None) -> None:
        self._bytes = model_bytes
        self.tagger = pycrfsuite.Tagger()
        self.tagger.open_inmemory(model_bytes)
        self.meta = meta or {}
        #: character sets other modules consult (column classification looks at the frequent surnames)
        self.lexicon: dict[str, frozenset[str]] = {"sur": COMMON_SURNAMES}

    @classmethod
    def load(cls, path: Path, meta_path: Path | None = None) -> NerModel:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path and meta_path.is_file() else {}
        return cls(raw, meta)

    def save(self, path: Path, meta_path: Path | None = None) -> None:
        path.write_bytes(gzip.compress(self._bytes, compresslevel=9, mtime=0))
        if meta_path is not None:
            meta_path.write_text(json.dumps(self.meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def decode(self, chars: str) -> list[str]:
        """The best tag sequence for ``chars`` (one tag per character)."""
        if not chars:
            return []
        return list(self.tagger.tag(sentence_features(chars)))

    def spans(self, text: str) -> list[tuple[str, int, int]]:
        """``(kind, start, end)`` entity spans (end exclusive), tagging long texts chunk by chunk."""
        out: list[tuple[str, int, int]] = []
        for offset, chunk in _chunks(text):
            out.extend((kind, offset + s, offset + e) for kind, s, e in tags_to_spans(self.decode(chunk)))
        return out


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


@cache
def load_default_model() -> NerModel | None:
    """The shipped model, or ``None`` if the artefact has not been trained (``python -m yinsi.scan.ner.train``)."""
    data = resources.files("yinsi.scan") / "data"
    resource = data / MODEL_FILE
    if not resource.is_file():
        return None
    meta_resource = data / META_FILE
    meta = json.loads(meta_resource.read_text(encoding="utf-8")) if meta_resource.is_file() else {}
    return NerModel(gzip.decompress(resource.read_bytes()), meta)
