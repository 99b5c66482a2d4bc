"""``yinsi freetext index``: the free-text index (who is mentioned where) brought up to date."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from yinsi.cli.apps import app, console, err_console, exit_on
from yinsi.cli.errors import redact

freetext_app = typer.Typer(help="自由文本：建立与更新标识索引（删除、复制、回读据此查找被提及的人）。", no_args_is_help=True)
app.add_typer(freetext_app, name="freetext")

URL = typer.Option(None, "--url", help="Yinsi 数据库（索引所在；默认 YINSI_DATABASE_URL 或 ./.yinsi/yinsi.db）")
DATAMAP = typer.Option(None, "--datamap", help="租户的数据地图 YAML（默认环境变量 YINSI_DATAMAP）")
STORES = typer.Option([], "--store", help="存储地址 STORE=URL，可重复（默认 YINSI_STORES，再默认 connection.env）")


@freetext_app.command("index")
def index_cmd(tenant: str, datamap: Path | None = DATAMAP, store: list[str] = STORES, url: str | None = URL,
              as_json: bool = typer.Option(False, "--json", help="以 JSON 输出")) -> None:
    """为数据地图中的自由文本列建立或更新索引（只读上次之后新增或更新的行；只存带密钥的哈希，不存文本与标识）。"""
    from yinsi.cli.rights_cmds import _store_urls
    from yinsi.datamap_io import load_datamap
    from yinsi.protect.errors import ProtectError
    from yinsi.rights.context import RequestError, RightsContext
    from yinsi.rights.freetext import build_index
    from yinsi.storage.errors import StorageError
    from yinsi.stores.base import StoreUnavailable

    path = datamap or (Path(os.environ["YINSI_DATAMAP"]) if os.environ.get("YINSI_DATAMAP") else None)
    if path is None:
        err_console.print("[red]缺少数据地图[/red]：用 --datamap 或环境变量 YINSI_DATAMAP 指定")
        raise typer.Exit(2)
    try:
        dm = load_datamap(path).datamap
    except Exception as exc:
        err_console.print(f"[red]数据地图无效[/red]：{escape(redact(str(exc)))}")
        raise typer.Exit(2) from None
    with exit_on((StorageError, "数据库错误", 2)):
        ctx = RightsContext(url, datamaps={tenant: dm}, store_urls=_store_urls(store))
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err_console, disable=as_json)
    tasks: dict[str, Any] = {}

    def totals(name: str, n: int) -> None:
        tasks[name] = bar.add_task(name, total=n)

    def progress(name: str, n: int) -> None:
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=None)
        bar.advance(tasks[name], n)

    try:
        with bar, exit_on(((RequestError, StoreUnavailable, StorageError, ProtectError), "索引未完成", 1)):
            done = build_index(ctx, tenant, dm, progress, totals)
    finally:
        ctx.close()
    if as_json:
        console.print_json(json.dumps({"tenant": tenant, "columns": done}, ensure_ascii=False))
        return
    if not done:
        console.print("数据地图中没有自由文本列（free_text: true）")
    for d in done:
        console.print(escape(f"{d['column']}：本次读取 {d['read']} 行，累计索引 {d['rows_indexed']} 行，"
                             f"主键水位 {d['key_mark'] or '—'}"))
