"""Correction and supplement (更正、补充): every SQL location of the named item (or ``table.column``) is
updated for the subject and read back; mobile and ID numbers are validated first; a supplement only fills
what is empty; systems Yinsi cannot reach become manual steps; caches are left to expire."""

from __future__ import annotations

from typing import Any

from yinsi.audit import AuditAction
from yinsi.domain.datamap import StoreKind
from yinsi.domain.rights import REQUEST_ZH, RequestType, State
from yinsi.protect.errors import InvalidIdentifier
from yinsi.rights import snapshot
from yinsi.rights.context import ErasureIncomplete, Job, RequestError, RightsContext
from yinsi.rights.steps import open_manual, wait_manual
from yinsi.rights.transitions import finish


def run_correction(ctx: RightsContext, job: Job) -> State:
    changes: dict[str, Any] = dict(job.details.get("changes", {}))
    dm = ctx.datamap(job.tenant)
    locations = dm.locations(job.kind)
    connectors = ctx.connectors(dm, job.tenant)
    supplement = job.type is RequestType.SUPPLEMENT
    matched = [loc for loc in locations if loc.match]
    if matched:  # rows found by the person's phone are found by the phone before it is corrected
        plan: dict[str, Any] = {"attributes": ctx.attributes(dm, job.kind, job.subject)}
        snapshot.apply(plan, connectors, job.subject)
        plan.update(snapshot.pinned_rows(matched, connectors, job.subject))
        snapshot.apply(plan, connectors, job.subject)
    historical = bool(job.details.get("include_historical"))
    done: list[str] = []
    left: list[str] = []
    manual: list[tuple[str, str, str]] = []
    for key, raw in changes.items():
        targets = [loc for loc in locations if loc.item == key or f"{loc.table}.{loc.column}" == key]
        if not targets:
            raise RequestError(f"数据地图中该主体没有个人信息项或列「{key}」")
        if not historical:  # a record of the past (the number a call came from) stays unless asked for
            left += [loc.id for loc in targets if loc.historical]
            targets = [loc for loc in targets if not loc.historical]
            if not targets:
                raise RequestError(f"「{key}」只出现在历史记录中（数据地图标记为 historical），更正不改变历史；"
                                   "如本人明确要求一并更正历史记录，请在请求中注明（--include-historical）")
        for loc in targets:
            if loc.store_kind is StoreKind.MANUAL:
                if all(k != loc.manual_key for k, _, _ in manual):  # one step per manual step, as in erasure
                    manual.append((loc.manual_key, f"在“{loc.description}”所述系统中{'补充' if supplement else '更正'}"
                                                   f"{loc.item_name}", loc.who or "客服"))
                continue
            if loc.store_kind is not StoreKind.SQL:
                continue  # caches (sessions, codes) are not corrected; they expire
            value = checked_value(loc.item, raw)
            conn = connectors[loc.store]
            conn.correct(loc, job.subject, value, only_null=supplement)
            back = [r.values.get(loc.column) for r in conn.read(loc, job.subject)]
            if not supplement and any(v != value and str(v) != str(value) for v in back):
                raise ErasureIncomplete(f"更正后回读不一致：{loc.id}")
            if supplement and not any(str(v) == str(value) for v in back):
                raise RequestError(f"{loc.item_name}已有内容，不能补充；如需修改请提出更正请求")
            done.append(loc.id)
    with ctx.tx() as s:
        ctx.audit.record_in(s, job.tenant, job.actor, AuditAction.RIGHTS_REQUEST_STEP, subject=job.subject,
                            items=sorted({loc.split("@")[0] for loc in done}),
                            reason=f"{REQUEST_ZH[job.type]}请求 {job.request_id}")
    result = {"corrected_locations": done, "keys": sorted(changes), "historical_left": left,
              "include_historical": historical}
    note = f"已{REQUEST_ZH[job.type]} {len(done)} 处并回读核实"
    if left:
        note += f"；{len(left)} 处历史记录未改动（本人未要求更正历史）"
    if manual and open_manual(ctx, job, [k for k, _, _ in manual]):
        return wait_manual(ctx, job, manual, note + "；另有系统须人工处理", result)
    return finish(ctx, job, result, note)


def checked_value(item: str, value: Any) -> Any:
    """A corrected value in its canonical form; a mobile number or ID number that is not one is refused."""
    from yinsi.protect.blind_index import normalise

    kinds = {"contact.mobile": "mobile_phone", "property.bank_reserved_phone": "mobile_phone",
             "contact.consignee_phone": "mobile_phone", "identity.id_document": "id_card"}
    if item in kinds and isinstance(value, str):
        try:
            return normalise(kinds[item], value)
        except InvalidIdentifier as exc:
            raise RequestError(f"新值无效：{exc}") from None
    return value
