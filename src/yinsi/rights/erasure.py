"""Erasure (删除与注销): deletion and account cancellation over the data map.

Prerequisites first (cancellation, R9) → the plan snapshot, made once and kept encrypted with the request
(the subject's attributes, so keys such as ``sms:code:{phone}`` are still found after the phone column is
cleared; the recipients to notify) → operations (:mod:`yinsi.rights.plan`) in the store order, layer by
layer, each a step recorded once its store committed; rows under a legal hold go to the vault
(:mod:`yinsi.rights.holds`) → the read-back (:mod:`yinsi.rights.readback`) → manual steps wait for people →
consents end, recipients are told (:mod:`yinsi.rights.notices`) in the transaction that completes it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from yinsi.domain.datamap import DataMap, EraseAction, Location, RowAction, StoreKind, Subject
from yinsi.domain.rights import DeletionGround, Refusal, RefusalGround, RequestType, State
from yinsi.rights import freetext, snapshot
from yinsi.rights.context import Job, RequestError, RightsContext
from yinsi.rights.holds import hold, hold_count
from yinsi.rights.notices import enqueue_notices, recipient_notices, recipients_of
from yinsi.rights.parallel import in_layers
from yinsi.rights.plan import Operation, erasure_operations
from yinsi.rights.prerequisites import prerequisites
from yinsi.rights.readback import read_back
from yinsi.rights.steps import DONE, MANUAL_PENDING, ensure_steps, mark_step, open_manual, wait_manual
from yinsi.rights.transitions import finish, refuse_in_run
from yinsi.rights.withdrawal import end_consents
from yinsi.storage.rights_tables import PLAN_FIELD
from yinsi.stores.base import sql_erase_mode

#: Seconds to sleep after each executed step (tests: makes a run killable mid-way). Never set in production.
STEP_DELAY_ENV = "YINSI_STEP_DELAY"


def run_erasure(ctx: RightsContext, job: Job, step_hook: Callable[[int], None] | None) -> State:
    """Run a deletion or cancellation to its end (or to waiting for people); safe to run again."""
    from yinsi.stores.plan import erasure_order

    dm = ctx.datamap(job.tenant)
    subj = ctx.subject_kind(dm, job.kind)
    cancel = job.type is RequestType.CANCEL_ACCOUNT
    if cancel:
        unmet, unchecked = prerequisites(ctx, job.tenant, job.kind, job.subject, job.decl)
        if unmet:
            return refuse_in_run(ctx, job, "注销前提未满足", Refusal(RefusalGround.PREREQUISITE_UNMET, "；".join(unmet)))
        open_prereqs = open_manual(ctx, job, [f"prerequisite:{k}" for k in range(len(unchecked))])
        if unchecked and open_prereqs:
            return wait_manual(ctx, job, [(f"prerequisite:{k}", f"确认注销前提：{p}", "客服")
                                          for k, p in enumerate(unchecked)], "注销前提须人工确认，确认前不删除任何数据")
    connectors = ctx.connectors(dm, job.tenant)
    locations = erasure_locations(job, dm, connectors)
    # free text: the person's identifiers are redacted in every row of each free-text column (own rows too)
    ft_cols = freetext.applies(dm, subj, None if cancel else job.details.get("items"))
    locations = [loc for loc in locations if loc.erase is not EraseAction.REDACT]
    plan = plan_snapshot(ctx, job, dm, locations, connectors)
    snapshot.apply(plan, connectors, job.subject)
    ops = erasure_operations(erasure_order(locations, connectors), subj, cancel=cancel)
    decl = job.decl or ctx.declaration(job.tenant)
    notices, manual_notices = recipient_notices(dm, decl, plan["recipients"])
    status_of = ensure_steps(ctx, job, [(op.key, op.action) for op in ops]
                             + [(col.step_key, "redact") for col in ft_cols]
                             + [(f"notify:{rid}", "manual") for rid, _ in manual_notices])
    delay = float(os.environ.get(STEP_DELAY_ENV, "0") or 0)
    index = {op.key: n for n, op in enumerate(ops)}

    def step(op: Operation) -> tuple[str, str, dict[str, Any]]:
        if op.action == "manual":
            needs = [f"{t}.{c}" for _, t, c in op.first.captures]  # names only: the values stay in the plan
            hint = f"（所需的 {'、'.join(needs)} 已在删除前采集，个人信息保护负责人可查看：yinsi request identifiers）" \
                if needs else ""
            return op.key, MANUAL_PENDING, {"what": f"{op.first.description}{hint}", "who": op.first.who,
                                            "items": [loc.item_name for loc in op.locations],
                                            **({"captured": needs} if needs else {})}
        detail = execute(ctx, job, op, connectors[op.store], subj)
        if step_hook is not None:
            step_hook(index[op.key])
        if delay:
            time.sleep(delay)
        return op.key, DONE, detail

    todo = [op for op in ops if status_of.get(op.key) not in (DONE, MANUAL_PENDING)]
    in_layers(ctx, job, todo, connectors, step)
    freetext.erase_steps(ctx, job, dm, subj, plan, connectors, ft_cols, status_of)
    for rid, who in manual_notices:
        if status_of.get(f"notify:{rid}") != DONE:
            mark_step(ctx, job, f"notify:{rid}", MANUAL_PENDING,
                      {"what": f"通知接收方 {rid} 删除该用户的个人信息（R13）", "who": who})
    verified = read_back(ctx, job, ops, connectors)  # before waiting for people: a failure shows at once
    verified += freetext.read_back(ctx, job, dm, subj, plan, connectors, ft_cols)
    manual_keys = [op.key for op in ops if op.action == "manual"] + [f"notify:{rid}" for rid, _ in manual_notices]
    if any(status_of.get(k) != DONE for k in manual_keys):
        return wait_manual(ctx, job, [], f"{verified} 个位置已删除并回读核实；有无法自动处理的系统，"
                                         "等待人工确认（期限照常计算）")
    ended = end_consents(ctx, job, consent_scopes(ctx, job, decl, locations))
    held = hold_count(ctx, job)
    covered, statement = snapshot.completion(job.kind, locations, plan)
    result = {"locations": len(locations), "operations": len(ops), "verified_locations": verified, **covered,
              "legal_hold_rows": held, "consents_ended": ended,
              # R11: an e-mail counts as notified only once delivered (queries.show reads the outbox)
              "recipients_notified": [], "recipients_queued": [rid for rid, _ in notices],
              "recipients_notified_manually": [rid for rid, _ in manual_notices], "ground": job.details.get("ground")}
    what = "注销账号" if cancel else "删除"

    def enqueue(s: Session) -> None:
        result["notices"] = enqueue_notices(ctx, s, job, decl, notices)

    told = f"已排队通知 {len(notices)} 个接收方删除（送达后显示为已通知）" if notices else "无须邮件通知接收方"
    if manual_notices:
        told += f"；{len(manual_notices)} 个接收方已由人工通知"
    return finish(ctx, job, result, f"{what}完成：{verified} 个位置已删除或匿名化并回读核实；{held} 条依法保存的记录已隔离；"
                                    + told + statement, enqueue)


def consent_scopes(ctx: RightsContext, job: Job, decl: Any, locations: Sequence[Location]) -> list[str] | None:
    """The consents an erasure ends (C6): all (None) for a cancellation, or a deletion whose stated ground
    is the withdrawal of consent over everything; only the consents of what it deletes when the person
    chose items or stated no ground (an item's separate consents, and a function's or a recipient's whose
    declared items are all deleted); none for another stated ground."""
    ground = job.details.get("ground")
    if job.type is RequestType.CANCEL_ACCOUNT:
        return None
    if ground != DeletionGround.CONSENT_WITHDRAWN:
        return []
    if not job.details.get("items") and not job.details.get("ground_default"):
        return None
    deleted = {loc.item for loc in locations}
    scopes = [s for s in ctx.consents.state(job.tenant, job.subject).consents if s.startswith("item:")
              and s.rsplit(":", 1)[-1] in deleted]
    scopes += [f"feature:{f.id}" for f in decl.features if f.item_ids() and set(f.item_ids()) <= deleted]
    scopes += [f"{kind}:{r.id}" for r in decl.recipients if r.items and set(r.items) <= deleted
               for kind in ("recipient", "cross_border")]
    return scopes


def erasure_locations(job: Job, dm: DataMap, connectors: Mapping[str, Any] | None = None) -> list[Location]:
    """The subject's locations the erasure covers: all, or those of the items the person chose.

    Chosen items erase those items, not the rows around them: where a row also holds items the person did
    not choose, a column of a table whose rows are deleted is set to NULL instead, and one under a legal
    hold is captured into the vault and then set to NULL (the row stays, as do rows that reference it,
    such as the invoices of an order). Only a column the database keeps NOT NULL takes its whole row, and
    then the rows of the subject's tables that reference it go too (children first), so no foreign key
    is left pointing at a deleted row."""
    # free text (redact) is the free-text module's: never a per-row action here
    every = [loc for loc in dm.locations(job.kind) if loc.erase is not EraseAction.REDACT]
    items = set(job.details.get("items") or [])
    if not items:
        return every
    chosen = [loc for loc in every if loc.item in items]
    if not chosen:
        raise RequestError(f"数据地图中该主体没有这些个人信息项：{'、'.join(sorted(items))}")
    by_table: dict[tuple[str, str], list[Location]] = {}
    for loc in every:
        if loc.store_kind is StoreKind.SQL:
            by_table.setdefault((loc.store, str(loc.table)), []).append(loc)
    out: list[Location] = []
    whole: set[tuple[str, str]] = set()
    for loc in chosen:
        if loc.store_kind is not StoreKind.SQL or sql_erase_mode(loc) != "delete":
            out.append(loc)
            continue
        where = (loc.store, str(loc.table))
        if all(other.item in items for other in by_table[where]) or not _nullable(connectors, loc):
            out.append(loc)
            whole.add(where)
            continue
        held = loc.erase is EraseAction.KEEP_LEGAL_HOLD or loc.row_erase is RowAction.KEEP_LEGAL_HOLD
        out.append(replace(loc, row_erase=RowAction.KEEP_ROW,
                           erase=EraseAction.KEEP_LEGAL_HOLD if held else EraseAction.NULL))
    have = {loc.id for loc in out}
    for store, table in sorted(whole):  # rows that reference deleted rows go with them
        deps = connectors[store].dependencies() if connectors and hasattr(connectors[store], "dependencies") else {}
        todo, seen = [table], {table}
        while todo:
            parent = todo.pop()
            for child, parents in deps.items():
                if parent in parents and child not in seen:
                    seen.add(child)
                    todo.append(child)
                    for loc in by_table.get((store, child), []):
                        if loc.id not in have and sql_erase_mode(loc) == "delete":
                            out.append(loc)
                            have.add(loc.id)
    return out


def _nullable(connectors: Mapping[str, Any] | None, loc: Location) -> bool:
    """Whether the database lets ``loc``'s column be NULL (unknown: no)."""
    if connectors is None or not hasattr(connectors.get(loc.store), "table"):
        return False
    try:
        return bool(connectors[loc.store].table(str(loc.table)).c[str(loc.column)].nullable)
    except KeyError:
        return False


def plan_snapshot(ctx: RightsContext, job: Job, dm: DataMap, locations: Sequence[Location],
                  connectors: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The plan snapshot, made once before anything is erased and kept encrypted with the request: the
    subject's attributes (a Redis key such as ``sms:code:{phone}`` must still be found after the SQL
    side cleared the phone, rows of a ``match`` reach too), the recipients to notify (R13), and
    (:mod:`yinsi.rights.snapshot`) the pinned and shared rows, manual-step captures and other subject
    kinds the person may be known under."""
    with ctx.sessions() as s:
        token = ctx.get(s, job.tenant, job.request_id).plan_encrypted
    plan = ctx.decrypt(job.tenant, PLAN_FIELD, token)
    if plan is not None:
        return dict(plan)
    # Redis keys need them, and so do the people doing manual steps after the app's rows are gone
    needs_attributes = (any(loc.attributes or loc.store_kind is StoreKind.MANUAL for loc in locations)
                        or freetext.needs_identifiers(dm, dm.subject(job.kind)))
    others = snapshot.looks_for_others(dm, job)
    needs_attributes = needs_attributes or others or any(loc.match for loc in locations)
    attributes = ctx.attributes(dm, job.kind, job.subject) if needs_attributes else {}
    chosen = None if job.type is RequestType.CANCEL_ACCOUNT else job.details.get("items") or None
    recipients = recipients_of(ctx, job.tenant, job.subject, chosen)
    plan = {"attributes": attributes, "recipients": recipients, "made_at": ctx.clock().isoformat()}
    if connectors is not None:
        plan.update(snapshot.extras(dm, job.kind, job.subject, plan, locations, connectors))
    if others:
        plan["other_kinds"] = snapshot.other_kinds(dm, job.kind, attributes, locations, ctx.store_urls)
    with ctx.tx() as s:
        row = ctx.get(s, job.tenant, job.request_id)
        if row.plan_encrypted is None:
            row.plan_encrypted = ctx.encrypt(job.tenant, PLAN_FIELD, plan)
        else:  # a concurrent run made it first: use theirs
            plan = dict(ctx.decrypt(job.tenant, PLAN_FIELD, row.plan_encrypted))
    return plan


def execute(ctx: RightsContext, job: Job, op: Operation, conn: Any, subj: Subject) -> dict[str, Any]:
    """Perform one operation on its store; returns the step's detail (counts, no PI)."""
    loc = op.first
    if op.action == "mark":
        n = conn.mark(loc, job.subject, dict(subj.cancelled_marker or {}))
        return {"affected": n, "detail": f"已标记 {n} 行为已注销"}
    if op.action == "null":
        res = conn.null_columns(op.locations, job.subject)
        return {"affected": res.affected, "detail": res.detail}
    if op.action == "hold" and hasattr(conn, "erase_captured"):
        # the rows go to the vault (committed) before their deletion commits, in one statement
        res = conn.erase_captured(loc, job.subject, lambda rows: hold(ctx, job, op, rows))
        return {"affected": res.affected, "detail": res.detail, "captured": res.affected}
    captured = 0
    if op.holds:
        dated = loc.legal_hold is not None and loc.legal_hold.date_column is not None
        rows = conn.read(loc, job.subject, whole=op.action == "hold" or dated)
        captured = hold(ctx, job, op, rows)
    result = conn.erase(loc, job.subject)
    out: dict[str, Any] = {"affected": result.affected, "detail": result.detail}
    if op.holds:
        out["captured"] = captured
    return out
