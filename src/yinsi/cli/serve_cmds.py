"""``yinsi serve``: the HTTP API (docs/api.md) under uvicorn."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import typer

from yinsi.cli.apps import app, console, err_console

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="监听地址（对外服务请置于 TLS 反向代理之后）"),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="监听端口"),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="工作进程数（多进程共享同一数据库）"),
    demo: bool = typer.Option(False, "--demo", help="演示：新建嵌入式数据目录，发布五个种子声明，建立微聊客演示应用、"
                                                    "演示工作人员账号与应用密钥，并打印登录方法"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="数据目录（--demo 默认 ./.yinsi/demo-serve，每次重新创建；"
                                                                 "否则同 YINSI_DATA_DIR）"),
    policies: Path | None = typer.Option(None, "--policies", help="--demo：种子声明所在目录（默认 ./policies）"),
) -> None:
    """启动 HTTP 服务（API）。"""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    banner: str | None = None
    if demo:
        from yinsi.api import demo as demo_setup
        from yinsi.storage.errors import StorageError

        with console.status("准备演示数据（发布种子声明、生成演示应用、创建账号与密钥）…"):
            try:
                setup = demo_setup.prepare(data_dir or demo_setup.DEFAULT_DIR, policies=policies)
            except (demo_setup.DemoDirError, StorageError) as exc:
                err_console.print(f"[red]无法准备演示数据[/red]：{exc}", highlight=False)
                raise typer.Exit(2) from None
        # every worker process reads the same settings from the environment
        os.environ["YINSI_DATAMAP"] = str(setup.datamap_file)
        os.environ["YINSI_STORES"] = ",".join(f"{k}={v}" for k, v in setup.store_urls.items())
        banner = demo_setup.instructions(setup, base_url)
        demo_setup.write_info(setup, banner)
    elif data_dir is not None:
        os.environ["YINSI_DATA_DIR"] = str(data_dir.expanduser().resolve())

    from yinsi.api.settings import ApiSettings

    try:
        ApiSettings.from_env()  # fail here, with a message, rather than in every worker
    except Exception as exc:
        err_console.print(f"[red]配置有误[/red]：{exc}", highlight=False)
        raise typer.Exit(2) from None
    if banner:
        console.print(banner, highlight=False, markup=False, soft_wrap=True)
    else:
        console.print(f"Yinsi API：{base_url}（接口文档 {base_url}/docs）；按 Ctrl+C 停止", highlight=False)
    # No access log from uvicorn (its lines carry paths with their values and query strings, which may be
    # PI); the API logs method, route template, status, duration and request id instead.
    uvicorn.run("yinsi.api.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_level="info", timeout_graceful_shutdown=30, server_header=False,
                proxy_headers=False)
