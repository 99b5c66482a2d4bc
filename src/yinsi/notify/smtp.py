"""E-mail over SMTP (电子邮件渠道) with :mod:`smtplib`.

The message is a proper MIME message: ``text/plain; charset=utf-8`` in base64, the subject encoded per
RFC 2047 (Chinese subjects survive every relay), ``Date``, and a ``Message-ID`` derived from the outbox
message id, so a redelivery after a crash carries the same ``Message-ID`` and mail software can drop the
duplicate. One connection per message (verification codes and notices are few); ``timeout`` bounds every
network step.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr

from yinsi.notify.channels import EMAIL, OutgoingMessage
from yinsi.notify.errors import ChannelError

__all__ = ["SmtpEmailChannel", "build_email"]

DEFAULT_TIMEOUT = 10.0


def _domain(sender: str) -> str:
    domain = sender.rpartition("@")[2].strip("<> ")
    return domain or "yinsi.local"


def build_email(message: OutgoingMessage, sender: str, sender_name: str | None = None) -> EmailMessage:
    """The MIME message for ``message`` (UTF-8 subject and body)."""
    mail = EmailMessage(policy=SMTP_POLICY)
    mail["From"] = formataddr((sender_name, sender)) if sender_name else sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(datetime.now(UTC))
    tenant = re.sub(r"[^A-Za-z0-9.-]", "-", message.tenant)
    mail["Message-ID"] = f"<outbox-{message.message_id}.{tenant}@{_domain(sender)}>"
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.body, subtype="plain", charset="utf-8", cte="base64")
    return mail


class SmtpEmailChannel:
    """Sends e-mail through an SMTP server (``starttls`` and login optional)."""

    name = EMAIL

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        *,
        sender_name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not sender or "@" not in sender:
            raise ValueError("the sender is an e-mail address")
        self.host = host
        self.port = int(port)
        self.sender = sender
        self.starttls = starttls
        self.username = username
        self._password = password
        self.sender_name = sender_name
        self.timeout = timeout
        self.ssl_context = ssl_context

    def __repr__(self) -> str:
        return f"SmtpEmailChannel(host={self.host!r}, port={self.port}, sender={self.sender!r}, starttls={self.starttls})"

    def send(self, message: OutgoingMessage) -> str | None:
        mail = build_email(message, self.sender, self.sender_name)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self._password or "")
                refused = smtp.send_message(mail, from_addr=self.sender, to_addrs=[message.to])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise ChannelError(f"SMTP 服务器拒绝了收件人（{_codes(codes)}）",
                               permanent=all(500 <= c < 600 for c in codes)) from None
        except smtplib.SMTPDataError as exc:
            raise ChannelError(f"SMTP 服务器拒收邮件内容（{exc.smtp_code}）", permanent=500 <= exc.smtp_code < 600) from None
        except smtplib.SMTPResponseException as exc:  # sender refused, authentication, HELO …: configuration
            raise ChannelError(f"SMTP 错误（{exc.smtp_code}）") from None
        except smtplib.SMTPException as exc:
            raise ChannelError(f"SMTP 错误（{type(exc).__name__}）") from None
        except (OSError, ssl.SSLError) as exc:
            raise ChannelError(f"无法连接 SMTP 服务器 {self.host}:{self.port}（{type(exc).__name__}）") from None
        if refused:  # only one recipient: cannot be partially refused, but be explicit
            codes = [code for code, _ in refused.values()]
            raise ChannelError(f"SMTP 服务器拒绝了收件人（{_codes(codes)}）", permanent=all(500 <= c < 600 for c in codes))
        return str(mail["Message-ID"])


def _codes(codes: list[int]) -> str:
    return ", ".join(str(c) for c in codes) or "?"
