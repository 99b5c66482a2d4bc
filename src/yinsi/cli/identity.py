"""Who is running a staff command: the staff identity of the CLI (工作人员身份).

Every command that acts as staff calls :func:`current_staff`, which authenticates the token in
``YINSI_STAFF_TOKEN`` (a staff API token or a session token) or, without it, the session saved by
``yinsi login`` in ``$XDG_CONFIG_HOME/yinsi/session.json`` (default ``~/.config``; the file is 0600 in a
0700 directory). Nobody logged in, an expired session or a session of another tenant ends the command with
a Chinese message and exit code 1. A name typed on the command line is never an identity.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.markup import escape

from yinsi.auth.principals import AuthError, StaffPrincipal
from yinsi.cli.apps import err_console

TOKEN_ENV = "YINSI_STAFF_TOKEN"
EXIT_NOT_AUTHENTICATED = 1
NOT_LOGGED_IN = ("未登录：此操作须由已登录的工作人员执行。请先运行 yinsi login 租户 工作人员标识"
                 "（或设置环境变量 YINSI_STAFF_TOKEN 为工作人员 API 令牌）")


def session_path() -> Path:
    """``$XDG_CONFIG_HOME/yinsi/session.json`` (``~/.config/yinsi/session.json`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "yinsi" / "session.json"


def save_session(token: str, principal: StaffPrincipal, expires_at: str | None = None) -> Path:
    """Keep a session token for later commands: written atomically, 0600, in a 0700 directory."""
    path = session_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    data = {"token": token, "tenant": principal.tenant, "staff_id": principal.staff_id,
            "session": principal.session_id, "expires_at": expires_at}
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_session() -> dict[str, Any] | None:
    """The saved session (``token``, ``tenant``, ``staff_id``), or ``None``."""
    path = session_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("token"), str) else None


def clear_session() -> bool:
    """Forget the saved session; whether there was one."""
    try:
        session_path().unlink()
    except FileNotFoundError:
        return False
    return True


def current_token() -> tuple[str | None, str]:
    """The token to authenticate and where it came from (``env`` or ``file``)."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env, "env"
    saved = load_session()
    return (saved["token"], "file") if saved else (None, "file")


def refuse(message: str, code: int = EXIT_NOT_AUTHENTICATED, *, as_json: bool = False,
           rule: str | None = None) -> NoReturn:
    """End the command with a Chinese message (and a JSON error with ``--json``)."""
    if as_json:
        print(json.dumps({"ok": False, "error": message, "rule": rule}, ensure_ascii=False, indent=2))
    err_console.print(f"[red]拒绝[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def current_staff(url: str | None = None, tenant: str | None = None, *, as_json: bool = False) -> StaffPrincipal:
    """The authenticated member of staff running this command, or exit 1 with a Chinese message.

    ``tenant``: the tenant the command acts on; a session of another tenant is refused.
    """
    token, _ = current_token()
    if not token:
        refuse(NOT_LOGGED_IN, as_json=as_json)
    from yinsi.auth.staff import StaffAuthService
    from yinsi.storage.errors import StorageError

    try:
        with StaffAuthService(url) as auth:
            principal = auth.authenticate(token)
    except AuthError as exc:
        refuse(exc.detail, as_json=as_json, rule=exc.rule)
    except StorageError as exc:
        refuse(f"数据库错误：{exc}", 2, as_json=as_json)
    if tenant is not None and principal.tenant != tenant:
        refuse(f"当前登录的是租户 {principal.tenant} 的工作人员，不能操作租户 {tenant}（租户隔离）；"
               f"请以租户 {tenant} 的账号登录", as_json=as_json, rule="S3")
    return principal
