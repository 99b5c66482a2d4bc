"""Errors on the command line: a Chinese message and an exit code, never a traceback, never PI.

A database error's text can carry personal information (MariaDB: ``Duplicate entry '13800138000' for key
…``; PostgreSQL: ``DETAIL: Key (phone)=(…) already exists``), and so can an exception's message built from
the input. So:

- :func:`db_error_message` describes a database error by its kind and code only;
- :func:`safety_net` (called by the ``yinsi`` entry point for anything no command handled) prints a short
  Chinese message with the kind of failure and an error reference, and no exception text. With
  ``YINSI_DEBUG=1`` the exception propagates with its full traceback (for a developer's own machine:
  tracebacks may show PI).
- :func:`check_arguments` refuses absurdly long arguments, :func:`json_argument` and :func:`date_argument`
  parse JSON and dates given on the command line with limits and Chinese errors that do not echo the value.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import date, datetime
from typing import Any

import typer
from rich.markup import escape

DEBUG_ENV = "YINSI_DEBUG"
#: Longest command-line argument accepted (characters); JSON arguments also have a nesting limit.
MAX_ARGUMENT_CHARS = 65_536
MAX_JSON_DEPTH = 32

__all__ = [
    "DEBUG_ENV",
    "check_arguments",
    "date_argument",
    "db_error_message",
    "debug_enabled",
    "json_argument",
    "redact",
    "safety_net",
]


#: What :func:`redact` masks: the identifiers the scanner's pattern recognizers find (fast, no tagger).
REDACTED_TYPES = ("mobile_phone", "landline_phone", "id_card", "bank_card", "email", "passport", "imei",
                  "license_plate", "qq", "wechat_id")
#: Longest message echoed (a huge argument quoted back is cut).
MAX_MESSAGE_CHARS = 600


def redact(message: str) -> str:
    """``message`` with the PI the scanner finds masked (``138****8000``) and cut to a readable length:
    error messages quote what the user typed, which may be a phone number used as a user id."""
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + "…（已截断）"
    from yinsi.protect.masking import mask_text

    return mask_text(message, types=REDACTED_TYPES)


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _db_code(exc: Any) -> str:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code is None and orig is not None and getattr(orig, "args", None) and isinstance(orig.args[0], int):
        code = orig.args[0]  # MySQL/MariaDB error number
    if code is None and orig is not None:
        code = getattr(orig, "sqlite_errorname", None)
    return f"（错误代码 {code}）" if code is not None else ""


def db_error_message(exc: BaseException) -> str:
    """A Chinese description of a SQLAlchemy/DB-API error by its kind and code, without its text."""
    from sqlalchemy import exc as sa

    code = _db_code(exc)
    if isinstance(exc, sa.IntegrityError):
        return f"数据与已有记录冲突，违反了数据库的唯一性或外键约束{code}"
    if isinstance(exc, sa.DataError):
        return f"数据不符合数据库列的类型或长度{code}"
    if isinstance(exc, (sa.OperationalError, sa.InterfaceError)):
        return f"无法连接数据库，或数据库暂时无法完成操作{code}；请检查数据库地址与服务状态后重试"
    if isinstance(exc, sa.ProgrammingError):
        return f"数据库结构与本版本不符{code}；请运行 yinsi db upgrade，或检查数据库地址"
    if isinstance(exc, sa.TimeoutError):
        return "数据库连接池已满，等待超时；请稍后重试"
    return f"数据库操作失败（{type(exc).__name__}）{code}"


def _kind(exc: BaseException) -> tuple[str, int]:
    """(Chinese description, exit code) of an unexpected exception, from its type only."""
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        return db_error_message(exc), 1
    if isinstance(exc, RecursionError):
        return "输入嵌套过深，无法处理", 2
    if isinstance(exc, MemoryError):
        return "输入过大，内存不足", 2
    if isinstance(exc, UnicodeError):
        return "输入的文字编码无效（应为 UTF-8）", 2
    if isinstance(exc, (PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return f"文件操作失败：{exc.strerror or type(exc).__name__}", 1
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return "网络连接失败或超时；请检查服务地址与网络后重试", 1
    if isinstance(exc, OSError):
        return f"系统操作失败：{exc.strerror or type(exc).__name__}", 1
    if isinstance(exc, (ValueError, TypeError, KeyError, IndexError)):
        return "输入无效，无法处理", 2
    return "内部错误", 70


def safety_net(exc: BaseException) -> int:
    """Report an exception no command handled; returns the exit code. Prints no exception text."""
    from yinsi.cli.apps import err_console

    reference = secrets.token_hex(4).upper()
    kind, code = _kind(exc)
    err_console.print(
        f"[red]错误[/red] {escape(kind)}（{type(exc).__name__}，错误编号 {reference}）。"
        f"为避免泄露个人信息，未显示详细信息；如需排查，请设置环境变量 {DEBUG_ENV}=1 后重新运行同一命令。",
        highlight=False, soft_wrap=True,
    )
    return code


def check_arguments(args: list[str]) -> None:
    """Refuse an argument longer than :data:`MAX_ARGUMENT_CHARS` (exit code 2), without echoing it."""
    for i, arg in enumerate(args):
        if len(arg) > MAX_ARGUMENT_CHARS:
            from yinsi.cli.apps import err_console

            err_console.print(f"[red]错误[/red] 第 {i + 1} 个命令行参数过长（{len(arg)} 个字符，上限 "
                              f"{MAX_ARGUMENT_CHARS}）；较大的内容请放在文件中", highlight=False)
            raise typer.Exit(2)


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)
    return deepest


def json_argument(text: str, option: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON given on the command line, or :class:`typer.BadParameter` in Chinese (the value is not echoed)."""
    if len(text) > MAX_ARGUMENT_CHARS:
        raise typer.BadParameter(f"{option} 过长（上限 {MAX_ARGUMENT_CHARS} 个字符）")
    opened = 0
    for ch in text:  # refuse deep nesting before the parser recurses into it
        if ch in "[{":
            opened += 1
            if opened > max_depth:
                raise typer.BadParameter(f"{option} 嵌套过深（上限 {max_depth} 层）")
        elif ch in "]}" and opened:
            opened -= 1
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        where = f"第 {exc.colno} 列" if isinstance(exc, json.JSONDecodeError) else ""
        raise typer.BadParameter(f"{option} 不是有效的 JSON{where}") from None
    if _depth(value, max_depth) > max_depth:
        raise typer.BadParameter(f"{option} 嵌套过深（上限 {max_depth} 层）")
    return value


def date_argument(text: str | None, option: str) -> date | None:
    """A ``YYYY-MM-DD`` date, or :class:`typer.BadParameter` saying so (an impossible date like
    2026-02-30 included); the value is not echoed."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{option} 应为实际存在的日期，格式 YYYY-MM-DD（例如 2026-02-14）") from None


def datetime_argument(text: str | None, option: str) -> datetime | None:
    """An ISO date-time (``2026-02-14T09:00:00+08:00``), or :class:`typer.BadParameter` in Chinese."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{option} 应为实际存在的时刻，格式如 2026-02-14T09:00:00+08:00") from None
