"""Minors and transfers abroad over the API.

App routes (server to server, the app's key): guardian consent and objection, self-supporting status and the
minor's status (``suspended`` is what the app shows on the account), and transfers abroad asked like the gate.
Staff routes (administrator, ``configure``): recipient assessments and the year's counts. Routes only parse,
check the tenant and call :class:`yinsi.services.minors.MinorsService` / :class:`yinsi.services.abroad.AbroadService`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field, StringConstraints

from yinsi.api.deps import app_principal, same_tenant, services, staff_principal
from yinsi.api.models import Body, Ident, Tenant
from yinsi.api.routes.apps import decision_json
from yinsi.auth.principals import AppPrincipal, AppScope, StaffPrincipal
from yinsi.services.abroad import AbroadService
from yinsi.services.minors import MinorsService
from yinsi.staff.roles import StaffAction

router = APIRouter(prefix="/api/v1", tags=["minors", "abroad"])

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
SubjectPath = Annotated[str, Path(min_length=1, max_length=128, description="个人在应用中的用户标识")]
GuardianId = Annotated[str, StringConstraints(min_length=5, max_length=32, pattern=r"^\+?[0-9A-Za-z]+$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=_PRINTABLE)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]
Admin = Annotated[StaffPrincipal, Depends(staff_principal(StaffAction.CONFIGURE))]


class GuardianIn(Body):
    tenant: Tenant | None = None
    guardian: GuardianId = Field(description="监护人的身份证号码或手机号码（只以盲索引与密文保存）")
    relation: Literal["father", "mother", "grandparent", "sibling", "other_guardian"]
    verification: Literal["id_document", "face", "sms_id_match", "in_person"]
    channel: Literal["app", "web", "phone", "staff"] = "app"


class ObjectionIn(Body):
    tenant: Tenant | None = None
    guardian: GuardianId = Field(description="提出异议的监护人的身份证号码或手机号码")


class SelfSupportingIn(Body):
    tenant: Tenant | None = None
    evidence: Short = Field(description="认定依据，如 labour_contract、income_proof")
    self_supporting: bool = True


class TransferIn(Body):
    tenant: Tenant | None = None
    subject: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    recipient: Ident
    items: list[Ident] = Field(min_length=1, max_length=100)
    feature: Ident | None = None
    purpose: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_PRINTABLE)] | None = None


class AssessmentIn(Body):
    recipient: Ident
    conclusion: Literal["adequate", "inadequate"]
    summary: Text
    assessor: Annotated[str, StringConstraints(min_length=1, max_length=190, pattern=_PRINTABLE)]
    assessed_on: date
    valid_until: date | None = None


@router.post("/minors/{subject}/guardian", status_code=201, summary="记录经核验的监护人同意（M1、M2）")
def guardian_consent(body: GuardianIn, request: Request, subject: SubjectPath,
                     principal: AppPrincipal = Depends(app_principal(AppScope.CONSENT))) -> dict[str, Any]:
    """The guardian's identity is kept as a blind index and encrypted; the answer names the record only."""
    svc = services(request)
    tenant = same_tenant(principal, body.tenant)
    with svc.consent_lock:
        gid = MinorsService(svc.consent).record_guardian_consent(
            tenant, subject, guardian=body.guardian, relation=body.relation, verification=body.verification,
            channel=body.channel)
    return {"guardian_record": gid}


@router.post("/minors/{subject}/objection", summary="监护人提出异议：暂停该未成年人的处理与账户")
def guardian_objection(body: ObjectionIn, request: Request, subject: SubjectPath,
                       principal: AppPrincipal = Depends(app_principal(AppScope.CONSENT))) -> dict[str, Any]:
    svc = services(request)
    tenant = same_tenant(principal, body.tenant)
    with svc.consent_lock:
        rule = MinorsService(svc.consent).object(tenant, subject, guardian=body.guardian)
    return {"suspended": True, "rule": rule}


@router.post("/minors/{subject}/self-supporting", summary="认定（或撤销）十六周岁以上自立的未成年人视为成年人（M2）")
def self_supporting(body: SelfSupportingIn, request: Request, subject: SubjectPath,
                    principal: AppPrincipal = Depends(app_principal(AppScope.SUBJECTS))) -> dict[str, Any]:
    svc = services(request)
    tenant = same_tenant(principal, body.tenant)
    with svc.consent_lock:
        MinorsService(svc.consent).set_self_supporting(tenant, subject, evidence=body.evidence,
                                                       actor=principal.actor, on=body.self_supporting)
    return {"self_supporting": body.self_supporting}


@router.get("/minors/{subject}", summary="未成年人状态：年龄认定、监护人同意、账户是否暂停、自动开启的删除")
def minor_status(request: Request, subject: SubjectPath,
                 principal: AppPrincipal = Depends(app_principal(AppScope.SUBJECTS))) -> dict[str, Any]:
    svc = services(request)
    with svc.consent_lock:
        return MinorsService(svc.consent).status(principal.tenant, subject).to_json()


@router.post("/abroad/transfers", summary="询问能否向境外提供（X1、X2）；允许时计入当年人数")
def transfer_abroad(body: TransferIn, request: Request,
                    principal: AppPrincipal = Depends(app_principal(AppScope.GATE))) -> dict[str, Any]:
    """Refused without the separate consents, a declared foreign recipient and its recorded assessment (X1), or
    beyond what the declared mechanism covers this year (X2); ``warnings`` near a threshold."""
    svc = services(request)
    tenant = same_tenant(principal, body.tenant)
    with svc.consent_lock:
        res = AbroadService(svc.consent).export(tenant, body.subject, body.recipient, body.items,
                                                feature=body.feature, purpose=body.purpose, actor=principal.actor)
    out = res.to_json()
    out["gate"] = decision_json(res.decision) if res.decision is not None else None
    return out


@router.post("/staff/abroad/assessments", status_code=201, summary="记录对境外接收方的评估（PIPL 55，X1）")
def record_assessment(body: AssessmentIn, request: Request, principal: Admin) -> dict[str, Any]:
    svc = services(request)
    with svc.consent_lock:
        aid = AbroadService(svc.consent).record_assessment(
            principal.tenant, body.recipient, conclusion=body.conclusion, summary=body.summary,
            assessor=body.assessor, assessed_on=body.assessed_on, valid_until=body.valid_until)
    return {"id": aid}


@router.get("/staff/abroad/assessments", summary="已记录的境外接收方评估")
def list_assessments(request: Request, principal: Admin) -> dict[str, Any]:
    svc = services(request)
    with svc.consent_lock:
        return {"assessments": AbroadService(svc.consent).assessments(principal.tenant)}


@router.get("/staff/abroad/counters", summary="当年向境外提供个人信息的人数、所需机制与提醒（X2）")
def counters(request: Request, principal: Admin) -> dict[str, Any]:
    svc = services(request)
    with svc.consent_lock:
        abroad = AbroadService(svc.consent)
        return {**abroad.counters(principal.tenant), "alerts": abroad.alerts(principal.tenant)}
