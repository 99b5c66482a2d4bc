"""Decisions by people (本人与员工的决定): the person confirms a cancellation or withdraws the request, staff
refuse with a ground (R7) or confirm the manual steps they performed."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from yinsi.audit import AuditAction
from yinsi.domain.rights import NEEDS_CONFIRMATION, REQUEST_ZH, STATE_ZH, Refusal, RefusalGround, RequestType, State
from yinsi.rights.context import RequestError, RightsContext, dumps
from yinsi.rights.prerequisites import prerequisites
from yinsi.rights.steps import DONE, MANUAL_PENDING
from yinsi.rights.transitions import move
from yinsi.storage.rights_tables import RequestStep


def confirm(ctx: RightsContext, tenant: str, request_id: str, actor: str = "requester") -> list[str]:
    """The person confirms their cancellation: checked prerequisites must hold; from now on it cannot be
    withdrawn. Returns the prerequisites a person still has to confirm (shown to the person)."""
    with ctx.sessions() as s:
        row = ctx.get(s, tenant, request_id)
        rtype, kind, subject = RequestType(row.type), row.subject_kind, ctx.subject_of(row)
        state = State(row.state)
    if rtype not in NEEDS_CONFIRMATION:
        raise RequestError(f"{REQUEST_ZH[rtype]}请求无需确认")
    if state is not State.VERIFIED:
        raise RequestError(f"请求处于「{STATE_ZH[state]}」状态，须先核验身份再确认注销")
    unmet, unchecked = prerequisites(ctx, tenant, kind, subject)
    if unmet:
        raise RequestError("暂不能注销：" + "；".join(unmet))
    with ctx.tx() as s:
        row = ctx.get(s, tenant, request_id)
        row.confirmed_at = ctx.clock()
        move(ctx, s, row, State.CONFIRMED, actor, "本人确认注销账号；确认后不可撤回")
    return unchecked


def withdraw(ctx: RightsContext, tenant: str, request_id: str, actor: str = "requester") -> None:
    """The person withdraws the request (not possible once a cancellation is confirmed)."""
    with ctx.tx() as s:
        row = ctx.get(s, tenant, request_id)
        if State(row.state) is State.CONFIRMED:
            raise RequestError("注销已确认，不可撤回")
        move(ctx, s, row, State.WITHDRAWN, actor, "申请人撤回请求")


def refuse(ctx: RightsContext, tenant: str, request_id: str, ground: RefusalGround | str, detail: str,
           actor: str) -> None:
    """Refuse with a ground and a detail (a refusal without a reason is impossible, R7)."""
    try:
        g = RefusalGround(ground)
    except ValueError:
        raise RequestError(f"未知的拒绝依据 {ground!r}") from None
    with ctx.tx() as s:
        row = ctx.get(s, tenant, request_id)
        move(ctx, s, row, State.REFUSED, actor, "拒绝请求", Refusal(g, detail))


def confirm_manual(ctx: RightsContext, tenant: str, request_id: str, actor: str, note: str, *,
                   step: str | None = None) -> tuple[State, str]:
    """A person confirms manual steps (all, or the one whose key starts with ``step``). Returns
    (``waiting_manual`` while some are left, else ``in_progress``: the request continues; its id)."""
    if not note.strip():
        raise RequestError("请说明人工处理的结果（例如工单回执编号）")
    with ctx.tx() as s:
        row = ctx.get(s, tenant, request_id)
        if State(row.state) is not State.WAITING_MANUAL:
            raise RequestError(f"请求处于「{STATE_ZH[State(row.state)]}」状态，没有等待人工处理的步骤")
        pending = [st for st in s.scalars(select(RequestStep).where(
            RequestStep.request_id == row.id, RequestStep.status == MANUAL_PENDING).order_by(RequestStep.seq))
            if step is None or st.location_id.startswith(step) or st.location_id.startswith(f"manual:{step}")]
        if not pending:
            raise RequestError(f"没有匹配 {step} 的待人工处理步骤")
        for st in pending:
            detail = json.loads(st.detail) if st.detail else {}
            st.status = DONE
            st.attempts += 1
            st.detail = dumps({**detail, "confirmed_by": actor, "note": note})
            st.updated_at = ctx.clock()
        left = s.scalar(select(func.count()).select_from(RequestStep).where(
            RequestStep.request_id == row.id, RequestStep.status == MANUAL_PENDING))
        ctx.audit.record_in(s, tenant, actor, AuditAction.RIGHTS_REQUEST_STEP, subject=ctx.subject_of(row),
                            details={"request": row.id, "manual_steps_confirmed": [p.location_id for p in pending]})
        if left:
            return State.WAITING_MANUAL, row.id
        move(ctx, s, row, State.IN_PROGRESS, actor, f"人工步骤已确认：{note}")
        return State.IN_PROGRESS, row.id
