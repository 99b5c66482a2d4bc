"""``yinsi staff …`` (staff, roles, masked views, unmasking, approvals, exports) and ``yinsi alerts …``
(abnormal logins and registrations). Chinese for people, JSON with ``--json``; a refusal exits 1, bad input
or a configuration problem exits 2, never with a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from yinsi.audit import AuditError, AuditLog
from yinsi.cli.apps import app, console, err_console
from yinsi.cli.db_cmds import BEIJING
from yinsi.config import database_url, is_default_database
from yinsi.protect.errors import ProtectError
from yinsi.protect.keys import KeyRing, load_master_key
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
app.add_typer(staff_app, name="staff")
app.add_typer(alerts_app, name="alerts")

URL_HELP = "数据库地址（SQLAlchemy URL）；默认取环境变量 YINSI_DATABASE_URL，否则为 ./.yinsi/yinsi.db"
AS_HELP = "执行操作的工作人员标识"
JSON_HELP = "以 JSON 输出"
EXIT_REFUSED = 1
EXIT_ERROR = 2


# --- options shared by several commands (a fresh Typer parameter for each use) ---------------------


def _url_option() -> Any:
    return typer.Option(None, "--url", help=URL_HELP)


def _json_option() -> Any:
    return typer.Option(False, "--json", help=JSON_HELP)


def _as_option(help_text: str = AS_HELP) -> Any:
    """The acting staff member (``--as``, required)."""
    return typer.Option(..., "--as", help=help_text)


def _tenant_argument() -> Any:
    return typer.Argument(..., help="租户标识")


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
    err_console.print(f"[red]错误[/red] {escape(message)}", highlight=False, soft_wrap=True)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _fail(message: str, code: int, as_json: bool, rule: str | None = None) -> typer.Exit:
    if as_json:
        _print_json({"ok": False, "error": message, "rule": rule})
    _error(message)
    return typer.Exit(code)


@contextmanager
def _friendly(as_json: bool) -> Iterator[None]:
    """Expected failures become a Chinese message (and JSON with --json) and an exit code."""
    try:
        yield
    except AccessDenied as exc:
        raise _fail(str(exc), EXIT_REFUSED, as_json, exc.rule) from None
    except SeparationOfDuties as exc:
        raise _fail(str(exc), EXIT_REFUSED, as_json, exc.rule) from None
    except RequestStateError as exc:
        raise _fail(str(exc), EXIT_REFUSED, as_json) from None
    except (InvalidInput, NotFound, StaffError, ProtectError, AuditError, InvalidDatabaseUrl, StorageError) as exc:
        raise _fail(str(exc), EXIT_ERROR, as_json) from None
    except SQLAlchemyError as exc:
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
        raise _fail(f"数据库操作失败：{first}", EXIT_ERROR, as_json) from None
    except OSError as exc:
        raise _fail(f"文件操作失败：{exc.strerror or exc}（{exc.filename or ''}）", EXIT_ERROR, as_json) from None


@dataclass
class _Ctx:
    staff: StaffService
    ring: KeyRing | None
    audit: AuditLog


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
        yield _Ctx(StaffService(sessions, audit, ring, consent=reporter), ring, audit)


def _beijing(ts: datetime | None) -> str:
    return "—" if ts is None else ts.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _member_dict(m: StaffMember) -> dict[str, Any]:
    return {"tenant": m.tenant, "staff_id": m.staff_id, "name": m.name, "active": m.active,
            "roles": sorted(r.value for r in m.roles)}


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


@staff_app.command("add")
def staff_add(
    tenant: str = _tenant_argument(),
    staff_id: str = typer.Argument(..., help="工作人员标识（字母、数字或 _ . @ -）"),
    name: str = typer.Option(..., "--name", help="姓名"),
    role: list[str] = typer.Option([], "--role", help="角色（可重复）：privacy_officer、customer_service、"
                                   "security_officer、auditor、administrator"),
    as_staff: str | None = typer.Option(None, "--as", help="执行操作的管理员；租户还没有工作人员时省略（首位管理员）"),
    url: str | None = _url_option(),
    as_json: bool = _json_option(),
) -> None:
    """添加工作人员。租户的第一位工作人员须为管理员（不带 --as）；此后由管理员添加（--as 管理员）。"""
    with _friendly(as_json), _services(url, keys=False) as ctx:
        member = ctx.staff.add_staff(tenant, staff_id, name, role, actor=as_staff)
    _emit_member(member, "已添加", as_json)


@staff_app.command("list")
def staff_list(
    tenant: str = _tenant_argument(),
    url: str | None = _url_option(),
    as_json: bool = _json_option(),
) -> None:
    """列出租户的工作人员与角色。"""
    with _friendly(as_json), _services(url, keys=False) as ctx:
        members = ctx.staff.list_staff(tenant)
    if as_json:
        _print_json([_member_dict(m) for m in members])
        return
    if not members:
        console.print(f"租户 {escape(tenant)} 还没有工作人员；请先添加管理员：yinsi staff add {escape(tenant)} ID "
                      "--name 姓名 --role administrator", highlight=False)
        return
    table = Table(title=f"租户 {escape(tenant)} 的工作人员")
    for col in ("标识", "姓名", "角色", "状态"):
        table.add_column(col)
    for m in members:
        table.add_row(escape(m.staff_id), escape(m.name), escape(m.role_labels), "在岗" if m.active else "已停用")
    console.print(table)


class _RoleChange(Protocol):
    def __call__(self, service: StaffService, tenant: str, staff_id: str, role: str, /, *, actor: str) -> StaffMember: ...


def _role_command(name: str, doc: str, verb: str, change: _RoleChange) -> Callable[..., None]:
    """``staff grant`` and ``staff revoke``: the same arguments, a different change of roles."""

    def command(
        tenant: str = _tenant_argument(),
        staff_id: str = _staff_id_argument(),
        role: str = _role_argument(),
        as_staff: str = _as_option("执行操作的管理员"),
        url: str | None = _url_option(),
        as_json: bool = _json_option(),
    ) -> None:
        with _friendly(as_json), _services(url, keys=False) as ctx:
            member = change(ctx.staff, tenant, staff_id, role, actor=as_staff)
        _emit_member(member, verb, as_json)

    command.__doc__ = doc
    command.__name__ = command.__qualname__ = f"staff_{name}"
    return staff_app.command(name)(command)


staff_grant = _role_command("grant", "授予角色（遵守职责分离：管理员、操作员、审计员不得由同一人兼任）。", "已授予",
                            StaffService.grant)
staff_revoke = _role_command("revoke", "收回角色。", "已收回", StaffService.revoke)


@staff_app.command("deactivate")
def staff_deactivate(
    tenant: str = _tenant_argument(),
    staff_id: str = _staff_id_argument(),
    as_staff: str = _as_option("执行操作的管理员"),
    url: str | None = _url_option(),
    as_json: bool = _json_option(),
) -> None:
    """停用工作人员：此后其一切操作都被拒绝。"""
    with _friendly(as_json), _services(url, keys=False) as ctx:
        member = ctx.staff.deactivate(tenant, staff_id, actor=as_staff)
    _emit_member(member, "已停用", as_json)


@staff_app.command("rights")
def staff_rights(as_json: bool = _json_option()) -> None:
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
    tenant: str = _tenant_argument(),
    subject: str = typer.Argument(..., help="主体标识（应用的用户 ID）"),
    as_staff: str = _as_option(),
    reason: str | None = typer.Option(None, "--reason", help="查看事由（记入审计日志）"),
    url: str | None = _url_option(),
    as_json: bool = _json_option(),
) -> None:
    """查看一个人的个人信息（默认掩码），并记入审计日志。"""
    with _friendly(as_json), _services(url, keys=True, consent=True) as ctx:
        view = ctx.staff.view_subject(tenant, as_staff, subject, reason=reason)
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
    tenant: str = _tenant_argument(),
    subject: str = typer.Argument(..., help="主体标识"),
    item: str = typer.Argument(..., help="信息项：mobile_phone、id_card、email、bank_card、passport、birth_date"),
    as_staff: str = _as_option(),
    reason: str = typer.Option("", "--reason", help="事由（必填，记入审计日志）"),
    url: str | None = _url_option(),
    as_json: bool = _json_option(),
) -> None:
    """查看一项未掩码的个人信息：仅个人信息保护负责人，须说明事由，记入审计日志。"""
    with _friendly(as_json), _services(url, keys=True) as ctx:
        res = ctx.staff.unmask(tenant, as_staff, subject, item, reason)
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
    tenant: str = _tenant_argument(),
    subjects: list[str] = typer.Argument(None, help="主体标识；配合 --all 时省略"),
    all_subjects: bool = typer.Option(False, "--all", help="导出租户的全部主体"),
    as_staff: str = _as_option(),
    reason: str = typer.Option("", "--reason", help="事由（必填）"),
    item: list[str] = typer.Option([], "--item", help="信息项（可重复）；默认全部"),
    unmasked: bool = typer.Option(False, "--unmasked", help="申请导出未掩码的数据"),
    url: str | None = _url_option(),
    as_json: bool = _json_option(),
) -> None:
    """申请批量导出；须由另一名个人信息保护负责人审批（yinsi staff approve）后，由申请人执行导出。"""
    with _friendly(as_json):
        if all_subjects == bool(subjects):
            raise InvalidInput("请指定主体标识，或使用 --all（二者选一）")
        with _services(url, keys=True) as ctx:
            req = ctx.staff.request_export(tenant, as_staff, None if all_subjects else subjects, reason=reason,
                                           items=item or None, unmasked=unmasked)
    _emit_request(req, "已提交申请", as_json)


@staff_app.command("request-minor-access")
def staff_request_minor_access(
    tenant: str = _tenant_argument(),
    subject: str = typer.Argument(..., help="未成年人的主体标识"),
    as_staff: str = _as_option(),
    reason: str = typer.Option("", "--reason", help="事由（必填）"),
    url: str | None = _url_option(),
    as_json: bool = _json_option(),
) -> None:
    """申请访问未成年人的个人信息（S6）；须由另一名个人信息保护负责人审批。"""
    with _friendly(as_json), _services(url, keys=True) as ctx:
        req = ctx.staff.request_minor_access(tenant, as_staff, subject, reason=reason)
    _emit_request(req, "已提交申请", as_json)


@staff_app.command("requests")
def staff_requests(
    tenant: str = _tenant_argument(),
    as_staff: str = _as_option(),
    status: str | None = typer.Option(None, "--status", help="pending、approved、rejected、used、expired"),
    url: str | None = _url_option(),
    as_json: bool = _json_option(),
) -> None:
    """列出审批申请：个人信息保护负责人看到全部，其他人员只看到本人的申请。"""
    with _friendly(as_json), _services(url, keys=False) as ctx:
        reqs = ctx.staff.list_requests(tenant, as_staff, status=status)
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
    as_staff: str = _as_option("审批人（另一名个人信息保护负责人）"),
    note: str | None = typer.Option(None, "--note", help="审批意见"),
    masked_only: bool = typer.Option(False, "--masked-only", help="只批准掩码导出"),
    tenant: str | None = _check_tenant_option(),
    url: str | None = _url_option(),
    as_json: bool = _json_option(),
) -> None:
    """批准申请：申请人本人不能审批。"""
    with _friendly(as_json), _services(url, keys=False) as ctx:
        req = ctx.staff.approve(request_id, as_staff, note=note, masked_only=masked_only, tenant=tenant)
    _emit_request(req, "已批准", as_json)


@staff_app.command("reject")
def staff_reject(
    request_id: str = _request_id_argument(),
    as_staff: str = _as_option("审批人"),
    note: str | None = typer.Option(None, "--note", help="驳回理由"),
    tenant: str | None = _check_tenant_option(),
    url: str | None = _url_option(),
    as_json: bool = _json_option(),
) -> None:
    """驳回申请。"""
    with _friendly(as_json), _services(url, keys=False) as ctx:
        req = ctx.staff.reject(request_id, as_staff, note=note, tenant=tenant)
    _emit_request(req, "已驳回", as_json)


@staff_app.command("export")
def staff_export(
    request_id: str = typer.Argument(..., help="已批准的申请编号"),
    as_staff: str = _as_option("申请人"),
    output: Path = typer.Option(..., "--output", "-o", help="输出文件（.csv 或 .json）"),
    fmt: str | None = typer.Option(None, "--format", help="csv 或 json；默认按文件扩展名"),
    force: bool = typer.Option(False, "--force", help="覆盖已存在的文件"),
    tenant: str | None = _check_tenant_option(),
    url: str | None = _url_option(),
    as_json: bool = _json_option(),
) -> None:
    """执行已批准的批量导出（每个审批只能导出一次），记入审计日志。"""
    with _friendly(as_json), _services(url, keys=True) as ctx:
        res = ctx.staff.export(request_id, as_staff, output, fmt=fmt, overwrite=force, tenant=tenant)
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
    as_json: bool = _json_option(),
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
    url: str | None = _url_option(),
    as_json: bool = _json_option(),
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
    tenant: str = typer.Option(..., "--tenant", help="租户标识"),
    as_staff: str = _as_option("安全负责人"),
    status: str = typer.Option("open", "--status", help="open、acknowledged 或 all"),
    limit: int = typer.Option(100, "--limit", min=1, help="最多显示的条数"),
    url: str | None = _url_option(),
    as_json: bool = _json_option(),
) -> None:
    """列出告警（最新在前）；仅安全负责人可查看。"""
    with _friendly(as_json):
        if status not in ("open", "acknowledged", "all"):
            raise InvalidInput("--status 可选：open、acknowledged、all")
        with _services(url, keys=False) as ctx:
            monitor = ActivityMonitor(ctx.staff.sessions, None, ctx.audit)
            alerts = monitor.alerts(tenant, as_staff, status=None if status == "all" else status, limit=limit)
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
    as_staff: str = _as_option("安全负责人"),
    note: str | None = typer.Option(None, "--note", help="处理备注"),
    tenant: str | None = _check_tenant_option(),
    url: str | None = _url_option(),
    as_json: bool = _json_option(),
) -> None:
    """确认告警（记入审计日志）；仅安全负责人。"""
    with _friendly(as_json), _services(url, keys=False) as ctx:
        monitor = ActivityMonitor(ctx.staff.sessions, None, ctx.audit)
        alert = monitor.ack(alert_id, as_staff, note=note, tenant=tenant)
    if as_json:
        _print_json({"ok": True, "alert": alert.to_dict()})
    else:
        console.print(f"[green]已确认[/green] 告警 #{alert.id}（{alert.rule}）", highlight=False)
