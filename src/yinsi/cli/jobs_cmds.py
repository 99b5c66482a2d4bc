"""``yinsi worker``, ``yinsi scheduler`` and ``yinsi jobs list|show|dead|retry`` (docs/jobs.md).

Operator commands: they act as ``system`` with the database's credentials (like ``yinsi request work``);
staff see their tenant's dead-letter list in the console and the API, role-checked.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import timedelta
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from yinsi.cli.apps import app, console, err_console, exit_on, json_option, url_option

jobs_app = typer.Typer(help="作业队列：列出、查看、死信列表、重试。", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")

BROKER = typer.Option(None, "--broker", help="消息代理：embedded（默认，进程内轮询数据库）、rabbitmq 或 redis；"
                                             "默认取 YINSI_JOBS_BROKER")
BROKER_URL = typer.Option(None, "--broker-url", help="代理地址；默认取 YINSI_JOBS_BROKER_URL，"
                                                     "否则 amqp://guest:guest@127.0.0.1:5672 或 redis://127.0.0.1:6379/0")
IMPORTS = typer.Option([], "--import", help="另外导入的作业模块（注册作业），可重复")


def _errors() -> Any:
    from yinsi.jobs.errors import JobError
    from yinsi.storage.errors import StorageError

    return exit_on((JobError, "作业", 2), (StorageError, "数据库错误", 2))


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(_sig: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _setup(url: str | None, broker: str | None, broker_url: str | None, imports: list[str]) -> tuple[Any, Any, str]:
    from yinsi import jobs
    from yinsi.config import database_url

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "pika", "dramatiq"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    jobs.load_task_modules(imports)
    db = url or database_url()
    store = jobs.store_for(db)
    jobs.configure(broker=broker, broker_url=broker_url)
    return store, jobs.transport(), db


@app.command("worker")
def worker(url: str | None = url_option(), broker: str | None = BROKER, broker_url: str | None = BROKER_URL,
           threads: int = typer.Option(2, "--threads", min=1, max=64, help="并行执行的作业数"),
           lease: float | None = typer.Option(None, "--lease", min=0.5, help="租约秒数（默认按作业类型，5 分钟）"),
           poll: float = typer.Option(1.0, "--poll", min=0.05, help="内置模式轮询数据库的间隔秒数"),
           scheduler: bool | None = typer.Option(None, "--scheduler/--no-scheduler",
                                                 help="同时运行调度器（内置模式默认是，使用代理时默认否）"),
           once: bool = typer.Option(False, "--once", help="执行完当前到期的作业后退出（仅内置模式）"),
           imports: list[str] = IMPORTS) -> None:
    """执行作业：内置模式轮询数据库，或从 RabbitMQ/Redis 接收作业编号；以数据库租约认领。"""
    from yinsi.jobs.runner import Runner
    from yinsi.jobs.transports import DramatiqTransport
    from yinsi.jobs.worker import Scheduler, run_embedded, run_until_idle, serve_broker

    with _errors():
        store, transport, db = _setup(url, broker, broker_url, imports)
        runner = Runner(store, db, transport, timedelta(seconds=lease) if lease else None)
        if once:
            outcomes = run_until_idle(runner)
            console.print(f"执行 {len(outcomes)} 次：" + "，".join(
                f"{s} {sum(1 for o in outcomes if o.state == s)}" for s in ("done", "queued", "dead", "lost")))
            return
        stop = _stop_on_signals()
        err_console.print(f"工作进程已启动（{transport.kind}，{threads} 线程）；Ctrl+C 停止", highlight=False)
        if isinstance(transport, DramatiqTransport):
            ticker = None
            if scheduler:
                ticker = threading.Thread(target=_tick_loop, args=(Scheduler(store, transport), stop, 30.0), daemon=True)
                ticker.start()
            serve_broker(runner, transport, threads=threads, stop=stop)
        else:
            run_embedded(runner, threads=threads, poll=poll, stop=stop,
                         scheduler=Scheduler(store, transport) if scheduler is not False else None)
        transport.close()


def _tick_loop(sched: Any, stop: threading.Event, every: float) -> None:
    while not stop.is_set():
        try:
            report = sched.tick()
            if report.enqueued or report.republished:
                logging.getLogger("yinsi.jobs").info("scheduler: %d enqueued, %d republished",
                                                     len(report.enqueued), len(report.republished))
        except Exception as exc:
            logging.getLogger("yinsi.jobs").warning("scheduler tick failed: %s", type(exc).__name__)
        stop.wait(every)


@app.command("scheduler")
def scheduler_cmd(url: str | None = url_option(), broker: str | None = BROKER, broker_url: str | None = BROKER_URL,
                  every: float = typer.Option(30.0, "--every", min=0.05, help="每隔多少秒检查一次"),
                  grace: float = typer.Option(120.0, "--grace", min=0.0, help="到期作业的消息多少秒未被执行即重发"),
                  once: bool = typer.Option(False, "--once", help="只检查一次"),
                  imports: list[str] = IMPORTS) -> None:
    """调度器：按北京时间的定时计划入队（每个到期时刻恰好一次），并重发消息丢失的到期作业。"""
    from yinsi.jobs.worker import Scheduler

    with _errors():
        store, transport, _ = _setup(url, broker, broker_url, imports)
        sched = Scheduler(store, transport, timedelta(seconds=grace))
        if once:
            report = sched.tick()
            console.print(f"入队 {len(report.enqueued)} 项，重发 {len(report.republished)} 项")
            transport.close()
            return
        stop = _stop_on_signals()
        err_console.print(f"调度器已启动（{transport.kind}）；Ctrl+C 停止", highlight=False)
        _tick_loop(sched, stop, every)
        transport.close()


def _store(url: str | None) -> Any:
    from yinsi import jobs

    jobs.load_task_modules()
    return jobs.store_for(url)


def _table(title: str, rows: list[Any]) -> None:
    from yinsi.jobs.registry import SHANGHAI
    from yinsi.jobs.store import STATE_ZH, JobState

    t = Table(title=title)
    for col in ("编号", "租户", "作业", "状态", "尝试", "下次执行（北京时间）", "最后错误"):
        t.add_column(col)
    for j in rows:
        t.add_row(str(j.id), escape(j.tenant or "-"), escape(j.name), STATE_ZH.get(JobState(j.state), j.state),
                  f"{j.attempts}/{j.max_attempts}", f"{j.run_after.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}",
                  escape((j.last_error or "")[:80]))
    console.print(t)


@jobs_app.command("list")
def jobs_list(tenant: str | None = typer.Option(None, "--tenant", help="只列此租户的作业（默认全部）"),
              state: str | None = typer.Option(None, "--state", help="queued、running、done 或 dead"),
              name: str | None = typer.Option(None, "--name", help="只列此类作业"),
              limit: int = typer.Option(100, "--limit", min=1, max=10000, help="最多列出多少项（最新的在前）"),
              url: str | None = url_option(), as_json: bool = json_option()) -> None:
    """列出作业（最新的在前）。"""
    if state is not None and state not in ("queued", "running", "done", "dead"):
        raise typer.BadParameter("--state 应为 queued、running、done 或 dead")
    with _errors():
        rows = _store(url).list(tenant=tenant, any_tenant=tenant is None, state=state, name=name, limit=limit)
    if as_json:
        print(json.dumps([j.to_json() for j in rows], ensure_ascii=False))
        return
    _table("作业", rows)


@jobs_app.command("dead")
def jobs_dead(tenant: str | None = typer.Option(None, "--tenant", help="只列此租户的作业（默认全部）"),
              limit: int = typer.Option(100, "--limit", min=1, max=10000, help="最多列出多少项"),
              url: str | None = url_option(), as_json: bool = json_option()) -> None:
    """死信列表：多次失败后放弃的作业（yinsi jobs retry 编号 可重新入队）。"""
    with _errors():
        rows = _store(url).list(tenant=tenant, any_tenant=tenant is None, state="dead", limit=limit)
    if as_json:
        print(json.dumps([j.to_json() for j in rows], ensure_ascii=False))
        return
    if not rows:
        console.print("死信列表为空")
        return
    _table("死信列表", rows)


@jobs_app.command("show")
def jobs_show(job_id: int, url: str | None = url_option(), as_json: bool = json_option()) -> None:
    """查看一个作业：状态、尝试次数、租约、最后错误与结果。"""
    with _errors():
        job = _store(url).get(job_id, any_tenant=True)
    if job is None:
        err_console.print(f"[red]没有编号为 {job_id} 的作业[/red]")
        raise typer.Exit(1)
    data = job.to_json()
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
        return
    for k, v in data.items():
        console.print(f"{k}: {escape(json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v))}",
                      highlight=False)


@jobs_app.command("retry")
def jobs_retry(job_id: int, url: str | None = url_option()) -> None:
    """把死信列表中的作业重新入队（尝试次数清零）。"""
    from yinsi import jobs

    with _errors():
        store = _store(url)
        if not store.retry(job_id, any_tenant=True):
            err_console.print(f"[red]作业 {job_id} 不在死信列表中[/red]")
            raise typer.Exit(1)
        try:
            jobs.transport().publish(job_id)
        except jobs.JobError:
            err_console.print("消息代理不可用：调度器的巡检会重发此作业", highlight=False)
    console.print(f"已重新入队：{job_id}")
