"""State changes of a request (请求状态的变更): the one place a request moves, checked against the state
machine of :mod:`yinsi.domain.rights`, recorded in ``request_transitions`` and audited; closing a run
(completed, or error with its reason)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from yinsi.audit import AuditAction
from yinsi.domain.rights import Refusal, State, check_transition
from yinsi.rights.context import Job, RightsContext, dumps
from yinsi.storage.rights_tables import RequestTransition, RightsRequest


def move(ctx: RightsContext, s: Session, row: RightsRequest, to: State, actor: str, note: str,
         refusal: Refusal | None = None) -> None:
    """The one place a request changes state: checked, recorded, audited, in the caller's transaction."""
    now = ctx.clock()
    check_transition(State(row.state), to, refusal)
    s.add(RequestTransition(request_id=row.id, tenant_id=row.tenant_id, from_state=row.state, to_state=to.value,
                            actor=actor, note=note, refusal_ground=refusal.ground.value if refusal else None,
                            at=now))
    row.state = to.value
    row.updated_at = now
    if to is not State.IN_PROGRESS:  # the run that held the request lets go of it
        row.lease_owner = row.lease_until = None
    if refusal is not None:
        row.refusal_ground = refusal.ground.value
        row.refusal_detail = refusal.message()
    ctx.audit.record_in(s, row.tenant_id, actor, AuditAction.RIGHTS_REQUEST_STEP, subject=ctx.subject_of(row),
                        details={"request": row.id, "type": row.type, "state": to.value})


def finish(ctx: RightsContext, job: Job, result: Mapping[str, Any], note: str,
           extra: Callable[[Session], None] | None = None) -> State:
    """Complete the request with its result; ``extra`` runs first in the same transaction."""
    with ctx.tx() as s:
        if extra is not None:
            extra(s)
        row = ctx.get(s, job.tenant, job.request_id)
        row.result = dumps(result)
        move(ctx, s, row, State.COMPLETED, job.actor, note)
    return State.COMPLETED


def refuse_in_run(ctx: RightsContext, job: Job, note: str, refusal: Refusal) -> State:
    """Refuse the request a run holds (a prerequisite no longer met, a subject that is not there)."""
    with ctx.tx() as s:
        row = ctx.get(s, job.tenant, job.request_id)
        move(ctx, s, row, State.REFUSED, job.actor, note, refusal)
    return State.REFUSED


def fail(ctx: RightsContext, tenant: str, request_id: str, actor: str, note: str) -> None:
    """A run stopped: the request goes to ``error`` with the reason (a later run retries)."""
    with ctx.tx() as s:
        row = ctx.get(s, tenant, request_id)
        if State(row.state) is State.IN_PROGRESS:
            move(ctx, s, row, State.ERROR, actor, note[:2000])
            row.result = dumps({"error": note[:2000]})
