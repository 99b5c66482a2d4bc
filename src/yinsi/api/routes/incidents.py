"""Security incidents and policy-change notices for staff (``/api/v1/staff/incidents``,
``/api/v1/staff/policy-notices``).

Incident routes need the ``manage_incident`` action (security officer, privacy officer); the use cases of
:class:`yinsi.incidents.IncidentService` check the account's roles again as they are now, act on the
principal's tenant only, audit every step and every refusal. The notice plans and re-consent progress
(counts only, no PI) are for the administrator who publishes policies (``configure``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from yinsi.api.deps import services, staff_principal
from yinsi.api.problems import ApiProblem, rule_in, scrub
from yinsi.auth.principals import StaffPrincipal
from yinsi.staff.errors import AccessDenied, InvalidInput, NotFound, StaffError
from yinsi.staff.roles import StaffAction

router = APIRouter(prefix="/api/v1/staff", tags=["incidents"])

T = TypeVar("T")
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Text = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=_PRINTABLE)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Item = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.]+$")]
IncidentId = Annotated[str, Path(min_length=4, max_length=32, pattern=r"^[A-Z0-9-]+$", description="事件编号")]

Manager = Annotated[StaffPrincipal, Depends(staff_principal(StaffAction.MANAGE_INCIDENT))]
Admin = Annotated[StaffPrincipal, Depends(staff_principal(StaffAction.CONFIGURE))]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordIn(_Body):
    what_happened: LongText | None = Field(None, description="事件经过")
    pi_types: LongText | None = Field(None, description="涉及的个人信息种类")
    cause: LongText | None = Field(None, description="发生原因")
    possible_harm: LongText | None = Field(None, description="可能造成的危害")
    measures: LongText | None = Field(None, description="已采取的补救措施")
    what_people_can_do: LongText | None = Field(None, description="个人可以采取的减轻危害的措施")
    contact: LongText | None = Field(None, description="联系方式")

    def fields(self) -> dict[str, str]:
        return {k: str(getattr(self, k)) for k in _RECORD_KEYS if getattr(self, k) is not None}


_RECORD_KEYS = ("what_happened", "pi_types", "cause", "possible_harm", "measures", "what_people_can_do", "contact")


class OpenIn(RecordIn):
    title: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_PRINTABLE)]
    discovered_at: AwareDatetime | None = Field(None, description="发现时间（默认现在）")


class AssessIn(RecordIn):
    severity: Annotated[str, StringConstraints(max_length=16)] | None = Field(
        None, description="general/larger/major/critical 或 一般/较大/重大/特别重大")
    critical_infrastructure: bool | None = Field(None, description="关键信息基础设施（报告时限 1 小时）")


class AffectedIn(_Body):
    items: list[Item] = Field(min_length=1, max_length=50, description="受影响的个人信息项")
    start: AwareDatetime
    end: AwareDatetime


class NotifyIn(_Body):
    announce: bool = Field(False, description="同时发布公告（须写明理由）")
    reason: Text | None = Field(None, description="发布公告的理由（I2）")


class NoteIn(_Body):
    note: Text


_lock = threading.Lock()


def _incidents(request: Request) -> Any:
    svc = services(request)
    found = svc.extra.get("incidents")
    if found is None:
        with _lock:
            found = svc.extra.get("incidents")
            if found is None:
                from yinsi.incidents import IncidentService

                found = svc.extra["incidents"] = IncidentService(svc.rights.url, clock=svc.rights.clock)
    return found


def _notices(request: Request) -> Any:
    svc = services(request)
    found = svc.extra.get("policy_notices")
    if found is None:
        with _lock:
            found = svc.extra.get("policy_notices")
            if found is None:
                from yinsi.services.policy_notices import PolicyNotices

                found = svc.extra["policy_notices"] = PolicyNotices(svc.rights.url, clock=svc.rights.clock)
    return found


@contextmanager
def _problems(request: Request) -> Iterator[None]:
    from yinsi.notify.errors import NotifyError

    try:
        yield
    except AccessDenied as exc:
        raise ApiProblem(403, "staff_forbidden", scrub(exc.authorization.reason_zh, request), rule=exc.rule) from None
    except NotFound as exc:
        raise ApiProblem(404, "not_found", scrub(str(exc), request)) from None
    except (InvalidInput, StaffError, NotifyError) as exc:
        message = scrub(str(exc), request)
        raise ApiProblem(422, "invalid_input", message, rule=rule_in(message)) from None


def _call(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    with _problems(request):
        return fn(*args, **kwargs)


def _out(view: Any) -> dict[str, Any]:
    out: dict[str, Any] = view.to_dict()
    return out


@router.get("/incidents", summary="个人信息安全事件列表")
def list_incidents(request: Request, who: Manager) -> dict[str, Any]:
    views = _call(request, _incidents(request).list_incidents, who.tenant, who.staff_id)
    return {"incidents": [v.to_dict() for v in views]}


@router.post("/incidents", status_code=201, summary="登记安全事件（PIPL 57 记录中已知的部分）")
def open_incident(body: OpenIn, request: Request, who: Manager) -> dict[str, Any]:
    return _out(_call(request, _incidents(request).open, who.tenant, who.staff_id, body.title,
                      discovered_at=body.discovered_at, record=body.fields()))


@router.get("/incidents/{incident_id}", summary="一起安全事件：记录、级别与报告时限、受影响人数、通知")
def show_incident(incident_id: IncidentId, request: Request, who: Manager) -> dict[str, Any]:
    return _out(_call(request, _incidents(request).show, who.tenant, who.staff_id, incident_id))


@router.post("/incidents/{incident_id}/assess", summary="评估级别（确定报告时限）并补全记录")
def assess_incident(incident_id: IncidentId, body: AssessIn, request: Request, who: Manager) -> dict[str, Any]:
    return _out(_call(request, _incidents(request).assess, who.tenant, who.staff_id, incident_id,
                      severity=body.severity, critical_infrastructure=body.critical_infrastructure,
                      record=body.fields()))


@router.post("/incidents/{incident_id}/affected", summary="按处理记录（与数据地图）确定受影响的人")
def affected(incident_id: IncidentId, body: AffectedIn, request: Request, who: Manager) -> dict[str, Any]:
    dm = services(request).rights.datamaps.get(who.tenant)
    view = _call(request, _incidents(request).affected, who.tenant, who.staff_id, incident_id, body.items,
                 body.start, body.end, datamap=dm, store_urls=services(request).rights.store_urls)
    return _out(view)


@router.get("/incidents/{incident_id}/affected", summary="受影响的人（假名化的主体编号、是否未成年人、信息项）")
def affected_people(incident_id: IncidentId, request: Request, who: Manager) -> dict[str, Any]:
    return {"people": _call(request, _incidents(request).affected_people, who.tenant, who.staff_id, incident_id)}


@router.post("/incidents/{incident_id}/notify", summary="通知受影响的人（未成年人通知监护人）；公告须写明理由")
def notify(incident_id: IncidentId, body: NotifyIn, request: Request, who: Manager) -> dict[str, Any]:
    return _out(_call(request, _incidents(request).notify, who.tenant, who.staff_id, incident_id,
                      announce=body.announce, announce_reason=body.reason))


@router.post("/incidents/{incident_id}/report", summary="记录已向网信部门报告")
def report(incident_id: IncidentId, body: NoteIn, request: Request, who: Manager) -> dict[str, Any]:
    return _out(_call(request, _incidents(request).report, who.tenant, who.staff_id, incident_id, body.note))


@router.post("/incidents/{incident_id}/close", summary="关闭事件（较大及以上须已报告）")
def close(incident_id: IncidentId, body: NoteIn, request: Request, who: Manager) -> dict[str, Any]:
    return _out(_call(request, _incidents(request).close_incident, who.tenant, who.staff_id, incident_id, body.note))


@router.get("/policy-notices", summary="变更告知与停止运营计划（各状态的告知数，不含个人信息）")
def notice_plans(request: Request, who: Admin) -> dict[str, Any]:
    return {"plans": [p.to_dict() for p in _call(request, _notices(request).plans, who.tenant)]}


@router.get("/policy-notices/progress", summary="重新同意进度：每个变更版本受影响与已重新同意的人数")
def reconsent_progress(request: Request, who: Admin) -> dict[str, Any]:
    out: dict[str, Any] = _call(request, _notices(request).progress, who.tenant)
    return out

