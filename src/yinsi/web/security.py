"""Browser security of the web pages (privacy center, staff console).

- **Headers** (:class:`SecurityHeaders`, on every response under :data:`WEB_PREFIXES`): a strict CSP
  (``default-src 'self'``, no inline script, no inline style, forms post to this origin only), frames only
  by pages of this origin (``frame-ancestors 'self'``: the app opens the pages in its WebView as a top-level
  document, other sites cannot frame them), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
  no-referrer`` (a deep-link token or a request id never leaves in a Referer), ``Cache-Control: no-store``
  for pages (personal information stays out of shared caches and the back-forward cache).
- **CSRF**: every form carries ``csrf`` (:func:`csrf_token`), checked on every POST by :func:`checked_form`.
  The token is an HMAC keyed by the session token (logged in) or by a random pre-session cookie (log-in
  forms): per session, nothing stored on the server, valid in every worker process, and a new one once the
  session changes.
- **Sessions**: the session token lives in an HttpOnly, SameSite=Lax cookie (Secure over TLS). A log-in
  always starts a new session (the service issues a new token) and ends any session the browser still held
  (session fixation); the pre-session cookie is dropped. Idle timeout and lifetime are the session
  services' (people: 30 minutes idle, 12 hours; staff: see docs/auth.md). Logout is a POST with the token.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yinsi.api.deps import cookie_secure

#: Paths served as web pages (the API keeps its own headers; /docs loads Swagger's script).
WEB_PREFIXES = ("/privacy", "/console", "/static/web")
#: Random value that keys the CSRF token of forms shown before a log-in.
PRE_SESSION_COOKIE = "yinsi_pre"
CSRF_FIELD = "csrf"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'self'")
HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]


def is_web_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in WEB_PREFIXES)


class SecurityHeaders:
    """Adds :data:`HEADERS` to every web response, and ``Cache-Control: no-store`` to pages (not to static
    files)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_web_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in {h for h, _ in HEADERS}]
                headers += HEADERS
                if not static:
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- CSRF -------------------------------------------------------------------------------------------------------
def _mac(seed: str) -> str:
    return hmac.new(seed.encode("utf-8"), b"yinsi-web-csrf", hashlib.sha256).hexdigest()[:43]


def csrf_seed(request: Request, session_cookie: str | None) -> str | None:
    """What keys the CSRF token: the session token when the browser sends one, else the pre-session cookie."""
    if session_cookie:
        token = request.cookies.get(session_cookie)
        if token:
            return token
    return request.cookies.get(PRE_SESSION_COOKIE)


def csrf_token(request: Request, session_cookie: str | None) -> str:
    """The token a form of this page carries. Without a session and a pre-session cookie, one is made now and
    set on the response by :func:`finish_response` (``request.state.new_pre_session``)."""
    seed = csrf_seed(request, session_cookie)
    if seed is None:
        seed = getattr(request.state, "new_pre_session", None)
        if seed is None:
            seed = request.state.new_pre_session = secrets.token_urlsafe(32)
    return _mac(seed)


class CsrfError(Exception):
    """A POST without the right CSRF token (an expired page or a cross-site request): 403."""


async def checked_form(request: Request, session_cookie: str | None) -> FormData:
    """The POSTed form, once its CSRF token matches the browser's session (or pre-session)."""
    form = await request.form()
    given = form.get(CSRF_FIELD)
    seed = csrf_seed(request, session_cookie)
    if not isinstance(given, str) or seed is None or not hmac.compare_digest(given, _mac(seed)):
        raise CsrfError
    return form


def finish_response(request: Request, response: Any) -> Any:
    """Set the pre-session cookie a page made for its forms' CSRF token (see :func:`csrf_token`)."""
    seed = getattr(request.state, "new_pre_session", None)
    if seed is not None:
        response.set_cookie(PRE_SESSION_COOKIE, seed, httponly=True, samesite="strict",
                            secure=cookie_secure(request), path="/", max_age=3600)
    return response


def start_session(request: Request, response: Any, cookie: str, token: str, *, end: Any = None) -> None:
    """After a successful log-in: the new session's cookie, the pre-session cookie dropped, and the session the
    browser held before (if any) ended with ``end(old_token)`` (session fixation: never keep an old id)."""
    old = request.cookies.get(cookie)
    if old and old != token and end is not None:
        with contextlib.suppress(Exception):  # an unknown or ended session: nothing to end
            end(old)
    response.set_cookie(cookie, token, httponly=True, samesite="lax", secure=cookie_secure(request), path="/")
    response.delete_cookie(PRE_SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=cookie_secure(request))


def end_session(request: Request, response: Any, cookie: str) -> None:
    response.delete_cookie(cookie, path="/", httponly=True, samesite="lax", secure=cookie_secure(request))
