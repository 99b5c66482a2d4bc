"""Render a declaration into the published privacy policy (隐私政策): Markdown or a standalone HTML page.

Both formats come from the same Jinja2 context, so they say the same things; HTML is autoescaped and
Markdown escapes every declared value through the ``md`` filter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from yinsi.domain.policy import CHANNEL_KIND_ZH, RIGHT_ZH, Channel, Declaration, Feature, RightKind
from yinsi.domain.taxonomy import LEGAL_BASIS_ZH, LegalBasis, Permission, taxonomy
from yinsi.render import labels
from yinsi.render.links import rule_links
from yinsi.render.lists import ItemRef, build_lists, item_ref

# (anchor, title) of the top-level sections, in order; the table of contents is built from this.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("intro", "引言"),
    ("collect", "一、我们如何收集和使用您的个人信息"),
    ("share", "二、我们如何共享、委托处理、转让、公开披露您的个人信息"),
    ("store", "三、我们如何存储和保护您的个人信息"),
    ("rights", "四、您的权利"),
    ("minors", "五、未成年人的个人信息保护"),
    ("incident", "六、个人信息安全事件的告知"),
    ("changes", "七、本政策的更新"),
    ("contact", "八、联系我们与争议解决"),
    ("list-sdk", "附录一：第三方SDK清单"),
    ("list-collected", "附录二：已收集个人信息清单"),
    ("list-shared", "附录三：与第三方共享个人信息清单"),
    ("list-permissions", "附录四：设备权限清单"),
)

_CN_DIGITS = "零一二三四五六七八九"


def cn_number(n: int) -> str:
    """1 → 一, 12 → 十二, 20 → 二十 (for 1–99)."""
    if not 1 <= n <= 99:
        return str(n)
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _CN_DIGITS[tens] + "十")
    return head + (_CN_DIGITS[ones] if ones else "")


# Backslash-escape everything Markdown (CommonMark/GFM) could read as markup or raw HTML.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~&!])")
_WS = re.compile(r"\s*\n\s*")


def md_escape(value: object) -> str:
    """A declared value as literal Markdown text on one line."""
    return _MD_SPECIAL.sub(r"\\\1", _WS.sub(" ", str(value)).strip())


_SAFE_URL = re.compile(r"^https?://[^\s<>\"'`|]+$", re.IGNORECASE)


def safe_url(value: str | None) -> str | None:
    """The URL if it is a plain http(s) link (so no ``javascript:`` ever becomes a link), else None."""
    if value and _SAFE_URL.match(value.strip()):
        return value.strip()
    return None


def channel_zh(c: Channel) -> str:
    """``电话：400-000-0000``; a channel of kind ``other`` is just its value."""
    kind = CHANNEL_KIND_ZH.get(c.kind, c.kind)
    if c.kind == "other" and c.value:
        return c.value
    return f"{kind}：{c.value}" if c.value else kind


def right_zh(kind: RightKind) -> str:
    return RIGHT_ZH[kind]


def basis_zh(basis: LegalBasis) -> str:
    return LEGAL_BASIS_ZH[basis]


def permission(permission_id: str) -> Permission:
    return taxonomy().permission(permission_id)


def sensitive_items(feature: Feature) -> list[ItemRef]:
    """The sensitive PI items a feature collects (they need the PIPL 30 notice)."""
    return [r for r in (item_ref(c.item) for c in feature.collections) if r.sensitive]


def _globals() -> dict[str, Any]:
    helpers: dict[str, Callable[..., Any]] = {
        "item_ref": item_ref, "permission": permission, "channel_zh": channel_zh, "right_zh": right_zh,
        "basis_zh": basis_zh, "date_zh": labels.date_zh, "days_zh": labels.days_zh, "yes_no": labels.yes_no,
        "cn": cn_number, "safe_url": safe_url, "sensitive_items": sensitive_items,
    }
    return {
        **helpers,
        "NOT_STATED": labels.NOT_STATED,
        "CANCEL": RightKind.CANCEL_ACCOUNT,
        "MARK": labels.SENSITIVE_MARK,
        "SECTIONS": SECTIONS,
        "CHANNEL_KIND_ZH": CHANNEL_KIND_ZH,
        "COLLECTION_METHOD_ZH": labels.COLLECTION_METHOD_ZH,
        "FEATURE_KIND_ZH": labels.FEATURE_KIND_ZH,
        "RECIPIENT_ACTION_ZH": labels.RECIPIENT_ACTION_ZH,
        "RECIPIENT_ACTION_ORDER": labels.RECIPIENT_ACTION_ORDER,
        "CROSS_BORDER_ZH": labels.CROSS_BORDER_ZH,
        "RETENTION_ACTION_ZH": labels.RETENTION_ACTION_ZH,
        "SECURITY_MEASURE_ZH": labels.SECURITY_MEASURE_ZH,
        "DISPUTE_KIND_ZH": labels.DISPUTE_KIND_ZH,
        "MAJOR_CHANGE_ZH": labels.MAJOR_CHANGE_ZH,
    }


@cache
def _env(fmt: str) -> Environment:
    env = Environment(
        loader=PackageLoader("yinsi.render", "templates"),
        autoescape=(fmt == "html"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_escape
    env.filters["item_ref"] = item_ref
    if fmt == "html":
        env.filters["rule_links"] = rule_links  # rule IDs link to the catalogue (/api/v1/rules/<id>)
    env.globals.update(_globals())
    return env


def _context(decl: Declaration) -> dict[str, Any]:
    sensitive = [i for i in decl.collected_items() if taxonomy().is_sensitive(i)]
    return {"decl": decl, "lists": build_lists(decl), "has_sensitive": bool(sensitive)}


_BLANK_RUNS = re.compile(r"\n{3,}")
_TIGHT_HEADING = re.compile(r"(?<=[^\n])\n(?=#{1,6} )")


def render_markdown(decl: Declaration) -> str:
    """The policy as Markdown (zh-CN); sensitive PI is **bold** and marked 【敏感】 (N10)."""
    text = _env("md").get_template("policy.md.j2").render(_context(decl))
    text = _TIGHT_HEADING.sub("\n\n", text)
    return _BLANK_RUNS.sub("\n\n", text).strip() + "\n"


def render_html(decl: Declaration) -> str:
    """The policy as one standalone zh-CN HTML page with its own CSS and a table of contents."""
    return _env("html").get_template("policy.html.j2").render(_context(decl))
