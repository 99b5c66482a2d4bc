"""Diff of two declaration versions (隐私政策变更), classified into the six major-change criteria, and the
consents that must be renewed (PIPL 14, RULES C5).

The six criteria are those four of the five seed policies list (重大变更):
1 service model: purpose, PI types, use;  2 ownership / organisation;  3 main recipients of sharing,
transfer or disclosure;  4 the person's rights and how to exercise them;  5 the responsible department,
contact and complaint channels;  6 a PIA report showing high risk.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from yinsi.domain.policy import (
    CHANNEL_KIND_ZH,
    RIGHT_ZH,
    Channel,
    DayUnit,
    Declaration,
    Feature,
    Recipient,
    ReplyTime,
    RightKind,
)
from yinsi.domain.taxonomy import taxonomy

CRITERIA_ZH: dict[int, str] = {
    1: "服务模式发生重大变化（处理目的、个人信息类型、使用方式）",
    2: "所有权结构、组织架构等方面发生重大变化",
    3: "个人信息共享、转让或公开披露的主要对象发生变化",
    4: "个人信息权利及其行使方式发生重大变化",
    5: "负责个人信息安全的责任部门、联络方式及投诉渠道发生变化",
    6: "个人信息安全影响评估报告表明存在高风险",
}

ChangeKind = Literal["added", "removed", "changed"]

_KEYS: dict[str, Callable[[dict[str, Any]], str]] = {
    "features": lambda d: str(d["id"]),
    "sdks": lambda d: str(d["id"]),
    "recipients": lambda d: str(d["id"]),
    "collections": lambda d: str(d["item"]),
    "permissions": lambda d: str(d["permission"]),
    "sensitive_notice": lambda d: ",".join(d["items"]),
    "rights": lambda d: str(d["right"]),
    "channels": lambda d: f"{d['kind']}:{d.get('value') or ''}",
    "contacts": lambda d: f"{d['kind']}:{d.get('value') or ''}",
    "retention": lambda d: ",".join(d["items"]),
    "security_measures": lambda d: f"{d['measure']}:{','.join(d['items'])}",
    "prerequisites": lambda d: str(d["description"]),
    "disputes": lambda d: f"{d['kind']}:{d['value']}",
    "collection": lambda d: str(d["text"]),
    "sharing": lambda d: str(d["text"]),
    "automated_decisions": lambda d: str(d["purpose"]),
}

_SOURCE_FIELDS = {"source", "legal_basis_source", "kind_source"}

# Path patterns -> criteria. First match wins; order from specific to general.
_CRITERIA_RULES: list[tuple[re.Pattern[str], list[int]]] = [
    (re.compile(r"^controller\.(legal_name|registered_address|office_address)"), [2]),
    (re.compile(r"^controller\.(contacts|protection_officer)"), [5]),
    (re.compile(r"^disputes"), [5]),
    (re.compile(r"^features\[[^\]]+\]\.sdks"), [1, 3]),
    (re.compile(r"^features"), [1]),
    (re.compile(r"^(sdks|recipients)"), [3]),
    (re.compile(r"^consent_exceptions\.collection"), [1]),
    (re.compile(r"^consent_exceptions\.sharing"), [3]),
    (re.compile(r"^storage\.(cross_border|mechanism)"), [3]),
    (re.compile(r"^(storage|retention|automated_decisions|app\.product_types)"), [1]),
    (re.compile(r"^(rights|account_cancellation|response_time)"), [4]),
]


@dataclass(frozen=True)
class Change:
    """One difference between two versions."""

    path: str
    kind: ChangeKind
    before: Any
    after: Any
    criteria: list[int]

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "before": self.before, "after": self.after,
                "criteria": self.criteria}


@dataclass(frozen=True)
class Reconsent:
    """A consent that must be obtained again because of the change (PIPL 14)."""

    consent: Literal["policy", "separate"]
    scope: str
    items: list[str]
    rule: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"consent": self.consent, "scope": self.scope, "items": self.items, "rule": self.rule,
                "reason": self.reason}


@dataclass(frozen=True)
class PolicyDiff:
    """All changes between two versions, whether they are major, and the consents to renew."""

    old_label: str
    new_label: str
    changes: list[Change]
    reconsent: list[Reconsent] = field(default_factory=list)

    @property
    def major(self) -> bool:
        return any(c.criteria for c in self.changes)

    def criteria_met(self) -> list[int]:
        return sorted({k for c in self.changes for k in c.criteria})

    def to_json(self) -> dict[str, Any]:
        return {
            "old": self.old_label, "new": self.new_label,
            "changes": [c.to_json() for c in self.changes],
            "major": self.major, "criteria": self.criteria_met(),
            "reconsent": [r.to_json() for r in self.reconsent],
        }


def _normalise(value: Any, field_name: str = "") -> Any:
    """Drop sources; turn keyed lists into dicts so elements are compared by identity, not position."""
    if isinstance(value, dict):
        return {k: _normalise(v, k) for k, v in value.items() if k not in _SOURCE_FIELDS}
    if isinstance(value, list):
        items = [_normalise(v) for v in value]
        key = _KEYS.get(field_name)
        if key is not None and all(isinstance(v, dict) for v in items):
            keyed: dict[str, Any] = {}
            for v in items:
                k = key(v)
                n = 2
                while k in keyed:  # the same key twice: keep both, distinguished
                    k = f"{key(v)}#{n}"
                    n += 1
                keyed[k] = v
            return _Keyed(keyed)
        return items
    return value


class _Keyed(dict[str, Any]):
    """A list turned into a dict by element identity; paths show its keys in brackets."""


def _criteria(path: str) -> list[int]:
    for pattern, crit in _CRITERIA_RULES:
        if pattern.search(path):
            return list(crit)
    return []


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()} if not isinstance(value, _Keyed) else [
            _plain(v) for v in value.values()]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _walk(old: Any, new: Any, path: str, out: list[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict) and isinstance(old, _Keyed) == isinstance(new, _Keyed):
        keyed = isinstance(old, _Keyed)
        for k in list(old) + [k for k in new if k not in old]:
            sub = f"{path}[{k}]" if keyed else (f"{path}.{k}" if path else k)
            if k not in new:
                if old[k] not in (None, [], {}):
                    out.append(Change(sub, "removed", _plain(old[k]), None, _criteria(sub)))
            elif k not in old:
                if new[k] not in (None, [], {}):
                    out.append(Change(sub, "added", None, _plain(new[k]), _criteria(sub)))
            else:
                _walk(old[k], new[k], sub, out)
        return
    if old == new:
        return
    if old in (None, [], {}) and new not in (None, [], {}):
        out.append(Change(path, "added", None, _plain(new), _criteria(path)))
    elif new in (None, [], {}) and old not in (None, [], {}):
        out.append(Change(path, "removed", _plain(old), None, _criteria(path)))
    else:
        out.append(Change(path, "changed", _plain(old), _plain(new), _criteria(path)))


def diff_declarations(old: Declaration, new: Declaration) -> PolicyDiff:
    """Every change from ``old`` to ``new``, classified, with the consents that must be renewed."""
    changes: list[Change] = []
    _walk(_normalise(old.model_dump(mode="json")), _normalise(new.model_dump(mode="json")), "", changes)
    return PolicyDiff(old.version.label, new.version.label, changes, _reconsent(old, new))


def _new_scope(old_f: Feature | None, new_f: Feature) -> tuple[list[str], list[str], list[str]]:
    old_items = set(old_f.item_ids()) if old_f else set()
    old_purposes = set(old_f.purposes) if old_f else set()
    old_perms = {p.permission for p in old_f.permissions} if old_f else set()
    items = [i for i in new_f.item_ids() if i not in old_items]
    purposes = [p for p in new_f.purposes if p not in old_purposes]
    perms = [p.permission for p in new_f.permissions if p.permission not in old_perms]
    return items, purposes, perms


def _recipient_scope(old_r: Recipient | None, new_r: Recipient) -> list[str]:
    old_items = set(old_r.items) if old_r else set()
    return [i for i in new_r.items if i not in old_items]


@dataclass(frozen=True)
class Reduction:
    """A change that reduces the person's rights (减损权利): a right or a channel removed, a longer reply time.

    The seeds promise not to reduce rights without explicit consent (未经您明确同意，不会削减您的权利); Yinsi
    asks for it whatever the text says: such a change needs a fresh acceptance of the policy (C5), never
    continued use."""

    path: str
    what: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "what": self.what}


def _channel_zh(c: Channel) -> str:
    kind = CHANNEL_KIND_ZH.get(c.kind, c.kind)
    return f"{kind}（{c.value}）" if c.value else kind


def _working_equivalent(t: ReplyTime) -> float:
    """A reply time in natural days (a working day counts as 7/5 natural days) for comparison only."""
    assert t.days is not None
    return t.days * 7 / 5 if t.unit is DayUnit.WORKING else float(t.days)


def _longer(old: ReplyTime | None, new: ReplyTime | None) -> bool:
    if old is None or old.days is None:
        return False
    if new is None or new.days is None:
        return True  # a promised time withdrawn
    if old.unit == new.unit:
        return new.days > old.days or (not old.holidays_extended and new.holidays_extended and new.days == old.days)
    return _working_equivalent(new) > _working_equivalent(old)


def rights_reductions(old: Declaration, new: Declaration) -> list[Reduction]:
    """What ``new`` takes away from the person compared with ``old`` (rights, channels, reply times)."""
    out: list[Reduction] = []
    new_rights = {r.right: r for r in new.rights}
    for r in old.rights:
        name = RIGHT_ZH.get(RightKind(r.right), str(r.right))
        after = new_rights.get(r.right)
        if after is None:
            out.append(Reduction(f"rights[{r.right}]", f"取消了「{name}」权利"))
            continue
        kept = {(c.kind, c.value) for c in after.channels}
        for c in r.channels:
            if (c.kind, c.value) not in kept:
                out.append(Reduction(f"rights[{r.right}].channels", f"「{name}」不再可通过{_channel_zh(c)}行使"))
        if _longer(r.reply_time, after.reply_time):
            before = r.reply_time.describe() if r.reply_time else "未承诺"
            now = after.reply_time.describe() if after.reply_time else "未承诺"
            out.append(Reduction(f"rights[{r.right}].reply_time", f"「{name}」的答复期限由{before}变为{now}"))
    if _longer(old.response_time, new.response_time):
        out.append(Reduction("response_time", f"答复期限由{old.response_time.describe()}变为"
                                              f"{new.response_time.describe()}"))
    oc, nc = old.account_cancellation, new.account_cancellation
    if oc is not None:
        if nc is None:
            out.append(Reduction("account_cancellation", "取消了注销账号的途径"))
        else:
            kept = {(c.kind, c.value) for c in nc.channels}
            for c in oc.channels:
                if (c.kind, c.value) not in kept:
                    out.append(Reduction("account_cancellation.channels", f"注销账号不再可通过{_channel_zh(c)}办理"))
            if _longer(oc.reply_time, nc.reply_time):
                out.append(Reduction("account_cancellation.reply_time",
                                     f"注销账号的处理期限由{oc.reply_time.describe() if oc.reply_time else '未承诺'}"
                                     f"变为{nc.reply_time.describe() if nc.reply_time else '未承诺'}"))
            added = {p.description for p in nc.prerequisites} - {p.description for p in oc.prerequisites}
            for text in sorted(added):
                out.append(Reduction("account_cancellation.prerequisites", f"注销账号新增前提条件：{text}"))
    kept_contacts = {(c.kind, c.value) for c in new.controller.contacts}
    for c in old.controller.contacts:
        if (c.kind, c.value) not in kept_contacts:
            out.append(Reduction("controller.contacts", f"不再提供联系渠道：{_channel_zh(c)}"))
    return out


def _reconsent(old: Declaration, new: Declaration) -> list[Reconsent]:
    tax = taxonomy()
    out: list[Reconsent] = []
    reductions = rights_reductions(old, new)
    if reductions:
        out.append(Reconsent(
            "policy", "policy", [], "C5",
            "新版本减损了您的权利（" + "；".join(r.what for r in reductions) + "），须取得您的明确同意，"
            "继续使用不视为同意",
        ))
    if old.controller.legal_name.value != new.controller.legal_name.value:
        out.append(Reconsent(
            "policy", "policy", [], "C5",
            f"个人信息处理者由「{old.controller.legal_name.value}」变更为「{new.controller.legal_name.value}」，"
            "新处理者改变原处理目的、处理方式的，应重新取得同意（PIPL 14、22）",
        ))
    for f in new.features:
        if f.legal_basis.value != "consent":
            continue
        items, purposes, perms = _new_scope(old.feature(f.id), f)
        if items or purposes or perms:
            what = "、".join(
                [tax.item(i).name for i in items] + [f"目的「{p}」" for p in purposes]
                + [f"{tax.permission(p).name}权限" for p in perms]
            )
            out.append(Reconsent("policy", f"feature:{f.id}", items, "C5",
                                 f"「{f.name}」新增：{what}，需就变更部分重新取得同意（PIPL 14）"))
        sensitive = [i for i in items if tax.is_sensitive(i)]
        if sensitive:
            names = "、".join(tax.item(i).name for i in sensitive)
            out.append(Reconsent("separate", f"feature:{f.id}", sensitive, "C4",
                                 f"「{f.name}」新增敏感个人信息：{names}，需取得单独同意（PIPL 29）"))
    for r in new.recipients:
        if r.action in ("provide", "transfer", "disclose", "transfer_abroad") and r.legal_basis.value == "consent":
            items = _recipient_scope(old.recipient(r.id), r)
            if items or old.recipient(r.id) is None:
                out.append(Reconsent("separate", f"recipient:{r.id}", items, "V1",
                                     f"新增或扩大向「{r.name}」提供个人信息，需告知接收方信息并取得单独同意（PIPL 23）"))
    if new.storage.cross_border == "yes" and old.storage.cross_border != "yes":
        out.append(Reconsent("separate", "cross_border", [], "X1",
                             "新增向境外提供个人信息，需取得单独同意（PIPL 39）"))
    return out
