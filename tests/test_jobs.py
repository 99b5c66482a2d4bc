"""The jobs module without a broker: the table as source of truth (enqueue by key, claim by lease, retry
with backoff, dead-letter list, put back), periodic schedules in Beijing time enqueued exactly once per due
time, the sweep that finds lost messages, the embedded worker, and the CLI. A fixed clock throughout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests import jobs_tasks  # registers the test tasks
from yinsi import jobs
from yinsi.domain.cron import Cron, CronError
from yinsi.jobs.registry import PERIODICS
from yinsi.jobs.runner import Runner
from yinsi.jobs.store import JobStore
from yinsi.jobs.transports import EmbeddedTransport
from yinsi.jobs.worker import Scheduler, run_until_idle
from yinsi.storage import make_engine, make_session_factory, upgrade
from yinsi.storage.tables import Tenant

pytestmark = pytest.mark.usefixtures("isolated_env")

T0 = datetime(2026, 12, 3, 18, 59, 30, tzinfo=UTC)  # 02:59:30 on 4 December in Beijing


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


def _setup(url: str, clock: Clock) -> JobStore:
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(jobs_tasks.EFFECTS_DDL))
    sessions = make_session_factory(engine)
    with sessions() as s, s.begin():
        for t in ("t1", "t2"):
            s.add(Tenant(id=t, name=t, created_at=T0))
    return JobStore(sessions, clock)


def effects(store: JobStore, key: str | None = None) -> list[tuple[str, int]]:
    with store.sessions() as s:
        rows = s.execute(text("SELECT job_key, attempt FROM job_effects ORDER BY attempt")).all()
    return [(str(r[0]), int(r[1])) for r in rows if key is None or r[0] == key]


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> JobStore:
    return _setup(f"sqlite:///{tmp_path / 'jobs.db'}", clock)


@pytest.fixture
def only_periodics() -> Iterator[dict[str, jobs.Periodic]]:
    """The schedules of a test alone (the built-in ones are put back afterwards)."""
    saved = dict(PERIODICS)
    PERIODICS.clear()
    try:
        yield PERIODICS
    finally:
        PERIODICS.clear()
        PERIODICS.update(saved)


def runner(store: JobStore, lease: float = 60) -> Runner:
    return Runner(store, "unused", EmbeddedTransport(), timedelta(seconds=lease))


def test_a_job_runs_once_and_its_effect_commits_with_the_done_mark(store: JobStore) -> None:
    job_id, created = store.enqueue("test.effect", {"n": 1}, key="effect:1", tenant="t1")
    assert created
    assert store.enqueue("test.effect", {"n": 1}, key="effect:1", tenant="t1") == (job_id, False)  # same key
    outcomes = run_until_idle(runner(store))
    assert [(o.job_id, o.state, o.attempt) for o in outcomes] == [(job_id, "done", 1)]
    job = store.get(job_id, tenant="t1")
    assert job is not None and job.state == "done" and job.result == {"attempt": 1} and job.lease_owner is None
    assert effects(store) == [("effect:1", 1)]
    assert runner(store).run(job_id) is None  # a duplicate message for a done job runs nothing
    assert effects(store) == [("effect:1", 1)]
    assert store.get(job_id, tenant="t2") is None  # another tenant does not see it


def test_a_held_job_is_not_claimed_twice_until_its_lease_runs_out(store: JobStore, clock: Clock) -> None:
    job_id, _ = store.enqueue("test.effect", key="held")
    first = store.claim(job_id, "worker-a", timedelta(seconds=30))
    assert first is not None and first.attempt == 1
    assert store.claim(job_id, "worker-b", timedelta(seconds=30)) is None  # held
    clock.advance(seconds=29)
    assert store.heartbeat(first, timedelta(seconds=30))  # renewed until T0+59s
    clock.advance(seconds=30)
    assert store.claim(job_id, "worker-b", timedelta(seconds=30)) is None
    clock.advance(seconds=1)  # the holder stopped renewing (it died)
    second = store.claim(job_id, "worker-b", timedelta(seconds=30))
    assert second is not None and second.attempt == 2
    assert not store.heartbeat(first, timedelta(seconds=30))  # the first holder lost it
    with store.sessions() as s, s.begin():
        assert not store.finish_in(s, first)  # and can no longer mark it
    assert store.fail(first, "late", timedelta(seconds=1)) is None
    assert runner(store).run_claimed(second).state == "done"
    assert effects(store) == [("held", 2)]


def test_failures_are_retried_with_backoff_then_dead_lettered_and_can_be_put_back(store: JobStore,
                                                                                  clock: Clock) -> None:
    flaky, _ = store.enqueue("test.flaky", key="flaky", tenant="t1")
    failing, _ = store.enqueue("test.failing", key="failing", tenant="t1")
    permanent, _ = store.enqueue("test.permanent", key="permanent", tenant="t1")
    first = run_until_idle(runner(store))
    assert sorted((o.job_id, o.state) for o in first) == [(flaky, "queued"), (failing, "queued"), (permanent, "dead")]
    retry = store.get(flaky, tenant="t1")
    assert retry is not None and retry.run_after == T0 + timedelta(milliseconds=20)
    assert retry.last_error == "RuntimeError: temporary failure for ***********"  # digits scrubbed
    assert run_until_idle(runner(store)) == []  # not due yet
    clock.advance(seconds=1)
    second = run_until_idle(runner(store))
    assert sorted((o.job_id, o.state, o.attempt) for o in second) == [(flaky, "done", 2), (failing, "dead", 2)]
    assert effects(store) == [("flaky", 2)]
    dead = store.list(tenant="t1", state="dead")
    assert [j.id for j in dead] == [permanent, failing]
    assert dead[0].last_error == "PermanentJobError: cannot succeed" and dead[0].attempts == 1
    assert not store.retry(failing, tenant="t2")  # another tenant's
    assert not store.retry(flaky, tenant="t1")  # not dead
    assert store.retry(failing, tenant="t1")
    back = store.get(failing, tenant="t1")
    assert back is not None and back.state == "queued" and back.attempts == 0
    assert [o.attempt for o in run_until_idle(runner(store))] == [1]


def test_a_job_whose_attempts_all_died_is_dead_lettered_when_next_claimed(store: JobStore, clock: Clock) -> None:
    job_id, _ = store.enqueue("test.failing", key="dies")  # max_attempts 2
    for _ in range(2):
        assert store.claim(job_id, "w", timedelta(seconds=1)) is not None
        clock.advance(seconds=2)  # the worker died holding it
    assert store.claim(job_id, "w", timedelta(seconds=1)) is None
    job = store.get(job_id)
    assert job is not None and job.state == "dead" and job.last_error == "多次执行中断，已放弃"


def test_enqueue_in_commits_or_rolls_back_with_the_callers_transaction(store: JobStore) -> None:
    with store.sessions() as s:
        with s.begin():
            kept = jobs.enqueue_in(s, "test.effect", {"x": 1}, key="tx:kept", tenant="t1")
        s.begin()
        jobs.enqueue_in(s, "test.effect", key="tx:dropped", tenant="t1")
        s.rollback()
    assert store.by_key("tx:kept") is not None and store.by_key("tx:kept").id == kept  # type: ignore[union-attr]
    assert store.by_key("tx:dropped") is None


def test_bad_registrations_and_payloads_are_refused(store: JobStore) -> None:
    with pytest.raises(jobs.JobError, match="小写"):
        jobs.register_task("Bad Name", jobs_tasks.effect)
    with pytest.raises(jobs.JobError, match="另一函数"):
        jobs.register_task("test.effect", jobs_tasks.failing)
    with pytest.raises(jobs.JobError, match="5 个字段"):
        jobs.register_periodic("test.cron", jobs_tasks.daily, cron="0 3 * *")
    with pytest.raises(jobs.JobError, match="没有注册"):
        store.enqueue("no.such.task")
    with pytest.raises(jobs.JobError, match="JSON"):
        store.enqueue("test.effect", {"x": object()})
    with pytest.raises(jobs.JobError, match="过大"):
        store.enqueue("test.effect", {"x": "0" * 5000})


def test_cron_due_times_in_beijing_time() -> None:
    beijing = jobs.SHANGHAI
    daily = Cron.parse("0 3 * * *")
    at = T0.astimezone(beijing)  # 2026-12-04 02:59:30 Beijing
    assert daily.latest(at) == datetime(2026, 12, 3, 3, 0, tzinfo=beijing)
    assert daily.next(at) == datetime(2026, 12, 4, 3, 0, tzinfo=beijing)
    every5 = Cron.parse("*/5 9-17 * * 1-5")
    assert every5.latest(datetime(2026, 12, 5, 12, 0, tzinfo=beijing)) == datetime(2026, 12, 4, 17, 55, tzinfo=beijing)
    assert Cron.parse("0 0 29 2 *").next(at) == datetime(2028, 2, 29, 0, 0, tzinfo=beijing)
    # day of month OR day of week when both are restricted (Sunday as 0 or 7)
    either = Cron.parse("0 8 1 * 7")
    assert either.next(datetime(2026, 12, 1, 9, 0, tzinfo=beijing)) == datetime(2026, 12, 6, 8, 0, tzinfo=beijing)
    for bad in ("60 * * * *", "* * * * 8", "*/0 * * * *", "a * * * *", "5-1 * * * *"):
        with pytest.raises(CronError):
            Cron.parse(bad)


def test_the_scheduler_enqueues_each_due_time_exactly_once_per_tenant(store: JobStore, clock: Clock,
                                                                      only_periodics: dict[str, jobs.Periodic]) -> None:
    jobs.register_periodic("test.daily", jobs_tasks.daily, cron="0 3 * * *")
    jobs.register_periodic("test.system", jobs_tasks.daily, cron="0 3 * * *", per_tenant=False)
    one, two = Scheduler(store, EmbeddedTransport()), Scheduler(store, EmbeddedTransport())
    first = one.tick()  # 02:59:30 Beijing: the due time is yesterday's 03:00 (missed once: run once)
    assert sorted(first.enqueued) == ["periodic:test.daily:t1:2026-12-03T03:00", "periodic:test.daily:t2:2026-12-03T03:00",
                                      "periodic:test.system:-:2026-12-03T03:00"]
    assert one.tick().enqueued == [] and two.tick().enqueued == []  # a second tick or scheduler: nothing more
    clock.advance(seconds=30)  # 03:00:00 Beijing, 4 December
    assert len(one.tick().enqueued) == 3 and two.tick().enqueued == []
    clock.advance(hours=23, minutes=59)  # 02:59 the next day: still the same due time
    assert one.tick().enqueued == []
    run_until_idle(runner(store))
    keys = sorted(k for k, _ in effects(store))
    assert len(keys) == 6 and len(set(keys)) == 6
    job = store.by_key("periodic:test.daily:t1:2026-12-04T03:00")
    assert job is not None and job.tenant == "t1" and job.payload == {"due": "2026-12-04T03:00:00+08:00"}


def test_the_sweep_republishes_due_jobs_whose_message_was_lost(store: JobStore, clock: Clock,
                                                               only_periodics: dict[str, jobs.Periodic]) -> None:
    class Recorder(EmbeddedTransport):
        def __init__(self) -> None:
            super().__init__()
            self.sent: list[int] = []

        def publish(self, job_id: int, delay: timedelta | None = None) -> None:
            self.sent.append(job_id)

    transport = Recorder()
    lost, _ = store.enqueue("test.effect", key="lost")  # its message is lost
    later, _ = store.enqueue("test.effect", key="later", run_after=T0 + timedelta(hours=1))
    held, _ = store.enqueue("test.slow", key="held")
    assert store.claim(held, "dead-worker", timedelta(seconds=10)) is not None
    sched = Scheduler(store, transport, grace=timedelta(seconds=60))
    assert sched.tick().republished == []  # enqueued (published) within the grace period; the lease is live
    clock.advance(seconds=61)  # nobody ran the first one: its message was lost; the holder of the other died
    assert sorted(sched.tick().republished) == [lost, held]
    assert sched.tick().republished == []  # published again within the grace period
    clock.advance(hours=1)  # still nobody ran them: published again, and the later one is due now
    assert sorted(sched.tick().republished) == sorted([lost, held, later])
    assert transport.sent.count(lost) == 2


def test_worker_and_jobs_commands(tmp_path: Path, only_periodics: dict[str, jobs.Periodic]) -> None:
    from yinsi.cli.main import app

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = _setup(url, Clock(T0))
    real = JobStore(store.sessions)  # the commands read the real clock
    ok, _ = real.enqueue("test.effect", key="cli:ok", tenant="t1")
    bad, _ = real.enqueue("test.failing", key="cli:bad", tenant="t1", max_attempts=1)
    cli = CliRunner()
    args = ["--url", url, "--import", "tests.jobs_tasks"]
    result = cli.invoke(app, ["worker", *args, "--once", "--no-scheduler"])
    assert result.exit_code == 0, result.output
    assert "done 1" in result.output and "dead 1" in result.output
    listed = cli.invoke(app, ["jobs", "list", "--url", url, "--json"])
    assert {(j["id"], j["state"]) for j in json.loads(listed.output)} == {(ok, "done"), (bad, "dead")}
    dead = cli.invoke(app, ["jobs", "dead", "--url", url, "--tenant", "t1"])
    assert "死信列表" in dead.output and "test.failing" in dead.output and "always fails" in dead.output
    shown = json.loads(cli.invoke(app, ["jobs", "show", str(ok), "--url", url, "--json"]).output)
    assert shown["state"] == "done" and shown["result"] == {"attempt": 1}
    assert cli.invoke(app, ["jobs", "retry", str(ok), "--url", url]).exit_code == 1  # not dead
    retried = cli.invoke(app, ["jobs", "retry", str(bad), "--url", url])
    assert retried.exit_code == 0 and "已重新入队" in retried.output
    assert real.get(bad, tenant="t1").state == "queued"  # type: ignore[union-attr]
    missing = cli.invoke(app, ["jobs", "show", "999999", "--url", url])
    assert missing.exit_code == 1 and "没有编号为 999999 的作业" in missing.output


def test_the_outbox_is_delivered_by_the_notify_deliver_job(store: JobStore, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from yinsi.jobs import builtin  # noqa: F401  (registers notify.deliver)
    from yinsi.notify.outbox import Outbox
    from yinsi.services.audit_trail import AuditTrail

    monkeypatch.setenv("YINSI_SMS_OUTBOX_DIR", str(tmp_path / "sms"))
    ring = AuditTrail(store.sessions).ring
    ring.provision("t1")
    outbox = Outbox(store.sessions, ring, {}, clock=lambda: T0)
    with store.sessions() as s, s.begin():
        message = outbox.enqueue_in(s, "t1", "sms", "13800138000", "", "验证码 123456", "verification", "req-1")
    job_id, _ = store.enqueue("notify.deliver", {"due": "2026-12-04T02:59:00+08:00"}, key="periodic:notify.deliver:-:x")
    outcomes = run_until_idle(runner(store))
    assert [(o.job_id, o.state) for o in outcomes] == [(job_id, "done")]
    job = store.get(job_id)
    assert job is not None and job.result == {"sent": 1, "retrying": 0, "dead": 0, "expired": 0}
    info = outbox.get(message)
    assert info is not None and info.status == "sent"
    assert "13800138000" in "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "sms").iterdir())
    assert "13800138000" not in json.dumps(job.to_json(), ensure_ascii=False)  # the job holds no address
