"""Cancellation prerequisites (注销前提, R9): the declaration's prerequisites checked against the app's data
through the data map's ``prerequisites``; a check whose prerequisite the policy does not state is never
applied, and a prerequisite no check covers is left to a person."""

from __future__ import annotations

from yinsi.domain.policy import Declaration
from yinsi.rights.context import RightsContext


def prerequisites(ctx: RightsContext, tenant: str, kind: str, subject: str,
                  decl: Declaration | None = None) -> tuple[list[str], list[str]]:
    """(unmet, unchecked): the declaration's cancellation prerequisites that the app's data shows are not
    met (with the Chinese message of the data map's check), and those no check covers (a person
    confirms them). A check whose prerequisite the policy does not state is never applied (R9)."""
    c = (decl or ctx.declaration(tenant)).account_cancellation
    if c is None or not c.prerequisites:
        return [], []
    dm = ctx.datamap(tenant)
    unmet: list[str] = []
    unchecked: list[str] = []
    for p in c.prerequisites:
        checks = [k for k in dm.prerequisites if k.match in p.description and k.subject == kind]
        if not checks:
            unchecked.append(p.description)
            continue
        for check in checks:
            loc = next((loc for loc in dm.locations(kind) if loc.store == check.store and loc.table == check.table),
                       None)
            if loc is None:
                unchecked.append(p.description)
                continue
            conn = ctx.connectors(dm, tenant)[loc.store]
            if conn.read(loc, subject, whole=True):
                unmet.append(check.message)
    return unmet, unchecked
