"""``yinsi scan text|db`` and ``yinsi mask text``: find PI in text files and databases, print masked text."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from yinsi.cli.apps import app, console, err_console
from yinsi.cli.errors import redact
from yinsi.protect.masking import mask_results, mask_value
from yinsi.scan import TYPE_LABELS, Result, UnknownType, scan_text

scan_app = typer.Typer(help="个人信息扫描：在文本文件和数据库中找出个人信息。", no_args_is_help=True)
mask_app = typer.Typer(help="脱敏展示：把文本中的个人信息替换为掩码。", no_args_is_help=True)
app.add_typer(scan_app, name="scan")
app.add_typer(mask_app, name="mask")

FILE_HELP = "文本文件（UTF-8 或 GB18030）；“-”表示标准输入"
TYPE_HELP = "只扫描这些类型（可重复），如 --type mobile_phone --type id_card"
#: Texts are scanned in blocks of whole lines of about this many characters (progress and memory stay bounded).
BLOCK_CHARS = 256 * 1024


class InputError(Exception):
    """A file that cannot be read, with a message for people."""


def _error(message: str) -> None:
    err_console.print(f"[red]错误[/red] {escape(redact(message))}", highlight=False, soft_wrap=True)


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Expected failures become a Chinese message and an exit code, never a traceback."""
    try:
        yield
    except InputError as exc:
        _error(str(exc))
        raise typer.Exit(2) from None
    except UnknownType as exc:
        _error(f"未知的个人信息类型：{exc}")
        raise typer.Exit(2) from None
    except Exception as exc:
        # Only database code raises storage errors, and it has imported yinsi.storage; text scans never load it.
        if "yinsi.storage.errors" in sys.modules:
            from yinsi.storage.errors import InvalidDatabaseUrl, StorageError

            if isinstance(exc, InvalidDatabaseUrl | StorageError):
                _error(str(exc))
                raise typer.Exit(2 if isinstance(exc, InvalidDatabaseUrl) else 1) from None
        raise


def read_text(file: str) -> str:
    """The file's text (UTF-8, else GB18030), or stdin for ``-``."""
    if file == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8")
    else:
        path = Path(file)
        if not path.exists():
            raise InputError(f"文件不存在：{file}")
        if not path.is_file():
            raise InputError(f"不是文件：{file}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"无法读取文件：{file}（{exc.strerror}）") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(f"无法识别文件编码（应为 UTF-8 或 GB18030）：{file}")


def _blocks(text: str) -> Iterator[tuple[int, str]]:
    start = 0
    while start < len(text):
        end = min(len(text), start + BLOCK_CHARS)
        if end < len(text):
            newline = text.rfind("\n", start, end)
            end = newline + 1 if newline > start else end
        yield start, text[start:end]
        start = end


def scan_document(text: str, types: list[str] | None, label: str) -> list[Result]:
    """Scan block by block with a progress bar on a terminal; offsets stay relative to the whole text."""
    results: list[Result] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True, disable=not err_console.is_terminal or len(text) < BLOCK_CHARS) as bar:
        task = bar.add_task(f"扫描 {label}", total=len(text))
        for offset, block in _blocks(text):
            for r in scan_text(block, types=types):
                results.append(Result(r.type, r.start + offset, r.end + offset, r.text, r.score, r.recognizer,
                                      r.explanation, r.validated))
            bar.advance(task, len(block))
    return results


def _line_col(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"{line}:{col}"


@scan_app.command("text")
def scan_text_cmd(
    file: str = typer.Argument(..., help=FILE_HELP),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出：[{type, start, end, text, score}]（start/end 为字符偏移）"),
    show_values: bool = typer.Option(False, "--show-values", help="显示原值（默认只显示掩码）"),
    types: list[str] | None = typer.Option(None, "--type", help=TYPE_HELP),
) -> None:
    """找出文本中的个人信息：类型、字符位置、掩码后的内容、置信度和依据。"""
    with _friendly_errors():
        text = read_text(file)
        results = scan_document(text, types or None, "标准输入" if file == "-" else file)
    if as_json:
        rows = [r.to_dict(text=None if show_values else mask_value(r.type, r.text)) for r in results]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not results:
        console.print("未发现个人信息。", highlight=False)
        return
    table = Table(title=f"{escape(file)}：发现 {len(results)} 处个人信息" + ("" if show_values else "（已脱敏）"))
    for col in ("位置（行:列）", "类型", "内容", "置信度", "依据"):
        table.add_column(col, overflow="fold")
    for r in results:
        table.add_row(_line_col(text, r.start), TYPE_LABELS.get(r.type, r.type),
                      escape(r.text if show_values else mask_value(r.type, r.text)), f"{r.score:.2f}",
                      escape(r.explanation))
    console.print(table)


@mask_app.command("text")
def mask_text_cmd(
    file: str = typer.Argument(..., help=FILE_HELP),
    types: list[str] | None = typer.Option(None, "--type", help=TYPE_HELP),
) -> None:
    """输出脱敏后的文本：每处个人信息替换为掩码（手机号 138****8000、身份证 110105********1234 等）。"""
    with _friendly_errors():
        text = read_text(file)
        results = scan_document(text, types or None, "标准输入" if file == "-" else file)
    sys.stdout.write(mask_results(text, results))
    sys.stdout.flush()


@scan_app.command("db")
def scan_db_cmd(
    url: str = typer.Argument(..., help="应用数据库地址（SQLAlchemy URL），如 sqlite:///app.db、postgresql+psycopg://user@host/db"),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出建议"),
    sample: int = typer.Option(100, "--sample", min=0, help="每列最多抽样的值数（0：只看列名和类型）"),
    show_not_pi: bool = typer.Option(False, "--all", help="表格中也列出判断为非个人信息的列"),
) -> None:
    """逐表逐列建议对应的个人信息项（数据地图条目），附置信度、依据与脱敏样例；从不显示原值。"""
    from yinsi.scan.columns import NOT_PI, classify_columns
    from yinsi.storage import display_url

    with _friendly_errors(), Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), console=err_console, transient=True,
        disable=not err_console.is_terminal,
    ) as bar:
        task = bar.add_task("扫描数据库", total=None)

        def progress(table: str, done: int, total: int) -> None:
            bar.update(task, total=total, completed=done, description=f"扫描表 {table}")

        proposals = classify_columns(url, sample_size=sample, progress=progress)
    if as_json:
        print(json.dumps([p.to_dict() for p in proposals], ensure_ascii=False, indent=2))
        return
    shown = [p for p in proposals if show_not_pi or p.pi_item != NOT_PI]
    pi_count = sum(p.pi_item != NOT_PI for p in proposals)
    table = Table(title=f"{escape(display_url(url))}：{len(proposals)} 列中 {pi_count} 列可能含个人信息")
    for col in ("表", "列", "建议的个人信息项", "置信度", "依据", "样例（已脱敏）"):
        table.add_column(col, overflow="fold")
    for p in shown:
        item = p.pi_item or f"（目录中无对应项：{TYPE_LABELS.get(p.pi_type or '', p.pi_type)}）"
        table.add_row(escape(p.table), escape(p.column), escape(_item_label(item)), f"{p.confidence:.2f}",
                      escape("；".join(p.reasons)), escape("、".join(p.masked_samples)))
    console.print(table)


def _item_label(item: str) -> str:
    from yinsi.domain.taxonomy import taxonomy

    try:
        return f"{item}（{taxonomy().item(item).name}）"
    except KeyError:
        return "非个人信息" if item == "not_pi" else item
