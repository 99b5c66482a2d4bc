"""``yinsi policy validate|diff|lint``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from yinsi.cli.apps import console, err_console, policy_app
from yinsi.declarations import DeclarationError, load_declaration
from yinsi.domain.changes import CRITERIA_ZH, Change, PolicyDiff, diff_declarations
from yinsi.domain.lint import SEVERITY_ZH, lint_declaration
from yinsi.domain.policy import Declaration
from yinsi.domain.taxonomy import taxonomy
from yinsi.rules import add_rule_urls


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


def _load_or_exit(path: Path) -> Declaration:
    try:
        return load_declaration(path)
    except DeclarationError as exc:
        for p in exc.problems:
            err_console.print(f"[red]声明无效[/red] {escape(str(p))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _human(value: str) -> str:
    """A taxonomy id shown with its Chinese name; other strings unchanged."""
    tax = taxonomy()
    if value in tax.items:
        return tax.items[value].name
    if value in tax.permissions:
        return f"{tax.permissions[value].name}权限"
    return value


def _short(value: object, limit: int = 80) -> str:
    """A compact one-line rendering of a changed value for the table."""
    if value is None:
        return "—"
    if isinstance(value, dict):
        name = value.get("name") or value.get("text") or value.get("description")
        if isinstance(name, str):  # a whole element: its name says what it is
            text = name
        else:
            text = " ".join(_short(v, limit) for k, v in value.items()
                            if v not in (None, [], {}, False) and k not in ("method", "timing", "required"))
    elif isinstance(value, list):
        text = "、".join(_short(v, limit) for v in value)
    else:
        text = _human(str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@policy_app.command("diff")
def policy_diff(
    old: Path = typer.Argument(..., help="旧版本声明"),
    new: Path = typer.Argument(..., help="新版本声明"),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """对比两个版本：列出每处变更，按六项重大变更情形分类，并给出需要重新取得的同意。"""
    result = diff_declarations(_load_or_exit(old), _load_or_exit(new))
    if as_json:
        data = result.to_json()
        add_rule_urls(data["reconsent"])  # only there: changed values are declaration content, left as they are
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    print_diff(result)


def _depth(path: str) -> int:
    return path.count(".") + path.count("[")


def print_diff(result: PolicyDiff, per_criterion: int | None = None) -> None:
    """Human-readable diff: a table of changes, the criteria met and the consents to renew.

    With ``per_criterion``, show only that many changes for each criterion met, the least nested first,
    so that a summary shows whole elements (a new feature, a new SDK) before their details.
    """
    kind_zh = {"added": "[green]新增[/green]", "removed": "[red]删除[/red]", "changed": "[yellow]变更[/yellow]"}
    table = Table(title=f"隐私政策变更：{result.old_label} → {result.new_label}", show_lines=False)
    table.add_column("类型", no_wrap=True)
    table.add_column("位置", overflow="fold")
    table.add_column("变更前", overflow="fold")
    table.add_column("变更后", overflow="fold")
    table.add_column("重大变更情形", no_wrap=True)
    if per_criterion is None:
        shown = result.changes
    else:
        picked: dict[str, Change] = {}
        for k in result.criteria_met():
            order = {"added": 0, "changed": 1, "removed": 2}
            ranked = sorted((c for c in result.changes if k in c.criteria),
                            key=lambda c: (_depth(c.path), order[c.kind]))
            for c in ranked[:per_criterion]:
                picked.setdefault(c.path, c)
        shown = [c for c in result.changes if c.path in picked]
    for c in shown:
        table.add_row(kind_zh[c.kind], escape(c.path), escape(_short(c.before)), escape(_short(c.after)),
                      "、".join(str(k) for k in c.criteria) or "—")
    console.print(table)
    if len(shown) < len(result.changes):
        console.print(f"（共 {len(result.changes)} 处变更，此处每种重大变更情形列出 {per_criterion} 处；"
                      "完整列表见 yinsi policy diff）")
    console.print(f"[bold]是否重大变更[/bold]：{'是' if result.major else '否'}")
    for k in result.criteria_met():
        n = sum(1 for c in result.changes if k in c.criteria)
        console.print(f"  情形{k}：{CRITERIA_ZH[k]}（{n} 处）")
    if result.reconsent:
        console.print("[bold]需要重新取得的同意（PIPL 14）[/bold]：")
        listed = result.reconsent if per_criterion is None else result.reconsent[: 2 * per_criterion]
        for r in listed:
            kind = "单独同意" if r.consent == "separate" else "重新同意隐私政策"
            console.print(f"  • {r.rule}｜{kind}：{escape(r.reason)}", highlight=False, soft_wrap=True)
        if len(listed) < len(result.reconsent):
            console.print(f"  …共 {len(result.reconsent)} 项，完整列表见 yinsi policy diff --json 的 reconsent")


@policy_app.command("lint")
def policy_lint(
    files: list[Path] = typer.Argument(..., help="声明文件（YAML）"),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """按规则目录（yinsi rules）检查声明是否符合中国法律；发现错误时退出码为 1。"""
    rows: list[dict[str, str]] = []
    for f in files:
        decl = _load_or_exit(f)
        rows.extend({"file": str(f), **asdict(x)} for x in lint_declaration(decl))
    errors = sum(1 for r in rows if r["severity"] == "error")
    if as_json:
        print(json.dumps(add_rule_urls(rows), ensure_ascii=False, indent=2))
    else:
        print_findings(rows)
        warnings = sum(1 for r in rows if r["severity"] == "warning")
        console.print(f"共 {len(files)} 个声明：{errors} 个错误，{warnings} 个警告，"
                      f"{len(rows) - errors - warnings} 个提示。")
    raise typer.Exit(1 if errors else 0)


def print_findings(rows: list[dict[str, str]]) -> None:
    style = {"error": "red", "warning": "yellow", "info": "cyan"}
    table = Table(show_lines=False)
    for col in ("文件", "规则", "级别", "位置", "说明"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(escape(Path(r["file"]).name), r["rule"],
                      f"[{style[r['severity']]}]{SEVERITY_ZH[r['severity']]}[/]",
                      escape(r["path"]), escape(r["message"]))
    console.print(table)
    if rows:
        console.print("规则的义务与法律出处：yinsi rules 规则编号（如 yinsi rules N1）", highlight=False)
