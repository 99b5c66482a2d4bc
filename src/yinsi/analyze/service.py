"""The use case behind ``yinsi policy analyze``: read files, analyse them, draft, compare."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

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


#: Largest upload the analyse page accepts, and the largest text a .docx may unpack to.
MAX_UPLOAD = 2 * 1024 * 1024
_MAX_DOCX_XML = 32 * 1024 * 1024


def analyze_upload(data: bytes, name: str) -> FileAnalysis:
    """Findings about an uploaded policy file (its bytes and file name); nothing is written or logged."""
    import io
    import zipfile

    from yinsi.analyze.text import _decode, _docx_text

    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise PolicyReadError("不支持的文件类型：支持 .txt、.md、.html、.docx")
    if not data.strip():
        raise PolicyReadError("请选择政策文本文件")
    if len(data) > MAX_UPLOAD:
        raise PolicyReadError("文件过大（上限 2 MB）")
    if suffix == ".docx":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                size = z.getinfo("word/document.xml").file_size
        except (zipfile.BadZipFile, KeyError) as exc:
            raise PolicyReadError("无法读取 .docx 文件：不是有效的 Word 文档") from exc
        if size > _MAX_DOCX_XML:
            raise PolicyReadError("文档解压后过大")
        try:
            text = _docx_text(data)
        except ElementTree.ParseError as exc:
            raise PolicyReadError("无法读取 .docx 文件：不是有效的 Word 文档") from exc
    else:
        text = _decode(data)
    label = Path(name).name[:100]
    return FileAnalysis(label, text, analyze_text(text, label))


def write_draft(result: FileAnalysis, out: str | Path) -> None:
    if result.draft is None:
        raise ValueError("no draft")
    Path(out).write_text(dump_yaml(result.draft), encoding="utf-8")
