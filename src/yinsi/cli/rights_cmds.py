"""``yinsi request``: rights requests from intake to close (docs/rights.md).

Every command a person at the desk runs (intake on a person's behalf, viewing and listing requests, the
overdue list, in-person verification, a confirmation or withdrawal taken on a person's behalf, manual
steps, refusal, delivery of a package, identifiers for a manual step, lifting a restriction, the legal-hold
vault) runs as the logged-in member of staff (:func:`yinsi.cli.identity.current_staff`) through the
role-checked use cases of :mod:`yinsi.staff.actions`. ``run``, ``work``, ``deliver`` and ``release-holds``
are the system worker's operator commands: they act as ``system`` with the database credentials as their
authority, and need no staff login. Sending and checking a person's code (``verify --send/--code``) is the
person's own step."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table

from yinsi.cli.apps import app, console, err_console, exit_on
from yinsi.cli.errors import date_argument, redact
from yinsi.domain.rights import REQUEST_ZH, STATE_ZH, InvalidTransition, RefusalGround, RequestType, State
from yinsi.rights.service import ErasureIncomplete, RequestError, RequestView, RightsService
from yinsi.storage.errors import StorageError

request_app = typer.Typer(help="个人信息权利请求：受理、核验身份、确认、执行、查看、逾期提醒。", no_args_is_help=True)
app.add_typer(request_app, name="request")

BEIJING = ZoneInfo("Asia/Shanghai")
URL = typer.Option(None, "--url", help="Yinsi 数据库（默认 YINSI_DATABASE_URL 或 ./.yinsi/yinsi.db）")
DATAMAP = typer.Option(None, "--datamap", help="租户的数据地图 YAML（默认环境变量 YINSI_DATAMAP）")
STORES = typer.Option([], "--store", help="数据地图中存储的地址 STORE=URL，可重复（默认环境变量 YINSI_STORES，逗号分隔；"
                                          "再默认数据地图 connection.env 所指的环境变量）")
JSON = typer.Option(False, "--json", help="以 JSON 输出")
OK_STATES = (State.COMPLETED, State.WAITING_MANUAL, State.REFUSED)


def _store_urls(values: list[str]) -> dict[str, str]:
    items = values or [v for v in os.environ.get("YINSI_STORES", "").split(",") if v.strip()]
    out = {}
    for v in items:
        if "=" not in v:
            raise typer.BadParameter(f"应为 STORE=URL：{v}")
        k, _, url = v.partition("=")
        out[k.strip()] = url.strip()
    return out


@contextmanager
def _staff_step(url: str | None, tenant: str, datamap: Path | None = None,
                stores: list[str] | None = None) -> Iterator[tuple[Any, Any, RightsService]]:
    """The logged-in member of staff of ``tenant`` (or exit 1), a staff service for the role checks and the
    rights service; a refusal by the role rules exits 1 with its reason and rule."""
    from yinsi.cli.identity import current_staff
    from yinsi.staff.errors import StaffError
    from yinsi.staff.service import StaffService

    me = current_staff(url, tenant)
    with _service(url, datamap, stores) as svc, exit_on((StaffError, "未获授权", 1)):
        staff = StaffService(svc.sessions, svc.audit.log, None, clock=svc.clock)
        yield me, staff, svc


@contextmanager
def _service(url: str | None, datamap: Path | None = None, stores: list[str] | None = None) -> Iterator[RightsService]:
    datamaps = {}
    path = datamap or (Path(os.environ["YINSI_DATAMAP"]) if os.environ.get("YINSI_DATAMAP") else None)
    if path is not None:
        from yinsi.datamap_io import load_datamap

        try:
            dm = load_datamap(path).datamap
        except Exception as exc:
            err_console.print(f"[red]数据地图无效[/red]：{escape(redact(str(exc)))}")
            raise typer.Exit(2) from None
        datamaps[dm.tenant] = dm
    with exit_on((StorageError, "数据库错误", 2)):
        svc = RightsService(url, datamaps=datamaps, store_urls=_store_urls(stores or []))
    try:
        with exit_on(((RequestError, InvalidTransition), "未能完成", 1),
                     (ErasureIncomplete, "删除未完成（请求已标记为出错，可重试）", 1)):
            yield svc
    finally:
        svc.close()


def _print_view(v: RequestView) -> None:
    console.print(f"[bold]{REQUEST_ZH[v.type]}请求 {v.id}[/bold]（{escape(v.tenant)} / {escape(v.subject_kind)} "
                  f"{escape(v.subject)}）", highlight=False)
    local = v.received_at.astimezone(BEIJING)
    console.print(f"  状态：{STATE_ZH[v.state]}；受理：{local:%Y-%m-%d %H:%M}（北京时间）；截止：{v.due_date}"
                  + ("（暂定，须人工复核）" if v.deadline_provisional else ""), highlight=False)
    console.print(f"  期限依据：{escape(v.deadline)}", highlight=False)
    if v.refusal:
        console.print(f"  [red]拒绝理由[/red]：{escape(v.refusal)}")
    if v.result:
        console.print(f"  结果：{escape(json.dumps(v.result, ensure_ascii=False))}", highlight=False)
    if v.steps:
        done = sum(1 for s in v.steps if s["status"] == "done")
        console.print(f"  执行步骤：{done}/{len(v.steps)} 已完成")
        for s in v.steps:
            if s["status"] != "done":
                what = (s.get("detail") or {}).get("what") or s["action_zh"]
                who = (s.get("detail") or {}).get("who")
                console.print(f"    {'等待人工' if s['status'] == 'manual_pending' else s['status']}：{escape(s['key'])}"
                              f" — {escape(str(what))}" + (f"（{escape(str(who))}）" if who else ""), highlight=False)
    for h in v.history:
        at = datetime.fromisoformat(h["at"]).astimezone(BEIJING)
        console.print(f"  {at:%Y-%m-%d %H:%M} {STATE_ZH[State(h['to'])]}：{escape(h['note'])}（{escape(h['actor'])}）",
                      highlight=False)


def _received(text: str | None) -> datetime | None:
    """``2026-02-13`` (noon, Beijing time) or an ISO date-time (Beijing time unless it names a zone)."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(12, 0), BEIJING)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("受理时间应为实际存在的日期 YYYY-MM-DD 或时刻 YYYY-MM-DDTHH:MM") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=BEIJING)


@request_app.command("submit")
def request_submit(
    tenant: str, subject: str, type_: RequestType = typer.Argument(..., metavar="TYPE", help="请求类型"),
    kind: str | None = typer.Option(None, "--kind", help="主体类型（数据地图 subjects 的 id，默认第一个）"),
    channel: str = typer.Option("app", "--channel", help="受理渠道：app、email、phone、letter …"),
    requester: str | None = typer.Option(None, "--requester", help="代为提出请求的人（近亲属、监护人），默认本人"),
    change: list[str] = typer.Option([], "--change", help="更正/补充：个人信息项或 表.列=新值，可重复"),
    ground: str | None = typer.Option(None, "--ground", help="删除理由（PIPL 47）：purpose_done、service_stopped、"
                                                         "consent_withdrawn（默认）、unlawful、other_law"),
    item: list[str] = typer.Option([], "--item", help="删除：只删除这些个人信息项，可重复（默认全部）"),
    include_historical: bool = typer.Option(False, "--include-historical",
                                            help="更正：本人明确要求一并更正历史记录列（数据地图 historical: true）"),
    scope: list[str] = typer.Option([], "--scope", help="撤回同意：要撤回的同意范围，可重复（默认全部）；"
                                    "限制处理：同时撤回的同意范围"),
    feature: list[str] = typer.Option([], "--feature", help="限制处理：限制这些功能的处理，可重复（默认全部处理）"),
    action: str | None = typer.Option(None, "--action", help="近亲属请求：access、copy、correction、deletion"),
    relation: str | None = typer.Option(None, "--relation", help="近亲属请求：与死者的关系"),
    about: str | None = typer.Option(None, "--about", help="解释说明：rules（处理规则）或 automated_decision"),
    text: str | None = typer.Option(None, "--text", help="投诉或问题的内容"),
    received: str | None = typer.Option(None, "--received", help="收到请求的日期或时刻（北京时间，默认现在）"),
    datamap: Path | None = DATAMAP, url: str | None = URL, as_json: bool = JSON,
) -> None:
    """代个人受理一项权利请求（须登录的个人信息保护负责人或客服），计算答复期限（政策承诺与法定上限，按中国法定节假日）。"""
    details: dict[str, Any] = {}
    if change:
        bad = [c for c in change if "=" not in c]
        if bad:
            raise typer.BadParameter(f"--change 应为 项=新值（第 {change.index(bad[0]) + 1} 个不是）")
        details["changes"] = dict(c.split("=", 1) for c in change)
    for key, value in (("ground", ground), ("action", action), ("relation", relation), ("about", about),
                       ("text", text)):
        if value is not None:
            details[key] = value
    if item:
        details["items"] = item
    if include_historical:
        details["include_historical"] = True
    if scope:
        details["scopes"] = scope
    if feature:
        details["features"] = feature
    from yinsi.staff import actions

    received_at = _received(received)
    with _staff_step(url, tenant, datamap) as (me, staff, svc):
        rid = actions.submit_request(me, staff, svc, subject, type_, subject_kind=kind, channel=channel,
                                     requester=requester, details=details or None, received_at=received_at)
        v = svc.show(tenant, rid)
    if as_json:
        print(json.dumps(v.to_json(), ensure_ascii=False))
    else:
        console.print(f"[green]已受理[/green]：{REQUEST_ZH[v.type]}请求 {rid}，截止 {v.due_date}", highlight=False)
        console.print(f"  {escape(v.deadline)}", highlight=False)
        console.print("  下一步：yinsi request verify 租户 请求编号 --send sms（向账号绑定的手机号发送验证码）")


@request_app.command("verify")
def request_verify(
    tenant: str, request_id: str,
    send: str | None = typer.Option(None, "--send", help="发送验证码：sms（账号手机号）或 email"),
    claimed: str | None = typer.Option(None, "--claimed", help="本人填写的手机号/邮箱（须与账号记录一致）"),
    code: str | None = typer.Option(None, "--code", help="本人收到的验证码"),
    in_person: bool = typer.Option(False, "--in-person", help="由登录的员工当面或凭书面材料核验（须 --how）"),
    how: str | None = typer.Option(None, "--how", help="核验方式，例如“当面核对身份证件”"),
    datamap: Path | None = DATAMAP, store: list[str] = STORES, url: str | None = URL, as_json: bool = JSON,
) -> None:
    """核验申请人身份：发送验证码（只发往已掌握的联系方式，R8）、校验验证码，或记录员工核验。"""
    if (send is not None) + (code is not None) + in_person != 1:
        raise typer.BadParameter("请在 --send、--code、--in-person 中选择一项")
    if in_person:
        if not how:
            raise typer.BadParameter("员工核验须写明 --how 核验方式")
        with _staff_step(url, tenant, datamap, store) as (me, staff, svc):
            from yinsi.staff import actions

            actions.verify_in_person(me, staff, svc, request_id, how)
        console.print(f"[green]已核验[/green]：{request_id}")
        return
    with _service(url, datamap, store) as svc:
        if send is not None:
            challenge = svc.send_code(tenant, request_id, send, claimed=claimed)
            out = {"sent": True, "channel": challenge.channel, "to": challenge.masked_address,
                   "expires_at": challenge.expires_at.isoformat(), "notice": challenge.notice_zh}
            if as_json:
                print(json.dumps(out, ensure_ascii=False))
            else:
                console.print(challenge.notice_zh, highlight=False)
            return
        if code is not None:
            result = svc.check_code(tenant, request_id, code)
            if as_json:
                print(json.dumps({"ok": result.ok, "status": result.status, "reason": result.reason_zh,
                                  "attempts_left": result.attempts_left}, ensure_ascii=False))
            else:
                console.print(("[green]" if result.ok else "[red]") + escape(result.reason_zh), highlight=False)
            raise typer.Exit(0 if result.ok else 1)


@request_app.command("confirm")
def request_confirm(tenant: str, request_id: str, datamap: Path | None = DATAMAP, store: list[str] = STORES,
                    url: str | None = URL) -> None:
    """代本人记录其注销确认（须登录的个人信息保护负责人）：先检查政策载明的注销前提；确认后不可撤回。"""
    from yinsi.staff import actions

    with _staff_step(url, tenant, datamap, store) as (me, staff, svc):
        unchecked = actions.confirm_cancellation(me, staff, svc, request_id)
    console.print(f"[green]已确认注销[/green]：{request_id}（确认后不可撤回）")
    for p in unchecked:
        console.print(f"  须人工确认的注销前提：{escape(p)}", highlight=False)


@request_app.command("withdraw")
def request_withdraw(tenant: str, request_id: str, url: str | None = URL) -> None:
    """代申请人记录其撤回请求（须登录的个人信息保护负责人；注销一经确认不可撤回）。"""
    from yinsi.staff import actions

    with _staff_step(url, tenant) as (me, staff, svc):
        actions.withdraw_request(me, staff, svc, request_id)
    console.print(f"已撤回：{request_id}")


@request_app.command("run")
def request_run(tenant: str, request_id: str, datamap: Path | None = DATAMAP, store: list[str] = STORES,
                url: str | None = URL, as_json: bool = JSON) -> None:
    """执行请求：按数据地图在应用的真实数据库中查阅/复制/更正/删除，回读核实；中断后重跑即可续做。

    运维命令：以 system 身份执行，凭数据库凭据授权，无需工作人员登录。注销完成后结束本人的全部会话。"""
    from yinsi.services.cancellation import end_sessions_if_cancelled

    with _service(url, datamap, store) as svc:
        state = svc.run(tenant, request_id, actor="system")
        end_sessions_if_cancelled(svc, tenant, request_id, state)
        svc.deliver(tenant)
        v = svc.show(tenant, request_id)
    if as_json:
        print(json.dumps(v.to_json(), ensure_ascii=False))
    else:
        console.print(f"状态：{STATE_ZH[state]}")
        _print_view(v)
    raise typer.Exit(0 if state in OK_STATES else 1)


@request_app.command("work")
def request_work(tenant: str, limit: int = typer.Option(1000, "--limit", min=1, help="最多处理多少项"),
                 datamap: Path | None = DATAMAP, store: list[str] = STORES, url: str | None = URL,
                 as_json: bool = JSON) -> None:
    """处理队列：执行租户所有可执行的请求（已核验、已确认、出错待重试），显示进度。

    运维命令（系统工作进程）：以 system 身份执行，凭数据库凭据授权，无需工作人员登录。注销完成后结束本人的全部会话。"""
    from rich.progress import Progress

    from yinsi.rights.run import runnable
    from yinsi.services.cancellation import end_sessions_if_cancelled

    with _service(url, datamap, store) as svc:
        todo = runnable(svc, tenant, limit)  # the set the worker's rights.queue job takes too
        outcome: dict[str, int] = {}
        errors: list[str] = []
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("处理请求", total=len(todo))
            for request_id in todo:
                try:
                    state = svc.run(tenant, request_id, actor="system")
                    end_sessions_if_cancelled(svc, tenant, request_id, state)
                    st = state.value
                except (RequestError, ErasureIncomplete) as exc:
                    st = "error"
                    errors.append(f"{request_id[:8]}：{exc}")
                outcome[st] = outcome.get(st, 0) + 1
                progress.advance(task)
        svc.deliver(tenant)
    if as_json:
        print(json.dumps({"processed": len(todo), "outcome": outcome, "errors": errors}, ensure_ascii=False))
        return
    console.print(f"处理 {len(todo)} 项：" + "，".join(f"{STATE_ZH[State(k)]} {n}" for k, n in outcome.items()))
    for e in errors:
        err_console.print(f"[red]出错[/red] {escape(e)}")


@request_app.command("show")
def request_show(tenant: str, request_id: str, url: str | None = URL, as_json: bool = JSON) -> None:
    """查看请求的状态、期限、步骤与历史（请求编号可用前 8 位）；须登录的个人信息保护负责人或客服。"""
    from yinsi.staff import actions

    with _staff_step(url, tenant) as (me, staff, svc):
        v = actions.show_request(me, staff, svc, request_id)
    if as_json:
        print(json.dumps(v.to_json(), ensure_ascii=False))
    else:
        _print_view(v)


@request_app.command("list")
def request_list(tenant: str, open_only: bool = typer.Option(False, "--open", help="只列未结请求"),
                 subject: str | None = typer.Option(None, "--subject", help="只列此主体的请求"),
                 limit: int = typer.Option(1000, "--limit", min=1, help="最多列出多少项（最早的在前）"),
                 url: str | None = URL, as_json: bool = JSON) -> None:
    """列出租户的请求（含主体标识）；须登录的个人信息保护负责人或客服。"""
    from yinsi.staff import actions

    with _staff_step(url, tenant) as (me, staff, svc):
        views = actions.rights_requests(me, staff, svc, open_only=open_only, subject=subject, limit=limit)
    if as_json:
        print(json.dumps([v.to_json() for v in views], ensure_ascii=False))
        return
    t = Table(title=f"{tenant} 的权利请求")
    for col in ("编号", "个人", "类型", "状态", "受理", "截止"):
        t.add_column(col)
    for v in views:
        t.add_row(v.id[:8], escape(v.subject), REQUEST_ZH[v.type], STATE_ZH[v.state],
                  f"{v.received_at.astimezone(BEIJING):%Y-%m-%d}", str(v.due_date))
    console.print(t)


@request_app.command("overdue")
def request_overdue(tenant: str, today: str | None = typer.Option(None, "--today", help="YYYY-MM-DD（默认今天）"),
                    soon: int = typer.Option(3, "--soon", min=0, help="剩余多少个工作日以内算即将到期"),
                    url: str | None = URL, as_json: bool = JSON) -> None:
    """逾期与即将到期的未结请求；须登录的个人信息保护负责人或客服。"""
    from yinsi.staff import actions

    day = date_argument(today, "--today")
    with _staff_step(url, tenant) as (me, staff, svc):
        rows = actions.overdue_requests(me, staff, svc, day, soon_days=soon)
    if as_json:
        print(json.dumps([{**v.to_json(), "status": st} for v, st in rows], ensure_ascii=False))
        return
    for v, st in rows:
        label = "[red]已逾期[/red]" if st == "overdue" else "[yellow]即将到期[/yellow]"
        console.print(f"{label} {v.id[:8]} {REQUEST_ZH[v.type]} 截止 {v.due_date}（{STATE_ZH[v.state]}）", highlight=False)
    if not rows:
        console.print("没有逾期或即将到期的请求。")


@request_app.command("refuse")
def request_refuse(tenant: str, request_id: str, ground: RefusalGround = typer.Option(..., "--ground"),
                   detail: str = typer.Option(..., "--detail", help="向个人说明的具体理由"),
                   url: str | None = URL) -> None:
    """拒绝请求：必须给出依据与理由（R7，PIPL 50）；须由登录的个人信息保护负责人执行。"""
    from yinsi.staff import actions

    with _staff_step(url, tenant) as (me, staff, svc):
        actions.refuse_request(me, staff, svc, request_id, ground, detail)
        v = svc.show(tenant, request_id)
    console.print(f"已拒绝：{request_id}；{escape(v.refusal or '')}", highlight=False)


@request_app.command("complete")
def request_complete(tenant: str, request_id: str, note: str = typer.Option(..., "--note", help="处理结果，例如工单回执编号"),
                     step: str | None = typer.Option(None, "--step", help="只确认此步骤（步骤标识的开头）"),
                     datamap: Path | None = DATAMAP, store: list[str] = STORES, url: str | None = URL) -> None:
    """确认人工步骤已完成（登录的个人信息保护负责人）；全部完成后请求继续执行（删除则回读核实后结束）。"""
    from yinsi.staff import actions

    with _staff_step(url, tenant, datamap, store) as (me, staff, svc):
        state = actions.complete_manual_step(me, staff, svc, request_id, note, step=step)
        svc.deliver(tenant)
    console.print(f"已确认人工步骤：{request_id}；状态：{STATE_ZH[state]}")


@request_app.command("lift-restriction")
def request_lift_restriction(tenant: str, request_id: str,
                             note: str = typer.Option(..., "--note", help="解除的原因，例如本人申请解除的工单编号"),
                             url: str | None = URL) -> None:
    """解除一项已完成的限制处理请求所设的限制（登录的个人信息保护负责人；记入同意台账与审计日志）。"""
    from yinsi.staff import actions

    with _staff_step(url, tenant) as (me, staff, svc):
        lifted = actions.lift_restriction(me, staff, svc, request_id, note)
    console.print(f"已解除限制：{'、'.join(lifted) or '（限制此前已不在生效）'}；处理闸门恢复按同意与法律依据判断")


@request_app.command("identifiers")
def request_identifiers(tenant: str, request_id: str,
                        reason: str = typer.Option(..., "--reason", help="事由，例如在外部系统中删除实名认证记录"),
                        datamap: Path | None = DATAMAP, store: list[str] = STORES, url: str | None = URL,
                        as_json: bool = JSON) -> None:
    """显示人工步骤所需的主体身份信息（账号编号、手机号等，取自请求的加密执行计划），记入审计日志；
    须由登录的个人信息保护负责人执行。"""
    from yinsi.staff import actions

    with _staff_step(url, tenant, datamap, store) as (me, staff, svc):
        values = actions.request_identifiers(me, staff, svc, request_id, reason)
    if as_json:
        print(json.dumps(values, ensure_ascii=False))
        return
    console.print(f"请求 {request_id} 的主体身份信息（仅用于完成人工步骤，请勿留存；已记入审计日志）：")
    for where, value in values.items():
        console.print(f"  {escape(where)}：{escape(value)}", highlight=False)


@request_app.command("export")
def request_export(tenant: str, request_id: str, output: Path = typer.Option(..., "--output", "-o"),
                   url: str | None = URL) -> None:
    """解密查阅/复制/转移请求的个人信息包（zip：JSON、CSV、中文网页），交付本人；须由登录的个人信息保护负责人执行。"""
    from yinsi.staff import actions

    with _staff_step(url, tenant) as (me, staff, svc):
        path = actions.export_package(me, staff, svc, request_id, output)
    console.print(f"已导出：{path}（仅限交付本人，请勿留存）")


@request_app.command("holds")
def request_holds(tenant: str, request_id: str | None = typer.Option(None, "--request"), url: str | None = URL,
                  as_json: bool = JSON) -> None:
    """法定保存库中隔离保存的记录（只显示元数据，内容加密）；须由登录的个人信息保护负责人查看。"""
    from yinsi.staff import actions

    with _staff_step(url, tenant) as (me, staff, svc):
        rows = actions.legal_holds(me, staff, svc, request_id)
    if as_json:
        print(json.dumps([{"id": h.id, "request": h.request_id, "location": h.location, "source": h.source_key,
                           "basis": h.basis, "hold_until": h.hold_until.isoformat()} for h in rows], ensure_ascii=False))
        return
    by: dict[tuple[str, str, date], int] = {}
    for h in rows:
        by[(h.location, h.basis, h.hold_until)] = by.get((h.location, h.basis, h.hold_until), 0) + 1
    for (loc, basis, until), n in by.items():
        console.print(f"{escape(loc)}：{n} 行，保存至 {until}；依据：{escape(basis)}", highlight=False)
    if not rows:
        console.print("法定保存库中没有记录。")


@request_app.command("release-holds")
def request_release_holds(tenant: str, today: str | None = typer.Option(None, "--today", help="YYYY-MM-DD"),
                          url: str | None = URL) -> None:
    """删除保存期已满的法定保存记录（保存期限清理，T1）。运维命令：以 system 身份执行，无需工作人员登录。"""
    with _service(url) as svc:
        n = svc.release_holds(tenant, date_argument(today, "--today"))
    console.print(f"已删除保存期满的记录 {n} 条")


@request_app.command("deliver")
def request_deliver(tenant: str | None = typer.Argument(None), url: str | None = URL, as_json: bool = JSON) -> None:
    """发送待发的通知（验证码、接收方删除通知）。运维命令：以 system 身份执行，无需工作人员登录。"""
    with _service(url) as svc:
        report = svc.deliver(tenant)
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        console.print(f"已发送 {report.sent}，待重试 {report.retrying}，放弃 {report.dead}，过期 {report.expired}")
