"""Scheduled duties of minors and transfers abroad (registered with :mod:`yinsi.jobs`).

- ``minors.sweep`` daily at 02:30 Beijing time per tenant: :meth:`MinorsService.sweep` opens (and marks
  verified, as the processor's own duty) a deletion request for each minor still without a verifiable
  guardian consent seven days after registration (M3); once per person.
- ``abroad.thresholds`` daily at 08:00 per tenant: :meth:`AbroadService.check_thresholds` raises the year's
  X2 warnings not yet raised and drops per-person rows of years before the last (the year rolls over on
  1 January Beijing time by itself: counts are kept per year).

Both are idempotent: a rerun opens no second request and raises no second warning.
"""

from __future__ import annotations

from typing import Any

from yinsi.jobs.registry import JobContext, register_periodic

__all__ = ["abroad_thresholds", "minors_sweep"]


def minors_sweep(ctx: JobContext) -> dict[str, Any]:
    from yinsi.jobs.builtin import rights_service
    from yinsi.services.consent import ConsentService
    from yinsi.services.minors import MinorsService

    if not ctx.tenant:
        return {}
    consents = ConsentService(ctx.url)
    try:
        opened = MinorsService(consents).sweep(ctx.tenant, rights_service(ctx.url), now=ctx.now)
    finally:
        consents.close()
    return {"deletion_requests": len(opened)}


def abroad_thresholds(ctx: JobContext) -> dict[str, Any]:
    from yinsi.services.abroad import AbroadService
    from yinsi.services.consent import ConsentService

    if not ctx.tenant:
        return {}
    consents = ConsentService(ctx.url)
    try:
        warnings = AbroadService(consents).check_thresholds(ctx.tenant, ctx.now)
    finally:
        consents.close()
    return {"warnings": len(warnings)}


register_periodic("minors.sweep", minors_sweep, cron="30 2 * * *")
register_periodic("abroad.thresholds", abroad_thresholds, cron="0 8 * * *")
