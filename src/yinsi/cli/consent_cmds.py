"""``yinsi consent|permission|gate|subject``: the ledger and the processing gate from the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from yinsi.cli.apps import app, console, exit_on
from yinsi.cli.errors import date_argument, datetime_argument
from yinsi.domain.consent import STATUS_ZH, ConsentRejected, EventType, PermissionEventType
from yinsi.domain.gate import Decision
from yinsi.domain.taxonomy import ACTION_ZH, LEGAL_BASIS_ZH, Action, ConsentKind
from yinsi.rules import add_rule_urls
from yinsi.services.consent import ConsentService, NoPublishedPolicy
from yinsi.storage.errors import StorageError

consent_app = typer.Typer(help="同意台账：记录、查看、重建。", no_args_is_help=True)
permission_app = typer.Typer(help="设备权限：记录授权/拒绝，判断能否再次申请（C8）。", no_args_is_help=True)
gate_app = typer.Typer(help="处理闸门：每次收集、使用、提供之前询问。", no_args_is_help=True)
subject_app = typer.Typer(help="个人：登记年龄信息，查看其个人信息收集与共享清单（双清单）。", no_args_is_help=True)
app.add_typer(consent_app, name="consent")
app.add_typer(permission_app, name="permission")
app.add_typer(gate_app, name="gate")
app.add_typer(subject_app, name="subject")

URL = typer.Option(None, "--url", help="Yinsi 数据库（默认 YINSI_DATABASE_URL 或 ./.yinsi/yinsi.db）")
JSON = typer.Option(False, "--json", help="以 JSON 输出")


@contextmanager
def _service(url: str | None) -> Iterator[ConsentService]:
    """The service, with expected errors turned into Chinese messages and exit codes."""
    with exit_on((StorageError, "数据库错误", 2)):
        svc = ConsentService(url)
    try:
        with exit_on(((NoPublishedPolicy, ConsentRejected), "未能完成", 1), (ValueError, "输入有误", 1)):
            yield svc
    finally:
        svc.close()


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    t = datetime_argument(value, "--at")
    if t is None or t.tzinfo is None:
        raise typer.BadParameter("时间须带时区，例如 2026-02-14T09:00:00+08:00")
    return t


def _pairs(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        if "=" not in v:
            raise typer.BadParameter(f"应为 键=值：{v}")
        k, _, val = v.partition("=")
        out[k.strip()] = val.strip()
    return out


@consent_app.command("record")
def consent_record(
    tenant: str = typer.Argument(..., help="租户"),
    subject: str = typer.Argument(..., help="个人在应用中的用户标识"),
    scope: str = typer.Argument(..., help="policy | guardian | feature:功能 | item:功能:个人信息项 | recipient:接收方 | "
                                          "cross_border:接收方"),
    event: EventType = typer.Option(EventType.GIVEN, "--event", help="given/refused/withdrawn/expired/invalidated/renewed"),
    kind: ConsentKind | None = typer.Option(None, "--kind", help="general/separate/guardian/written（默认按范围确定）"),
    channel: str = typer.Option("app", "--channel", help="app/web/phone/staff"),
    disclose: list[str] = typer.Option([], "--disclose", help="对话框中展示的告知事项 键=值，可重复：recipient_name、"
                                       "recipient_contact、purpose、method、items、necessity、impact、rights_method"),
    actor: str | None = typer.Option(None, "--actor", help="作出同意的监护人或经办员工"),
    at: str | None = typer.Option(None, "--at", help="发生时间（ISO 8601，带时区；默认现在）"),
    url: str | None = URL,
    as_json: bool = JSON,
) -> None:
    """记录一次同意事件（给予、拒绝、撤回……）；单独同意缺少法定告知事项时拒绝记录。"""
    with _service(url) as svc:
        ev = svc.record_consent(tenant, subject, scope, event, kind=kind, channel=channel,
                                disclosures=_pairs(disclose), actor=actor, at=_time(at))
        if as_json:
            print(json.dumps({"record_id": ev.record_id, "scope": ev.scope, "event": ev.event.value,
                              "kind": ev.kind.value, "policy": ev.policy_label, "shown_hash": ev.shown_hash,
                              "time": ev.event_time.isoformat()}, ensure_ascii=False))
        else:
            console.print(f"[green]已记录[/green]：{escape(subject)} 对「{escape(scope)}」{ev.event.value}"
                          f"（{ev.kind.value}，隐私政策 {ev.policy_label}，记录号 {ev.record_id}）")


@consent_app.command("show")
def consent_show(tenant: str, subject: str, url: str | None = URL, as_json: bool = JSON) -> None:
    """查看个人当前的同意与权限状态（投影）。"""
    with _service(url) as svc:
        st = svc.state(tenant, subject)
        consents = [{"scope": k, "status": v.status.value, "kind": v.kind.value, "policy": v.policy_label,
                     "time": v.event_time.isoformat()} for k, v in sorted(st.consents.items())]
        perms = [{"device": d, "permission": p, "status": v.status.value, "time": v.changed_at.isoformat()}
                 for (d, p), v in sorted(st.permissions.items())]
        if as_json:
            print(json.dumps({"consents": consents, "permissions": perms,
                              "birth_date": st.birth_date.isoformat() if st.birth_date else None}, ensure_ascii=False))
            return
        t = Table(title=f"{subject} 的同意状态")
        for col in ("范围", "状态", "类型", "政策版本", "时间"):
            t.add_column(col)
        for k, v in sorted(st.consents.items()):
            t.add_row(escape(k), STATUS_ZH[v.status], v.kind.value, v.policy_label, f"{v.event_time:%Y-%m-%d %H:%M}")
        console.print(t)
        for p in perms:
            console.print(f"  设备 {escape(p['device'])}：{p['permission']} {p['status']}")


@consent_app.command("rebuild")
def consent_rebuild(tenant: str, url: str | None = URL) -> None:
    """由事件重建该租户的同意与权限投影。"""
    with _service(url) as svc, console.status("正在重放事件…"):
        n = svc.rebuild(tenant)
    console.print(f"[green]已重建[/green]：{n} 个人的同意与权限状态。")


@permission_app.command("record")
def permission_record(
    tenant: str, subject: str, device: str = typer.Argument(..., help="设备标识"),
    permission: str = typer.Argument(..., help="权限，如 location、camera、contacts"),
    event: PermissionEventType = typer.Argument(..., help="granted/denied/revoked"),
    feature: str | None = typer.Option(None, "--feature", help="申请该权限的功能"),
    at: str | None = typer.Option(None, "--at"), url: str | None = URL,
) -> None:
    """记录设备权限的授予、拒绝或撤销；拒绝后进入静默期（C8）。"""
    with _service(url) as svc:
        svc.record_permission(tenant, subject, device, permission, event, feature=feature, at=_time(at))
        console.print(f"[green]已记录[/green]：{escape(device)} 上的 {permission} 权限 {event.value}")


@permission_app.command("ask")
def permission_ask(tenant: str, subject: str, device: str, permission: str,
                   at: str | None = typer.Option(None, "--at"),
                   quiet_hours: float = typer.Option(48, "--quiet-hours", help="拒绝后的静默期（小时）"),
                   url: str | None = URL, as_json: bool = JSON) -> None:
    """现在能否向该设备申请此权限？拒绝后的静默期内不得再次申请（C8）。"""
    with _service(url) as svc:
        d = svc.may_ask(tenant, subject, device, permission, at=_time(at), quiet_hours=quiet_hours)
    if as_json:
        print(json.dumps(add_rule_urls({"allowed": d.allowed, "rule": d.rule, "message": d.message}), ensure_ascii=False))
    else:
        console.print(("[green]可以申请[/green]：" if d.allowed else "[red]不得申请[/red]：") + escape(d.message))
    raise typer.Exit(0 if d.allowed else 1)


def print_decision(d: Decision, action: Action) -> None:
    if d.allowed:
        basis = LEGAL_BASIS_ZH[d.basis] if d.basis else ""
        console.print(f"[green]允许{ACTION_ZH[action]}[/green]：法律依据 {basis}（隐私政策 {d.policy_label}）")
    else:
        console.print(f"[red]拒绝{ACTION_ZH[action]}[/red]（隐私政策 {d.policy_label}）")
    for m in d.missing:
        console.print(f"  缺少 [{m.rule}] {escape(m.message)}", highlight=False)
    for r in d.reasons:
        console.print(f"  理由 [{r.rule}] {escape(r.message)}（{escape(r.element)}）", highlight=False)


@gate_app.command("check")
def gate_check(
    tenant: str, subject: str,
    action: Action = typer.Option(..., "--action", help="collect/use/provide/entrust/disclose/transfer_abroad/"
                                  "automated_decision"),
    feature: str | None = typer.Option(None, "--feature", help="功能 id"),
    purpose: str | None = typer.Option(None, "--purpose", help="或：处理目的（须与声明一致）"),
    item: list[str] = typer.Option([], "--item", help="个人信息项，可重复"),
    recipient: str | None = typer.Option(None, "--recipient"),
    destination: str | None = typer.Option(None, "--destination"),
    device: str | None = typer.Option(None, "--device"),
    actor: str | None = typer.Option(None, "--actor", help="发起处理的系统或员工"),
    at: str | None = typer.Option(None, "--at"),
    exception: str | None = typer.Option(None, "--exception", help="不经同意处理所依据的情形（PIPL 13 第三至七项）："
                                         "statutory_duty/emergency/news_reporting/public_info/other_law，须为隐私政策所声明"),
    url: str | None = URL, as_json: bool = JSON,
) -> None:
    """询问闸门：允许（附法律依据）或拒绝（附缺少的同意/权限与理由）。拒绝时退出码为 1。"""
    with _service(url) as svc:
        d = svc.check(tenant, subject, action, feature=feature, purpose=purpose, items=item, recipient=recipient,
                      destination=destination, device=device, actor=actor, at=_time(at), exception=exception)
    if as_json:
        print(json.dumps(add_rule_urls(d.to_json()), ensure_ascii=False))
    else:
        print_decision(d, action)
        if d.missing or d.reasons:
            console.print("  规则的义务与法律出处：yinsi rules 规则编号（如 yinsi rules C4）", highlight=False)
    raise typer.Exit(0 if d.allowed else 1)


@subject_app.command("register")
def subject_register(
    tenant: str, subject: str,
    birth_date: str | None = typer.Option(None, "--birth-date", help="出生日期 YYYY-MM-DD"),
    id_number: str | None = typer.Option(None, "--id-number", help="身份证号（只用于推算出生日期，不保存）"),
    url: str | None = URL,
) -> None:
    """登记个人的出生日期（判断是否不满十四周岁，M1）。"""
    with _service(url) as svc:
        bd = svc.register_subject(tenant, subject, birth_date=date_argument(birth_date, "--birth-date"),
                                  id_number=id_number)
    console.print(f"[green]已登记[/green]：{escape(subject)}（出生日期 {bd or '未提供'}）")


@subject_app.command("report")
def subject_report(tenant: str, subject: str, url: str | None = URL, as_json: bool = JSON) -> None:
    """个人的双清单：实际收集了哪些个人信息、与谁共享，用于什么目的。"""
    with _service(url) as svc:
        rep = svc.report(tenant, subject)
    if as_json:
        print(json.dumps(rep, ensure_ascii=False, indent=2))
        return
    _print_report(rep)


def _print_report(rep: dict[str, Any]) -> None:
    t = Table(title=f"已收集个人信息清单：{rep['subject']}（{rep['tenant']}，政策 {rep['policy']}）")
    for col in ("个人信息", "敏感", "功能", "目的", "次数", "最近一次"):
        t.add_column(col, overflow="fold")
    for e in rep["collected"]:
        t.add_row(e["name"], "是" if e["sensitive"] else "", "、".join(e["features"]), "；".join(e["purposes"]),
                  str(e["times"]), e["last"][:16].replace("T", " "))
    console.print(t)
    s = Table(title="与第三方共享个人信息清单")
    for col in ("接收方", "个人信息", "方式", "目的", "次数", "最近一次"):
        s.add_column(col, overflow="fold")
    for e in rep["shared"]:
        s.add_row(e["recipient_name"], e["name"], ACTION_ZH[Action(e["action"])], e["purpose"] or "",
                  str(e["times"]), e["last"][:16].replace("T", " "))
    console.print(s)
    console.print(f"被拒绝的处理请求：{rep['refused_requests']} 次")
