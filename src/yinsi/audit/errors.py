"""Audit-log errors, with messages for people in Chinese."""

from __future__ import annotations


class AuditError(Exception):
    """A problem with the audit log that a person can act on."""


class InvalidAuditEntry(AuditError, ValueError):
    """An entry the log refuses to record (unknown action, over-long field, details not JSON…)."""


class PIInAuditEntry(InvalidAuditEntry):
    """The entry would put personal information in clear into the log (手机号码、身份证号、电子邮箱…).

    ``field`` names where (``details.note``, ``reason``…) and ``kind`` what was found; the value itself is
    never repeated in the message, so the error can be logged safely.
    """

    def __init__(self, field: str, kind: str) -> None:
        self.field = field
        self.kind = kind
        super().__init__(
            f"审计日志不得含有明文个人信息：{field} 中疑似{kind}；"
            "请改用假名化的主体标识和个人信息项 ID，不要写入个人信息的值"
        )


class AuditKeyError(AuditError):
    """The signing key file cannot be created, read or trusted."""


class ChainConfigConflict(AuditError):
    """A chain exists already with other algorithms or checkpoint interval than asked for."""
