"""Entry point of the ``yinsi`` command."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from yinsi.declarations import DeclarationError, load_declaration

app = typer.Typer(help="Yinsi（隐私）：让隐私政策成真的引擎。", no_args_is_help=True, add_completion=False)
policy_app = typer.Typer(help="隐私政策声明：校验、渲染、对比、合规检查、发布。", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

console = Console()
err_console = Console(stderr=True)


@policy_app.command("validate")
def policy_validate(
    files: list[Path] = typer.Argument(..., help="声明文件（YAML）"),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """校验声明文件的结构与引用（文件、行号、路径）。"""
    problems = []
    for f in files:
        try:
            load_declaration(f)
        except DeclarationError as exc:
            problems.extend(exc.problems)
    if as_json:
        print(json.dumps([p.__dict__ for p in problems], ensure_ascii=False, indent=2))
    else:
        for p in problems:
            err_console.print(f"[red]错误[/red] {escape(str(p))}", highlight=False, soft_wrap=True)
        if not problems:
            console.print(f"[green]通过[/green]：{len(files)} 个声明文件结构有效。")
    raise typer.Exit(1 if problems else 0)
