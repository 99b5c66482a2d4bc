"""Where a published policy text and a declaration disagree (``yinsi policy analyze --against``)."""

from __future__ import annotations

import re

from yinsi.analyze.draft import draft_declaration
from yinsi.analyze.findings import Finding
from yinsi.analyze.text import PolicyText
from yinsi.domain.policy import Declaration
from yinsi.domain.taxonomy import taxonomy


def _locate(pt: PolicyText, quote: str | None) -> tuple[int, int]:
    """The offsets of a draft quote in the text as read (quotes drop only line breaks and ** marks)."""
    if not quote:
        return 0, 0
    pattern = r"(?:[\r\n]|\*\*)*".join(re.escape(c) for c in quote[:60])
    m = re.search(pattern, pt.text)
    return (m.start(), m.end()) if m else (0, 0)


def compare_with_declaration(text: str, file: str, decl: Declaration) -> list[Finding]:
    """Findings for each point where the text says something the declaration does not, or the reverse."""
    pt = PolicyText.of(text, file)
    draft = draft_declaration(text, file).declaration
    out: list[Finding] = []

    def add(kind: str, severity: str, message: str, suggestion: str, quote: str | None = None,
            rule: str | None = None) -> None:
        s, e = _locate(pt, quote)
        out.append(Finding(file, rule, kind, severity, pt.line_of(s), s, e, text[s:e], message, suggestion))

    tax = taxonomy()
    # operator
    name = draft["controller"]["legal_name"]["value"]
    declared = decl.controller.legal_name.value
    if name and declared and re.sub(r"\W", "", name) != re.sub(r"\W", "", declared) and declared not in pt.view:
        add("against_controller", "error", f"文本中的运营者“{name}”与声明中的“{declared}”不一致。",
            "核对运营者名称，使文本与声明一致。", draft["controller"]["legal_name"]["source"].get("quote"), "N1")
    # contacts
    text_phones = {re.sub(r"\D", "", c["value"]): c for c in draft["controller"]["contacts"] if c["kind"] == "phone"}
    decl_phones = {re.sub(r"\D", "", c.value or ""): c for c in decl.controller.contacts if c.kind == "phone" and c.value}
    for k, c in text_phones.items():
        if k not in decl_phones:
            add("against_contact", "warning", f"文本给出的电话 {c['value']} 不在声明的联系方式中。",
                "在声明中补充该号码，或从文本中删去失效号码。", c["source"]["quote"], "N1")
    for k, dc in decl_phones.items():
        if k not in text_phones and k not in re.sub(r"\D", "", pt.view):
            add("against_contact", "warning", f"声明中的电话 {dc.value} 在文本中没有出现。", "在文本中写明该联系方式，或从声明中删去。",  # noqa: E501
                rule="N1")
    # reply deadline
    days = draft["response_time"]["days"]
    if days is not None and decl.response_time.days is not None and days != decl.response_time.days:
        add("against_deadline", "error", f"文本承诺 {days} 天内答复，声明为 {decl.response_time.describe()}。",
            "统一答复期限；以较短者为准。", draft["response_time"]["source"].get("quote"), "R10")
    # collected items
    text_items: dict[str, str] = {}
    for f in draft["features"]:
        for c in f.get("collections", []):
            text_items.setdefault(c["item"], c["source"].get("quote", ""))
    decl_items = set(decl.collected_items())
    for item, quote in text_items.items():
        if item not in decl_items:
            add("against_undeclared_item", "warning", f"文本提到收集“{tax.items[item].name}”，声明中没有任何功能收集它。",
                "在声明的相应功能中补充该个人信息项，或改正文本。", quote, "N1")
    for item in sorted(decl_items):
        if item in text_items or item not in tax.items:
            continue
        words = [w for w in re.split(r"[/（）()、，,]", tax.items[item].name) if len(w) >= 2]
        if not any(w in pt.view for w in words):
            add("against_unstated_item", "warning", f"声明中收集“{tax.items[item].name}”，文本没有告知。",
                "在文本中告知该个人信息项及其目的，或从声明中删去。", rule="N1")
    # permissions
    text_perms = {p["permission"]: p["source"]["quote"] for f in draft["features"] for p in f.get("permissions", [])}
    decl_perms = {p.permission for f in decl.features for p in f.permissions}
    for p, quote in text_perms.items():
        if p not in decl_perms:
            add("against_permission", "warning", f"文本提到“{tax.permissions[p].name}”权限，声明中没有功能使用它。",
                "在声明中把该权限归入使用它的功能，或从文本中删去。", quote, "P1")
    for p in sorted(decl_perms - set(text_perms)):
        if p in tax.permissions and tax.permissions[p].name.split("/")[0] not in pt.view:
            add("against_permission", "warning", f"声明中申请“{tax.permissions[p].name}”权限，文本没有说明。",
                "在文本中说明该权限对应的功能与目的。", rule="P1")
    # rights
    text_rights = {r["right"]: r["source"]["quote"] for r in draft["rights"]}
    for r in decl.rights:
        if r.right.value not in text_rights:
            add("against_right", "warning", f"声明中提供的权利“{r.right.value}”在文本中没有告知。", "在文本中告知该权利及行使方式。",  # noqa: E501
                rule="N4")
    # continued use, cross-border
    if draft["policy_changes"]["continued_use_is_acceptance"] and not decl.policy_changes.continued_use_is_acceptance:
        add("against_policy_changes", "error", "文本称继续使用即视为接受变更，声明却不是这样。", "删去文本中的该表述。",
            draft["policy_changes"]["source"].get("quote"), "C5")
    cb = draft["storage"]["cross_border"]
    if cb != "unstated" and decl.storage.cross_border != "unstated" and cb != decl.storage.cross_border:
        add("against_cross_border", "warning", f"文本的出境说明（{cb}）与声明（{decl.storage.cross_border}）不一致。",
            "核实是否向境外提供个人信息，使两者一致。", draft["storage"]["source"].get("quote"), "X1")
    sdk_text = {s["name"] for s in draft["sdks"]}
    for s in decl.sdks:
        if s.name not in pt.view and s.name not in sdk_text:
            add("against_sdk", "warning", f"声明中的 SDK“{s.name}”在文本中没有列出。", "在文本的 SDK 清单中列出该 SDK。", rule="N6")  # noqa: E501
    return sorted(out, key=lambda f: (f.start, f.kind))


