"""Who is calling: the FastAPI dependencies that authenticate and authorise every route.

Each route names its audience with exactly one of these; the name is published in the OpenAPI document as
the operation's ``x-yinsi-auth`` (``public``, ``app:<scope>``, ``person``, ``staff:<action>``) together with
its security schemes, and a test generates the authorisation matrix from it:

- :func:`app_principal` (``scope``): an app's back end, ``Authorization: Bearer <app key>``; the key must hold
  the scope. Routes then call :func:`same_tenant` for every tenant named in the path or the body: a key of
  one tenant never reads or writes another (403 ``tenant_forbidden``).
- :data:`person_principal`: a person (data subject) in a session: the ``yinsi_session`` cookie (HttpOnly,
  SameSite=Lax, Secure over TLS) or ``Authorization: Bearer <session token>`` (the app's own pages).
- :func:`staff_principal` (``action``): a member of staff: the ``yinsi_staff`` cookie or a staff session /
  API token as Bearer; the role must allow the action (S3) and roles that see PI need a second factor.
- :data:`public`: nobody needs to be authenticated (published policies, the rule catalogue, log-in).

Routes reach the long-lived services through :func:`services` (``svc = services(request)``); the consent
service is shared by every request thread, so use it inside ``with svc.consent_lock:``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from yinsi.api.problems import ApiProblem
from yinsi.api.settings import ApiSettings
from yinsi.auth.principals import AppPrincipal, AppScope, AuthError, PersonPrincipal, StaffPrincipal

PERSON_COOKIE = "yinsi_session"
STAFF_COOKIE = "yinsi_staff"
#: The OpenAPI extension naming each operation's audience.
AUTH_EXTENSION = "x-yinsi-auth"

app_key_scheme = HTTPBearer(auto_error=False, scheme_name="appKey",
                            description="应用密钥：Authorization: Bearer <密钥>（由租户管理员创建，只显示一次）")
person_bearer_scheme = HTTPBearer(auto_error=False, scheme_name="personToken",
                                  description="个人会话令牌（App 自有页面使用）：Authorization: Bearer <令牌>")
person_cookie_scheme = APIKeyCookie(name=PERSON_COOKIE, auto_error=False, scheme_name="personSession",
                                    description="个人会话 Cookie（验证码或 App 深度链接登录后设置）")
staff_bearer_scheme = HTTPBearer(auto_error=False, scheme_name="staffToken",
                                 description="工作人员会话令牌或 API 令牌：Authorization: Bearer <令牌>")
staff_cookie_scheme = APIKeyCookie(name=STAFF_COOKIE, auto_error=False, scheme_name="staffSession",
                                   description="工作人员会话 Cookie（密码与动态口令登录后设置）")


@dataclass
class Services:
    """What one server process keeps for its whole life (created at start-up, closed at shutdown).

    ``consent``: the ledger and the gate (its subject cache and processing-record buffer are shared by all
    requests: hold ``consent_lock`` while using it). ``rights``: rights requests. The authentication services
    are ``None`` when this build has none (their routes then answer 503).
    """

    settings: ApiSettings
    consent: Any
    rights: Any
    api_keys: Any = None
    people: Any = None
    staff: Any = None
    consent_lock: threading.RLock = field(default_factory=threading.RLock)
    extra: dict[str, Any] = field(default_factory=dict)

    def need(self, name: str) -> Any:
        """An authentication service, or 503 when it is not available in this build."""
        svc = getattr(self, name)
        if svc is None:
            raise ApiProblem(503, "auth_unavailable", "身份认证服务暂不可用")
        return svc


def services(request: Request) -> Services:
    """The process's services (from the app's lifespan)."""
    svc: Services = request.app.state.services
    return svc


def _mark(fn: Callable[..., Any], auth: str) -> Callable[..., Any]:
    fn.__yinsi_auth__ = auth  # type: ignore[attr-defined]
    return fn


def auth_of(call: Any) -> str | None:
    """The ``x-yinsi-auth`` value a dependency declares, if any."""
    value = getattr(call, "__yinsi_auth__", None)
    return value if isinstance(value, str) else None


def _unauthenticated(detail: str) -> AuthError:
    return AuthError("unauthenticated", detail, status=401)


# --- public ---------------------------------------------------------------------------------------------------
def _public() -> None:
    """No credential needed."""


public = _mark(_public, "public")


# --- apps -----------------------------------------------------------------------------------------------------
@functools.cache
def app_principal(scope: AppScope | str) -> Callable[..., AppPrincipal]:
    """Dependency: the calling app, whose key holds ``scope``."""
    wanted = AppScope(scope)

    # async: a key's check is answered from the key service's in-memory cache nearly always (a miss reads one
    # row), which saves the gate's hottest path a trip through the thread pool
    async def dependency(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = Depends(app_key_scheme)) -> AppPrincipal:
        if credentials is None or not credentials.credentials:
            raise _unauthenticated("缺少应用密钥：请在请求头中提供 Authorization: Bearer <应用密钥>")
        principal: AppPrincipal = services(request).need("api_keys").authenticate(credentials.credentials)
        if not principal.allows(wanted):
            raise AuthError("scope_missing", f"该应用密钥没有「{wanted.value}」权限", status=403)
        request.scope["yinsi.principal"] = principal
        return principal

    dependency.__name__ = f"app_principal_{wanted.value}"
    return _mark(dependency, f"app:{wanted.value}")


def same_tenant(principal: AppPrincipal | PersonPrincipal | StaffPrincipal, tenant: str | None) -> str:
    """The principal's tenant; 403 when the caller names another one."""
    if tenant is not None and tenant != principal.tenant:
        raise ApiProblem(403, "tenant_forbidden", "凭据不属于该租户，不能读取或写入其他租户的数据")
    return principal.tenant


# --- people ---------------------------------------------------------------------------------------------------
def _person(request: Request,
            cookie: str | None = Depends(person_cookie_scheme),
            credentials: HTTPAuthorizationCredentials | None = Depends(person_bearer_scheme)) -> PersonPrincipal:
    token = credentials.credentials if credentials is not None else cookie
    if not token:
        raise _unauthenticated("请先登录（验证码登录或从 App 进入）")
    principal: PersonPrincipal = services(request).need("people").authenticate(token)
    request.scope["yinsi.principal"] = principal
    return principal


person_principal = _mark(_person, "person")


# --- staff ----------------------------------------------------------------------------------------------------
def staff_token(cookie: str | None, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials if credentials is not None else cookie


def check_staff(principal: StaffPrincipal, action: Any) -> None:
    """The role check (S3), and a second factor for actions and roles that need one; AuthError 403 otherwise."""
    from yinsi.staff import roles as staff_roles

    act = staff_roles.StaffAction(action)
    roles = {staff_roles.Role(r) for r in principal.roles if r in staff_roles.Role.__members__.values()}
    if not any(act in staff_roles.RIGHTS[r] for r in roles):
        raise AuthError("staff_forbidden", f"您的角色无权{act.label}（最小权限）", status=403, rule="S3")
    second: frozenset[Any] = getattr(staff_roles, "SECOND_FACTOR_ACTIONS", staff_roles.PI_ACTIONS)
    if not principal.mfa and (act in second or any(staff_roles.RIGHTS[r] & second for r in roles)):
        raise AuthError("mfa_required", "此操作须以动态口令（第二因素）登录后进行", status=403, rule="S3")


@functools.cache
def staff_principal(action: Any) -> Callable[..., StaffPrincipal]:
    """Dependency: a member of staff allowed to do ``action`` (a :class:`~yinsi.staff.roles.StaffAction`)."""
    from yinsi.staff.roles import StaffAction

    act = StaffAction(action)

    def dependency(request: Request,
                   cookie: str | None = Depends(staff_cookie_scheme),
                   credentials: HTTPAuthorizationCredentials | None = Depends(staff_bearer_scheme)) -> StaffPrincipal:
        token = staff_token(cookie, credentials)
        if not token:
            raise _unauthenticated("请先以工作人员身份登录")
        principal: StaffPrincipal = services(request).need("staff").authenticate(token)
        check_staff(principal, act)
        request.scope["yinsi.principal"] = principal
        return principal

    dependency.__name__ = f"staff_principal_{act.value}"
    return _mark(dependency, f"staff:{act.value}")


# --- cookies --------------------------------------------------------------------------------------------------
def cookie_secure(request: Request) -> bool:
    """``Secure`` when the request came over TLS or the settings say the server sits behind TLS."""
    return request.url.scheme == "https" or services(request).settings.secure_cookies


def set_session_cookie(response: Any, request: Request, name: str, token: str, max_age: int | None = None) -> None:
    response.set_cookie(name, token, max_age=max_age, httponly=True, samesite="lax", secure=cookie_secure(request),
                        path="/")


def clear_session_cookie(response: Any, request: Request, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=cookie_secure(request))
