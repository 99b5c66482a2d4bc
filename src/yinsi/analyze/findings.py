"""Findings about a policy text: text defects, structure, missing elements, inconsistencies, conflicts with law.

Each finding names the catalogue rule (RULES.md) where one applies, else only its stable ``kind``; it is
located by character offsets into the decoded text exactly as read and quotes ``text[start:end]``.
Detectors run on :class:`PolicyText`'s view (line breaks and Markdown marks dropped, Traditional
characters read as Simplified), so a phrase wrapped over two lines or written in Traditional is found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from yinsi.analyze import structure as st
from yinsi.analyze.text import PolicyText

SEVERITIES = ("error", "warning", "info")
SEVERITY_ZH = {"error": "错误", "warning": "警告", "info": "提示"}


@dataclass(frozen=True)
class Finding:
    file: str
    rule: str | None
    kind: str
    severity: str
    line: int
    start: int
    end: int
    quote: str
    message: str
    suggestion: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class _Collector:
    def __init__(self, pt: PolicyText) -> None:
        self.pt = pt
        self.out: list[Finding] = []

    def at(self, start: int, end: int, kind: str, severity: str, message: str, suggestion: str,
           rule: str | None = None) -> None:
        start = max(0, min(start, len(self.pt.text)))
        end = max(start, min(end, len(self.pt.text)))
        self.out.append(Finding(self.pt.file, rule, kind, severity, self.pt.line_of(start), start, end,
                                self.pt.text[start:end], message, suggestion))

    def view(self, vstart: int, vend: int, kind: str, severity: str, message: str, suggestion: str,
             rule: str | None = None) -> None:
        s, e = self.pt.span(vstart, vend)
        self.at(s, e, kind, severity, message, suggestion, rule)

    def missing(self, kind: str, message: str, suggestion: str, rule: str | None, severity: str = "warning") -> None:
        self.at(0, 0, kind, severity, message, suggestion, rule)


def _vsearch(pt: PolicyText, pattern: str | re.Pattern[str]) -> Iterator[re.Match[str]]:
    return re.finditer(pattern, pt.view) if isinstance(pattern, str) else pattern.finditer(pt.view)


def _has(pt: PolicyText, pattern: str) -> bool:
    return re.search(pattern, pt.view) is not None


# --- text defects ------------------------------------------------------------------------------

def _text_defects(c: _Collector) -> None:
    pt = c.pt
    # blank or placeholder dates
    for m in re.finditer(r"(?:(?:\d{4}|[XＸx×]{2,4}|_{2,}|\s)\s*年[ \t\u3000_]*月[ \t\u3000_]*日)"
                         r"|\d{4}年[ \t\u3000_]{2,}(?:\d{1,2}月)?[ \t\u3000_]*日?"
                         r"|[XＸx]{2,4}年[XＸx]{1,2}月[XＸx]{1,2}日|20[Xx]{2}年", pt.text):
        if re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", m.group(0).replace(" ", "")):
            continue
        c.at(m.start(), m.end(), "blank_date", "error", "日期留空或为占位符，读者无法知道政策何时生效或更新。",
             "填写实际的更新日期与生效日期（年月日），并与发布记录一致。", "N8")
    # reviewer comments and editing instructions
    comment = re.compile(r"Comment by [^:：\t\n]{1,40}[:：][^\t\n]*|\bComment\b(?= by|\s*$)|批注\s*\[[^\]]*\][^\n]*"
                         r"|【?(?:待定|待补充|待确认|TODO|TBD|FIXME)】?[^\n。]{0,40}", re.M | re.I)
    for m in comment.finditer(pt.text):
        if m.group(0).strip() in ("Comment",) and m.start() > 0 and pt.text[m.end():m.end() + 4].startswith(" by"):
            continue
        c.at(m.start(), m.end(), "reviewer_comment", "error", "正文中残留审阅批注，属于起草过程的内部意见，不是政策内容。",
             "删除批注，并按批注处理相应内容后再发布。")
    for m in _vsearch(pt, r"(?:请填写|请在此处|请补充|此处应|此处需|请设置成|请替换为|请修改为|待法务|请法务)[^。\n]{0,40}"):
        s, e = pt.span(m.start(), m.end())
        if any(f.kind == "reviewer_comment" and f.start <= s < f.end for f in c.out):
            continue
        c.at(s, e, "editing_instruction", "error", "正文中残留编辑说明（写给起草人的指示）。",
             "按说明补齐或修改内容，并删除这句说明。")
    # word-processor and markup artefacts
    art = re.compile(r"HYPERLINK\s+\"[^\"]*\"|PAGEREF\s+_Toc\d+|_Toc\d{5,}|\\[*_#]|[\u200b\u200c\ufeff\u00ad\f]"
                     + ("" if pt.is_html else r"|</?(?:p|span|div|br|td|tr|strong|b|font)\b[^>\n]{0,80}>"))
    for m in art.finditer(pt.text):
        if m.start() == 0 and m.group(0) == "\ufeff":
            continue
        c.at(m.start(), m.end(), "wp_artefact", "warning", "文本中残留排版或标记残片（网页标签、域代码、不可见字符）。",
             "从源文件重新导出纯文本，清除标签、域代码与不可见字符。")
    # corrupted characters
    for m in re.finditer(r"\ufffd+|锟斤拷|烫烫烫|屯屯屯|Ã.|â€.|\?(?:[、。.．])\?\d{0,2}\)?|(?<=[\u4e00-\u9fff])\?+(?=[\u4e00-\u9fff])",  # noqa: E501
                         pt.text):
        c.at(m.start(), m.end(), "corrupted_characters", "error", "字符损坏（乱码或问号替代），读者无法读出原意或编号。",
             "从原始文档恢复这些字符（常见为编号或项目符号），并用 UTF-8 保存。")
    # duplicated words (across a line break too: a page-break artefact)
    common = set("常人个天一谢渐刚仅往偏稍默明悄纷频时处步层事样款件种项条")
    for m in _vsearch(pt, r"([\u4e00-\u9fff]{2,4})\1|([和与或及在将把被])\2"):
        rep = m.group(1) or m.group(2)
        if rep and ((len(rep) == 2 and rep[0] == rep[1]) or rep in ("哔哩", "嘀嗒", "滴答", "咕咚", "拜拜")):
            continue
        s0, e0 = pt.span(m.start(), m.end())
        span = pt.text[s0:e0]
        if "\n\n" in span or ("\n" in span and _short_line_before(pt, span, s0)):
            continue
        c.view(m.start(), m.end(), "duplicated_word", "warning", f"词语重复：“{rep}”连续出现两次。",
               "删去重复的词语。")
    for m in re.finditer(r"(?<=[\u4e00-\u9fff，、])[ \t]*(?:\r?\n[ \t]*){2,4}(?=[\u4e00-\u9fff])", pt.text):
        ls = pt.text.rfind("\n", 0, m.start()) + 1
        ne = pt.text.find("\n", m.end())
        nxt_line = pt.text[m.end():ne if ne >= 0 else len(pt.text)]
        prev_line = pt.text[ls:m.start()]
        if (len(prev_line) < 40 or any(p.match(nxt_line) for _l, p in st.HEADING_PATTERNS)
                or not re.search(r"[，。；]", nxt_line) or not re.search(r"[，。；,]", prev_line)
                or "\t" in prev_line or "：" in nxt_line[:12] or ":" in nxt_line[:12]):
            continue
        c.at(m.start() - 1, m.end() + 1, "page_break_split", "info", "句子在中间被空行断开（分页或复制残留）。",
             "把断开的两部分接回同一段。")
    for m in re.finditer(r"([\u4e00-\u9fff])[ \t]*(?:\r?\n[ \t]*){1,4}[#*>]*\1(?=[\u4e00-\u9fff])", pt.text):
        ls = pt.text.rfind("\n", 0, m.start()) + 1
        if m.group(1) in common or m.start() - ls < 40:
            continue
        c.out[:] = [f for f in c.out if not (f.kind == "page_break_split" and f.start == m.start())]
        nxt = pt.text[m.end():m.end() + 2]
        prv = pt.text[max(0, m.start() - 1):m.start()]
        if (prv + m.group(1)) in ("违法",) and nxt.startswith("律"):
            pass
        c.at(m.start(), m.end(), "duplicated_word", "warning",
             f"换行处字符重复：“{m.group(1)}”在行尾与下一行开头各出现一次（分页或换行残留）。", "删去重复的字。")
    # stray interjections
    for m in _vsearch(pt, r"我的一(?=[\u4e00-\u9fff]{2,16}\s*[-—–])"):
        c.view(m.start() + 2, m.start() + 3, "typo", "warning", "菜单路径中的“一”应为分隔符“—”。", "改为“—”。")
    _self_reference(c)
    for m in _vsearch(pt, r"(?<=[\u4e00-\u9fff])[嗯呃](?=[\u4e00-\u9fff])"):
        c.view(m.start(), m.end(), "typo", "warning", "句中夹有无意义的语气词，疑为输入错误。", "删去该字或改为原意用词。")
    for wrong, right in (("SKD", "SDK"), ("电活", "电话"), ("手机号行加密", "手机号进行加密"), ("进电通知", "来电通知")):
        for m in _vsearch(pt, re.escape(wrong)):
            c.view(m.start(), m.end(), "typo", "warning", f"错别字：“{wrong}”，应为“{right}”。", f"改为“{right}”。")
    _brackets(c)
    _mixed_script(c)


def _short_line_before(pt: PolicyText, span: str, s0: int) -> bool:
    nl = s0 + span.index("\n")
    ls = pt.text.rfind("\n", 0, nl) + 1
    return nl - ls < 40


def _self_reference(c: _Collector) -> None:
    pt = c.pt
    names = re.findall(r"本(?:隐私权?政策|政策|指引|协议|声明)", pt.view)
    policy = sum(1 for n in names if "政策" in n)
    if policy < 3:
        return
    for m in _vsearch(pt, r"本(?:指引|协议)(?!与|和|及)"):
        c.view(m.start(), m.end(), "self_reference_inconsistent", "info",
               f"政策在多处自称“本政策”，此处却称“{m.group(0)}”，可能是从其他文件拼接而来。", "统一称“本政策”。")


_PAIRS = {"（": "）", "(": ")", "【": "】", "[": "]", "《": "》", "“": "”", "「": "」"}
_FAMILY = {"（": "round", "(": "round", "）": "round", ")": "round"}


def _brackets(c: _Collector) -> None:
    v = c.pt.view
    closers = {v: k for k, v in _PAIRS.items()}
    stack: list[tuple[str, int]] = []
    for i, ch in enumerate(v):
        if ch in _PAIRS:
            stack.append((ch, i))
            continue
        if ch in closers:
            want = closers[ch]
            fam = _FAMILY.get(ch)
            for k in range(len(stack) - 1, -1, -1):
                o = stack[k][0]
                if o == want or (fam is not None and _FAMILY.get(o) == fam):
                    del stack[k:]
                    break
            continue
        if ch in "。\n" and stack:
            # a sentence end closes nothing; an opener left open over 300 characters is unclosed
            stack = [(o, p) for o, p in stack if i - p < 300 or _report_unclosed(c, o, p)]
    for o, p in stack:
        _report_unclosed(c, o, p)


def _report_unclosed(c: _Collector, opener: str, vpos: int) -> bool:
    close = _PAIRS[opener]
    end = min(len(c.pt.view), vpos + 20)
    c.view(vpos, end, "unclosed_bracket", "warning", f"括号或引号“{opener}”没有对应的“{close}”。",
           f"在适当位置补上“{close}”，或删去多余的“{opener}”。")
    return False


def _mixed_script(c: _Collector) -> None:
    pt = c.pt
    if pt.traditional_chars < 20:
        return
    # A Traditional text with Simplified-only characters (后→後 is ambiguous, so a list of clear ones)
    simp_only = "们这个说为国发时会对样认关门见长应经过进还证设请让论选该际导问间处称级结织务语则资术权带单联"
    hits = [m for m in re.finditer(f"[{simp_only}]", pt.text)]
    if len(hits) >= 3:
        m = hits[0]
        c.at(m.start(), m.end(), "mixed_script", "info",
             f"繁体文本中夹有简体字（共 {len(hits)} 处，此为第一处），可能是转换不完整。",
             "统一为一种字形（繁体或简体）后重新发布。")


# --- structure -------------------------------------------------------------------------------

def _structure(c: _Collector) -> None:
    pt = c.pt
    hs = st.headings(pt)
    cissues, contents_end = st.contents_issues(pt, hs)
    for ci in cissues:
        h = ci.heading
        if ci.kind == "contents_missing_in_body":
            c.at(h.start, h.end + len(h.title) if h.title else h.end, ci.kind, "warning",
                 f"目录中的“{h.title[:20]}”在正文中找不到对应章节。", "使目录与正文章节一一对应（补齐章节或更正目录）。")
        else:
            c.at(h.start, h.end, ci.kind, "warning", f"正文章节“{h.title[:20]}”没有列在目录中。",
                 "在目录中补上该章节，或合并到已列出的章节。")
    outline = st.outline_before_contents(pt, hs)
    entries, _end = st.contents_list(pt, hs)
    if outline and entries and len(outline) != len(entries):
        first, last = outline[0], outline[-1]
        c.at(first.start, last.end + len(last.title), "outline_mismatch", "warning",
             f"引言列出的 {len(outline)} 项内容与目录的 {len(entries)} 个章节不一致。",
             "使引言的内容提要与目录、正文章节一致。")
    for lvl in (1, 2, 3):
        md = [(h, _md_level(pt, h)) for h in hs if h.start >= contents_end and h.level == lvl]
        md = [(h, depth) for h, depth in md if depth]
        if len(md) < 3:
            continue
        counts = [depth for _h, depth in md]
        common = max(set(counts), key=counts.count)
        run: list[tuple[st.Heading, int]] = []
        marked: list[tuple[st.Heading | None, int]] = [*md, (None, common)]
        for hd, depth in marked:
            if hd is not None and depth != common and (not run or run[-1][1] == depth):
                run.append((hd, depth))
                continue
            if run:
                a, b = run[0][0], run[-1][0]
                c.at(a.start, b.end, "heading_level_inconsistent", "info",
                     f"同级标题的格式不一致：此处 {len(run)} 个标题用 {'#' * run[0][1]}，其他同级标题用 {'#' * common}。",
                     "统一同级章节的标题级别。")
            run = [(hd, depth)] if hd is not None and depth != common else []
    for ni in st.numbering_issues(hs, contents_end):
        h = ni.heading
        if ni.kind == "numbering_gap":
            msg = f"章节编号跳号：前一个同级编号是 {ni.previous.number}，此处为 {h.number}（缺 {ni.expected}）。"
        else:
            msg = f"章节编号重复：同级编号 {h.number} 出现两次。"
        c.at(h.start, h.end, ni.kind, "warning", msg, "按顺序重新编号，并检查引用这些编号的交叉引用。")
    numbers = {(h.level, h.number) for h in hs}
    dotted = st.dotted_numbers(pt)
    for m in _vsearch(pt, st.XREF):
        if m.group("dotted"):
            ok = m.group("dotted") in dotted
        else:
            n = st.cn_number(m.group("cn")) or 0
            before = pt.view[max(0, m.start() - 4):m.start() + 4]
            if "本章" in before or "本节" in before or "本条" in before:
                ok = any(num == n for _lvl, num in numbers)
            elif m.group("unit") in ("部分", "章"):
                ok = any(num == n and lvl <= 1 for lvl, num in numbers)
            else:
                ok = any(num == n for _lvl, num in numbers)
        if not ok:
            c.view(m.start(), m.end(), "broken_cross_reference", "warning", "交叉引用指向的章节在文中不存在。",
                   "把引用改为实际存在的章节编号或标题。")
    for m in st.PLACEHOLDER_LINK.finditer(pt.text):
        c.at(m.start(), m.end(), "placeholder_link", "warning", "链接是占位符或没有目标地址，读者无法打开。",
             "换成可访问的实际网址（如 SDK 清单、投诉举报网站）。")
    # a named list (SDK清单、双清单) referenced but never given nor linked
    titles: set[str] = set()
    for m in _vsearch(pt, r"《[^》]{0,30}(?:SDK|清单|列表)[^》]{0,10}》"):
        if m.group(0) in titles:
            continue
        titles.add(m.group(0))
        around = pt.view[m.end():m.end() + 80]
        if re.search(r"点击|链接|访问", pt.view[max(0, m.start() - 15):m.start()]):
            continue
        if "http" in around or "www." in around or _has_list_body(pt, m.group(0)):
            continue
        c.view(m.start(), m.end(), "unlinked_list", "warning", f"引用了{m.group(0)}，但正文既未给出该清单，也未给出链接。",
               "在政策中附上该清单，或给出可点击的链接。", "N5")


def _md_level(pt: PolicyText, h: st.Heading) -> int:
    line_start = pt.line_starts[h.line - 1]
    m = re.match(r"\s*(#+)\s", pt.text[line_start:h.start + 1])
    return len(m.group(1)) if m else 0


def _has_list_body(pt: PolicyText, title: str) -> bool:
    return pt.view.count(title) >= 2 and _has(pt, r"SDK名称|名称[:：]") and _has(pt, r"(?:第三方|SDK)?提供方|公司名称")


# --- missing elements (PIPL 17, NDSR 21) -----------------------------------------------------

_RIGHTS = [
    ("access", r"查阅|查询|访问", "查阅"),
    ("copy", r"复制|副本", "复制"),
    ("portability", r"转移|迁移|转至|可携", "转移（可携带）"),
    ("correction", r"更正|修改|修正", "更正"),
    ("supplement", r"补充", "补充"),
    ("deletion", r"删除", "删除"),
    ("restriction", r"限制[^。]{0,8}处理|限制处理|拒绝[^。]{0,8}处理", "限制或拒绝处理"),
    ("withdraw_consent", r"撤回", "撤回同意"),
    ("cancel_account", r"注销", "注销账号"),
]


def _missing(c: _Collector) -> None:
    pt = c.pt
    if not _has(pt, r"有限(?:责任)?公司|股份公司|集团|运营者为|开发者为"):
        c.missing("missing_processor_name", "未写明个人信息处理者（运营者）的名称。", "写明运营者的全称（与营业执照一致）。", "N1", "error")  # noqa: E501
    if not (_has(pt, r"\d{3,4}-?\d{3,4}-?\d{3,4}|400\d{7}") or _has(pt, r"[\w.-]+@[\w-]+\.[\w.]+")):
        c.missing("missing_contact", "未给出联系方式（电话或电子邮箱）。", "写明可直接联系到个人信息保护负责人或部门的电话与邮箱。", "N1", "error")  # noqa: E501
    if not _has(pt, r"目的|用于|为了"):
        c.missing("missing_purposes", "未说明处理个人信息的目的。", "逐项说明每类个人信息的处理目的。", "N1", "error")
    if not _has(pt, r"保存期限|存储期限|保留期限|保存期|存储期|保存时间|保留时间|最短时间|最短时限|所必需的期限|所必需的期间|最短期限"):  # noqa: E501
        c.missing("missing_retention", "未说明个人信息的保存期限。", "逐类写明保存期限，或确定期限的方法。", "N3", "error")
    elif not _has(pt, r"(?:到期|超出|届满|期满|超过)[^。]{0,30}(?:删除|匿名)"):
        c.missing("missing_retention_expiry", "未说明保存期限届满后如何处理个人信息。", "写明到期后删除或匿名化处理。", "N3")
    absent = [zh for _k, pat, zh in _RIGHTS if not _has(pt, pat)]
    if absent:
        c.missing("missing_rights", f"未告知以下权利及其行使方式：{'、'.join(absent)}。",
                  "逐项写明个人的各项权利及行使途径（入口、联系方式）。", "N4")
    if not _has(pt, r"解释说明|[做作]出解释|解释[^。]{0,6}规则"):
        c.missing("missing_explanation_right", "未告知个人有权要求解释说明个人信息处理规则。", "补充要求解释说明的权利及途径。", "R5", "info")  # noqa: E501
    if not _has(pt, r"个人信息保护(?:负责人|专职部门|部门|机构|专员|官)|数据保护官|DPO"):
        c.missing("missing_protection_officer", "未写明个人信息保护负责人或负责部门。", "写明个人信息保护负责人（或部门）及其联系方式。", "G1")  # noqa: E501
    if not _has(pt, r"近亲属|死者|去世|身故"):
        c.missing("missing_deceased_relatives", "未说明用户死亡后其近亲属如何行使权利。", "补充近亲属行使查阅、复制、更正、删除等权利的途径。", "R6", "info")  # noqa: E501
    named_sdks = set(re.findall(r"[A-Za-z\u4e00-\u9fff]{2,8}SDK", pt.view))
    if not _has(pt, r"SDK清单|SDK列表|SDK目录|SDK名称|第三方SDK[^。]{0,20}(?:如下|列表|清单)") and len(named_sdks) >= 3:
        c.missing("incomplete_sdk_list", f"文中提到 {len(named_sdks)} 个 SDK 的名称，但没有逐项写明提供方、收集的个人信息、收集方式与隐私政策链接。",  # noqa: E501
                  "以清单形式列出每个 SDK 的名称、提供方、目的、场景、个人信息字段、收集方式与隐私政策链接。", "N6")
    elif not _has(pt, r"SDK清单|SDK列表|SDK目录|SDK名称|第三方SDK[^。]{0,20}(?:如下|列表|清单)"):
        c.missing("missing_sdk_list", "未列出接入的第三方SDK（名称、提供方、目的、收集的信息、隐私政策链接）。",
                  "附上第三方SDK清单，每项写明名称、提供方、目的、场景、个人信息字段、收集方式与隐私政策链接。", "N6")
    if not (_has(pt, r"已收集[^。]{0,10}清单|收集[^。]{0,6}清单|双清单") and _has(pt, r"共享[^。]{0,10}清单|第三方[^。]{0,10}清单|双清单")):  # noqa: E501
        c.missing("missing_dual_lists", "未提供“双清单”（已收集个人信息清单、与第三方共享个人信息清单）。",
                  "在政策中或以链接提供两份清单。", "N5")
    if not _has(pt, r"未成年|儿童|未满十四|不满十四|14周岁|十四周岁"):
        c.missing("missing_minors", "未说明如何处理未成年人（尤其不满十四周岁儿童）的个人信息。",
                  "补充未成年人章节：监护人同意、儿童个人信息的专门规则。", "M1")
    elif not _has(pt, r"十四|14"):
        c.missing("missing_under_14", "提到未成年人，但未对不满十四周岁的儿童作专门规定。",
                  "说明不满十四周岁儿童的个人信息属于敏感个人信息并须取得监护人同意。", "M1", "info")
    if not _has(pt, r"跨境|境外|出境"):
        c.missing("missing_cross_border", "未说明是否向境外提供个人信息。", "写明个人信息存储地点，以及是否出境、出境的条件。", "X1", "info")  # noqa: E501
    if not _has(pt, r"投诉|举报|起诉|诉讼|仲裁|监管部门"):
        c.missing("missing_complaint_channel", "未提供投诉举报或外部救济途径。", "写明投诉渠道及向监管部门投诉、向法院起诉的途径。", "N1")  # noqa: E501
    if not _reply_deadlines(pt):
        c.missing("missing_reply_deadline", "未承诺答复个人请求或投诉的期限。", "承诺在十五个工作日内答复。", "R10")


_NUM = r"(?P<n>\d{1,3}|[一二三四五六七八九十]{1,3})\s*(?:个)?(?P<unit>工作日|自然日|日|天|个月|月)"


def _reply_deadlines(pt: PolicyText) -> list[tuple[re.Match[str], int, str]]:
    out = []
    for m in _vsearch(pt, r"(?:在|于)?" + _NUM + r"内[^。]{0,30}(?:答复|回复|反馈|处理|响应|予以|给予)"):
        before = pt.view[max(0, m.start() - 40):m.start()]
        before = re.split(r"[。；！？]", before)[-1]
        if any(w in before for w in ("保存", "存储", "删除", "注销后", "冷静期")):
            continue
        n = st.cn_number(m.group("n"))
        if n:
            out.append((m, n, m.group("unit")))
    return out


# --- inconsistencies --------------------------------------------------------------------------

_PHONE = re.compile(r"(?<!\d)(?:400|800)[- ]?\d{3}[- ]?\d{4}(?!\d)|(?<!\d)0\d{2,3}-\d{7,8}(?!\d)")


def _inconsistencies(c: _Collector) -> None:
    pt = c.pt
    phones: dict[str, list[re.Match[str]]] = {}
    for m in _PHONE.finditer(pt.view):
        ctx = pt.view[max(0, m.start() - 25):m.start()]
        if not re.search(r"电话|客服|热线|拨打|致电|联系", ctx):
            continue
        phones.setdefault(re.sub(r"\D", "", m.group(0)), []).append(m)
    hotline = {k: v for k, v in phones.items() if k.startswith(("400", "800"))}
    if len(hotline) >= 2:
        keys = list(hotline)
        first = hotline[keys[0]][0].group(0)
        for k in keys[1:]:
            m = hotline[k][0]
            c.view(m.start(), m.end(), "contact_inconsistent", "warning",
                   f"客服电话前后不一致：此处为 {m.group(0)}，别处为 {first}。",
                   "核实有效号码，全文统一为一个；确有多个时分别说明用途。", "N1")
    for m in _PHONE.finditer(pt.view):
        if m.group(0).startswith("0") and len(re.sub(r"\D", "", m.group(0))) == 11 and m.group(0)[:4] in ("0755", "0756"):
            pass
    # a statement that nothing is shared against named sharing elsewhere
    for m in _vsearch(pt, r"(?:不会|不)(?:主动)?(?:(?:与|向)[^。，,]{0,10}?)?(?:共享|转让|对外提供|提供)[^。；]{0,30}"):
        sb, se = pt.sentence_at(m.start(), m.end())
        sent = pt.view[sb:se]
        if re.search(r"除|但|例外|除非|以下|未经|未征得|未获得|没有|不经|非法|出售", sent):
            continue
        if not re.search(r"目前|任何|均不|绝不|不会主动", sent):
            continue
        other = (re.search(r"(?:将|会|可能)(?:您的)?[^。]{0,30}(?:提供给|共享给|告知|分享给|共享)[^。]{0,20}(?:公司|机构|合作伙伴|商家|第三方|关联)",  # noqa: E501
                           pt.view[se:])
                 or re.search(r"(?:第三方|合作)[^。]{0,12}(?:公司|机构|伙伴|商家)[^。]{0,30}(?:使用|获取|接收|知悉)[^。]{0,10}(?:信息|手机|地址|姓名)",  # noqa: E501
                              pt.view[se:]))
        if other:
            c.view(m.start(), m.end(), "summary_contradicts_body", "warning",
                   "此处称不共享个人信息，但正文另有向第三方提供个人信息的情形。",
                   "改写概述，如实说明共享的对象、目的与信息种类。", "N1")
            break
    # two different menu paths to one setting
    paths: dict[str, set[str]] = {}
    first_at: dict[str, re.Match[str]] = {}
    for m in _vsearch(pt, r"“?我的(?:\s*[-—–一>＞→/]+\s*[\u4e00-\u9fffA-Za-z]{2,10}){1,4}"):
        segs = [s for s in re.split(r"\s*[-—–一>＞→/]+\s*", m.group(0).strip("“")) if s]
        if len(segs) < 2:
            continue
        key = segs[-1]
        paths.setdefault(key, set()).add("-".join(segs))
        if len(paths[key]) == 2 and key not in first_at:
            first_at[key] = m
    for key, m in first_at.items():
        c.view(m.start(), m.end(), "path_inconsistent", "info",
               f"同一设置“{key}”在文中给出了不同的入口路径：{'、'.join(sorted(paths[key]))}。",
               "核对应用内的实际路径，全文统一。")


# --- conflicts with the law ------------------------------------------------------------------

_CONFLICTS: list[tuple[str, str | None, str, str, str, str]] = [
    (r"继续(?:使用|访问|登录)[^。；]{0,40}(?:即|则|就|将)?(?:视为|表示|代表|意味着|即表示|即代表)[^。；]{0,20}(?:同意|接受|认可)",
     "C5", "continued_use_acceptance", "error",
     "把“继续使用”视为接受变更：处理目的、方式或个人信息种类变更的，应重新取得个人同意。",
     "删除该表述；重大变更时以弹窗等方式告知变更内容，并重新取得同意。"),
    (r"(?:如果|若|如)(?:您|你)?不同意本(?:隐私权?|个人信息保护)?(?:政策|协议|指引)[^。]{0,40}(?:停止使用|无法使用|不能使用|不要使用)",
     "C9", "take_it_or_leave_it", "warning",
     "“不同意就不能使用”：不得因个人不同意处理其非必要个人信息而拒绝提供基本业务功能。",
     "区分基本业务功能与扩展业务功能；拒绝扩展功能的同意不影响基本功能。"),
    (r"(?:视为|视同|默认)[^。，,；]{0,30}?(?:同意|授权|接受)(?!书)",
     "C3", "deemed_consent", "error",
     "推定同意（“视为同意”）：同意应由个人在充分知情下主动、明确作出，不能推定或默认。",
     "改为在具体场景以主动勾选或点击的方式取得同意。"),
    (r"您在此(?:同意|授权)",
     "C4", "bundled_consent", "error",
     "在政策正文中直接宣称个人“在此同意”：向他人提供个人信息等事项须另行取得单独同意，阅读政策不等于同意。",
     "删去“您在此同意”，在具体场景以弹窗等方式取得单独同意。"),
    (r"(?:同意|接受)本(?:隐私)?政策[^。]{0,20}(?:即|视为|意味着|表示)[^。]{0,20}(?:同意|授权)",
     "C4", "bundled_consent", "error",
     "捆绑同意：同意隐私政策不能代替对敏感个人信息、向他人提供等事项的单独同意。",
     "对敏感个人信息、共享、公开、出境分别取得单独同意。"),
    (r"(?:向您)?(?:发送|推送)[^。]{0,15}(?:商业广告|营销|促销|推广)(?:信息|活动|短信)?",
     "C10", "marketing_in_policy", "warning",
     "在隐私政策中一并取得商业营销推送的同意：营销推送应单独征得同意，并提供便捷的拒绝方式。",
     "营销推送另行征得同意，并写明退订或关闭的方法。"),
    (r"去标识化[^。]{0,40}(?:无法识别|不能识别|无法复原|无法重新识别|不再属于个人信息|有权使用|用于[^。]{0,10}(?:共享|商业))",
     "V1", "deidentified_as_anonymous", "warning",
     "把去标识化信息当作匿名信息处理：去标识化信息仍属个人信息（个人信息保护法第七十三条），共享与使用仍须合法依据。",
     "区分去标识化与匿名化；向他人提供去标识化信息仍须告知并取得同意。"),
    (r"(?:一直|永久|长期|无限期)(?:保存|保留|存储)",
     "T1", "indefinite_retention", "warning",
     "无期限保存个人信息：保存期限应为实现处理目的所必要的最短时间。",
     "写明具体保存期限，以及期满后删除或匿名化处理。"),
    (r"有权[^。]{0,20}(?:用户数据库|用户数据|您的信息)[^。]{0,20}(?:商业上的利用|商业利用|商业化)",
     "C1", "no_legal_basis", "error",
     "声称可对用户数据作商业利用而未说明合法依据（个人信息保护法第十三条）。",
     "删除该表述，或写明具体目的、信息种类与取得同意的方式。"),
]


def _conflicts(c: _Collector) -> None:
    pt = c.pt
    marketing_optout = _has(pt, r"退订|取消订阅|关闭[^。]{0,10}(?:推送|营销|广告)|拒绝[^。]{0,10}(?:推送|营销|广告)")
    for pattern, rule, kind, sev, msg, sug in _CONFLICTS:
        for m in _vsearch(pt, pattern):
            sb, se = pt.sentence_at(m.start(), m.end())
            sent = pt.view[sb:se]
            if kind == "deemed_consent" and (re.search(r"权限|开启|勾选|点击|不视为|不会视为|第三方获取|监护人", sent)
                                             or "撤回" in m.group(0) or "收回" in m.group(0)):
                continue
            if kind == "no_legal_basis" and "匿名化" in sent:
                continue
            if kind == "indefinite_retention" and re.search(r"使用[^。]{0,20}时|期间", sent):
                continue
            if kind == "marketing_in_policy" and (marketing_optout or re.search(
                    r"单独|另行|退订|关闭|拒绝|同意|不想|不希望|取消|个性化|推荐", sent)):
                continue
            if kind == "take_it_or_leave_it" and re.search(r"基本|必要|扩展|不影响", sent):
                continue
            if kind == "deidentified_as_anonymous" and re.search(r"去标识化\s*[：:]|去标识化(?:是)?指", pt.view[max(0, m.start() - 2):m.end()]):  # noqa: E501
                continue
            c.view(m.start(), m.end(), kind, sev, msg, sug, rule)
    # permissions listed without a function
    perm = r"(?:位置|定位|相机|摄像头|相册|图片库|麦克风|通讯录|短信|电话|存储|日历|蓝牙|剪切板|悬浮窗)"
    for m in _vsearch(pt, perm + r"(?:、" + perm + r"){2,}[^。]{0,10}(?:权限|访问权限)"):
        sb, se = pt.sentence_at(m.start(), m.end())
        sent = pt.view[sb:se]
        names = set(re.findall(perm, m.group(0)))
        unused = [n for n in names if pt.view.count(n + "权限") + pt.view.count(n + "(") <= 1
                  and not re.search(n + r"[^。]{0,20}(?:用于|以便|为了)", pt.view.replace(sent, ""))]
        if re.search(r"关闭|默认|拒绝|撤回|不会|停止|取消", sent) or not re.search(r"开启|访问|申请|获取|调用", sent):
            continue
        if unused and not re.search(r"用于|以便|为了|实现", sent[: sent.find(m.group(0))]):
            c.view(m.start(), m.end(), "permission_without_function", "warning",
                   f"列出的权限中，{'、'.join(sorted(unused))}在文中找不到使用它的功能。",
                   "删去没有功能对应的权限；其余权限逐项写明对应的功能与申请时机。", "P1")
    # permissions requested at registration, first launch or update rather than when a function is used
    for m in _vsearch(pt, r"(?:首次(?:注册|启动|打开|运行)|(?:启动|打开)[^。，]{0,12}时|更新[^。，]{0,10}版本时)[^。]{0,40}?权限"):  # noqa: E501
        sb, se = pt.sentence_at(m.start(), m.end())
        sent = pt.view[sb:se]
        if re.search(r"不会|不再|无需|具体使用|使用到|需要时|用时|才会", sent):
            continue
        c.view(m.start(), m.end(), "permission_timing", "warning",
               "在注册、首次启动或更新时申请权限，而不是在使用相应功能时申请。",
               "改为在用户开始使用需要该权限的功能时申请。", "P1")
    # deadlines over the cap
    for m, n, unit in _reply_deadlines(pt):
        days = n * 30 if "月" in unit else n
        sb, se = pt.sentence_at(m.start(), m.end())
        ctx = pt.view[max(0, sb - 120):se]
        complaint = re.search(r"投诉|举报|意见|建议|疑问|咨询", ctx) and not re.search(r"请求|申请|行使", pt.view[sb:se])
        if complaint:
            over = days > 15 if unit == "工作日" else days > 21
            cap, fix = "十五个工作日（投诉、举报与咨询）", "承诺在十五个工作日内答复投诉、举报与咨询。"
        else:
            over = days > 30 if unit != "工作日" else days > 22
            cap, fix = "三十天（个人行使权利的请求）", "承诺在三十天内（最好十五个工作日内）答复。"
        if over:
            c.view(m.start(), m.end(), "deadline_over_cap", "error",
                   f"答复期限“{m.group(0)[:20]}”超过上限：{cap}。", fix, "R10")
    for m in _vsearch(pt, r"注销[^。]{0,40}" + _NUM + r"内"):
        n = st.cn_number(m.group("n")) or 0
        days = n * 30 if "月" in m.group("unit") else n
        if (m.group("unit") == "工作日" and days > 15) or (m.group("unit") != "工作日" and days > 21):
            c.view(m.start(), m.end(), "deadline_over_cap", "error", "注销账号的完成期限超过十五个工作日。",
                   "承诺在十五个工作日内完成注销。", "R9")


DETECTORS: tuple[Callable[[_Collector], None], ...] = (_text_defects, _structure, _missing, _inconsistencies, _conflicts)


def analyze_text(text: str, file: str = "<text>") -> list[Finding]:
    """Every finding about one decoded policy text, in text order (missing elements first)."""
    c = _Collector(PolicyText.of(text, file))
    for detect in DETECTORS:
        detect(c)
    seen: set[tuple[str, int, int]] = set()
    out: list[Finding] = []
    for f in sorted(c.out, key=lambda f: (f.start, f.end, f.kind)):
        key = (f.kind, f.start, f.end)
        if key in seen:
            continue
        seen.add(key)
        prev = next((p for p in reversed(out) if p.kind == f.kind), None)
        if (prev is not None and f.kind in _MERGED and text[prev.end:f.start].count("\n") <= 1
                and prev.start < f.start and f.end - prev.start < 2000):
            out.remove(prev)
            f = Finding(f.file, f.rule, f.kind, f.severity, prev.line, prev.start, f.end,
                        text[prev.start:f.end], prev.message, prev.suggestion)
        out.append(f)
    return sorted(out, key=lambda f: (f.start, f.end, f.kind))


#: kinds whose findings on the same or the next line are one defect (one finding spanning them)
_MERGED = frozenset({"wp_artefact", "corrupted_characters", "reviewer_comment"})
