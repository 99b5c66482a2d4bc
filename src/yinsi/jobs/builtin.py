"""Yinsi's own jobs: the rights-request queue, the notification outbox, and pruning finished jobs.

- ``rights.run`` (payload ``{"request": id}``): run one rights request as ``system`` (``yinsi request run``):
  resumable, so a retried or re-claimed job continues where the last attempt stopped; a completed
  cancellation ends the person's sessions; the outbox is delivered after it.
- ``rights.queue`` (every 5 minutes, per tenant): enqueue ``rights.run`` for every runnable request (the set
  ``yinsi request work`` runs), keyed by request and due time, so a request is queued once per due time.
- ``notify.deliver`` (every minute): send the due outbox messages of every tenant (the outbox's own
  per-message claim keeps each message to one sender at a time).
- ``jobs.prune`` (daily 04:30): delete ``done`` jobs finished more than 7 days ago (dead ones stay listed).

The rights worker reads the data map from ``YINSI_DATAMAP`` and store addresses from ``YINSI_STORES``
(``STORE=URL,…``), as ``yinsi request work`` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from yinsi.jobs.errors import PermanentJobError
from yinsi.jobs.registry import JobContext, register_periodic, register_task
from yinsi.storage.jobs_tables import JobRow

__all__ = ["RIGHTS_SERVICE", "rights_service", "rights_service_from_env"]

#: Finished jobs are kept this long (for ``yinsi jobs list``), then pruned.
KEEP_DONE = timedelta(days=7)


#: How the rights jobs open a rights service for Yinsi's database URL; None: :func:`rights_service_from_env`.
#: An application embedding Yinsi (or a test) sets its own, with its data maps and store addresses.
RIGHTS_SERVICE: Callable[[str], Any] | None = None


def rights_service(url: str) -> Any:
    """The rights service the rights jobs use (:data:`RIGHTS_SERVICE`, else from the environment)."""
    return (RIGHTS_SERVICE or rights_service_from_env)(url)


def rights_service_from_env(url: str) -> Any:
    """A rights service for the worker: the data map from ``YINSI_DATAMAP``, stores from ``YINSI_STORES``."""
    from pathlib import Path

    from yinsi.rights.service import RightsService

    datamaps = {}
    path = os.environ.get("YINSI_DATAMAP", "").strip()
    if path:
        from yinsi.datamap_io import load_datamap

        dm = load_datamap(Path(path)).datamap
        datamaps[dm.tenant] = dm
    stores = {}
    for item in os.environ.get("YINSI_STORES", "").split(","):
        if "=" in item:
            k, _, v = item.partition("=")
            stores[k.strip()] = v.strip()
    return RightsService(url, datamaps=datamaps, store_urls=stores)


def run_request(ctx: JobContext) -> dict[str, Any]:
    from yinsi.rights.run import run_and_close

    request_id = str(ctx.payload.get("request") or "")
    if not ctx.tenant or not request_id:
        raise PermanentJobError("rights.run 需要租户与请求编号")
    with rights_service(ctx.url) as svc:
        state = run_and_close(svc, ctx.tenant, request_id)
    return {"state": state.value}


def queue_requests(ctx: JobContext) -> dict[str, Any]:
    from yinsi.jobs import enqueue
    from yinsi.rights.run import runnable

    if not ctx.tenant:
        return {"queued": 0}
    due = str(ctx.payload.get("due") or ctx.now.isoformat())
    with rights_service(ctx.url) as svc:
        ids = runnable(svc, ctx.tenant)
    for request_id in ids:
        enqueue("rights.run", {"request": request_id}, key=f"rights.run:{request_id}:{due[:16]}", tenant=ctx.tenant,
                url=ctx.url)
    return {"queued": len(ids)}


def deliver_outbox(ctx: JobContext) -> dict[str, Any]:
    from yinsi.notify.outbox import Outbox
    from yinsi.services.audit_trail import AuditTrail
    from yinsi.storage import make_session_factory

    sessions = make_session_factory(ctx.db.get_bind().engine)
    report = Outbox.from_env(sessions, AuditTrail(sessions).ring).deliver(limit=500, tenant=ctx.tenant, now=ctx.now)
    return {"sent": report.sent, "retrying": report.retrying, "dead": report.dead, "expired": report.expired}


def prune_jobs(ctx: JobContext) -> dict[str, Any]:
    result = ctx.db.execute(delete(JobRow).where(JobRow.state == "done", JobRow.finished_at < ctx.now - KEEP_DONE)
                            .execution_options(synchronize_session=False))
    return {"deleted": int(getattr(result, "rowcount", 0) or 0)}


register_task("rights.run", run_request, max_attempts=5)
register_periodic("rights.queue", queue_requests, cron="*/5 * * * *")
register_periodic("notify.deliver", deliver_outbox, cron="* * * * *", per_tenant=False)
register_periodic("jobs.prune", prune_jobs, cron="30 4 * * *", per_tenant=False)
