"""Processing records written off the request path: a bounded buffer and one background writer thread.

The gate appends one record per decision to an in-memory buffer (a ``deque``: appending is thread-safe and
never touches the database) and returns. A writer thread writes the buffer in batches of ``batch`` records
(one transaction each) whenever ``batch`` records are waiting, and otherwise every ``interval`` seconds.

- **Buffer full** (``capacity`` records, ``YINSI_RECORD_BUFFER``, default 10,000: the database is slower
  than the gate or failing): the deciding thread waits for the writer to make room (until the buffer is half
  empty, so that the writer can write several batches in a row), at most ``full_wait`` seconds
  (``YINSI_RECORD_FULL_WAIT``, default 2). If there is still no room, the call fails with
  ``RecordBufferFull`` and no decision is returned: the app must treat it as a refusal. A record is never
  dropped: a decision without its record would be a processing nobody can account for.
- **Write failures** are retried with a growing pause (up to 5 s); the batch stays in the buffer, in order,
  each failure is counted (``stats.failures``), logged without the statement's parameters, and kept as
  ``last_error``. ``flush()`` and ``close()`` raise ``RecordWriteError`` when records cannot be written.
- **Clean stop** (``close()``, or the interpreter exiting normally): the writer stops and everything still
  buffered is written before ``close()`` returns. Nothing is lost.
- **Crash** (the process is killed, the machine loses power): the records still in the buffer are lost
  (a batch being written stays in the buffer until its transaction commits): at most ``capacity`` records
  and, while the database keeps up, about those of the last ``interval`` seconds (``YINSI_RECORD_FLUSH_MS``,
  default 200 ms) or ``batch`` records (default 1,000), whichever comes first, plus the batch in flight.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("yinsi.records")

DEFAULT_CAPACITY = 10_000
CAPACITY_ENV = "YINSI_RECORD_BUFFER"
DEFAULT_INTERVAL_MS = 200
INTERVAL_ENV = "YINSI_RECORD_FLUSH_MS"
DEFAULT_FULL_WAIT = 2.0
FULL_WAIT_ENV = "YINSI_RECORD_FULL_WAIT"
#: The longest pause between two attempts after failed writes (seconds).
MAX_BACKOFF = 5.0


class RecordBufferFull(RuntimeError):
    """The processing-record buffer stayed full: the decision was not made (it could not be recorded)."""

    def __init__(self, capacity: int, waited: float) -> None:
        super().__init__(f"处理记录缓冲区已满（{capacity} 条，等待 {waited:g} 秒后仍无空间：数据库写入过慢或失败）；"
                         "本次判断未作出，请按拒绝处理并稍后重试")


class RecordWriteError(RuntimeError):
    """Processing records could not be written; they are still buffered."""

    def __init__(self, pending: int, cause: BaseException) -> None:
        super().__init__(f"处理记录写入数据库失败（{type(cause).__name__}）；{pending} 条记录仍在缓冲区，未丢失")
        self.pending = pending


def _number_from_env(name: str, default: float, *, minimum: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} 应为数字，而不是 {raw!r}") from None
    if not value >= minimum:
        raise ValueError(f"{name} 不能小于 {minimum:g}：{raw!r}")
    return value


@dataclass
class WriterStats:
    written: int = 0  # records written
    batches: int = 0  # transactions that wrote them
    failures: int = 0  # failed attempts (each retried)
    full_waits: int = 0  # calls that found the buffer full and waited
    high_water: int = 0  # the most records found waiting by the writer


class RecordWriter:
    """A bounded buffer of records and the thread that writes them with ``write(batch)`` (one transaction)."""

    def __init__(self, write: Callable[[list[Any]], None], *, capacity: int | None = None, batch: int = 1000,
                 interval: float | None = None, full_wait: float | None = None, name: str = "yinsi-records") -> None:
        self._write = write
        self.capacity = int(_number_from_env(CAPACITY_ENV, DEFAULT_CAPACITY, minimum=1)) if capacity is None \
            else int(capacity)
        if self.capacity < 1:
            raise ValueError("处理记录缓冲区容量至少为 1")
        self.batch = max(1, min(int(batch), self.capacity))
        self.interval = _number_from_env(INTERVAL_ENV, DEFAULT_INTERVAL_MS, minimum=1) / 1000 if interval is None \
            else float(interval)
        self.full_wait = _number_from_env(FULL_WAIT_ENV, DEFAULT_FULL_WAIT, minimum=0) if full_wait is None \
            else float(full_wait)
        self.name = name
        #: the buffer; producers append to it directly (``deque.append`` is atomic)
        self.buffer: deque[Any] = deque()
        self.stats = WriterStats()
        self.last_error: str | None = None  # the type of the last write failure (never its parameters)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()  # one writer at a time: batches keep their order
        self._space = threading.Condition()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        _LIVE.add(self)

    # --- producers ------------------------------------------------------------------------------------
    def put(self, record: Any) -> None:
        """Buffer one record (waits for room when the buffer is full; see the module documentation)."""
        buf = self.buffer
        if len(buf) >= self.capacity:
            self.wait_for_space()
        buf.append(record)
        if len(buf) >= self.batch:
            self.wake()

    def wake(self) -> None:
        if self._closed:  # buffered after close(): nobody else will write it
            self._drain()
            return
        if self._thread is None:
            self.start()
        if not self._wake.is_set():
            self._wake.set()

    def wait_for_space(self) -> None:
        """Block until the buffer has room, at most ``full_wait`` seconds; ``RecordBufferFull`` otherwise."""
        self.stats.full_waits += 1
        self.wake()
        deadline = time.monotonic() + self.full_wait
        # wait until the buffer is half empty, not just one record below full: the writer then writes several
        # batches without competing for the interpreter lock with the deciding threads after each one
        low = self.capacity // 2 if self.capacity >= 2 * self.batch else self.capacity - 1
        with self._space:
            while len(self.buffer) > low:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    if len(self.buffer) < self.capacity:
                        return  # the writer is slow, but there is room
                    raise RecordBufferFull(self.capacity, self.full_wait)
                self._space.wait(min(remaining, 0.05))

    # --- the writer -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread (idempotent; done by the first ``wake``)."""
        with self._start_lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=_run, args=(weakref.ref(self),), name=self.name, daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _drain(self) -> int:
        """Write everything buffered now, batch by batch; a failed batch stays at the front of the buffer and
        the error is raised (``RecordWriteError``)."""
        written = 0
        with self._write_lock:
            buf = self.buffer
            if len(buf) > self.stats.high_water:
                self.stats.high_water = len(buf)
            while buf:
                # the batch stays in the buffer until it is written (it counts against the capacity, and a
                # failure leaves it in place, in order); producers only append at the other end
                n = min(len(buf), self.batch)
                batch = [buf[i] for i in range(n)]
                try:
                    self._write(batch)
                except Exception as exc:
                    self.stats.failures += 1
                    self.last_error = type(exc).__name__
                    raise RecordWriteError(len(buf), exc) from exc
                for _ in range(n):
                    buf.popleft()
                written += n
                self.stats.written += n
                self.stats.batches += 1
                with self._space:
                    self._space.notify_all()
        return written

    def flush(self) -> int:
        """Write every buffered record now, in the caller's thread; returns how many were written."""
        return self._drain()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the writer and write what is left (raises ``RecordWriteError`` if that fails)."""
        self._closed = True
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._drain()
        _LIVE.discard(self)


def _run(ref: weakref.ref[RecordWriter]) -> None:
    """The writer thread: holds its writer only while working, so that an abandoned writer can be freed."""
    failures = 0
    while True:
        writer = ref()
        if writer is None:
            return
        wake, stop = writer._wake, writer._stop
        pause = writer.interval if failures == 0 else min(writer.interval * 2 ** failures, MAX_BACKOFF)
        del writer
        if failures:
            stop.wait(pause)  # after a failure: wait before retrying, unless stopping
        else:
            wake.wait(pause)
        writer = ref()
        if writer is None:
            return
        wake.clear()
        if stop.is_set():
            return  # ``close()`` writes the rest in its own thread
        try:
            writer._drain()
            failures = 0
        except RecordWriteError as exc:
            failures += 1
            log.warning("处理记录写入失败（%s），%d 条记录保留在缓冲区，将重试（第 %d 次失败）",
                        writer.last_error, exc.pending, failures)
        except Exception:  # pragma: no cover - a bug in the writer itself: report, keep the thread alive
            failures += 1
            log.exception("处理记录写入线程出错")
        del writer


#: Writers not closed yet: written out when the interpreter exits normally.
_LIVE: weakref.WeakSet[RecordWriter] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for writer in list(_LIVE):
        try:
            writer.close(timeout=10.0)
        except Exception as exc:  # the process is ending: say what is lost, without parameters
            print(f"yinsi: {exc}", file=sys.stderr)
