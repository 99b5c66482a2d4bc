"""The use case behind ``yinsi policy analyze``: read files, analyse them, draft, compare."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from yinsi.analyze.against import compare_with_declaration
from yinsi.analyze.draft import Draft, draft_declaration, dump_yaml
from yinsi.analyze.findings import Finding, analyze_text
from yinsi.analyze.text import SUFFIXES, PolicyReadError, read_policy
from yinsi.domain.policy import Declaration


@dataclass
class FileAnalysis:
    file: str
    text: str
    findings: list[Finding] = field(default_factory=list)
    draft: Draft | None = None


def analyze_file(path: str | Path, *, against: Declaration | None = None, draft: bool = False) -> FileAnalysis:
    """Findings about one policy file (and where it disagrees with ``against``); a draft when asked."""
    p = Path(path)
    if p.suffix.lower() not in SUFFIXES:
        raise PolicyReadError(f"不支持的文件类型“{p.suffix}”：支持 .txt、.md、.html、.docx")
    try:
        text = read_policy(p)
    except OSError as exc:
        raise PolicyReadError("无法读取文件（不存在或没有权限）") from exc
    result = FileAnalysis(str(p), text, analyze_text(text, str(p)))
    if against is not None:
        result.findings.extend(compare_with_declaration(text, str(p), against))
    if draft:
        result.draft = draft_declaration(text, p.name)
    return result


def write_draft(result: FileAnalysis, out: str | Path) -> None:
    if result.draft is None:
        raise ValueError("no draft")
    Path(out).write_text(dump_yaml(result.draft), encoding="utf-8")
