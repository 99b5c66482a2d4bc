"""Identifiers for a manual step (人工步骤所需的身份信息, S3, S4, S6): the subject's key and attributes, shown to
a privacy officer with a reason, from the request's encrypted plan so that they survive the erasure."""

from __future__ import annotations

from yinsi.audit import AuditAction
from yinsi.domain.datamap import DataMap, Subject
from yinsi.rights.context import RequestError, RightsContext
from yinsi.storage.rights_tables import PLAN_FIELD


def identifiers(ctx: RightsContext, tenant: str, request_id: str, staff_id: str, reason: str) -> dict[str, str]:
    """What a person doing a manual step needs to find the subject in a system Yinsi cannot reach: the
    subject's key and attributes (e.g. the phone number), from the request's encrypted plan (so they
    survive the erasure) or, before any plan, from the app's data. Only a privacy officer, with a
    reason (S3, S4; a minor's only with an approval, S6); logged as ``unmask`` with the items."""
    from yinsi.staff.errors import StaffError
    from yinsi.staff.service import StaffService

    with ctx.sessions() as s:
        row = ctx.get(s, tenant, request_id)
        kind, subject, token = row.subject_kind, ctx.subject_of(row), row.plan_encrypted
    dm = ctx.datamap(tenant)
    subj = ctx.subject_kind(dm, kind)
    items = attribute_items(dm, subj)
    staff = StaffService(ctx.sessions, ctx.audit.log, ctx.audit.ring, clock=ctx.clock)
    try:
        pseudonym, details = staff.authorize_unmask(tenant, staff_id, subject, sorted(set(items.values())), reason)
    except StaffError as exc:
        raise RequestError(f"不能查看该请求主体的身份信息：{exc}") from None
    plan = ctx.decrypt(tenant, PLAN_FIELD, token) or {}
    attributes = dict(plan.get("attributes") or {})
    source = "plan"
    if not attributes:
        attributes, source = ctx.attributes(dm, kind, subject), "app"
    values = {f"{subj.table}.{subj.key}": subject}
    values.update({f"{subj.table}.{column}": str(attributes[name]) for name, column in subj.attributes.items()
                   if attributes.get(name) is not None})
    shown = sorted({items[n] for n in subj.attributes if attributes.get(n) is not None and n in items})
    for step, got in sorted((plan.get("captures") or {}).items()):  # what manual steps need (e.g. file paths)
        for cap in got:
            if cap.get("values"):
                values[f"{step} · {cap['table']}.{cap['column']}"] = "；".join(str(v) for v in cap["values"])
                item = dm.column_item(cap["store"], cap["table"], cap["column"])
                if item and item not in shown:
                    shown.append(item)
    ctx.audit.log.append(tenant, staff_id, AuditAction.UNMASK, pseudonym, shown, reason.strip(),
                         {**details, "request": row.id, "source": source, "purpose": "manual_step"})
    return values


def attribute_items(dm: DataMap, subj: Subject) -> dict[str, str]:
    """Attribute name → the PI item its column is mapped to."""
    items = {name: dm.subject_column_item(subj.id, column) for name, column in subj.attributes.items()}
    return {name: item for name, item in items.items() if item}
