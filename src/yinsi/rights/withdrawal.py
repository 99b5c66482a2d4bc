"""Withdrawal of consent and restriction of processing (撤回同意、限制处理): the ledger records a withdrawal
for each named scope (C6), or a restriction the gate enforces (N4, PIPL 44) until a member of staff lifts it."""

from __future__ import annotations

import json
from collections.abc import Sequence

from yinsi.audit import AuditAction
from yinsi.domain.consent import RESTRICT_ALL, EventType, Status
from yinsi.domain.rights import RequestType, State
from yinsi.rights.context import Job, RequestError, RightsContext, dumps
from yinsi.rights.transitions import finish


def run_withdrawal(ctx: RightsContext, job: Job) -> State:
    """A withdrawal of consent (the named scopes, default every active one) or a restriction."""
    scopes = job.details.get("scopes") or None
    if job.type is RequestType.RESTRICTION:
        return run_restriction(ctx, job, scopes)
    n = end_consents(ctx, job, scopes)
    result = {"consents_ended": n, "scopes": scopes or "all"}
    return finish(ctx, job, result, f"已撤回 {n} 项同意，自撤回时起停止相关处理（此前基于同意的处理不受影响，C6）")


def run_restriction(ctx: RightsContext, job: Job, consent_scopes: list[str] | None) -> State:
    """PIPL 44: restrict the processing of the named functions (default: all) in the ledger, so that the
    gate refuses it (N4) unless a law requires it; consents named with ``scopes`` are withdrawn too.
    Idempotent: a rerun places nothing twice."""
    decl = job.decl or ctx.declaration(job.tenant)
    features = list(job.details.get("features") or [])
    restricted = [f"feature:{f}" for f in features] or [RESTRICT_ALL]
    n = end_consents(ctx, job, consent_scopes) if consent_scopes else 0
    ctx.consents.restrict(job.tenant, job.subject, restricted, request_ref=job.request_id, actor=job.actor,
                          reason=f"权利请求 {job.request_id}：本人要求限制处理（PIPL 44）")
    names = "、".join(f.name for f in decl.features if f.id in features) or "全部个人信息处理"
    result = {"restricted": restricted, "consents_ended": n, "scopes": consent_scopes or []}
    return finish(ctx, job, result, f"已限制处理：{names}；处理闸门将拒绝相关处理（N4，PIPL 44），"
                                    "法律、行政法规规定必须处理的除外" + (f"；已撤回 {n} 项同意" if n else ""))


def lift_restriction(ctx: RightsContext, tenant: str, request_id: str, actor: str, note: str) -> list[str]:
    """Lift the restrictions a completed restriction request placed (the person asked, or the reason
    for the restriction ended); recorded in the ledger, on the request and in the audit log."""
    if not actor.strip() or not note.strip():
        raise RequestError("请写明解除限制的员工与原因（例如：本人申请解除，工单编号）")
    with ctx.sessions() as s:
        row = ctx.get(s, tenant, request_id)
        if RequestType(row.type) is not RequestType.RESTRICTION or State(row.state) is not State.COMPLETED:
            raise RequestError("只有已完成的限制处理请求才能解除限制")
        result = json.loads(row.result) if row.result else {}
        subject = ctx.subject_of(row)
    if result.get("lifted"):
        raise RequestError(f"该请求的限制已于 {result['lifted']['at']} 解除")
    lifted = ctx.consents.lift_restriction(tenant, subject, list(result.get("restricted") or []),
                                           request_ref=row.id, actor=actor, reason=note)
    with ctx.tx() as s:
        row = ctx.get(s, tenant, request_id)
        result["lifted"] = {"at": ctx.clock().isoformat(), "by": actor, "scopes": lifted}
        row.result = dumps(result)
        row.updated_at = ctx.clock()
        ctx.audit.record_in(s, tenant, actor, AuditAction.PROCESSING_RESTRICTION, subject=subject,
                            details={"request": row.id, "event": "lifted", "scopes": lifted})
    return list(lifted)


def end_consents(ctx: RightsContext, job: Job, scopes: Sequence[str] | None = None) -> int:
    """Withdraw the subject's active consents (all, or ``scopes``); idempotent: only active ones change."""
    if scopes is not None and not scopes:
        return 0
    cs = ctx.consents
    n = 0
    for scope, st in cs.state(job.tenant, job.subject).consents.items():
        if st.status is Status.ACTIVE and (scopes is None or scope in scopes):
            cs.record_consent(job.tenant, job.subject, scope, EventType.WITHDRAWN, kind=st.kind, channel="staff",
                              actor=f"rights-request:{job.request_id[:8]}")
            n += 1
    return n
