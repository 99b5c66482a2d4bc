"""App integration (server to server): the gate, consents, permissions, subjects, rights-request intake.

Every route authenticates the app's key for one scope and checks that any tenant the body names is the key's
own; then it calls the consent or rights service and returns what it answered.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from fastapi import APIRouter, Depends, Path, Request, Response

from yinsi.api.deps import app_principal, same_tenant, services
from yinsi.api.models import (
    ConsentBatchIn,
    ConsentsIn,
    GateBatchIn,
    GateCheckIn,
    PermissionIn,
    RightsRequestIn,
    SubjectIn,
)
from yinsi.api.problems import rule_url
from yinsi.auth.principals import AppPrincipal, AppScope
from yinsi.domain.gate import Decision

router = APIRouter(prefix="/api/v1", tags=["apps"])


def decision_json(d: Decision) -> dict[str, Any]:
    """A decision as the API returns it: the gate's answer with a link to every rule it cites."""
    out = d.to_json()
    for entry in (*out["missing"], *out["reasons"]):
        if entry.get("rule"):
            entry["rule_url"] = rule_url(entry["rule"])
    return out


class _Encoded:
    """The JSON text of recent decisions, by identity: the gate memoises decisions, so most answers repeat
    one of a few objects (each entry keeps its decision alive, so an id is never reused while cached)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._cache: dict[int, tuple[Decision, str]] = {}
        self._lock = threading.Lock()

    def __call__(self, d: Decision) -> str:
        hit = self._cache.get(id(d))
        if hit is not None and hit[0] is d:
            return hit[1]
        text = json.dumps(decision_json(d), ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            if len(self._cache) >= self.size:
                self._cache.clear()
            self._cache[id(d)] = (d, text)
        return text


_encoded = _Encoded()


@router.post("/gate/check", summary="询问处理闸门（一次判定，或 batch 中至多 1000 次）", response_model=None,
             responses={200: {"content": {"application/json": {}}, "description": "判定（或 decisions 列表）"}})
def gate_check(body: GateCheckIn, request: Request,
               principal: AppPrincipal = Depends(app_principal(AppScope.GATE))) -> Response:
    """Each decision: ``allowed``, the legal ``basis`` (PIPL 13), what is ``missing`` and the ``reasons``, each
    with its rule id and ``rule_url``. The decision is appended to the processing record unless ``record`` is
    false."""
    svc = services(request)
    tenant = same_tenant(principal, body.tenant)
    questions = body.batch if isinstance(body, GateBatchIn) else [body]
    for q in questions:
        same_tenant(principal, q.tenant)
    actor = principal.actor
    check = svc.consent.check
    # ConsentService.check is thread-safe (its cache and record writer lock themselves): decisions run
    # concurrently on the server's threads; consent_lock serialises only the ledger writes below.
    decisions = [check(tenant, q.subject, q.action, feature=q.feature, purpose=q.purpose, items=q.items,
                       recipient=q.recipient, destination=q.destination, device=q.device, actor=actor,
                       record=q.record, exception=q.exception) for q in questions]
    if isinstance(body, GateBatchIn):
        text = '{"decisions":[' + ",".join(_encoded(d) for d in decisions) + "]}"
    else:
        text = _encoded(decisions[0])
    return Response(text.encode(), media_type="application/json")


def _consent_json(ev: Any) -> dict[str, Any]:
    return {"record_id": ev.record_id, "scope": ev.scope, "event": ev.event.value, "kind": ev.kind.value,
            "policy": ev.policy_label, "shown_hash": ev.shown_hash, "time": ev.event_time.isoformat()}


@router.post("/consents", status_code=201, summary="记录同意事件（一次，或 batch 中至多 1000 条，同一事务）")
def record_consents(body: ConsentsIn, request: Request,
                    principal: AppPrincipal = Depends(app_principal(AppScope.CONSENT))) -> dict[str, Any]:
    """Consent events are validated against the tenant's current policy: a separate consent (单独同意) without
    the disclosures the law requires is refused (422, with the rule). A batch is recorded all or nothing."""
    svc = services(request)
    tenant = same_tenant(principal, body.tenant)
    events = body.batch if isinstance(body, ConsentBatchIn) else [body]
    for e in events:
        same_tenant(principal, e.tenant)
    with svc.consent_lock:
        made = [svc.consent.make_event(tenant, e.subject, e.scope, e.event, kind=e.kind, channel=e.channel,
                                       disclosures=e.disclosures, at=e.at, actor=e.actor,
                                       collection_method=e.collection_method, shown_hash=e.shown_hash)
                for e in events]
        svc.consent.append_consents(made)
    if isinstance(body, ConsentBatchIn):
        return {"recorded": [_consent_json(ev) for ev in made]}
    return _consent_json(made[0])


@router.post("/permissions", status_code=201, summary="记录设备权限事件（授予、拒绝、关闭）")
def record_permission(body: PermissionIn, request: Request,
                      principal: AppPrincipal = Depends(app_principal(AppScope.PERMISSIONS))) -> dict[str, Any]:
    svc = services(request)
    tenant = same_tenant(principal, body.tenant)
    with svc.consent_lock:
        ev = svc.consent.record_permission(tenant, body.subject, body.device, body.permission, body.event,
                                           at=body.at, feature=body.feature)
    return {"permission": ev.permission, "event": ev.event.value, "feature": ev.feature, "time": ev.event_time.isoformat()}


@router.post("/subjects", status_code=201, summary="登记个人（出生日期，用于不满十四周岁的规则）")
def register_subject(body: SubjectIn, request: Request,
                     principal: AppPrincipal = Depends(app_principal(AppScope.SUBJECTS))) -> dict[str, Any]:
    """From an ID number only the birth date is kept; the number itself is not stored."""
    svc = services(request)
    tenant = same_tenant(principal, body.tenant)
    with svc.consent_lock:
        born = svc.consent.register_subject(tenant, body.subject, birth_date=body.birth_date,
                                            id_number=body.id_number)
    return {"registered": True, "birth_date": born.isoformat() if born else None}


@router.get("/subjects/{subject}/state", summary="个人当前的同意、权限与限制处理状态")
def subject_state(request: Request, subject: str = Path(min_length=1, max_length=128),
                  principal: AppPrincipal = Depends(app_principal(AppScope.SUBJECTS))) -> dict[str, Any]:
    svc = services(request)
    with svc.consent_lock:
        svc.consent.policy(principal.tenant)  # an unknown tenant is a 404, not an empty state
        st = svc.consent.state(principal.tenant, subject)
    return {
        "consents": [{"scope": k, "status": v.status.value, "kind": v.kind.value, "policy": v.policy_label,
                      "time": v.event_time.isoformat()} for k, v in sorted(st.consents.items())],
        "permissions": [{"device": d, "permission": p, "status": v.status.value, "time": v.changed_at.isoformat()}
                        for (d, p), v in sorted(st.permissions.items())],
        "restrictions": [{"scope": scope, "since": since.isoformat()} for scope, since in sorted(st.restrictions.items())],
        "birth_date": st.birth_date.isoformat() if st.birth_date else None,
    }


@router.post("/requests", status_code=201, summary="受理个人权利请求（来自 App 自有页面）")
def submit_request(body: RightsRequestIn, request: Request,
                   principal: AppPrincipal = Depends(app_principal(AppScope.REQUESTS))) -> dict[str, Any]:
    """The request starts unverified: the person's identity is then verified with a code to a contact on
    record or by staff (R8). The answer has the request id, its state and its working-day deadline."""
    svc = services(request)
    tenant = same_tenant(principal, body.tenant)
    rid = svc.rights.submit(tenant, body.subject, body.type, subject_kind=body.subject_kind, channel="app",
                            requester=body.requester, details=body.details.as_details() or None,
                            received_at=body.received_at)
    view = svc.rights.show(tenant, rid)
    return {"id": rid, "type": view.type.value, "state": view.state.value, "due_date": view.due_date.isoformat(),
            "deadline": view.deadline, "deadline_provisional": view.deadline_provisional}
