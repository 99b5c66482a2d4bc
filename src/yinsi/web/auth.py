"""Sessions of the web pages: who is logged in, from the session cookie."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request

from yinsi.api.deps import services
from yinsi.auth.principals import AuthError
from yinsi.web.app import LoginRequired


def session_principal(request: Request, cookie: str, service: str, login_url: str, tenant: str | None = None) -> Any:
    """The principal of the browser's session cookie ``cookie``, authenticated by the session service
    ``service`` (``"people"`` or ``"staff"``); :class:`LoginRequired` (→ ``login_url`` with ``next``) when
    there is none, it ended (idle timeout, lifetime, logout) or it belongs to another ``tenant``. Sets
    ``request.state.web_cookie`` so the page's forms carry this session's CSRF token."""
    token = request.cookies.get(cookie)
    target = f"{login_url}?next={quote(request.url.path, safe='/')}"
    if not token:
        raise LoginRequired(target)
    try:
        principal = services(request).need(service).authenticate(token)
    except AuthError:
        raise LoginRequired(target + "&expired=1") from None
    if tenant is not None and getattr(principal, "tenant", None) != tenant:
        raise LoginRequired(target)
    request.state.web_cookie = cookie
    request.state.principal = principal
    return principal


def safe_next(value: str | None, prefix: str, default: str) -> str:
    """A ``next`` address after log-in: only a path of this site under ``prefix`` (no open redirect)."""
    if value and value.startswith(prefix) and not value.startswith("//") and "\\" not in value and "://" not in value:
        return value
    return default
