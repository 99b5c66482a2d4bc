"""Channel configuration from the environment (渠道配置).

``YINSI_SMTP_HOST`` / ``YINSI_SMTP_PORT``
    The SMTP server. Default ``127.0.0.1:8025`` (a local development server such as
    ``python -m aiosmtpd -n -l 127.0.0.1:8025``).
``YINSI_SMTP_SENDER``
    The ``From`` address. Default ``noreply@yinsi.local``.
``YINSI_SMTP_STARTTLS``
    ``1``/``true`` to upgrade the connection with STARTTLS (certificate checked). Default off.
``YINSI_SMTP_USERNAME`` / ``YINSI_SMTP_PASSWORD``
    Log in after (STARTTLS and) EHLO when a user name is set.
``YINSI_SMS_OUTBOX_DIR``
    Where the file SMS adapter writes ``sms-outbox.jsonl``. Default ``<data dir>/sms-outbox``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from yinsi.config import data_dir
from yinsi.notify.channels import EMAIL, SMS, Channel, FileSmsChannel
from yinsi.notify.errors import NotifyError
from yinsi.notify.smtp import SmtpEmailChannel

__all__ = ["NotifySettings"]

SMTP_HOST_ENV = "YINSI_SMTP_HOST"
SMTP_PORT_ENV = "YINSI_SMTP_PORT"
SMTP_SENDER_ENV = "YINSI_SMTP_SENDER"
SMTP_STARTTLS_ENV = "YINSI_SMTP_STARTTLS"
SMTP_USERNAME_ENV = "YINSI_SMTP_USERNAME"
SMTP_PASSWORD_ENV = "YINSI_SMTP_PASSWORD"
SMS_OUTBOX_DIR_ENV = "YINSI_SMS_OUTBOX_DIR"

DEFAULT_SMTP_HOST = "127.0.0.1"
DEFAULT_SMTP_PORT = 8025
DEFAULT_SMTP_SENDER = "noreply@yinsi.local"
SMS_OUTBOX_DIR_NAME = "sms-outbox"


@dataclass(frozen=True)
class NotifySettings:
    smtp_host: str = DEFAULT_SMTP_HOST
    smtp_port: int = DEFAULT_SMTP_PORT
    smtp_sender: str = DEFAULT_SMTP_SENDER
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    sms_outbox_dir: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NotifySettings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(name, "").strip()

        port_text = get(SMTP_PORT_ENV) or str(DEFAULT_SMTP_PORT)
        try:
            port = int(port_text)
        except ValueError:
            raise NotifyError(f"{SMTP_PORT_ENV} 应为端口号（1–65535），实际为 {port_text!r}") from None
        if not 0 < port < 65536:
            raise NotifyError(f"{SMTP_PORT_ENV} 应为端口号（1–65535），实际为 {port}")
        starttls = get(SMTP_STARTTLS_ENV).lower()
        if starttls not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
            raise NotifyError(f"{SMTP_STARTTLS_ENV} 应为 1 或 0，实际为 {starttls!r}")
        sender = get(SMTP_SENDER_ENV) or DEFAULT_SMTP_SENDER
        if "@" not in sender:
            raise NotifyError(f"{SMTP_SENDER_ENV} 应为电子邮箱地址，实际为 {sender!r}")
        sms_dir = get(SMS_OUTBOX_DIR_ENV)
        return cls(
            smtp_host=get(SMTP_HOST_ENV) or DEFAULT_SMTP_HOST,
            smtp_port=port,
            smtp_sender=sender,
            smtp_starttls=starttls in ("1", "true", "yes", "on"),
            smtp_username=get(SMTP_USERNAME_ENV) or None,
            smtp_password=env.get(SMTP_PASSWORD_ENV) or None,
            sms_outbox_dir=Path(sms_dir).expanduser().resolve() if sms_dir else None,
        )

    @property
    def sms_directory(self) -> Path:
        return self.sms_outbox_dir or data_dir() / SMS_OUTBOX_DIR_NAME

    def channels(self) -> dict[str, Channel]:
        """The configured adapters by channel name (``email``, ``sms``)."""
        return {
            EMAIL: SmtpEmailChannel(self.smtp_host, self.smtp_port, self.smtp_sender, starttls=self.smtp_starttls,
                                    username=self.smtp_username, password=self.smtp_password),
            SMS: FileSmsChannel(self.sms_directory),
        }
