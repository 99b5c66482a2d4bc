"""``yinsi notices``: policy-change and termination notices, re-consent progress (operator commands).

These commands act as the system (like ``yinsi request run``): whoever can reach the database runs them;
every step is written to the audit log with the actor ``system``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from yinsi.cli.apps import app, console, exit_on
from yinsi.cli.errors import datetime_argument

notices_app = typer.Typer(help="变更告知：发送到期告知、查看重新同意进度、宣布停止运营。", no_args_is_help=True)
app.add_typer(notices_app, name="notices")

URL = typer.Option(None, "--url", help="Yinsi 数据库（默认 YINSI_DATABASE_URL 或 ./.yinsi/yinsi.db）")
NOW = typer.Option(None, "--now", help="以此时刻计算（ISO 时间，带时区，例如 2026-02-14T03:00:00+08:00）")
JSON = typer.Option(False, "--json", help="以 JSON 输出")


def parse_now(text: str | None) -> datetime | None:
    """``--now`` as an aware datetime, ``None`` when omitted; Chinese error otherwise."""
    now = datetime_argument(text, "--now")
    if now is not None and now.tzinfo is None:
        raise typer.BadParameter("--now 须带时区，例如 2026-02-14T03:00:00+08:00")
    return now


def _service(url: str | None) -> Any:
    from yinsi.services.policy_notices import PolicyNotices
    from yinsi.storage.errors import StorageError

    with exit_on((StorageError, "数据库错误", 2)):
        return PolicyNotices(url)


def plan_line(tenant: str, label: str, url: str | None) -> str | None:
    """One line on the change notices scheduled for a just-published version (for ``policy publish``)."""
    svc = _service(url)
    try:
        plan = next((p for p in svc.plans(tenant) if p.kind == "change" and p.label == label), None)
    finally:
        svc.close()
    if plan is None:
        return None
    extra = "；[yellow]含减损权利的变更，须取得明确同意[/yellow]" if plan.rights_reducing else ""
    major = "重大变更；" if plan.major else ""
    return (f"已安排变更告知：{major}{plan.people} 人，渠道 {escape('、'.join(plan.channels) or '无')}，"
            f"最迟 {escape(plan.arrive_by)} 送达{extra}（yinsi notices list {escape(tenant)}）")


@notices_app.command("run-due")
def run_due(tenant: str, now: str | None = NOW, url: str | None = URL,
            deliver: bool = typer.Option(False, "--deliver", help="随后立即投递发件箱中的消息"),
            datamap: Path | None = typer.Option(None, "--datamap", help="停止运营的全量清除所用的数据地图"),
            store: list[str] = typer.Option([], "--store", help="存储地址 STORE=URL，可重复"),
            as_json: bool = JSON) -> None:
    """发送到期的告知（邮件、短信进入发件箱；应用内告知即时发布）；停止日期已到时开启并核实全量清除。"""
    from yinsi.notify.errors import NotifyError
    from yinsi.services.policy_notices import NoticeError

    at = parse_now(now) or datetime.now(UTC)
    svc = _service(url)
    sweeper = _sweeper(tenant, url, datamap, store) if datamap is not None else None
    try:
        with exit_on(((NoticeError, NotifyError), "无法发送告知", 1)):
            report = svc.run_due(tenant, now=at, sweeper=sweeper)
            delivered = svc.outbox.deliver(now=at, tenant=tenant) if deliver else None
    finally:
        svc.close()
    out = report.to_dict()
    if delivered is not None:
        out["delivered"] = {"sent": delivered.sent, "retrying": delivered.retrying, "dead": delivered.dead}
    if as_json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    console.print(f"进入发件箱 {report.queued} 条，应用内发布 {report.posted} 条，无联系方式 {report.no_address} 条，"
                  f"逾期 {report.late} 条", highlight=False)
    if report.sweeps_opened or report.sweeps_verified or report.sweeps_waiting:
        console.print(f"停止运营清除：开启 {report.sweeps_opened}，已核实 {report.sweeps_verified}，"
                      f"待完成 {report.sweeps_waiting}（未指定 --datamap 时不会开启）", highlight=False)
    if delivered is not None:
        console.print(f"投递：成功 {delivered.sent}，重试中 {delivered.retrying}，失败 {delivered.dead}", highlight=False)


def _sweeper(tenant: str, url: str | None, datamap: Path, stores: list[str]) -> Any:
    """One deletion request per person (R4: the service stopped), verified by the system and run at once."""
    from yinsi.cli.rights_cmds import _store_urls
    from yinsi.datamap_io import load_datamap
    from yinsi.rights.service import RightsService

    dm = load_datamap(datamap).datamap
    rights = RightsService(url, datamaps={tenant: dm}, store_urls=_store_urls(stores))

    def sweep(subject: str) -> str:
        request_id = rights.submit(tenant, subject, "deletion", channel="staff",
                                   details={"reason": "服务停止运营（PIPL 47）"})
        rights.mark_verified(tenant, request_id, "system", "停止运营全量清除，无须本人核验")
        rights.run(tenant, request_id, "system")
        return str(request_id)

    return sweep


@notices_app.command("list")
def list_cmd(tenant: str, url: str | None = URL, as_json: bool = JSON) -> None:
    """列出租户的变更告知与停止运营计划，以及各状态的告知数。"""
    svc = _service(url)
    try:
        plans = svc.plans(tenant)
    finally:
        svc.close()
    if as_json:
        print(json.dumps([p.to_dict() for p in plans], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{tenant} 的告知计划")
    for col in ("类型", "版本/停止日期", "生效", "最迟送达（北京时间）", "重大", "减损权利", "人数", "告知", "状态"):
        table.add_column(col, overflow="fold")
    for p in plans:
        counts = "，".join(f"{k} {v}" for k, v in sorted(p.notices.items()))
        table.add_row("变更" if p.kind == "change" else "停止运营", escape(p.label), p.effective_date, p.arrive_by,
                      "是" if p.major else "否", "是" if p.rights_reducing else "否", str(p.people), counts,
                      p.status + (f"；清除 {p.sweep_status}" if p.sweep_status else ""))
    console.print(table)
    for p in plans:
        console.print(f"\n[bold]{escape(p.label)}[/bold]\n{escape(p.summary)}", highlight=False)


@notices_app.command("progress")
def progress_cmd(tenant: str, url: str | None = URL, as_json: bool = JSON) -> None:
    """重新同意进度：每个变更版本受影响的人数、已重新同意的人数与告知状态。"""
    svc = _service(url)
    try:
        data = svc.progress(tenant)
    finally:
        svc.close()
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{tenant} 的重新同意进度（当前版本 {data['current']}）")
    for col in ("版本", "生效日期", "受影响人数", "须重新同意", "已同意新版本", "比例", "告知"):
        table.add_column(col)
    for v in data["versions"]:
        counts = "，".join(f"{k} {n}" for k, n in sorted(v["notices"].items()))
        table.add_row(escape(v["label"]), v["effective_date"], str(v["people"]), "是" if v["reconsent_needed"] else "否",
                      str(v["accepted"]), f"{v['percent']}%", counts)
    console.print(table)


@notices_app.command("terminate")
def terminate_cmd(tenant: str, stop_date: str = typer.Argument(..., help="停止运营日期（YYYY-MM-DD）"),
                  channel: list[str] = typer.Option([], "--channel", help="告知渠道，可重复（默认：声明的变更告知渠道）"),
                  reason: str | None = typer.Option(None, "--reason", help="停止运营的原因"),
                  now: str | None = NOW, url: str | None = URL, as_json: bool = JSON) -> None:
    """宣布停止运营：至少提前 30 天告知每个人，停止日期到达后全量清除（yinsi notices run-due --datamap）。"""
    from yinsi.domain.notices import NoticeRefused
    from yinsi.services.policy_notices import NoticeError

    try:
        stop = date.fromisoformat(stop_date)
    except ValueError:
        raise typer.BadParameter("停止日期须为 YYYY-MM-DD") from None
    svc = _service(url)
    try:
        with exit_on(((NoticeRefused, NoticeError), "不能宣布停止运营", 1)):
            plan = svc.announce_termination(tenant, stop, list(channel), reason=reason, now=parse_now(now))
    finally:
        svc.close()
    if as_json:
        print(json.dumps(plan.to_dict(), ensure_ascii=False, indent=2))
        return
    console.print(f"[green]已宣布停止运营[/green]：{stop.isoformat()}；告知 {plan.people} 人，最迟 {plan.arrive_by} 送达",
                  highlight=False)


@notices_app.command("posted")
def posted_cmd(tenant: str, subject: str, url: str | None = URL, as_json: bool = JSON) -> None:
    """某人的应用内告知（应用或隐私中心向其展示的内容）。"""
    svc = _service(url)
    try:
        items = svc.posted_for(tenant, subject)
    finally:
        svc.close()
    if as_json:
        print(json.dumps(items, ensure_ascii=False, indent=2))
        return
    for item in items:
        console.print(f"[bold]{escape(item['subject'])}[/bold]\n{escape(item['body'])}", highlight=False)
    if not items:
        console.print("没有应用内告知")
