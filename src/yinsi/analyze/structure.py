"""The structure of a policy text: headings and their numbering, the contents list, cross-references, links."""

from __future__ import annotations

import re
from dataclasses import dataclass

from yinsi.analyze.text import PolicyText, to_simplified

CN_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def cn_number(s: str) -> int | None:
    """一 → 1, 十二 → 12, 二十 → 20; arabic digits as they are; None when not a number."""
    s = s.strip()
    if s.isdigit():
        return int(s)
    if not s or any(c not in CN_DIGITS and c != "十" for c in s):
        return None
    if "十" in s:
        head, _, tail = s.partition("十")
        tens = CN_DIGITS.get(head, 1) if head else 1
        return tens * 10 + (CN_DIGITS.get(tail, 0) if tail else 0)
    n = 0
    for c in s:
        n = n * 10 + CN_DIGITS[c]
    return n


_PREFIX = r"^(?:\s|#|\*|>|<[^>]*>|【|[-+•·]\s)*"
# (level, pattern); group "n" is the number, group "title" the title.
HEADING_PATTERNS: list[tuple[int, re.Pattern[str]]] = [
    (0, re.compile(_PREFIX + r"第(?P<n>[一二三四五六七八九十\d]+)(?:部分|章)\s*(?P<title>.{0,40})")),
    (1, re.compile(_PREFIX + r"(?P<n>[一二三四五六七八九十]{1,3})\s*[、.．]\s*(?P<title>.{1,60})")),
    (2, re.compile(_PREFIX + r"[（(](?P<n>[一二三四五六七八九十]{1,3})[）)]\s*(?P<title>.{1,60})")),
    (3, re.compile(_PREFIX + r"(?P<n>\d{1,2})\s*(?:[、．]|\.(?!\d))\s*(?P<title>\D.{0,60})")),
]


@dataclass(frozen=True)
class Heading:
    level: int
    number: int
    title: str
    start: int  # offset of the number in the text as read
    end: int  # end of the numbering token
    line: int


def headings(pt: PolicyText) -> list[Heading]:
    """Numbered headings and list items at the start of a line, in order."""
    out: list[Heading] = []
    for offset, line in pt.lines():
        if not line.strip() or len(line) > 2000:
            continue
        for level, pat in HEADING_PATTERNS:
            m = pat.match(line)
            if not m:
                continue
            n = cn_number(m.group("n"))
            if n is None:
                break
            title = re.sub(r"[*#【】]", "", m.group("title")).strip()
            out.append(Heading(level, n, title, offset + m.start("n"), offset + m.end("n"), pt.line_of(offset)))
            break
    return out


@dataclass(frozen=True)
class NumberingIssue:
    kind: str  # numbering_gap | numbering_duplicate
    heading: Heading
    previous: Heading
    expected: int


def numbering_issues(hs: list[Heading], contents_end: int = -1) -> list[NumberingIssue]:
    """Gaps and repeats among siblings: a higher-level heading starts a new run of lower ones."""
    issues: list[NumberingIssue] = []
    last: dict[int, Heading] = {}
    for h in hs:
        if h.start < contents_end:
            continue
        prev = last.get(h.level)
        if prev is not None and h.number != 1:
            if h.number == prev.number:
                issues.append(NumberingIssue("numbering_duplicate", h, prev, prev.number + 1))
            elif h.number > prev.number + 1 and h.number - prev.number <= 3:
                issues.append(NumberingIssue("numbering_gap", h, prev, prev.number + 1))
        last[h.level] = h
        for deeper in [k for k in last if k > h.level]:
            del last[deeper]
    return issues


_CONTENTS = re.compile(r"^(?:\s|#|\*|<[^>]*>)*(目\s*录|目\s*錄|索引)\s*[:：]?\s*$", re.M)
# an introduction's outline that serves as the contents list when there is no 目录
_OUTLINE = re.compile(r"^[^\n]{0,60}(?:以下内容|以下內容|如下索引[^\n]{0,12}|主要内容|主要內容)\s*[:：]\s*$", re.M)


def _contents_anchor(text: str) -> re.Match[str] | None:
    return _CONTENTS.search(text) or _OUTLINE.search(text)


def _norm_title(s: str) -> str:
    s = "".join(to_simplified(c) for c in s)
    return re.sub(r"[\s\W_\d一二三四五六七八九十、.．（）()【】“”\"'《》*#]+", "", s)


@dataclass(frozen=True)
class ContentsIssue:
    kind: str  # contents_missing_in_body | body_missing_in_contents
    heading: Heading


def contents_list(pt: PolicyText, hs: list[Heading]) -> tuple[list[Heading], int]:
    """The entries of a contents list (目录) and where the list ends; ([], -1) when there is none."""
    m = _contents_anchor(pt.text)
    if not m:
        return [], -1
    after = [h for h in hs if h.start > m.end()]
    if not after:
        return [], -1
    top = min(h.level for h in after[:5])
    entries: list[Heading] = []
    seen: set[str] = set()
    for h in after:
        if h.level != top:
            if entries:
                break
            continue
        key = _norm_title(h.title)
        if key in seen:
            break  # the body starts again at the first heading
        seen.add(key)
        entries.append(h)
    if len(entries) < 2:
        return [], -1
    end = next((h.start for h in after if h.level == top and _norm_title(h.title) in seen and h.start > entries[-1].start),
               entries[-1].end)
    return entries, end


def outline_before_contents(pt: PolicyText, hs: list[Heading]) -> list[Heading]:
    """A numbered outline (1、… 8、) that precedes the contents list, as an introduction gives one."""
    m = _CONTENTS.search(pt.text)
    if not m:
        return []
    before = [h for h in hs if h.start < m.start()]
    run: list[Heading] = []
    for h in before:
        if h.number == 1:
            run = [h]
        elif run and h.level == run[-1].level and h.number == run[-1].number + 1:
            run.append(h)
    return run if len(run) >= 5 else []


def contents_issues(pt: PolicyText, hs: list[Heading]) -> tuple[list[ContentsIssue], int]:
    entries, end = contents_list(pt, hs)
    if not entries:
        return [], -1
    entry_keys = [_norm_title(h.title) for h in entries]

    def matches(key: str, keys: list[str]) -> bool:
        return any(key[:6] and (key[:6] in k or k[:6] in key) for k in keys if k)

    best_level, best = -1, 0
    for lvl in range(4):
        keys = [_norm_title(h.title) for h in hs if h.start >= end and h.level == lvl]
        n = sum(1 for k in entry_keys if k and matches(k, keys))
        if n > best:
            best_level, best = lvl, n
    if best_level < 0 or best * 2 < len(entries):
        return [], end  # the body's chapters cannot be aligned with the list
    body = [h for h in hs if h.start >= end and h.level == best_level]
    issues: list[ContentsIssue] = []
    body_keys = [_norm_title(h.title) for h in body]
    for h, key in zip(entries, entry_keys, strict=True):
        if key and not matches(key, body_keys):
            issues.append(ContentsIssue("contents_missing_in_body", h))
    for h, key in zip(body, body_keys, strict=True):
        if best_level <= 1 and len(body) <= len(entries) + 2 and key and not matches(key, entry_keys):
            issues.append(ContentsIssue("body_missing_in_contents", h))
    return issues, end


# Cross-references: 见第五条 / 本政策第三部分 / 详见“如何联系我们”章节 / 参见 3.2
XREF = re.compile(r"(?:见|参见|参照|参阅|详见|依照|按照|根据)(?:本(?:隐私)?政策|本指引|本协议)?"
                  r"(?:第(?P<cn>[一二三四五六七八九十]{1,3}|\d{1,2})(?P<unit>部分|章|条|节|款|项)"
                  r"|(?P<dotted>\d{1,2}(?:\.\d{1,2})+)(?:条|节|款)?)")


def dotted_numbers(pt: PolicyText) -> set[str]:
    """Dotted section numbers (1.2, 3.4.1) that start a line."""
    return {m.group(1) for m in re.finditer(r"^(?:\s|#|\*|<[^>]*>)*(\d{1,2}(?:\.\d{1,2})+)", pt.text, re.M)}


PLACEHOLDER_LINK = re.compile(
    r"\[[^\]\n]{1,80}\]\(\s*(?:#?|javascript:[^)]*|https?://(?:www\.)?(?:example\.(?:com|org)|xxx+\.\w+)[^)]*)\)"
    r"|href\s*=\s*[\"'](?:#?|javascript:[^\"']*)[\"']"
    r"|https?://(?:www\.)?(?:xxx+|example)\.[a-z.]+\S*"
    r"|[（(【\[]\s*(?:链接|鏈接|链接地址|link|URL)\s*[）)】\]]"
    r"|\[(?:点击|點擊)?(?:此处|這裡|这里)\](?!\()",
    re.I,
)
