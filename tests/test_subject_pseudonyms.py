"""Subject ids are pseudonymous inside Yinsi (issue 11 item 4): an app that keys its users by phone number
leaks nothing through Yinsi's tables.

After a full flow (registration with a birth date, consents, a permission, a restriction, gate checks with
processing records, a protected identifier, a rights request; then, under a second tenant, a changed policy
published with notices that are sent, an incident with the people affected and their notices, a minor with a
guardian's consent and a transfer abroad) every text column of every Yinsi table is scanned with SQL for the
phone numbers used as ids; the public APIs keep taking and giving the app's id. The migration test upgrades a
database holding rows in the old format (ids and birth dates in clear).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import String, Text, inspect, text
from sqlalchemy.engine import Engine

from yinsi.domain.rights import RequestType
from yinsi.protect.identifiers import find_subjects, reveal_identifier, store_identifier
from yinsi.protect.keys import KeyRing
from yinsi.rights.service import RightsService
from yinsi.services.consent import ConsentService
from yinsi.services.publishing import publish
from yinsi.storage import upgrade
from yinsi.storage.engine import make_engine, make_session_factory

from .helpers import minimal_text
from .test_abroad import RIGHTS, declaration
from .test_incidents import FULL
from .test_minors import id_number
from .test_notify import SmtpServer, smtp_server  # noqa: F401  (the fixture)
from .test_policy_notices import V2

pytestmark = pytest.mark.usefixtures("isolated_env")

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "policies" / "weiliaoke-2022.yaml"
TENANT = "weiliaoke"
PHONE = "13912345678"  # the app's user id
OTHER = "13698765432"
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _clear_hits(engine: Engine, needles: tuple[str, ...]) -> list[str]:
    """``table.column`` of every text column of every table holding one of ``needles`` anywhere in a value."""
    hits: list[str] = []
    insp = inspect(engine)
    with engine.connect() as conn:
        for table in insp.get_table_names():
            for col in insp.get_columns(table):
                if not isinstance(col["type"], String | Text):
                    continue
                for needle in needles:
                    n = conn.execute(text(f'SELECT count(*) FROM {table} WHERE "{col["name"]}" LIKE :p'
                                          if engine.dialect.name != "mysql" else
                                          f"SELECT count(*) FROM {table} WHERE `{col['name']}` LIKE :p"),
                                     {"p": f"%{needle}%"}).scalar()
                    if n:
                        hits.append(f"{table}.{col['name']}")
    return hits


def _flow(url: str) -> None:
    upgrade(url)
    publish(POLICY, url)
    with ConsentService(url, clock=lambda: AT) as svc:
        svc.register_subject(TENANT, PHONE, birth_date=date(2014, 5, 1))  # a minor: the M1 rules apply
        for subject in (PHONE, OTHER):
            svc.record_consent(TENANT, subject, "policy")
            svc.record_consent(TENANT, subject, "feature:marketing")
        svc.record_permission(TENANT, PHONE, "device-1", "location", "granted", feature="bind_property")
        svc.restrict(TENANT, OTHER, ["feature:marketing"], reason="用户申请限制处理")
        svc.check(TENANT, PHONE, "use", feature="marketing", items=["device.identifiers"])
        svc.check(TENANT, OTHER, "use", feature="marketing", items=["device.identifiers"])
        svc.check(TENANT, "13500000000", "collect", feature="user_service", items=["contact.mobile"])
        svc.flush()
        # the public API keeps the app's ids
        assert svc.state(TENANT, PHONE).birth_date == date(2014, 5, 1)
        assert "feature:marketing" in svc.state(TENANT, OTHER).restrictions
        assert svc.report(TENANT, PHONE)["subject"] == PHONE
        assert {r[1] for r in svc.projection(TENANT)} == {PHONE, OTHER}
    with KeyRing.open(url) as ring:
        store_identifier(ring, TENANT, PHONE, "mobile_phone", PHONE)
        assert find_subjects(ring, TENANT, "mobile_phone", PHONE) == [PHONE]
        assert reveal_identifier(ring, TENANT, PHONE, "mobile_phone") == PHONE
    with RightsService(url, datamaps={}, channels={}) as rights:
        rid = rights.submit(TENANT, PHONE, RequestType.ACCESS)
        rights.mark_verified(TENANT, rid, "客服小王", "当面核对身份证件")
        assert [v.id for v in rights.requests(TENANT, subject=PHONE)] == [rid]
        assert rights.requests(TENANT, subject=OTHER) == []


DEMO = "demo"
ADULT = "13712340001"  # the second tenant's user ids, phone numbers too
KID = "13712340002"
GUARDIAN = id_number(date(1985, 3, 1), seq="456")
T0 = datetime(2024, 1, 2, 3, 0, tzinfo=UTC)


def _notices_incidents_minors_abroad(url: str, tmp_path: Path, channels: dict[str, Any]) -> None:
    """A changed policy with notices sent, an incident with its people and notices, a minor's guardian consent
    and a transfer abroad, all of people whose app ids are phone numbers (tenant ``demo``)."""
    from yinsi.incidents import IncidentService
    from yinsi.services.abroad import AbroadService
    from yinsi.services.minors import MinorsService
    from yinsi.services.policy_notices import PolicyNotices
    from yinsi.storage.staff_tables import StaffRoleRow, StaffRow

    v1 = declaration(tmp_path, "标准合同")
    body = v1.read_text(encoding="utf-8")
    assert body.startswith(minimal_text()[:20])
    for old, new in V2:
        assert old in body, old
        body = body.replace(old, new, 1)
    v2 = tmp_path / "v2.yaml"
    v2.write_text(body, encoding="utf-8")
    publish(v1, url, now=T0 - timedelta(days=1))
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as s, s.begin():
            s.add(StaffRow(tenant_id=DEMO, staff_id="sec1", name="sec1", active=True, created_at=T0,
                           person_id="sec1"))
            s.flush()
            s.add(StaffRoleRow(tenant_id=DEMO, staff_id="sec1", role="security_officer", granted_at=T0))
    finally:
        engine.dispose()
    with ConsentService(url, clock=lambda: T0) as consents:
        minors = MinorsService(consents)
        minors.register(DEMO, KID, birth_date=date(2012, 5, 1))
        consents.record_consent(DEMO, KID, "policy")
        minors.record_guardian_consent(DEMO, KID, guardian=GUARDIAN, relation="mother", verification="id_document")
        assert minors.status(DEMO, KID).guardian_consent
        for scope in ("policy", "recipient:hk_support"):
            consents.record_consent(DEMO, ADULT, scope)
        consents.record_consent(DEMO, ADULT, "cross_border:hk_support", disclosures=RIGHTS)
        for subject in (ADULT, KID):
            d = consents.check(DEMO, subject, "collect", feature="register", items=["contact.mobile"])
            for m in d.missing:  # a child's PI is sensitive: its separate consent
                consents.record_consent(DEMO, subject, m.scope, disclosures={
                    "necessity": "注册账号", "impact": "泄露可能招致骚扰"})
            if not d.allowed:
                assert consents.check(DEMO, subject, "collect", feature="register", items=["contact.mobile"]).allowed
        abroad = AbroadService(consents)
        abroad.record_assessment(DEMO, "hk_support", conclusion="adequate", summary="已签标准合同并评估",
                                 assessor="dpo", assessed_on=date(2023, 12, 1), valid_until=date(2024, 12, 31))
        assert abroad.export(DEMO, ADULT, "hk_support", ["contact.mobile"]).allowed
        consents.flush()
    with KeyRing.open(url) as ring:
        for holder, address in ((ADULT, "adult@example.com"), (f"guardian:{KID}", "parent@example.com")):
            store_identifier(ring, DEMO, holder, "email", address)
        store_identifier(ring, DEMO, ADULT, "mobile_phone", ADULT)

    publish(v2, url, now=T0 + timedelta(days=1), notify=True, channels=channels)
    with PolicyNotices(url, channels=channels, clock=lambda: T0) as notices:
        [plan] = notices.plans(DEMO)
        assert plan.people == 2
        report = notices.run_due(DEMO, now=T0 + timedelta(days=1))
        # e-mail and SMS to the adult (addresses decrypted through the directory), in-app to both; the child
        # has no address of its own on record
        assert (report.queued, report.posted, report.no_address) == (2, 2, 2)
        assert len(notices.posted_for(DEMO, ADULT)) == 1

    with IncidentService(url, channels=channels, clock=lambda: T0) as incidents:
        inc = incidents.open(DEMO, "sec1", "备份服务器数据泄露", discovered_at=T0 - timedelta(hours=1),
                             record=FULL, now=T0)
        incidents.assess(DEMO, "sec1", inc.id, severity="较大", now=T0)
        inc = incidents.affected(DEMO, "sec1", inc.id, ["contact.mobile"], T0 - timedelta(days=1), T0, now=T0)
        assert inc.affected == 2
        people = incidents.affected_people(DEMO, "sec1", inc.id)  # the officer sees the app's ids
        assert sorted((p["subject"], p["minor"]) for p in people) == [(ADULT, False), (KID, True)]
        inc = incidents.notify(DEMO, "sec1", inc.id, now=T0)
        assert inc.notices["queued"] == 2  # the adult and the child's guardian


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                                    pytest.param("mariadb", marks=pytest.mark.mariadb)], indirect=True)
def test_no_yinsi_table_holds_the_subject_id_or_phone_in_clear(
        db_url: str, tmp_path: Path, smtp_server: SmtpServer) -> None:  # noqa: F811
    from yinsi.notify import FileSmsChannel, SmtpEmailChannel

    channels = {"email": SmtpEmailChannel("127.0.0.1", smtp_server.port, "noreply@yinsi.local", timeout=5),
                "sms": FileSmsChannel(tmp_path / "sms")}
    _flow(db_url)
    _notices_incidents_minors_abroad(db_url, tmp_path, channels)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:  # the flow did write where we look
            assert conn.execute(text("SELECT count(*) FROM processing_records")).scalar() >= 5
            assert conn.execute(text("SELECT count(*) FROM rights_requests")).scalar() == 1
            for table in ("policy_notices", "incident_subjects", "incident_notices", "guardians", "minor_accounts",
                          "abroad_people"):
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar(), table
        assert _clear_hits(engine, (PHONE, OTHER, "13500000000", "2014-05-01", ADULT, KID, GUARDIAN,
                                    "2012-05-01")) == []
    finally:
        engine.dispose()


def test_tenants_get_unrelated_pseudonyms_and_stay_apart(migrated_url: str) -> None:
    publish(POLICY, migrated_url)
    publish(ROOT / "policies" / "kehutong-2021.yaml", migrated_url)
    with ConsentService(migrated_url, clock=lambda: AT) as svc:
        svc.record_consent(TENANT, PHONE, "policy")
        svc.record_consent("kehutong", PHONE, "policy")
        assert svc.subjects.ref(TENANT, PHONE) != svc.subjects.ref("kehutong", PHONE)
        assert svc.projection("kehutong") == [r for r in svc.projection("kehutong") if r[1] == PHONE]
        assert len(svc.projection(TENANT)) == 1


# ---------------------------------------------------------------------------------------- migration 0011
def _old_rows(engine: Engine) -> None:
    """Rows as revision 0015 held them: the app's ids and birth dates in clear."""
    now = AT.replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name, created_at) VALUES (:t, '微聊客', :now)"),
                     {"t": TENANT, "now": now})
        conn.execute(text("INSERT INTO subjects (tenant_id, subject_id, birth_date, created_at, restrictions) "
                          "VALUES (:t, :s, :b, :now, NULL)"), {"t": TENANT, "s": PHONE, "b": date(2014, 5, 1),
                                                               "now": now})
        conn.execute(text(
            "INSERT INTO consent_events (record_id, tenant_id, subject_id, scope, kind, event, policy_label, shown_hash,"
            " purposes, items, recipients, disclosures, controller, storage_location, retention, jurisdiction,"
            " withdrawal_method, channel, collection_method, language, actor, event_time, recorded_at) VALUES"
            " ('0b7c1d9e-0000-4000-8000-000000000001', :t, :s, 'policy', 'general', 'given', 'v2022', :h, '[]',"
            " '[]', '[]', '{}', '微聊客', NULL, NULL, 'CN', NULL, 'app', 'click', 'zh-CN', NULL, :now, :now)"),
            {"t": TENANT, "s": OTHER, "h": "0" * 64, "now": now})
        conn.execute(text(
            "INSERT INTO consent_state (tenant_id, subject_id, scope, status, kind, policy_label, event_time,"
            " last_event_id) VALUES (:t, :s, 'policy', 'active', 'general', 'v2022', :now, 1)"),
            {"t": TENANT, "s": OTHER, "now": now})
        conn.execute(text(
            "INSERT INTO processing_records (tenant_id, subject_id, action, feature, purpose, items, recipient,"
            " destination, allowed, basis, reasons, policy_label, actor, decided_at) VALUES (:t, :s, 'collect',"
            " 'user_service', NULL, '[\"contact.mobile\"]', NULL, NULL, :yes, 'consent', '[]', 'v2022', NULL, :now)"),
            {"t": TENANT, "s": OTHER, "yes": True, "now": now})


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
                         indirect=True)
def test_migration_0011_pseudonymises_existing_rows(db_url: str) -> None:
    upgrade(db_url, "0015")
    engine = make_engine(db_url)
    try:
        _old_rows(engine)
        with engine.begin() as conn:  # a request of an opaque id, kept in clear before
            conn.execute(text(
                "INSERT INTO rights_requests (id, tenant_id, subject_kind, subject_id, type, state, channel, requester,"
                " identity_encrypted, policy_label, received_at, due_date, deadline_rule, deadline_explanation,"
                " deadline_provisional, details_encrypted, plan_encrypted, confirmed_at, lease_owner, lease_until,"
                " refusal_ground, refusal_detail, result, updated_at) VALUES ('r-1', :t, 'agent', :s, 'access',"
                " 'unverified', 'app', 'self', NULL, 'v2022', :now, :due, 'R9', '15 个工作日', :no, NULL, NULL,"
                " NULL, NULL, NULL, NULL, NULL, NULL, :now)"),
                {"t": TENANT, "s": PHONE, "now": AT.replace(tzinfo=None), "due": date(2026, 3, 23), "no": False})
        assert _clear_hits(engine, (PHONE,)) != []  # the old format did hold it
        upgrade(db_url)
        assert _clear_hits(engine, (PHONE, OTHER, "2014-05-01")) == []
        with engine.connect() as conn:
            assert "birth_date" not in {c["name"] for c in inspect(conn).get_columns("subjects")}
    finally:
        engine.dispose()
    publish(POLICY, db_url)
    with ConsentService(db_url, clock=lambda: AT) as svc:
        assert svc.state(TENANT, PHONE).birth_date == date(2014, 5, 1)
        assert svc.state(TENANT, OTHER).consents["policy"].policy_label == "v2022"
        report = svc.report(TENANT, OTHER)
        assert [c["item"] for c in report["collected"]] == ["contact.mobile"]
        assert {r[1] for r in svc.projection(TENANT)} == {OTHER}
        ref = svc.subjects.ref(TENANT, PHONE)
    with RightsService(db_url, datamaps={}, channels={}) as rights:
        views = rights.requests(TENANT, subject=PHONE)
        assert [v.id for v in views] == ["r-1"]
        assert views[0].subject == PHONE  # an opaque id is shown as it is, decrypted
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT subject_id, identity_encrypted FROM rights_requests")).one()
            assert row[0].startswith("bi:") and row[1]
            assert conn.execute(text("SELECT count(*) FROM subjects WHERE subject_id = :r"), {"r": ref}).scalar() == 1
    finally:
        engine.dispose()
