"""Errors of staff access control and abnormal-activity detection. Messages are Chinese (staff read them)
and never contain a PI value."""

from __future__ import annotations

from yinsi.staff.roles import Authorization


class StaffError(Exception):
    """Base class: something a member of staff or an operator must act on."""


class AccessDenied(StaffError):
    """The permission check refused (``authorization`` says why and under which rule)."""

    def __init__(self, authorization: Authorization) -> None:
        super().__init__(f"拒绝（{authorization.rule}）：{authorization.reason_zh}")
        self.authorization = authorization

    @property
    def rule(self) -> str:
        return self.authorization.rule


class SeparationOfDuties(StaffError):
    """A grant would give one person two roles that must stay separate (S3)."""

    rule = "S3"


class InvalidInput(StaffError, ValueError):
    """Bad input: an empty reason, an unknown item, a malformed event."""


class NotFound(StaffError, LookupError):
    """An unknown tenant, staff member, subject, request or alert."""


class RequestStateError(StaffError):
    """An approval in the wrong state (already decided, used, expired)."""
