"""Security incidents (PIPL 57): the record, severity and report clock, the people affected from processing
records and the data map, notices in Chinese through a real SMTP server (aiosmtpd) to people and guardians,
the announcement's reason, overdue alerts, role checks and the audit trail. Fixed clock; SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from yinsi.audit import AuditLog
from yinsi.datamap_io import parse_datamap
from yinsi.domain.incidents import Severity, notice_text, report_due
from yinsi.incidents import OVERDUE_RULE, IncidentError, IncidentService
from yinsi.notify import FileSmsChannel, SmtpEmailChannel
from yinsi.protect.identifiers import store_identifier
from yinsi.services.consent import ConsentService
from yinsi.services.publishing import publish
from yinsi.services.subjects import stored_id
from yinsi.staff.errors import AccessDenied, InvalidInput
from yinsi.storage.engine import make_engine, make_session_factory
from yinsi.storage.notice_tables import IncidentSubject
from yinsi.storage.staff_tables import ActivityAlertRow, StaffRoleRow, StaffRow

from .helpers import MINIMAL
from .test_notify import SmtpServer, smtp_server  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("isolated_env")

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 Beijing
FOUND = T0 - timedelta(hours=1)
FULL = {"what_happened": "备份服务器被未授权访问", "pi_types": "手机号码", "cause": "访问控制配置错误",
        "possible_harm": "可能收到诈骗电话或短信", "measures": "已关闭外网访问并轮换密钥",
        "what_people_can_do": "警惕冒充客服的来电，不要透露验证码", "contact": "privacy@example.com"}


def _prepare(u: str) -> None:
    """Yinsi's schema, the minimal policy published, a security officer and a customer-service account."""
    from yinsi.storage import upgrade

    upgrade(u)
    publish(MINIMAL, u, now=T0 - timedelta(days=60))
    engine = make_engine(u)
    with make_session_factory(engine)() as s, s.begin():
        for staff_id, role in (("sec1", "security_officer"), ("cs1", "customer_service")):
            s.add(StaffRow(tenant_id="demo", staff_id=staff_id, name=staff_id, active=True, created_at=T0,
                           person_id=staff_id))
            s.flush()
            s.add(StaffRoleRow(tenant_id="demo", staff_id=staff_id, role=role, granted_at=T0))
    engine.dispose()


@pytest.fixture
def url(db_url: str) -> str:
    """SQLite, PostgreSQL and MariaDB (the end-to-end test)."""
    _prepare(db_url)
    return db_url


@pytest.fixture
def lite_url(tmp_path: Path) -> str:
    """SQLite only (tests whose logic does not depend on the backend)."""
    u = f"sqlite:///{(tmp_path / 'db' / 'yinsi.db').as_posix()}"
    _prepare(u)
    return u


def _service(u: str, smtp: SmtpServer, tmp_path: Path) -> IncidentService:
    channels = {"email": SmtpEmailChannel("127.0.0.1", smtp.port, "noreply@yinsi.local", timeout=5),
                "sms": FileSmsChannel(tmp_path / "sms")}
    return IncidentService(u, channels=channels, clock=lambda: T0)


@pytest.fixture
def svc(url: str, smtp_server: SmtpServer, tmp_path: Path) -> Iterator[IncidentService]:  # noqa: F811
    with _service(url, smtp_server, tmp_path) as service:
        yield service


@pytest.fixture
def lite_svc(lite_url: str, smtp_server: SmtpServer, tmp_path: Path) -> Iterator[IncidentService]:  # noqa: F811
    with _service(lite_url, smtp_server, tmp_path) as service:
        yield service


def _processing(url: str) -> None:
    """u0 (adult) and u1 (16, a minor) had their phone numbers collected the day before; u2 a week earlier."""
    def at(days: float) -> datetime:
        return T0 - timedelta(days=days)

    with ConsentService(url, clock=lambda: at(10)) as consents:
        consents.register_subject("demo", "u1", birth_date=date(2010, 1, 1))
        for subject, when in (("u0", 1), ("u1", 1), ("u2", 7)):
            consents.record_consent("demo", subject, "policy", at=at(30))
            assert consents.check("demo", subject, "collect", feature="register", items=["contact.mobile"],
                                  at=at(when)).allowed
        consents.flush()


def test_report_clock_and_notice_contents() -> None:
    assert report_due(FOUND, Severity.GENERAL, False) is None
    assert report_due(FOUND, Severity.LARGER, False) == FOUND + timedelta(hours=4)
    assert report_due(FOUND, Severity.MAJOR, True) == FOUND + timedelta(hours=1)
    text = notice_text("示例应用", "示例科技有限公司", FULL, FOUND, audience="guardian")
    for part in ("涉及的个人信息种类：手机号码", "发生原因", "可能造成的危害", "补救措施", "减轻危害的措施",
                 "联系方式：privacy@example.com", "监护人", "第五十七条"):
        assert part in text.body
    with pytest.raises(ValueError, match="缺少发生原因"):
        notice_text("示例应用", "示例科技有限公司", {**FULL, "cause": ""}, FOUND, audience="person")


def test_incident_end_to_end(url: str, svc: IncidentService, smtp_server: SmtpServer) -> None:  # noqa: F811
    _processing(url)
    store_identifier(svc.audit.ring, "demo", "u0", "email", "u0@example.com")
    store_identifier(svc.audit.ring, "demo", "guardian:u1", "email", "parent@example.com")
    inc = svc.open("demo", "sec1", "备份服务器数据泄露", discovered_at=FOUND,
                   record={"what_happened": FULL["what_happened"]}, now=T0)
    assert inc.status == "open" and "发生原因" in inc.missing
    with pytest.raises(IncidentError, match="请先确定受影响的人"):
        svc.notify("demo", "sec1", inc.id, now=T0)
    inc = svc.assess("demo", "sec1", inc.id, severity="较大", now=T0)
    assert inc.severity == "larger" and inc.report_due_at == "2026-03-02T13:00+08:00"
    inc = svc.affected("demo", "sec1", inc.id, ["contact.mobile"], T0 - timedelta(days=2), T0, now=T0)
    assert inc.affected == 2
    people = svc.affected_people("demo", "sec1", inc.id)  # the app's ids, decrypted for the officer
    assert sorted((p["subject"], p["minor"]) for p in people) == [("u0", False), ("u1", True)]
    with svc.sessions() as s:  # the table itself holds pseudonyms
        stored = set(s.scalars(select(IncidentSubject.subject_id)))
    assert stored == {stored_id(svc.audit.ring, "demo", u) for u in ("u0", "u1")}
    with pytest.raises(IncidentError, match="事件记录不完整"):
        svc.notify("demo", "sec1", inc.id, now=T0)
    svc.assess("demo", "sec1", inc.id, record=FULL, now=T0)
    with pytest.raises(InvalidInput, match="发布公告须记录理由"):
        svc.notify("demo", "sec1", inc.id, announce=True, now=T0)
    inc = svc.notify("demo", "sec1", inc.id, announce=True, announce_reason="部分用户未留联系方式，难以逐一告知",
                     now=T0)
    # email to u0 and to u1's guardian; phone is a manual task; one announcement
    assert inc.notices == {"queued": 2, "manual": 2, "posted": 1} and inc.status == "notified"
    assert svc.notify("demo", "sec1", inc.id, now=T0).notices == inc.notices  # nothing sent twice
    svc.outbox.deliver(now=T0)
    mails = {m["To"]: m.get_content() for m in smtp_server.messages()}
    assert set(mails) == {"u0@example.com", "parent@example.com"}
    assert "尊敬的监护人" in mails["parent@example.com"] and "您好" in mails["u0@example.com"]
    for body in mails.values():
        for value in FULL.values():
            assert value in body

    # the clock: overdue after 4 hours → one alert in the alerts list, raised once
    assert svc.check_overdue("demo", now=FOUND + timedelta(hours=3)) == []
    assert svc.check_overdue("demo", now=FOUND + timedelta(hours=5)) == [inc.id]
    assert svc.check_overdue("demo", now=FOUND + timedelta(hours=6)) == []
    with svc.sessions() as s:
        [alert] = s.scalars(select(ActivityAlertRow).where(ActivityAlertRow.rule == OVERDUE_RULE)).all()
        assert alert.key_hash == inc.id and alert.status == "open"
    assert svc.show("demo", "sec1", inc.id, now=FOUND + timedelta(hours=5)).overdue

    with pytest.raises(IncidentError, match="须先向网信部门报告"):
        svc.close_incident("demo", "sec1", inc.id, "处置完毕", now=T0)
    svc.report("demo", "sec1", inc.id, "已向省网信办报告，受理编号 A-1", now=FOUND + timedelta(hours=5))
    inc = svc.close_incident("demo", "sec1", inc.id, "处置完毕", now=T0 + timedelta(days=1))
    assert inc.status == "closed"

    steps = [e.details.get("step") for e in AuditLog(svc.sessions).entries("demo")]
    for step in ("incident_open", "incident_assess", "incident_affected", "incident_notify",
                 "incident_report_overdue", "incident_report", "incident_close"):
        assert step in steps


def test_roles_are_checked_and_refusals_audited(lite_svc: IncidentService) -> None:
    svc = lite_svc
    with pytest.raises(AccessDenied):
        svc.open("demo", "cs1", "x", now=T0)
    with pytest.raises(AccessDenied):
        svc.open("demo", "nobody", "x", now=T0)
    details = [e.details for e in AuditLog(svc.sessions).entries("demo")]
    assert any(d.get("outcome") == "denied" and d.get("step") == "open" for d in details)
    inc = svc.open("demo", "sec1", "x", now=T0)
    with pytest.raises(AccessDenied, match="租户 other"):
        svc.show("other", "sec1", inc.id)
    with pytest.raises(Exception, match="没有安全事件"):
        svc.show("demo", "sec1", "INC-NOPE")


def test_affected_from_the_data_map(lite_svc: IncidentService, tmp_path: Path) -> None:
    svc = lite_svc
    app_db = f"sqlite:///{(tmp_path / 'app.db').as_posix()}"
    engine = sa.create_engine(app_db)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (id TEXT PRIMARY KEY, phone TEXT)"))
        conn.execute(sa.text("INSERT INTO users VALUES ('a1', '13800138000'), ('a2', NULL), ('a3', '13900139000')"))
    engine.dispose()
    dm = parse_datamap(DATAMAP.replace("APP_DB", app_db)).datamap
    inc = svc.open("demo", "sec1", "应用库泄露", discovered_at=FOUND, now=T0)
    inc = svc.affected("demo", "sec1", inc.id, ["contact.mobile"], T0 - timedelta(days=1), T0, datamap=dm, now=T0)
    # people only in the app's rows get a directory entry, so the officer sees their app ids
    people: list[dict[str, Any]] = svc.affected_people("demo", "sec1", inc.id)
    assert sorted((p["subject"], p["source"]) for p in people) == [("a1", "datamap"), ("a3", "datamap")]


DATAMAP = """
schema_version: 1
tenant: demo
declaration_version: "2024-01-01"
subjects:
  - {id: user, name: 用户, store: app_db, table: users, key: id}
stores:
  - id: app_db
    kind: sql
    name: 示例库
    connection: {url: "APP_DB"}
    tables:
      users:
        reach: {user: {key: id}}
        erase: delete_row
        columns:
          id: {not_pi: true, why: 编号}
          phone: {item: contact.mobile}
"""


def test_the_scheduler_runs_the_incident_clock(lite_url: str, lite_svc: IncidentService) -> None:
    url, svc = lite_url, lite_svc
    """``incident.clock`` registered with the jobs module: the worker raises the overdue alert at the job's
    time, and a second due time adds nothing."""
    import yinsi.services.notice_jobs  # noqa: F401  (registers the periodic tasks)
    from yinsi.jobs.runner import Runner
    from yinsi.jobs.store import JobStore
    from yinsi.jobs.transports import EmbeddedTransport
    from yinsi.jobs.worker import run_until_idle

    inc = svc.open("demo", "sec1", "x", discovered_at=FOUND, now=T0)
    svc.assess("demo", "sec1", inc.id, severity="major", critical_infrastructure=True, now=T0)  # due FOUND + 1 h
    late = FOUND + timedelta(hours=2)
    store = JobStore(svc.sessions, lambda: late)
    runner = Runner(store, url, EmbeddedTransport(), timedelta(seconds=60))
    for due in ("12:00", "12:05"):
        store.enqueue("incident.clock", {"due": due}, key=f"periodic:incident.clock:demo:{due}", tenant="demo")
        outcomes = run_until_idle(runner)
        assert [o.state for o in outcomes] == ["done"], outcomes
    with svc.sessions() as s:
        alerts = s.scalars(select(ActivityAlertRow).where(ActivityAlertRow.rule == OVERDUE_RULE)).all()
    assert [a.key_hash for a in alerts] == [inc.id]


def test_cli_as_the_logged_in_officer(tmp_path: Path, smtp_server: SmtpServer,  # noqa: F811
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from tests.staff_login import make_team
    from yinsi.cli.main import app
    from yinsi.storage import upgrade

    url = f"sqlite:///{(tmp_path / 'cli' / 'yinsi.db').as_posix()}"
    upgrade(url)
    publish(MINIMAL, url, now=T0 - timedelta(days=60))
    team = make_team(url, "demo", {"sec1": ["security_officer"], "cs1": ["customer_service"]})
    _processing(url)
    with IncidentService(url) as svc:
        store_identifier(svc.audit.ring, "demo", "u0", "email", "u0@example.com")
    monkeypatch.setenv("YINSI_SMTP_PORT", str(smtp_server.port))
    runner = CliRunner()

    def run(staff: str, *args: str) -> Any:
        return runner.invoke(app, ["incident", *args, "--url", url, "--now", T0.isoformat()],
                             env=team.env(staff))

    r = run("cs1", "open", "x")
    assert r.exit_code == 3 and "无权" in r.output and "Traceback" not in r.output
    r = run("sec1", "open", "备份服务器数据泄露", "--discovered", FOUND.isoformat(), "--json")
    assert r.exit_code == 0, r.output
    inc = __import__("json").loads(r.output)["id"]
    fields = ["--what", FULL["what_happened"], "--pi-types", FULL["pi_types"], "--cause", FULL["cause"],
              "--harm", FULL["possible_harm"], "--measures", FULL["measures"], "--advice",
              FULL["what_people_can_do"], "--contact", FULL["contact"]]
    r = run("sec1", "assess", inc, "--severity", "较大", *fields)
    assert r.exit_code == 0 and "4 小时内" in r.output and "2026-03-02T13:00+08:00" in r.output, r.output
    r = run("sec1", "affected", inc, "--item", "contact.mobile", "--from", (T0 - timedelta(days=2)).isoformat(),
            "--to", T0.isoformat())
    assert r.exit_code == 0 and "受影响人数：2" in r.output, r.output
    r = run("sec1", "notify", inc, "--announce")
    assert r.exit_code == 1 and "发布公告须记录理由" in r.output
    r = run("sec1", "notify", inc, "--deliver")
    assert r.exit_code == 0 and "投递：成功 1" in r.output, r.output
    assert [m["To"] for m in smtp_server.messages()] == ["u0@example.com"]
    r = run("sec1", "close", inc, "--note", "处置完毕")
    assert r.exit_code == 1 and "须先向网信部门报告" in r.output
    assert run("sec1", "report", inc, "--note", "已报告").exit_code == 0
    assert run("sec1", "close", inc, "--note", "处置完毕").exit_code == 0
