"""Policy-change notices, re-consent (C5) and service termination, with a fixed clock, a real SMTP server
(aiosmtpd) and the file SMS gateway, on SQLite (and PostgreSQL/MariaDB where the service test runs)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from yinsi.cli.main import app
from yinsi.domain.changes import diff_declarations, rights_reductions
from yinsi.domain.notices import NoticeRefused, change_summary, plan_change_notice, plan_termination
from yinsi.notify import FileSmsChannel, SmtpEmailChannel
from yinsi.protect.identifiers import store_identifier
from yinsi.services.consent import ConsentService
from yinsi.services.policy_notices import PolicyNotices
from yinsi.services.publishing import PublishError, publish

from .helpers import MINIMAL, minimal, minimal_text
from .test_notify import SmtpServer, smtp_server  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("isolated_env")

T0 = datetime(2024, 1, 2, 3, 0, tzinfo=UTC)
V2 = (('label: "2024-01-01"', 'label: "2024-03-01"'), ("value: 2024-01-01", "value: 2024-03-01"),
      ("notice_channels: [popup]", "notice_channels: [email, sms, in_app], notice_days: 7"))
#: a right's channel removed and a longer reply time: reduces rights
REDUCE = (("response_time: {days: 15,", "response_time: {days: 30,"),
          ("    channels: [{kind: in_app, value: 我的-个人信息, source: {section: 权利, quote: 我的-个人信息}}]\n", ""))


def write(tmp: Path, name: str, *edits: tuple[str, str]) -> Path:
    body = minimal_text()
    for old, new in edits:
        assert old in body, old
        body = body.replace(old, new, 1)
    path = tmp / name
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture
def channels(smtp_server: SmtpServer, tmp_path: Path) -> dict[str, Any]:  # noqa: F811
    return {"email": SmtpEmailChannel("127.0.0.1", smtp_server.port, "noreply@yinsi.local", timeout=5),
            "sms": FileSmsChannel(tmp_path / "sms")}


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    from yinsi.storage import upgrade

    u = f"sqlite:///{(tmp_path / 'db' / 'yinsi.db').as_posix()}"
    upgrade(u)
    yield u


def _people(url: str, n: int, at: datetime) -> None:
    """``n`` people who accepted v1, each with an e-mail address and a phone number on record."""
    with ConsentService(url, clock=lambda: at) as consents, PolicyNotices(url) as notices:
        for k in range(n):
            consents.record_consent("demo", f"u{k}", "policy", at=at)
            store_identifier(notices.audit.ring, "demo", f"u{k}", "email", f"user{k}@example.com")
            store_identifier(notices.audit.ring, "demo", f"u{k}", "mobile_phone", f"1380013800{k}")


# --- pure rules --------------------------------------------------------------------------------------


def test_summary_flags_rights_reductions_in_chinese() -> None:
    old = minimal()
    new = minimal(*REDUCE)
    found = [r.what for r in rights_reductions(old, new)]
    assert any("不再可通过应用内" in w for w in found)
    assert any("答复期限由15天内（国家法定节假日顺延）变为30天内" in w for w in found)
    diff = diff_declarations(old, new)
    assert any(r.scope == "policy" and r.rule == "C5" for r in diff.reconsent)
    s = change_summary(diff, old, new)
    assert s.rights_reducing and "继续使用不视为同意" in s.text()
    # a longer period in working days is longer than the same number of natural days
    working = minimal(("response_time: {days: 15, unit: natural", "response_time: {days: 15, unit: working"))
    assert rights_reductions(old, working)
    assert not rights_reductions(working, old)


def test_notice_must_arrive_the_promised_days_before() -> None:
    new = minimal(*V2[1:])  # effective 2024-03-01, 7 days' notice
    ok = plan_change_notice(new, datetime(2024, 2, 22, 15, 59, tzinfo=UTC), people=3)  # 23:59 Beijing, 22 Feb
    assert ok.arrive_by == datetime(2024, 2, 22, 16, 0, tzinfo=UTC)
    with pytest.raises(NoticeRefused, match="生效前 7 天告知"):
        plan_change_notice(new, datetime(2024, 2, 22, 16, 1, tzinfo=UTC), people=3)
    # nobody to tell: nothing can be late
    plan_change_notice(new, datetime(2024, 2, 28, tzinfo=UTC), people=0)
    # a letter takes three days
    letter = minimal(*V2[1:2], ("notice_channels: [popup]", "notice_channels: [letter]"))
    with pytest.raises(NoticeRefused, match="信函需 3 天送达"):
        plan_change_notice(letter, datetime(2024, 2, 27, tzinfo=UTC), people=1)


def test_termination_needs_thirty_days() -> None:
    now = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)  # 08:00 Beijing
    plan_termination(date(2024, 2, 1), now, ["email"], people=1)
    with pytest.raises(NoticeRefused, match="至少提前 30 天"):
        plan_termination(date(2024, 1, 30), now, ["email"], people=1)


# --- publishing with notices ----------------------------------------------------------------------------


def test_publish_schedules_notices_and_sends_them_through_the_channels(
        migrated_url: str, tmp_path: Path, channels: dict[str, Any], smtp_server: SmtpServer) -> None:  # noqa: F811
    url = migrated_url  # SQLite, PostgreSQL, MariaDB
    publish(MINIMAL, url, now=T0)
    _people(url, 2, T0)
    v2 = write(tmp_path, "v2.yaml", *V2, *REDUCE)
    publish(v2, url, now=T0 + timedelta(days=1), notify=True, channels=channels)
    with PolicyNotices(url, channels=channels, clock=lambda: T0) as svc:
        [plan] = svc.plans("demo")
        assert plan.label == "2024-03-01" and plan.people == 2 and plan.rights_reducing and plan.major
        assert plan.notices == {"scheduled": 6}
        report = svc.run_due("demo", now=T0 + timedelta(days=1))
        assert (report.queued, report.posted, report.no_address, report.late) == (4, 2, 0, 0)
        svc.outbox.deliver(now=T0 + timedelta(days=1))
        # running again sends nothing twice
        assert svc.run_due("demo", now=T0 + timedelta(days=2)).queued == 0
        posted = svc.posted_for("demo", "u0")
        assert len(posted) == 1 and "隐私政策更新通知" in posted[0]["subject"]
        progress = svc.progress("demo")
    mails = smtp_server.messages()
    assert sorted(m["To"] for m in mails) == ["user0@example.com", "user1@example.com"]
    body = mails[0].get_content()
    assert "2024-03-01 生效" in body and "减损了您的权利" in body and "继续使用本服务不视为同意" in body
    sms = channels["sms"].read_messages()
    assert sorted(m["to"] for m in sms) == ["13800138000", "13800138001"]
    [v] = progress["versions"]
    assert (v["people"], v["accepted"], v["reconsent_needed"]) == (2, 0, True)


def test_gate_refuses_until_the_person_accepts_the_reducing_version(url: str, tmp_path: Path,
                                                                   channels: dict[str, Any]) -> None:
    publish(MINIMAL, url, now=T0)
    _people(url, 1, T0)
    publish(write(tmp_path, "v2.yaml", *V2, *REDUCE), url, now=T0 + timedelta(days=1), notify=True,
            channels=channels)
    later = datetime(2024, 3, 2, tzinfo=UTC)
    with ConsentService(url, clock=lambda: later) as consents:
        d = consents.check("demo", "u0", "collect", feature="register", items=["contact.mobile"], at=later)
        assert not d.allowed and any(m.kind == "reconsent" and m.rule == "C5" for m in d.missing)
        # continued use (more processing requests) never turns into consent
        d = consents.check("demo", "u0", "use", feature="register", items=["contact.mobile"], at=later)
        assert not d.allowed
        consents.record_consent("demo", "u0", "policy", at=later)
        assert consents.check("demo", "u0", "collect", feature="register", items=["contact.mobile"], at=later).allowed
    with PolicyNotices(url) as svc:
        [v] = svc.progress("demo")["versions"]
    assert (v["accepted"], v["pending"], v["percent"]) == (1, 0, 100.0)


def test_publish_refused_when_notices_would_arrive_late(url: str, tmp_path: Path, channels: dict[str, Any]) -> None:
    publish(MINIMAL, url, now=T0)
    _people(url, 1, T0)
    late = datetime(2024, 2, 25, tzinfo=UTC)
    with pytest.raises(PublishError, match="变更告知无法按承诺送达"):
        publish(write(tmp_path, "v2.yaml", *V2), url, now=late, notify=True, channels=channels)
    from yinsi.services.publishing import history

    assert [v.label for v in history("demo", url)] == ["2024-01-01"]  # nothing archived


def test_cli_publish_run_due_and_progress(url: str, tmp_path: Path, smtp_server: SmtpServer,  # noqa: F811
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YINSI_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("YINSI_SMS_OUTBOX_DIR", str(tmp_path / "sms"))
    runner = CliRunner()
    r = runner.invoke(app, ["policy", "publish", str(MINIMAL), "--url", url, "--now", "2024-01-02T03:00:00+00:00"])
    assert r.exit_code == 0, r.output
    _people(url, 1, T0)
    v2 = write(tmp_path, "v2.yaml", *V2)
    r = runner.invoke(app, ["policy", "publish", str(v2), "--url", url, "--now", "2024-02-25T00:00:00+00:00"])
    assert r.exit_code == 1 and "变更告知无法按承诺送达" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["policy", "publish", str(v2), "--url", url, "--now", "2024-01-03T00:00:00+00:00"])
    assert r.exit_code == 0 and "已安排变更告知" in r.output, r.output
    r = runner.invoke(app, ["notices", "run-due", "demo", "--url", url, "--now", "2024-01-03T00:00:00+00:00",
                            "--deliver"])
    assert r.exit_code == 0 and "进入发件箱 2 条" in r.output and "投递：成功 2" in r.output, r.output
    assert [m["To"] for m in smtp_server.messages()] == ["user0@example.com"]
    r = runner.invoke(app, ["notices", "progress", "demo", "--url", url])
    assert r.exit_code == 0 and "2024-03-01" in r.output, r.output


def test_termination_notice_then_sweep_is_opened_and_verified(url: str, channels: dict[str, Any]) -> None:
    publish(MINIMAL, url, now=T0)
    _people(url, 2, T0)
    with PolicyNotices(url, channels=channels) as svc:
        with pytest.raises(NoticeRefused):
            svc.announce_termination("demo", date(2024, 1, 20), ["email"], now=T0)
        plan = svc.announce_termination("demo", date(2024, 2, 10), ["email"], reason="业务调整", now=T0)
        assert plan.people == 2 and plan.sweep_status == "scheduled"
        assert svc.run_due("demo", now=T0).queued == 2
        # before the stop date nothing is swept
        opened: list[str] = []
        assert svc.run_due("demo", now=T0 + timedelta(days=10), sweeper=opened.append).sweeps_opened == 0
        assert opened == []
        # on the stop date: one deletion per person (a stub opener; the CLI uses the rights service)
        ids = iter(["R1", "R2"])
        report = svc.run_due("demo", now=datetime(2024, 2, 10, 1, tzinfo=UTC), sweeper=lambda s: next(ids))
        assert report.sweeps_opened == 1
        # the requests are not completed: the sweep is not verified
        assert svc.run_due("demo", now=datetime(2024, 2, 11, tzinfo=UTC)).sweeps_waiting == 1
        [plan] = [p for p in svc.plans("demo") if p.kind == "termination"]
        assert plan.sweep_status == "opened"


def test_console_and_api_show_the_progress_to_the_administrator(url: str, tmp_path: Path,
                                                                channels: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    from tests.staff_login import make_team
    from yinsi.api.app import create_app
    from yinsi.api.settings import ApiSettings

    publish(MINIMAL, url, now=T0)
    _people(url, 2, T0)
    publish(write(tmp_path, "v2.yaml", *V2, *REDUCE), url, now=T0 + timedelta(days=1), notify=True,
            channels=channels)
    team = make_team(url, "demo", {"po1": ["privacy_officer"]})
    with TestClient(create_app(ApiSettings(database_url=url, data_dir=tmp_path / "data"))) as client:
        r = client.get("/api/v1/staff/policy-notices/progress", headers={"Authorization": f"Bearer {team.tokens['admin']}"})
        assert r.status_code == 200 and r.json()["versions"][0]["people"] == 2, r.text
        r = client.get("/api/v1/staff/policy-notices", headers={"Authorization": f"Bearer {team.tokens['po1']}"})
        assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
        client.cookies.set("yinsi_staff", team.sessions["admin"])
        page = client.get("/console/policy-notices")
        assert page.status_code == 200 and "重新同意进度" in page.text and "减损权利" in page.text, page.text[:300]


@pytest.mark.postgres
def test_two_concurrent_runs_send_each_notice_once(tmp_path: Path, channels: dict[str, Any]) -> None:
    """Two schedulers (or a job and the command) running at once on PostgreSQL: every notice queued once."""
    import threading

    from sqlalchemy import func, select

    from yinsi.storage import upgrade
    from yinsi.storage.notify_tables import OutboxMessage

    from .conftest import scratch_database

    with scratch_database("postgresql") as url:
        upgrade(url)
        publish(MINIMAL, url, now=T0)
        _people(url, 6, T0)
        publish(write(tmp_path, "v2.yaml", *V2), url, now=T0 + timedelta(days=1), notify=True, channels=channels)
        reports: list[Any] = []
        start = threading.Barrier(2)

        def run() -> None:
            with PolicyNotices(url, channels=channels) as svc:
                start.wait()
                reports.append(svc.run_due("demo", now=T0 + timedelta(days=1)))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(r.queued for r in reports) == 12 and sum(r.posted for r in reports) == 6
        with PolicyNotices(url) as svc, svc.sessions() as s:
            assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 12
