"""The dead-letter list for staff (死信列表): the tenant's jobs that kept failing, and putting one back.

Use cases of the console page ``/console/jobs`` and of ``/api/v1/staff/jobs/dead``: an administrator of the
tenant (``configure``) sees the tenant's dead jobs only (system-wide jobs are the operators', shown by
``yinsi jobs dead``); refusals are audited. Payloads hold ids and errors are scrubbed: nothing here is PI.
"""

from __future__ import annotations

import contextlib
from typing import Any

from yinsi.audit import AuditAction
from yinsi.auth.principals import StaffPrincipal
from yinsi.jobs.registry import SHANGHAI
from yinsi.jobs.store import JobInfo, JobStore
from yinsi.staff import actions
from yinsi.staff.errors import NotFound
from yinsi.staff.roles import StaffAction
from yinsi.staff.service import StaffService

__all__ = ["dead_jobs", "retry_job"]


def _row(job: JobInfo) -> dict[str, Any]:
    return {"id": job.id, "name": job.name, "attempts": job.attempts, "max_attempts": job.max_attempts,
            "last_error": job.last_error, "created_at": job.created_at.isoformat(),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "finished_local": f"{job.finished_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}" if job.finished_at else "",
            "payload": job.payload}


def dead_jobs(principal: StaffPrincipal, staff: StaffService, store: JobStore, *, limit: int = 100) -> list[dict[str, Any]]:
    """The tenant's dead jobs, newest first."""
    actions.check(principal, staff, StaffAction.CONFIGURE, audit_action=AuditAction.OTHER)
    return [_row(j) for j in store.list(tenant=principal.tenant, state="dead", limit=limit)]


def retry_job(principal: StaffPrincipal, staff: StaffService, store: JobStore, job_id: int) -> dict[str, Any]:
    """Put one of the tenant's dead jobs back in the queue (a fresh attempt budget)."""
    actions.check(principal, staff, StaffAction.CONFIGURE, audit_action=AuditAction.OTHER)
    if not 1 <= job_id < 2**62 or not store.retry(job_id, tenant=principal.tenant):
        raise NotFound("死信列表中没有该作业")
    job = store.get(job_id, tenant=principal.tenant)
    assert job is not None
    from yinsi import jobs

    with contextlib.suppress(jobs.JobError):  # else the scheduler's sweep publishes it
        jobs.transport().publish(job_id)
    return {"id": job.id, "state": job.state}
