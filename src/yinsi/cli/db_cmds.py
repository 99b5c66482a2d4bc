"""``yinsi db upgrade|current`` and ``yinsi policy publish|history|show`` (Yinsi's own database)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from yinsi.cli.apps import console, db_app, err_console, policy_app
from yinsi.cli.errors import db_error_message, redact
from yinsi.config import database_url

if TYPE_CHECKING:
    from yinsi.services.publishing import PublishedVersion

# The database stack (SQLAlchemy, Alembic, the services) is imported by the commands that use it, so that
# ``yinsi policy lint|validate|diff|render``, which share the ``policy`` group, do not load it.

BEIJING = timezone(timedelta(hours=8), "北京时间")

URL_HELP = "数据库地址（SQLAlchemy URL）；默认取环境变量 YINSI_DATABASE_URL，否则为 ./.yinsi/yinsi.db"


def _error(message: str) -> None:
    err_console.print(f"[red]错误[/red] {escape(redact(message))}", highlight=False, soft_wrap=True)


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Expected failures become a Chinese message and an exit code, never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from yinsi.declarations import DeclarationError
    from yinsi.services.publishing import PublishError
    from yinsi.storage import InvalidDatabaseUrl, StorageError

    try:
        yield
    except DeclarationError as exc:
        for p in exc.problems:
            _error(str(p))
        raise typer.Exit(1) from None
    except InvalidDatabaseUrl as exc:
        _error(str(exc))
        raise typer.Exit(2) from None
    except (StorageError, PublishError) as exc:
        _error(str(exc))
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:
        _error(db_error_message(exc))
        raise typer.Exit(1) from None


def _beijing(ts: datetime) -> str:
    return ts.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


@db_app.command("upgrade")
def db_upgrade(url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """创建数据库结构，或迁移到本程序的最新版本。"""
    from yinsi.storage import current, display_url, upgrade

    with _friendly_errors():
        target = url or database_url()
        before = current(target)
        upgrade(target)
        after = current(target)
    where = escape(display_url(target))
    if before == after:
        console.print(f"数据库结构已是最新：版本 {after}（{where}）", highlight=False)
    elif before is None:
        console.print(f"[green]已创建[/green]数据库结构：版本 {after}（{where}）", highlight=False)
    else:
        console.print(f"[green]已迁移[/green]数据库结构：{before} → {after}（{where}）", highlight=False)


@db_app.command("current")
def db_current(url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """显示数据库当前的结构版本，以及本程序需要的版本。"""
    from yinsi.storage import current, display_url, head

    with _friendly_errors():
        target = url or database_url()
        rev = current(target)
        newest = head()
    where = escape(display_url(target))
    if rev is None:
        console.print(f"数据库尚未初始化（{where}）；请运行：yinsi db upgrade", highlight=False)
    elif rev == newest:
        console.print(f"当前结构版本：{rev}（最新）（{where}）", highlight=False)
    else:
        console.print(f"当前结构版本：{rev}；最新版本为 {newest}，请运行：yinsi db upgrade（{where}）",
                      highlight=False)


@policy_app.command("publish")
def policy_publish(
    file: Path = typer.Argument(..., help="声明文件（YAML）"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    by: str | None = typer.Option(None, "--by", help="发布人"),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
    notify: bool = typer.Option(True, "--notify/--no-notify",
                                help="为变更安排告知（默认）：告知无法在生效前送达时拒绝发布"),
    now: str | None = typer.Option(None, "--now", help="发布时间（ISO 8601，带时区；默认当前时间）"),
) -> None:
    """合规检查、渲染并存档一个版本；同一版本标签只能发布一次；为受影响的人安排变更告知。"""
    from yinsi.cli.notice_cmds import parse_now, plan_line
    from yinsi.services.publishing import publish

    at = parse_now(now)
    with _friendly_errors():
        v = publish(file, url=url, by=by, now=at, notify=notify)
    line = plan_line(v.tenant, v.label, url) if notify and v.created else None
    if as_json:
        print(json.dumps(v.to_dict(), ensure_ascii=False, indent=2))
        return
    if line:
        console.print(line, highlight=False)
    name = f"{escape(v.tenant)} 的版本 {escape(v.label)}"
    if v.created:
        console.print(f"[green]已发布[/green]：{name}（声明哈希 {v.declaration_hash[:12]}）", highlight=False)
    else:
        console.print(f"{name} 已发布过且内容相同，未重复存档（声明哈希 {v.declaration_hash[:12]}）",
                      highlight=False)
    lint = f"合规检查：{v.lint_errors} 个错误，{v.lint_warnings} 个警告"
    if v.lint_errors:
        console.print(f"[yellow]{lint}[/yellow]；详见：yinsi policy lint {escape(str(file))}", highlight=False)
    else:
        console.print(lint, highlight=False)


def _history_table(tenant: str, versions: list[PublishedVersion]) -> Table:
    table = Table(title=f"{tenant} 的已发布版本")
    for col in ("版本", "生效日期", "运营者", "发布时间（北京时间）", "哈希前12位", "错误/警告数"):
        table.add_column(col, overflow="fold")
    for v in versions:
        table.add_row(
            escape(v.label),
            v.effective_date.isoformat() if v.effective_date else "未载明",
            escape(v.controller_name or "未载明"),
            _beijing(v.published_at),
            v.declaration_hash[:12],
            f"{v.lint_errors}/{v.lint_warnings}",
        )
    return table


@policy_app.command("history")
def policy_history(
    tenant: str = typer.Argument(..., help="租户标识"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """列出租户已发布的版本（按生效日期）。"""
    from yinsi.services.publishing import history

    with _friendly_errors():
        versions = history(tenant, url=url)
    if as_json:
        print(json.dumps([v.to_dict() for v in versions], ensure_ascii=False, indent=2))
    elif not versions:
        console.print(f"租户 {escape(tenant)} 没有已发布的版本。", highlight=False)
    else:
        console.print(_history_table(tenant, versions))


class ShowFormat(StrEnum):
    MD = "md"
    YAML = "yaml"


@policy_app.command("show")
def policy_show(
    tenant: str = typer.Argument(..., help="租户标识"),
    label: str = typer.Argument(..., help="版本标签"),
    fmt: ShowFormat = typer.Option(ShowFormat.MD, "--format", help="md：存档的政策文本；yaml：存档的声明原文"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """输出某个已发布版本的存档原文（旧版本始终可读）。"""
    from yinsi.services.publishing import get_version

    with _friendly_errors():
        archived = get_version(tenant, label, url=url)
    text = archived.rendered_markdown if fmt is ShowFormat.MD else archived.declaration_yaml
    sys.stdout.write(text)
    sys.stdout.flush()
