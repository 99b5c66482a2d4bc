"""Running a request (执行): claim it, move it to ``in_progress`` and hand it to the use case of its type
(erasure, copy, correction, withdrawal, explanation, an answer); a failure leaves it in ``error`` with the
reason, and running it again resumes where it stopped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yinsi.domain.rights import NEEDS_CONFIRMATION, REQUEST_ZH, STATE_ZH, Refusal, RefusalGround, RequestType, State, may_start
from yinsi.rights.context import ErasureIncomplete, Job, RequestError, RightsContext
from yinsi.rights.copy import run_copy
from yinsi.rights.correction import run_correction
from yinsi.rights.erasure import run_erasure
from yinsi.rights.explanation import run_answer, run_explanation
from yinsi.rights.intake import COPYING, CORRECTING, DECEASED_ACTIONS, ERASING, acts_on_data
from yinsi.rights.lease import claim
from yinsi.rights.transitions import fail, move, refuse_in_run
from yinsi.rights.withdrawal import run_withdrawal


def run(ctx: RightsContext, tenant: str, request_id: str, actor: str = "system", *,
        step_hook: Callable[[int], None] | None = None) -> State:
    """Create the plan if needed, run every pending step, verify, and close. Safe to run again."""
    with ctx.tx() as s:
        row = ctx.get(s, tenant, request_id, lock=True)
        request_id = row.id
        state, rtype = State(row.state), RequestType(row.type)
        claim(row, state, ctx.clock())
        if not may_start(rtype, state):
            if state is State.VERIFIED and rtype in NEEDS_CONFIRMATION:
                raise RequestError("注销须先由本人确认（yinsi request confirm 请求编号）；确认后不可撤回")
            if state is State.UNVERIFIED:
                raise RequestError("请求尚未核验身份，不能执行（yinsi request verify）")
            raise RequestError(f"请求处于「{STATE_ZH[state]}」状态，不能执行")
        if state is not State.IN_PROGRESS:
            move(ctx, s, row, State.IN_PROGRESS, actor, "开始执行" if state is not State.ERROR else "重试执行")
        details = ctx.details(row)
        fresh = row.plan_encrypted is None  # nothing erased yet
        job = Job(tenant, row.id, row.subject_kind, ctx.subject_of(row), rtype, details, actor, row.policy_label)
    job.decl = ctx.declaration(tenant)
    try:
        if rtype is RequestType.DECEASED:
            job = job.acting_as(DECEASED_ACTIONS[str(details["action"])])
        dm = ctx.datamaps.get(tenant)
        if dm is not None and (fresh or job.type not in ERASING) and acts_on_data(job.type, details) \
                and not ctx.subject_exists(dm, tenant, job.kind, job.subject):
            return refuse_in_run(ctx, job, "主体不存在", Refusal(
                RefusalGround.RIGHT_NOT_APPLICABLE, f"应用中没有该主体（{job.kind}）的记录，没有可{REQUEST_ZH[job.type]}的"
                                                    "个人信息；请核对主体编号与类型"))
        if job.type in ERASING:
            return run_erasure(ctx, job, step_hook)
        if job.type in COPYING:
            return run_copy(ctx, job)
        if job.type in CORRECTING:
            return run_correction(ctx, job)
        if job.type in (RequestType.WITHDRAW_CONSENT, RequestType.RESTRICTION):
            return run_withdrawal(ctx, job)
        if job.type is RequestType.EXPLANATION:
            return run_explanation(ctx, job)
        return run_answer(ctx, job)
    except ErasureIncomplete as exc:
        fail(ctx, tenant, request_id, actor, str(exc))
        raise
    except RequestError as exc:
        fail(ctx, tenant, request_id, actor, str(exc))
        raise
    except Exception as exc:
        note = f"执行出错（可重试）：{type(exc).__name__}: {exc}"
        fail(ctx, tenant, request_id, actor, note)
        raise RequestError(note) from exc


def runnable(svc: Any, tenant: str, limit: int = 1000) -> list[str]:
    """Ids of the tenant's requests a queue run takes (verified, confirmed, in progress or in error; a
    cancellation only once the person confirmed it), oldest first: ``yinsi request work`` and the job
    ``rights.queue`` take the same set."""
    return [v.id for v in svc.requests(tenant, open_only=True)
            if v.state in (State.VERIFIED, State.CONFIRMED, State.IN_PROGRESS, State.ERROR)
            and not (v.state is State.VERIFIED and v.type is RequestType.CANCEL_ACCOUNT)][:limit]


def run_and_close(svc: Any, tenant: str, request_id: str) -> State:
    """One queued run as ``system`` (the job ``rights.run``): run, end the person's sessions after a completed
    cancellation, deliver the outbox."""
    from yinsi.services.cancellation import end_sessions_if_cancelled

    state = State(svc.run(tenant, request_id, actor="system"))
    end_sessions_if_cancelled(svc, tenant, request_id, state)
    svc.deliver(tenant)
    return state
