"""Failed staff log-ins per client address, counted in this process (the accounts' own lockout, after 5
failures, is in the database and shared by every process; this bounds password guessing across many
accounts from one address). The address is kept only as a keyed hash, in memory."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import deque

from yinsi.auth.principals import AuthError

#: At most this many failed log-ins per address in :data:`WINDOW` seconds.
MAX_FAILURES = 20
WINDOW = 15 * 60.0
_MAX_ADDRESSES = 100_000


class FailureThrottle:
    def __init__(self, maximum: int = MAX_FAILURES, window: float = WINDOW) -> None:
        self.maximum = maximum
        self.window = window
        self._key = secrets.token_bytes(32)
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _id(self, address: str | None) -> str:
        return hmac.new(self._key, (address or "-").encode(), hashlib.sha256).hexdigest()

    def check(self, address: str | None) -> None:
        """429 (``rate_limited``) when the address has failed too often lately."""
        now = time.monotonic()
        with self._lock:
            times = self._failures.get(self._id(address))
            while times and now - times[0] > self.window:
                times.popleft()
            if times is not None and len(times) >= self.maximum:
                wait = max(1, math.ceil(self.window - (now - times[0])))
                raise AuthError("rate_limited", f"登录失败次数过多，请 {math.ceil(wait / 60)} 分钟后再试",
                                status=429, retry_after=wait)

    def failed(self, address: str | None) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) >= _MAX_ADDRESSES:
                self._failures.clear()
            self._failures.setdefault(self._id(address), deque(maxlen=self.maximum)).append(now)
