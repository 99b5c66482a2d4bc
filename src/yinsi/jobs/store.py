"""The jobs table's operations (作业表): enqueue by idempotency key, claim with a lease, heartbeat, finish,
fail with backoff or into the dead-letter list, find overdue rows, put a dead job back.

Every state change is a compare-and-set on the row (its state and attempt count, and for the holder of a
lease its owner), so two workers never hold one job at once and a worker whose lease was taken over can
no longer mark the job.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from yinsi.jobs.errors import JobError
from yinsi.storage.jobs_tables import JOB_ERROR_LEN, JOB_KEY_LEN, JobRow

__all__ = ["JobInfo", "JobState", "JobStore", "scrub_error"]

#: A payload is a small JSON object of ids: never personal information, never a document.
PAYLOAD_LIMIT = 4000


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


STATE_ZH = {JobState.QUEUED: "排队", JobState.RUNNING: "执行中", JobState.DONE: "完成", JobState.DEAD: "死信"}


def scrub_error(text: str) -> str:
    """An error text without e-mail addresses or runs of 6+ digits (phones, ID numbers, codes)."""
    out = re.sub(r"[^\s@<>(),;:\"']+@[^\s@<>(),;:\"']+", "***@***", text)
    out = re.sub(r"\d{6,}", lambda m: "*" * len(m.group()), out)
    return out[:JOB_ERROR_LEN]


@dataclass(frozen=True)
class JobInfo:
    """A job as shown to operators and staff (no PI: payloads hold ids, errors are scrubbed)."""

    id: int
    tenant: str | None
    name: str
    key: str
    payload: dict[str, Any]
    state: str
    attempts: int
    max_attempts: int
    run_after: datetime
    lease_owner: str | None
    lease_until: datetime | None
    heartbeat_at: datetime | None
    last_error: str | None
    result: Any
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, row: JobRow) -> JobInfo:
        return cls(row.id, row.tenant_id, row.name, row.key, json.loads(row.payload), row.state, row.attempts,
                   row.max_attempts, row.run_after, row.lease_owner, row.lease_until, row.heartbeat_at,
                   row.last_error, json.loads(row.result) if row.result else None, row.created_at, row.started_at,
                   row.finished_at)

    def to_json(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        return {"id": self.id, "tenant": self.tenant, "name": self.name, "key": self.key, "payload": self.payload,
                "state": self.state, "attempts": self.attempts, "max_attempts": self.max_attempts,
                "run_after": iso(self.run_after), "lease_owner": self.lease_owner, "lease_until": iso(self.lease_until),
                "heartbeat_at": iso(self.heartbeat_at), "last_error": self.last_error, "result": self.result,
                "created_at": iso(self.created_at), "started_at": iso(self.started_at),
                "finished_at": iso(self.finished_at)}


@dataclass(frozen=True)
class Claim:
    """An attempt's hold on a job: the row as claimed, the attempt number and the owner."""

    job: JobInfo
    attempt: int
    owner: str


def _payload(payload: Mapping[str, Any] | None) -> str:
    try:
        text = json.dumps(dict(payload or {}), ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        raise JobError("作业参数应为可 JSON 序列化的对象（只放编号，不放个人信息）") from None
    if len(text) > PAYLOAD_LIMIT:
        raise JobError(f"作业参数过大（{len(text)} 字符，上限 {PAYLOAD_LIMIT}）：只放编号")
    return text


def _due(now: datetime) -> Any:
    return or_(and_(JobRow.state == JobState.QUEUED.value, JobRow.run_after <= now),
               and_(JobRow.state == JobState.RUNNING.value, JobRow.lease_until < now))


class JobStore:
    """The ``jobs`` table on Yinsi's database (``sessions`` opens sessions on it)."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utcnow) -> None:
        self.sessions = sessions
        self.clock = clock

    # -- enqueue ---------------------------------------------------------------------------------

    def enqueue(self, name: str, payload: Mapping[str, Any] | None = None, *, key: str | None = None,
                tenant: str | None = None, run_after: datetime | None = None,
                max_attempts: int | None = None) -> tuple[int, bool]:
        """Add a job in its own transaction; ``(id, created)``: an existing key gives its row, unchanged."""
        with self.sessions() as session:
            try:
                with session.begin():
                    return self.enqueue_in(session, name, payload, key=key, tenant=tenant, run_after=run_after,
                                           max_attempts=max_attempts, clock=self.clock)
            except IntegrityError:  # another process inserted the same key at the same moment
                pass
            with session.begin():
                found = session.scalar(select(JobRow.id).where(JobRow.key == key))
                if found is None:
                    raise JobError("作业无法入队（数据库拒绝）")
                return int(found), False

    @staticmethod
    def enqueue_in(session: Session, name: str, payload: Mapping[str, Any] | None = None, *,
                   key: str | None = None, tenant: str | None = None, run_after: datetime | None = None,
                   max_attempts: int | None = None, clock: Callable[[], datetime] = utcnow) -> tuple[int, bool]:
        """Add a job to the caller's transaction (it exists if and only if the caller commits). It counts as
        published now (the caller publishes it once committed, in the same breath); if that publish is lost,
        the sweep (:meth:`overdue`) finds it once the grace period has passed."""
        from yinsi.jobs.registry import TASKS

        task = TASKS.get(name)
        if task is None:
            raise JobError(f"没有注册名为 {name} 的作业")
        key = key or f"{name}:{uuid.uuid4()}"
        if not isinstance(key, str) or len(key) > JOB_KEY_LEN:
            raise JobError(f"作业幂等键应为不超过 {JOB_KEY_LEN} 个字符的字符串")
        body = _payload(payload)
        found = session.scalar(select(JobRow.id).where(JobRow.key == key))
        if found is not None:
            return int(found), False
        now = clock()
        row = JobRow(tenant_id=tenant, name=name, key=key, payload=body, state=JobState.QUEUED.value, attempts=0,
                     max_attempts=max_attempts or task.max_attempts, run_after=run_after or now, lease_owner=None,
                     lease_until=None, heartbeat_at=None, published_at=now, last_error=None, result=None,
                     created_at=now, started_at=None, finished_at=None)
        session.add(row)
        session.flush()
        return row.id, True

    # -- claiming and running ----------------------------------------------------------------------

    def claim(self, job_id: int, owner: str, lease: timedelta | None = None,
              names: Mapping[str, Any] | None = None) -> Claim | None:
        """Take job ``job_id`` for ``owner`` if it is due (queued and past ``run_after``, or running with a
        lease that ran out); None otherwise (done, dead, held by a live lease, not yet due, unknown task)."""
        from yinsi.jobs.registry import TASKS

        tasks = names if names is not None else TASKS
        now = self.clock()
        with self.sessions() as session, session.begin():
            row = session.get(JobRow, job_id)
            if row is None or row.name not in tasks:
                return None
            due = (row.state == JobState.QUEUED.value and row.run_after <= now) or \
                  (row.state == JobState.RUNNING.value and row.lease_until is not None and row.lease_until < now)
            if not due:
                return None
            base = update(JobRow).where(JobRow.id == row.id, JobRow.state == row.state,
                                        JobRow.attempts == row.attempts).execution_options(synchronize_session=False)
            if row.attempts >= row.max_attempts:  # every earlier attempt died holding it
                session.execute(base.values(state=JobState.DEAD.value, lease_owner=None, lease_until=None,
                                            finished_at=now, last_error=row.last_error or "多次执行中断，已放弃"))
                return None
            task = TASKS.get(row.name)
            hold = lease or (task.lease if task else timedelta(minutes=5))
            result = session.execute(base.values(state=JobState.RUNNING.value, attempts=row.attempts + 1,
                                                 lease_owner=owner[:120], lease_until=now + hold, heartbeat_at=now,
                                                 started_at=now))
            if int(getattr(result, "rowcount", 0) or 0) != 1:
                return None
            session.refresh(row)
            return Claim(JobInfo.of(row), row.attempts, owner[:120])

    def due_ids(self, limit: int = 100, names: Mapping[str, Any] | None = None) -> list[int]:
        """Ids of jobs that may be claimed now, oldest due first."""
        query = select(JobRow.id).where(_due(self.clock()))
        if names is not None:
            query = query.where(JobRow.name.in_(list(names)))
        with self.sessions() as session:
            return [int(i) for i in session.scalars(query.order_by(JobRow.run_after, JobRow.id).limit(limit))]

    def _mine(self, claim: Claim) -> Any:
        return update(JobRow).where(JobRow.id == claim.job.id, JobRow.state == JobState.RUNNING.value,
                                    JobRow.lease_owner == claim.owner, JobRow.attempts == claim.attempt) \
            .execution_options(synchronize_session=False)

    def heartbeat(self, claim: Claim, lease: timedelta) -> bool:
        """Renew the lease; False if this attempt no longer holds the job."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            result = session.execute(self._mine(claim).values(lease_until=now + lease, heartbeat_at=now))
            return int(getattr(result, "rowcount", 0) or 0) == 1

    def finish_in(self, session: Session, claim: Claim, result: Any = None) -> bool:
        """Mark the job done in ``session`` (the task's own transaction); False if the lease was lost."""
        text = None
        if result is not None:
            try:
                text = json.dumps(result, ensure_ascii=False, sort_keys=True, default=str)[:PAYLOAD_LIMIT]
            except (TypeError, ValueError):
                text = None
        outcome = session.execute(self._mine(claim).values(state=JobState.DONE.value, lease_owner=None,
                                                           lease_until=None, finished_at=self.clock(),
                                                           last_error=None, result=text))
        return int(getattr(outcome, "rowcount", 0) or 0) == 1

    def fail(self, claim: Claim, error: str, delay: timedelta, *, permanent: bool = False) -> str | None:
        """Record a failed attempt: back to ``queued`` after ``delay``, or ``dead`` when the attempts are used
        up or ``permanent``. Returns the new state, or None if this attempt no longer held the job."""
        now = self.clock()
        dead = permanent or claim.attempt >= claim.job.max_attempts
        values: dict[str, Any] = {"lease_owner": None, "lease_until": None, "last_error": scrub_error(error)}
        if dead:
            values.update(state=JobState.DEAD.value, finished_at=now)
        else:
            values.update(state=JobState.QUEUED.value, run_after=now + delay)
        with self.sessions() as session, session.begin():
            result = session.execute(self._mine(claim).values(**values))
            if int(getattr(result, "rowcount", 0) or 0) != 1:
                return None
        return str(values["state"])

    # -- recovery and operators ----------------------------------------------------------------------

    def overdue(self, grace: timedelta, limit: int = 1000) -> list[tuple[int, datetime]]:
        """Due jobs last published more than ``grace`` ago and still not run (the message was lost, or the
        worker holding it died): marked published now; ``(id, run_after)`` for the caller to publish again."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            rows = session.execute(
                select(JobRow.id, JobRow.run_after).where(
                    _due(now), or_(JobRow.published_at.is_(None), JobRow.published_at < now - grace))
                .order_by(JobRow.run_after, JobRow.id).limit(limit)).all()
            ids = [int(r[0]) for r in rows]
            if ids:
                session.execute(update(JobRow).where(JobRow.id.in_(ids)).values(published_at=now)
                                .execution_options(synchronize_session=False))
            return [(int(r[0]), r[1]) for r in rows]

    def retry(self, job_id: int, *, tenant: str | None = None, any_tenant: bool = False) -> bool:
        """Put a dead job back in the queue with a fresh attempt budget; False if it is not dead (or not
        the tenant's, unless ``any_tenant``: an operator)."""
        now = self.clock()
        statement = update(JobRow).where(JobRow.id == job_id, JobRow.state == JobState.DEAD.value)
        if not any_tenant:
            statement = statement.where(JobRow.tenant_id == tenant)
        with self.sessions() as session, session.begin():
            result = session.execute(statement.values(state=JobState.QUEUED.value, attempts=0, run_after=now,
                                                      published_at=None, finished_at=None)
                                     .execution_options(synchronize_session=False))
            return int(getattr(result, "rowcount", 0) or 0) == 1

    def get(self, job_id: int, *, tenant: str | None = None, any_tenant: bool = False) -> JobInfo | None:
        with self.sessions() as session:
            row = session.get(JobRow, job_id)
            if row is None or (not any_tenant and row.tenant_id != tenant):
                return None
            return JobInfo.of(row)

    def by_key(self, key: str) -> JobInfo | None:
        with self.sessions() as session:
            row = session.scalar(select(JobRow).where(JobRow.key == key))
            return JobInfo.of(row) if row is not None else None

    def list(self, *, tenant: str | None = None, any_tenant: bool = False, state: str | None = None,
             name: str | None = None, limit: int = 100) -> list[JobInfo]:
        """Jobs newest first (of ``tenant``; every tenant's and the system's with ``any_tenant``)."""
        query = select(JobRow)
        if not any_tenant:
            query = query.where(JobRow.tenant_id == tenant)
        if state is not None:
            query = query.where(JobRow.state == state)
        if name is not None:
            query = query.where(JobRow.name == name)
        with self.sessions() as session:
            return [JobInfo.of(r) for r in session.scalars(query.order_by(JobRow.id.desc()).limit(limit))]
