"""``yinsi policy render``: the published policy (Markdown or HTML) and its lists, from a declaration."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path

import typer
from rich.markup import escape

from yinsi.cli.apps import console, err_console, policy_app
from yinsi.declarations import DeclarationError, Problem, load_declaration
from yinsi.render import render_html, render_lists, render_markdown


class Format(StrEnum):
    MD = "md"
    HTML = "html"


# Common validation messages, said in Chinese for the person at the terminal; others pass unchanged.
_MESSAGES_ZH: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^file not found$"), "文件不存在"),
    (re.compile(r"^not UTF-8 text$"), "文件不是 UTF-8 编码的文本"),
    (re.compile(r"^Field required$"), "缺少必填字段"),
    (re.compile(r"^Extra inputs are not permitted$"), "不允许的字段（可能拼写错误）"),
    (re.compile(r"^YAML syntax error: (.*)$"), r"YAML 语法错误：\1"),
    (re.compile(r"^a declaration is a YAML mapping$"), "声明文件必须是 YAML 映射"),
    (re.compile(r"^unknown PI item '([^']*)'.*$"), r"未知的个人信息项 \1（见 domain/data/pi_items.yaml）"),
    (re.compile(r"^unknown permission '([^']*)'.*$"), r"未知的设备权限 \1（见 domain/data/permissions.yaml）"),
    (re.compile(r"^no SDK with id '([^']*)' in sdks$"), r"sdks 中没有 id 为 \1 的 SDK"),
    (re.compile(r"^duplicate (\w+) id '([^']*)'$"), r"重复的 \1 id：\2"),
    (re.compile(r"^Input should be a valid date.*$"), "应为有效日期（YYYY-MM-DD）"),
    (re.compile(r"^Input should be a valid integer.*$"), "应为整数"),
    (re.compile(r"^Input should be a valid string.*$"), "应为字符串"),
    (re.compile(r"^Input should be a valid boolean.*$"), "应为 true 或 false"),
    (re.compile(r"^Input should be (.*)$"), r"取值应为 \1"),
)


def message_zh(message: str) -> str:
    """A validation message in Chinese where a translation is known."""
    for pattern, repl in _MESSAGES_ZH:
        if pattern.match(message):
            return pattern.sub(repl, message).replace("' or '", "' 或 '")
    return message


def problem_zh(p: Problem) -> str:
    """``文件:行：位置 path：message``."""
    where = f"{p.file}:{p.line}" if p.line else p.file
    path = f"位置 {p.path}：" if p.path else ""
    return f"{where}：{path}{message_zh(p.message)}"


@policy_app.command("render")
def policy_render(
    file: Path = typer.Argument(..., help="声明文件（YAML）"),
    fmt: Format = typer.Option(Format.MD, "--format", "-f", help="输出格式：md（Markdown）或 html"),
    output: Path | None = typer.Option(None, "--output", "-o", help="写入文件（默认输出到标准输出）"),
    as_json: bool = typer.Option(False, "--json", help="输出机器可读的清单（SDK、已收集、共享、权限）"),
) -> None:
    """由声明生成隐私政策文本（Markdown 或 HTML）及其清单。"""
    try:
        decl = load_declaration(file)
    except DeclarationError as exc:
        err_console.print(f"[red]错误[/red] 声明文件校验失败，共 {len(exc.problems)} 处问题：", highlight=False)
        for p in exc.problems:
            err_console.print(f"  {escape(problem_zh(p))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        text = json.dumps(render_lists(decl), ensure_ascii=False, indent=2) + "\n"
    elif fmt is Format.HTML:
        text = render_html(decl)
    else:
        text = render_markdown(decl)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    what = "清单（JSON）" if as_json else ("HTML 页面" if fmt is Format.HTML else "Markdown 文本")
    console.print(f"[green]已生成[/green]{what}：{escape(str(output))}", highlight=False)
