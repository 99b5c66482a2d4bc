"""``yinsi retention plan|sweep``: the app's data past its declared retention period."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from yinsi.cli.apps import app, console, err_console, exit_on
from yinsi.cli.errors import datetime_argument, redact

retention_app = typer.Typer(help="存储期限：按声明与数据地图查看到期计划、清理过期数据。", no_args_is_help=True)
app.add_typer(retention_app, name="retention")

URL = typer.Option(None, "--url", help="Yinsi 数据库（审计日志；默认 YINSI_DATABASE_URL 或 ./.yinsi/yinsi.db）")
DATAMAP = typer.Option(None, "--datamap", help="租户的数据地图 YAML（默认环境变量 YINSI_DATAMAP）")
DECLARATION = typer.Option(None, "--declaration", help="租户的隐私政策声明 YAML（其保存期限更短时以其为准）")
STORES = typer.Option([], "--store", help="存储地址 STORE=URL，可重复（默认 YINSI_STORES，再默认 connection.env）")
NOW = typer.Option(None, "--now", help="以此时刻计算（ISO 时间，例如 2026-02-14T03:00:00+08:00；默认当前时间）")


def _inputs(datamap: Path | None, declaration: Path | None, stores: list[str]) -> tuple[Any, Any, dict[str, str]]:
    from yinsi.cli.rights_cmds import _store_urls
    from yinsi.datamap_io import load_datamap
    from yinsi.declarations import load_declaration

    path = datamap or (Path(os.environ["YINSI_DATAMAP"]) if os.environ.get("YINSI_DATAMAP") else None)
    if path is None:
        err_console.print("[red]缺少数据地图[/red]：用 --datamap 或环境变量 YINSI_DATAMAP 指定")
        raise typer.Exit(2)
    try:
        dm = load_datamap(path).datamap
        decl = load_declaration(declaration) if declaration is not None else None
    except Exception as exc:
        err_console.print(f"[red]输入无效[/red]：{escape(redact(str(exc)))}")
        raise typer.Exit(2) from None
    return dm, decl, _store_urls(stores)


def _now(text: str | None) -> datetime:
    now = datetime_argument(text, "--now")
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise typer.BadParameter("--now 须带时区，例如 2026-02-14T03:00:00+08:00")
    return now


def _service(url: str | None) -> Any:
    from yinsi.retention.service import RetentionService
    from yinsi.storage.errors import StorageError

    with exit_on((StorageError, "数据库错误", 2)):
        return RetentionService(url)


@retention_app.command("plan")
def plan_cmd(tenant: str, datamap: Path | None = DATAMAP, declaration: Path | None = DECLARATION,
             store: list[str] = STORES, now: str | None = NOW, url: str | None = URL,
             as_json: bool = typer.Option(False, "--json", help="以 JSON 输出")) -> None:
    """按表列出：已过期待清理、依法保留（及依据）、仍在期限内的行数与下一次到期时间。"""
    from yinsi.retention.service import RetentionError
    from yinsi.stores.base import StoreUnavailable

    dm, decl, urls = _inputs(datamap, declaration, store)
    at = _now(now)
    svc = _service(url)
    try:
        with exit_on(((RetentionError, StoreUnavailable), "无法生成计划", 1)):
            plans = svc.plan(tenant, dm, decl, urls, at)
    finally:
        svc.close()
    if as_json:
        console.print_json(json.dumps({"tenant": tenant, "now": at.isoformat(),
                                       "tables": [p.as_dict() for p in plans]}, ensure_ascii=False))
        return
    t = Table(title=f"{tenant} 存储期限计划（{at.isoformat()}）")
    for col in ("存储.表", "期限", "动作", "总行数", "已过期", "依法保留", "期限内", "下次到期", "保留依据"):
        t.add_column(col)
    for p in plans:
        t.add_row(f"{p.store}.{p.table}", f"{p.max_days} 天（{p.time_column}）", "删除" if p.action == "delete" else "匿名化",
                  str(p.total), str(p.expired), str(p.held), str(p.within), p.next_expiry or "—",
                  escape(f"{p.hold_rule}：{p.hold_basis}（{p.hold_days} 天）") if p.hold_days else "—")
    console.print(t)
    if not plans:
        console.print("数据地图中没有设定保存期限（retention）的表")


@retention_app.command("sweep")
def sweep_cmd(tenant: str, datamap: Path | None = DATAMAP, declaration: Path | None = DECLARATION,
              store: list[str] = STORES, now: str | None = NOW, url: str | None = URL,
              dry_run: bool = typer.Option(False, "--dry-run", help="只计数，不删除"),
              batch: int = typer.Option(200_000, "--batch", min=1, help="每批处理的行数"),
              as_json: bool = typer.Option(False, "--json", help="以 JSON 输出")) -> None:
    """删除或匿名化已过保存期限的数据（依法保留的除外并记录理由），读回核对、写入审计日志；中断后重跑同一 --now 即继续。"""
    from yinsi.retention.service import RetentionError
    from yinsi.retention.sweep import SweepIncomplete
    from yinsi.stores.base import StoreUnavailable

    dm, decl, urls = _inputs(datamap, declaration, store)
    at = _now(now)
    svc = _service(url)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err_console,
                   disable=as_json or dry_run)
    tasks: dict[str, Any] = {}

    def progress(name: str, n: int) -> None:
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=None)
        bar.advance(tasks[name], n)

    try:
        with bar, exit_on(((RetentionError, StoreUnavailable, SweepIncomplete), "清理未完成", 1)):
            done = svc.sweep(tenant, dm, decl, urls, at, dry_run=dry_run, batch=batch, progress=progress)
    finally:
        svc.close()
    if as_json:
        console.print_json(json.dumps({"tenant": tenant, "now": at.isoformat(), "dry_run": dry_run,
                                       "tables": [d.as_dict() for d in done]}, ensure_ascii=False))
        return
    for d in done:
        what = "删除" if d.action == "delete" else "匿名化"
        verb = f"将{what}" if dry_run else f"已{what}"
        n = d.remaining if dry_run else d.removed
        line = f"{d.store}.{d.table}：{verb} {n} 行"
        if d.held:
            line += f"；依法保留 {d.held} 行（{d.hold_rule}：{d.hold_basis}）"
        console.print(escape(line))


@retention_app.command("sweep-internal")
def sweep_internal_cmd(now: str | None = NOW, url: str | None = URL,
                       tenant: str | None = typer.Option(None, "--tenant", help="只清理此租户（默认全部租户）"),
                       period: list[str] = typer.Option([], "--period", help=(
                           "覆盖保存期限 类别=天数，可重复（默认 YINSI_RETENTION_INTERNAL；低于法定最短期限的按法定期限）")),
                       dry_run: bool = typer.Option(False, "--dry-run", help="只计数，不删除"),
                       as_json: bool = typer.Option(False, "--json", help="以 JSON 输出")) -> None:
    """清理 Yinsi 自身过期的记录：验证码、发件箱消息、已结束的请求及导出包、处理记录、保全库、登录验证、会话、频率计数。"""
    from yinsi.domain.retention import parse_periods
    from yinsi.retention.internal import SweepIncomplete

    at = _now(now)
    try:
        overrides = parse_periods(os.environ.get("YINSI_RETENTION_INTERNAL", ""))
        overrides.update(parse_periods(",".join(period)))
        from yinsi.domain.retention import internal_rules

        internal_rules(overrides)
    except ValueError as exc:
        err_console.print(f"[red]参数无效[/red]：{escape(str(exc))}")
        raise typer.Exit(2) from None
    svc = _service(url)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err_console,
                   disable=as_json or dry_run)
    tasks: dict[str, Any] = {}

    def progress(name: str, n: int) -> None:
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=None)
        bar.advance(tasks[name], n)

    try:
        with bar, exit_on((SweepIncomplete, "清理未完成", 1)):
            done = svc.sweep_internal(at, tenant=tenant, overrides=overrides, dry_run=dry_run, progress=progress)
    finally:
        svc.close()
    if as_json:
        console.print_json(json.dumps({"now": at.isoformat(), "dry_run": dry_run,
                                       "records": [d.as_dict() for d in done]}, ensure_ascii=False))
        return
    for d in done:
        verb = "将删除" if dry_run else "已删除"
        line = f"{d.tenant} {d.name}：{verb} {d.removed} 条（保存 {d.days} 天，{d.rule}）"
        if d.raised_from is not None:
            line += f"；配置的 {d.raised_from} 天短于法定最短保存期，按 {d.days} 天执行"
        console.print(escape(line))
