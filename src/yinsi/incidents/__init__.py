"""Personal-information security incidents (个人信息安全事件): the PIPL 57 record, severity and the report
clock, the people affected, notices, the report and closing. See docs/incidents.md."""

from __future__ import annotations

from yinsi.incidents.service import OVERDUE_RULE, IncidentError, IncidentService, IncidentView

__all__ = ["OVERDUE_RULE", "IncidentError", "IncidentService", "IncidentView"]
