"""Intake (受理): a request is accepted with its type, subject and details checked, and its deadline counted
from the tenant's promise and the statutory ceiling on the holiday calendar (D1, D2, R9, R10)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from yinsi.audit import AuditAction
from yinsi.domain.deadlines import (
    CalendarNotCovered,
    deadline_for,
    due_date,
    format_date,
    promised_reply_time,
    statutory_ceiling,
)
from yinsi.domain.policy import Declaration
from yinsi.domain.rights import DELETION_GROUND_ZH, REQUEST_ZH, RIGHT_OF, DeletionGround, RequestType, State
from yinsi.domain.taxonomy import taxonomy
from yinsi.rights.context import BEIJING, RequestError, RightsContext
from yinsi.storage.rights_tables import DETAILS_FIELD, IDENTITY_FIELD, RequestTransition, RightsRequest

ERASING = frozenset({RequestType.DELETION, RequestType.CANCEL_ACCOUNT})
COPYING = frozenset({RequestType.ACCESS, RequestType.COPY, RequestType.PORTABILITY})
CORRECTING = frozenset({RequestType.CORRECTION, RequestType.SUPPLEMENT})
DECEASED_ACTIONS = {"access": RequestType.ACCESS, "copy": RequestType.COPY, "correction": RequestType.CORRECTION,
                    "deletion": RequestType.DELETION}


def submit(ctx: RightsContext, tenant: str, subject: str, type_: RequestType | str, *,
           subject_kind: str | None = None, channel: str = "app", requester: str | None = None,
           details: Mapping[str, Any] | None = None, received_at: datetime | None = None) -> str:
    """Accept a request; its deadline runs from ``received_at`` (default now). Returns the request id.

    ``details`` by type: correction/supplement ``{"changes": {item or table.column: value}}``; deletion
    ``{"ground": DeletionGround, "items": [...]}``; withdrawal/restriction ``{"scopes": [...]}``;
    deceased ``{"action": access|copy|correction|deletion, "relation": "配偶", ...}``; explanation
    ``{"about": "rules"|"automated_decision", "question": ...}``; complaint ``{"text": ...}``.
    """
    try:
        rtype = RequestType(type_)
    except ValueError:
        raise RequestError(f"未知的请求类型 {type_!r}（可选：{'、'.join(t.value for t in RequestType)}）") from None
    if not subject.strip():
        raise RequestError("请给出个人信息主体的编号")
    decl = ctx.declaration(tenant)
    dm = ctx.datamaps.get(tenant)
    kind = subject_kind or (dm.subjects[0].id if dm is not None and dm.subjects else "account")
    if dm is not None:
        ctx.subject_kind(dm, kind)
    clean = check_details(rtype, dict(details or {}))
    if dm is not None and acts_on_data(rtype, clean) and not ctx.subject_exists(dm, tenant, kind, subject):
        raise RequestError(f"应用中没有该主体（{kind}）的记录，无可{REQUEST_ZH[rtype]}的个人信息，请求不予受理；"
                           "请核对主体编号与类型")
    if rtype is RequestType.RESTRICTION:
        unknown = [f for f in clean.get("features") or [] if decl.feature(f) is None]
        if unknown:
            raise RequestError(f"功能 {'、'.join(unknown)} 未在隐私政策中声明"
                               f"（可选：{'、'.join(f.id for f in decl.features)}）")
    received = received_at or ctx.clock()
    if received.tzinfo is None:
        raise RequestError("受理时间须带时区（例如 2026-02-13T10:00+08:00）")
    day = received.astimezone(BEIJING).date()
    provisional = False
    try:
        dl = deadline_for(decl, RIGHT_OF[rtype], day, ctx.calendar)
        due, rule, explanation = dl.due, dl.rule_id, dl.explanation
    except CalendarNotCovered as exc:
        due, rule, explanation, provisional = uncovered_deadline(ctx, decl, rtype, day, exc)
    rid = str(uuid.uuid4())
    ref = ctx.subject_ref(tenant, kind, subject)
    other = (requester or "").strip() or None
    identity = {k: v for k, v in (("subject", subject if ref != subject else None), ("requester", other)) if v}
    with ctx.tx() as s:
        row = RightsRequest(
            id=rid, tenant_id=tenant, subject_kind=kind, subject_id=ref, type=rtype.value,
            state=State.UNVERIFIED.value, channel=channel, requester="other" if other else "self",
            identity_encrypted=ctx.encrypt(tenant, IDENTITY_FIELD, identity) if identity else None,
            policy_label=decl.version.label,
            received_at=received, due_date=due, deadline_rule=rule, deadline_explanation=explanation,
            deadline_provisional=provisional,
            details_encrypted=ctx.encrypt(tenant, DETAILS_FIELD, clean) if clean else None,
            plan_encrypted=None, confirmed_at=None, lease_owner=None, lease_until=None, refusal_ground=None,
            refusal_detail=None, result=None,
            updated_at=received)
        s.add(row)
        s.flush()  # the request row first: the transition references it
        s.add(RequestTransition(request_id=rid, tenant_id=tenant, from_state=None, to_state=State.UNVERIFIED.value,
                                actor="requester", note=f"受理{REQUEST_ZH[rtype]}请求", refusal_ground=None,
                                at=received))
        s.flush()
        ctx.audit.record_in(s, tenant, "requester", AuditAction.RIGHTS_REQUEST_STEP, subject=subject,
                            details={"request": rid, "type": rtype.value, "state": State.UNVERIFIED.value})
    return rid


def acts_on_data(rtype: RequestType, details: Mapping[str, Any]) -> bool:
    """Whether the request reads or changes the subject's data in the app (and so needs the subject there)."""
    if rtype is RequestType.DECEASED:
        return str(details.get("action")) in DECEASED_ACTIONS
    return rtype in ERASING | COPYING | CORRECTING


def uncovered_deadline(ctx: RightsContext, decl: Declaration, rtype: RequestType, day: date,
                       exc: CalendarNotCovered) -> tuple[date, str, str, bool]:
    """(due, rule, explanation, provisional) when the holiday data does not cover a year the count needs.

    The statutory ceiling is never earlier than its number of natural days (working days and D1 only
    move it later). So when the promise can still be counted and ends by then, the promise is the exact
    deadline. Otherwise fail closed: never guess working days; a provisional date of N natural days is
    never later than the true deadline, and staff must confirm it once the calendar is updated.
    """
    right = RIGHT_OF[rtype]
    cap = statutory_ceiling(right)
    promise = promised_reply_time(decl, right)
    if promise is not None and promise.days is not None:
        try:
            p_due = due_date(day, promise.days, promise.unit, promise.holidays_extended, ctx.calendar)
        except CalendarNotCovered:
            p_due = None
        if p_due is not None and p_due <= day + timedelta(days=cap.days):
            text = (f"依据隐私政策承诺：{promise.describe()}，截止{format_date(p_due)}；法定上限{cap.describe()}"
                    f"（{cap.rule_id}）不早于{format_date(day + timedelta(days=cap.days))}，以承诺为准。")
            return p_due, cap.rule_id, text, False
    days = min(promise.days if promise is not None and promise.days else cap.days, cap.days)
    due = day + timedelta(days=days)
    return due, "D2", (f"{exc} 暂按不晚于法定期限的 {days} 个自然日定截止日为{format_date(due)}，"
                       "须在节假日数据更新后人工复核。"), True


def check_details(rtype: RequestType, details: dict[str, Any]) -> dict[str, Any]:
    """Validate what a request of ``rtype`` carries (Chinese errors); returns the details to keep."""
    if rtype in CORRECTING or (rtype is RequestType.DECEASED and details.get("action") == "correction"):
        changes = details.get("changes")
        if not isinstance(changes, dict) or not changes:
            raise RequestError("更正或补充请求须给出要修改的个人信息项与新值（--change 项=新值）")
    elif details.get("include_historical"):
        raise RequestError("只有更正或补充请求可以要求更正历史记录（--include-historical）")
    if rtype is RequestType.DELETION or (rtype is RequestType.DECEASED and details.get("action") == "deletion"):
        if "ground" not in details:  # C6: then only the consents of what is deleted end, not all of them
            details["ground_default"] = True
        ground = details.setdefault("ground", DeletionGround.CONSENT_WITHDRAWN.value)
        if ground not in {g.value for g in DeletionGround}:
            raise RequestError(f"删除请求的理由应为 PIPL 47 的情形之一：{'、'.join(DELETION_GROUND_ZH.values())}")
        items = details.get("items") or []
        unknown = [i for i in items if i not in taxonomy().items]
        if unknown:
            raise RequestError(f"未知的个人信息项：{'、'.join(unknown)}")
    if rtype is RequestType.DECEASED:
        if details.get("action") not in DECEASED_ACTIONS:
            raise RequestError("近亲属请求须说明要行使的权利：access（查阅）、copy（复制）、correction（更正）"
                               "或 deletion（删除）（PIPL 49）")
        if not str(details.get("relation", "")).strip():
            raise RequestError("近亲属请求须说明与死者的关系（配偶、父母、子女等）")
    if rtype is RequestType.EXPLANATION and details.get("about", "rules") not in ("rules", "automated_decision"):
        raise RequestError("解释说明请求的 about 应为 rules（处理规则）或 automated_decision（自动化决策）")
    return details
