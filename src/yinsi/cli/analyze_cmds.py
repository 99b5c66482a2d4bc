"""``yinsi policy analyze``: findings about a published policy text, a declaration draft, text against declaration."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from yinsi.cli.apps import console, err_console, policy_app

_SEV = {"error": "[red]错误[/red]", "warning": "[yellow]警告[/yellow]", "info": "[blue]提示[/blue]"}


@policy_app.command("analyze")
def policy_analyze(
    files: list[Path] = typer.Argument(..., help="隐私政策文本（.txt、.md、.html、.docx；简体或繁体）"),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出发现的问题"),
    against: Path | None = typer.Option(None, "--against", help="与该声明文件（YAML）对照，报告文本与声明不一致之处"),
    draft: Path | None = typer.Option(None, "--draft", help="把从文本读出的声明草稿写入该 YAML 文件（仅一个输入文件时）"),
) -> None:
    """分析隐私政策文本：结构、文字缺陷、缺少的告知事项、内部矛盾与违法条款；可生成声明草稿。"""
    from yinsi.analyze.service import analyze_file, write_draft
    from yinsi.analyze.text import PolicyReadError
    from yinsi.declarations import DeclarationError, load_declaration

    if draft is not None and len(files) != 1:
        err_console.print("[red]错误[/red] --draft 只能用于一个输入文件。")
        raise typer.Exit(2)
    decl = None
    if against is not None:
        try:
            decl = load_declaration(against)
        except DeclarationError as exc:
            for p in exc.problems:
                err_console.print(f"[red]错误[/red] {escape(str(p))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
    findings = []
    failed = False
    for f in files:
        try:
            result = analyze_file(f, against=decl, draft=draft is not None)
        except PolicyReadError as exc:
            err_console.print(f"[red]错误[/red] {escape(str(f))}：{exc}", highlight=False)
            failed = True
            continue
        findings.extend(result.findings)
        if draft is not None and result.draft is not None:
            write_draft(result, draft)
            err_console.print(f"声明草稿已写入 {escape(str(draft))}；未能映射的短语 {len(result.draft.unmapped)} 个（见文件开头注释）。")  # noqa: E501
    if as_json:
        print(json.dumps([f.to_dict() for f in findings], ensure_ascii=False, indent=2))
    else:
        for x in findings:
            where = f"{x.file}:{x.line}"
            rule = f"[{x.rule}] " if x.rule else ""
            quote = x.quote.replace("\n", " ")[:60]
            console.print(f"{_SEV.get(x.severity, x.severity)} {escape(where)} {escape(rule)}{x.kind}：{escape(x.message)}"
                          + (f"\n    原文：「{escape(quote)}」" if quote else "") + f"\n    建议：{escape(x.suggestion)}",
                          highlight=False, soft_wrap=True)
        counts = {s: sum(1 for x in findings if x.severity == s) for s in ("error", "warning", "info")}
        console.print(f"共 {len(findings)} 项：错误 {counts['error']}，警告 {counts['warning']}，提示 {counts['info']}。")
    if failed:
        raise typer.Exit(2)
    raise typer.Exit(1 if any(x.severity == "error" for x in findings) else 0)
