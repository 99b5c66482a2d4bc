"""``yinsi staff …`` (accounts, roles, masked views, unmasking, approvals, exports, API tokens) and
``yinsi alerts …`` (abnormal logins and registrations). Chinese for people, JSON with ``--json``; a refusal
exits 1, bad input or a configuration problem exits 2, never with a traceback.

Every command that acts as staff runs as the logged-in member of staff (``yinsi login``, or
``YINSI_STAFF_TOKEN``; :func:`yinsi.cli.identity.current_staff`) and calls the role-checked use cases of
:mod:`yinsi.staff.actions`; nobody is named on the command line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from yinsi.audit import AuditError, AuditLog
from yinsi.auth.principals import AuthError, StaffPrincipal
from yinsi.cli.apps import app, console, err_console, json_option, tenant_argument, url_option
from yinsi.cli.db_cmds import BEIJING
from yinsi.cli.errors import db_error_message, redact
from yinsi.cli.identity import current_staff
from yinsi.cli.login_cmds import read_password
from yinsi.config import database_url, is_default_database
from yinsi.protect.errors import ProtectError
from yinsi.protect.keys import KeyRing, load_master_key
from yinsi.staff import actions
from yinsi.staff.anomaly import (
    DEFAULT_RULES,
    STATUS_LABELS,
    ActivityMonitor,
    AlertStatus,
    RateRule,
    apply_overrides,
    load_rules,
    parse_event,
)
from yinsi.staff.errors import AccessDenied, InvalidInput, NotFound, RequestStateError, SeparationOfDuties, StaffError
from yinsi.staff.roles import ACTION_LABELS, RIGHTS, Role, StaffAction, StaffMember
from yinsi.staff.service import AccessRequest, StaffService
from yinsi.storage import InvalidDatabaseUrl, StorageError, ensure_current, make_engine, make_session_factory

staff_app = typer.Typer(help="工作人员访问控制：角色、掩码查看、申请与审批、批量导出（S3、S4、S6）。", no_args_is_help=True)
alerts_app = typer.Typer(help="异常行为监测：登录与注册事件、频率规则、告警。", no_args_is_help=True)
token_app = typer.Typer(help="工作人员 API 令牌：创建、列出、吊销（须以验证过动态验证码的会话登录）。", no_args_is_help=True)
app.add_typer(staff_app, name="staff")
app.add_typer(alerts_app, name="alerts")
staff_app.add_typer(token_app, name="token")

EXIT_REFUSED = 1
EXIT_ERROR = 2


# --- options shared by several commands (a fresh Typer parameter for each use) ---------------------




def _check_tenant_option() -> Any:
    return typer.Option(None, "--tenant", help="租户标识（可选，用于核对）")


def _staff_id_argument() -> Any:
    return typer.Argument(..., help="工作人员标识")


def _role_argument() -> Any:
    return typer.Argument(..., help="角色")


def _request_id_argument() -> Any:
    return typer.Argument(..., help="申请编号")


def _rules_file_option() -> Any:
    return typer.Option(None, "--rules", help="规则文件（YAML 或 JSON）")


def _rule_overrides_option() -> Any:
    return typer.Option([], "--rule", help="调整规则：名称=阈值/时间窗，如 login_failures_per_account=3/5m")


def _error(message: str) -> None:
    err_console.print(f"[red]错误[/red] {escape(redact(message))}", highlight=False, soft_wrap=True)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _fail(message: str, code: int, as_json: bool, rule: str | None = None) -> typer.Exit:
    if as_json:
        _print_json({"ok": False, "error": redact(message), "rule": rule})
    _error(message)
    return typer.Exit(code)


@contextmanager
def _friendly(as_json: bool) -> Iterator[None]:
    """Expected failures become a Chinese message (and JSON with --json) and an exit code."""
    try:
        yield
    except AccessDenied as exc:
        raise _fail(str(exc), EXIT_REFUSED, as_json, exc.rule) from None
    except AuthError as exc:
        raise _fail(exc.detail, EXIT_REFUSED, as_json, exc.rule) from None
    except SeparationOfDuties as exc:
        raise _fail(str(exc), EXIT_REFUSED, as_json, exc.rule) from None
    except RequestStateError as exc:
        raise _fail(str(exc), EXIT_REFUSED, as_json) from None
    except (InvalidInput, NotFound, StaffError, ProtectError, AuditError, InvalidDatabaseUrl, StorageError) as exc:
        raise _fail(str(exc), EXIT_ERROR, as_json) from None
    except SQLAlchemyError as exc:
        raise _fail(db_error_message(exc), EXIT_ERROR, as_json) from None
    except OSError as exc:
        raise _fail(f"文件操作失败：{exc.strerror or exc}（{exc.filename or ''}）", EXIT_ERROR, as_json) from None


@dataclass
class _Ctx:
    staff: StaffService
    ring: KeyRing | None
    audit: AuditLog
    url: str


@contextmanager
def _services(url: str | None, *, keys: bool, consent: bool = False) -> Iterator[_Ctx]:
    target = url or database_url()
    ensure_current(target, auto_upgrade=is_default_database(target))
    engine = make_engine(target)
    with ExitStack() as stack:
        stack.callback(engine.dispose)
        sessions = make_session_factory(engine)
        audit = AuditLog(sessions)
        ring = KeyRing(sessions, load_master_key()) if keys else None
        if ring is not None:
            stack.callback(ring.forget)
        reporter = None
        if consent:
            from yinsi.services.consent import ConsentService

            reporter = ConsentService(target)
            stack.callback(reporter.close)
        yield _Ctx(StaffService(sessions, audit, ring, consent=reporter), ring, audit, target)


def _me(url: str | None, tenant: str | None, as_json: bool) -> StaffPrincipal:
    """The logged-in member of staff (of ``tenant`` when given); exits 1 with a Chinese message otherwise."""
    return current_staff(url, tenant, as_json=as_json)


def _print_totp(secret: str, tenant: str, staff_id: str) -> None:
    from yinsi.auth.staff import totp_uri

    console.print("动态验证码密钥（只显示这一次，请立即添加到认证器应用，勿截图外传）：", highlight=False)
    console.print(f"  密钥：{secret}", highlight=False)
    console.print(f"  otpauth URI：{escape(totp_uri(secret, tenant, staff_id))}", highlight=False, soft_wrap=True)


def _beijing(ts: datetime | None) -> str:
    return "—" if ts is None else ts.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _member_dict(m: StaffMember) -> dict[str, Any]:
    return {"tenant": m.tenant, "staff_id": m.staff_id, "name": m.name, "active": m.active,
            "roles": sorted(r.value for r in m.roles), "person_id": m.person_id}


def _print_member(m: StaffMember, verb: str) -> None:
    console.print(f"[green]{verb}[/green] {escape(m.staff_id)}（{escape(m.name)}，租户 {escape(m.tenant)}）："
                  f"{escape(m.role_labels)}{'' if m.active else '（已停用）'}", highlight=False)


def _emit_member(m: StaffMember, verb: str, as_json: bool) -> None:
    """A command's result about one staff member: JSON with --json, else one Chinese line."""
    if as_json:
        _print_json({"ok": True, "staff": _member_dict(m)})
    else:
        _print_member(m, verb)


# --- staff and roles -----------------------------------------------------------------------------


def _password_stdin_option() -> Any:
    return typer.Option(False, "--password-stdin", help="从标准输入读取口令（一行），不提示")


def _emit_account(member: StaffMember, secret: str, verb: str, as_json: bool) -> None:
    from yinsi.auth.staff import totp_uri

    if as_json:
        _print_json({"ok": True, "staff": _member_dict(member), "totp_secret": secret,
                     "totp_uri": totp_uri(secret, member.tenant, member.staff_id)})
        return
    _print_member(member, verb)
    _print_totp(secret, member.tenant, member.staff_id)


@staff_app.command("bootstrap")
def staff_bootstrap(
    tenant: str = tenant_argument(),
    staff_id: str = typer.Argument(..., help="首位管理员的工作人员标识（字母、数字或 _ . @ -）"),
    name: str = typer.Option(..., "--name", help="姓名"),
    contact: str | None = typer.Option(None, "--contact", help="手机号码或电子邮箱（只保存盲索引，用于识别同一人的多个账号）"),
    password_stdin: bool = _password_stdin_option(),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """创建租户的首位管理员（只能一次）：设置口令，显示动态验证码密钥。此后由管理员登录后添加其他人员。"""
    from yinsi.auth.staff import StaffAuthService

    with _friendly(as_json):
        password = read_password(password_stdin, confirm=True)
        with StaffAuthService(url) as auth:
            member, secret = auth.bootstrap(tenant, staff_id, name, password, contact=contact)
    _emit_account(member, secret, "已创建首位管理员", as_json)
    if not as_json:
        console.print(f"下一步：yinsi login {escape(tenant)} {escape(staff_id)} --totp 验证码", highlight=False)


@staff_app.command("add")
def staff_add(
    tenant: str = tenant_argument(),
    staff_id: str = typer.Argument(..., help="工作人员标识（字母、数字或 _ . @ -）"),
    name: str = typer.Option(..., "--name", help="姓名"),
    role: list[str] = typer.Option([], "--role", help="角色（可重复）：privacy_officer、customer_service、"
                                   "security_officer、auditor、administrator"),
    person: str | None = typer.Option(None, "--person", help="此账号所属人员的编号（同一人的另一个账号，见 staff list）"),
    contact: str | None = typer.Option(None, "--contact", help="手机号码或电子邮箱（只保存盲索引；相同联系方式即同一人）"),
    password_stdin: bool = _password_stdin_option(),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """添加工作人员账号（须由登录的管理员执行）：设置初始口令，显示其动态验证码密钥（只显示一次）。"""
    from yinsi.auth.staff import StaffAuthService

    me = _me(url, tenant, as_json)
    with _friendly(as_json):
        password = read_password(password_stdin, confirm=True, prompt="新账号的初始口令")
        with StaffAuthService(url) as auth:
            member, secret = actions.add_staff(me, auth, staff_id, name, role, password, person_id=person,
                                               contact=contact)
    _emit_account(member, secret, "已添加", as_json)


@staff_app.command("password")
def staff_password(
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="从标准输入读取两行：原口令、新口令"),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """修改本人的口令（须输入原口令）；本账号的其他会话随即失效。"""
    from yinsi.auth.staff import StaffAuthService

    me = _me(url, None, as_json)
    with _friendly(as_json):
        old = read_password(password_stdin, prompt="原口令")
        new = read_password(password_stdin, confirm=not password_stdin, prompt="新口令")
        with StaffAuthService(url) as auth:
            auth.set_password(me, old, new)
    if as_json:
        _print_json({"ok": True})
    else:
        console.print("[green]已修改口令[/green]", highlight=False)


@staff_app.command("reset-password")
def staff_reset_password(
    tenant: str = tenant_argument(),
    staff_id: str = _staff_id_argument(),
    new_totp: bool = typer.Option(False, "--new-totp", help="同时生成新的动态验证码密钥（如认证器丢失）"),
    password_stdin: bool = _password_stdin_option(),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """管理员重置另一名工作人员的口令（解除锁定，结束其全部会话）。"""
    from yinsi.auth.staff import StaffAuthService

    me = _me(url, tenant, as_json)
    with _friendly(as_json):
        password = read_password(password_stdin, confirm=True, prompt="新口令")
        with StaffAuthService(url) as auth:
            secret = auth.reset_password(me, staff_id, password, new_totp=new_totp)
    if as_json:
        _print_json({"ok": True, "totp_secret": secret})
        return
    console.print(f"[green]已重置口令[/green] {escape(staff_id)}；其会话已全部失效", highlight=False)
    if secret:
        _print_totp(secret, tenant, staff_id)


@staff_app.command("list")
def staff_list(
    tenant: str = tenant_argument(),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """列出租户的工作人员与角色（须以该租户的工作人员登录）。"""
    me = _me(url, tenant, as_json)
    with _friendly(as_json), _services(url, keys=False) as ctx:
        members = actions.list_staff(me, ctx.staff)
    if as_json:
        _print_json([_member_dict(m) for m in members])
        return
    if not members:
        console.print(f"租户 {escape(tenant)} 还没有工作人员；请先创建首位管理员：yinsi staff bootstrap "
                      f"{escape(tenant)} ID --name 姓名", highlight=False)
        return
    table = Table(title=f"租户 {escape(tenant)} 的工作人员")
    for col in ("标识", "姓名", "人员编号", "角色", "状态"):
        table.add_column(col)
    for m in members:
        table.add_row(escape(m.staff_id), escape(m.name), escape(m.person_id or "—"), escape(m.role_labels),
                      "在岗" if m.active else "已停用")
    console.print(table)


class _RoleChange(Protocol):
    def __call__(self, principal: StaffPrincipal, service: StaffService, staff_id: str, role: str, /) -> StaffMember: ...


def _role_command(name: str, doc: str, verb: str, change: _RoleChange) -> Callable[..., None]:
    """``staff grant`` and ``staff revoke``: the same arguments, a different change of roles."""

    def command(
        tenant: str = tenant_argument(),
        staff_id: str = _staff_id_argument(),
        role: str = _role_argument(),
        url: str | None = url_option(),
        as_json: bool = json_option(),
    ) -> None:
        me = _me(url, tenant, as_json)
        with _friendly(as_json), _services(url, keys=False) as ctx:
            member = change(me, ctx.staff, staff_id, role)
        _emit_member(member, verb, as_json)

    command.__doc__ = doc
    command.__name__ = command.__qualname__ = f"staff_{name}"
    return staff_app.command(name)(command)


staff_grant = _role_command("grant", "授予角色（遵守职责分离：管理员、操作员、审计员不得由同一人兼任）。", "已授予",
                            actions.grant)
staff_revoke = _role_command("revoke", "收回角色。", "已收回", actions.revoke)


@staff_app.command("deactivate")
def staff_deactivate(
    tenant: str = tenant_argument(),
    staff_id: str = _staff_id_argument(),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """停用工作人员：此后其一切操作与登录都被拒绝。"""
    me = _me(url, tenant, as_json)
    with _friendly(as_json), _services(url, keys=False) as ctx:
        member = actions.deactivate(me, ctx.staff, staff_id)
    _emit_member(member, "已停用", as_json)


@staff_app.command("rights")
def staff_rights(as_json: bool = json_option()) -> None:
    """显示各角色的权限矩阵（最小权限，S3）。"""
    if as_json:
        _print_json({r.value: sorted(a.value for a in RIGHTS[r]) for r in Role})
        return
    table = Table(title="角色权限矩阵（✓ 允许）")
    table.add_column("操作")
    for r in Role:
        table.add_column(r.label, justify="center")
    for a in StaffAction:
        table.add_row(ACTION_LABELS[a], *("✓" if a in RIGHTS[r] else "·" for r in Role))
    console.print(table)


# --- access to PI --------------------------------------------------------------------------------


@staff_app.command("view")
def staff_view(
    tenant: str = tenant_argument(),
    subject: str = typer.Argument(..., help="主体标识（应用的用户 ID）"),
    reason: str | None = typer.Option(None, "--reason", help="查看事由（记入审计日志）"),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """查看一个人的个人信息（默认掩码），并记入审计日志。"""
    me = _me(url, tenant, as_json)
    with _friendly(as_json), _services(url, keys=True, consent=True) as ctx:
        view = actions.view_subject(me, ctx.staff, subject, reason=reason)
    if as_json:
        _print_json({"ok": True, **view.to_dict()})
        return
    who = f"主体 {escape(subject)}（假名 {view.pseudonym}）"
    if view.minor:
        who += f"：[yellow]未成年人（{view.age} 周岁）[/yellow]"
    console.print(who, highlight=False)
    table = Table(title="个人信息（已掩码）")
    table.add_column("信息项")
    table.add_column("值")
    for item in view.items:
        table.add_row(f"{item.label}（{item.key}）", escape(item.value))
    console.print(table)
    report = view.report or {}
    consents = report.get("consents") or []
    if consents:
        ct = Table(title="同意记录")
        for col in ("范围", "状态", "种类", "政策版本"):
            ct.add_column(col)
        for c in consents:
            ct.add_row(escape(str(c.get("scope"))), escape(str(c.get("event"))), escape(str(c.get("kind"))),
                       escape(str(c.get("policy"))))
        console.print(ct)
    if report:
        console.print(f"已收集个人信息 {len(report.get('collected') or [])} 项；已向第三方提供 "
                      f"{len(report.get('shared') or [])} 项（双清单：yinsi consent report）", highlight=False)
    console.print(f"已记入审计日志（序号 {view.audit_seq}）", highlight=False)


@staff_app.command("unmask")
def staff_unmask(
    tenant: str = tenant_argument(),
    subject: str = typer.Argument(..., help="主体标识"),
    item: str = typer.Argument(..., help="信息项：mobile_phone、id_card、email、bank_card、passport、birth_date"),
    reason: str = typer.Option("", "--reason", help="事由（必填，记入审计日志）"),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """查看一项未掩码的个人信息：仅个人信息保护负责人，须说明事由，记入审计日志。"""
    me = _me(url, tenant, as_json)
    with _friendly(as_json), _services(url, keys=True) as ctx:
        res = actions.unmask(me, ctx.staff, subject, item, reason)
    if as_json:
        _print_json({"ok": True, **res.to_dict()})
    else:
        console.print(f"{res.item.label}：{escape(res.value)}", highlight=False)
        console.print(f"已记入审计日志（序号 {res.audit_seq}）", highlight=False)


# --- approvals and exports -----------------------------------------------------------------------


def _print_request(req: AccessRequest, verb: str) -> None:
    scope = f"{req.subject_count} 个主体" + (f"（其中未成年人 {req.minor_count} 个）" if req.minor_count else "")
    console.print(f"[green]{verb}[/green] {req.id}：{req.kind_label}，{scope}，状态 {req.status_label}"
                  + (f"，审批人 {escape(req.approver)}" if req.approver else "")
                  + (f"，有效期至 {_beijing(req.expires_at)}" if req.status in ("pending", "approved") else ""),
                  highlight=False)


def _emit_request(req: AccessRequest, verb: str, as_json: bool) -> None:
    """A command's result about one access request: JSON with --json, else one Chinese line."""
    if as_json:
        _print_json({"ok": True, "request": req.to_dict()})
    else:
        _print_request(req, verb)


@staff_app.command("request-export")
def staff_request_export(
    tenant: str = tenant_argument(),
    subjects: list[str] = typer.Argument(None, help="主体标识；配合 --all 时省略"),
    all_subjects: bool = typer.Option(False, "--all", help="导出租户的全部主体"),
    reason: str = typer.Option("", "--reason", help="事由（必填）"),
    item: list[str] = typer.Option([], "--item", help="信息项（可重复）；默认全部"),
    unmasked: bool = typer.Option(False, "--unmasked", help="申请导出未掩码的数据"),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """申请批量导出；须由另一人（另一名个人信息保护负责人）审批（yinsi staff approve）后，由申请人执行导出。"""
    me = _me(url, tenant, as_json)
    with _friendly(as_json):
        if all_subjects == bool(subjects):
            raise InvalidInput("请指定主体标识，或使用 --all（二者选一）")
        with _services(url, keys=True) as ctx:
            req = actions.request_export(me, ctx.staff, None if all_subjects else subjects, reason=reason,
                                         items=item or None, unmasked=unmasked)
    _emit_request(req, "已提交申请", as_json)


@staff_app.command("request-minor-access")
def staff_request_minor_access(
    tenant: str = tenant_argument(),
    subject: str = typer.Argument(..., help="未成年人的主体标识"),
    reason: str = typer.Option("", "--reason", help="事由（必填）"),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """申请访问未成年人的个人信息（S6）；须由另一名个人信息保护负责人审批。"""
    me = _me(url, tenant, as_json)
    with _friendly(as_json), _services(url, keys=True) as ctx:
        req = actions.request_minor_access(me, ctx.staff, subject, reason=reason)
    _emit_request(req, "已提交申请", as_json)


@staff_app.command("requests")
def staff_requests(
    tenant: str = tenant_argument(),
    status: str | None = typer.Option(None, "--status", help="pending、approved、rejected、used、expired"),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """列出审批申请：个人信息保护负责人看到全部，其他人员只看到本人的申请。"""
    me = _me(url, tenant, as_json)
    with _friendly(as_json), _services(url, keys=False) as ctx:
        reqs = actions.list_requests(me, ctx.staff, status=status)
    if as_json:
        _print_json([r.to_dict() for r in reqs])
        return
    table = Table(title=f"租户 {escape(tenant)} 的审批申请")
    for col in ("编号", "类型", "申请人", "主体数", "未成年人", "事由", "状态", "审批人", "有效期至"):
        table.add_column(col)
    for r in reqs:
        table.add_row(r.id, r.kind_label, escape(r.requester), str(r.subject_count), str(r.minor_count),
                      escape(r.reason), r.status_label, escape(r.approver or "—"), _beijing(r.expires_at))
    console.print(table)


@staff_app.command("approve")
def staff_approve(
    request_id: str = _request_id_argument(),
    note: str | None = typer.Option(None, "--note", help="审批意见"),
    masked_only: bool = typer.Option(False, "--masked-only", help="只批准掩码导出"),
    tenant: str | None = _check_tenant_option(),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """批准申请：申请人本人（包括其本人的其他账号）不能审批。"""
    me = _me(url, tenant, as_json)
    with _friendly(as_json), _services(url, keys=False) as ctx:
        req = actions.approve(me, ctx.staff, request_id, note=note, masked_only=masked_only)
    _emit_request(req, "已批准", as_json)


@staff_app.command("reject")
def staff_reject(
    request_id: str = _request_id_argument(),
    note: str | None = typer.Option(None, "--note", help="驳回理由"),
    tenant: str | None = _check_tenant_option(),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """驳回申请。"""
    me = _me(url, tenant, as_json)
    with _friendly(as_json), _services(url, keys=False) as ctx:
        req = actions.reject(me, ctx.staff, request_id, note=note)
    _emit_request(req, "已驳回", as_json)


@staff_app.command("export")
def staff_export(
    request_id: str = typer.Argument(..., help="已批准的申请编号"),
    output: Path = typer.Option(..., "--output", "-o", help="输出文件（.csv 或 .json）"),
    fmt: str | None = typer.Option(None, "--format", help="csv 或 json；默认按文件扩展名"),
    force: bool = typer.Option(False, "--force", help="覆盖已存在的文件"),
    tenant: str | None = _check_tenant_option(),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """执行已批准的批量导出（每个审批只能导出一次），记入审计日志。"""
    me = _me(url, tenant, as_json)
    with _friendly(as_json), _services(url, keys=True) as ctx:
        res = actions.export_approved(me, ctx.staff, request_id, output, fmt=fmt, overwrite=force)
    if as_json:
        _print_json({"ok": True, **res.to_dict()})
    else:
        kind = "掩码" if res.masked else "[yellow]未掩码[/yellow]"
        console.print(f"[green]已导出[/green] {res.rows} 行（{kind}）到 {escape(str(res.path))}；"
                      f"SHA-256 {res.sha256[:16]}…；已记入审计日志（序号 {res.audit_seq}）", highlight=False)
        if not res.masked:
            console.print("文件含未掩码的个人信息（权限 0600）：用毕请安全删除。", highlight=False)


# --- alerts ------------------------------------------------------------------------------------


def _rules(rules_file: Path | None, overrides: list[str]) -> tuple[RateRule, ...]:
    base = load_rules(rules_file) if rules_file else DEFAULT_RULES
    return apply_overrides(base, overrides)


@alerts_app.command("rules")
def alerts_rules(
    rules_file: Path | None = _rules_file_option(),
    rule: list[str] = _rule_overrides_option(),
    as_json: bool = json_option(),
) -> None:
    """显示生效的频率规则（默认规则，或按规则文件与 --rule 调整后的）。"""
    with _friendly(as_json):
        rules = _rules(rules_file, rule)
    if as_json:
        _print_json([r.to_dict() for r in rules])
        return
    table = Table(title="异常行为规则")
    for col in ("名称", "说明", "阈值", "时间窗（秒）"):
        table.add_column(col)
    for r in rules:
        table.add_row(r.name, r.describe(), str(r.threshold), str(r.window_seconds))
    console.print(table)


@alerts_app.command("ingest")
def alerts_ingest(
    file: Path = typer.Argument(..., help="事件文件（JSON Lines：每行一个事件）"),
    tenant: str | None = typer.Option(None, "--tenant", help="租户标识；省略时取每行的 tenant 字段"),
    rules_file: Path | None = _rules_file_option(),
    rule: list[str] = _rule_overrides_option(),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """导入应用的登录与注册事件并按规则生成告警。账号、设备、IP 以假名存储，从不明文保存。"""
    with _friendly(as_json):
        rules = _rules(rules_file, rule)
        by_tenant: dict[str, list[Any]] = {}
        problems: list[str] = []
        with file.open(encoding="utf-8") as fh:
            for no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    if not isinstance(data, dict):
                        raise InvalidInput("事件须为 JSON 对象")
                    owner = tenant or data.get("tenant")
                    if not owner or not isinstance(owner, str):
                        raise InvalidInput("缺少租户（--tenant 或每行的 tenant 字段）")
                    by_tenant.setdefault(owner, []).append(parse_event(data))
                except json.JSONDecodeError:
                    problems.append(f"第 {no} 行：不是合法的 JSON")
                except InvalidInput as exc:
                    problems.append(f"第 {no} 行：{exc}")
        if problems:
            more = f"（另有 {len(problems) - 10} 处）" if len(problems) > 10 else ""
            raise InvalidInput("事件文件有误，未导入任何事件：\n" + "\n".join(problems[:10]) + more)
        results = {}
        with _services(url, keys=True) as ctx:
            monitor = ActivityMonitor(ctx.staff.sessions, ctx.ring, ctx.audit, rules=rules)
            for owner, events in by_tenant.items():
                results[owner] = monitor.ingest_many(owner, events)
    if as_json:
        _print_json({"ok": True, "tenants": {t: r.to_dict() for t, r in results.items()}})
        return
    for owner, res in results.items():
        console.print(f"租户 {escape(owner)}：导入 {res.events} 个事件，新告警 {len(res.raised)} 条，"
                      f"更新告警 {len(res.updated)} 条", highlight=False)
        for a in res.raised:
            console.print(f"  [red]告警 #{a.id}[/red] {a.rule}：{a.key_kind} {a.key_hash} 在 "
                          f"{_beijing(a.first_at)} 至 {_beijing(a.last_at)} 间 {a.count} 次（阈值 {a.threshold}）",
                          highlight=False)


@alerts_app.command("list")
def alerts_list(
    tenant: str | None = typer.Option(None, "--tenant", help="租户标识（默认为登录的租户）"),
    status: str = typer.Option("open", "--status", help="open、acknowledged 或 all"),
    limit: int = typer.Option(100, "--limit", min=1, help="最多显示的条数"),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """列出告警（最新在前）；仅安全负责人可查看。"""
    me = _me(url, tenant, as_json)
    tenant = me.tenant
    with _friendly(as_json):
        if status not in ("open", "acknowledged", "all"):
            raise InvalidInput("--status 可选：open、acknowledged、all")
        with _services(url, keys=False) as ctx:
            monitor = ActivityMonitor(ctx.staff.sessions, None, ctx.audit)
            alerts = actions.list_alerts(me, monitor, status=None if status == "all" else status, limit=limit)
    if as_json:
        _print_json([a.to_dict() for a in alerts])
        return
    if not alerts:
        console.print("没有告警。", highlight=False)
        return
    table = Table(title=f"租户 {escape(tenant)} 的告警")
    for col in ("编号", "规则", "对象", "假名", "次数/阈值", "时间窗", "首次", "最近", "状态"):
        table.add_column(col)
    for a in alerts:
        table.add_row(str(a.id), a.rule, a.key_kind, a.key_hash, f"{a.count}/{a.threshold}", f"{a.window_seconds}s",
                      _beijing(a.first_at), _beijing(a.last_at),
                      STATUS_LABELS.get(AlertStatus(a.status), a.status)
                      + (f"（{escape(a.acknowledged_by)}）" if a.acknowledged_by else ""))
    console.print(table)


@alerts_app.command("ack")
def alerts_ack(
    alert_id: int = typer.Argument(..., help="告警编号"),
    note: str | None = typer.Option(None, "--note", help="处理备注"),
    tenant: str | None = _check_tenant_option(),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """确认告警（记入审计日志）；仅安全负责人。"""
    me = _me(url, tenant, as_json)
    with _friendly(as_json), _services(url, keys=False) as ctx:
        monitor = ActivityMonitor(ctx.staff.sessions, None, ctx.audit)
        alert = actions.ack_alert(me, monitor, alert_id, note=note)
    if as_json:
        _print_json({"ok": True, "alert": alert.to_dict()})
    else:
        console.print(f"[green]已确认[/green] 告警 #{alert.id}（{alert.rule}）", highlight=False)


# --- staff API tokens ------------------------------------------------------------------------------


def _ttl(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``: a token's lifetime."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    value, unit = text[:-1], text[-1:].lower()
    if unit not in units or not value.isdigit():
        raise InvalidInput(f"有效期应为数字加单位 d、h 或 m，例如 30d：{text!r}")
    return timedelta(**{units[unit]: int(value)})


@token_app.command("create")
def token_create(
    name: str = typer.Option(..., "--name", help="令牌名称（用途，例如“工单系统”）"),
    ttl: str = typer.Option("30d", "--ttl", help="有效期：数字加 d、h 或 m，最长 90d"),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """创建工作人员 API 令牌（以本人身份调用 API 或命令行，YINSI_STAFF_TOKEN）；令牌只显示这一次。"""
    from yinsi.auth.staff import StaffAuthService

    me = _me(url, None, as_json)
    with _friendly(as_json):
        lifetime = _ttl(ttl)
        with StaffAuthService(url) as auth:
            token = auth.create_api_token(me, name=name, ttl=lifetime)
    if as_json:
        _print_json({"ok": True, "token": token})
        return
    console.print(f"[green]已创建 API 令牌[/green]（{escape(name)}，有效期 {escape(ttl)}），只显示这一次：", highlight=False)
    print(token)


@token_app.command("list")
def token_list(url: str | None = url_option(), as_json: bool = json_option()) -> None:
    """列出本人的 API 令牌（管理员看到本租户全部）；不显示令牌本身。"""
    from yinsi.auth.staff import StaffAuthService

    me = _me(url, None, as_json)
    with _friendly(as_json), StaffAuthService(url) as auth:
        tokens = auth.list_api_tokens(me)
    if as_json:
        _print_json([t.to_dict() for t in tokens])
        return
    if not tokens:
        console.print("没有有效的 API 令牌。", highlight=False)
        return
    table = Table(title="API 令牌")
    for col in ("编号", "工作人员", "名称", "创建", "到期"):
        table.add_column(col)
    for t in tokens:
        table.add_row(t.id, escape(t.staff_id), escape(t.name or "—"), _beijing(t.created_at), _beijing(t.expires_at))
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: str = typer.Argument(..., help="令牌编号（tok_…，见 staff token list）"),
    url: str | None = url_option(),
    as_json: bool = json_option(),
) -> None:
    """吊销 API 令牌（本人的；管理员可吊销本租户任何令牌）。"""
    from yinsi.auth.staff import StaffAuthService

    me = _me(url, None, as_json)
    with _friendly(as_json), StaffAuthService(url) as auth:
        auth.revoke_api_token(me, token_id)
    if as_json:
        _print_json({"ok": True})
    else:
        console.print(f"[green]已吊销[/green] {escape(token_id)}", highlight=False)
