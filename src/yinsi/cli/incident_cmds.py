"""``yinsi incident``: personal-information security incidents (PIPL 57), as the logged-in member of staff.

``open``, ``assess``, ``affected``, ``notify``, ``report``, ``close``, ``show`` and ``list`` need a login
(``yinsi login``) with the security officer's or the privacy officer's role; ``check-overdue`` is an
operator command acting as the system (the scheduler runs it every five minutes).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from yinsi.cli.apps import app, console, err_console
from yinsi.cli.errors import datetime_argument, redact
from yinsi.cli.identity import current_staff

incident_app = typer.Typer(help="个人信息安全事件：登记、评估、确定受影响的人、通知、报告、关闭。", no_args_is_help=True)
app.add_typer(incident_app, name="incident")

URL = typer.Option(None, "--url", help="Yinsi 数据库（默认 YINSI_DATABASE_URL 或 ./.yinsi/yinsi.db）")
NOW = typer.Option(None, "--now", help="以此时刻计算（ISO 时间，带时区；默认当前时间）")
JSON = typer.Option(False, "--json", help="以 JSON 输出")
TENANT = typer.Option(None, "--tenant", help="租户（默认为登录的租户）")

def _time(text: str | None, option: str) -> datetime | None:
    value = datetime_argument(text, option)
    if value is not None and value.tzinfo is None:
        raise typer.BadParameter(f"{option} 须带时区，例如 2026-02-14T03:00:00+08:00")
    return value


def _record(**values: str | None) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


def _fail(message: str, code: int, as_json: bool) -> typer.Exit:
    text = redact(message)
    if as_json:
        print(json.dumps({"ok": False, "error": text}, ensure_ascii=False))
    else:
        err_console.print(f"[red]失败[/red]：{escape(text)}", highlight=False)
    return typer.Exit(code)


def _run(url: str | None, tenant: str | None, as_json: bool, fn: Any) -> Any:
    """Authenticate, open the service, call ``fn(service, principal)``; expected errors become Chinese."""
    from sqlalchemy.exc import SQLAlchemyError

    from yinsi.incidents import IncidentService
    from yinsi.notify.errors import NotifyError
    from yinsi.staff.errors import AccessDenied, StaffError
    from yinsi.storage.errors import StorageError

    me = current_staff(url, tenant, as_json=as_json)
    try:
        with IncidentService(url) as svc:
            return fn(svc, me)
    except AccessDenied as exc:
        raise _fail(str(exc), 3, as_json) from None
    except (StaffError, NotifyError) as exc:
        raise _fail(str(exc), 1, as_json) from None
    except (StorageError, SQLAlchemyError) as exc:
        raise _fail(f"数据库错误：{type(exc).__name__}", 2, as_json) from None


def _emit(view: Any, as_json: bool, verb: str | None = None) -> None:
    d = view.to_dict()
    if as_json:
        print(json.dumps(d, ensure_ascii=False, indent=2))
        return
    if verb:
        console.print(f"[green]{verb}[/green] {escape(d['id'])}", highlight=False)
    lines = [f"事件：{d['title']}（{d['status_zh']}）", f"发现时间：{d['discovered_at']}"]
    if d["severity"]:
        lines.append(f"级别：{d['severity_zh']}{'（关键信息基础设施）' if d['critical_infrastructure'] else ''}；"
                     f"{d['report_clock']}")
    if d["report_due_at"]:
        state = f"已于 {d['reported_at']} 报告" if d["reported_at"] else ("[red]已逾期[/red]" if d["overdue"] else "未报告")
        lines.append(f"报告期限：{d['report_due_at']}（{state}）")
    if d["affected"] is not None:
        lines.append(f"受影响人数：{d['affected']}（个人信息项：{'、'.join(d['items'])}）")
    if d["missing"]:
        lines.append(f"记录尚缺：{'、'.join(d['missing'])}")
    if d["notices"]:
        lines.append("通知：" + "，".join(f"{k} {v}" for k, v in sorted(d["notices"].items())))
    if d["announcement_reason"]:
        lines.append(f"公告理由：{d['announcement_reason']}")
    for line in lines:
        console.print(escape(line) if "[red]" not in line else line, highlight=False)


@incident_app.command("open")
def open_cmd(title: str = typer.Argument(..., help="事件标题（勿写入个人信息）"),
             discovered: str | None = typer.Option(None, "--discovered", help="发现时间（ISO，带时区；默认现在）"),
             what: str | None = typer.Option(None, "--what", help="事件经过"),
             pi_types: str | None = typer.Option(None, "--pi-types", help="涉及的个人信息种类"),
             cause: str | None = typer.Option(None, "--cause", help="发生原因"),
             harm: str | None = typer.Option(None, "--harm", help="可能造成的危害"),
             measures: str | None = typer.Option(None, "--measures", help="已采取的补救措施"),
             advice: str | None = typer.Option(None, "--advice", help="个人可以采取的减轻危害的措施"),
             contact: str | None = typer.Option(None, "--contact", help="联系方式"),
             tenant: str | None = TENANT, now: str | None = NOW, url: str | None = URL, as_json: bool = JSON) -> None:
    """登记一起个人信息安全事件及已知的 PIPL 57 记录。"""
    record = _record(what_happened=what, pi_types=pi_types, cause=cause, possible_harm=harm, measures=measures,
                     what_people_can_do=advice, contact=contact)
    at, found = _time(now, "--now"), _time(discovered, "--discovered")
    view = _run(url, tenant, as_json, lambda svc, me: svc.open(me.tenant, me.staff_id, title, discovered_at=found,
                                                                   record=record, now=at))
    _emit(view, as_json, "已登记")


@incident_app.command("assess")
def assess_cmd(incident_id: str,
               severity: str | None = typer.Option(
                   None, "--severity", help="级别：general/larger/major/critical 或 一般/较大/重大/特别重大"),
               cii: bool | None = typer.Option(None, "--cii/--no-cii", help="是否关键信息基础设施（报告时限 1 小时）"),
               what: str | None = typer.Option(None, "--what", help="事件经过"),
               pi_types: str | None = typer.Option(None, "--pi-types", help="涉及的个人信息种类"),
               cause: str | None = typer.Option(None, "--cause", help="发生原因"),
               harm: str | None = typer.Option(None, "--harm", help="可能造成的危害"),
               measures: str | None = typer.Option(None, "--measures", help="已采取的补救措施"),
               advice: str | None = typer.Option(None, "--advice", help="个人可以采取的减轻危害的措施"),
               contact: str | None = typer.Option(None, "--contact", help="联系方式"),
               tenant: str | None = TENANT, now: str | None = NOW, url: str | None = URL,
               as_json: bool = JSON) -> None:
    """评估级别（确定向网信部门报告的时限）并补全事件记录。"""
    record = _record(what_happened=what, pi_types=pi_types, cause=cause, possible_harm=harm, measures=measures,
                     what_people_can_do=advice, contact=contact)
    at = _time(now, "--now")
    view = _run(url, tenant, as_json, lambda svc, me: svc.assess(
        me.tenant, me.staff_id, incident_id, severity=severity, critical_infrastructure=cii, record=record, now=at))
    _emit(view, as_json, "已评估")


@incident_app.command("affected")
def affected_cmd(incident_id: str,
                 item: list[str] = typer.Option(..., "--item", help="受影响的个人信息项（如 contact.mobile），可重复"),
                 start: str = typer.Option(..., "--from", help="时间窗开始（ISO，带时区）"),
                 end: str = typer.Option(..., "--to", help="时间窗结束（ISO，带时区）"),
                 datamap: Path | None = typer.Option(None, "--datamap", help="数据地图：同时查找应用数据中存有这些信息项的人"),
                 store: list[str] = typer.Option([], "--store", help="存储地址 STORE=URL，可重复"),
                 show: bool = typer.Option(False, "--list", help="列出受影响的人（主体编号）"),
                 tenant: str | None = TENANT, now: str | None = NOW, url: str | None = URL,
                 as_json: bool = JSON) -> None:
    """按处理记录与数据地图确定受影响的人（时间窗内处理过这些信息项的人；未成年人另行标记）。"""
    start_at, end_at, at = _time(start, "--from"), _time(end, "--to"), _time(now, "--now")
    assert start_at is not None and end_at is not None
    dm = None
    urls: dict[str, str] = {}
    if datamap is not None:
        from yinsi.cli.rights_cmds import _store_urls
        from yinsi.datamap_io import load_datamap

        try:
            dm = load_datamap(datamap).datamap
        except Exception as exc:
            raise _fail(f"数据地图无效：{exc}", 2, as_json) from None
        urls = _store_urls(store)

    def go(svc: Any, me: Any) -> Any:
        view = svc.affected(me.tenant, me.staff_id, incident_id, item, start_at, end_at, datamap=dm,
                            store_urls=urls, now=at)
        people = svc.affected_people(me.tenant, me.staff_id, incident_id) if show else None
        return view, people

    view, people = _run(url, tenant, as_json, go)
    if as_json:
        print(json.dumps({**view.to_dict(), "people": people}, ensure_ascii=False, indent=2))
        return
    _emit(view, False, "已确定受影响的人")
    for p in people or []:
        console.print(f"  {escape(p['subject'])}{'（未成年人：通知监护人）' if p['minor'] else ''}："
                      f"{escape('、'.join(p['items']))}", highlight=False)


@incident_app.command("notify")
def notify_cmd(incident_id: str,
               announce: bool = typer.Option(False, "--announce", help="同时发布公告（须 --reason）"),
               reason: str | None = typer.Option(None, "--reason", help="发布公告的理由（如难以逐一告知）"),
               deliver: bool = typer.Option(False, "--deliver", help="随后立即投递发件箱中的消息"),
               tenant: str | None = TENANT, now: str | None = NOW, url: str | None = URL,
               as_json: bool = JSON) -> None:
    """按声明的事件告知渠道通知每个受影响的人（未成年人通知其监护人）；公告须记录理由。"""
    at = _time(now, "--now")

    def go(svc: Any, me: Any) -> Any:
        view = svc.notify(me.tenant, me.staff_id, incident_id, announce=announce, announce_reason=reason, now=at)
        sent = svc.outbox.deliver(now=at or datetime.now(UTC), tenant=me.tenant) if deliver else None
        return view, sent

    view, sent = _run(url, tenant, as_json, go)
    if as_json:
        out = view.to_dict()
        if sent is not None:
            out["delivered"] = {"sent": sent.sent, "retrying": sent.retrying, "dead": sent.dead}
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    _emit(view, False, "已安排通知")
    if sent is not None:
        console.print(f"投递：成功 {sent.sent}，重试中 {sent.retrying}，失败 {sent.dead}", highlight=False)


@incident_app.command("report")
def report_cmd(incident_id: str, note: str = typer.Option(..., "--note", help="报告对象、方式与受理编号"),
               tenant: str | None = TENANT, now: str | None = NOW, url: str | None = URL,
               as_json: bool = JSON) -> None:
    """记录已向网信部门报告。"""
    at = _time(now, "--now")
    view = _run(url, tenant, as_json, lambda svc, me: svc.report(me.tenant, me.staff_id, incident_id, note, now=at))
    _emit(view, as_json, "已记录报告")


@incident_app.command("close")
def close_cmd(incident_id: str, note: str = typer.Option(..., "--note", help="关闭说明（处置结果）"),
              tenant: str | None = TENANT, now: str | None = NOW, url: str | None = URL,
              as_json: bool = JSON) -> None:
    """关闭事件（须已评估；较大及以上须已报告）。"""
    at = _time(now, "--now")
    view = _run(url, tenant, as_json,
                lambda svc, me: svc.close_incident(me.tenant, me.staff_id, incident_id, note, now=at))
    _emit(view, as_json, "已关闭")


@incident_app.command("show")
def show_cmd(incident_id: str, tenant: str | None = TENANT, now: str | None = NOW, url: str | None = URL,
             as_json: bool = JSON) -> None:
    """查看一起事件。"""
    at = _time(now, "--now")
    _emit(_run(url, tenant, as_json, lambda svc, me: svc.show(me.tenant, me.staff_id, incident_id, now=at)), as_json)


@incident_app.command("list")
def list_cmd(tenant: str | None = TENANT, now: str | None = NOW, url: str | None = URL, as_json: bool = JSON) -> None:
    """列出租户的安全事件。"""
    at = _time(now, "--now")
    views = _run(url, tenant, as_json, lambda svc, me: svc.list_incidents(me.tenant, me.staff_id, now=at))
    if as_json:
        print(json.dumps([v.to_dict() for v in views], ensure_ascii=False, indent=2))
        return
    for v in views:
        late = "（报告逾期）" if v.overdue else ""
        console.print(f"{escape(v.id)}  {escape(v.status_zh)}  {escape(v.severity_zh or '未评估')}  "
                      f"{escape(v.title)}{late}", highlight=False)
    if not views:
        console.print("没有安全事件")


@incident_app.command("check-overdue")
def check_overdue_cmd(tenant: str, now: str | None = NOW, url: str | None = URL, as_json: bool = JSON) -> None:
    """检查向网信部门报告是否逾期；逾期的事件生成告警（yinsi alerts list）。以系统身份运行。"""
    from yinsi.incidents import IncidentService

    at = _time(now, "--now")
    with IncidentService(url) as svc:
        raised = svc.check_overdue(tenant, now=at)
    if as_json:
        print(json.dumps({"alerts": raised}, ensure_ascii=False))
        return
    console.print(f"新告警 {len(raised)} 条" + (f"：{escape('、'.join(raised))}" if raised else ""), highlight=False)
