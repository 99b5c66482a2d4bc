"""What changed between two policy versions, in plain Chinese for the person (隐私政策变更说明).

:func:`~yinsi.domain.changes.diff_declarations` lists every difference by element path; a person needs
sentences. :func:`describe_changes` groups the differences by the element they concern (a function, a
recipient, a right, the operator, the SDK list …), writes one sentence per difference with the names the
declarations use, and orders the groups major changes first (by the lowest of the six criteria met, PIPL 14),
then the rest. Version metadata (labels, dates, file names) is left out: it changes every time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from yinsi.domain.changes import CRITERIA_ZH, Change, PolicyDiff
from yinsi.domain.policy import RIGHT_ZH, Declaration, RightKind
from yinsi.domain.taxonomy import LEGAL_BASIS_ZH, LegalBasis, taxonomy
from yinsi.render.labels import (
    DISPUTE_KIND_ZH,
    FEATURE_KIND_ZH,
    RECIPIENT_ACTION_ZH,
    SECURITY_MEASURE_ZH,
)

#: Paths that change with every version and say nothing about the processing.
_SKIPPED = re.compile(r"^(version\.|source_file$)")

_SEGMENT = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")

_FEATURE_FIELDS = {
    "name": "名称", "purposes": "处理目的", "kind": "功能类型", "legal_basis": "处理依据", "sdks": "接入的第三方SDK",
    "separate_consent": "单独同意", "sensitive_notice": "敏感个人信息告知", "refusal_impact": "拒绝提供的影响",
    "personalized": "个性化推荐", "opt_out": "关闭方式", "collects_nothing": "是否收集个人信息",
}
_RECIPIENT_FIELDS = {
    "name": "名称", "kind": "类型", "action": "处理方式", "contact": "联系方式", "items": "提供的个人信息",
    "purpose": "目的", "method": "方式", "legal_basis": "依据", "separate_consent": "单独同意",
    "contract": "委托合同", "abroad": "是否位于境外",
}
_SDK_FIELDS = {"name": "名称", "provider": "提供方", "purpose": "目的", "scenario": "使用场景",
               "items": "收集的个人信息", "collection_method": "收集方式", "policy_url": "隐私政策链接"}
_TOPIC_OF_ROOT = {
    "controller": "个人信息处理者", "disputes": "争议解决与投诉途径", "sdks": "第三方SDK", "storage": "存储地点与出境",
    "retention": "保存期限", "response_time": "答复期限", "account_cancellation": "注销账号",
    "consent_exceptions": "无需征得同意的情形", "security_measures": "安全措施", "incident_notice": "安全事件告知",
    "policy_changes": "政策更新方式", "automated_decisions": "自动化决策", "minors": "未成年人保护", "app": "应用信息",
}


@dataclass
class ChangeGroup:
    """The changes to one element, described for a person."""

    topic: str
    criteria: list[int] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    order: int = 0

    @property
    def major(self) -> bool:
        return bool(self.criteria)

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "major": self.major, "criteria": self.criteria,
                "criteria_zh": [CRITERIA_ZH[k] for k in self.criteria], "changes": self.sentences}


def _segments(path: str) -> list[str]:
    return [m.group(1) if m.group(1) is not None else m.group(2) for m in _SEGMENT.finditer(path)]


def _short(value: Any, limit: int = 80) -> str:
    if value is None:
        return "（无）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        text = "；".join(_short(v, limit) for v in value)
    elif isinstance(value, dict):
        text = str(value.get("value") or value.get("name") or value.get("description") or value.get("text")
                   or value.get("basis") or "")
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _item(item_id: str) -> str:
    tax = taxonomy()
    if item_id not in tax.items:
        return f"「{item_id}」"
    return f"「{tax.item(item_id).name}」" + ("（敏感个人信息）" if tax.is_sensitive(item_id) else "")


def _permission(pid: str) -> str:
    tax = taxonomy()
    return f"「{tax.permission(pid).name}」权限" if pid in tax.permissions else f"「{pid}」权限"


def _basis(value: Any) -> str:
    try:
        return LEGAL_BASIS_ZH[LegalBasis(value)]
    except ValueError:
        return str(value)


def _verb(c: Change, added: str, removed: str, changed: str) -> str:
    return {"added": added, "removed": removed, "changed": changed}[c.kind]


def _feature_sentence(c: Change, segs: list[str], old: Declaration, new: Declaration) -> str:
    fid = segs[1]
    f = new.feature(fid) or old.feature(fid)
    name = f.name if f else fid
    if len(segs) == 2:
        if c.kind == "added" and f is not None:
            items = "、".join(_item(i) for i in f.item_ids())
            return (f"新增{FEATURE_KIND_ZH.get(f.kind.value, '')}「{name}」" + (f"，收集{items}" if items else ""))
        return f"不再提供功能「{name}」" if c.kind == "removed" else f"功能「{name}」有调整"
    what = segs[2]
    if what == "collections" and len(segs) > 3:
        item = _item(segs[3])
        return _verb(c, f"新增收集{item}", f"不再收集{item}", f"收集{item}的方式或是否必须有调整")
    if what == "permissions" and len(segs) > 3:
        perm = _permission(segs[3])
        purpose = c.after.get("purpose") if isinstance(c.after, dict) else c.after
        return _verb(c, f"新增申请{perm}" + (f"（用途：{_short(purpose)}）" if purpose else ""),
                     f"不再申请{perm}", f"{perm}的用途调整为：{_short(c.after)}")
    if what == "legal_basis":
        return f"处理依据由「{_basis(c.before)}」改为「{_basis(c.after)}」"
    if what == "kind":
        return (f"由{FEATURE_KIND_ZH.get(str(c.before), str(c.before))}改为"
                f"{FEATURE_KIND_ZH.get(str(c.after), str(c.after))}")
    if what == "purposes":
        return f"处理目的调整为：{_short(c.after, 160)}"
    if what == "name":
        return f"名称由「{_short(c.before)}」改为「{_short(c.after)}」"
    if what == "sdks":
        return f"接入的第三方SDK调整为：{_sdk_names(c.after, new)}"
    if what == "separate_consent":
        return "改为单独征求您的同意" if c.after is True else "单独同意的说明有调整"
    label = _FEATURE_FIELDS.get(what, what)
    return _verb(c, f"新增{label}说明：{_short(c.after)}", f"删除{label}说明", f"{label}调整为：{_short(c.after)}")


def _sdk_names(ids: Any, decl: Declaration) -> str:
    if not isinstance(ids, list) or not ids:
        return "（无）"
    names = {s.id: s.name for s in decl.sdks}
    return "、".join(f"「{names.get(i, i)}」" for i in ids)


def _recipient_sentence(c: Change, segs: list[str], old: Declaration, new: Declaration) -> str:
    rid = segs[1]
    r = new.recipient(rid) or old.recipient(rid)
    name = r.name if r else rid
    if len(segs) == 2:
        if c.kind == "added" and r is not None:
            items = "、".join(_item(i) for i in r.items)
            return (f"新增接收方「{name}」（{RECIPIENT_ACTION_ZH.get(r.action, r.action)}）"
                    + (f"，提供{items}" if items else ""))
        return f"不再向「{name}」提供个人信息" if c.kind == "removed" else f"接收方「{name}」有调整"
    what = segs[2]
    if what == "items":
        return f"向「{name}」提供的个人信息调整为：" + ("、".join(_item(i) for i in c.after or []) or "（无）")
    if what == "legal_basis":
        return f"向「{name}」提供的依据由「{_basis(c.before)}」改为「{_basis(c.after)}」"
    label = _RECIPIENT_FIELDS.get(what, what)
    return _verb(c, f"接收方「{name}」新增{label}：{_short(c.after)}", f"接收方「{name}」删除{label}说明",
                 f"接收方「{name}」的{label}调整为：{_short(c.after)}")


def _sdk_sentence(c: Change, segs: list[str], old: Declaration, new: Declaration) -> str:
    sid = segs[1] if len(segs) > 1 else ""
    s = next((x for x in (*new.sdks, *old.sdks) if x.id == sid), None)
    name = s.name if s else sid
    if len(segs) <= 2:
        provider = f"（提供方：{s.provider}）" if s is not None and s.provider else ""
        return _verb(c, f"新增第三方SDK「{name}」{provider}", f"移除第三方SDK「{name}」", f"第三方SDK「{name}」有调整")
    label = _SDK_FIELDS.get(segs[2], segs[2])
    return f"第三方SDK「{name}」的{label}" + _verb(c, f"新增：{_short(c.after)}", "已删除", f"调整为：{_short(c.after)}")


def _right_sentence(c: Change, segs: list[str]) -> str:
    try:
        right = RIGHT_ZH[RightKind(segs[1])]
    except (ValueError, IndexError):
        right = segs[1] if len(segs) > 1 else ""
    if len(segs) == 2:
        return _verb(c, f"新增说明「{right}」权利", f"不再单独说明「{right}」权利", f"「{right}」权利有调整")
    what = segs[2]
    if what == "channels":
        v = c.after if c.kind == "added" else c.before
        return f"「{right}」" + _verb(c, f"新增行使途径：{_short(v)}", f"不再提供途径：{_short(v)}", "的行使途径有调整")
    if what == "reply_time":
        return f"「{right}」的答复期限有调整"
    if what == "conditions":
        return f"「{right}」的条件" + _verb(c, f"新增：{_short(c.after)}", "说明已删除", f"调整为：{_short(c.after)}")
    return f"「{right}」权利的说明有调整"


def _sentence(c: Change, segs: list[str], old: Declaration, new: Declaration) -> str:
    root = segs[0]
    if root == "features" and len(segs) > 1:
        return _feature_sentence(c, segs, old, new)
    if root == "recipients" and len(segs) > 1:
        return _recipient_sentence(c, segs, old, new)
    if root == "sdks":
        return _sdk_sentence(c, segs, old, new)
    if root == "rights" and len(segs) > 1:
        return _right_sentence(c, segs)
    tail = segs[1] if len(segs) > 1 else ""
    v = c.after if c.kind != "removed" else c.before
    if root == "controller":
        if tail == "legal_name":
            return f"个人信息处理者由「{_short(c.before)}」变更为「{_short(c.after)}」"
        if tail in ("registered_address", "office_address"):
            label = "注册地址" if tail == "registered_address" else "办公地址"
            return f"{label}变更为：{_short(c.after)}" if c.kind != "removed" else f"不再载明{label}"
        if tail == "contacts":
            return _verb(c, f"新增联系方式：{_short(v)}", f"删除联系方式：{_short(v)}", f"联系方式调整为：{_short(v)}")
        if tail == "protection_officer":
            return "个人信息保护负责人及其联系方式有调整"
    if root == "disputes":
        kind = DISPUTE_KIND_ZH.get(str(v.get("kind")), "") if isinstance(v, dict) else ""
        return _verb(c, f"新增途径：{kind}（{_short(v)}）", f"删除途径：{kind}（{_short(v)}）", f"途径调整为：{_short(v)}")
    if root == "account_cancellation":
        if tail == "prerequisites":
            return _verb(c, f"新增注销前提条件：{_short(v)}", f"取消注销前提条件：{_short(v)}", "注销前提条件有调整")
        if tail == "channels":
            return _verb(c, f"新增注销途径：{_short(v)}", f"不再提供注销途径：{_short(v)}", "注销途径有调整")
        if tail == "effects":
            return f"注销后果的说明调整为：{_short(c.after, 160)}"
        return "注销账号的规则有调整"
    if root == "response_time":
        if tail == "days" and c.kind == "changed":
            return f"答复期限由 {c.before} 天改为 {c.after} 天"
        return "答复期限的计算方式有调整"
    if root == "retention":
        text = v.get("determination") if isinstance(v, dict) else (c.after if c.kind != "removed" else None)
        return _verb(c, f"新增保存期限规则：{_short(text)}", f"删除保存期限规则：{_short(text)}",
                     f"保存期限的说明调整为：{_short(text)}")
    if root == "storage":
        if tail == "location":
            return f"存储地点调整为：{_short(c.after)}"
        return "向境外提供个人信息的说明有调整"
    if root == "consent_exceptions":
        return _verb(c, f"新增情形：{_short(v)}", f"删除情形：{_short(v)}", f"情形调整为：{_short(v)}")
    if root == "security_measures":
        kind = SECURITY_MEASURE_ZH.get(str(v.get("measure")), "") if isinstance(v, dict) else ""
        return _verb(c, f"新增{kind}措施", f"删除{kind}措施", f"安全措施调整为：{_short(v)}")
    topic = _TOPIC_OF_ROOT.get(root, root)
    return _verb(c, f"{topic}新增内容：{_short(c.after)}", f"{topic}删除内容：{_short(c.before)}",
                 f"{topic}调整为：{_short(c.after)}")


def _topic(segs: list[str], old: Declaration, new: Declaration) -> str:
    root = segs[0]
    if root == "features" and len(segs) > 1:
        f = new.feature(segs[1]) or old.feature(segs[1])
        return f"功能「{f.name if f else segs[1]}」"
    if root == "recipients":
        return "个人信息的共享、转让与公开披露"
    if root == "rights":
        return "您的权利及行使方式"
    return _TOPIC_OF_ROOT.get(root, root)


def describe_changes(diff: PolicyDiff, old: Declaration, new: Declaration) -> list[ChangeGroup]:
    """The diff as groups of Chinese sentences, major changes first (then in the declaration's order)."""
    groups: dict[str, ChangeGroup] = {}
    for n, c in enumerate(diff.changes):
        if _SKIPPED.search(c.path):
            continue
        segs = _segments(c.path)
        if not segs:
            continue
        topic = _topic(segs, old, new)
        g = groups.get(topic)
        if g is None:
            g = groups[topic] = ChangeGroup(topic, order=n)
        for k in c.criteria:
            if k not in g.criteria:
                g.criteria.append(k)
        sentence = _sentence(c, segs, old, new)
        if sentence not in g.sentences:
            g.sentences.append(sentence)
    out = list(groups.values())
    for g in out:
        g.criteria.sort()
    return sorted(out, key=lambda g: (not g.major, min(g.criteria) if g.criteria else 9, g.order))


def summary(diff: PolicyDiff, groups: Iterable[ChangeGroup]) -> str:
    """One paragraph: whether the change is major, which criteria, and what must be agreed to again."""
    groups = list(groups)
    if not groups:
        return f"{diff.old_label} 版与 {diff.new_label} 版在个人信息处理方面没有差别。"
    head = f"从 {diff.old_label} 版到 {diff.new_label} 版，共 {len(groups)} 方面有变化"
    if diff.major:
        crits = "；".join(CRITERIA_ZH[k] for k in diff.criteria_met())
        head += f"，属于重大变更（{crits}）"
    else:
        head += "，不属于重大变更"
    parts = [head + "。"]
    if diff.reconsent:
        parts.append("因变更涉及以下处理，我们须重新征得您的同意（PIPL 14）："
                     + "；".join(r.reason for r in diff.reconsent) + "。")
    return "".join(parts)
