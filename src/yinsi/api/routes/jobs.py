"""The staff API's dead-letter list (``/api/v1/staff/jobs``): the tenant's jobs that kept failing, and
putting one back in the queue (administrators; docs/jobs.md). Use cases: :mod:`yinsi.services.jobs_desk`."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from yinsi.api.deps import services
from yinsi.api.routes.staff import Admin, _call, desk
from yinsi.services import jobs_desk

router = APIRouter(prefix="/api/v1/staff/jobs", tags=["staff"])

JobId = Annotated[int, Path(ge=1, le=2**62, description="作业编号")]
_lock = threading.Lock()


def job_store(request: Request) -> Any:
    """The jobs table of the API's database (one per app)."""
    svc = services(request)
    found = svc.extra.get("jobs")
    if found is None:
        with _lock:
            found = svc.extra.get("jobs")
            if found is None:
                from yinsi.jobs.store import JobStore

                found = svc.extra["jobs"] = JobStore(svc.rights.sessions, svc.rights.clock)
    return found


@router.get("/dead", summary="死信列表：多次失败后放弃的作业")
def dead(request: Request, who: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    return {"jobs": _call(request, jobs_desk.dead_jobs, who, desk(request).staff, job_store(request), limit=limit)}


@router.post("/{job_id}/retry", summary="把死信作业重新入队")
def retry(job_id: JobId, request: Request, who: Admin) -> dict[str, Any]:
    out: dict[str, Any] = _call(request, jobs_desk.retry_job, who, desk(request).staff, job_store(request), job_id)
    return out
