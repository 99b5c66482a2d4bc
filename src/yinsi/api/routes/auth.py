"""Logging in and out: people (a one-time code to a contact on record, or the app's signed deep link) and
staff (password and a second factor). Sessions live in the database; the browser holds them in HttpOnly,
SameSite=Lax cookies (Secure over TLS)."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from yinsi.api.deps import (
    PERSON_COOKIE,
    STAFF_COOKIE,
    clear_session_cookie,
    person_bearer_scheme,
    public,
    services,
    set_session_cookie,
)
from yinsi.api.models import AppTokenIn, PersonCodeIn, PersonVerifyIn, StaffLoginIn
from yinsi.api.throttle import FailureThrottle
from yinsi.auth.principals import AuthError

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], dependencies=[Depends(public)])


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _person_json(principal: Any) -> dict[str, Any]:
    return {"tenant": principal.tenant, "method": principal.method, "subject_kind": principal.subject_kind}


@router.post("/person/code", status_code=202, summary="个人登录第一步：向账号已登记的手机号或邮箱发送验证码")
def person_code(body: PersonCodeIn, request: Request) -> dict[str, Any]:
    """The code goes only to a contact already on record (R8); the answer shows the address masked and the
    ``challenge_id`` to verify with. Rate-limited per IP, per person and per contact (429)."""
    people = services(request).need("people")
    result: dict[str, Any] = people.start_code(body.tenant, body.contact, channel=body.channel, ip=client_ip(request))
    return result


@router.post("/person/verify", summary="个人登录第二步：核对验证码，开始会话（Cookie）")
def person_verify(body: PersonVerifyIn, request: Request, response: Response) -> dict[str, Any]:
    people = services(request).need("people")
    token, principal = people.verify_code(body.tenant, body.challenge_id, body.code, ip=client_ip(request))
    set_session_cookie(response, request, PERSON_COOKIE, token)
    return _person_json(principal)


@router.post("/person/app-token", summary="从 App 进入：以 App 签发的短期令牌开始会话")
def person_app_token(body: AppTokenIn, request: Request, response: Response) -> dict[str, Any]:
    """The app's back end signs a short-lived JWT for the logged-in person (a deep link into the privacy
    center); this exchanges it for a session: a cookie for the browser, and ``session_token`` for the app's
    own pages (``Authorization: Bearer``)."""
    people = services(request).need("people")
    token, principal = people.from_app_token(body.tenant, body.token, ip=client_ip(request))
    set_session_cookie(response, request, PERSON_COOKIE, token)
    return {**_person_json(principal), "session_token": token}


@router.post("/staff/login", summary="工作人员登录：密码与动态口令（可接触个人信息的角色必须提供动态口令）")
def staff_login(body: StaffLoginIn, request: Request, response: Response) -> dict[str, Any]:
    svc = services(request)
    staff = svc.need("staff")
    throttle: FailureThrottle = svc.extra.setdefault("staff_login_throttle", FailureThrottle())
    ip = client_ip(request)
    throttle.check(ip)
    try:
        token, principal = staff.login(body.tenant, body.staff_id, body.password, body.totp, ip=ip)
    except AuthError as exc:
        if exc.code == "login_failed":
            throttle.failed(ip)
        raise
    set_session_cookie(response, request, STAFF_COOKIE, token)
    return {"tenant": principal.tenant, "staff_id": principal.staff_id, "roles": sorted(principal.roles),
            "mfa": principal.mfa}


@router.post("/logout", status_code=204, summary="退出登录（结束个人或工作人员的会话）")
def logout(request: Request, response: Response,
           credentials: HTTPAuthorizationCredentials | None = Depends(person_bearer_scheme)) -> Response:
    """Ends the sessions this request carries (cookies and a Bearer token) and clears the cookies; a session
    that is already over is not an error."""
    svc = services(request)
    tokens = {PERSON_COOKIE: request.cookies.get(PERSON_COOKIE), STAFF_COOKIE: request.cookies.get(STAFF_COOKIE)}
    bearer = credentials.credentials if credentials is not None else None
    for name, service in ((PERSON_COOKIE, svc.people), (STAFF_COOKIE, svc.staff)):
        if service is None:
            continue
        for token in (tokens[name], bearer):
            if token:
                with contextlib.suppress(AuthError):
                    service.logout(token)
    out = Response(status_code=204)
    for name in (PERSON_COOKIE, STAFF_COOKIE):
        clear_session_cookie(out, request, name)
    return out
