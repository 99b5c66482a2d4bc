"""The privacy center (个人信息保护中心), per tenant at ``/privacy/{tenant}/``.

Routes parse, authenticate the person's session (:func:`person`) and call the person's use cases
(:class:`yinsi.services.me.MeService`) or the session service (:class:`yinsi.auth.people.PersonAuthService`);
every rule lives there. Log-in: a one-time code to a contact on record, or the app's signed deep link
(``/privacy/{tenant}/link?token=…``: the session cookie is set and the browser is sent on without the token
in its address). Every form works without JavaScript and carries the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from yinsi.api.deps import PERSON_COOKIE, services
from yinsi.api.models import RequestDetailsIn
from yinsi.api.routes.me import me_service
from yinsi.auth.principals import AuthError, PersonPrincipal
from yinsi.domain.rights import REQUEST_ZH, RequestType
from yinsi.services.me import MeService, PersonError
from yinsi.web.app import PageError
from yinsi.web.auth import safe_next, session_principal
from yinsi.web.render import page
from yinsi.web.security import checked_form, end_session, start_session

router = APIRouter(prefix="/privacy/{tenant}", tags=["privacy-center"])

T = TypeVar("T")
Tenant = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
RequestId = Annotated[str, Path(min_length=36, max_length=36, pattern=r"^[0-9a-f-]{36}$")]
Label = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

#: What a page says after an action (``?done=…``).
DONE_ZH = {
    "renewed": "已重新同意。",
    "submitted": "请求已提交，身份已通过本次登录核验。我们会在期限内答复。",
    "withdrawn": "请求已撤回。",
    "verified": "已通过本次登录核验您的身份，请求将继续处理。",
    "confirmed": "已确认注销。注销完成前您可以在本页查看进度。",
    "logged_out": "您已退出登录。",
}
#: The sections of the center, in the order of the header.
SECTIONS = (("", "首页"), ("policy", "隐私政策"), ("consents", "我的同意"), ("permissions", "设备权限"),
            ("lists", "我的双清单"), ("rights", "我的权利"), ("cancel", "注销账号"))
#: Request types with their own page elsewhere in the center.
ELSEWHERE = {RequestType.WITHDRAW_CONSENT: "consents", RequestType.CANCEL_ACCOUNT: "cancel"}


def base(tenant: str) -> str:
    return f"/privacy/{tenant}"


def person(request: Request, tenant: str) -> PersonPrincipal:
    """The logged-in person of this tenant (else a redirect to the log-in page)."""
    principal: PersonPrincipal = session_principal(request, PERSON_COOKIE, "people", f"{base(tenant)}/login", tenant)
    return principal


def _page(request: Request, tenant: str, template: str, section: str | None = None, **values: Any) -> HTMLResponse:
    done = request.query_params.get("done")
    flash = {"kind": "ok", "text": DONE_ZH[done]} if done in DONE_ZH else None
    return page(request, f"privacy/{template}", {"tenant": tenant, "base": base(tenant), "sections": SECTIONS,
                                                 "section": section, "flash": flash, **values})


async def call(fn: Callable[..., T], *args: Any, back: str | None = None, **kwargs: Any) -> T:
    """Run a use case in the thread pool; its ``PersonError`` (or ``AuthError``) becomes an error page."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except PersonError as exc:
        raise PageError(exc.status, "未能完成", exc.detail, back=back, rule=exc.rule) from None
    except AuthError as exc:
        raise PageError(exc.status, "未能完成", exc.detail, back=back, rule=exc.rule) from None


def _me(request: Request) -> MeService:
    return me_service(request)


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


# --- log-in and log-out ------------------------------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, tenant: Tenant, next: str | None = None, expired: str | None = None) -> Response:
    return _page(request, tenant, "login.html", next=safe_next(next, base(tenant), ""),
                 expired=bool(expired), error=None, contact="", channel="sms")


@router.post("/login", response_class=HTMLResponse)
async def login_send(request: Request, tenant: Tenant) -> Response:
    form = await checked_form(request, None)
    contact = str(form.get("contact") or "").strip()[:254]
    channel = str(form.get("channel") or "sms")
    nxt = safe_next(str(form.get("next") or ""), base(tenant), "")
    people = services(request).need("people")
    try:
        challenge = await run_in_threadpool(people.start_code, tenant, contact, channel=channel, ip=_ip(request))
    except AuthError as exc:
        return _page(request, tenant, "login.html", next=nxt, expired=False, error=exc.detail, contact=contact,
                     channel=channel if channel in ("sms", "email") else "sms")
    return _page(request, tenant, "login_code.html", next=nxt, challenge=challenge, error=None)


@router.post("/login/verify", response_class=HTMLResponse)
async def login_verify(request: Request, tenant: Tenant) -> Response:
    form = await checked_form(request, None)
    challenge = {"challenge_id": str(form.get("challenge_id") or "")[:64],
                 "notice": str(form.get("notice") or "")[:300]}
    code = str(form.get("code") or "").strip()[:12]
    nxt = safe_next(str(form.get("next") or ""), base(tenant), f"{base(tenant)}/")
    people = services(request).need("people")
    try:
        token, _ = await run_in_threadpool(people.verify_code, tenant, challenge["challenge_id"], code, ip=_ip(request))
    except AuthError as exc:
        failed = _page(request, tenant, "login_code.html", next=nxt, challenge=challenge, error=exc.detail)
        failed.status_code = exc.status
        return failed
    response = RedirectResponse(nxt, status_code=303)
    start_session(request, response, PERSON_COOKIE, token, end=people.logout)
    return response


@router.get("/link")
async def app_link(request: Request, tenant: Tenant, token: Annotated[str, Query(max_length=4096)] = "",
                   to: str | None = None) -> Response:
    """The app's deep link: a short-lived token it signed for its logged-in user becomes a session; the browser
    is then sent to the center without the token in its address (``to``: a page of the center)."""
    people = services(request).need("people")
    try:
        session, _ = await run_in_threadpool(people.from_app_token, tenant, token, ip=_ip(request))
    except AuthError as exc:
        raise PageError(401, "无法从 App 进入", f"{exc.detail}。您也可以用验证码登录。",
                        back=f"{base(tenant)}/login") from None
    response = RedirectResponse(safe_next(to, base(tenant), f"{base(tenant)}/"), status_code=303)
    start_session(request, response, PERSON_COOKIE, session, end=people.logout)
    return response


@router.post("/logout")
async def logout(request: Request, tenant: Tenant) -> Response:
    await checked_form(request, PERSON_COOKIE)
    token = request.cookies.get(PERSON_COOKIE)
    if token:
        await run_in_threadpool(services(request).need("people").logout, token)
    response = RedirectResponse(f"{base(tenant)}/login?done=logged_out", status_code=303)
    end_session(request, response, PERSON_COOKIE)
    return response


# --- home and policy ---------------------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
async def home(request: Request, tenant: Tenant) -> Response:
    who = person(request, tenant)
    me = _me(request)
    policy = await call(me.policy, who)
    renewals = await call(me.renewals, who)
    return _page(request, tenant, "home.html", "", policy=policy, renewals=renewals["renewals"], method=who.method)


@router.get("/policy", response_class=HTMLResponse)
async def policy(request: Request, tenant: Tenant) -> Response:
    who = person(request, tenant)
    me = _me(request)
    return _page(request, tenant, "policy.html", "policy", policy=await call(me.policy, who),
                 versions=await call(me.versions, who))


@router.get("/policy/versions", response_class=HTMLResponse)
async def versions(request: Request, tenant: Tenant) -> Response:
    who = person(request, tenant)
    me = _me(request)
    return _page(request, tenant, "versions.html", "policy", versions=await call(me.versions, who))


@router.get("/policy/versions/{label}", response_class=HTMLResponse)
async def version(request: Request, tenant: Tenant, label: Label) -> Response:
    who = person(request, tenant)
    me = _me(request)
    v = await call(me.version, who, label, back=f"{base(tenant)}/policy/versions")
    return _page(request, tenant, "version.html", "policy", version=v)


@router.get("/policy/changes", response_class=HTMLResponse)
async def changes(request: Request, tenant: Tenant, old: Annotated[str, Query(max_length=64)] = "",
                  new: Annotated[str, Query(max_length=64)] = "") -> Response:
    who = person(request, tenant)
    me = _me(request)
    back = f"{base(tenant)}/policy/versions"
    if not old or not new or old == new:
        raise PageError(400, "请选择两个不同的版本", "在版本列表中选择“旧版本”和“新版本”后再比较。", back=back)
    diff = await call(me.changes, who, old, new, back=back)
    return _page(request, tenant, "changes.html", "policy", diff=diff)


@router.get("/renew", response_class=HTMLResponse)
async def renew(request: Request, tenant: Tenant) -> Response:
    who = person(request, tenant)
    me = _me(request)
    renewals = await call(me.renewals, who)
    versions_ = await call(me.versions, who)
    return _page(request, tenant, "renew.html", "consents", renewals=renewals, versions=versions_)


@router.post("/renew")
async def renew_give(request: Request, tenant: Tenant) -> Response:
    who = person(request, tenant)
    form = await checked_form(request, PERSON_COOKIE)
    await call(_me(request).give, who, _field(form, "scope", 200), back=f"{base(tenant)}/renew")
    return RedirectResponse(f"{base(tenant)}/renew?done=renewed", status_code=303)


# --- consents, permissions, 双清单 ---------------------------------------------------------------------------------
@router.get("/consents", response_class=HTMLResponse)
async def consents(request: Request, tenant: Tenant) -> Response:
    who = person(request, tenant)
    me = _me(request)
    return _page(request, tenant, "consents.html", "consents", consents=await call(me.consents_of, who),
                 renewals=(await call(me.renewals, who))["renewals"])


@router.get("/consents/withdraw", response_class=HTMLResponse)
async def withdraw_confirm(request: Request, tenant: Tenant, scope: Annotated[str, Query(max_length=200)] = "policy") -> Response:
    """Before withdrawing: what stops and what continues (``scope=policy``: 撤回隐私政策)."""
    who = person(request, tenant)
    preview = await call(_me(request).withdrawal_preview, who, scope, back=f"{base(tenant)}/consents")
    return _page(request, tenant, "withdraw.html", "consents", preview=preview)


@router.post("/consents/withdraw", response_class=HTMLResponse)
async def withdraw(request: Request, tenant: Tenant) -> Response:
    who = person(request, tenant)
    form = await checked_form(request, PERSON_COOKIE)
    scope = _field(form, "scope", 200)
    me = _me(request)
    back = f"{base(tenant)}/consents"
    result = await call(me.withdraw_all if scope == "policy" else me.withdraw, *((who,) if scope == "policy" else (who, scope)),
                        back=back)
    return _page(request, tenant, "withdrawn.html", "consents", result=result)


@router.get("/permissions", response_class=HTMLResponse)
async def permissions(request: Request, tenant: Tenant) -> Response:
    who = person(request, tenant)
    return _page(request, tenant, "permissions.html", "permissions", perms=await call(_me(request).permissions, who))


@router.get("/lists", response_class=HTMLResponse)
async def lists(request: Request, tenant: Tenant) -> Response:
    who = person(request, tenant)
    return _page(request, tenant, "lists.html", "lists", lists=await call(_me(request).lists, who))


# --- rights requests ---------------------------------------------------------------------------------------------
@router.get("/rights", response_class=HTMLResponse)
async def rights(request: Request, tenant: Tenant) -> Response:
    who = person(request, tenant)
    me = _me(request)
    return _page(request, tenant, "rights.html", "rights", offered=await call(me.rights_offered, who),
                 requests=await call(me.requests, who), elsewhere={t.value: p for t, p in ELSEWHERE.items()})


@router.get("/rights/{kind}", response_class=HTMLResponse)
async def right_form(request: Request, tenant: Tenant, kind: Annotated[str, Path(max_length=32)]) -> Response:
    who = person(request, tenant)
    try:
        rtype = RequestType(kind)
    except ValueError:
        raise PageError(404, "没有这项权利", back=f"{base(tenant)}/rights") from None
    if rtype in ELSEWHERE:
        return RedirectResponse(f"{base(tenant)}/{ELSEWHERE[rtype]}", status_code=303)
    return await _right_form(request, tenant, who, rtype, error=None)


async def _right_form(request: Request, tenant: str, who: PersonPrincipal, rtype: RequestType, *,
                      error: str | None, status: int = 200) -> HTMLResponse:
    me = _me(request)
    offered = await call(me.rights_offered, who)
    right = next(r for r in offered["rights"] if r["type"] == rtype.value)
    policy_ = await call(me.policy, who) if rtype in (RequestType.CORRECTION, RequestType.SUPPLEMENT,
                                                       RequestType.DELETION, RequestType.RESTRICTION) else None
    response = _page(request, tenant, "right_form.html", "rights", rtype=rtype.value, rtype_zh=REQUEST_ZH[rtype],
                     right=right, grounds=offered["deletion_grounds"], policy=policy_, error=error)
    response.status_code = status
    return response


@router.post("/requests", response_class=HTMLResponse)
async def submit(request: Request, tenant: Tenant) -> Response:
    who = person(request, tenant)
    form = await checked_form(request, PERSON_COOKIE)
    try:
        rtype = RequestType(_field(form, "type", 32))
    except ValueError:
        raise PageError(400, "没有这项权利", back=f"{base(tenant)}/rights") from None
    if rtype in ELSEWHERE:
        return RedirectResponse(f"{base(tenant)}/{ELSEWHERE[rtype]}", status_code=303)
    try:
        details = _details(form)
    except ValidationError:
        return await _right_form(request, tenant, who, rtype, error="填写的内容有误，请检查后再提交。", status=422)
    try:
        created = await run_in_threadpool(_me(request).submit, who, rtype, details=details)
    except PersonError as exc:
        return await _right_form(request, tenant, who, rtype, error=exc.detail, status=exc.status)
    return RedirectResponse(f"{base(tenant)}/requests/{created['id']}?done=submitted", status_code=303)


def _details(form: FormData) -> dict[str, Any]:
    """The form's fields as a request's details, checked by the API's own model."""
    raw: dict[str, Any] = {}
    changes: dict[str, str] = {}
    for i in range(5):
        item, value = _field(form, f"change_item_{i}", 64), _field(form, f"change_value_{i}", 500)
        if item and value:
            changes[item] = value
    if changes:
        raw["changes"] = changes
    for key in ("ground", "about", "question", "text"):
        value = _field(form, key, 2000)
        if value:
            raw[key] = value
    for key in ("items", "features"):
        values = [str(v) for v in form.getlist(key) if str(v)]
        if values:
            raw[key] = values
    return RequestDetailsIn.model_validate(raw).model_dump(mode="json", exclude_none=True)


def _field(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def show_request(request: Request, tenant: Tenant, request_id: RequestId) -> Response:
    who = person(request, tenant)
    me = _me(request)
    found = await call(me.request, who, request_id, back=f"{base(tenant)}/rights")
    terms = await call(me.cancellation, who) if found["type"] == RequestType.CANCEL_ACCOUNT.value else None
    return _page(request, tenant, "request.html", "rights", r=found, terms=terms, error=None)


@router.post("/requests/{request_id}/withdraw")
async def withdraw_request(request: Request, tenant: Tenant, request_id: RequestId) -> Response:
    who = person(request, tenant)
    await checked_form(request, PERSON_COOKIE)
    await call(_me(request).withdraw_request, who, request_id, back=f"{base(tenant)}/requests/{request_id}")
    return RedirectResponse(f"{base(tenant)}/requests/{request_id}?done=withdrawn", status_code=303)


@router.post("/requests/{request_id}/verify")
async def verify_request(request: Request, tenant: Tenant, request_id: RequestId) -> Response:
    """A request taken in by the app's own pages, verified with this session (R8)."""
    who = person(request, tenant)
    await checked_form(request, PERSON_COOKIE)
    await call(_me(request).verify, who, request_id, back=f"{base(tenant)}/requests/{request_id}")
    return RedirectResponse(f"{base(tenant)}/requests/{request_id}?done=verified", status_code=303)


@router.post("/requests/{request_id}/confirm", response_class=HTMLResponse)
async def confirm_cancellation(request: Request, tenant: Tenant, request_id: RequestId) -> Response:
    who = person(request, tenant)
    form = await checked_form(request, PERSON_COOKIE)
    me = _me(request)
    try:
        await run_in_threadpool(me.confirm_cancellation, who, request_id, acknowledged=form.get("irreversible") == "yes")
    except PersonError as exc:
        found = await call(me.request, who, request_id, back=f"{base(tenant)}/cancel")
        terms = await call(me.cancellation, who)
        response = _page(request, tenant, "request.html", "cancel", r=found, terms=terms, error=exc.detail)
        response.status_code = exc.status
        return response
    return RedirectResponse(f"{base(tenant)}/requests/{request_id}?done=confirmed", status_code=303)


@router.get("/requests/{request_id}/package")
async def package(request: Request, tenant: Tenant, request_id: RequestId) -> Response:
    who = person(request, tenant)
    name, data = await call(_me(request).package, who, request_id, back=f"{base(tenant)}/requests/{request_id}")
    return Response(data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


# --- account cancellation ----------------------------------------------------------------------------------------
@router.get("/cancel", response_class=HTMLResponse)
async def cancel_terms(request: Request, tenant: Tenant) -> Response:
    who = person(request, tenant)
    me = _me(request)
    terms = await call(me.cancellation, who)
    mine = [r for r in await call(me.requests, who) if r["type"] == RequestType.CANCEL_ACCOUNT.value]
    return _page(request, tenant, "cancel.html", "cancel", terms=terms, mine=mine)


@router.post("/cancel")
async def cancel_start(request: Request, tenant: Tenant) -> Response:
    who = person(request, tenant)
    await checked_form(request, PERSON_COOKIE)
    found = await call(_me(request).start_cancellation, who, back=f"{base(tenant)}/cancel")
    return RedirectResponse(f"{base(tenant)}/requests/{found['id']}", status_code=303)
