"""A person's own data and requests (``/api/v1/me/``): the API behind the privacy center and the app's own
privacy pages.

Every route authenticates a person's session (:data:`~yinsi.api.deps.person_principal`: the session cookie
or ``Authorization: Bearer <session token>``) and calls :class:`~yinsi.services.me.MeService` with the
principal: the tenant and the subject come from the session, never from the request, so a person reaches
their own data only. A request id of someone else is 404, as for an id that does not exist.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from yinsi.api.deps import person_principal, services
from yinsi.api.models import RequestDetailsIn
from yinsi.api.problems import ApiProblem
from yinsi.auth.principals import PersonPrincipal
from yinsi.domain.rights import RequestType
from yinsi.services.me import MeService, PersonError

router = APIRouter(prefix="/api/v1/me", tags=["me"])

T = TypeVar("T")
Person = Annotated[PersonPrincipal, Depends(person_principal)]
RequestId = Annotated[str, Path(min_length=36, max_length=36, pattern=r"^[0-9a-f-]{36}$", description="请求编号")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
LabelPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="版本标签")]
Scope = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]

_lock = threading.Lock()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScopeIn(_Body):
    scope: Scope = Field(description="同意范围：policy | feature:功能 | item:功能:个人信息项 | recipient:接收方 | "
                                     "cross_border:接收方 | guardian")


class RequestIn(_Body):
    type: RequestType = Field(description="请求类型：access、copy、portability、correction、supplement、deletion、"
                                          "restriction、withdraw_consent、cancel_account、explanation、complaint")
    details: RequestDetailsIn = Field(default_factory=RequestDetailsIn)


def me_service(request: Request) -> MeService:
    """The process's :class:`MeService`, over the server's own consent (gate) and rights services."""
    svc = services(request)
    me: MeService | None = svc.extra.get("me")
    if me is None:
        with _lock:
            me = svc.extra.get("me")
            if me is None:
                me = svc.extra["me"] = MeService(svc.settings.database_url, consents=svc.consent, rights=svc.rights,
                                                 lock=svc.consent_lock)
    return me


@contextmanager
def _problems() -> Iterator[None]:
    """A :class:`PersonError` as a problem (its detail is already free of PI)."""
    try:
        yield
    except PersonError as exc:
        raise ApiProblem(exc.status, exc.code, exc.detail, rule=exc.rule) from None


def _call(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a use case (it holds the consent lock itself around the ledger calls it shares with the gate)."""
    with _problems():
        return fn(*args, **kwargs)


@router.get("", summary="当前登录的个人（租户、登录方式）")
def whoami(who: Person) -> dict[str, Any]:
    return {"tenant": who.tenant, "subject_kind": who.subject_kind, "method": who.method}


# --- consents -------------------------------------------------------------------------------------------------
@router.get("/consents", summary="我的同意：每项的目的、个人信息、时间、渠道与类型")
def my_consents(request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return {"consents": _call(request, me.consents_of, who)}


@router.get("/consents/renewals", summary="政策变更后须重新同意的事项及原因")
def my_renewals(request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return _call(request, me.renewals, who)


@router.post("/consents/withdraw", summary="撤回一项同意（撤回 policy 即撤回全部）")
def withdraw_consent(body: ScopeIn, request: Request, who: Person) -> dict[str, Any]:
    """From now on the gate refuses what rested on this consent (C6); ``statement`` says in Chinese what stops
    and what continues on other legal bases."""
    me = me_service(request)
    return _call(request, me.withdraw, who, body.scope)


@router.post("/consents/withdraw-all", summary="撤回隐私政策（撤回全部同意）")
def withdraw_all(request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return _call(request, me.withdraw_all, who)


@router.post("/consents/give", summary="给予或重新给予一项同意（如政策重大变更后）")
def give_consent(body: ScopeIn, request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return _call(request, me.give, who, body.scope)


@router.get("/permissions", summary="我的设备权限：每台设备上政策声明的每项权限（含从未申请的）")
def my_permissions(request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return _call(request, me.permissions, who)


@router.get("/lists", summary="我的双清单：实际收集、共享了我的哪些个人信息")
def my_lists(request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return _call(request, me.lists, who)


# --- rights requests --------------------------------------------------------------------------------------------
@router.get("/rights", summary="我可以行使的权利：途径、条件与答复期限")
def my_rights(request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return _call(request, me.rights_offered, who)


@router.get("/requests", summary="我的权利请求（最新在前）")
def my_requests(request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return {"requests": _call(request, me.requests, who)}


@router.post("/requests", status_code=201, summary="提出权利请求（已登录会话即核验本人身份）")
def submit_request(body: RequestIn, request: Request, who: Person) -> dict[str, Any]:
    """The request is for the session's own subject and is recorded as identity-verified through the session
    (R8: no more personal information is asked for than the operator already holds)."""
    me = me_service(request)
    return _call(request, me.submit, who, body.type, details=body.details.as_details())


@router.get("/requests/{request_id}", summary="一项请求的状态、工作日截止日期与处理经过")
def get_request(request_id: RequestId, request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return _call(request, me.request, who, request_id)


@router.post("/requests/{request_id}/verify", summary="以当前会话核验本人身份（如 App 中提交的请求）")
def verify_request(request_id: RequestId, request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return _call(request, me.verify, who, request_id)


@router.get("/cancellation", summary="注销账号须知：前提条件、须依法保存的信息、后果")
def cancellation_terms(request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return _call(request, me.cancellation, who)


@router.post("/requests/{request_id}/confirm", summary="确认注销账号（前提条件满足后；确认后不可撤回）")
def confirm_cancellation(request_id: RequestId, request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return _call(request, me.confirm, who, request_id)


@router.post("/requests/{request_id}/withdraw", summary="撤回我的请求")
def withdraw_request(request_id: RequestId, request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return _call(request, me.withdraw_request, who, request_id)


@router.get("/requests/{request_id}/package", summary="下载个人信息副本（已完成的查阅、复制、转移请求）",
            response_class=Response, responses={200: {"content": {"application/zip": {}}, "description": "zip 文件"}})
def download_package(request_id: RequestId, request: Request, who: Person) -> Response:
    """The zip is decrypted in memory for its own subject and sent; nothing is written in clear on the server."""
    me = me_service(request)
    name, data = _call(request, me.package, who, request_id)
    return Response(data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


# --- policy versions ----------------------------------------------------------------------------------------------
@router.get("/policy/versions", summary="隐私政策的全部版本")
def versions(request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return {"versions": _call(request, me.versions, who)}


@router.get("/policy/versions/{label}", summary="某一版本的隐私政策全文")
def version(label: LabelPath, request: Request, who: Person) -> dict[str, Any]:
    me = me_service(request)
    return _call(request, me.version, who, label)


@router.get("/policy/changes", summary="两个版本之间的变化（通俗中文，重大变更在前）")
def changes(request: Request, who: Person, old: Annotated[Label, Query(description="旧版本标签")],
            new: Annotated[Label, Query(description="新版本标签")]) -> dict[str, Any]:
    me = me_service(request)
    return _call(request, me.changes, who, old, new)
