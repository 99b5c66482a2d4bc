"""The rule catalogue (规则目录) that every lint finding, gate reason and refusal cites by ID.

It ships with the package as ``domain/data/rules.yaml``, written in the project's own words: the duty each
rule states and the legal sources it comes from. Loaded once, on first use::

    from yinsi import rules
    rules.get("N1").duty          # 隐私政策应写明处理者的名称和联系方式……
    rules.url_path("N1")          # "/api/v1/rules/N1" (the API's page for it)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

#: How a rule ID looks: an area letter and a number (N1, C10, R13).
RULE_ID = re.compile(r"^[A-Z][1-9][0-9]?$")
URL_PREFIX = "/api/v1/rules/"


@dataclass(frozen=True, slots=True)
class Source:
    """A legal source of a rule: a law, regulation or standard, and the article or clause (may be empty)."""

    law: str
    article: str = ""

    def __str__(self) -> str:
        return f"《{self.law}》{self.article}" if not self.law.startswith("GB/T") else f"{self.law} {self.article}".strip()


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of the catalogue."""

    id: str
    title_zh: str
    title_en: str
    duty: str
    sources: tuple[Source, ...]
    area: str
    area_zh: str
    severity: str | None = None

    @property
    def title(self) -> str:
        return self.title_zh

    @property
    def url_path(self) -> str:
        return url_path(self.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "title_zh": self.title_zh, "title_en": self.title_en, "duty": self.duty,
            "sources": [{"law": s.law, "article": s.article} for s in self.sources],
            "area": self.area, "area_zh": self.area_zh, "severity": self.severity, "url": self.url_path,
        }


def url_path(rule_id: str) -> str:
    """Where the API serves a rule: ``/api/v1/rules/<id>``."""
    return f"{URL_PREFIX}{rule_id}"


def _str(raw: dict[str, Any], key: str, rid: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"rules.yaml: rule {rid!r} needs a non-empty {key}")
    return value.strip()


@cache
def _catalogue() -> dict[str, Rule]:
    text = resources.files("yinsi.domain").joinpath("data/rules.yaml").read_text(encoding="utf-8")
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    areas: dict[str, dict[str, str]] = data["areas"]
    out: dict[str, Rule] = {}
    for raw in data["rules"]:
        rid = str(raw.get("id", ""))
        if not RULE_ID.match(rid):
            raise ValueError(f"rules.yaml: bad rule id {rid!r}")
        if rid in out:
            raise ValueError(f"rules.yaml: duplicate rule id {rid!r}")
        if rid[0] not in areas:
            raise ValueError(f"rules.yaml: rule {rid!r} is in no area")
        sources = tuple(Source(str(s["law"]), str(s.get("article", ""))) for s in raw.get("sources") or ())
        if not sources:
            raise ValueError(f"rules.yaml: rule {rid!r} names no legal source")
        out[rid] = Rule(id=rid, title_zh=_str(raw, "title_zh", rid), title_en=_str(raw, "title_en", rid),
                        duty=_str(raw, "duty", rid), sources=sources, area=rid[0], area_zh=areas[rid[0]]["zh"],
                        severity=raw.get("severity"))
    return out


def get(rule_id: str) -> Rule | None:
    """The rule with this ID (case-insensitive), or None."""
    return _catalogue().get(rule_id.strip().upper())


def all() -> list[Rule]:
    """Every rule, in catalogue order (by area as RULES are numbered: N, C, P, R, T, S, I, M, X, V, G, D)."""
    return list(_catalogue().values())


def ids() -> frozenset[str]:
    return frozenset(_catalogue())


#: A rule ID inside a text such as "C4（PIPL 29、30）" or "拒绝（R7）": not part of a longer word or path.
RULE_ID_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_/.#-])([A-Z][1-9][0-9]?)(?![A-Za-z0-9_])")


def rule_url(rule_id: str | None) -> str | None:
    """The catalogue page of a cited rule, or None when ``rule_id`` is not a catalogue ID."""
    if not rule_id:
        return None
    m = RULE_ID_IN_TEXT.search(rule_id)
    if m is None or m.group(1) not in _catalogue():
        return None
    return url_path(m.group(1))


def add_rule_urls(data: Any) -> Any:
    """JSON output: next to every ``"rule"`` that cites a catalogue rule, a ``"rule_url"`` (changes ``data``
    in place and returns it)."""
    if isinstance(data, dict):
        for value in data.values():
            add_rule_urls(value)
        rule = data.get("rule")
        if isinstance(rule, str) and "rule_url" not in data:
            url = rule_url(rule)
            if url is not None:
                data["rule_url"] = url
    elif isinstance(data, list):
        for value in data:
            add_rule_urls(value)
    return data
