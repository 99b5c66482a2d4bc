"""Staff access control (工作人员访问控制, RULES S3, S4, S6) and abnormal-activity detection (异常行为监测).

- :mod:`yinsi.staff.roles`: roles, rights, the separation of duties and ``authorize`` (pure).
- :mod:`yinsi.staff.service`: ``StaffService`` — staff and roles, masked views, unmasking with a reason,
  bulk export approved by a second person, approved access to minors' PI; everything audited.
- :mod:`yinsi.staff.anomaly`: ``ActivityMonitor`` — login/registration events, rate rules, alerts.

See ``docs/staff.md``.
"""

from __future__ import annotations

from yinsi.staff.errors import AccessDenied, InvalidInput, NotFound, RequestStateError, SeparationOfDuties, StaffError
from yinsi.staff.roles import (
    CONFLICTS,
    RIGHTS,
    Authorization,
    Role,
    StaffAction,
    StaffMember,
    SubjectContext,
    authorize,
)

__all__ = [
    "CONFLICTS",
    "RIGHTS",
    "AccessDenied",
    "Authorization",
    "InvalidInput",
    "NotFound",
    "RequestStateError",
    "Role",
    "SeparationOfDuties",
    "StaffAction",
    "StaffError",
    "StaffMember",
    "SubjectContext",
    "authorize",
]
