"""Reading requests (查询): one request with its steps and history, a tenant's requests, and those overdue or
due soon on the holiday calendar. Nothing here decrypts details or plans: views carry no PI."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from yinsi.domain.deadlines import CalendarNotCovered, status
from yinsi.domain.rights import OPEN_STATES, REQUEST_ZH, STATE_ZH, RequestType, State
from yinsi.rights.context import BEIJING, RightsContext
from yinsi.rights.notices import delivery
from yinsi.rights.plan import ACTION_ZH
from yinsi.storage.rights_tables import RequestStep, RequestTransition, RightsRequest


@dataclass(frozen=True)
class RequestView:
    """What ``show`` and ``list`` return (no PI: details and plan stay encrypted)."""

    id: str
    tenant: str
    subject_kind: str
    subject: str
    type: RequestType
    state: State
    received_at: datetime
    due_date: date
    deadline: str
    deadline_provisional: bool
    refusal: str | None
    result: dict[str, Any] | None
    steps: list[dict[str, Any]]
    history: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "tenant": self.tenant, "subject_kind": self.subject_kind, "subject": self.subject,
                "type": self.type.value, "type_zh": REQUEST_ZH[self.type], "state": self.state.value,
                "state_zh": STATE_ZH[self.state], "received_at": self.received_at.isoformat(),
                "due_date": self.due_date.isoformat(), "deadline": self.deadline,
                "deadline_provisional": self.deadline_provisional, "refusal": self.refusal, "result": self.result,
                "steps": self.steps, "history": self.history}


def view(row: RightsRequest, subject: str, steps: list[dict[str, Any]], hist: list[dict[str, Any]]) -> RequestView:
    return RequestView(row.id, row.tenant_id, row.subject_kind, subject, RequestType(row.type), State(row.state),
                       row.received_at, row.due_date, row.deadline_explanation, bool(row.deadline_provisional),
                       row.refusal_detail, json.loads(row.result) if row.result else None, steps, hist)


def show(ctx: RightsContext, tenant: str, request_id: str) -> RequestView:
    """One request with its steps and its history."""
    with ctx.sessions() as s:
        row = ctx.get(s, tenant, request_id)
        steps = [{"seq": st.seq, "key": st.location_id, "action": st.action, "action_zh": ACTION_ZH.get(st.action, ""),
                  "status": st.status, "attempts": st.attempts, "detail": json.loads(st.detail) if st.detail else None}
                 for st in s.scalars(select(RequestStep).where(RequestStep.request_id == row.id)
                                     .order_by(RequestStep.seq))]
        hist = [{"from": t.from_state, "to": t.to_state, "actor": t.actor, "note": t.note, "at": t.at.isoformat()}
                for t in s.scalars(select(RequestTransition).where(RequestTransition.request_id == row.id)
                                   .order_by(RequestTransition.id))]
        v = view(row, ctx.shown_subject(row), steps, hist)
        if v.result and v.result.get("notices"):
            v = replace(v, result=delivery(s, tenant, v.result))
        return v


def requests(ctx: RightsContext, tenant: str, *, open_only: bool = False, subject: str | None = None,
             due_by: date | None = None, limit: int | None = None) -> list[RequestView]:
    """The tenant's requests, oldest first: only open ones, one subject's, those due by a date."""
    with ctx.sessions() as s:
        q = select(RightsRequest).where(RightsRequest.tenant_id == tenant)
        if open_only:
            q = q.where(RightsRequest.state.in_([st.value for st in OPEN_STATES]))
        if subject is not None:
            q = q.where(RightsRequest.subject_id.in_({subject, "bi:" + ctx.blind(tenant, subject)}))
        if due_by is not None:
            q = q.where(RightsRequest.due_date <= due_by)
        q = q.order_by(RightsRequest.received_at, RightsRequest.id)
        if limit is not None:
            q = q.limit(limit)
        out = [view(r, ctx.shown_subject(r), [], []) for r in s.scalars(q)]
        return [replace(v, result=delivery(s, tenant, v.result)) if v.result and v.result.get("notices") else v
                for v in out]


def overdue(ctx: RightsContext, tenant: str, today: date | None = None, *,
            soon_days: int = 3) -> list[tuple[RequestView, str]]:
    """Open requests that are overdue or due within ``soon_days`` working days (provisional deadlines
    outside the calendar's years count as due soon: they need a person)."""
    day = today or ctx.clock().astimezone(BEIJING).date()
    out = []
    # N working days never span more than 2N + 14 natural days (weekends, the longest holiday block)
    for v in requests(ctx, tenant, open_only=True, due_by=day + timedelta(days=2 * soon_days + 14)):
        try:
            st: str = status(v.due_date, day, ctx.calendar, soon=soon_days)
        except CalendarNotCovered:
            st = "overdue" if v.due_date < day else "due_soon"
        if st != "on_track":
            out.append((v, st))
    return out
