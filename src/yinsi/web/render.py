"""Rendering pages: one Jinja2 environment (autoescaped) over ``yinsi/web/templates``.

:func:`page` renders a template to an :class:`~fastapi.responses.HTMLResponse` with what every page needs:
``csrf`` (the form token of this browser's session, :mod:`yinsi.web.security`), ``static(path)`` (the URL of
a file in ``yinsi/web/static``), ``request`` and ``path``. Templates extend ``base.html`` (zh-CN, skip link,
header, ``main``, footer) and fill the blocks ``title``, ``header_nav`` and ``content``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from yinsi.web.security import csrf_token, finish_response

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
STATIC_URL = "/static/web"


@functools.cache
def _static_version() -> str:
    """Changes when a static file changes (cache busting for the long-cached files)."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(STATIC.rglob("*")):
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:10]


def static(path: str) -> str:
    return f"{STATIC_URL}/{path}?v={_static_version()}"


def _when(value: Any) -> str:
    """An ISO moment (UTC) or date as people read it, in Beijing time."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        text: str = value
        try:
            value = datetime.fromisoformat(text) if "T" in text or " " in text else date.fromisoformat(text)
        except ValueError:
            return text
    if isinstance(value, datetime):
        from yinsi.services.me import beijing

        return str(beijing(value))
    if isinstance(value, date):
        return f"{value.year}年{value.month}月{value.day}日"
    return str(value)


_URL = re.compile(r"https://[A-Za-z0-9.-]+(?:/[A-Za-z0-9._~/%-]*)?")


def _linkify(text: Any) -> Markup:
    """Escaped text whose https addresses are links."""
    out: list[str] = []
    pos = 0
    raw = str(text)
    for m in _URL.finditer(raw):
        out.append(str(escape(raw[pos:m.start()])))
        url = escape(m.group(0))
        out.append(f'<a href="{url}" rel="noopener noreferrer">{url}</a>')
        pos = m.end()
    out.append(str(escape(raw[pos:])))
    return Markup("".join(out))


@functools.cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["static"] = static
    env.filters["when"] = _when
    env.filters["linkify"] = _linkify
    return env


def page(request: Request, template: str, context: Mapping[str, Any] | None = None, *, status: int = 200,
         headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """Render ``template`` (relative to ``yinsi/web/templates``) as a page. The CSRF token is bound to the
    session cookie named by ``request.state.web_cookie`` (set by the page's authentication dependency), else
    to the pre-session cookie (log-in pages)."""
    cookie = getattr(request.state, "web_cookie", None)
    values: dict[str, Any] = {"request": request, "path": request.url.path,
                              "csrf": csrf_token(request, cookie), "flash": None}
    values.update(context or {})
    html = environment().get_template(template).render(values)
    response = HTMLResponse(html, status_code=status, headers=dict(headers or {}))
    finish_response(request, response)
    return response
