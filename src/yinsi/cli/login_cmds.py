"""``yinsi login``, ``yinsi logout``, ``yinsi whoami``: the staff identity of the CLI (see
:mod:`yinsi.cli.identity`). A session lasts 12 hours at most and ends after 30 minutes without use."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.markup import escape

from yinsi.cli.apps import app, console
from yinsi.cli.identity import clear_session, current_staff, current_token, refuse, save_session, session_path

URL_HELP = "数据库地址（SQLAlchemy URL）；默认取环境变量 YINSI_DATABASE_URL，否则为 ./.yinsi/yinsi.db"


def read_password(password_stdin: bool, *, confirm: bool = False, prompt: str = "口令") -> str:
    """A password from one line of standard input (``--password-stdin``) or typed twice at a hidden prompt."""
    if password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def role_labels(roles: frozenset[str]) -> str:
    from yinsi.staff.roles import Role

    return "、".join(Role(r).label for r in sorted(roles, key=[r.value for r in Role].index)) or "无角色"


@app.command("login")
def login(
    tenant: str = typer.Argument(..., help="租户标识"),
    staff_id: str = typer.Argument(..., help="工作人员标识"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="从标准输入读取口令（一行）"),
    totp: str | None = typer.Option(None, "--totp", help="动态验证码（认证器应用显示的 6 位数字）"),
    print_token: bool = typer.Option(False, "--print-token",
                                     help="只把会话令牌打印到标准输出（供 YINSI_STAFF_TOKEN 使用），不保存"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """工作人员登录：口令加动态验证码（可接触个人信息的角色必须），会话保存在用户配置目录。"""
    from yinsi.auth.principals import AuthError
    from yinsi.auth.staff import SESSION_LIFETIME, StaffAuthService
    from yinsi.storage.errors import StorageError

    password = read_password(password_stdin)
    try:
        with StaffAuthService(url) as auth:
            try:
                token, principal = auth.login(tenant, staff_id, password, totp)
            except AuthError as exc:
                if exc.code != "totp_required" or totp or password_stdin or not sys.stdin.isatty():
                    raise
                code = str(typer.prompt("动态验证码"))
                token, principal = auth.login(tenant, staff_id, password, code)
    except AuthError as exc:
        refuse(exc.detail, as_json=as_json, rule=exc.rule)
    except StorageError as exc:
        refuse(f"数据库错误：{exc}", 2, as_json=as_json)
    if print_token:
        print(token)
        return
    path = save_session(token, principal)
    if as_json:
        print(json.dumps({"ok": True, **_principal_dict(principal), "session_file": str(path)}, ensure_ascii=False))
        return
    hours = int(SESSION_LIFETIME.total_seconds() // 3600)
    console.print(f"[green]已登录[/green] 租户 {escape(tenant)}，工作人员 {escape(staff_id)}"
                  f"（{escape(role_labels(principal.roles))}）{'，已验证动态验证码' if principal.mfa else ''}。"
                  f"会话最长 {hours} 小时，30 分钟未操作即失效；退出：yinsi logout", highlight=False)


def _principal_dict(p: Any) -> dict[str, Any]:
    return {"tenant": p.tenant, "staff_id": p.staff_id, "person_id": p.person_id, "roles": sorted(p.roles),
            "mfa": p.mfa, "session": p.session_id}


@app.command("logout")
def logout(url: str | None = typer.Option(None, "--url", help=URL_HELP)) -> None:
    """退出登录：结束当前会话（服务端同时失效）并删除保存的会话。"""
    from yinsi.auth.staff import StaffAuthService
    from yinsi.storage.errors import StorageError

    token, source = current_token()
    if not token:
        console.print("当前没有登录。", highlight=False)
        return
    try:
        with StaffAuthService(url) as auth:
            auth.logout(token)
    except StorageError as exc:
        refuse(f"数据库错误：{exc}", 2)
    if source == "file":
        clear_session()
        console.print(f"[green]已退出登录[/green]（已删除 {escape(str(session_path()))}）", highlight=False)
    else:
        console.print("[green]已退出登录[/green]：YINSI_STAFF_TOKEN 所指的会话或令牌已失效；请从环境中删除它",
                      highlight=False)


@app.command("whoami")
def whoami(
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """显示当前登录的工作人员、租户与角色。"""
    p = current_staff(url, as_json=as_json)
    if as_json:
        print(json.dumps({"ok": True, **_principal_dict(p)}, ensure_ascii=False))
        return
    console.print(f"租户 {escape(p.tenant)}，工作人员 {escape(p.staff_id)}（{escape(role_labels(p.roles))}）；"
                  f"动态验证码：{'已验证' if p.mfa else '未验证'}", highlight=False)
