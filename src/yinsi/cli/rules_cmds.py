"""``yinsi rules [ID]``: the rule catalogue that findings, gate reasons and refusals cite (规则目录)."""

from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

from yinsi import rules
from yinsi.cli.apps import app, console, err_console


@app.command("rules")
def rules_show(
    rule_id: str | None = typer.Argument(None, metavar="[ID]", help="规则编号，如 N1、C4；不指定则列出全部"),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """规则目录：每条规则的义务与法律出处。

    合规检查、闸门拒绝和权利请求拒绝都引用这里的规则编号；接口在 /api/v1/rules/{ID} 提供同样的内容。
    """
    if rule_id is None:
        catalogue = rules.all()
        if as_json:
            print(json.dumps([r.to_json() for r in catalogue], ensure_ascii=False, indent=2))
            return
        table = Table(title=f"规则目录（{len(catalogue)} 条）", show_lines=False)
        for col in ("编号", "领域", "标题", "义务"):
            table.add_column(col, overflow="fold", no_wrap=col == "编号")
        for r in catalogue:
            table.add_row(r.id, r.area_zh, escape(r.title_zh), escape(r.duty))
        console.print(table)
        console.print("查看一条规则的法律出处：yinsi rules 编号（如 yinsi rules N1）", highlight=False)
        return
    rule = rules.get(rule_id)
    if rule is None:
        err_console.print(f"[red]错误[/red] 没有编号为 {escape(rule_id)} 的规则；用 yinsi rules 查看全部规则。",
                          highlight=False)
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(rule.to_json(), ensure_ascii=False, indent=2))
        return
    console.print(f"[bold]{rule.id}　{escape(rule.title_zh)}[/bold]（{escape(rule.title_en)}）", highlight=False)
    console.print(f"领域：{rule.area_zh}", highlight=False)
    console.print(f"义务：{escape(rule.duty)}", highlight=False, soft_wrap=True)
    console.print("法律出处：", highlight=False)
    for s in rule.sources:
        console.print(f"  • {escape(str(s))}", highlight=False)
    console.print(f"接口：{rule.url_path}", highlight=False)
