"""The retention jobs: ``retention.internal`` (03:15 daily, per tenant) sweeps Yinsi's own records past
their period (``yinsi retention sweep-internal``), with the periods of ``YINSI_RETENTION_INTERNAL``."""

from __future__ import annotations

import os
from typing import Any

from yinsi.jobs.registry import JobContext, register_periodic


def sweep_internal(ctx: JobContext) -> dict[str, Any]:
    from yinsi.domain.retention import parse_periods
    from yinsi.retention.service import RetentionService

    if not ctx.tenant:
        return {"removed": 0}
    overrides = parse_periods(os.environ.get("YINSI_RETENTION_INTERNAL", ""))
    svc = RetentionService(ctx.url)
    try:
        done = svc.sweep_internal(ctx.now, tenant=ctx.tenant, overrides=overrides)
    finally:
        svc.close()
    return {d.name: d.removed for d in done}


register_periodic("retention.internal", sweep_internal, cron="15 3 * * *")
