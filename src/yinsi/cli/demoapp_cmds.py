"""``yinsi demo-app create|seed|stats`` (the demo apps in examples/: 微聊客, and 客户通
with ``--app kehutong``) and
``yinsi datamap validate|locations`` (data maps)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from yinsi.cli.apps import app, console, err_console
from yinsi.cli.errors import db_error_message, redact
from yinsi.declarations import DeclarationError, load_declaration
from yinsi.storage.engine import display_url, make_engine
from yinsi.storage.errors import InvalidDatabaseUrl, StorageError

demo_app = typer.Typer(help="演示应用（微聊客 examples/weiliaoke_app；客户通 examples/kehutong_app，--app kehutong）："
                            "建表、生成数据、统计。", no_args_is_help=True)
datamap_app = typer.Typer(help="数据地图：每个个人信息项在应用的哪个存储、哪张表、哪一列。", no_args_is_help=True)
app.add_typer(demo_app, name="demo-app")
app.add_typer(datamap_app, name="datamap")


@dataclass(frozen=True)
class DemoApp:
    """One demo app in examples/: its package, the environment variable of its database URL, its policy."""

    name: str  # as shown to people
    package: str  # the folder under examples/ and the module name it is loaded as
    db_env: str
    policy: str  # the policy declaration under policies/
    redis_env: str | None = None


DEMO_APPS: dict[str, DemoApp] = {
    "weiliaoke": DemoApp("微聊客", "weiliaoke_app", "WEILIAOKE_DATABASE_URL", "weiliaoke-2022.yaml",
                         "WEILIAOKE_REDIS_URL"),
    "kehutong": DemoApp("客户通（物业通）", "kehutong_app", "KEHUTONG_DATABASE_URL", "kehutong-2021.yaml"),
}
DB_ENV = "WEILIAOKE_DATABASE_URL"
REDIS_ENV = "WEILIAOKE_REDIS_URL"
APP_HELP = f"演示应用：{'、'.join(f'{k}（{v.name}）' for k, v in DEMO_APPS.items())}；默认 weiliaoke"
URL_HELP = ("演示应用的数据库地址（SQLAlchemy URL）；默认取环境变量 "
            + "、".join(f"{a.db_env}（{k}）" for k, a in DEMO_APPS.items()))
REDIS_HELP = f"演示应用的 Redis 地址（redis://…，仅微聊客）；默认取环境变量 {REDIS_ENV}，都没有则不写 Redis"
PREFIX_HELP = "Redis 键前缀（命名空间），默认无"


def _error(message: str) -> None:
    err_console.print(f"[red]错误[/red] {escape(redact(message))}", highlight=False, soft_wrap=True)


def _demo(app_id: str) -> DemoApp:
    found = DEMO_APPS.get(app_id)
    if found is None:
        _error(f"没有演示应用 {app_id}（有：{'、'.join(DEMO_APPS)}）")
        raise typer.Exit(2)
    return found


def demo_app_dir(app_id: str = "weiliaoke") -> Path:
    """The demo app package: ``YINSI_DEMO_APP_DIR`` (微聊客 only), else ./examples/<package>, else the
    checkout's."""
    package = DEMO_APPS[app_id].package
    explicit = os.environ.get("YINSI_DEMO_APP_DIR")
    if explicit and app_id == "weiliaoke":
        return Path(explicit)
    here = Path.cwd() / "examples" / package
    if (here / "__init__.py").is_file():
        return here
    return Path(__file__).resolve().parents[3] / "examples" / package


def load_demo_app(app_id: str = "weiliaoke") -> ModuleType:
    """Import a demo app package from ``demo_app_dir()`` (it lives in examples/, outside the package)."""
    package = _demo(app_id).package
    if package in sys.modules:
        return sys.modules[package]
    base = demo_app_dir(app_id)
    init = base / "__init__.py"
    if not init.is_file():
        _error(f"找不到演示应用：{base}（可用环境变量 YINSI_DEMO_APP_DIR 指定 examples/weiliaoke_app 目录）")
        raise typer.Exit(2)
    spec = importlib.util.spec_from_file_location(package, init, submodule_search_locations=[str(base)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[package]
        raise
    return module


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Expected failures become a Chinese message and an exit code, never a traceback."""
    errors = tuple(getattr(sys.modules[a.package], "DemoAppError", RuntimeError)
                   for a in DEMO_APPS.values() if a.package in sys.modules)
    demo_error: tuple[type[Exception], ...] = errors or (RuntimeError,)
    try:
        yield
    except InvalidDatabaseUrl as exc:
        _error(str(exc))
        raise typer.Exit(2) from None
    except StorageError as exc:
        _error(str(exc))
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:
        _error(db_error_message(exc))
        raise typer.Exit(1) from None
    except demo_error as exc:
        _error(str(exc))
        raise typer.Exit(1) from None


def _need_url(url: str | None, app_id: str = "weiliaoke") -> str:
    env = DEMO_APPS[app_id].db_env
    url = url or os.environ.get(env)
    if not url:
        _error(f"请用 --url 给出演示应用的数据库地址（或设置环境变量 {env}）")
        raise typer.Exit(2)
    return url


def _redis_client(url: str) -> Any:
    try:
        import redis
    except ImportError:
        _error("缺少 Redis 客户端：pip install 'yinsi[demo-app]'")
        raise typer.Exit(2) from None
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        _error(f"无法连接 Redis：{url}（{exc}）")
        raise typer.Exit(1) from None
    return client


# --------------------------------------------------------------------------------------- demo-app
APP = typer.Option("weiliaoke", "--app", help=APP_HELP)
URL = typer.Option(None, "--url", help=URL_HELP)


@demo_app.command("create")
def demo_create(url: str | None = URL, app_id: str = APP) -> None:
    """创建演示应用的表（已存在的表保持不变）。"""
    demo = load_demo_app(app_id)
    target = _need_url(url, app_id)
    with _friendly_errors():
        engine = make_engine(target)
        try:
            created = demo.create_schema(engine)
        finally:
            engine.dispose()
    if created:
        console.print(f"[green]已创建[/green] {len(created)} 张表：{'、'.join(created)}（{escape(display_url(target))}）",
                      soft_wrap=True)
    else:
        console.print(f"演示应用的表都已存在，未做改动（{escape(display_url(target))}）", soft_wrap=True)


@demo_app.command("seed")
def demo_seed(
    users: int | None = typer.Option(None, "--users", min=1, help="微聊客：生成的置业顾问（注册用户）数量"),
    houses: int | None = typer.Option(None, "--houses", min=1, help="客户通：生成的房屋数（每户 1–4 位住户）"),
    tickets_per_house: int = typer.Option(3, "--tickets-per-house", min=0,
                                          help="客户通：每户平均报修工单数（0 至 2 倍均值）；100 万工单如 --houses 100000 "
                                               "--tickets-per-house 10"),
    now_text: str | None = typer.Option(None, "--now", help="数据的“当前时间”（北京时间 YYYY-MM-DD[THH:MM]），"
                                                            "默认 2025-06-30 12:00；法定保存等按行内日期计算"),
    app_id: str = APP,
    url: str | None = URL,
    redis_url: str | None = typer.Option(None, "--redis", envvar=REDIS_ENV, help=REDIS_HELP),
    redis_prefix: str = typer.Option("", "--redis-prefix", help=PREFIX_HELP),
    seed_value: int | None = typer.Option(None, "--seed", help="随机种子：同一种子在同样的起始数据上生成完全相同的数据"
                                                               "（默认：微聊客 2022，客户通 2021）"),
    chunk: int | None = typer.Option(None, "--chunk", min=1, help="每批（每个事务）生成的用户数或房屋数"
                                                                  "（默认 2000 / 1000）"),
    workers: int | None = typer.Option(None, "--workers", min=1, help="并行进程数（默认：SQLite 为 1，其余为 CPU 核数，至多 4）"),
    with_undeclared: bool = typer.Option(
        False, "--with-undeclared", help="同时写入 2022 版声明未载明的数据（Redis 搜索历史），用于演示数据地图校验失败"),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出结果"),
) -> None:
    """生成演示数据（库中已有数据时追加，编号接续）。微聊客：--users N 个置业顾问及其楼盘绑定、发布、聊天、订单、设备、
    日志；客户通：--houses N 套房屋及其住户、报修、访客、缴费、通话、企业微信联系人、网络日志。"""
    demo = load_demo_app(app_id)
    target = _need_url(url, app_id)
    now = None
    if now_text is not None:
        with _friendly_errors():
            now = _parse_now(now_text)
    if app_id == "kehutong":
        if houses is None:
            _error("客户通演示应用请用 --houses 给出房屋数")
            raise typer.Exit(2)
        if redis_url and DEMO_APPS[app_id].redis_env is None:
            redis_url = None  # 客户通 has no Redis store; an ambient WEILIAOKE_REDIS_URL is not its
        _seed_kehutong(demo, target, houses, tickets_per_house, now, seed_value, chunk, workers, as_json)
        return
    if users is None:
        _error("微聊客演示应用请用 --users 给出用户数")
        raise typer.Exit(2)
    if redis_url:
        _redis_client(redis_url).close()
    extra: dict[str, Any] = {"now": now} if now is not None else {}
    common: dict[str, Any] = dict(redis_url=redis_url, redis_prefix=redis_prefix, chunk_size=chunk or 2000,
                                  workers=workers, with_undeclared=with_undeclared, **extra)
    seed_value = 2022 if seed_value is None else seed_value
    with _friendly_errors():
        if as_json or not sys.stdout.isatty():
            result = demo.seed(target, users, seed_value, **common)
        else:
            with Progress(TextColumn("[bold]生成演示数据"), BarColumn(), MofNCompleteColumn(), TextColumn("用户"),
                          TextColumn("{task.fields[rows]:,} 行"), TimeElapsedColumn(), TextColumn("剩余"),
                          TimeRemainingColumn(), console=console) as bar:
                task = bar.add_task("seed", total=users, rows=0)

                def progress(done: int, rows: int) -> None:
                    bar.update(task, completed=done, rows=rows)

                result = demo.seed(target, users, seed_value, progress=progress, **common)
    if as_json:
        out = asdict(result)
        out.update(users_per_second=round(result.users_per_second, 1), rows_per_second=round(result.rows_per_second, 1))
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    last = result.first_agent_id + result.users - 1
    console.print(
        f"[green]完成[/green]：{result.users:,} 个用户（编号 {result.first_agent_id}–{last}），{result.rows:,} 行，"
        f"Redis 命令 {result.redis_commands:,} 条，用时 {result.seconds:.1f} 秒"
        f"（{result.users_per_second:,.0f} 用户/秒，{result.rows_per_second:,.0f} 行/秒）",
        soft_wrap=True,
    )


def _parse_now(text: str) -> Any:
    from datetime import date, datetime

    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time()).replace(hour=12)
        return datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        _error("--now 应为实际存在的日期 YYYY-MM-DD 或时刻 YYYY-MM-DDTHH:MM")
        raise typer.Exit(2) from None


def _seed_kehutong(demo: ModuleType, target: str, houses: int, tickets_per_house: int, now: Any,
                   seed_value: int | None, chunk: int | None, workers: int | None, as_json: bool) -> None:
    common: dict[str, Any] = dict(tickets_per_house=tickets_per_house, chunk_size=chunk or 1000, workers=workers)
    if now is not None:
        common["now"] = now
    seed_value = 2021 if seed_value is None else seed_value
    with _friendly_errors():
        if as_json or not sys.stdout.isatty():
            result = demo.seed(target, houses, seed_value, **common)
        else:
            with Progress(TextColumn("[bold]生成演示数据"), BarColumn(), MofNCompleteColumn(), TextColumn("房屋"),
                          TextColumn("{task.fields[rows]:,} 行"), TimeElapsedColumn(), TextColumn("剩余"),
                          TimeRemainingColumn(), console=console) as bar:
                task = bar.add_task("seed", total=houses, rows=0)

                def progress(done: int, rows: int) -> None:
                    bar.update(task, completed=done, rows=rows)

                result = demo.seed(target, houses, seed_value, progress=progress, **common)
    if as_json:
        out = asdict(result)
        out.update(houses_per_second=round(result.houses_per_second, 1),
                   rows_per_second=round(result.rows_per_second, 1))
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    last = result.first_house_id + result.houses - 1
    console.print(
        f"[green]完成[/green]：{result.houses:,} 套房屋（编号 {result.first_house_id}–{last}），{result.residents:,} 位住户，"
        f"{result.tickets:,} 张报修工单，共 {result.rows:,} 行，用时 {result.seconds:.1f} 秒"
        f"（{result.houses_per_second:,.0f} 户/秒，{result.rows_per_second:,.0f} 行/秒）",
        soft_wrap=True,
    )


@demo_app.command("stats")
def demo_stats(
    url: str | None = URL,
    app_id: str = APP,
    redis_url: str | None = typer.Option(None, "--redis", envvar=REDIS_ENV, help=REDIS_HELP),
    redis_prefix: str = typer.Option("", "--redis-prefix", help=PREFIX_HELP),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """统计演示应用各表的行数和 Redis 中各类键的数量。"""
    demo = load_demo_app(app_id)
    target = _need_url(url, app_id)
    if DEMO_APPS[app_id].redis_env is None:
        redis_url = None
    with _friendly_errors():
        engine = make_engine(target)
        try:
            counts: dict[str, int] = demo.stats(engine)
        finally:
            engine.dispose()
    keys: dict[str, int] = {}
    if redis_url:
        client = _redis_client(redis_url)
        try:
            keys = demo.redis_stats(client, redis_prefix)
        finally:
            client.close()
    if as_json:
        print(json.dumps({"tables": counts, "redis": keys}, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"演示应用（{DEMO_APPS[app_id].name}）各表行数", caption=escape(display_url(target)))
    table.add_column("表")
    table.add_column("行数", justify="right")
    for name, count in counts.items():
        table.add_row(name, f"{count:,}")
    table.add_row("[bold]合计[/bold]", f"[bold]{sum(counts.values()):,}[/bold]")
    console.print(table)
    if redis_url:
        rt = Table(title=f"Redis 键（前缀 {redis_prefix or '无'}）")
        rt.add_column("键的形状")
        rt.add_column("数量", justify="right")
        for shape, count in keys.items():
            rt.add_row(escape(shape), f"{count:,}")
        console.print(rt)


# ---------------------------------------------------------------------------------------- datamap
def _map_and_policy(map_file: Path | None, policy: Path | None, app_id: str | None) -> tuple[Path, Path | None]:
    """The data map and policy files given, else those of the demo app ``--app`` names."""
    if app_id is None:
        if map_file is None:
            _error("请给出数据地图文件（或用 --app 选择演示应用：weiliaoke、kehutong）")
            raise typer.Exit(2)
        return map_file, policy
    demo = _demo(app_id)
    base = demo_app_dir(app_id)
    if policy is None:
        here = Path.cwd() / "policies" / demo.policy
        policy = here if here.is_file() else base.parents[1] / "policies" / demo.policy
    return (map_file or base / "datamap.yaml"), policy


@datamap_app.command("validate")
def datamap_validate(
    map_file: Path | None = typer.Argument(None, help="数据地图文件（YAML）；用 --app 时默认该演示应用的数据地图"),
    policy: Path | None = typer.Option(None, "--policy", help="该租户的政策声明文件（YAML）；用 --app 时默认该演示应用的声明"),
    app_id: str | None = typer.Option(None, "--app", help="演示应用（weiliaoke、kehutong）：用它的数据地图和政策声明"),
    url: str | None = typer.Option(None, "--url", help="SQL 存储的实时地址；多个 SQL 存储时写成 存储编号=地址"),
    redis_url: str | None = typer.Option(None, "--redis", help="Redis 存储的实时地址；多个时写成 存储编号=地址"),
    redis_prefix: str | None = typer.Option(None, "--redis-prefix", help="覆盖 Redis 存储的键前缀"),
    static: bool = typer.Option(False, "--static", help="只做静态校验，不连接任何实时存储"),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """校验数据地图：结构、关联路径、删除动作与法定保存、与政策声明一致、与实时库结构一致（文件:行: 路径: 问题）。"""
    from yinsi.datamap_io import DataMapError, assign_urls, load_datamap, validate

    map_file, policy = _map_and_policy(map_file, policy, app_id)
    if policy is None:
        _error("请用 --policy 给出该租户的政策声明文件（或用 --app 选择演示应用）")
        raise typer.Exit(2)
    try:
        declaration = load_declaration(policy)
    except DeclarationError as exc:
        for problem in exc.problems:
            _error(f"政策声明无效：{problem}")
        raise typer.Exit(1) from None
    urls: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    try:
        dm = load_datamap(map_file).datamap
    except DataMapError:
        dm = None  # validate() reports the problems with their lines
    if dm is not None:
        urls, wrong = assign_urls(dm, url, redis_url)
        for message in wrong:
            _error(message)
        if wrong:
            raise typer.Exit(2)
        if redis_prefix is not None:
            prefixes = {s.id: redis_prefix for s in dm.redis_stores()}
    report = validate(map_file, declaration, urls=urls, key_prefixes=prefixes, live=not static)
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        raise typer.Exit(0 if report.ok else 1)
    for p in report.errors:
        err_console.print(f"[red]错误[/red] {escape(str(p))}", highlight=False, soft_wrap=True)
    for p in report.warnings:
        err_console.print(f"[yellow]提示[/yellow] {escape(str(p))}", highlight=False, soft_wrap=True)
    for line in report.checked:
        console.print(f"已核对实时结构：{escape(line)}", highlight=False, soft_wrap=True)
    for line in report.not_checked:
        console.print(f"[yellow]未核对[/yellow]：{escape(line)}", highlight=False, soft_wrap=True)
    if static:
        console.print("[yellow]仅静态校验[/yellow]（--static）：未连接任何实时存储。")
    if report.ok:
        console.print(f"[green]通过[/green]：{escape(str(map_file))} 与政策声明 {declaration.tenant} "
                      f"{declaration.version.label} 一致，共 {report.locations} 个个人信息位置"
                      f"（{len(report.warnings)} 条提示）。", highlight=False, soft_wrap=True)
    else:
        console.print(f"[red]未通过[/red]：{len(report.errors)} 个错误，{len(report.warnings)} 条提示。")
    raise typer.Exit(0 if report.ok else 1)


@datamap_app.command("locations")
def datamap_locations(
    map_file: Path | None = typer.Argument(None, help="数据地图文件（YAML）；用 --app 时默认该演示应用的数据地图"),
    app_id: str | None = typer.Option(None, "--app", help="演示应用（weiliaoke、kehutong）：列出它的数据地图"),
    subject: str | None = typer.Option(None, "--subject", help="只列出该主体（例如 agent）"),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """列出每个主体的个人信息位置：存储、表/键、列、个人信息项、如何找到、删除动作。"""
    from yinsi.datamap_io import DataMapError, load_datamap
    from yinsi.domain.datamap import ERASE_ZH

    map_file, _policy = _map_and_policy(map_file, None, app_id)
    try:
        dm = load_datamap(map_file).datamap
    except DataMapError as exc:
        for p in exc.problems:
            err_console.print(f"[red]错误[/red] {escape(str(p))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if subject is not None and dm.subject(subject) is None:
        _error(f"数据地图中没有主体 {subject}（有：{'、'.join(dm.subject_ids())}）")
        raise typer.Exit(2)
    locations = dm.locations(subject)
    if as_json:
        print(json.dumps([loc.as_dict() for loc in locations], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"个人信息位置（{map_file}）")
    for col in ("编号", "主体", "个人信息项", "位置", "如何找到", "删除动作", "法定保存"):
        table.add_column(col, overflow="fold")
    for loc in locations:
        where = f"{loc.table}.{loc.column}" if loc.table else (loc.key_pattern or loc.description or "")
        hold = f"{loc.legal_hold.min_days or '?'} 天（{loc.legal_hold.rule or ''}）" if loc.legal_hold else ""
        table.add_row(escape(loc.id), loc.subject, f"{loc.item_name}（{loc.item}）", escape(where),
                      escape(loc.how()), ERASE_ZH.get(loc.erase.value, loc.erase.value), hold)
    console.print(table)
