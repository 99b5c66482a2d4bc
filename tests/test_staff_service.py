"""Staff access to PI through the service: masked views, unmasking, exports with a second person's
approval, minors' PI (S6), separation of duties on grant, tenant isolation — and what the audit log says.
The core flows run on SQLite, PostgreSQL and MariaDB; the rest on SQLite."""

from __future__ import annotations

import csv
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.helpers import minimal_text, subject_row
from yinsi.audit import AuditEntry, AuditLog
from yinsi.protect.identifiers import store_identifier
from yinsi.protect.keys import KeyRing, MasterKey
from yinsi.staff import AccessDenied, InvalidInput, NotFound, RequestStateError, Role, SeparationOfDuties, StaffAction
from yinsi.staff.service import StaffService
from yinsi.storage import Tenant, make_engine, make_session_factory, upgrade

pytestmark = pytest.mark.usefixtures("isolated_env")

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 北京时间
PHONE, ID_CARD, EMAIL = "13800138000", "110105194912310021", "zhang.san@example.com"
CHILD_PHONE, TEEN_PHONE = "13912345678", "18600001111"
PLAINTEXT = (PHONE, ID_CARD, EMAIL, CHILD_PHONE, TEEN_PHONE, "zhang.san")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    url: str
    ring: KeyRing
    audit: AuditLog
    svc: StaffService
    clock: Clock

    def entries(self, tenant: str = "t1") -> list[AuditEntry]:
        return self.audit.entries(tenant)

    def raw_audit_text(self) -> str:
        with self.ring.session() as s:
            rows = s.execute(text("SELECT actor, action, subject, items, reason, details FROM audit_entries")).all()
        return json.dumps([list(map(str, r)) for r in rows], ensure_ascii=False)


def _setup(url: str) -> Iterator[Env]:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as s, s.begin():
        for tid in ("t1", "t2"):
            s.add(Tenant(id=tid, name=f"{tid} 应用", created_at=T0))
    clock = Clock()
    ring = KeyRing(sessions, MasterKey(os.urandom(32), "test"), clock=clock)
    for tid in ("t1", "t2"):
        ring.provision(tid)
    rows = [subject_row(ring, "t1", "u-adult", date(1990, 5, 1), T0), subject_row(ring, "t1", "u-child", date(2015, 6, 1), T0),
            subject_row(ring, "t1", "u-teen", date(2010, 1, 1), T0), subject_row(ring, "t2", "u-other", None, T0)]
    with sessions() as s, s.begin():
        s.add_all(rows)
    store_identifier(ring, "t1", "u-adult", "mobile_phone", PHONE)
    store_identifier(ring, "t1", "u-adult", "id_card", ID_CARD)
    store_identifier(ring, "t1", "u-adult", "email", EMAIL)
    store_identifier(ring, "t1", "u-child", "mobile_phone", CHILD_PHONE)
    store_identifier(ring, "t1", "u-teen", "mobile_phone", TEEN_PHONE)
    store_identifier(ring, "t2", "u-other", "mobile_phone", "15011112222")
    audit = AuditLog(sessions, clock=clock, use_witness=False)
    svc = StaffService(sessions, audit, ring, clock=clock)
    svc.add_staff("t1", "admin", "管理员甲", ["administrator"])
    svc.add_staff("t1", "admin2", "管理员乙", ["administrator"], actor="admin")
    svc.add_staff("t1", "po1", "负责人甲", ["privacy_officer"], actor="admin")
    svc.add_staff("t1", "po2", "负责人乙", ["privacy_officer"], actor="admin")
    svc.add_staff("t1", "cs1", "客服甲", ["customer_service"], actor="admin")
    svc.add_staff("t1", "sec1", "安全甲", ["security_officer"], actor="admin")
    svc.add_staff("t1", "aud1", "审计甲", ["auditor"], actor="admin")
    svc.add_staff("t2", "admin", "乙方管理员", ["administrator"])
    svc.add_staff("t2", "po9", "乙方负责人", ["privacy_officer"], actor="admin")
    try:
        yield Env(url, ring, audit, svc, clock)
    finally:
        engine.dispose()


@pytest.fixture
def env(migrated_url: str) -> Iterator[Env]:
    """On each backend."""
    yield from _setup(migrated_url)


@pytest.fixture
def senv(tmp_path: Path) -> Iterator[Env]:
    """On SQLite only, for what does not depend on the backend."""
    url = f"sqlite:///{tmp_path / 'staff.db'}"
    upgrade(url)
    yield from _setup(url)


def assert_no_plaintext(e: Env) -> None:
    raw = e.raw_audit_text()
    for value in PLAINTEXT:
        assert value not in raw


# --- masked views ---------------------------------------------------------------------------------


def test_masked_view_is_audited_without_plaintext(env: Env) -> None:
    view = env.svc.view_subject("t1", "cs1", "u-adult", reason="客户来电核实订单")
    values = {i.key: i.value for i in view.items}
    assert values == {"mobile_phone": "138****8000", "id_card": "110105********0021", "email": "z***@example.com",
                      "birth_date": "1990-**-**"}
    assert all(i.masked for i in view.items) and not view.minor and view.age == 35
    last = env.entries()[-1]
    assert (last.actor, last.action, last.seq) == ("cs1", "pi_access", view.audit_seq)
    assert last.subject == view.pseudonym == env.ring.pseudonymise("t1", "u-adult")
    assert set(last.items) == {"contact.mobile", "identity.id_card_number", "contact.email", "basic.birth_date"}
    assert last.reason == "客户来电核实订单" and last.details["masked"] is True and last.details["rule"] == "S4"
    assert_no_plaintext(env)
    assert env.audit.verify("t1").ok


@pytest.mark.parametrize("staff_id", ["admin", "aud1", "sec1"])
def test_administrator_auditor_security_cannot_read_pi(senv: Env, staff_id: str) -> None:
    before = len(senv.entries())
    with pytest.raises(AccessDenied) as info:
        senv.svc.view_subject("t1", staff_id, "u-adult")
    assert info.value.rule == "S3" and "个人信息" in str(info.value)
    with pytest.raises(AccessDenied):
        senv.svc.unmask("t1", staff_id, "u-adult", "mobile_phone", "核实")
    denied = senv.entries()[before:]
    assert [(e.action, e.details["outcome"]) for e in denied] == [("pi_access", "denied"), ("unmask", "denied")]
    assert all(e.actor == staff_id for e in denied)


def test_consent_report_is_part_of_the_view(senv: Env) -> None:
    class Reporter:
        def report(self, tenant: str, subject: str) -> dict[str, Any]:
            return {"tenant": tenant, "subject": subject, "consents": [{"scope": "policy"}], "collected": [],
                    "shared": []}

    senv.svc.consent = Reporter()
    view = senv.svc.view_subject("t1", "po1", "u-adult")
    assert view.report is not None and view.report["consents"] == [{"scope": "policy"}]


def test_unknown_subject(senv: Env) -> None:
    with pytest.raises(NotFound):
        senv.svc.view_subject("t1", "cs1", "nobody")


# --- unmasking ------------------------------------------------------------------------------------


def test_unmask_needs_reason_and_role_and_is_audited(env: Env) -> None:
    with pytest.raises(AccessDenied) as info:
        env.svc.unmask("t1", "cs1", "u-adult", "mobile_phone", "客户要求核对")
    assert info.value.rule == "S3"
    for reason in ("", "   "):
        with pytest.raises(AccessDenied) as info:
            env.svc.unmask("t1", "po1", "u-adult", "mobile_phone", reason)
        assert info.value.rule == "S4" and "事由" in str(info.value)
    with pytest.raises(InvalidInput, match="不得包含个人信息"):
        env.svc.unmask("t1", "po1", "u-adult", "mobile_phone", f"核对 {PHONE}")
    with pytest.raises(InvalidInput, match="未知的个人信息项"):
        env.svc.unmask("t1", "po1", "u-adult", "password", "核对")

    res = env.svc.unmask("t1", "po1", "u-adult", "contact.mobile", "用户投诉，需电话回访")
    assert res.value == PHONE and res.item.key == "mobile_phone"
    assert env.svc.unmask("t1", "po1", "u-adult", "身份证号码", "实名核验").value == ID_CARD
    assert env.svc.unmask("t1", "po1", "u-adult", "birth_date", "年龄核验").value == "1990-05-01"

    entries = env.entries()
    unmasks = [e for e in entries if e.action == "unmask"]
    allowed = [e for e in unmasks if e.details["outcome"] == "allowed"]
    denied = [e for e in unmasks if e.details["outcome"] == "denied"]
    assert [e.reason for e in allowed] == ["用户投诉，需电话回访", "实名核验", "年龄核验"]
    assert allowed[0].items == ("contact.mobile",) and allowed[0].subject == res.pseudonym
    assert {e.actor for e in denied} == {"cs1", "po1"} and len(denied) == 3
    assert_no_plaintext(env)
    assert env.audit.verify("t1").ok


# --- bulk export ----------------------------------------------------------------------------------


def test_export_needs_a_second_person(env: Env, tmp_path: Path) -> None:
    with pytest.raises(AccessDenied):
        env.svc.request_export("t1", "cs1", ["u-adult"], reason="批量核对")
    with pytest.raises(InvalidInput, match="事由"):
        env.svc.request_export("t1", "po1", ["u-adult"], reason=" ")
    req = env.svc.request_export("t1", "po1", ["u-adult", "u-teen"], reason="配合监管检查", unmasked=True,
                                 items=["mobile_phone", "id_card"])
    assert req.status == "pending" and req.kind == "unmask_bulk" and req.subject_count == 2
    out = tmp_path / "export.csv"

    with pytest.raises(AccessDenied, match="审批"):  # not approved yet
        env.svc.export(req.id, "po1", out)
    with pytest.raises(AccessDenied, match="本人"):  # self-approval
        env.svc.approve(req.id, "po1")
    with pytest.raises(AccessDenied):  # customer service cannot approve
        env.svc.approve(req.id, "cs1")
    with pytest.raises(AccessDenied):  # an administrator neither
        env.svc.approve(req.id, "admin")
    with pytest.raises(AccessDenied):  # another tenant's privacy officer neither
        env.svc.approve(req.id, "po9")

    approved = env.svc.approve(req.id, "po2", note="同意")
    assert approved.status == "approved" and approved.approver == "po2"
    with pytest.raises(RequestStateError):
        env.svc.approve(req.id, "po2")
    with pytest.raises(AccessDenied, match="审批人"):  # the approver cannot run it
        env.svc.export(req.id, "po2", out)
    assert not out.exists()

    res = env.svc.export(req.id, "po1", out)
    assert res.rows == 2 and not res.masked
    rows = list(csv.reader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0] == ["主体标识", "假名", "手机号码", "身份证号码"]
    assert sorted(r[0] for r in rows[1:]) == ["u-adult", "u-teen"]
    assert [PHONE, ID_CARD] in [r[2:] for r in rows[1:]]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with pytest.raises(RequestStateError, match="一次"):
        env.svc.export(req.id, "po1", tmp_path / "again.csv")
    assert env.svc.get_request(req.id).status == "used"

    exports = [e for e in env.entries() if e.action == "export"]
    steps = [(e.actor, e.details.get("step"), e.details.get("outcome")) for e in exports]
    assert ("po1", "request", None) in steps and ("po2", "approve", None) in steps
    assert ("po1", "export", None) in steps
    done = next(e for e in exports if e.details.get("step") == "export")
    assert done.details["approved_by"] == "po2" and done.details["rows"] == 2 and done.details["masked"] is False
    assert done.reason == "配合监管检查"
    assert sum(1 for s in steps if s[2] == "denied") >= 5
    assert_no_plaintext(env)


def test_masked_export_and_downgrade(senv: Env, tmp_path: Path) -> None:
    req = senv.svc.request_export("t1", "po1", None, reason="年度抽查", unmasked=True)
    assert req.subject_count == 3 and req.minor_count == 1  # u-child is under 14
    approved = senv.svc.approve(req.id, "po2", masked_only=True)
    assert approved.kind == "export" and not approved.unmasked
    res = senv.svc.export(req.id, "po1", tmp_path / "out.json")
    doc = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert res.masked and doc["masked"] is True and doc["approved_by"] == "po2" and len(doc["records"]) == 3
    phones = {r["subject"]: r["mobile_phone"] for r in doc["records"]}
    assert phones["u-adult"] == "138****8000"
    assert PHONE not in (tmp_path / "out.json").read_text(encoding="utf-8")
    last = senv.entries()[-1]
    assert last.details["minors"] == 1 and last.details["rule"] == "S6"


def test_requests_expire(senv: Env, tmp_path: Path) -> None:
    pending = senv.svc.request_export("t1", "po1", ["u-adult"], reason="核对")
    senv.clock.now = T0 + timedelta(days=8)
    with pytest.raises(RequestStateError, match="过期"):
        senv.svc.approve(pending.id, "po2")
    assert senv.svc.get_request(pending.id).status == "expired"
    req = senv.svc.request_export("t1", "po1", ["u-adult"], reason="核对")
    senv.svc.approve(req.id, "po2")
    senv.clock.now += timedelta(hours=25)
    with pytest.raises(RequestStateError, match="过期"):
        senv.svc.export(req.id, "po1", tmp_path / "late.csv")
    rejected = senv.svc.request_export("t1", "po1", ["u-adult"], reason="核对")
    senv.svc.reject(rejected.id, "po2", note="范围过大")
    with pytest.raises(RequestStateError, match="驳回"):
        senv.svc.export(rejected.id, "po1", tmp_path / "no.csv")
    listed = senv.svc.list_requests("t1", "po2")
    assert [r.status for r in listed] == ["expired", "expired", "rejected"]
    assert senv.svc.list_requests("t1", "cs1") == []  # only their own


# --- minors (S6) ----------------------------------------------------------------------------------


def test_minor_access_needs_approval_and_is_logged(env: Env) -> None:
    with pytest.raises(AccessDenied) as info:
        env.svc.view_subject("t1", "po1", "u-child")
    assert info.value.rule == "S6"
    with pytest.raises(AccessDenied) as info:
        env.svc.unmask("t1", "po1", "u-child", "mobile_phone", "核实监护人来电")
    assert info.value.rule == "S6"
    with pytest.raises(InvalidInput, match="不是未成年人"):
        env.svc.request_minor_access("t1", "po1", "u-adult", reason="核实")
    req = env.svc.request_minor_access("t1", "po1", "u-child", reason="监护人要求更正信息")
    with pytest.raises(AccessDenied, match="本人"):
        env.svc.approve(req.id, "po1")
    with pytest.raises(AccessDenied):
        env.svc.approve(req.id, "cs1")
    env.svc.approve(req.id, "po2")

    view = env.svc.view_subject("t1", "po1", "u-child")
    assert view.minor and view.age == 10 and view.authorization.rule == "S6"
    assert env.svc.unmask("t1", "po1", "u-child", "mobile_phone", "回拨监护人").value == CHILD_PHONE
    entry = env.entries()[-1]
    assert entry.details["minor"] is True and entry.details["approved_by"] == "po2"
    assert entry.details["approval"] == req.id
    # the approval is personal: another privacy officer or customer service still needs their own
    with pytest.raises(AccessDenied):
        env.svc.view_subject("t1", "po2", "u-child")
    with pytest.raises(AccessDenied):
        env.svc.view_subject("t1", "cs1", "u-child")
    # and it expires
    env.clock.now = T0 + timedelta(hours=25)
    with pytest.raises(AccessDenied) as info:
        env.svc.view_subject("t1", "po1", "u-child")
    assert info.value.rule == "S6"
    minors = [e for e in env.entries() if e.details.get("rule") == "S6" or e.details.get("minor")]
    assert len(minors) >= 6
    assert_no_plaintext(env)


def test_minor_age_follows_the_declaration(senv: Env) -> None:
    assert senv.svc.minor_age("t1") == 14
    assert not senv.svc.view_subject("t1", "cs1", "u-teen").minor  # 16, tenant without a policy: 14
    yaml_text = minimal_text().replace("tenant: demo", "tenant: t1", 1)
    assert "guardian_consent_under: 14" in yaml_text
    from yinsi.storage import PolicyVersion

    for label, under in (("v1", 14), ("v2", 18)):
        body = yaml_text.replace("guardian_consent_under: 14", f"guardian_consent_under: {under}")
        body = body.replace('label: "2024-01-01"', f'label: "{label}"')
        with senv.ring.session() as s, s.begin():
            s.add(PolicyVersion(tenant_id="t1", label=label, app_name="示例", controller_name="示例",
                                effective_date=date(2024, 1, 1 if label == "v1" else 2), updated_date=None,
                                declaration_yaml=body, declaration_hash="0" * 64, rendered_markdown="#",
                                rendered_hash="0" * 64, lint_errors=0, lint_warnings=0, published_at=T0,
                                published_by=None))
    fresh = StaffService(senv.svc.sessions, senv.audit, senv.ring, clock=senv.clock)
    assert fresh.minor_age("t1") == 18
    with pytest.raises(AccessDenied) as info:
        fresh.view_subject("t1", "cs1", "u-teen")
    assert info.value.rule == "S6"


# --- staff, roles, separation of duties, tenants ----------------------------------------------------


def test_separation_of_duties_on_grant(env: Env) -> None:
    with pytest.raises(SeparationOfDuties, match="职责分离"):
        env.svc.grant("t1", "cs1", "administrator", actor="admin")
    with pytest.raises(SeparationOfDuties):
        env.svc.grant("t1", "po1", "auditor", actor="admin")
    with pytest.raises(SeparationOfDuties):
        env.svc.grant("t1", "aud1", "administrator", actor="admin")
    with pytest.raises(SeparationOfDuties):
        env.svc.add_staff("t1", "x1", "某人", ["administrator", "privacy_officer"], actor="admin")
    with pytest.raises(AccessDenied, match="本人"):
        env.svc.grant("t1", "admin", "security_officer", actor="admin")
    with pytest.raises(AccessDenied):  # only administrators manage staff
        env.svc.grant("t1", "cs1", "privacy_officer", actor="po1")
    with pytest.raises(AccessDenied):
        env.svc.add_staff("t1", "x2", "某人", ["customer_service"])  # bootstrap is over
    member = env.svc.grant("t1", "cs1", "privacy_officer", actor="admin")
    assert member.roles == {Role.CUSTOMER_SERVICE, Role.PRIVACY_OFFICER}
    assert env.svc.grant("t1", "sec1", "auditor", actor="admin2").roles == {Role.SECURITY_OFFICER, Role.AUDITOR}
    assert env.svc.revoke("t1", "cs1", "privacy_officer", actor="admin").roles == {Role.CUSTOMER_SERVICE}
    changes = [e for e in env.entries() if e.action == "permission_change"]
    assert [e.details.get("step") for e in changes][-3:] == ["grant", "grant", "revoke"]
    assert changes[0].actor == "system" and changes[0].details["bootstrap"] is True


def test_bootstrap_and_deactivation(senv: Env) -> None:
    with senv.ring.session() as s, s.begin():
        s.add(Tenant(id="t3", name="t3", created_at=T0))
    with pytest.raises(AccessDenied, match="第一位须为管理员"):
        senv.svc.add_staff("t3", "po", "某人", ["privacy_officer"])
    with pytest.raises(NotFound):
        senv.svc.add_staff("nope", "admin", "某人", ["administrator"])
    with pytest.raises(AccessDenied):
        senv.svc.grant("nope", "admin", "auditor", actor="admin")
    assert senv.audit.chain("nope") is None  # no audit chain for a mistyped tenant
    senv.svc.add_staff("t3", "boss", "某人", ["administrator"])
    with pytest.raises(InvalidInput):
        senv.svc.add_staff("t3", "13800138000", "某人", ["customer_service"], actor="boss")
    senv.svc.deactivate("t1", "cs1", actor="admin")
    with pytest.raises(AccessDenied, match="停用"):
        senv.svc.view_subject("t1", "cs1", "u-adult")
    with pytest.raises(AccessDenied):
        senv.svc.deactivate("t1", "admin", actor="admin")


def test_tenant_isolation(env: Env) -> None:
    with pytest.raises(AccessDenied) as info:
        env.svc.view_subject("t2", "cs1", "u-other")  # cs1 works for t1
    assert info.value.rule == "S3"
    with pytest.raises(AccessDenied):
        env.svc.view_subject("t1", "po9", "u-adult")  # po9 works for t2
    with pytest.raises(NotFound):
        env.svc.view_subject("t2", "po9", "u-adult")  # t1's subject is not in t2
    req = env.svc.request_export("t2", "po9", None, reason="核对")
    assert req.subject_count == 1
    with pytest.raises(AccessDenied):
        env.svc.approve(req.id, "po2")  # t1's officer
    with pytest.raises(NotFound):
        env.svc.approve(req.id, "po2", tenant="t1")
    assert {m.staff_id for m in env.svc.list_staff("t2")} == {"admin", "po9"}
    # the refusals are in the chain of the tenant whose data was asked for
    assert any(e.actor == "po9" and e.details.get("outcome") == "denied" for e in env.entries("t1"))
    assert any(e.actor == "cs1" and e.details.get("outcome") == "denied" for e in env.entries("t2"))


ACTIONS = ("view", "unmask", "request_export", "approve_export", "request_minor_access")


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_service_matrix(senv: Env, role: Role) -> None:
    """Each role through the real service (the pure matrix is in test_staff_roles.py)."""
    staff = {Role.PRIVACY_OFFICER: "po1", Role.CUSTOMER_SERVICE: "cs1", Role.SECURITY_OFFICER: "sec1",
             Role.AUDITOR: "aud1", Role.ADMINISTRATOR: "admin"}[role]
    pending = senv.svc.request_export("t1", "po2", ["u-adult"], reason="核对")
    calls = {
        "view": lambda: senv.svc.view_subject("t1", staff, "u-adult"),
        "unmask": lambda: senv.svc.unmask("t1", staff, "u-adult", "email", "核对"),
        "request_export": lambda: senv.svc.request_export("t1", staff, ["u-adult"], reason="核对"),
        "approve_export": lambda: senv.svc.approve(pending.id, staff),
        "request_minor_access": lambda: senv.svc.request_minor_access("t1", staff, "u-child", reason="核对"),
    }
    allowed = {
        Role.PRIVACY_OFFICER: set(ACTIONS),
        Role.CUSTOMER_SERVICE: {"view", "request_minor_access"},
    }.get(role, set())
    for name in ACTIONS:
        if name in allowed:
            calls[name]()
        else:
            with pytest.raises(AccessDenied):
                calls[name]()
    assert StaffAction.VIEW_MASKED.value == "view_masked"
