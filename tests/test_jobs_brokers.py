"""The jobs module on the real brokers (RabbitMQ and Redis through Dramatiq): enqueue, run, retry and the
dead-letter list; a duplicated message runs the effect once; a lost message is recovered by the
scheduler's sweep; a worker process killed with ``kill -9`` mid-job leaves a job another worker finishes
once the lease runs out. A broker that is not running skips its tests (fails them with
``YINSI_REQUIRE_SERVICES=1``). Short leases keep the tests fast; waits poll for a state, never for a time."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests import jobs_tasks  # noqa: F401  (registers the test tasks)
from tests.test_jobs import Clock, _setup, effects
from yinsi import jobs
from yinsi.jobs.runner import Runner
from yinsi.jobs.store import JobStore
from yinsi.jobs.transports import DEFAULT_URLS, DramatiqTransport, EmbeddedTransport
from yinsi.jobs.worker import Scheduler, run_until_idle, serve_broker

pytestmark = pytest.mark.usefixtures("isolated_env")

ROOT = Path(__file__).resolve().parents[1]
BROKER_URLS = {"rabbitmq": os.environ.get("YINSI_TEST_RABBITMQ_URL", DEFAULT_URLS["rabbitmq"]),
               "redis": os.environ.get("YINSI_TEST_REDIS_URL", DEFAULT_URLS["redis"])}
NAMES = {"rabbitmq": "RabbitMQ", "redis": "Redis"}
WAIT = 90.0  # seconds a condition may take on a loaded machine before the test gives up


def _reachable(url: str) -> str | None:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), timeout=3):
            return None
    except OSError as exc:
        return str(exc) or type(exc).__name__


def require_broker(kind: str) -> str:
    url = BROKER_URLS[kind]
    reason = _reachable(url)
    if reason is not None:
        message = f"{NAMES[kind]} 不可用: {reason}"
        if os.environ.get("YINSI_REQUIRE_SERVICES") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url


def wait_for(what: str, check: Callable[[], bool], every: float = 0.1, tick: Callable[[], Any] | None = None) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        if tick is not None:
            tick()
        time.sleep(every)


def queue_name() -> str:
    return f"yinsi_jobs_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@pytest.fixture(params=["rabbitmq", "redis"])
def broker(request: pytest.FixtureRequest) -> Iterator[DramatiqTransport]:
    url = require_broker(request.param)
    transport = DramatiqTransport(request.param, url, queue=queue_name())
    transport.broker.flush_all()
    jobs.configure(transport)
    try:
        yield transport
    finally:
        jobs.configure(EmbeddedTransport())
        transport.broker.flush_all()
        transport.close()


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, JobStore]:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    store = _setup(url, Clock(datetime.now(UTC)))
    return url, JobStore(store.sessions)  # the real clock: brokers and processes run in real time


class CountingRunner(Runner):
    """Counts the messages handed to it (claimed or refused)."""

    calls = 0

    def run(self, job_id: int) -> Any:
        try:
            return super().run(job_id)
        finally:
            self.calls += 1


def start(runner: CountingRunner, broker: DramatiqTransport) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=serve_broker, args=(runner, broker), kwargs={"threads": 1, "stop": stop},
                     daemon=True).start()
    return stop


def state(store: JobStore, job_id: int) -> str:
    job = store.get(job_id, any_tenant=True)
    assert job is not None
    return job.state


def test_enqueue_run_retry_and_dead_letter_through_the_broker(db: tuple[str, JobStore],
                                                              broker: DramatiqTransport) -> None:
    url, store = db
    stop = start(CountingRunner(store, url, broker, timedelta(seconds=5)), broker)
    try:
        ok = jobs.enqueue("test.effect", {"n": 1}, key="b:ok", tenant="t1", url=url)
        flaky = jobs.enqueue("test.flaky", key="b:flaky", tenant="t1", url=url)
        failing = jobs.enqueue("test.failing", key="b:failing", tenant="t1", url=url)
        assert jobs.enqueue("test.effect", {"n": 1}, key="b:ok", tenant="t1", url=url) == ok
        wait_for("all three settled", lambda: [state(store, j) for j in (ok, flaky, failing)] == ["done", "done", "dead"])
        assert sorted(effects(store)) == [("b:flaky", 2), ("b:ok", 1)]
        dead = store.list(tenant="t1", state="dead")
        assert [(j.id, j.attempts, j.last_error) for j in dead] == [(failing, 2, "RuntimeError: always fails")]
        assert store.retry(failing, tenant="t1")
        broker.publish(failing)
        wait_for("the retried job dead again", lambda: state(store, failing) == "dead"
                 and store.get(failing, any_tenant=True).attempts == 2)  # type: ignore[union-attr]
    finally:
        stop.set()


def test_a_duplicated_message_runs_the_effect_once(db: tuple[str, JobStore], broker: DramatiqTransport) -> None:
    url, store = db
    job_id, _ = store.enqueue("test.effect", key="b:dup", tenant="t1")
    for _ in range(5):
        broker.publish(job_id)  # the same id five times (a redelivery, a publish repeated after a timeout …)
    runner = CountingRunner(store, url, broker, timedelta(seconds=5))
    stop = start(runner, broker)
    try:
        wait_for("five messages handled", lambda: runner.calls >= 5)
    finally:
        stop.set()
    assert effects(store, "b:dup") == [("b:dup", 1)]
    job = store.get(job_id, tenant="t1")
    assert job is not None and job.state == "done" and job.attempts == 1


def test_a_lost_message_is_recovered_by_the_schedulers_sweep(db: tuple[str, JobStore],
                                                              broker: DramatiqTransport) -> None:
    url, store = db
    runner = CountingRunner(store, url, broker, timedelta(seconds=5))
    stop = start(runner, broker)
    try:
        job_id, _ = store.enqueue("test.effect", key="b:lost", tenant="t1")  # committed, its message lost
        job = store.get(job_id, tenant="t1")
        assert job is not None and job.state == "queued" and job.lease_owner is None
        report = Scheduler(store, broker, grace=timedelta(0)).tick()  # grace 0: the sweep does not wait
        assert job_id in report.republished
        wait_for("the lost job done", lambda: state(store, job_id) == "done")
    finally:
        stop.set()
    assert effects(store, "b:lost") == [("b:lost", 1)]


@pytest.mark.parametrize("kind", ["embedded", "rabbitmq", "redis"])
def test_a_worker_killed_mid_job_leaves_it_to_another_worker_after_the_lease(kind: str, tmp_path: Path) -> None:
    broker_url = require_broker(kind) if kind != "embedded" else ""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    store = JobStore(_setup(url, Clock(datetime.now(UTC))).sessions)
    transport: Any = EmbeddedTransport()
    if kind != "embedded":
        transport = DramatiqTransport(kind, broker_url, queue=queue_name())
        transport.broker.flush_all()
    jobs.configure(transport)
    env = {**os.environ, "YINSI_JOBS_QUEUE": queue_name(), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "yinsi.cli.main", "worker", "--url", url, "--broker", kind, "--lease", "1",
           "--threads", "1", "--poll", "0.1", "--no-scheduler", "--import", "tests.jobs_tasks"]
    if broker_url:
        cmd += ["--broker-url", broker_url]
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = threading.Event()
    try:
        job_id = jobs.enqueue("test.slow", {"seconds": 600}, key="b:kill", tenant="t1", url=url)
        wait_for("the first worker holds the job", lambda: state(store, job_id) == "running")
        held = store.get(job_id, any_tenant=True)
        assert held is not None and held.attempts == 1 and held.lease_owner
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        second = Runner(store, url, transport, timedelta(seconds=5))
        if kind == "embedded":
            wait_for("another worker finished it", lambda: state(store, job_id) == "done",
                     tick=lambda: run_until_idle(second))
        else:
            threading.Thread(target=serve_broker, args=(second, transport), kwargs={"threads": 1, "stop": stop},
                             daemon=True).start()
            sweep = Scheduler(store, transport, grace=timedelta(0))
            wait_for("another worker finished it", lambda: state(store, job_id) == "done", every=0.3, tick=sweep.tick)
    finally:
        stop.set()
        if first.poll() is None:
            first.kill()
            first.wait()
        jobs.configure(EmbeddedTransport())
        if kind != "embedded":
            transport.broker.flush_all()
            transport.close()
    done = store.get(job_id, any_tenant=True)
    assert done is not None and done.attempts == 2 and done.lease_owner is None
    assert effects(store, "b:kill") == [("b:kill", 2)]  # the killed attempt left no effect; the second one did
