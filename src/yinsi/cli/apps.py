"""The Typer apps that command modules attach to (one module per area keeps them independent)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

APP_HELP = "Yinsi（隐私）：让隐私政策成真的引擎。"
#: Where command modules register their commands; ``yinsi.cli.main.app`` is the entry point that loads them.
app = typer.Typer(help=APP_HELP, no_args_is_help=True, add_completion=False)
policy_app = typer.Typer(help="隐私政策声明：校验、渲染、对比、合规检查、发布。", no_args_is_help=True)
db_app = typer.Typer(help="Yinsi 自身数据库：创建与迁移。", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(db_app, name="db")

# Not a terminal (CI logs, pipes): use a wide fixed width so tables stay readable instead of 80 columns.
console = Console(width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 150)


ErrorCase = tuple[type[BaseException] | tuple[type[BaseException], ...], str, int]


@contextmanager
def exit_on(*cases: ErrorCase) -> Iterator[None]:
    """Turn expected errors into a Chinese message on stderr and an exit code: each case is
    (exception types, label, exit code), tried in order; anything else propagates."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as exc:
        for types, label, code in cases:
            if isinstance(exc, types):
                from yinsi.cli.errors import redact

                err_console.print(f"[red]{label}[/red]：{escape(redact(str(exc)))}", highlight=False)
                raise typer.Exit(code) from None
        raise


# --- options shared by several command modules (a fresh Typer parameter for each use) -------------------
URL_HELP = "数据库地址（SQLAlchemy URL）；默认取环境变量 YINSI_DATABASE_URL，否则为 ./.yinsi/yinsi.db"
JSON_HELP = "以 JSON 输出"


def url_option() -> Any:
    return typer.Option(None, "--url", help=URL_HELP)


def json_option() -> Any:
    return typer.Option(False, "--json", help=JSON_HELP)


def tenant_argument() -> Any:
    return typer.Argument(..., help="租户标识")
