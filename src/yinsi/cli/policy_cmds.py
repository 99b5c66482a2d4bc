"""``yinsi policy validate|diff|lint``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from yinsi.cli.apps import console, err_console, policy_app
from yinsi.declarations import DeclarationError, load_declaration


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


@policy_app.command("sources")
def policy_sources(
    files: list[Path] = typer.Argument(..., help="声明文件（YAML）"),
    seeds: Path | None = typer.Option(None, "--seeds", help="政策原文所在目录（默认 ../shared/seeds）"),
) -> None:
    """核对声明中每条出处引文是否逐字出现在政策原文中。"""
    from yinsi.faithfulness import check_quotes, seeds_dir

    base = seeds or seeds_dir()
    bad = 0
    for f in files:
        decl = load_declaration(f)
        texts = {p.name: p.read_text(encoding="utf-8") for p in base.glob("*.txt")}
        for prob in check_quotes(decl, texts):
            bad += 1
            err_console.print(f"[red]错误[/red] {escape(str(f))}: {escape(prob.path)}: {prob.message}: "
                              f"{escape(prob.quote)!r}", highlight=False, soft_wrap=True)
    if not bad:
        console.print(f"[green]通过[/green]：{len(files)} 个声明的引文均逐字出现在原文中。")
    raise typer.Exit(1 if bad else 0)
