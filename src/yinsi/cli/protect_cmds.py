"""``yinsi keys init|create|list|rotate|algorithms`` and ``yinsi stats`` (protection of PI)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from yinsi.cli.apps import app, console, err_console
from yinsi.cli.db_cmds import BEIJING
from yinsi.cli.errors import db_error_message, redact
from yinsi.protect.crypto import Algorithm, algorithm_support, preferred_sm_algorithm
from yinsi.protect.errors import ProtectError
from yinsi.protect.generalise import age_band, city_of
from yinsi.protect.keys import KeyRing, Suite, create_master_key_file, master_key_path
from yinsi.protect.rotation import (
    DEFAULT_BATCH_SIZE,
    ColumnProgress,
    EncryptedColumn,
    RotationTarget,
    registered_columns,
    rotate_data_key,
)
from yinsi.protect.stats import DEFAULT_K, Release, StatsError, read_csv, release_counts
from yinsi.storage import InvalidDatabaseUrl, StorageError, make_engine

keys_app = typer.Typer(help="加密密钥：主密钥、租户密钥、密钥轮换。", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

URL_HELP = "Yinsi 数据库地址（SQLAlchemy URL）；默认取环境变量 YINSI_DATABASE_URL，否则为 ./.yinsi/yinsi.db"


def _error(message: str) -> None:
    err_console.print(f"[red]错误[/red] {escape(redact(message))}", highlight=False, soft_wrap=True)


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Expected failures become a Chinese message and an exit code, never a traceback."""
    try:
        yield
    except InvalidDatabaseUrl as exc:
        _error(str(exc))
        raise typer.Exit(2) from None
    except StatsError as exc:
        _error(str(exc))
        raise typer.Exit(2) from None
    except (ProtectError, StorageError) as exc:
        _error(str(exc))
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:
        _error(db_error_message(exc))
        raise typer.Exit(1) from None


# --- keys -------------------------------------------------------------------------------------------


@keys_app.command("init")
def keys_init(
    file: Path | None = typer.Option(
        None, "--file", help="主密钥文件路径；默认取 YINSI_MASTER_KEY_FILE，否则为数据目录下的 master.key"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """生成主密钥文件（权限 0600）；已存在时不会覆盖。"""
    from yinsi.services.audit_trail import refuse_if_database_has_keys

    with _friendly_errors():
        target = file.expanduser().resolve() if file else master_key_path()
        if not target.exists():  # a new master key is useless, and dangerous, beside keys wrapped by another
            refuse_if_database_has_keys(url)
        key = create_master_key_file(target)
    console.print(f"[green]已生成[/green]主密钥文件：{escape(key.source)}（指纹 {key.fingerprint}）", highlight=False)
    console.print("请另行安全备份此文件：丢失后，所有加密数据都无法解密。", highlight=False)


@keys_app.command("create")
def keys_create(
    tenant: str = typer.Argument(..., help="租户标识"),
    suite: Suite = typer.Option(Suite.STANDARD, "--suite", help="standard：AES-256-GCM 与 HMAC-SHA256；sm：国密 SM4 与 HMAC-SM3"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """为租户生成数据密钥、盲索引密钥与假名密钥（以主密钥封装后存入数据库）。"""
    with _friendly_errors(), KeyRing.open(url) as ring:
        created = ring.provision(tenant, suite)
        current = ring.suite(tenant)
    if created:
        console.print(f"[green]已为租户 {escape(tenant)} 生成密钥[/green]（算法套件：{current.value}）", highlight=False)
    else:
        console.print(f"租户 {escape(tenant)} 已有密钥（算法套件：{current.value}），未重复生成", highlight=False)


@keys_app.command("list")
def keys_list(
    tenant: str | None = typer.Argument(None, help="租户标识；省略则列出所有租户"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """列出密钥版本及其状态（从不显示密钥本身）。"""
    with _friendly_errors(), KeyRing.open(url) as ring:
        infos = ring.list_keys(tenant)
    if as_json:
        print(json.dumps([{
            "tenant": i.tenant, "purpose": i.purpose, "version": i.version, "algorithm": i.algorithm,
            "status": i.status, "master_key_id": i.master_key_id, "created_at": i.created_at.isoformat(),
            "retired_at": i.retired_at.isoformat() if i.retired_at else None,
        } for i in infos], ensure_ascii=False, indent=2))
        return
    if not infos:
        console.print("没有密钥。请运行：yinsi keys create 租户标识", highlight=False)
        return
    purposes = {"data": "字段加密", "index": "盲索引", "pseudonym": "假名"}
    statuses = {"active": "使用中", "retiring": "待停用", "retired": "已停用"}
    table = Table(title="密钥版本")
    for col in ("租户", "用途", "版本", "算法", "状态", "主密钥指纹", "创建时间（北京时间）"):
        table.add_column(col)
    for i in infos:
        table.add_row(escape(i.tenant), purposes.get(i.purpose, i.purpose), str(i.version), i.algorithm,
                      statuses.get(i.status, i.status), i.master_key_id,
                      i.created_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@keys_app.command("algorithms")
def keys_algorithms(as_json: bool = typer.Option(False, "--json", help="以 JSON 输出")) -> None:
    """显示本机支持的加密算法（国密 SM2/SM3/SM4 的支持情况）。"""
    from cryptography import __version__ as crypto_version
    from cryptography.hazmat.backends.openssl.backend import backend

    support: dict[str, Any] = dict(algorithm_support())
    support["sm2 (gmssl)"] = True
    info = {"cryptography": crypto_version, "openssl": backend.openssl_version_text(), "algorithms": support,
            "sm_suite_field_algorithm": preferred_sm_algorithm().value}
    if as_json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
        return
    console.print(f"cryptography {crypto_version}，{backend.openssl_version_text()}", highlight=False)
    table = Table()
    table.add_column("算法")
    table.add_column("支持")
    for name, ok in support.items():
        table.add_row(name, "[green]是[/green]" if ok else "[red]否[/red]")
    console.print(table)
    console.print(f"国密套件（--suite sm）的字段加密算法：{preferred_sm_algorithm().value}", highlight=False)


def _cli_columns(engine: Any, table: str | None, columns: list[str]) -> list[EncryptedColumn]:
    out: list[EncryptedColumn] = []
    for spec in columns:
        name, _, field = spec.partition("=")
        if "." in name:
            tbl, _, col = name.partition(".")
        elif table:
            tbl, col = table, name
        else:
            raise ProtectError(f"列 {spec} 未指明所在的表：请写成 表名.列名，或同时给出 --table")
        if not tbl or not col:
            raise ProtectError(f"无法解析列 {spec}（格式：表名.列名[=字段名]）")
        names = {c["name"] for c in inspect(engine).get_columns(tbl)} if inspect(engine).has_table(tbl) else set()
        out.append(EncryptedColumn(tbl, col, field=field or None,
                                   tenant_column="tenant_id" if "tenant_id" in names else None))
    if table and not columns:
        raise ProtectError("给出了 --table 但没有 --column")
    return out


@keys_app.command("rotate")
def keys_rotate(
    tenant: str = typer.Argument(..., help="租户标识"),
    table: str | None = typer.Option(None, "--table", help="加密列所在的表（--column 只写列名时）"),
    column: list[str] = typer.Option([], "--column", help="要重新加密的列：列名、表名.列名，或 表名.列名=字段名；可重复"),
    algorithm: Algorithm | None = typer.Option(None, "--algorithm", help="新版本使用的算法；默认与当前版本相同"),
    batch_size: int = typer.Option(DEFAULT_BATCH_SIZE, "--batch-size", min=1, help="每批处理的行数（每批提交一次）"),
    pause: float = typer.Option(0.0, "--pause", min=0.0, help="每批之间暂停的秒数（减轻生产数据库的负担）"),
    data_url: str | None = typer.Option(None, "--data-url", help="--column 所在的数据库；默认为 Yinsi 数据库"),
    url: str | None = typer.Option(None, "--url", help=URL_HELP),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出结果"),
) -> None:
    """生成新的数据密钥版本，并重新加密所有已登记的密文；中断后再次运行即从中断处继续。"""
    data_engine = None
    try:
        with _friendly_errors(), KeyRing.open(url) as ring:
            data_engine = make_engine(data_url) if data_url else ring.engine
            targets = [RotationTarget(ring.engine, c) for c in registered_columns()]
            targets += [RotationTarget(data_engine, c) for c in _cli_columns(data_engine, table, column)]
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err_console, transient=False, disable=as_json) as progress:
                tasks: dict[str, TaskID] = {}

                def show(p: ColumnProgress) -> None:
                    label = f"{p.label}（第 {p.pass_no} 遍{'，核对' if p.pass_no > 1 else ''}）"
                    total = max(p.total, p.seen)
                    if p.label not in tasks:
                        tasks[p.label] = progress.add_task(label, total=total)
                    progress.update(tasks[p.label], description=label, total=total,
                                    completed=total if p.finished else p.seen)

                result = rotate_data_key(ring, tenant, targets, algorithm=algorithm, batch_size=batch_size,
                                         pause=pause, on_progress=show)
    except KeyboardInterrupt:
        _error("轮换已中断；已提交的批次不会丢失，再次运行同一命令即可从中断处继续")
        raise typer.Exit(130) from None
    finally:
        if data_url and data_engine is not None:
            data_engine.dispose()
    if as_json:
        print(json.dumps({
            "tenant": result.tenant, "to_version": result.to_version, "algorithm": result.algorithm,
            "resumed": result.resumed, "retired_versions": result.retired_versions,
            "columns": [{"column": c.label, "passes": c.pass_no, "reencrypted": c.total_reencrypted}
                        for c in result.columns],
            "files": [{"files": c.label, "reencrypted": c.total_reencrypted} for c in result.files],
        }, ensure_ascii=False, indent=2))
        return
    verb = "已继续完成" if result.resumed else "已完成"
    console.print(f"[green]{verb}[/green]租户 {escape(tenant)} 的密钥轮换：当前版本 {result.to_version}（{result.algorithm}）",
                  highlight=False)
    for c in result.columns:
        console.print(f"  {escape(c.label)}：重新加密 {c.total_reencrypted} 行（共 {c.pass_no} 遍）", highlight=False)
    for c in result.files:
        console.print(f"  {escape(c.label)}：重新加密 {c.total_reencrypted} 个文件", highlight=False)
    if result.retired_versions:
        console.print(f"已停用旧版本：{', '.join(map(str, result.retired_versions))}", highlight=False)


# --- stats ------------------------------------------------------------------------------------------


class Noise(StrEnum):
    NONE = "none"
    LAPLACE = "laplace"


def _generalise(rows: list[dict[str, str]], age_cols: list[str], city_cols: list[str]) -> None:
    for col in [*age_cols, *city_cols]:
        if rows and col not in rows[0]:
            raise StatsError(f"数据中没有列：{col}（现有列：{', '.join(rows[0])}）")
    for line, row in enumerate(rows, start=2):
        for col in age_cols:
            value = (row.get(col) or "").strip()
            if not value:
                row[col] = "未知"
                continue
            try:
                row[col] = age_band(int(value))
            except ValueError:
                raise StatsError(f"第 {line} 行的 {col} 不是有效年龄") from None
        for col in city_cols:
            row[col] = city_of(row.get(col) or "") or "未知"


def _print_release(release: Release, noise_note: str) -> None:
    table = Table(title="分组统计")
    for col in release.group_by:
        table.add_column(escape(col))
    table.add_column("人数", justify="right")
    for cell in release.cells:
        table.add_row(*(escape(v) if v else "（空）" for v in cell.group), str(cell.count))
    console.print(table)
    console.print(f"已隐藏 {release.suppressed} 个人数少于 {release.k} 的分组（k={release.k}）。{noise_note}",
                  highlight=False)


@app.command("stats")
def stats(
    file: Path = typer.Argument(..., help="CSV 文件（首行为表头）", exists=True, dir_okay=False, readable=True),
    group_by: str = typer.Option(..., "--group-by", help="分组列，逗号分隔，例如 city,age"),
    k: int = typer.Option(DEFAULT_K, "--k", min=1, help="人数少于 k 的分组不予显示"),
    noise: Noise = typer.Option(Noise.NONE, "--noise", help="laplace：加入校准的（离散）拉普拉斯噪声"),
    epsilon: float | None = typer.Option(None, "--epsilon", help="隐私预算 ε（噪声尺度 1/ε）；默认 1.0"),
    seed: int | None = typer.Option(None, "--seed", help="噪声的随机种子（仅用于测试：固定种子的噪声可被复现）"),
    age_cols: list[str] = typer.Option([], "--age-band", help="把该列的年龄泛化为年龄段后再分组；可重复"),
    city_cols: list[str] = typer.Option([], "--city", help="把该列的地址泛化为城市后再分组；可重复"),
    encoding: str = typer.Option("utf-8-sig", "--encoding", help="文件编码；Excel 导出的 GBK 文件用 gb18030"),
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"),
) -> None:
    """按列分组计数并发布：小于 k 的分组隐藏，可加入差分隐私噪声。"""
    with _friendly_errors():
        if epsilon is not None and noise is Noise.NONE:
            raise StatsError("给出了 --epsilon，但未启用噪声；请同时指定 --noise laplace")
        eps = (1.0 if epsilon is None else epsilon) if noise is Noise.LAPLACE else None
        columns = [c.strip() for c in group_by.split(",") if c.strip()]
        rows = read_csv(file, encoding)
        _generalise(rows, age_cols, city_cols)
        rng = random.Random(seed) if seed is not None else None
        release = release_counts(rows, columns, k=k, epsilon=eps, rng=rng)
    if seed is not None and eps is not None:
        err_console.print("[yellow]警告[/yellow] 使用了固定的随机种子：噪声可被复现，不要用于真实发布", highlight=False)
    if as_json:
        print(json.dumps(release.to_dict(), ensure_ascii=False, indent=2))
        return
    note = f"已加入离散拉普拉斯噪声（ε={eps:g}，尺度 1/ε={1 / eps:g}）。" if eps is not None else "未加噪声。"
    _print_release(release, note)
