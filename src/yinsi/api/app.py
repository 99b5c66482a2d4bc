"""The HTTP API: ``create_app(settings)`` builds the FastAPI application that ``yinsi serve`` runs.

- Long-lived services (the consent ledger and gate, rights requests, the authentication services) are created
  once when the application starts and closed when it stops; closing the consent service writes the gate's
  buffered processing records, so a clean stop (SIGTERM, SIGINT) loses none.
- The gate's processing records are written off the request path by the consent service's background
  writer (:mod:`yinsi.services.records`: bounded buffer, what a crash can lose); closing it at shutdown
  writes what is still buffered.
- Every route module in :mod:`yinsi.api.routes` with a ``router`` is included; each operation's audience
  (``x-yinsi-auth``) is read from its authentication dependency (:mod:`yinsi.api.deps`).
- Logs name the method, the route template, the status, the duration and a request id, never a path with
  its values, a query string or a body (they may hold PI). Errors are problem+json (:mod:`yinsi.api.problems`).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yinsi.api import problems
from yinsi.api.deps import AUTH_EXTENSION, Services, auth_of
from yinsi.api.settings import ApiSettings
from yinsi.audit import CheckpointTimer

log = logging.getLogger("yinsi.api")
access_log = logging.getLogger("yinsi.api.access")

#: Largest request body accepted (a batch of 1,000 decisions is about 300 KB).
MAX_BODY = 4 * 1024 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


# --- services ---------------------------------------------------------------------------------------------------
def _optional(module: str, cls: str, url: str, **kwargs: Any) -> Any:
    """An authentication service, or ``None`` when this build does not have it (its routes answer 503)."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        log.warning("%s is not available: its routes answer 503", module)
        return None
    return getattr(mod, cls)(url, **kwargs)


def build_services(settings: ApiSettings) -> Services:
    from yinsi.rights.service import RightsService
    from yinsi.services.consent import ConsentService

    url = settings.database_url
    consent = ConsentService(url)
    rights = RightsService(url, datamaps=settings.datamaps, store_urls=settings.store_urls,
                           channels=settings.channels)
    return Services(settings=settings, consent=consent, rights=rights,
                    api_keys=_optional("yinsi.auth.apikeys", "ApiKeyService", url),
                    people=_optional("yinsi.auth.people", "PersonAuthService", url, datamaps=settings.datamaps,
                                     store_urls=settings.store_urls, channels=settings.channels,
                                     deliver="background"),
                    staff=_optional("yinsi.auth.staff", "StaffAuthService", url))


def close_services(svc: Services) -> None:
    """Close everything; the consent service first writes its buffered processing records."""
    with svc.consent_lock:
        svc.consent.close()
    for other in (svc.rights, svc.api_keys, svc.people, svc.staff):
        close = getattr(other, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # one service failing to close must not keep the others open
                log.exception("closing %s failed", type(other).__name__)


# --- the request middleware ------------------------------------------------------------------------------------
class RequestContext:
    """Request id, body size limit, the access log line (no PI), and the last resort for unexpected errors:
    a 500 problem naming the request id, and the exception kept out of the server's own error log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope["yinsi.request_id"] = rid
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        length = dict(scope.get("headers") or []).get(b"content-length")
        too_large = length is not None and (not length.isdigit() or int(length) > MAX_BODY)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY:
                    raise _BodyTooLarge
            return message

        try:
            if too_large:
                raise _BodyTooLarge
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            if not response_started:
                await _send_problem(send_with_id, problems.ApiProblem(413, "too_large", "请求过大（上限 4 MB）"), rid)
        except Exception as exc:
            route = scope.get("route")
            log.error("request %s failed: %s at %s", rid, type(exc).__name__, getattr(route, "path", "?"),
                      exc_info=False)
            import traceback

            log.error("request %s traceback (frames only):\n%s", rid, "".join(traceback.format_tb(exc.__traceback__)[-8:]))
            if not response_started:
                await _send_problem(send_with_id, problems.ApiProblem(
                    500, "internal_error", f"服务器内部错误；请向运维人员提供请求编号 {rid}"), rid)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "(unmatched)"
            access_log.info("%s %s %s %.1fms %s", scope.get("method"), template, status,
                            (time.perf_counter() - started) * 1000, rid)


class _BodyTooLarge(Exception):
    pass


async def _send_problem(send: Send, p: problems.ApiProblem, rid: str) -> None:
    import json

    payload = json.dumps(problems.body(p, rid), ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": p.status,
                "headers": [(b"content-type", problems.PROBLEM_JSON.encode()),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


# --- the application ---------------------------------------------------------------------------------------------
def route_modules() -> list[Any]:
    """Every module of :mod:`yinsi.api.routes` that has a ``router`` (adding routes is adding a module)."""
    from yinsi.api import routes

    out = []
    for info in sorted(pkgutil.iter_modules(routes.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"yinsi.api.routes.{info.name}")
        if getattr(module, "router", None) is not None:
            out.append(module)
    return out


def _auth_of_route(route: APIRoute) -> list[str]:
    found: list[str] = []
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        value = auth_of(dep.call)
        if value is not None and value not in found:
            found.append(value)
        stack.extend(dep.dependencies)
    return found


def mark_auth(router: Any) -> None:
    """Publish each operation's audience as ``x-yinsi-auth`` (from the dependency that authenticates it). A
    route with none, or with two, gets none: the authorisation-matrix test then fails on it."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            found = _auth_of_route(route)
            if len(found) == 1:
                route.openapi_extra = {**(route.openapi_extra or {}), AUTH_EXTENSION: found[0]}
            elif len(found) > 1:
                log.error("route %s declares several audiences: %s", route.path, found)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The API over ``settings`` (default: from the environment, :meth:`ApiSettings.from_env`)."""
    cfg = settings or ApiSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = build_services(cfg)
        app.state.services = svc
        checkpoints = CheckpointTimer().start()  # audit tails signed even when requests stop (docs/audit.md)
        try:
            yield
        finally:
            checkpoints.stop()
            close_services(svc)

    app = FastAPI(title=cfg.title, version=_version(), lifespan=lifespan, openapi_url="/openapi.json",
                  docs_url="/docs", redoc_url=None,
                  description="Yinsi（隐私）服务接口：应用（处理闸门、同意、权限、权利请求受理）、个人、工作人员。"
                              "错误均为 RFC 9457 application/problem+json。")
    problems.install(app)
    for module in route_modules():
        mark_auth(module.router)
        app.include_router(module.router)
    from yinsi.web.app import mount as mount_web

    mount_web(app)  # the privacy center and the staff console (HTML pages, outside the OpenAPI document)
    app.add_middleware(RequestContext)
    return app


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("yinsi")
    except Exception:
        return "0"


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory yinsi.api.app:app_from_env`` (``yinsi serve``, also in each of several
    worker processes)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app(ApiSettings.from_env())
