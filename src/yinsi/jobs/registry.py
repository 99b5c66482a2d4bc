"""Registered tasks and periodic schedules (作业类型与定时计划), and the context a task function receives."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from yinsi.domain.cron import Cron, CronError
from yinsi.jobs.errors import JobError

__all__ = ["PERIODICS", "SHANGHAI", "TASKS", "JobContext", "Periodic", "Task", "register_periodic", "register_task"]

#: Periodic schedules are read in Beijing time (no daylight saving).
SHANGHAI = ZoneInfo("Asia/Shanghai")

_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")


@dataclass
class JobContext:
    """What a task function gets: the job, its tenant, the time the attempt started and a database session.

    ``db`` is a session on Yinsi's database whose transaction commits together with the job's ``done``
    mark, and only if this attempt still holds the job: database effects made through ``db`` happen exactly
    once. Effects elsewhere (a message sent, another database) must be idempotent by ``key``.
    ``heartbeat()`` renews the lease in a long job (a background thread renews it too) and raises
    :class:`~yinsi.jobs.errors.LeaseLost` if another worker has taken the job over.
    """

    job_id: int
    name: str
    key: str
    tenant: str | None
    payload: dict[str, Any]
    attempt: int
    now: datetime
    db: Session
    url: str
    _heartbeat: Callable[[], None] = field(repr=False, default=lambda: None)

    @property
    def local_now(self) -> datetime:
        """``now`` in Beijing time."""
        return self.now.astimezone(SHANGHAI)

    def heartbeat(self) -> None:
        self._heartbeat()


TaskFn = Callable[[JobContext], Any]


@dataclass(frozen=True)
class Task:
    """A kind of job: a name and the function that runs it."""

    name: str
    fn: TaskFn
    max_attempts: int = 5
    lease: timedelta = timedelta(minutes=5)
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=6)

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th attempt failed: 30 s, 1 min, 2 min … capped at ``max_delay``."""
        backoff: timedelta = self.base_delay * (2 ** max(0, min(attempts - 1, 30)))
        return min(backoff, self.max_delay)


@dataclass(frozen=True)
class Periodic:
    """A schedule: the task ``name`` is enqueued at every due minute of ``cron`` (Beijing time), once per
    tenant when ``per_tenant`` (else once, with no tenant)."""

    name: str
    cron: Cron
    per_tenant: bool = True


#: Every registered task by name (filled at import of the modules that register them).
TASKS: dict[str, Task] = {}
#: Every periodic schedule by name.
PERIODICS: dict[str, Periodic] = {}


def _same(a: TaskFn, b: TaskFn) -> bool:
    return a is b or (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == \
        (getattr(b, "__module__", None), getattr(b, "__qualname__", None))


def register_task(name: str, fn: TaskFn, *, max_attempts: int = 5, lease: timedelta = timedelta(minutes=5),
                  base_delay: timedelta = timedelta(seconds=30), max_delay: timedelta = timedelta(hours=6)) -> Task:
    """Register ``fn`` as the task ``name`` (lower-case, e.g. ``retention.sweep``). Registering the same
    function again is harmless (a module imported twice); another function under a taken name is refused."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise JobError(f"作业名称应为小写英文标识（不超过 100 个字符），实际为 {name!r}")
    if max_attempts < 1 or lease <= timedelta(0) or base_delay <= timedelta(0) or max_delay < base_delay:
        raise JobError("max_attempts 至少为 1，租约与重试间隔须为正数")
    existing = TASKS.get(name)
    if existing is not None and not _same(existing.fn, fn):
        raise JobError(f"作业名称 {name} 已被另一函数注册")
    task = Task(name, fn, max_attempts, lease, base_delay, max_delay)
    TASKS[name] = task
    return task


def register_periodic(name: str, fn: TaskFn, cron: str = "0 3 * * *", *, per_tenant: bool = True,
                      max_attempts: int = 3, lease: timedelta = timedelta(minutes=5)) -> Periodic:
    """Register ``fn`` as task ``name`` and run it at every due minute of ``cron`` in Beijing time
    (``yinsi scheduler`` enqueues it exactly once per due time, per tenant unless ``per_tenant=False``)."""
    try:
        parsed = Cron.parse(cron)
    except CronError as exc:
        raise JobError(str(exc)) from None
    register_task(name, fn, max_attempts=max_attempts, lease=lease)
    periodic = Periodic(name, parsed, per_tenant)
    PERIODICS[name] = periodic
    return periodic


def registered(names: Mapping[str, Task] | None = None) -> list[str]:
    return sorted(names or TASKS)
