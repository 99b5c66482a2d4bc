"""Errors of the notification layer. Messages are Chinese (staff read them) and never contain a recipient
address or a message body."""

from __future__ import annotations


class NotifyError(Exception):
    """Something about notifications is wrong (configuration, an unknown channel, missing keys)."""


class ChannelError(NotifyError):
    """A channel did not accept a message.

    ``permanent=True`` means retrying cannot help (the mailbox does not exist, the gateway rejected the
    number): the message is given up at once. Otherwise it is retried with backoff. The text must not
    contain the address or the body; the outbox scrubs digits and the address from it anyway.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
