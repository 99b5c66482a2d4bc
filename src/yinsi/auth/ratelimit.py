"""Sliding-window rate limits kept in Yinsi's database (``rate_events``), so every server process sees the
same counts.

A limit is a bucket name, a maximum and a window: "at most 5 codes per contact per hour" is
``Limit("code_contact", 5, timedelta(hours=1))``. What is limited (an IP, a phone number, a subject) is
never stored: the caller passes the tenant's keyed hash of it (:meth:`RateLimiter.key`, the tenant's
blind-index key, so the hashes of one tenant say nothing about another's and cannot be reversed by
hashing every phone number without the key).

``check`` refuses with ``AuthError(code="rate_limited", status=429, retry_after=seconds)`` when a limit is
full; ``record`` counts an attempt. Attempts that were refused are not counted, so a window drains by
itself. Check and record run in the caller's transaction; two concurrent attempts can both pass a nearly
full window (the limit may be exceeded by the number of concurrent requests, never more).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from yinsi.auth.principals import AuthError
from yinsi.protect.errors import KeyNotFound
from yinsi.protect.keys import KeyRing
from yinsi.storage.auth_tables import RateEventRow

#: Rows older than this are deleted (no limit looks further back).
RETENTION = timedelta(days=1)
#: How often (seconds, per process) old rows are purged.
PURGE_EVERY = 300.0


@dataclass(frozen=True)
class Limit:
    """At most ``maximum`` attempts per key in any ``window``."""

    bucket: str
    maximum: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.maximum < 1 or self.window <= timedelta(0) or self.window > RETENTION:
            raise ValueError("a limit allows at least one attempt in a window of at most one day")


class RateLimiter:
    """Database-backed sliding windows (see the module docstring)."""

    def __init__(self, ring: Callable[[], KeyRing]) -> None:
        self._ring = ring
        self._purged = 0.0

    def key(self, tenant: str, what: str, value: str) -> str:
        """The tenant's keyed hash of ``value`` for ``what`` (``ip``, ``contact``, ``subject``)."""
        ring = self._ring()
        try:
            return ring.blind_index(tenant, "text", f"rate:{what}:{value}")
        except KeyNotFound:
            ring.provision(tenant)
            return ring.blind_index(tenant, "text", f"rate:{what}:{value}")

    def retry_after(self, s: Session, tenant: str, limit: Limit, key_hash: str, now: datetime) -> int | None:
        """Seconds until ``limit`` allows another attempt for ``key_hash``; ``None`` when it allows one now."""
        since = now - limit.window
        times = s.scalars(
            select(RateEventRow.at)
            .where(RateEventRow.tenant_id == tenant, RateEventRow.bucket == limit.bucket,
                   RateEventRow.key_hash == key_hash, RateEventRow.at > since)
            .order_by(RateEventRow.at.desc())
            .limit(limit.maximum)
        ).all()
        if len(times) < limit.maximum:
            return None
        frees_at = times[-1] + limit.window  # the oldest of the newest `maximum` attempts leaves the window
        return max(1, math.ceil((frees_at - now).total_seconds()))

    def check(self, s: Session, tenant: str, checks: Sequence[tuple[Limit, str]], now: datetime) -> None:
        """Refuse (429) if any of ``(limit, key_hash)`` is full; ``retry_after`` is the longest wait."""
        waits = [w for limit, key in checks if (w := self.retry_after(s, tenant, limit, key, now)) is not None]
        if waits:
            wait = max(waits)
            raise AuthError("rate_limited", f"操作过于频繁，请 {_wait_zh(wait)}后再试", status=429, retry_after=wait)

    def record(self, s: Session, tenant: str, hits: Sequence[tuple[Limit, str]], now: datetime) -> None:
        """Count one attempt against each ``(limit, key_hash)``."""
        for limit, key in hits:
            s.add(RateEventRow(tenant_id=tenant, bucket=limit.bucket, key_hash=key, at=now))
        if time.monotonic() - self._purged > PURGE_EVERY:
            self._purged = time.monotonic()
            s.execute(delete(RateEventRow).where(RateEventRow.at < now - RETENTION)
                      .execution_options(synchronize_session=False))


def _wait_zh(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} 秒"
    return f"{math.ceil(seconds / 60)} 分钟"
