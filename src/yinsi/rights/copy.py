"""Access, copy and portability (查阅、复制、转移): every value the subject has at every location of the data
map, read with one query per SQL table and one read per Redis key, packaged (:mod:`yinsi.rights.export`),
encrypted and kept for handing over; systems Yinsi cannot read become manual steps. Portability keeps only
the items processed on consent or contract (R2, NDSR 25)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yinsi.audit import AuditAction
from yinsi.domain.datamap import DataMap, Location, StoreKind
from yinsi.domain.policy import Declaration
from yinsi.domain.rights import REQUEST_ZH, RequestType, State
from yinsi.domain.taxonomy import LegalBasis
from yinsi.rights import snapshot
from yinsi.rights.context import Job, RequestError, RightsContext
from yinsi.rights.export import EXPORT_FIELD, build_package, write_private
from yinsi.rights.freetext import copy_entries
from yinsi.rights.parallel import map_parallel
from yinsi.rights.steps import open_manual, wait_manual
from yinsi.rights.transitions import finish

PORTABLE_BASES = frozenset({LegalBasis.CONSENT, LegalBasis.CONTRACT})


def read_all(ctx: RightsContext, job: Job, dm: DataMap, locations: Sequence[Location]) -> list[dict[str, Any]]:
    """Every value the subject has at the locations: one query per SQL table, one read per Redis key."""
    from yinsi.stores.plan import access_order

    connectors = ctx.connectors(dm, job.tenant)
    ordered = [loc for loc in access_order(locations) if loc.store_kind is not StoreKind.MANUAL]
    reads: dict[tuple[str, str], Location] = {}  # one read per SQL table (whole rows), one per Redis key
    for loc in ordered:  # a table with several reaches: one read per reach
        reads.setdefault(_read_key(loc), loc)

    def read(loc: Location) -> list[Any]:
        return list(connectors[loc.store].read(loc, job.subject, whole=loc.store_kind is StoreKind.SQL))

    got = dict(zip(reads, map_parallel(ctx, read, list(reads.values()), connectors), strict=True))
    found: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for loc in ordered:
        if loc.store_kind is StoreKind.SQL:
            rows = [(r.key, r.values.get(loc.column)) for r in got[_read_key(loc)]]
        else:
            rows = [(r.key, r.values.get("value")) for r in got[(loc.store, loc.id)]]
        for source, value in rows:
            if value is None or value == "":
                continue
            if (loc.item, source, loc.column, repr(value)) in seen:  # a row two reaches find is listed once
                continue
            seen.add((loc.item, source, loc.column, repr(value)))
            entry = {"item": loc.item, "name": loc.item_name, "sensitive": loc.sensitive,
                     "location": loc.id.rsplit("@", 1)[0], "source": source, "value": value}
            if loc.shared_via:
                entry["shared"] = f"与他人共享（经 {loc.shared_via} 关联）"
            found.append(entry)
    return found


def _read_key(loc: Location) -> tuple[str, str]:
    if loc.store_kind is StoreKind.SQL:
        return loc.store, f"{loc.table}{loc.reach_suffix}"
    return loc.store, loc.id


def manual_sources(dm: DataMap, locations: Sequence[Location]) -> list[tuple[str, str, str]]:
    """One manual step (key, what, who) per system Yinsi cannot read: a person obtains the copy there."""
    seen: dict[str, tuple[str, str, str]] = {}
    for loc in locations:
        if loc.store_kind is StoreKind.MANUAL:
            step = loc.id.split("/")[1]
            store = dm.store(loc.store)
            name = store.name if store is not None else loc.store
            items = "、".join(sorted({x.item_name for x in locations if x.id.split("/")[:2] == loc.id.split("/")[:2]}))
            how = loc.access or f"调取该用户的{items}，交付本人；不要删除或更改"
            seen.setdefault(step, (loc.manual_key, f"从“{name}”提供副本：{how}", loc.who or "客服"))
    return list(seen.values())


def portable_items(decl: Declaration) -> set[str]:
    """R2: items processed on consent or contract by at least one feature."""
    return {c.item for f in decl.features if f.legal_basis in PORTABLE_BASES for c in f.collections}


def run_copy(ctx: RightsContext, job: Job) -> State:
    """Read everything, write the encrypted package; wait for people where a system needs them."""
    decl = job.decl or ctx.declaration(job.tenant)
    dm = ctx.datamap(job.tenant)
    locations = dm.locations(job.kind)
    found = read_all(ctx, job, dm, locations)
    found += copy_entries(ctx, job, dm)  # passages of free text mentioning the person, column named
    excluded: list[dict[str, Any]] = []
    if job.type is RequestType.PORTABILITY:
        portable = portable_items(decl)
        keep = [f for f in found if f["item"] in portable]
        for item in sorted({f["item"] for f in found} - portable):
            name = next(f["name"] for f in found if f["item"] == item)
            excluded.append({"item": item, "name": name,
                             "reason": "该项个人信息不是基于同意或订立、履行合同所必需而处理，不属于转移范围（R2，NDSR 25）"})
        found = keep
    manual = manual_sources(dm, locations)
    if manual and any(loc.captures for loc in locations):  # what the person obtaining the copy there needs
        snapshot.keep_captures(ctx, job, dm, locations)
    for _key, what, who in manual:
        excluded.append({"item": "", "name": what, "reason": f"Yinsi 无法直接读取，由{who}另行提供"})
    meta = {"tenant": job.tenant, "app": decl.app.name, "controller": decl.controller.legal_name.value,
            "policy": decl.version.label, "request": job.request_id, "type": job.type.value,
            "generated_at": ctx.clock().isoformat(),
            "format": "yinsi.portability/1" if job.type is RequestType.PORTABILITY else "yinsi.copy/1"}
    package = build_package(meta, found, excluded=excluded)
    path = ctx.exports_dir / job.tenant / f"{job.request_id}.zip.enc"
    write_private(path, ctx.cipher(job.tenant).encrypt_bytes(EXPORT_FIELD, package))
    items = sorted({f["item"] for f in found})
    result = {"package": str(path), "values": len(found), "items": items, "excluded": [e["name"] for e in excluded]}
    with ctx.tx() as s:
        ctx.audit.record_in(s, job.tenant, job.actor, AuditAction.EXPORT, subject=job.subject, items=items,
                            reason=f"{REQUEST_ZH[job.type]}请求 {job.request_id}")
    note = f"已生成{REQUEST_ZH[job.type]}包（{len(found)} 项数据，{len(items)} 类个人信息），加密保存待交付"
    if manual and open_manual(ctx, job, [k for k, _, _ in manual]):
        return wait_manual(ctx, job, manual, note + "；另有系统须人工调取", result)
    return finish(ctx, job, result, note)


def export(ctx: RightsContext, tenant: str, request_id: str, output: Path, actor: str = "staff") -> Path:
    """Decrypt the package of an access/copy/portability request to ``output`` (mode 0600), audited."""
    with ctx.sessions() as s:
        row = ctx.get(s, tenant, request_id)
        result = json.loads(row.result) if row.result else {}
    token_path = result.get("package")
    if not token_path or not Path(token_path).exists():
        raise RequestError("该请求没有可交付的个人信息包（先运行 yinsi request run）")
    data = ctx.cipher(tenant).decrypt_bytes(EXPORT_FIELD, Path(token_path).read_bytes())
    write_private(output, data)
    with ctx.tx() as s:
        ctx.audit.record_in(s, tenant, actor, AuditAction.EXPORT, subject=ctx.subject_of(row),
                            reason=f"交付请求 {row.id} 的个人信息包")
    return output
