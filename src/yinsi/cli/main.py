"""Entry point of the ``yinsi`` command: a group that imports a command area's module only when it is used.

Command modules (``yinsi/cli/*_cmds.py``) register their commands and sub-groups on ``yinsi.cli.apps.app``
when imported. Importing all of them costs about a second (SQLAlchemy, pydantic models, cryptography …),
so this entry point does not: :data:`AREAS` maps each top-level name to the module(s) that register it and
to its one-line help, which is all ``yinsi --help`` needs. ``yinsi NAME …`` imports only NAME's modules.

Adding a command module is one line in :data:`AREAS` per top-level name it registers::

    "serve": Area("serve_cmds", "启动 HTTP 服务（API）。"),

A ``*_cmds`` module that is not in the table still works: it is found on disk and imported when its name
is asked for or when ``yinsi --help`` lists the commands (which is then slower). tests/test_cli_main.py
checks that every entry resolves to a module that registers it, with the same help.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup

import yinsi.cli
from yinsi.cli import apps
from yinsi.cli.errors import check_arguments, debug_enabled, redact, safety_net


class Area(NamedTuple):
    """A top-level command or group: the module(s) whose import registers it, and its help line."""

    modules: str | tuple[str, ...]
    help: str

    @property
    def module_names(self) -> tuple[str, ...]:
        return (self.modules,) if isinstance(self.modules, str) else self.modules


#: Every top-level name of ``yinsi``, in the order ``yinsi --help`` lists them.
#: The help must equal the command's own (its docstring's first paragraph, or the sub-app's ``help=``).
AREAS: dict[str, Area] = {
    "demo": Area("demo_cmds", "演示：加载五个种子声明，合规检查，渲染一份政策，对比微聊客两个版本。"),
    "serve": Area("serve_cmds", "启动 HTTP 服务（API）。"),
    "login": Area("login_cmds", "工作人员登录：口令加动态验证码（可接触个人信息的角色必须），会话保存在用户配置目录。"),
    "logout": Area("login_cmds", "退出登录：结束当前会话（服务端同时失效）并删除保存的会话。"),
    "whoami": Area("login_cmds", "显示当前登录的工作人员、租户与角色。"),
    "policy": Area(("policy_cmds", "render_cmds", "db_cmds", "analyze_cmds"), "隐私政策声明：校验、渲染、对比、合规检查、发布。"),
    "consent": Area("consent_cmds", "同意台账：记录、查看、重建。"),
    "permission": Area("consent_cmds", "设备权限：记录授权/拒绝，判断能否再次申请（C8）。"),
    "gate": Area("consent_cmds", "处理闸门：每次收集、使用、提供之前询问。"),
    "subject": Area("consent_cmds", "个人：登记年龄信息，查看其个人信息收集与共享清单（双清单）。"),
    "request": Area("rights_cmds", "个人信息权利请求：受理、核验身份、确认、执行、查看、逾期提醒。"),
    "staff": Area("staff_cmds", "工作人员访问控制：角色、掩码查看、申请与审批、批量导出（S3、S4、S6）。"),
    "alerts": Area("staff_cmds", "异常行为监测：登录与注册事件、频率规则、告警。"),
    "audit": Area("audit_cmds", "防篡改审计日志：记录、查看、签名检查点、校验。"),
    "scan": Area("scan_cmds", "个人信息扫描：在文本文件和数据库中找出个人信息。"),
    "mask": Area("scan_cmds", "脱敏展示：把文本中的个人信息替换为掩码。"),
    "keys": Area("protect_cmds", "加密密钥：主密钥、租户密钥、密钥轮换。"),
    "stats": Area("protect_cmds", "按列分组计数并发布：小于 k 的分组隐藏，可加入差分隐私噪声。"),
    "datamap": Area("demoapp_cmds", "数据地图：每个个人信息项在应用的哪个存储、哪张表、哪一列。"),
    "incident": Area("incident_cmds", "个人信息安全事件：登记、评估、确定受影响的人、通知、报告、关闭。"),
    "notices": Area("notice_cmds", "变更告知：发送到期告知、查看重新同意进度、宣布停止运营。"),
    "minors": Area("minors_cmds", "未成年人：年龄认定、监护人同意与异议、自立认定、未经监护人同意的删除（M1–M3）。"),
    "abroad": Area("abroad_cmds", "向境外提供个人信息：接收方评估、出境判断、当年人数与门槛（X1、X2）。"),
    "retention": Area("retention_cmds", "存储期限：按声明与数据地图查看到期计划、清理过期数据。"),
    "freetext": Area("freetext_cmds", "自由文本：建立与更新标识索引（删除、复制、回读据此查找被提及的人）。"),
    "demo-app": Area("demoapp_cmds", "演示应用（微聊客 examples/weiliaoke_app；客户通 examples/kehutong_app，"
                                  "--app kehutong）：建表、生成数据、统计。"),
    "apikey": Area("apikey_cmds", "应用 API 密钥：创建、列出、轮换、吊销（仅管理员）。"),
    "applink": Area("apikey_cmds", "应用跳转登录（deep link）的签名密钥：设置与查看（仅管理员）。"),
    "db": Area("db_cmds", "Yinsi 自身数据库：创建与迁移。"),
    "rules": Area("rules_cmds", "规则目录：每条规则的义务与法律出处。"),
    "worker": Area("jobs_cmds", "执行作业：内置模式轮询数据库，或从 RabbitMQ/Redis 接收作业编号；以数据库租约认领。"),
    "scheduler": Area("jobs_cmds", "调度器：按北京时间的定时计划入队（每个到期时刻恰好一次），并重发消息丢失的到期作业。"),
    "jobs": Area("jobs_cmds", "作业队列：列出、查看、死信列表、重试。"),
}


def _import(module: str) -> None:
    importlib.import_module(f"{yinsi.cli.__name__}.{module}")


def registered_names() -> list[str]:
    """The top-level names registered on ``apps.app`` by the modules imported so far, in registration order."""
    names = [c.name or (c.callback.__name__.lower().replace("_", "-") if c.callback else None)
             for c in apps.app.registered_commands]
    names += [g.name for g in apps.app.registered_groups]
    return [n for n in names if n]


def command_modules() -> list[str]:
    """Every ``*_cmds`` module of this package, found on disk (nothing is imported)."""
    return sorted(m.name for m in pkgutil.iter_modules(yinsi.cli.__path__) if m.name.endswith("_cmds"))


def unlisted_modules() -> list[str]:
    """``*_cmds`` modules that no entry of :data:`AREAS` names."""
    listed = {m for area in AREAS.values() for m in area.module_names}
    return [m for m in command_modules() if m not in listed]


def load(name: str) -> Any | None:
    """The command or group registered as ``name``, importing what registers it (None if nothing does)."""
    area = AREAS.get(name)
    if area is not None:
        for module in area.module_names:
            _import(module)
    else:
        if name not in registered_names():
            for module in unlisted_modules():
                _import(module)
        if name not in registered_names():  # perhaps a listed module registers a name the table lacks
            for module in command_modules():
                _import(module)
    if name not in registered_names():
        return None
    return typer.main.get_group(apps.app).commands.get(name)


class LazyGroup(TyperGroup):
    """The top-level group: areas from :data:`AREAS` are loaded on first use; listing them imports nothing."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        for module in unlisted_modules():
            _import(module)
        extra = [n for n in [*self.commands, *registered_names()] if n not in AREAS]
        return [*AREAS, *dict.fromkeys(extra)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any | None:
        cmd = self.commands.get(cmd_name)
        if cmd is not None:
            return cmd
        area = AREAS.get(cmd_name)
        if self._listing and area is not None:  # help only: the table's line, no import
            return TyperCommand(name=cmd_name, help=area.help)
        cmd = load(cmd_name)
        if cmd is not None:
            self.commands[cmd_name] = cmd
        return cmd

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        check_arguments(args)
        return list(super().parse_args(ctx, args))

    def invoke(self, ctx: Any) -> Any:
        """The safety net: what no command handled becomes a short Chinese message with an error reference
        and an exit code, without the exception's text (it may hold PI), unless YINSI_DEBUG=1."""
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if type(exc).__module__.startswith(("typer", "click")):  # exits and usage errors (they quote input)
                if isinstance(getattr(exc, "message", None), str):
                    exc.message = redact(exc.message)  # type: ignore[attr-defined]
                raise
            if debug_enabled():
                raise
            raise typer.Exit(safety_net(exc)) from None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and not args[0].startswith("-") and self.suggest_commands and self.get_command(ctx, args[0]) is None:
            # Typer suggests close names from self.commands: make every area a candidate, not only loaded ones.
            for name in self.list_commands(ctx):
                self.commands.setdefault(name, TyperCommand(name=name))
        return super().resolve_command(ctx, args)


app = typer.Typer(cls=LazyGroup, help=apps.APP_HELP, no_args_is_help=True, add_completion=False)


@app.callback()
def _root(ctx: typer.Context) -> None:
    _forget_audit_tails()
    ctx.call_on_close(_sign_audit_tails)


def _forget_audit_tails() -> None:
    """A command starts with no unsigned audit tails of its own (in one process running many, e.g. tests)."""
    audit_log = sys.modules.get("yinsi.audit.log")
    if audit_log is not None:
        audit_log.forget_pending()


def _sign_audit_tails() -> None:
    """Every command that wrote audit entries ends by signing a checkpoint over them (docs/audit.md), so
    no command leaves an unsigned tail behind; a command that wrote none never imported the audit log."""
    audit_log = sys.modules.get("yinsi.audit.log")
    if audit_log is not None:
        audit_log.checkpoint_pending()


__all__ = ["AREAS", "Area", "LazyGroup", "app", "load"]


if __name__ == "__main__":  # python -m yinsi.cli.main
    app()
