"""Mounting the web pages into the API application (:func:`mount`, called by :func:`yinsi.api.app.create_app`).

- Every module of :mod:`yinsi.web.routes` with a ``router`` is included (adding pages is adding a module);
  web routes are left out of the OpenAPI document (they answer HTML, not the API's JSON).
- ``/static/web/`` serves :data:`yinsi.web.render.STATIC` (CSS, and small scripts that only enhance).
- :class:`~yinsi.web.security.SecurityHeaders` adds the CSP and the other headers to every web response.
- Errors on web paths are pages, not problem+json: :class:`LoginRequired` redirects to a log-in page,
  :class:`PageError` and a bad CSRF token show an error page, unknown web addresses a 404 page; the API's
  own handlers still answer everything else.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from yinsi.web.render import STATIC, STATIC_URL, page
from yinsi.web.security import CsrfError, SecurityHeaders, is_web_path

log = logging.getLogger("yinsi.web")

Handler = Callable[[Request, Exception], Awaitable[Response] | Response]


class LoginRequired(Exception):
    """Not logged in (or the session ended): the browser is sent to ``login_url`` (303)."""

    def __init__(self, login_url: str) -> None:
        super().__init__("login required")
        self.login_url = login_url


class PageError(Exception):
    """Shown as an error page: ``title`` and ``detail`` in Chinese, free of PI; ``back`` a link to go on from."""

    def __init__(self, status: int, title: str, detail: str = "", *, back: str | None = None,
                 rule: str | None = None) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail
        self.back = back
        self.rule = rule


_HTTP_TITLES = {404: "没有这个页面", 405: "该页面不支持此操作", 413: "提交的内容过大", 422: "提交的内容有误"}


def error_page(request: Request, status: int, title: str, detail: str = "", back: str | None = None,
               rule: str | None = None) -> Response:
    return page(request, "error.html", {"status": status, "title": title, "detail": detail, "back": back,
                                        "rule": rule}, status=status)


def route_modules() -> list[Any]:
    from yinsi.web import routes

    out = []
    for info in sorted(pkgutil.iter_modules(routes.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"yinsi.web.routes.{info.name}")
        if getattr(module, "router", None) is not None:
            out.append(module)
    return out


def mount(app: FastAPI) -> None:
    """Add the web pages, their static files, headers and error pages to ``app``."""
    for module in route_modules():
        app.include_router(module.router, include_in_schema=False)
    app.mount(STATIC_URL, StaticFiles(directory=str(STATIC)), name="web-static")
    app.add_middleware(SecurityHeaders)

    async def on_login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(exc.login_url, status_code=303)

    async def on_page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return error_page(request, exc.status, exc.title, exc.detail, exc.back, exc.rule)

    async def on_csrf(request: Request, exc: Exception) -> Response:
        return error_page(request, 403, "页面已过期或来源不明",
                          "为保护您的账号，本次提交未被处理。请返回上一页，刷新后再提交。")

    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(PageError, on_page_error)
    app.add_exception_handler(CsrfError, on_csrf)

    # On web paths, the framework's own errors are pages too; elsewhere the API's handlers answer.
    def web_or_api(exc_type: type[Exception], web: Handler) -> None:
        api = app.exception_handlers.get(exc_type)

        async def handler(request: Request, exc: Exception) -> Response:
            result = web(request, exc) if is_web_path(request.url.path) or api is None else api(request, exc)
            if isinstance(result, Response):
                return result
            return await result

        app.add_exception_handler(exc_type, handler)

    def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return error_page(request, exc.status_code, _HTTP_TITLES.get(exc.status_code, "请求无效"))

    def on_validation(request: Request, exc: Exception) -> Response:
        return error_page(request, 422, "提交的内容有误", "请检查填写的内容后再试。")

    web_or_api(StarletteHTTPException, on_http)
    web_or_api(RequestValidationError, on_validation)
