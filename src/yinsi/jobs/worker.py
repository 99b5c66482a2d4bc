"""The worker (工作进程) and the scheduler (调度器).

Embedded (the default): a loop in this process claims due rows from the ``jobs`` table and runs them on a
few threads; it also ticks the scheduler unless told not to. With a broker (RabbitMQ, Redis): a Dramatiq
worker receives job ids and runs each through the same claim; the scheduler (``yinsi scheduler``, one or
more processes) enqueues periodic jobs and publishes again every due job whose message was lost.

Periodic jobs: at each tick, for every schedule, the latest due minute at or before now (Beijing time) is
enqueued with the key ``periodic:NAME:TENANT:YYYY-MM-DDTHH:MM``; the key is unique in the table, so two
schedulers, a restart or a repeated tick never enqueue one due time twice (exactly once per due time).
A scheduler that was down enqueues only the latest missed due time of each schedule.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from yinsi.jobs.registry import PERIODICS, SHANGHAI, TASKS
from yinsi.jobs.runner import Outcome, Runner
from yinsi.jobs.store import JobStore
from yinsi.jobs.transports import DramatiqTransport, EmbeddedTransport, Transport

__all__ = ["Scheduler", "TickReport", "run_embedded", "run_until_idle", "serve_broker"]

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    enqueued: list[str] = field(default_factory=list)  # keys of the periodic jobs created by this tick
    republished: list[int] = field(default_factory=list)  # ids of due jobs published again


def _tenants(store: JobStore) -> list[str]:
    from yinsi.storage.tables import Tenant

    with store.sessions() as session:
        return [str(t) for t in session.scalars(select(Tenant.id).order_by(Tenant.id))]


@dataclass
class Scheduler:
    """Enqueues periodic jobs once per due time and publishes again the due jobs whose message is lost."""

    store: JobStore
    transport: Transport
    grace: timedelta = timedelta(minutes=2)

    def tick(self, now: datetime | None = None) -> TickReport:
        report = TickReport()
        at = now or self.store.clock()
        local = at.astimezone(SHANGHAI)
        tenants: list[str] | None = None
        for periodic in PERIODICS.values():
            due = periodic.cron.latest(local)
            if due is None:
                continue
            if periodic.per_tenant and tenants is None:
                tenants = _tenants(self.store)
            for tenant in (tenants or []) if periodic.per_tenant else [None]:
                key = f"periodic:{periodic.name}:{tenant or '-'}:{due:%Y-%m-%dT%H:%M}"
                job_id, created = self.store.enqueue(periodic.name, {"due": due.isoformat()}, key=key, tenant=tenant)
                if created:
                    report.enqueued.append(key)
                    self._publish(job_id)
        for job_id, _ in self.store.overdue(self.grace):
            report.republished.append(job_id)
            self._publish(job_id)
        return report

    def _publish(self, job_id: int) -> None:
        try:
            self.transport.publish(job_id)
        except Exception as exc:
            log.warning("job %s not published (%s); a later sweep will", job_id, type(exc).__name__)


def run_until_idle(runner: Runner, *, limit: int = 1000) -> list[Outcome]:
    """Run due jobs one by one until none is due (or ``limit`` attempts): tests and ``--once``."""
    outcomes: list[Outcome] = []
    while len(outcomes) < limit:
        ids = runner.store.due_ids(limit=50, names=TASKS)
        progressed = False
        for job_id in ids:
            outcome = runner.run(job_id)
            if outcome is not None:
                outcomes.append(outcome)
                progressed = True
        if not progressed:
            break
    return outcomes


def run_embedded(runner: Runner, *, threads: int = 2, poll: float = 1.0, scheduler: Scheduler | None = None,
                 tick_every: float = 30.0, stop: threading.Event | None = None,
                 on_outcome: Callable[[Outcome], None] | None = None) -> None:
    """The embedded worker loop: claim due rows and run them on ``threads`` threads, polling every ``poll``
    seconds (sooner when a job is enqueued in this process), ticking ``scheduler`` every ``tick_every``."""
    stop = stop or threading.Event()
    wake = runner.transport.wake if isinstance(runner.transport, EmbeddedTransport) else threading.Event()
    running: dict[int, Future[Outcome | None]] = {}
    last_tick = 0.0
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="yinsi-job") as pool:
        while not stop.is_set():
            if scheduler is not None and time.monotonic() - last_tick >= tick_every:
                last_tick = time.monotonic()
                try:
                    scheduler.tick()
                except Exception as exc:
                    log.warning("scheduler tick failed: %s", type(exc).__name__)
            for job_id, fut in list(running.items()):
                if fut.done():
                    del running[job_id]
                    outcome = fut.exception() is None and fut.result()
                    if outcome and on_outcome is not None:
                        on_outcome(outcome)
            free = threads - len(running)
            if free > 0:
                try:
                    ids = [i for i in runner.store.due_ids(limit=free + len(running), names=TASKS) if i not in running]
                except Exception as exc:
                    log.warning("polling the jobs table failed: %s", type(exc).__name__)
                    ids = []
                for job_id in ids[:free]:
                    running[job_id] = pool.submit(runner.run, job_id)
            wake.wait(poll)
            wake.clear()


def serve_broker(runner: Runner, transport: DramatiqTransport, *, threads: int = 2,
                 stop: threading.Event | None = None,
                 on_outcome: Callable[[Outcome], None] | None = None) -> None:
    """Run a Dramatiq worker on ``transport``'s queue until ``stop`` is set (or the process is stopped)."""
    stop = stop or threading.Event()

    def handle(job_id: int) -> None:
        outcome = runner.run(job_id)
        if outcome is not None and on_outcome is not None:
            on_outcome(outcome)

    worker = transport.serve(handle, threads)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        worker.stop()
