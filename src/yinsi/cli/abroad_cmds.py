"""``yinsi abroad``: recipient assessments, transfers abroad and the year's counts (X1, X2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.markup import escape

from yinsi.cli.apps import app, console, exit_on
from yinsi.cli.errors import date_argument, datetime_argument
from yinsi.domain.consent import ConsentRejected
from yinsi.services.abroad import AbroadError, AbroadService
from yinsi.services.consent import ConsentService, NoPublishedPolicy
from yinsi.storage.errors import StorageError

abroad_app = typer.Typer(help="向境外提供个人信息：接收方评估、出境判断、当年人数与门槛（X1、X2）。", no_args_is_help=True)
app.add_typer(abroad_app, name="abroad")

URL = typer.Option(None, "--url", help="Yinsi 数据库（默认 YINSI_DATABASE_URL 或 ./.yinsi/yinsi.db）")
TENANT = typer.Argument(..., help="租户")
JSON = typer.Option(False, "--json", help="以 JSON 输出")


@contextmanager
def _service(url: str | None) -> Iterator[AbroadService]:
    with exit_on((StorageError, "数据库错误", 2)):
        consents = ConsentService(url)
    try:
        with exit_on(((NoPublishedPolicy, ConsentRejected, AbroadError), "未能完成", 1), (ValueError, "输入有误", 1)):
            yield AbroadService(consents)
    finally:
        consents.flush()
        consents.close()


@abroad_app.command("assess")
def assess(tenant: str = TENANT, recipient: str = typer.Argument(..., help="声明中的境外接收方编号"),
           conclusion: str = typer.Option(..., "--conclusion", help="adequate（可以提供）或 inadequate（不得提供）"),
           summary: str = typer.Option(..., "--summary", help="评估摘要：合法性、必要性、对个人的影响、接收方的保护能力"),
           assessor: str = typer.Option(..., "--assessor", help="评估人"),
           assessed_on: str = typer.Option(..., "--on", help="评估日期 YYYY-MM-DD"),
           valid_until: str | None = typer.Option(None, "--valid-until", help="有效期至 YYYY-MM-DD"),
           url: str | None = URL) -> None:
    """记录对境外接收方的个人信息保护影响评估（PIPL 55，X1）。"""
    on = date_argument(assessed_on, "--on")
    until = date_argument(valid_until, "--valid-until")
    assert on is not None
    with _service(url) as svc:
        aid = svc.record_assessment(tenant, recipient, conclusion=conclusion, summary=summary, assessor=assessor,
                                    assessed_on=on, valid_until=until)
    console.print(f"已记录评估：{aid}")


@abroad_app.command("assessments")
def assessments(tenant: str = TENANT, as_json: bool = JSON, url: str | None = URL) -> None:
    """列出已记录的接收方评估。"""
    with _service(url) as svc:
        rows = svc.assessments(tenant)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        console.print(f"{r['assessed_on']}  {escape(r['recipient'])}  {r['conclusion']}  {escape(r['assessor'])}"
                      + (f"  有效期至 {r['valid_until']}" if r["valid_until"] else ""))


@abroad_app.command("export")
def export(tenant: str = TENANT, subject: str = typer.Argument(..., help="个人在应用中的用户标识"),
           recipient: str = typer.Argument(..., help="境外接收方编号"),
           items: list[str] = typer.Option(..., "--item", help="个人信息项，可重复"),
           feature: str | None = typer.Option(None, "--feature", help="功能"),
           purpose: str | None = typer.Option(None, "--purpose", help="目的"),
           at: str | None = typer.Option(None, "--at", help="时间（ISO 8601，带时区；默认现在）"),
           as_json: bool = JSON, url: str | None = URL) -> None:
    """判断能否向境外提供该个人的个人信息；允许时计入当年人数。拒绝时退出码为 3。"""
    when = datetime_argument(at, "--at") if at else None
    with _service(url) as svc:
        res = svc.export(tenant, subject, recipient, items, feature=feature, purpose=purpose, actor="cli", at=when)
    if as_json:
        typer.echo(json.dumps(res.to_json(), ensure_ascii=False, indent=2))
    else:
        console.print("允许" if res.allowed else "拒绝")
        for r in res.reasons:
            console.print(f"- [{r.rule}] {escape(r.message)}")
        for w in res.warnings:
            console.print(f"[yellow]提醒：{escape(w)}[/yellow]")
    if not res.allowed:
        raise typer.Exit(3)


@abroad_app.command("counters")
def counters(tenant: str = TENANT, at: str | None = typer.Option(None, "--at", help="按此时间所在年度（北京时间）"),
             as_json: bool = JSON, url: str | None = URL) -> None:
    """当年（自1月1日起）向境外提供个人信息的人数、所需机制与声明的机制（X2）。"""
    when = datetime_argument(at, "--at") if at else None
    with _service(url) as svc:
        c = svc.counters(tenant, at=when)
    if as_json:
        typer.echo(json.dumps(c, ensure_ascii=False, indent=2))
        return
    console.print(f"{c['year']}年：一般个人信息 {c['non_sensitive']:,} 人，敏感个人信息 {c['sensitive']:,} 人")
    console.print(f"所需机制：{c['required_zh']}；声明的机制：{c['declared_zh']}"
                  + ("" if c["within_declared"] else "（[red]超出[/red]）"))
    for w in c["warnings"]:
        console.print(f"[yellow]提醒：{escape(w)}[/yellow]")
