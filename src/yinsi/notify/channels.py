"""Channel adapters (渠道适配器): how an outbox message leaves Yinsi.

A channel is anything with a ``name`` and a ``send(message) -> provider id | None`` that either accepts
the message (returns) or raises :class:`~yinsi.notify.errors.ChannelError` (``permanent=True`` when a
retry cannot help). Any other exception counts as a temporary failure. ``send`` must be safe to call
again for the same message (delivery is at least once): :attr:`OutgoingMessage.message_id` is stable
across retries, so a gateway that supports idempotency keys or a mail client that de-duplicates by
``Message-ID`` can drop the duplicate.

Adapters here: :class:`~yinsi.notify.smtp.SmtpEmailChannel` (e-mail over SMTP) and
:class:`FileSmsChannel` (SMS into a JSON-lines file: the development and test adapter). A real SMS
gateway (阿里云短信, 腾讯云短信 …) is a class of the same shape: it sends ``template`` and ``params``
(Chinese carriers accept only pre-approved templates with a registered signature 签名) or ``body``,
and raises ``ChannelError(permanent=True)`` for a rejected number and ``ChannelError`` otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from yinsi.notify.errors import ChannelError

__all__ = ["EMAIL", "SMS", "SMS_OUTBOX_FILE", "Channel", "FileSmsChannel", "OutgoingMessage"]

EMAIL = "email"
SMS = "sms"
SMS_OUTBOX_FILE = "sms-outbox.jsonl"


@dataclass(frozen=True)
class OutgoingMessage:
    """A message as a channel sees it (decrypted from the outbox just before sending).

    ``repr`` hides the address, the body and the parameters (they may hold a one-time code).
    """

    message_id: int
    tenant: str
    channel: str
    to: str = field(repr=False)
    subject: str
    body: str = field(repr=False)
    kind: str
    ref: str | None = None
    template: str | None = None
    params: Mapping[str, str] = field(default_factory=dict, repr=False)


@runtime_checkable
class Channel(Protocol):
    """A way to deliver messages (e-mail, SMS, push …)."""

    name: str

    def send(self, message: OutgoingMessage) -> str | None:
        """Hand the message over; return the provider's id for it (or ``None``), or raise ``ChannelError``."""
        ...


class FileSmsChannel:
    """SMS into ``<directory>/sms-outbox.jsonl``, one JSON object per line (the dev/test SMS gateway).

    Each line: ``{"message_id", "tenant", "to", "body", "template", "params", "kind", "ref",
    "accepted_at"}``. The file holds phone numbers and codes in clear, as a real gateway would see them: it
    is for development and tests, created with permissions 0600 in a 0700 directory. A line is written
    with one ``write`` on an ``O_APPEND`` descriptor under an exclusive lock and ``fsync``-ed before
    ``send`` returns, so the message is accepted only once it is on disk.
    """

    name = SMS

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FileSmsChannel({str(self.directory)!r})"

    @property
    def path(self) -> Path:
        return self.directory / SMS_OUTBOX_FILE

    def send(self, message: OutgoingMessage) -> str | None:
        record = {
            "message_id": message.message_id,
            "tenant": message.tenant,
            "to": message.to,
            "body": message.body,
            "template": message.template,
            "params": dict(message.params),
            "kind": message.kind,
            "ref": message.ref,
            "accepted_at": datetime.now(UTC).isoformat(),
        }
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ChannelError(f"短信发件文件无法打开（{type(exc).__name__}）") from None
        try:
            with _locked(fd):
                written = os.write(fd, line)
                if written != len(line):
                    raise ChannelError("短信发件文件写入不完整")
                os.fsync(fd)
        except OSError as exc:
            raise ChannelError(f"短信发件文件写入失败（{type(exc).__name__}）") from None
        finally:
            os.close(fd)
        return f"file:{message.message_id}"

    def read_messages(self) -> list[dict[str, Any]]:
        """Every line of the file, parsed (for tests and ``yinsi`` development tooling)."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: O_APPEND alone
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
