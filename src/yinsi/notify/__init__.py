"""Notifications (通知): a transactional outbox and channel adapters (e-mail over SMTP, SMS).

See docs/notify.md. ``Outbox.enqueue_in`` writes a message in the caller's transaction;
``Outbox.deliver`` sends due messages at least once through the adapters.
"""

from __future__ import annotations

from yinsi.notify.channels import EMAIL, SMS, Channel, FileSmsChannel, OutgoingMessage
from yinsi.notify.errors import ChannelError, NotifyError
from yinsi.notify.outbox import DeliveryOutcome, DeliveryReport, MessageInfo, MessageStatus, Outbox, RetryPolicy
from yinsi.notify.settings import NotifySettings
from yinsi.notify.smtp import SmtpEmailChannel

__all__ = [
    "EMAIL",
    "SMS",
    "Channel",
    "ChannelError",
    "DeliveryOutcome",
    "DeliveryReport",
    "FileSmsChannel",
    "MessageInfo",
    "MessageStatus",
    "NotifyError",
    "NotifySettings",
    "Outbox",
    "OutgoingMessage",
    "RetryPolicy",
    "SmtpEmailChannel",
]
