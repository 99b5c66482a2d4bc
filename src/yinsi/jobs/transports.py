"""How a job's id reaches a worker (投递): in-process (embedded, the default) or a Dramatiq broker on
RabbitMQ or Redis. A message carries only the job's id; the row in the ``jobs`` table decides whether it
still runs, so a duplicated message is harmless and a lost one is published again by the scheduler's sweep.

Configuration: ``YINSI_JOBS_BROKER`` = ``embedded`` | ``rabbitmq`` | ``redis`` and ``YINSI_JOBS_BROKER_URL``
(default ``amqp://guest:guest@127.0.0.1:5672`` and ``redis://127.0.0.1:6379/0``); ``YINSI_JOBS_QUEUE``
names the queue (default ``yinsi_jobs``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from yinsi.jobs.errors import JobError

__all__ = ["BROKERS", "DramatiqTransport", "EmbeddedTransport", "Transport", "make_transport"]

BROKERS = ("embedded", "rabbitmq", "redis")
DEFAULT_URLS = {"rabbitmq": "amqp://guest:guest@127.0.0.1:5672", "redis": "redis://127.0.0.1:6379/0"}
BROKER_ENV, BROKER_URL_ENV, QUEUE_ENV = "YINSI_JOBS_BROKER", "YINSI_JOBS_BROKER_URL", "YINSI_JOBS_QUEUE"
DEFAULT_QUEUE = "yinsi_jobs"
#: Dramatiq's own time limit, set far above any lease: the jobs module's leases decide, not Dramatiq.
TIME_LIMIT_MS = 7 * 24 * 3600 * 1000


class Transport(Protocol):
    kind: str

    def publish(self, job_id: int, delay: timedelta | None = None) -> None: ...

    def close(self) -> None: ...


class EmbeddedTransport:
    """No broker: the in-process worker polls the table; publishing only wakes it."""

    kind = "embedded"

    def __init__(self) -> None:
        self.wake = threading.Event()

    def publish(self, job_id: int, delay: timedelta | None = None) -> None:
        if not delay:
            self.wake.set()

    def close(self) -> None:
        self.wake.set()


class DramatiqTransport:
    """A Dramatiq broker (RabbitMQ or Redis) with one actor, ``yinsi_job(job_id)``, whose handler is set by
    the worker (:meth:`serve`). Dramatiq's own retries are off: the jobs table counts attempts."""

    def __init__(self, kind: str, url: str | None = None, queue: str | None = None) -> None:
        import dramatiq

        self.kind = kind
        self.url = url or DEFAULT_URLS[kind]
        self.queue = queue or os.environ.get(QUEUE_ENV, "").strip() or DEFAULT_QUEUE
        self._handler: Callable[[int], Any] | None = None
        try:
            if kind == "rabbitmq":
                from dramatiq.brokers.rabbitmq import RabbitmqBroker

                self.broker: Any = RabbitmqBroker(url=self.url, confirm_delivery=True)
            elif kind == "redis":
                from dramatiq.brokers.redis import RedisBroker

                self.broker = RedisBroker(url=self.url, heartbeat_timeout=15000)  # type: ignore[no-untyped-call]
            else:
                raise JobError(f"未知的消息代理：{kind}（可选 {'、'.join(BROKERS)}）")
        except ImportError:
            raise JobError("缺少 dramatiq：请安装 pip install 'yinsi[jobs]'") from None
        self.actor = dramatiq.Actor(self._receive, broker=self.broker, actor_name="yinsi_job",
                                    queue_name=self.queue, priority=0,
                                    options={"max_retries": 0, "time_limit": TIME_LIMIT_MS})

    def _receive(self, job_id: int) -> None:
        if self._handler is not None:
            self._handler(int(job_id))

    def publish(self, job_id: int, delay: timedelta | None = None) -> None:
        ms = int(delay.total_seconds() * 1000) if delay and delay > timedelta(0) else None
        try:
            self.actor.send_with_options(args=(int(job_id),), delay=ms)
        except Exception as exc:  # the sweep publishes it again; the row is the truth
            raise JobError(f"消息代理（{self.kind}）不可用：{type(exc).__name__}") from None

    def serve(self, handler: Callable[[int], Any], threads: int) -> Any:
        """Start a Dramatiq worker whose threads call ``handler(job_id)``; returns it (call ``stop()``)."""
        import dramatiq

        self._handler = handler
        worker = dramatiq.Worker(self.broker, queues={self.queue}, worker_threads=threads, worker_timeout=200)
        worker.start()
        return worker

    def close(self) -> None:
        self.broker.close()


def make_transport(kind: str | None = None, url: str | None = None) -> Transport:
    """The transport named by ``kind`` (else ``YINSI_JOBS_BROKER``, else embedded)."""
    kind = (kind or os.environ.get(BROKER_ENV, "") or "embedded").strip().lower()
    if kind not in BROKERS:
        raise JobError(f"未知的消息代理：{kind}（可选 {'、'.join(BROKERS)}）")
    if kind == "embedded":
        return EmbeddedTransport()
    return DramatiqTransport(kind, url or os.environ.get(BROKER_URL_ENV, "").strip() or None)
