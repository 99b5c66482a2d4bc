"""The shared base of the use cases that write to Yinsi's database and send through the notification outbox
(policy-change notices, incidents): one engine and session factory, the audit trail, a clock, and the outbox
made on first use from the given channels or the environment's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Self

from yinsi.config import database_url, is_default_database
from yinsi.services.audit_trail import AuditTrail
from yinsi.storage.engine import make_engine, make_session_factory
from yinsi.storage.migrate import ensure_current


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxService:
    def __init__(self, url: str | None = None, *, channels: Mapping[str, Any] | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.url = url or database_url()
        ensure_current(self.url, auto_upgrade=is_default_database(self.url))
        self.engine = make_engine(self.url)
        self.sessions = make_session_factory(self.engine)
        self.audit = AuditTrail(self.sessions)
        self.clock = clock
        self._channels = channels
        self._outbox: Any = None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def outbox(self) -> Any:
        if self._outbox is None:
            from yinsi.notify.outbox import Outbox
            from yinsi.notify.settings import NotifySettings

            channels = self._channels if self._channels is not None else NotifySettings.from_env().channels()
            self._outbox = Outbox(self.sessions, self.audit.ring, channels, clock=self.clock)
        return self._outbox
