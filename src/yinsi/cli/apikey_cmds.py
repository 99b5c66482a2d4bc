"""``yinsi apikey …`` (app API keys) and ``yinsi applink …`` (the key an app signs deep links with).

Administrator actions: every command runs as the logged-in staff member (``yinsi login``, or
``YINSI_STAFF_TOKEN``), checked by the services (action ``configure``, RULES S3). A token or secret is
printed once, when it is made. A refusal exits 1, bad input or a configuration problem exits 2.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from yinsi.cli.apps import app, console, err_console, json_option, tenant_argument, url_option
from yinsi.cli.errors import db_error_message, redact

apikey_app = typer.Typer(help="应用 API 密钥：创建、列出、轮换、吊销（仅管理员）。", no_args_is_help=True)
applink_app = typer.Typer(help="应用跳转登录（deep link）的签名密钥：设置与查看（仅管理员）。", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
app.add_typer(applink_app, name="applink")

EXIT_REFUSED = 1
EXIT_ERROR = 2
BEIJING = timezone(timedelta(hours=8), "北京时间")


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _fail(message: str, code: int, as_json: bool, rule: str | None = None, error_code: str | None = None) -> typer.Exit:
    if as_json:
        _print_json({"ok": False, "error": redact(message), "code": error_code, "rule": rule})
    err_console.print(f"[red]错误[/red] {escape(redact(message))}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def _friendly(as_json: bool) -> Iterator[None]:
    from sqlalchemy.exc import SQLAlchemyError

    from yinsi.auth.principals import AuthError
    from yinsi.protect.errors import ProtectError
    from yinsi.storage import StorageError

    try:
        yield
    except typer.Exit:
        raise
    except AuthError as exc:
        raise _fail(exc.detail, EXIT_REFUSED, as_json, exc.rule, exc.code) from None
    except (ValueError, LookupError, ProtectError, StorageError) as exc:
        raise _fail(str(exc), EXIT_ERROR, as_json) from None
    except SQLAlchemyError as exc:
        raise _fail(db_error_message(exc), EXIT_ERROR, as_json) from None
    except OSError as exc:
        raise _fail(f"文件操作失败：{exc.strerror or exc}（{exc.filename or ''}）", EXIT_ERROR, as_json) from None


def _staff(url: str | None, tenant: str) -> Any:
    """The logged-in staff member (exits with a Chinese message when nobody is logged in)."""
    from yinsi.cli.identity import current_staff

    return current_staff(url, tenant)


def _when(text: str | None) -> str:
    if not text:
        return "—"
    return datetime.fromisoformat(text).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def _duration(text: str) -> timedelta:
    m = re.fullmatch(r"\s*(\d+)\s*([smh])\s*", text or "")
    if m is None:
        raise ValueError(f"时长 {text!r} 无效：写作 90s、10m 或 2h")
    return timedelta(seconds=int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)])




def _show_token(key_id: str, token: str, verb: str) -> None:
    console.print(f"[green]{verb}[/green] API 密钥 {escape(key_id)}。密钥只显示这一次，请立即妥善保存：", highlight=False)
    print(token)
    console.print("应用调用时在请求头中携带：Authorization: Bearer <密钥>", highlight=False)


# --- API keys ------------------------------------------------------------------------------------


@apikey_app.command("create")
def apikey_create(
    tenant: str = tenant_argument(),
    name: str = typer.Option(..., "--name", help="密钥名称（例如：后端服务 prod）"),
    scope: list[str] = typer.Option([], "--scope", help="权限范围（可重复）：gate、consent、permissions、subjects、"
                                    "requests、records"),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """创建 API 密钥（仅管理员）；密钥只显示一次。"""
    from yinsi.auth.apikeys import ApiKeyService

    with _friendly(as_json):
        admin = _staff(url, tenant)
        with ApiKeyService(url) as svc:
            key_id, token = svc.create(admin, tenant, name=name, scopes=scope)
    if as_json:
        _print_json({"ok": True, "key_id": key_id, "token": token})
    else:
        _show_token(key_id, token, "已创建")


@apikey_app.command("list")
def apikey_list(tenant: str = tenant_argument(), url: str | None = url_option(),
                as_json: bool = json_option()) -> None:
    """列出租户的 API 密钥（不含密钥本身）。"""
    from yinsi.auth.apikeys import ApiKeyService

    with _friendly(as_json):
        admin = _staff(url, tenant)
        with ApiKeyService(url) as svc:
            keys = svc.list(admin, tenant)
    if as_json:
        _print_json({"ok": True, "keys": keys})
        return
    if not keys:
        console.print(f"租户 {escape(tenant)} 还没有 API 密钥：yinsi apikey create {escape(tenant)} --name 名称 --scope gate")
        return
    table = Table("编号", "名称", "权限范围", "状态", "创建", "最近使用")
    for k in keys:
        table.add_row(escape(k["key_id"]), escape(k["name"]), "、".join(k["scopes"]),
                      "已吊销" if k["status"] == "revoked" else "有效", _when(k["created_at"]), _when(k["last_used_at"]))
    console.print(table)


@apikey_app.command("rotate")
def apikey_rotate(
    tenant: str = tenant_argument(),
    key_id: str = typer.Argument(..., help="密钥编号"),
    grace: str = typer.Option("0s", "--grace", help="旧密钥继续有效的宽限期（例如 10m，最长 24h；默认立即失效）"),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """轮换 API 密钥：生成新密钥（只显示一次），旧密钥立即或在宽限期后失效。"""
    from yinsi.auth.apikeys import ApiKeyService

    with _friendly(as_json):
        period = _duration(grace)
        admin = _staff(url, tenant)
        with ApiKeyService(url) as svc:
            token = svc.rotate(admin, tenant, key_id, grace=period)
    if as_json:
        _print_json({"ok": True, "key_id": key_id, "token": token, "grace_seconds": int(period.total_seconds())})
    else:
        _show_token(key_id, token, "已轮换")


@apikey_app.command("revoke")
def apikey_revoke(tenant: str = tenant_argument(), key_id: str = typer.Argument(..., help="密钥编号"),
                  url: str | None = url_option(), as_json: bool = json_option()) -> None:
    """吊销 API 密钥（不可恢复；其他服务进程在 5 秒内停止接受）。"""
    from yinsi.auth.apikeys import ApiKeyService

    with _friendly(as_json):
        admin = _staff(url, tenant)
        with ApiKeyService(url) as svc:
            svc.revoke(admin, tenant, key_id)
    if as_json:
        _print_json({"ok": True, "key_id": key_id, "status": "revoked"})
    else:
        console.print(f"[green]已吊销[/green] API 密钥 {escape(key_id)}", highlight=False)


# --- deep-link keys ------------------------------------------------------------------------------


def _print_link(info: dict[str, Any]) -> None:
    console.print(f"租户 {escape(info['tenant'])} 的跳转登录密钥：{escape(info['algorithm'])}"
                  f"（{'Yinsi 生成的共享密钥' if info['kind'] == 'hs256' else '应用公钥'}）", highlight=False)
    console.print(f"  指纹（RFC 7638）：{escape(info['fingerprint'])}", highlight=False)
    console.print(f"  令牌须带：iss={escape(info['issuer'])}，aud={escape(info['audience'])}，sub、iat、jti，"
                  f"exp 不晚于 iat 后 {info['max_lifetime_seconds'] // 60} 分钟", highlight=False)


@applink_app.command("set")
def applink_set(
    tenant: str = tenant_argument(),
    generate_hs256: bool = typer.Option(False, "--generate-hs256", help="由 Yinsi 生成 HS256 共享密钥（只显示一次）"),
    public_key: Path | None = typer.Option(None, "--public-key", help="应用的公钥文件（PEM 或 JWK；ES256 或 EdDSA）",
                                           exists=True, dir_okay=False, readable=True),
    issuer: str | None = typer.Option(None, "--issuer", help="令牌的 iss（默认为租户标识）"),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """设置应用签发跳转登录令牌所用的密钥（替换原有密钥）。"""
    from yinsi.auth.applinks import AppLinkService

    if generate_hs256 == (public_key is not None):
        raise _fail("须且只能选择一种：--generate-hs256 或 --public-key 文件", EXIT_ERROR, as_json)
    with _friendly(as_json):
        admin = _staff(url, tenant)
        with AppLinkService(url) as svc:
            if public_key is not None:
                info = svc.set_public_key(admin, tenant, public_key.read_text(encoding="utf-8"), issuer=issuer)
            else:
                info = svc.set_hs256(admin, tenant, issuer=issuer)
    if as_json:
        _print_json({"ok": True, **info})
        return
    _print_link(info)
    if "secret" in info:
        console.print("HS256 共享密钥只显示这一次，请立即存入应用服务端（HMAC 密钥即下面这串文字的 ASCII 字节）：",
                      highlight=False)
        print(info["secret"])


@applink_app.command("show")
def applink_show(tenant: str = tenant_argument(), url: str | None = url_option(),
                 as_json: bool = json_option()) -> None:
    """查看租户的跳转登录密钥（不显示共享密钥）。"""
    from yinsi.auth.applinks import AppLinkService

    with _friendly(as_json):
        admin = _staff(url, tenant)
        with AppLinkService(url) as svc:
            info = svc.show(admin, tenant)
    if info is None:
        raise _fail(f"租户 {tenant} 尚未设置跳转登录密钥：yinsi applink set {tenant} --generate-hs256", EXIT_ERROR,
                    as_json)
    if as_json:
        _print_json({"ok": True, **info})
    else:
        _print_link(info)
