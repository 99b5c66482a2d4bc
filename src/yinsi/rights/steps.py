"""Step bookkeeping (执行步骤的记录): each operation of a request is a row of ``request_steps`` with a stable key,
recorded ``done`` only after its store committed, so a resumed run skips what is done; manual steps wait
for a person (``manual_pending``) and move the request to ``waiting_manual``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from yinsi.domain.rights import State
from yinsi.rights.context import Job, RightsContext, dumps
from yinsi.rights.lease import LEASE, lease_owner
from yinsi.rights.transitions import move
from yinsi.storage.rights_tables import RequestStep, RightsRequest

DONE, PENDING, MANUAL_PENDING = "done", "pending", "manual_pending"


def ensure_steps(ctx: RightsContext, job: Job, steps: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Record the plan's steps not recorded yet (pending), in one batch; returns every step's status."""
    with ctx.tx() as s:
        have = {str(k): str(v) for k, v in s.execute(select(RequestStep.location_id, RequestStep.status)
                                                     .where(RequestStep.request_id == job.request_id)).all()}
        new = []
        for key, action in steps:
            if key not in have:
                new.append((key, action, PENDING, None))
                have[key] = PENDING
        _insert_steps(ctx, s, job, len(have) - len(new), new)
    return have


def _insert_steps(ctx: RightsContext, s: Session, job: Job, seq: int,
                  steps: Sequence[tuple[str, str, str, str | None]]) -> None:
    """Insert steps (key, action, status, detail) numbered from ``seq``: one statement for the batch."""
    if not steps:
        return
    now = ctx.clock()
    s.execute(insert(cast(Table, RequestStep.__table__)),
              [{"request_id": job.request_id, "tenant_id": job.tenant, "seq": seq + k, "location_id": key,
                "action": action, "status": status_, "attempts": 0, "detail": detail, "updated_at": now}
               for k, (key, action, status_, detail) in enumerate(steps)])


def step_status(ctx: RightsContext, request_id: str) -> dict[str, str]:
    """Every recorded step of the request: key → status."""
    with ctx.sessions() as s:
        rows = s.execute(select(RequestStep.location_id, RequestStep.status)
                         .where(RequestStep.request_id == request_id)).all()
        return {str(key): str(value) for key, value in rows}


def open_manual(ctx: RightsContext, job: Job, keys: Sequence[str] | None) -> bool:
    """Whether manual steps are still pending (only those in ``keys``; any, with None). Keys of steps
    not yet recorded count as open."""
    status_of = step_status(ctx, job.request_id)
    if keys is None:
        return any(v == MANUAL_PENDING for v in status_of.values())
    return any(status_of.get(k) != DONE for k in keys)


def mark_step(ctx: RightsContext, job: Job, key: str, status_: str, detail: Mapping[str, Any]) -> None:
    """Record one step (committed): its status, one more attempt, what it did."""
    mark_steps(ctx, job, [(key, status_, dict(detail))])


def mark_steps(ctx: RightsContext, job: Job, steps: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
    """Record several steps in one transaction (and renew the run's claim on the request)."""
    now = ctx.clock()
    t = cast(Table, RequestStep.__table__)
    stmt = (update(t).where(t.c.request_id == job.request_id, t.c.location_id == bindparam("b_key"))
            .values(status=bindparam("b_status"), attempts=t.c.attempts + 1, detail=bindparam("b_detail"),
                    updated_at=now))
    params = [{"b_key": key, "b_status": status_, "b_detail": dumps(dict(detail))} for key, status_, detail in steps]
    with ctx.engine.begin() as conn:
        n = conn.execute(stmt, params).rowcount  # one batch (executemany)
        conn.execute(update(RightsRequest).where(RightsRequest.id == job.request_id,  # still ours: renew
                                                 RightsRequest.lease_owner == lease_owner())
                     .values(lease_until=now + LEASE))
    if n not in (-1, len(params)):
        raise RuntimeError(f"request {job.request_id}: {len(params)} steps to record, {n} found")


def wait_manual(ctx: RightsContext, job: Job, steps: Sequence[tuple[str, str, str]], note: str,
                result: Mapping[str, Any] | None = None) -> State:
    """Record manual steps (key, what, who) as waiting for a person and move to waiting_manual."""
    with ctx.tx() as s:
        if steps:
            have = set(s.scalars(select(RequestStep.location_id).where(RequestStep.request_id == job.request_id)))
            new = [(key, "manual", MANUAL_PENDING, dumps({"what": what, "who": who})) for key, what, who in steps
                   if key not in have]
            _insert_steps(ctx, s, job, len(have), list({step[0]: step for step in new}.values()))
        row = ctx.get(s, job.tenant, job.request_id)
        if result is not None:
            row.result = dumps(result)
        if State(row.state) is not State.WAITING_MANUAL:
            move(ctx, s, row, State.WAITING_MANUAL, job.actor, note)
    return State.WAITING_MANUAL
