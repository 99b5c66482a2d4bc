"""Checks that a declaration stays faithful to the policy text it encodes: every quote is verbatim."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from yinsi.domain.policy import Declaration

_IGNORED = re.compile(r"[\s*_#>\-]+")  # whitespace and Markdown emphasis/heading/list marks


def normalise(text: str) -> str:
    """Text with whitespace and Markdown marks removed, for quote matching."""
    return _IGNORED.sub("", text)


@dataclass(frozen=True)
class QuoteProblem:
    path: str
    file: str | None
    quote: str
    message: str


def seeds_dir() -> Path:
    """Where the seed policy texts live: ``YINSI_SEEDS_DIR`` or ``../shared/seeds`` beside the repo."""
    env = os.environ.get("YINSI_SEEDS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "seeds"


def check_quotes(decl: Declaration, texts: dict[str, str]) -> list[QuoteProblem]:
    """Every non-silent source must quote its file verbatim (ignoring whitespace and Markdown marks)."""
    norm = {name: normalise(t) for name, t in texts.items()}
    problems: list[QuoteProblem] = []
    for path, src in decl.iter_sources():
        if src.silent or src.quote is None:
            continue
        name = src.file or decl.source_file
        if name not in norm:
            problems.append(QuoteProblem(path, name, src.quote, "source file not available"))
            continue
        q = normalise(src.quote)
        if q and q not in norm[name]:
            problems.append(QuoteProblem(path, name, src.quote, "quote not found verbatim in the text"))
    return problems
