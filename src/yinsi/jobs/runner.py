"""Running one job (执行作业): claim its row with a lease, renew the lease from a background thread while
the task runs, then mark it done in the task's own transaction (only if this attempt still holds it), or
record the failure (retry with backoff, or the dead-letter list).

A worker killed mid-job (``kill -9``) stops renewing: once the lease runs out the row is due again and the
next worker that gets its id (a redelivered message, the scheduler's sweep, the embedded poll) claims it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from yinsi.jobs.errors import LeaseLost, PermanentJobError
from yinsi.jobs.registry import TASKS, JobContext, Task
from yinsi.jobs.store import Claim, JobStore, scrub_error
from yinsi.jobs.transports import EmbeddedTransport, Transport

__all__ = ["Outcome", "Runner", "worker_owner"]

log = logging.getLogger(__name__)


def worker_owner() -> str:
    """``host:pid:nonce``: this process (a forked worker is another) and this worker within it."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Outcome:
    job_id: int
    name: str
    state: str  # done | queued (retry) | dead | lost
    attempt: int
    error: str | None = None


@dataclass
class Runner:
    """Runs jobs from ``store``; ``lease`` overrides the tasks' own (short in tests)."""

    store: JobStore
    url: str
    transport: Transport = field(default_factory=EmbeddedTransport)
    lease: timedelta | None = None
    owner: str = field(default_factory=worker_owner)

    def lease_of(self, task: Task) -> timedelta:
        return self.lease or task.lease

    def run(self, job_id: int) -> Outcome | None:
        """Claim and run job ``job_id``; None if it was not claimable (done, dead, held, not due)."""
        claim = self.store.claim(job_id, f"{self.owner}/{threading.get_ident() % 100000}", self.lease, TASKS)
        if claim is None:
            return None
        return self.run_claimed(claim)

    def run_claimed(self, claim: Claim) -> Outcome:
        task = TASKS[claim.job.name]
        lease = self.lease_of(task)
        stop = threading.Event()
        lost = threading.Event()

        def renew() -> None:
            while not stop.wait(max(lease.total_seconds() / 3, 0.05)):
                try:
                    if not self.store.heartbeat(claim, lease):
                        lost.set()
                        return
                except Exception:  # the database is briefly away: try again at the next beat
                    log.warning("job %s: heartbeat failed", claim.job.id)

        def beat() -> None:
            if lost.is_set() or not self.store.heartbeat(claim, lease):
                lost.set()
                raise LeaseLost("作业已被另一工作进程接管")

        beater = threading.Thread(target=renew, name=f"job-{claim.job.id}-heartbeat", daemon=True)
        beater.start()
        try:
            return self._attempt(claim, task, beat, lost)
        finally:
            stop.set()
            beater.join(timeout=5)

    def _attempt(self, claim: Claim, task: Task, beat: Any, lost: threading.Event) -> Outcome:
        job = claim.job
        error = ""
        permanent = False
        with self.store.sessions() as session:
            ctx = JobContext(job.id, job.name, job.key, job.tenant, dict(job.payload), claim.attempt,
                             self.store.clock(), session, self.url, beat)
            try:
                with session.begin():
                    result = task.fn(ctx)
                    if lost.is_set() or not self.store.finish_in(session, claim, result):
                        raise LeaseLost("作业已被另一工作进程接管")
                log.info("job %s (%s) done, attempt %s", job.id, job.name, claim.attempt)
                return Outcome(job.id, job.name, "done", claim.attempt)
            except LeaseLost:
                log.warning("job %s (%s): lease lost, attempt %s abandoned", job.id, job.name, claim.attempt)
                return Outcome(job.id, job.name, "lost", claim.attempt)
            except PermanentJobError as exc:
                error, permanent = f"{type(exc).__name__}: {exc}", True
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
        state = self.store.fail(claim, error, task.delay(claim.attempt), permanent=permanent)
        if state is None:
            return Outcome(job.id, job.name, "lost", claim.attempt, scrub_error(error))
        if state == "queued":
            try:
                self.transport.publish(job.id, task.delay(claim.attempt))
            except Exception:
                log.warning("job %s: retry not published; the sweep will", job.id)
        log.warning("job %s (%s) failed, attempt %s: %s", job.id, job.name, claim.attempt, state)
        return Outcome(job.id, job.name, state, claim.attempt, scrub_error(error))
