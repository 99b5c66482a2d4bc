"""Rendering a declaration into the published privacy policy (隐私政策) and its lists (清单).

Everything is derived from one :class:`~yinsi.domain.policy.Declaration`; nothing is written by hand.
"""

from __future__ import annotations

from yinsi.render.document import SECTIONS, md_escape, render_html, render_markdown
from yinsi.render.labels import NOT_STATED, SENSITIVE_MARK
from yinsi.render.lists import PolicyLists, build_lists, item_ref, render_lists

__all__ = [
    "NOT_STATED",
    "SECTIONS",
    "SENSITIVE_MARK",
    "PolicyLists",
    "build_lists",
    "item_ref",
    "md_escape",
    "render_html",
    "render_lists",
    "render_markdown",
]
