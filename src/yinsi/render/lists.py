"""The published lists (清单, N5/N6) derived from a declaration: SDKs, collected PI, shared PI, permissions.

The same rows feed the policy's appendices and ``yinsi policy render --json``, so the text and the
machine-readable lists cannot drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from yinsi.domain.policy import RECIPIENT_KIND_ZH, Declaration
from yinsi.domain.taxonomy import taxonomy
from yinsi.render.labels import (
    ALL_ITEMS_ZH,
    COLLECTION_METHOD_ZH,
    RECIPIENT_ACTION_ZH,
    date_zh,
)


@dataclass(frozen=True)
class ItemRef:
    """A PI item as a reader sees it: its Chinese name and whether it is sensitive (敏感个人信息)."""

    id: str
    name: str
    category: str
    category_name: str
    sensitive: bool


@dataclass(frozen=True)
class FeatureRef:
    id: str
    name: str


@dataclass(frozen=True)
class ItemUse:
    """One feature's collection of an item."""

    feature: FeatureRef
    purposes: list[str]
    required: bool
    method: str
    method_name: str


@dataclass(frozen=True)
class CollectedRow:
    """One row of 已收集个人信息清单."""

    item: ItemRef
    uses: list[ItemUse]

    @property
    def requirement(self) -> str:
        flags = {u.required for u in self.uses}
        if flags == {True}:
            return "必填"
        if flags == {False}:
            return "选填"
        return "部分功能必填"

    @property
    def purposes(self) -> list[str]:
        return list(dict.fromkeys(p for u in self.uses for p in u.purposes))

    @property
    def method_names(self) -> list[str]:
        return list(dict.fromkeys(u.method_name for u in self.uses))


@dataclass(frozen=True)
class SdkRow:
    """One row of 第三方SDK清单 (N6 columns, plus the features that use the SDK)."""

    id: str
    name: str
    provider: str | None
    purpose: str | None
    scenario: str | None
    items: list[ItemRef]
    collection_method: str | None
    policy_url: str | None
    features: list[FeatureRef] = field(default_factory=list)


@dataclass(frozen=True)
class SharedRow:
    """One row of 与第三方共享个人信息清单."""

    id: str
    name: str
    kind: str
    kind_name: str
    action: str
    action_name: str
    contact: str | None
    items: list[ItemRef]
    purpose: str | None
    method: str | None
    abroad: bool
    separate_consent: bool | None


@dataclass(frozen=True)
class PermissionRow:
    """One row of 设备权限清单: a permission as one feature uses it."""

    id: str
    name: str
    android: list[str]
    ios: list[str]
    feature: FeatureRef
    purpose: str | None


@dataclass(frozen=True)
class PolicyLists:
    """All published lists of one declaration."""

    sdks: list[SdkRow]
    collected: list[CollectedRow]
    shared: list[SharedRow]
    permissions: list[PermissionRow]


def item_ref(item_id: str) -> ItemRef:
    """The reader's view of a PI item id; ``*`` is a policy-wide rule."""
    if item_id == "*":
        return ItemRef("*", ALL_ITEMS_ZH, "", "", False)
    it = taxonomy().item(item_id)
    return ItemRef(it.id, it.name, it.category, it.category_name, it.sensitive)


def build_lists(decl: Declaration) -> PolicyLists:
    """Derive every published list from the declaration."""
    tax = taxonomy()
    sdks = [
        SdkRow(
            s.id, s.name, s.provider, s.purpose, s.scenario, [item_ref(i) for i in s.items],
            s.collection_method, s.policy_url,
            [FeatureRef(f.id, f.name) for f in decl.features if s.id in f.sdks],
        )
        for s in decl.sdks
    ]
    uses: dict[str, list[ItemUse]] = {}
    for f in decl.features:
        for c in f.collections:
            uses.setdefault(c.item, []).append(ItemUse(
                FeatureRef(f.id, f.name), list(f.purposes), c.required, c.method,
                COLLECTION_METHOD_ZH[c.method],
            ))
    collected = [CollectedRow(item_ref(i), u) for i, u in uses.items()]
    shared = [
        SharedRow(
            r.id, r.name, r.kind, RECIPIENT_KIND_ZH[r.kind], r.action, RECIPIENT_ACTION_ZH[r.action],
            r.contact, [item_ref(i) for i in r.items], r.purpose, r.method, r.abroad, r.separate_consent,
        )
        for r in decl.recipients
    ]
    permissions = []
    for f in decl.features:
        for p in f.permissions:
            perm = tax.permission(p.permission)
            permissions.append(PermissionRow(
                perm.id, perm.name, list(perm.android), list(perm.ios), FeatureRef(f.id, f.name), p.purpose,
            ))
    return PolicyLists(sdks, collected, shared, permissions)


def render_lists(decl: Declaration) -> dict[str, Any]:
    """The published lists as plain JSON-ready data (ids and Chinese names side by side)."""
    lists = build_lists(decl)
    collected = []
    for row in lists.collected:
        entry = asdict(row)
        entry["requirement"] = row.requirement
        entry["purposes"] = row.purposes
        collected.append(entry)
    v = decl.version
    return {
        "tenant": decl.tenant,
        "app": decl.app.name,
        "controller": decl.controller.legal_name.value,
        "version": {
            "label": v.label,
            "stated_version": v.stated_version.value,
            "updated_date": v.updated_date.value.isoformat() if v.updated_date.value else None,
            "effective_date": v.effective_date.value.isoformat() if v.effective_date.value else None,
            "updated_date_zh": date_zh(v.updated_date.value),
            "effective_date_zh": date_zh(v.effective_date.value),
        },
        "sdks": [asdict(r) for r in lists.sdks],
        "collected": collected,
        "shared": [asdict(r) for r in lists.shared],
        "permissions": [asdict(r) for r in lists.permissions],
    }
