"""Taxonomy: personal-information items (个人信息), device permissions (设备权限), legal bases (PIPL 13),
consent kinds, processing actions and app types (必要个人信息范围规定).

The tables live in ``domain/data/*.yaml`` so that adding an item is adding a line; this module loads them
once and offers typed lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import yaml


class LegalBasis(StrEnum):
    """The seven legal bases of PIPL 13 (个人信息处理的合法性基础)."""

    CONSENT = "consent"  # 取得个人的同意
    CONTRACT = "contract"  # 为订立、履行合同或人力资源管理所必需
    STATUTORY_DUTY = "statutory_duty"  # 为履行法定职责或者法定义务所必需
    EMERGENCY = "emergency"  # 应对突发公共卫生事件，或紧急情况下保护生命健康和财产安全所必需
    NEWS_REPORTING = "news_reporting"  # 为公共利益实施新闻报道、舆论监督等行为
    PUBLIC_INFO = "public_info"  # 在合理范围内处理已经合法公开的个人信息
    OTHER_LAW = "other_law"  # 法律、行政法规规定的其他情形


LEGAL_BASIS_ZH: dict[LegalBasis, str] = {
    LegalBasis.CONSENT: "取得个人同意（PIPL 13(1)）",
    LegalBasis.CONTRACT: "为订立、履行合同或人力资源管理所必需（PIPL 13(2)）",
    LegalBasis.STATUTORY_DUTY: "为履行法定职责或法定义务所必需（PIPL 13(3)）",
    LegalBasis.EMERGENCY: "应对突发公共卫生事件或保护生命健康和财产安全所必需（PIPL 13(4)）",
    LegalBasis.NEWS_REPORTING: "为公共利益实施新闻报道、舆论监督（PIPL 13(5)）",
    LegalBasis.PUBLIC_INFO: "在合理范围内处理已合法公开的个人信息（PIPL 13(6)）",
    LegalBasis.OTHER_LAW: "法律、行政法规规定的其他情形（PIPL 13(7)）",
}


class ConsentKind(StrEnum):
    """Kinds of consent."""

    GENERAL = "general"  # 一般同意（同意隐私政策）
    SEPARATE = "separate"  # 单独同意 (PIPL 23, 25, 26, 29, 39)
    GUARDIAN = "guardian"  # 监护人同意 (PIPL 31)
    WRITTEN = "written"  # 书面同意


CONSENT_KIND_ZH: dict[ConsentKind, str] = {
    ConsentKind.GENERAL: "一般同意",
    ConsentKind.SEPARATE: "单独同意",
    ConsentKind.GUARDIAN: "监护人同意",
    ConsentKind.WRITTEN: "书面同意",
}


class Action(StrEnum):
    """Processing actions (处理行为)."""

    COLLECT = "collect"  # 收集
    USE = "use"  # 使用
    PROVIDE = "provide"  # 向其他个人信息处理者提供 (PIPL 23)
    ENTRUST = "entrust"  # 委托处理 (PIPL 21)
    DISCLOSE = "disclose"  # 公开披露 (PIPL 25)
    TRANSFER_ABROAD = "transfer_abroad"  # 向境外提供 (PIPL 38-39)
    AUTOMATED_DECISION = "automated_decision"  # 自动化决策 (PIPL 24)


ACTION_ZH: dict[Action, str] = {
    Action.COLLECT: "收集",
    Action.USE: "使用",
    Action.PROVIDE: "向其他个人信息处理者提供",
    Action.ENTRUST: "委托处理",
    Action.DISCLOSE: "公开披露",
    Action.TRANSFER_ABROAD: "向境外提供",
    Action.AUTOMATED_DECISION: "自动化决策",
}


@dataclass(frozen=True, slots=True)
class PIItem:
    """One personal-information item (个人信息项) with a stable id."""

    id: str
    name: str
    category: str
    category_name: str
    sensitive: bool
    sensitive_basis: str | None


@dataclass(frozen=True, slots=True)
class Permission:
    """One device permission (设备权限)."""

    id: str
    name: str
    android: tuple[str, ...]
    ios: tuple[str, ...]
    dangerous: bool


@dataclass(frozen=True, slots=True)
class AppType:
    """One of the 39 app types of 必要个人信息范围规定."""

    no: int
    name: str
    necessary_pi: tuple[str, ...]


class UnknownTermError(KeyError):
    """A PI item, permission or app type that the taxonomy does not know."""


def _load(name: str) -> dict[str, Any]:
    text = resources.files("yinsi.domain").joinpath("data", name).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


@dataclass(frozen=True)
class Taxonomy:
    """All taxonomy tables, indexed by id."""

    items: dict[str, PIItem]
    categories: dict[str, str]
    permissions: dict[str, Permission]
    app_types: dict[str, AppType]

    def item(self, item_id: str) -> PIItem:
        try:
            return self.items[item_id]
        except KeyError:
            raise UnknownTermError(f"unknown PI item {item_id!r}") from None

    def permission(self, permission_id: str) -> Permission:
        try:
            return self.permissions[permission_id]
        except KeyError:
            raise UnknownTermError(f"unknown device permission {permission_id!r}") from None

    def is_sensitive(self, item_id: str) -> bool:
        return self.item(item_id).sensitive


@cache
def taxonomy() -> Taxonomy:
    """The taxonomy, loaded once from the packaged YAML tables."""
    pi = _load("pi_items.yaml")
    categories: dict[str, str] = dict(pi["categories"])
    items: dict[str, PIItem] = {}
    for raw in pi["items"]:
        item_id = str(raw["id"])
        if item_id in items:
            raise ValueError(f"duplicate PI item id {item_id!r} in pi_items.yaml")
        category = str(raw["category"])
        if category not in categories:
            raise ValueError(f"PI item {item_id!r} has unknown category {category!r}")
        sensitive = bool(raw.get("sensitive", False))
        basis = raw.get("sensitive_basis")
        if sensitive and not basis:
            raise ValueError(f"sensitive PI item {item_id!r} needs a sensitive_basis")
        items[item_id] = PIItem(item_id, str(raw["name"]), category, categories[category], sensitive, basis)
    permissions: dict[str, Permission] = {}
    for raw in _load("permissions.yaml")["permissions"]:
        pid = str(raw["id"])
        if pid in permissions:
            raise ValueError(f"duplicate permission id {pid!r} in permissions.yaml")
        permissions[pid] = Permission(
            pid, str(raw["name"]), tuple(raw.get("android", [])), tuple(raw.get("ios", [])),
            bool(raw.get("dangerous", False)),
        )
    app_types: dict[str, AppType] = {}
    for raw in _load("app_types.yaml")["app_types"]:
        app_types[str(raw["name"])] = AppType(
            int(raw["number"]), str(raw["name"]), tuple(raw.get("necessary_pi", []))
        )
    for t in app_types.values():
        for item_id in t.necessary_pi:
            if item_id not in items:
                raise ValueError(f"app type {t.name} names unknown PI item {item_id!r}")
    return Taxonomy(items, categories, permissions, app_types)
