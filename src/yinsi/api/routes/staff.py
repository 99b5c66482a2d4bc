"""The staff API (``/api/v1/staff/``): the rights-request queue and acting on requests, approvals, masked
views and unmasking with a reason, the audit log, alerts and app keys.

Every route authenticates a member of staff for one :class:`~yinsi.staff.roles.StaffAction`
(:func:`~yinsi.api.deps.staff_principal`: role allowed, second factor for roles that see PI) and calls the
use cases of :mod:`yinsi.staff.actions` and :mod:`yinsi.services.staff_desk`, which check the account's
roles again as they are now (S3, S4, S6), act on the principal's tenant only and audit every refusal.
Subject identifiers travel in request bodies, never in URLs (which proxies log).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from yinsi.api.deps import Services, services, staff_principal
from yinsi.api.problems import ApiProblem, rule_in, scrub
from yinsi.auth.principals import AppScope, StaffPrincipal
from yinsi.domain.rights import RefusalGround
from yinsi.services import staff_desk
from yinsi.staff import actions
from yinsi.staff.errors import AccessDenied, InvalidInput, NotFound, RequestStateError, SeparationOfDuties, StaffError
from yinsi.staff.roles import StaffAction

router = APIRouter(prefix="/api/v1/staff", tags=["staff"])

T = TypeVar("T")
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Text = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=_PRINTABLE)]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_PRINTABLE)]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
#: A step id or its start: ``manual:recordings/delete_call_recordings``, ``recordings/delete_call_recordings``.
StepKey = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/@#-]+$")]
RequestId = Annotated[str, Path(min_length=8, max_length=36, pattern=r"^[0-9a-f-]+$", description="请求编号")]
ApprovalId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="审批编号")]
AlertId = Annotated[int, Path(ge=1, le=2**31 - 1, description="告警编号")]
KeyId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$", description="应用密钥编号")]


def _staff(action: StaffAction) -> Any:
    return Depends(staff_principal(action))


Starter = Annotated[StaffPrincipal, _staff(StaffAction.START_RIGHTS_REQUEST)]
Handler = Annotated[StaffPrincipal, _staff(StaffAction.HANDLE_RIGHTS_REQUEST)]
Viewer = Annotated[StaffPrincipal, _staff(StaffAction.VIEW_MASKED)]
Unmasker = Annotated[StaffPrincipal, _staff(StaffAction.UNMASK)]
Approver = Annotated[StaffPrincipal, _staff(StaffAction.APPROVE_EXPORT)]
AuditReader = Annotated[StaffPrincipal, _staff(StaffAction.VIEW_AUDIT_LOG)]
AuditVerifier = Annotated[StaffPrincipal, _staff(StaffAction.VERIFY_AUDIT_LOG)]
AlertViewer = Annotated[StaffPrincipal, _staff(StaffAction.VIEW_ALERTS)]
AlertAcker = Annotated[StaffPrincipal, _staff(StaffAction.ACK_ALERT)]
Admin = Annotated[StaffPrincipal, _staff(StaffAction.CONFIGURE)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VerifyIn(_Body):
    how: Text = Field(description="核验方式，例如：当面核对居民身份证；核对死亡证明与户口簿")


class CompleteIn(_Body):
    note: Text = Field(description="人工处理的结果与凭证（如工单回执编号）")
    step: StepKey | None = Field(None, description="只确认此步骤（如 manual:recordings/delete_call_recordings，"
                                                   "或以此开头的步骤；默认全部）")


class RefuseIn(_Body):
    ground: RefusalGround = Field(description="拒绝依据（R7，PIPL 50）")
    detail: Text = Field(description="告知本人的拒绝理由")


class NoteIn(_Body):
    note: Text


class ReasonIn(_Body):
    reason: Text = Field(description="事由（必填，写入审计日志；不得含个人信息）")


class SubjectIn(_Body):
    subject: Subject
    reason: Text | None = None


class UnmaskIn(_Body):
    subject: Subject
    item: Ident = Field(description="个人信息项（如 contact.mobile 或 mobile）")
    reason: Text


class DecisionIn(_Body):
    note: Text | None = None
    masked_only: bool = Field(False, description="批准时改为只导出掩码后的信息")


class KeyIn(_Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_PRINTABLE)]
    scopes: list[AppScope] = Field(min_length=1, max_length=len(AppScope))


class RotateIn(_Body):
    grace_seconds: int = Field(0, ge=0, le=86_400, description="旧密钥继续有效的秒数（至多 24 小时）")


# --- services -------------------------------------------------------------------------------------------------
@dataclass
class Desk:
    """The staff-side services of one process (built on first use over the server's own services)."""

    staff: Any  # StaffService with the key ring (masked views, unmasking, approvals)
    monitor: Any  # ActivityMonitor
    audit: Any  # AuditLog


class _LockedReport:
    """The gate's consent service as the masked view's report source (under the consent lock)."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def report(self, tenant: str, subject: str) -> dict[str, Any]:
        with self.svc.consent_lock:
            out: dict[str, Any] = self.svc.consent.report(tenant, subject)
            return out


_lock = threading.Lock()


def desk(request: Request) -> Desk:
    svc = services(request)
    found: Desk | None = svc.extra.get("staff_desk")
    if found is None:
        with _lock:
            found = svc.extra.get("staff_desk")
            if found is None:
                from yinsi.staff.anomaly import ActivityMonitor
                from yinsi.staff.service import StaffService

                trail = svc.rights.audit
                staff = StaffService(svc.rights.sessions, trail.log, trail.ring, consent=_LockedReport(svc),
                                     clock=svc.rights.clock)
                found = svc.extra["staff_desk"] = Desk(staff, ActivityMonitor(svc.rights.sessions, None, trail.log),
                                                       trail.log)
    return found


@contextmanager
def _problems(request: Request) -> Iterator[None]:
    """Staff errors as problems; their messages are scrubbed of what the caller sent and of anything PI-shaped."""
    try:
        yield
    except AccessDenied as exc:
        raise ApiProblem(403, "staff_forbidden", scrub(exc.authorization.reason_zh, request), rule=exc.rule) from None
    except SeparationOfDuties as exc:
        raise ApiProblem(409, "separation_of_duties", scrub(str(exc), request), rule="S3") from None
    except NotFound as exc:
        raise ApiProblem(404, "not_found", scrub(str(exc), request)) from None
    except RequestStateError as exc:
        raise ApiProblem(409, "approval_state", scrub(str(exc), request)) from None
    except (InvalidInput, StaffError) as exc:
        message = scrub(str(exc), request)
        raise ApiProblem(422, "invalid_input", message, rule=rule_in(message)) from None


def _call(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    with _problems(request):
        return fn(*args, **kwargs)


def _zip(name: str, data: bytes) -> Response:
    return Response(data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


# --- the rights-request queue -----------------------------------------------------------------------------------
@router.get("/requests", summary="权利请求队列：未结请求，按工作日截止日期标出逾期、即将到期与等待人工处理")
def request_queue(request: Request, who: Starter,
                  view: Annotated[str, Query(pattern=r"^(open|overdue|due_soon|waiting_manual)$")] = "open",
                  soon_days: Annotated[int, Query(ge=0, le=30)] = 3) -> dict[str, Any]:
    d, svc = desk(request), services(request)
    return _call(request, staff_desk.queue, who, d.staff, svc.rights, view=view, soon_days=soon_days)


@router.get("/requests/{request_id}", summary="一项请求的完整经过：状态变化、步骤、回读结果、待人工处理")
def request_story(request_id: RequestId, request: Request, who: Starter) -> dict[str, Any]:
    d, svc = desk(request), services(request)
    return _call(request, staff_desk.story, who, d.staff, svc.rights, request_id)


@router.post("/requests/{request_id}/verify", summary="记录当面（或凭证明材料）核验申请人身份")
def verify_in_person(request_id: RequestId, body: VerifyIn, request: Request, who: Starter) -> dict[str, Any]:
    d, svc = desk(request), services(request)
    _call(request, actions.verify_in_person, who, d.staff, svc.rights, request_id, body.how)
    return _call(request, staff_desk.story, who, d.staff, svc.rights, request_id)


@router.post("/requests/{request_id}/run", summary="执行已核验（注销须已确认）的请求")
def run_request(request_id: RequestId, request: Request, who: Handler) -> dict[str, Any]:
    d, svc = desk(request), services(request)
    _call(request, staff_desk.run_request, who, d.staff, svc.rights, request_id)
    return _call(request, staff_desk.story, who, d.staff, svc.rights, request_id)


@router.post("/requests/{request_id}/complete", summary="确认人工步骤已完成（附处理结果与凭证）")
def complete_step(request_id: RequestId, body: CompleteIn, request: Request, who: Handler) -> dict[str, Any]:
    d, svc = desk(request), services(request)
    _call(request, actions.complete_manual_step, who, d.staff, svc.rights, request_id, body.note, step=body.step)
    return _call(request, staff_desk.story, who, d.staff, svc.rights, request_id)


@router.post("/requests/{request_id}/refuse", summary="拒绝请求：须选择法定拒绝依据并说明理由（R7）")
def refuse(request_id: RequestId, body: RefuseIn, request: Request, who: Handler) -> dict[str, Any]:
    d, svc = desk(request), services(request)
    _call(request, actions.refuse_request, who, d.staff, svc.rights, request_id, body.ground, body.detail)
    return _call(request, staff_desk.story, who, d.staff, svc.rights, request_id)


@router.post("/requests/{request_id}/lift-restriction", summary="解除限制处理请求所设的限制（写明原因）")
def lift_restriction(request_id: RequestId, body: NoteIn, request: Request, who: Handler) -> dict[str, Any]:
    d, svc = desk(request), services(request)
    lifted = _call(request, actions.lift_restriction, who, d.staff, svc.rights, request_id, body.note)
    return {"lifted": lifted}


@router.post("/requests/{request_id}/identifiers", summary="人工步骤所需的主体标识（须说明事由，按查看未掩码信息审计）")
def identifiers(request_id: RequestId, body: ReasonIn, request: Request, who: Unmasker) -> dict[str, Any]:
    d, svc = desk(request), services(request)
    return {"identifiers": _call(request, actions.request_identifiers, who, d.staff, svc.rights, request_id,
                                 body.reason)}


@router.get("/requests/{request_id}/package", summary="导出请求的个人信息包（交付本人；审计）",
            response_class=Response, responses={200: {"content": {"application/zip": {}}, "description": "zip 文件"}})
def export_package(request_id: RequestId, request: Request, who: Handler) -> Response:
    d, svc = desk(request), services(request)
    name, data = _call(request, staff_desk.package_bytes, who, d.staff, svc.rights, request_id)
    return _zip(name, data)


# --- approvals (four-eyes) ---------------------------------------------------------------------------------------
@router.get("/approvals", summary="审批申请（个人信息保护负责人看到全部，其他人只看到自己的）")
def approvals(request: Request, who: Viewer,
              status: Annotated[str | None, Query(pattern=r"^(pending|approved|rejected|used|expired)$")] = None
              ) -> dict[str, Any]:
    d = desk(request)
    found = _call(request, actions.list_requests, who, d.staff, status=status)
    return {"approvals": [a.to_dict() for a in found]}


@router.post("/approvals/{approval_id}/approve", summary="批准（须为另一人：同一人的其他账号也不行）")
def approve(approval_id: ApprovalId, body: DecisionIn, request: Request, who: Approver) -> dict[str, Any]:
    d = desk(request)
    done = _call(request, actions.approve, who, d.staff, approval_id, note=body.note, masked_only=body.masked_only)
    return done.to_dict()


@router.post("/approvals/{approval_id}/reject", summary="驳回审批申请")
def reject(approval_id: ApprovalId, body: NoteIn, request: Request, who: Approver) -> dict[str, Any]:
    d = desk(request)
    done = _call(request, actions.reject, who, d.staff, approval_id, note=body.note)
    return done.to_dict()


# --- people's PI --------------------------------------------------------------------------------------------------
@router.post("/subjects/view", summary="查看某人的个人信息（掩码展示，S4；记录审计）")
def view_subject(body: SubjectIn, request: Request, who: Viewer) -> dict[str, Any]:
    d = desk(request)
    view = _call(request, actions.view_subject, who, d.staff, body.subject, reason=body.reason)
    out: dict[str, Any] = view.to_dict()
    return out


@router.post("/subjects/unmask", summary="查看未掩码的一项个人信息（须说明事由；记录审计）")
def unmask(body: UnmaskIn, request: Request, who: Unmasker) -> dict[str, Any]:
    d = desk(request)
    result = _call(request, actions.unmask, who, d.staff, body.subject, body.item, body.reason)
    out: dict[str, Any] = result.to_dict()
    return out


# --- audit log ------------------------------------------------------------------------------------------------------
@router.get("/audit", summary="审计日志（最新若干条，主体为假名）")
def audit_show(request: Request, who: AuditReader, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    d = desk(request)
    return {"entries": _call(request, staff_desk.audit_entries, who, d.staff, d.audit, limit=limit)}


@router.get("/audit/verify", summary="校验审计日志：哈希链、默克尔根与检查点签名")
def audit_verify(request: Request, who: AuditVerifier) -> dict[str, Any]:
    d = desk(request)
    return _call(request, staff_desk.audit_verify, who, d.staff, d.audit)


# --- alerts ---------------------------------------------------------------------------------------------------------
@router.get("/alerts", summary="异常登录、注册告警")
def alerts(request: Request, who: AlertViewer,
           status: Annotated[str | None, Query(pattern=r"^(open|acknowledged)$")] = "open",
           limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    d = desk(request)
    found = _call(request, actions.list_alerts, who, d.monitor, status=status, limit=limit)
    return {"alerts": [a.to_dict() for a in found]}


@router.post("/alerts/{alert_id}/ack", summary="确认告警（写入审计日志）")
def ack_alert(alert_id: AlertId, body: NoteIn, request: Request, who: AlertAcker) -> dict[str, Any]:
    d = desk(request)
    out: dict[str, Any] = _call(request, actions.ack_alert, who, d.monitor, alert_id, note=body.note).to_dict()
    return out


# --- app keys (administrator) -----------------------------------------------------------------------------------------
@router.get("/app-keys", summary="应用密钥列表（不含密钥本身）")
def list_keys(request: Request, who: Admin) -> dict[str, Any]:
    keys = services(request).need("api_keys")
    return {"keys": keys.list(who, who.tenant)}


@router.post("/app-keys", status_code=201, summary="创建应用密钥（密钥只显示这一次）")
def create_key(body: KeyIn, request: Request, who: Admin) -> dict[str, Any]:
    keys = services(request).need("api_keys")
    key_id, token = keys.create(who, who.tenant, name=body.name, scopes=[s.value for s in body.scopes])
    return {"key_id": key_id, "token": token, "scopes": sorted(s.value for s in body.scopes)}


@router.post("/app-keys/{key_id}/rotate", summary="轮换应用密钥（新密钥只显示这一次）")
def rotate_key(key_id: KeyId, body: RotateIn, request: Request, who: Admin) -> dict[str, Any]:
    keys = services(request).need("api_keys")
    token = keys.rotate(who, who.tenant, key_id, grace=timedelta(seconds=body.grace_seconds))
    return {"key_id": key_id, "token": token}


@router.post("/app-keys/{key_id}/revoke", summary="吊销应用密钥")
def revoke_key(key_id: KeyId, request: Request, who: Admin) -> dict[str, Any]:
    services(request).need("api_keys").revoke(who, who.tenant, key_id)
    return {"key_id": key_id, "revoked": True}
