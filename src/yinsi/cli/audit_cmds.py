"""``yinsi audit …``: the tamper-evident audit log for auditors and operators (审计日志).

``record`` and ``show`` act as the logged-in member of staff (:func:`yinsi.cli.identity.current_staff`):
``record`` writes an entry whose actor is that member, ``show`` needs a role allowed to read the log and
shows that member's tenant only. ``rotate-key`` is an operator command across tenants: its authority is the
signing key and the database credentials, and its entries' actor is ``system``. ``verify``, ``chains``,
``prove``, ``checkpoint`` and ``init`` are open to verifiers and operators: they print hashes, signatures
and counts (``prove`` one entry, whose subject is a pseudonym; entries never hold PI).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from yinsi.audit import (
    ACTION_LABELS,
    KINDS,
    WARNING_KINDS,
    AuditAction,
    AuditEntry,
    AuditError,
    AuditLog,
    HashAlg,
    SignAlg,
    VerifyResult,
)
from yinsi.audit.model import SYSTEM_ACTOR
from yinsi.auth.principals import StaffPrincipal
from yinsi.cli.apps import app, console, err_console
from yinsi.cli.errors import json_argument
from yinsi.cli.identity import current_staff, refuse
from yinsi.config import database_url, is_default_database
from yinsi.staff import actions
from yinsi.staff.errors import AccessDenied
from yinsi.staff.service import StaffService
from yinsi.storage import InvalidDatabaseUrl, StorageError, ensure_current, make_engine, make_session_factory

audit_app = typer.Typer(help="防篡改审计日志：记录、查看、签名检查点、校验。", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

BEIJING = timezone(timedelta(hours=8), "北京时间")
URL_HELP = "数据库地址（SQLAlchemy URL）；默认取环境变量 YINSI_DATABASE_URL，否则为 ./.yinsi/yinsi.db"
TENANT_HELP = "租户标识；不指定则处理本库中的全部租户"
T = TypeVar("T")

#: Exit codes: 0 intact, 1 tampering or damage found, 2 the command could not run (database, key, input),
#: 3 (``verify --strict``) nothing found wrong but not everything could be confirmed (no witness, …).
EXIT_TAMPERED = 1
EXIT_ERROR = 2
EXIT_UNCONFIRMED = 3


class HashChoice(StrEnum):
    SHA256 = "sha256"
    SM3 = "sm3"


class SignChoice(StrEnum):
    ED25519 = "ed25519"
    SM2 = "sm2"


def _error(message: str) -> None:
    err_console.print(f"[red]错误[/red] {escape(message)}", highlight=False, soft_wrap=True)


@contextmanager
def _audit_log(url: str | None) -> Iterator[AuditLog]:
    """The audit log of the database at ``url``; expected failures become a Chinese message and exit 2."""
    try:
        target = url or database_url()
        ensure_current(target, auto_upgrade=is_default_database(target))
        engine = make_engine(target)
        try:
            yield AuditLog(make_session_factory(engine))
        finally:
            engine.dispose()
    except (InvalidDatabaseUrl, StorageError, AuditError) as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_ERROR) from None
    except ValueError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_ERROR) from None
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        _error(f"数据库操作失败：{first}")
        raise typer.Exit(EXIT_ERROR) from None


def _beijing(ts: datetime) -> str:
    return ts.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


@audit_app.command("verify")
def audit_verify(
    tenant: str | None = typer.Option(None, "--tenant", help=TENANT_HELP),
    trust_key: list[str] = typer.Option([], "--trust-key", help="另行信任的签名密钥 ID（可重复）；默认信任本机签名密钥"),
    strict: bool = typer.Option(False, "--strict", help="严格：未配置外部见证、见证缺失、末尾长时间未签名、签名者仅取自数据库时"
                                "也视为失败（退出码 3）"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """重算哈希链与默克尔根、验证检查点签名、核对外部见证；发现篡改时退出码为 1，并指出第一条有问题的记录。"""
    with _audit_log(url) as audit:
        results = [audit.verify(tenant, trusted_keys=trust_key)] if tenant else audit.verify_all(trusted_keys=trust_key)
        no_witness = audit.witness is None
    ok = all(r.ok for r in results)
    confirmed = ok and all(r.confirmed for r in results) and not (no_witness and not results)
    if as_json:
        _print_json({"ok": ok, "confirmed": confirmed, "strict": strict, "chains": [r.to_dict() for r in results]})
    elif not results:
        console.print("本库中没有审计日志。", highlight=False)
    else:
        for r in results:
            _print_result(r)
    if not ok:
        raise typer.Exit(EXIT_TAMPERED)
    if not confirmed:
        if not as_json:
            msg = ("严格模式：以上警告视为校验失败。" if strict else
                   "以上警告说明有些篡改无法被发现；配置外部见证（YINSI_AUDIT_WITNESS）后可用 --strict 要求全部确认。")
            err_console.print(f"[yellow]{escape(msg)}[/yellow]", highlight=False, soft_wrap=True)
        if strict:
            raise typer.Exit(EXIT_UNCONFIRMED)


def _print_result(r: VerifyResult) -> None:
    if r.ok:
        console.print(f"[green]✓[/green] {escape(r.describe())}", highlight=False, soft_wrap=True)
        _print_warnings(r)
        return
    console.print(f"[red]✗[/red] {escape(r.describe())}", highlight=False, soft_wrap=True)
    for p in r.problems[:20]:
        label = KINDS.get(p.kind, p.kind)
        console.print(f"  · {label}（{p.kind}）：{escape(p.message)}", highlight=False, soft_wrap=True)
    more = len(r.problems) - 20 + r.suppressed
    if more > 0:
        console.print(f"  （另有 {more} 处由上述问题连带引起或未列出）", highlight=False)
    _print_warnings(r)


def _print_warnings(r: VerifyResult) -> None:
    for w in r.warnings:
        label = WARNING_KINDS.get(w.kind, w.kind)
        console.print(f"  [bold yellow]⚠ 警告[/bold yellow] {label}（{w.kind}）：{escape(w.message)}", highlight=False,
                      soft_wrap=True)


@audit_app.command("show")
def audit_show(
    tenant: str | None = typer.Option(None, "--tenant", help="租户标识；须为当前登录的工作人员所属租户（默认即该租户）"),
    limit: int = typer.Option(20, "--limit", min=1, help="显示最新的若干条"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """显示本租户的审计记录（最新的若干条，按序号排列）：须以可查阅审计日志的工作人员（审计员、安全负责人）登录。"""
    principal = current_staff(url, tenant, as_json=as_json)
    with _audit_log(url) as audit:
        shown = _as_staff(principal, as_json, lambda: actions.view_audit_log(
            principal, StaffService(audit.session_factory, audit), audit, limit=limit))
    if as_json:
        _print_json([e.to_dict() for e in shown])
        return
    if not shown:
        console.print(f"租户 {escape(principal.tenant)} 没有审计记录。", highlight=False)
        return
    console.print(_entries_table(principal.tenant, shown))


def _as_staff(principal: StaffPrincipal, as_json: bool, call: Callable[[], T]) -> T:
    """Run a staff use case; a refusal (role, account) ends the command with exit 1 and its rule."""
    try:
        return call()
    except AccessDenied as exc:
        refuse(str(exc), as_json=as_json, rule=exc.rule)


def _entries_table(tenant: str, entries: list[AuditEntry]) -> Table:
    table = Table(title=f"{tenant} 的审计记录（最新 {len(entries)} 条）")
    for col in ("序号", "时间（北京时间）", "操作人", "操作", "主体（假名）", "个人信息项", "事由", "详情", "哈希前12位"):
        table.add_column(col, overflow="fold")
    for e in entries:
        try:
            action = ACTION_LABELS[AuditAction(e.action)]
        except ValueError:
            action = e.action
        table.add_row(
            str(e.seq), _beijing(e.time), escape(e.actor), action, escape(e.subject or "—"),
            escape("、".join(e.items) or "—"), escape(e.reason or "—"),
            escape(json.dumps(e.details, ensure_ascii=False)) if e.details else "—", e.entry_hash[:12],
        )
    return table


@audit_app.command("checkpoint")
def audit_checkpoint(
    tenant: str | None = typer.Option(None, "--tenant", help=TENANT_HELP),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出（含签名，可另行留存）"),
) -> None:
    """立即为审计链的当前末尾签名一个检查点（可由定时任务调用）。"""
    with _audit_log(url) as audit:
        tenants = [tenant] if tenant else [c.tenant for c in audit.chains()]
        made = [(t, audit.checkpoint(t)) for t in tenants]
    if as_json:
        _print_json([cp.to_dict() for _, cp in made if cp is not None])
        return
    if not made:
        console.print("本库中没有审计日志。", highlight=False)
    for t, cp in made:
        if cp is None:
            console.print(f"租户 {escape(t)}：审计日志为空，无需检查点。", highlight=False)
        elif cp.created:
            console.print(f"[green]已签名[/green]租户 {escape(t)} 的检查点 #{cp.number}：覆盖第 1 至第 {cp.upto_seq} 条，"
                          f"默克尔根 {cp.root[:16]}…，{SignAlg(cp.sign_alg).label} 密钥 {cp.key_id}", highlight=False)
        else:
            console.print(f"租户 {escape(t)}：最新的检查点 #{cp.number} 已覆盖至第 {cp.upto_seq} 条（末尾），未新建。",
                          highlight=False)


@audit_app.command("prove")
def audit_prove(
    tenant: str = typer.Argument(..., help="租户标识（每个租户一条审计链）"),
    entry: int | None = typer.Option(None, "--entry", min=1, help="给出第 N 条记录的包含证明"),
    from_size: int | None = typer.Option(None, "--from-size", min=1, help="一致性证明：旧检查点覆盖的条数"),
    to_size: int | None = typer.Option(None, "--to-size", min=1, help="一致性证明：新的条数（默认最近检查点覆盖的条数）"),
    checkpoint: int | None = typer.Option(None, "--checkpoint", min=1, help="包含证明针对的检查点编号（默认第一个覆盖该条的）"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """以 JSON 打印包含证明（--entry N）或一致性证明（--from-size A [--to-size B]）；外部校验者无需 Yinsi 的数据库，
    用 yinsi/audit/proofcheck.py（只依赖 Python 标准库）即可核对。"""
    if (entry is None) == (from_size is None):
        _error("请指定 --entry N（包含证明）或 --from-size A（一致性证明）之一")
        raise typer.Exit(EXIT_ERROR)
    with _audit_log(url) as audit:
        if entry is not None:
            data = audit.prove(tenant, entry, checkpoint).to_dict()
        else:
            assert from_size is not None
            data = audit.prove_consistency(tenant, from_size, to_size).to_dict()
    _print_json(data)


@audit_app.command("init")
def audit_init(
    tenant: str = typer.Option(..., "--tenant", help="租户标识"),
    hash_alg: HashChoice = typer.Option(HashChoice.SHA256, "--hash", help="哈希算法：sha256 或 sm3（国密）"),
    sign_alg: SignChoice = typer.Option(SignChoice.ED25519, "--sign", help="检查点签名算法：ed25519 或 sm2（国密）"),
    every: int = typer.Option(1000, "--every", min=0, help="每追加多少条自动签名一个检查点；0 为不自动签名"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """创建租户的审计链并选定算法（不创建时，首次记录会以默认设置自动创建）。"""
    with _audit_log(url) as audit:
        info = audit.create_chain(tenant, hash_alg=hash_alg.value, sign_alg=sign_alg.value, checkpoint_every=every)
    console.print(f"租户 {escape(tenant)} 的审计链：哈希 {HashAlg(info.hash_alg).label}，签名 {SignAlg(info.sign_alg).label}，"
                  f"每 {info.checkpoint_every} 条一个检查点，现有 {info.last_seq} 条。", highlight=False)


@audit_app.command("record")
def audit_record(
    tenant: str = typer.Option(..., "--tenant", help="租户标识（须为当前登录的工作人员所属租户）"),
    action: AuditAction = typer.Option(..., "--action", help="操作类型"),
    subject: str | None = typer.Option(None, "--subject", help="主体的假名化标识（不得为手机号等明文）"),
    item: list[str] = typer.Option([], "--item", help="个人信息项 ID（可重复），如 contact.mobile"),
    reason: str | None = typer.Option(None, "--reason", help="事由"),
    details: str | None = typer.Option(None, "--details", help="详情（JSON 对象，不得含个人信息）"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """以当前登录的工作人员身份手工追加一条审计记录（例如记录一次配置变更）；操作人即登录的工作人员。"""
    parsed = json_argument(details, "--details") if details else None
    principal = current_staff(url, tenant, as_json=as_json)
    with _audit_log(url) as audit:
        entry = _as_staff(principal, as_json, lambda: actions.record_audit_entry(
            principal, StaffService(audit.session_factory, audit), audit, action, subject=subject, items=item,
            reason=reason, details=parsed))
    if as_json:
        _print_json(entry.to_dict())
    else:
        console.print(f"[green]已记录[/green]租户 {escape(tenant)} 的第 {entry.seq} 条"
                      f"（{action.label}，操作人 {escape(principal.staff_id)}，哈希 {entry.entry_hash[:12]}）",
                      highlight=False)


@audit_app.command("chains")
def audit_chains(
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """列出本库中的审计链（每个租户一条）。"""
    with _audit_log(url) as audit:
        chains = audit.chains()
    if as_json:
        _print_json([c.to_dict() for c in chains])
        return
    if not chains:
        console.print("本库中没有审计日志。", highlight=False)
        return
    table = Table(title="审计链")
    for col in ("租户", "记录数", "检查点", "最近检查点覆盖至", "哈希", "签名", "检查点间隔", "创建时间（北京时间）"):
        table.add_column(col, overflow="fold")
    for c in chains:
        table.add_row(escape(c.tenant), str(c.last_seq), str(c.last_checkpoint_no), str(c.last_checkpoint_seq),
                      HashAlg(c.hash_alg).label, SignAlg(c.sign_alg).label, str(c.checkpoint_every) if c.checkpoint_every
                      else "不自动", _beijing(c.created_at))
    console.print(table)


@audit_app.command("rotate-key")
def audit_rotate_key(
    sign_alg: SignChoice = typer.Option(SignChoice.ED25519, "--sign", help="轮换哪种签名密钥"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """轮换检查点签名密钥：新密钥为旧密钥背书，旧检查点仍可验证；轮换以操作人 system 记入使用该算法的每条审计链。

    这是运维命令，跨所有租户：其权限来自签名密钥（及主密钥）与数据库凭据，而不是工作人员角色。"""
    with _audit_log(url) as audit:
        old, new = audit.rotate_key(sign_alg.value)
        chains = [c.tenant for c in audit.chains() if c.sign_alg == sign_alg.value]
        for t in chains:
            audit.append(t, SYSTEM_ACTOR, AuditAction.KEY_ROTATION, reason="轮换审计检查点签名密钥",
                         details={"algorithm": sign_alg.value, "old_key_id": old, "new_key_id": new})
    console.print(f"[green]已轮换[/green]{SignAlg(sign_alg.value).label} 签名密钥：{old} → {new}"
                  f"（已记入 {len(chains)} 条审计链；其他正在运行的进程重启后改用新密钥）", highlight=False)
