"""Jobs (作业): queued and scheduled work with the database as the source of truth (docs/jobs.md).

The interface other modules register with::

    from yinsi import jobs

    def sweep(ctx: jobs.JobContext) -> dict[str, int]:
        # ctx.tenant, ctx.now (UTC; ctx.local_now in Beijing time), ctx.db (a session that commits with
        # the job's done mark), ctx.payload (small JSON of ids), ctx.key (the idempotency key)
        return {"deleted": 0}

    jobs.register_periodic("retention.sweep", sweep, cron="0 3 * * *")   # every day 03:00 Beijing time
    jobs.register_task("incident.notify", notify_one)                    # run on demand:
    jobs.enqueue("incident.notify", {"incident": "inc-1"}, key="incident.notify:inc-1", tenant="t1")

``enqueue`` with a key already used returns the existing job (nothing runs twice); ``enqueue_in(session,
…)`` adds the job to the caller's transaction. A task that raises is retried with backoff (30 s, 1 min,
2 min … up to ``max_attempts``), then lands in the dead-letter list (``yinsi jobs dead``); raise
:class:`PermanentJobError` when retrying cannot help. Task modules register at import: list a new one in
:data:`TASK_MODULES` so ``yinsi worker`` and ``yinsi scheduler`` import it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from yinsi.jobs.errors import JobError, LeaseLost, PermanentJobError
from yinsi.jobs.registry import PERIODICS, SHANGHAI, TASKS, JobContext, Periodic, Task, register_periodic, register_task

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from yinsi.jobs.store import JobStore
    from yinsi.jobs.transports import Transport

__all__ = [
    "PERIODICS",
    "SHANGHAI",
    "TASKS",
    "TASK_MODULES",
    "JobContext",
    "JobError",
    "LeaseLost",
    "Periodic",
    "PermanentJobError",
    "Task",
    "configure",
    "enqueue",
    "enqueue_in",
    "load_task_modules",
    "register_periodic",
    "register_task",
    "store_for",
]

#: Modules whose import registers tasks and schedules; the worker and the scheduler import them all.
#: Add yours here (one line) when it registers with :func:`register_task` or :func:`register_periodic`.
TASK_MODULES: list[str] = [
    "yinsi.jobs.builtin",
    "yinsi.services.notice_jobs",
    "yinsi.retention.jobs",
    "yinsi.services.minors_jobs",
]

_lock = threading.Lock()
_stores: dict[str, JobStore] = {}
_transport: Transport | None = None


def load_task_modules(extra: list[str] | None = None) -> None:
    """Import every module of :data:`TASK_MODULES` (and ``extra``), registering their tasks."""
    import importlib

    for name in [*TASK_MODULES, *(extra or [])]:
        importlib.import_module(name)


def store_for(url: str | None = None) -> JobStore:
    """The jobs table of Yinsi's database at ``url`` (default: ``YINSI_DATABASE_URL``), one per URL."""
    from yinsi.config import database_url, is_default_database
    from yinsi.jobs.store import JobStore
    from yinsi.storage import ensure_current, make_engine, make_session_factory

    url = url or database_url()
    with _lock:
        store = _stores.get(url)
        if store is None:
            ensure_current(url, auto_upgrade=is_default_database(url))
            store = JobStore(make_session_factory(make_engine(url)))
            _stores[url] = store
        return store


def configure(transport: Transport | None = None, *, broker: str | None = None, broker_url: str | None = None) -> None:
    """Set how this process publishes jobs (default: ``YINSI_JOBS_BROKER``, else embedded)."""
    global _transport
    from yinsi.jobs.transports import make_transport

    with _lock:
        _transport = transport or make_transport(broker, broker_url)


def transport() -> Transport:
    global _transport
    if _transport is None:
        configure()
    assert _transport is not None
    return _transport


def _publish(job_id: int, run_after: datetime | None, store: JobStore) -> None:
    delay = (run_after - store.clock()) if run_after is not None else None
    with contextlib.suppress(JobError):  # else the scheduler's sweep publishes it after the grace period
        transport().publish(job_id, delay if delay is not None and delay.total_seconds() > 0 else None)


def enqueue(name: str, payload: Mapping[str, Any] | None = None, *, key: str | None = None, tenant: str | None = None,
            run_after: datetime | None = None, max_attempts: int | None = None, url: str | None = None) -> int:
    """Add a job (its own transaction) and publish it; returns its id. The same ``key`` gives the same job."""
    store = store_for(url)
    job_id, created = store.enqueue(name, payload, key=key, tenant=tenant, run_after=run_after,
                                    max_attempts=max_attempts)
    if created:
        _publish(job_id, run_after, store)
    return job_id


def enqueue_in(session: Session, name: str, payload: Mapping[str, Any] | None = None, *, key: str | None = None,
               tenant: str | None = None, run_after: datetime | None = None, max_attempts: int | None = None) -> int:
    """Add a job to ``session``'s transaction (the job exists if and only if the caller commits); it is
    published once that transaction commits, and found by the scheduler's sweep if that publish is lost.
    Returns its id."""
    from sqlalchemy import event

    from yinsi.jobs.store import JobStore, utcnow

    job_id, created = JobStore.enqueue_in(session, name, payload, key=key, tenant=tenant, run_after=run_after,
                                          max_attempts=max_attempts, clock=utcnow)

    def published(_session: Session) -> None:
        delay = (run_after - utcnow()) if run_after is not None else None
        with contextlib.suppress(JobError):  # else the sweep publishes it
            transport().publish(job_id, delay if delay is not None and delay.total_seconds() > 0 else None)

    if created:
        event.listen(session, "after_commit", published, once=True)
    return job_id
