"""Decoding a policy file and a searchable view of it that maps back to the original offsets.

The view drops line breaks, Markdown emphasis marks and HTML tags and converts Traditional characters to
Simplified one character at a time, so every character of the view has exactly one offset in the text as
read: a match in the view maps back to ``text[start:end]`` without drift.
"""

from __future__ import annotations

import html
import re
import zipfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from xml.etree import ElementTree

SUFFIXES = (".txt", ".md", ".html", ".htm", ".docx")
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


class PolicyReadError(ValueError):
    """A file that cannot be read as a policy text (the message is Chinese and names no content)."""


def _decode(data: bytes) -> str:
    for enc in ("utf-8-sig", "gb18030", "big5"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def _docx_text(data: bytes) -> str:
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            xml = z.read("word/document.xml")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise PolicyReadError("无法读取 .docx 文件：不是有效的 Word 文档") from exc
    root = ElementTree.fromstring(xml)
    paras: list[str] = []
    for p in root.iter(f"{_W}p"):
        parts: list[str] = []
        for node in p.iter():
            if node.tag == f"{_W}t" and node.text:
                parts.append(node.text)
            elif node.tag == f"{_W}tab":
                parts.append("\t")
            elif node.tag in (f"{_W}br", f"{_W}cr"):
                parts.append("\n")
        paras.append("".join(parts))
    return "\n".join(paras)


def read_policy(path: str | Path) -> str:
    """The decoded text of a policy file, exactly as the analyzer's offsets count it."""
    p = Path(path)
    data = p.read_bytes()
    if p.suffix.lower() == ".docx":
        return _docx_text(data)
    return _decode(data)


@cache
def _converter() -> object | None:
    try:
        import opencc
    except ImportError:  # pragma: no cover - opencc is a dependency
        return None
    return opencc.OpenCC("t2s")


@cache
def to_simplified(ch: str) -> str:
    """One character in Simplified Chinese (itself when unchanged or when the conversion is not 1:1)."""
    conv = _converter()
    if conv is None or ch.isascii():
        return ch
    out = conv.convert(ch)  # type: ignore[attr-defined]
    return out if len(out) == 1 else ch


_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.S | re.I)
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")


@dataclass
class PolicyText:
    """A decoded text and its view: ``view[i]`` comes from ``text[pos[i]]``."""

    text: str
    file: str = "<text>"
    is_html: bool = False
    view: str = ""
    pos: list[int] = field(default_factory=list)
    line_starts: list[int] = field(default_factory=list)
    traditional_chars: int = 0
    simplified_only_chars: int = 0

    @classmethod
    def of(cls, text: str, file: str = "<text>") -> PolicyText:
        is_html = file.lower().endswith((".html", ".htm")) or bool(re.match(r"\s*<(!doctype|html)", text, re.I))
        pt = cls(text=text, file=file, is_html=is_html)
        pt._build()
        return pt

    def _build(self) -> None:
        skip = bytearray(len(self.text))
        repl: dict[int, str] = {}
        if self.is_html:
            for m in _TAG.finditer(self.text):
                for i in range(m.start(), m.end()):
                    skip[i] = 1
                if re.match(r"</?(p|div|br|li|h\d|tr|table|section)\b", m.group(0), re.I):
                    repl[m.start()] = "\n"
                    skip[m.start()] = 0
            for m in _ENTITY.finditer(self.text):
                ch = html.unescape(m.group(0))
                if len(ch) == 1:
                    repl[m.start()] = ch
                    for i in range(m.start() + 1, m.end()):
                        skip[i] = 1
        view: list[str] = []
        pos: list[int] = []
        trad = 0
        for i, ch in enumerate(self.text):
            if skip[i]:
                continue
            c = repl.get(i, ch)
            if c in "\r\n\u3000" or (c == "*" and not self.is_html):
                continue
            s = to_simplified(c)
            if s != c:
                trad += 1
            view.append(s)
            pos.append(i)
        self.view = "".join(view)
        self.pos = pos
        self.traditional_chars = trad
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]

    # --- offsets -------------------------------------------------------------------------------
    def span(self, vstart: int, vend: int) -> tuple[int, int]:
        """The original offsets of the view span ``[vstart, vend)``."""
        if vend <= vstart:
            o = self.pos[vstart] if vstart < len(self.pos) else len(self.text)
            return o, o
        return self.pos[vstart], self.pos[vend - 1] + 1

    def line_of(self, offset: int) -> int:
        import bisect

        return bisect.bisect_right(self.line_starts, offset)

    def lines(self) -> list[tuple[int, str]]:
        """(offset, line) for every line of the text as read."""
        out = []
        for k, start in enumerate(self.line_starts):
            end = self.line_starts[k + 1] - 1 if k + 1 < len(self.line_starts) else len(self.text)
            out.append((start, self.text[start:end]))
        return out

    def simplified(self, start: int, end: int) -> str:
        return "".join(to_simplified(c) for c in self.text[start:end])

    def sentence_at(self, vstart: int, vend: int) -> tuple[int, int]:
        """The view span of the sentence around ``[vstart, vend)``."""
        b = vstart
        while b > 0 and self.view[b - 1] not in "。；！？;!?" and vstart - b < 200:
            b -= 1
        e = vend
        while e < len(self.view) and self.view[e] not in "。；！？;!?" and e - vend < 200:
            e += 1
        return b, min(e + 1, len(self.view))
