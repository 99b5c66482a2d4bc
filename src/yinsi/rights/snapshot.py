"""What a request's plan records before anything is erased (计划快照), beyond the subject's attributes:

- **pinned rows**: the rows each reach finds at plan time, where the erasure itself could hide them from a
  later look (a ``match`` reach whose matched phone is cleared, a self-reference whose ``family_of_id`` is
  set to NULL, a table with several reaches, a shared table): the erasure and the read-back look at them as
  well as at what the reach finds then, so the read-back is as strict as for a key;
- **shared rows** (``shared_via``): which rows reaching the person another subject still links to (kept,
  and named in the result) and which only the person did (erased with the table's action);
- **captures** for manual steps (``capture``): values such as a call recording's file path, read from the
  rows reaching the person and shown to the authorised member of staff who performs the step;
- **other subject kinds** under which the person may also be known (the same phone as a visitor): covered
  by the request's reaches, or named in its result as not covered.

Everything here is kept in the request's encrypted plan (row keys, attribute values), never in clear.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from yinsi.domain.datamap import DataMap, Location, StoreKind
from yinsi.stores.base import sql_erase_mode


def needs_pin(loc: Location) -> bool:
    """Whether the rows of ``loc``'s reach are pinned at plan time (see the module docstring)."""
    if loc.store_kind is not StoreKind.SQL:
        return False
    if loc.match or loc.reach_name or loc.shared_via:
        return True
    return bool(loc.key_column and loc.column == loc.key_column and sql_erase_mode(loc) != "delete")


def reach_id(loc: Location) -> str:
    return f"{loc.table}@{loc.subject}{loc.reach_suffix}"


def pinned_rows(locations: Sequence[Location], connectors: Mapping[str, Any], subject: str) -> dict[str, Any]:
    """``{"pinned": {store: {reach_id: [row keys]}}, "shared": [...]}`` for the locations' reaches."""
    pinned: dict[str, dict[str, list[str]]] = {}
    shared: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for loc in locations:
        rid = reach_id(loc)
        if not needs_pin(loc) or (loc.store, rid) in seen:
            continue
        seen.add((loc.store, rid))
        conn = connectors[loc.store]
        if not hasattr(conn, "reaching_keys"):
            continue
        if loc.shared_via:
            sole, kept = conn.shared_split(loc, subject)
            pinned.setdefault(loc.store, {})[rid] = sole
            shared.append({"store": loc.store, "table": loc.table, "via": loc.shared_via, "erased": len(sole),
                           "kept": len(kept)})
        else:
            pinned.setdefault(loc.store, {})[rid] = conn.reaching_keys(loc, subject)
    return {"pinned": pinned, "shared": shared}


def apply(plan: Mapping[str, Any], connectors: Mapping[str, Any], subject: str) -> None:
    """Bind the plan's attributes and pinned rows to the connectors (before executing or reading back)."""
    for store, conn in connectors.items():
        if hasattr(conn, "bind"):
            conn.bind(plan.get("attributes") or {}, subject)
        pins = (plan.get("pinned") or {}).get(store)
        if pins and hasattr(conn, "pin"):
            conn.pin(pins)


def captures(dm: DataMap, kind: str, locations: Sequence[Location], connectors: Mapping[str, Any],
             subject: str) -> dict[str, list[dict[str, Any]]]:
    """Per manual step (``manual:store/step``), the values its ``capture`` names, from the rows reaching
    the subject (every reach of that table)."""
    out: dict[str, list[dict[str, Any]]] = {}
    steps = {loc.manual_key: loc for loc in locations if loc.captures}
    every = [loc for loc in dm.locations(kind) if loc.store_kind is StoreKind.SQL] if steps else []
    for step in steps.values():
        got: list[dict[str, Any]] = []
        for store, table, column in step.captures:
            values: list[Any] = []
            readers = [x for x in every if x.store == store and x.table == table]
            column_locs = [x for x in readers if x.column == column]
            conn = connectors.get(store)
            for loc in {reach_id(x): x for x in (column_locs or readers)}.values():
                if conn is None:
                    break
                for row in conn.read(loc, subject, whole=True):
                    value = row.values.get(column)
                    if value is not None and value != "" and value not in values:
                        values.append(value)
            got.append({"store": store, "table": table, "column": column, "values": values})
        out[step.manual_key] = got
    return out


def other_kinds(dm: DataMap, kind: str, attributes: Mapping[str, str], locations: Sequence[Location],
                urls: Mapping[str, str]) -> list[dict[str, Any]]:
    """Other subject kinds holding one of the person's identifiers (same PI item, same value): each with
    whether the request's locations cover that kind's table (e.g. through a ``match`` reach)."""
    from yinsi.stores.base import find_subjects

    subj = dm.subject(kind)
    if subj is None:
        return []
    mine = subj.identifiers or list(subj.attributes)
    out: list[dict[str, Any]] = []
    for other in dm.subjects:
        if other.id == kind or not other.identifiers:
            continue
        hits: list[str] = []
        for name in mine:
            value = attributes.get(name)
            if not value or name not in subj.attributes:
                continue
            item = dm.subject_column_item(kind, subj.attributes[name])
            for theirs in other.identifiers:
                column = other.attributes.get(theirs)
                theirs_item = dm.subject_column_item(other.id, column) if column else None
                same = item == theirs_item if item and theirs_item else name == theirs
                if same and theirs not in hits and find_subjects(dm, other.id, theirs, [str(value)], urls, limit=1):
                    hits.append(theirs)
        if hits:
            covered = any(loc.store == other.store and loc.table == other.table for loc in locations)
            out.append({"kind": other.id, "name": other.name, "by": hits, "covered": covered})
    return out


def looks_for_others(dm: DataMap, job: Any) -> bool:
    """Whether the request looks for the person under other subject kinds: a cancellation, or a deletion of
    everything, in a map where another subject kind declares identifiers."""
    from yinsi.domain.rights import RequestType

    whole = job.type is RequestType.CANCEL_ACCOUNT or not job.details.get("items")
    return whole and any(s.identifiers for s in dm.subjects if s.id != job.kind)


def extras(dm: DataMap, kind: str, subject: str, plan: Mapping[str, Any], locations: Sequence[Location],
           connectors: Mapping[str, Any]) -> dict[str, Any]:
    """Pinned and shared rows and manual-step captures, read with the plan's attributes bound."""
    apply(plan, connectors, subject)
    out = pinned_rows(locations, connectors, subject)
    out["captures"] = captures(dm, kind, locations, connectors, subject)
    return out


def completion(kind: str, locations: Sequence[Location], plan: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """What the result and the completion statement say was checked (stores, tables, subject kinds), which
    shared rows were kept and why, and the other subject kinds the person may also be known under that the
    request did not cover."""
    stores = sorted({loc.store for loc in locations})
    tables = sorted({loc.place for loc in locations if loc.store_kind is StoreKind.SQL})
    others = list(plan.get("other_kinds") or [])
    kinds = [kind] + [o["kind"] for o in others if o["covered"]]
    not_covered = [{"kind": o["kind"], "name": o["name"], "by": o["by"]} for o in others if not o["covered"]]
    kept = [dict(x) for x in plan.get("shared") or [] if x.get("kept")]
    for x in kept:
        x["why"] = f"仍有其他主体通过 {x['via']} 关联这些行（共享数据），只删除了本人的关联记录"
    out = {"checked": {"stores": stores, "tables": tables, "kinds": kinds},
           "shared_kept": kept, "other_kinds_not_covered": not_covered}
    text = f"；已检查存储 {'、'.join(stores)}（{len(tables)} 张表），主体类型 {'、'.join(kinds)}"
    if kept:
        text += "；保留与他人共享的 " + "、".join(f"{x['table']} {x['kept']} 行" for x in kept) + "（他人仍在使用）"
    if not_covered:
        text += "；该用户可能还以其他主体类型存在，本次未覆盖：" + "、".join(
            f"{o['name']}（{o['kind']}，按{'、'.join(o['by'])}匹配）" for o in not_covered)
    return out, text


def keep_captures(ctx: Any, job: Any, dm: DataMap, locations: Sequence[Location]) -> None:
    """Capture the manual steps' values into the request's encrypted plan (access and copy requests, which
    have no erasure plan), unless a plan already holds them."""
    from yinsi.storage.rights_tables import PLAN_FIELD

    with ctx.sessions() as s:
        plan = ctx.decrypt(job.tenant, PLAN_FIELD, ctx.get(s, job.tenant, job.request_id).plan_encrypted) or {}
    if plan.get("captures"):
        return
    connectors = ctx.connectors(dm, job.tenant)
    got = captures(dm, job.kind, locations, connectors, job.subject)
    with ctx.tx() as s:
        row = ctx.get(s, job.tenant, job.request_id)
        current = dict(ctx.decrypt(job.tenant, PLAN_FIELD, row.plan_encrypted) or {})
        current["captures"] = got
        row.plan_encrypted = ctx.encrypt(job.tenant, PLAN_FIELD, current)
