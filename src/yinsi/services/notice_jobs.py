"""Scheduled duties of policy-change notices and incidents (registered with :mod:`yinsi.jobs`).

- ``policy.notices`` every 10 minutes per tenant: :meth:`PolicyNotices.run_due` at the job's time (notices
  due, and on an announced termination's stop date the full sweep: one deletion request per person, run by
  the rights service with the data map of ``YINSI_DATAMAP``; without one the sweep waits and is reported).
- ``incident.clock`` every 5 minutes per tenant: :meth:`IncidentService.check_overdue` (an alert per
  incident whose regulator report is overdue).

Both are idempotent: a notice leaves ``scheduled`` once, an incident gets one overdue alert; a rerun after a
crash does nothing twice.
"""

from __future__ import annotations

import os
from typing import Any

from yinsi.jobs.registry import JobContext, register_periodic

__all__ = ["incident_clock", "policy_notices"]


def policy_notices(ctx: JobContext) -> dict[str, Any]:
    from yinsi.services.policy_notices import PolicyNotices

    if not ctx.tenant:
        return {}
    sweeper = None
    if os.environ.get("YINSI_DATAMAP", "").strip():
        from yinsi.jobs.builtin import rights_service

        rights = rights_service(ctx.url)
        tenant = ctx.tenant

        def sweep(subject: str) -> str:
            request_id = rights.submit(tenant, subject, "deletion", channel="staff",
                                       details={"reason": "服务停止运营（PIPL 47）"})
            rights.mark_verified(tenant, request_id, "system", "停止运营全量清除，无须本人核验")
            return str(request_id)  # rights.queue runs it

        sweeper = sweep
    with PolicyNotices(ctx.url) as svc:
        return svc.run_due(ctx.tenant, now=ctx.now, sweeper=sweeper).to_dict()


def incident_clock(ctx: JobContext) -> dict[str, Any]:
    from yinsi.incidents import IncidentService

    if not ctx.tenant:
        return {}
    with IncidentService(ctx.url) as svc:
        return {"alerts": svc.check_overdue(ctx.tenant, now=ctx.now)}


register_periodic("policy.notices", policy_notices, cron="*/10 * * * *")
register_periodic("incident.clock", incident_clock, cron="*/5 * * * *")
