"""Step bookkeeping (执行步骤的记录): each operation of a request is a row of ``request_steps`` with a stable key,
recorded ``done`` only after its store committed, so a resumed run skips what is done; manual steps wait
for a person (``manual_pending``) and move the request to ``waiting_manual``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update

from yinsi.domain.rights import State
from yinsi.rights.context import Job, RightsContext, dumps
from yinsi.rights.lease import LEASE, lease_owner
from yinsi.rights.transitions import move
from yinsi.storage.rights_tables import RequestStep, RightsRequest

DONE, PENDING, MANUAL_PENDING = "done", "pending", "manual_pending"


def ensure_steps(ctx: RightsContext, job: Job, steps: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Record the plan's steps not recorded yet (pending); returns every step's status."""
    with ctx.tx() as s:
        have = {str(k): str(v) for k, v in s.execute(select(RequestStep.location_id, RequestStep.status)
                                                     .where(RequestStep.request_id == job.request_id)).all()}
        seq = len(have)
        for key, action in steps:
            if key not in have:
                s.add(RequestStep(request_id=job.request_id, tenant_id=job.tenant, seq=seq, location_id=key,
                                  action=action, status=PENDING, attempts=0, detail=None, updated_at=ctx.clock()))
                have[key] = PENDING
                seq += 1
    return have


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
        have: set[str] = set()
        seq = 0
        if steps:
            have = set(s.scalars(select(RequestStep.location_id).where(RequestStep.request_id == job.request_id)))
            seq = len(have)
        for key, what, who in steps:
            if key not in have:
                s.add(RequestStep(request_id=job.request_id, tenant_id=job.tenant, seq=seq, location_id=key,
                                  action="manual", status=MANUAL_PENDING, attempts=0,
                                  detail=dumps({"what": what, "who": who}), updated_at=ctx.clock()))
                seq += 1
        row = ctx.get(s, job.tenant, job.request_id)
        if result is not None:
            row.result = dumps(result)
        if State(row.state) is not State.WAITING_MANUAL:
            move(ctx, s, row, State.WAITING_MANUAL, job.actor, note)
    return State.WAITING_MANUAL
