"""The staff API (``/api/v1/staff/``) over HTTP with real staff accounts (password + TOTP) against the 微聊客
demo app: the queue, verifying in person, refusing with a ground, restriction and its lifting, identifiers
for a manual step, masked views and unmasking, four-eyes approvals, the audit log and alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests import test_api_e2e as e2e
from tests import test_rights_service as rights_tests
from tests.test_api_e2e import ADMIN, AUDITOR, CS, PASSWORD, PO, PO2, Server, bearer
from tests.test_rights_service import TENANT
from yinsi.staff import actions
from yinsi.staff.anomaly import ActivityEvent, ActivityMonitor, EventKind
from yinsi.staff.service import StaffService

pytestmark = pytest.mark.usefixtures("isolated_env")

env = rights_tests.env  # the demo app with the 2022 policy published, on each database
server = e2e.server  # the API on it, with an administrator, two privacy officers, customer service, an auditor

SEC = "sec-zhou"


def intake(s: Server, rtype: str = "access", **details: Any) -> str:
    """A request taken in by the app's own pages (unverified)."""
    r = s.app_call("POST", "/api/v1/requests", {"subject": str(s.env.agent), "type": rtype, "details": details})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def staff_service(s: Server) -> StaffService:
    trail = s.services.rights.audit
    return StaffService(s.services.rights.sessions, trail.log, trail.ring)


def test_the_queue_and_a_request_story(server: Server) -> None:
    s = server
    rid = intake(s)
    cs, po = bearer(s.staff_token(CS)), bearer(s.staff_token(PO))
    queue = s.client.get("/api/v1/staff/requests", headers=cs).json()
    [row] = [q for q in queue["requests"] if q["id"] == rid]
    assert row["state"] == "unverified" and row["deadline_status"] in ("on_track", "due_soon")
    assert row["type_zh"] == "查阅" and row["working_days_left"] is not None
    assert queue["counts"]["open"] == 1 and queue["counts"]["waiting_manual"] == 0
    assert s.client.get("/api/v1/staff/requests?view=overdue", headers=cs).json()["requests"] == []
    assert s.client.get("/api/v1/staff/requests?view=nonsense", headers=cs).status_code == 422

    r = s.client.post(f"/api/v1/staff/requests/{rid}/verify", json={"how": "当面核对居民身份证"}, headers=cs)
    assert r.status_code == 200, r.text
    story = r.json()
    assert story["state"] == "verified" and story["history"][-1]["actor"] == CS
    assert "当面核对居民身份证" in story["history"][-1]["note"]
    assert s.client.get(f"/api/v1/staff/requests/{rid}", headers=po).json()["id"] == rid
    missing = s.client.get("/api/v1/staff/requests/00000000-0000-0000-0000-000000000000", headers=po)
    assert missing.status_code == 404 and "00000000" not in missing.text


def test_refusal_needs_an_enumerated_ground_and_reaches_the_person(server: Server) -> None:
    s = server
    me = bearer(s.person_token(s.env.agent))
    rid = s.client.post("/api/v1/me/requests", json={"type": "deletion"}, headers=me).json()["id"]
    po = bearer(s.staff_token(PO))
    bad = s.client.post(f"/api/v1/staff/requests/{rid}/refuse", json={"ground": "we_do_not_want", "detail": "…"},
                        headers=po)
    assert bad.status_code == 422
    r = s.client.post(f"/api/v1/staff/requests/{rid}/refuse",
                      json={"ground": "legal_duty", "detail": "交易记录须依电子商务法保存三年"}, headers=po)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "refused"
    mine = s.client.get(f"/api/v1/me/requests/{rid}", headers=me).json()
    assert mine["state"] == "refused" and "电子商务法" in mine["refusal"] and "R7" in mine["refusal"]
    assert mine["escalation"]
    again = s.client.post(f"/api/v1/staff/requests/{rid}/refuse", json={"ground": "legal_duty", "detail": "再次"},
                          headers=po)
    assert again.status_code == 409


@pytest.fixture
def fresh_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate re-reads a subject's state on every call. The rights service records restrictions through its own
    ledger handle, which the gate sees within ``YINSI_GATE_STATE_TTL`` (default 1 s); 0 makes that immediate."""
    monkeypatch.setenv("YINSI_GATE_STATE_TTL", "0")


def test_a_restriction_is_enforced_by_the_gate_until_staff_lift_it(fresh_gate: None, server: Server) -> None:
    s, agent = server, str(server.env.agent)
    for scope in ("policy", "feature:marketing"):
        s.app_call("POST", "/api/v1/consents", {"subject": agent, "scope": scope})
    ask = {"subject": agent, "action": "collect", "feature": "marketing", "items": ["basic.name"]}
    assert s.app_call("POST", "/api/v1/gate/check", ask).json()["allowed"] is True
    me = bearer(s.person_token(s.env.agent))
    rid = s.client.post("/api/v1/me/requests", json={"type": "restriction", "details": {"features": ["marketing"]}},
                        headers=me).json()["id"]
    po = bearer(s.staff_token(PO))
    assert s.client.post(f"/api/v1/staff/requests/{rid}/run", headers=po).json()["state"] == "completed"
    refused = s.app_call("POST", "/api/v1/gate/check", ask).json()
    assert refused["allowed"] is False and refused["reasons"][0]["rule"] == "N4"
    assert s.client.post(f"/api/v1/staff/requests/{rid}/lift-restriction", json={"note": "本人申请解除，工单 7"},
                         headers=bearer(s.staff_token(CS))).status_code == 403
    r = s.client.post(f"/api/v1/staff/requests/{rid}/lift-restriction", json={"note": "本人申请解除，工单 7"}, headers=po)
    assert r.status_code == 200 and r.json()["lifted"] == ["feature:marketing"]
    assert s.app_call("POST", "/api/v1/gate/check", ask).json()["allowed"] is True


def test_identifiers_for_a_manual_step_need_a_reason_and_a_privacy_officer(server: Server) -> None:
    s = server
    rid = intake(s, "copy")
    po, cs = bearer(s.staff_token(PO)), bearer(s.staff_token(CS))
    assert s.client.post(f"/api/v1/staff/requests/{rid}/identifiers", json={}, headers=po).status_code == 422
    assert s.client.post(f"/api/v1/staff/requests/{rid}/identifiers", json={"reason": "人工调取副本"},
                         headers=cs).status_code == 403
    r = s.client.post(f"/api/v1/staff/requests/{rid}/identifiers", json={"reason": "在实名认证系统中人工调取副本"},
                      headers=po)
    assert r.status_code == 200, r.text
    assert str(s.env.agent_row()["phone"]) in r.json()["identifiers"].values()


def test_masked_view_and_unmasking_with_a_reason(server: Server) -> None:
    s, agent = server, str(server.env.agent)
    assert s.app_call("POST", "/api/v1/subjects", {"subject": agent, "birth_date": "1990-05-17"}).status_code == 201
    po = bearer(s.staff_token(PO))
    view = s.client.post("/api/v1/staff/subjects/view", json={"subject": agent}, headers=po)
    assert view.status_code == 200, view.text
    [birth] = [i for i in view.json()["items"] if i["key"] == "birth_date"]
    assert birth["masked"] and "1990-05-17" not in view.text
    blank = s.client.post("/api/v1/staff/subjects/unmask", json={"subject": agent, "item": "birth_date", "reason": " "},
                          headers=po)
    assert blank.status_code == 403 and blank.json()["rule"] == "S4" and "事由" in blank.json()["detail"]
    r = s.client.post("/api/v1/staff/subjects/unmask",
                      json={"subject": agent, "item": "birth_date", "reason": "核对未成年人身份"}, headers=po)
    assert r.status_code == 200 and r.json()["value"] == "1990-05-17"
    entries = s.client.get("/api/v1/staff/audit?limit=20", headers=bearer(s.staff_token(AUDITOR, totp=False))).json()
    assert any(e["action"] == "unmask" and e["actor"] == PO for e in entries["entries"])
    assert agent not in {e["subject"] for e in entries["entries"]}  # pseudonymised


def test_approvals_need_a_second_person(server: Server) -> None:
    s, agent = server, str(server.env.agent)
    s.app_call("POST", "/api/v1/subjects", {"subject": agent, "birth_date": "1990-05-17"})
    po_token = s.staff_token(PO)
    principal = s.services.staff.authenticate(po_token)
    staff = staff_service(s)
    first = actions.request_export(principal, staff, [agent], reason="季度合规抽查")
    second = actions.request_export(principal, staff, [agent], reason="季度合规抽查（复核）")
    po, po2 = bearer(po_token), bearer(s.staff_token(PO2))
    listed = s.client.get("/api/v1/staff/approvals?status=pending", headers=po).json()["approvals"]
    assert {a["id"] for a in listed} == {first.id, second.id}
    own = s.client.post(f"/api/v1/staff/approvals/{first.id}/approve", json={}, headers=po)
    assert own.status_code == 403 and own.json()["rule"] == "S3"
    # a second account of the same person does not make a second person
    admin = s.services.staff.authenticate(s.staff_token(ADMIN))
    s.totp["po-wang-2"] = s.services.staff.create_account(admin, "po-wang-2", "王负责人（第二账号）", ["privacy_officer"],
                                                          PASSWORD, person_id=principal.person_id)
    twin = s.client.post(f"/api/v1/staff/approvals/{first.id}/approve", json={}, headers=bearer(s.staff_token("po-wang-2")))
    assert twin.status_code == 403 and twin.json()["rule"] == "S3"
    ok = s.client.post(f"/api/v1/staff/approvals/{first.id}/approve", json={"note": "同意"}, headers=po2)
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    no = s.client.post(f"/api/v1/staff/approvals/{second.id}/reject", json={"note": "理由不足"}, headers=po2)
    assert no.status_code == 200 and no.json()["status"] == "rejected"
    assert s.client.post(f"/api/v1/staff/approvals/{second.id}/approve", json={}, headers=po2).status_code == 409
    assert s.client.post("/api/v1/staff/approvals/nope/approve", json={}, headers=po2).status_code == 404
    assert s.client.get("/api/v1/staff/approvals", headers=bearer(s.staff_token(ADMIN))).status_code == 403


def test_alerts_are_for_the_security_officer(server: Server) -> None:
    s = server
    svc = s.services
    admin = svc.staff.authenticate(s.staff_token(ADMIN))
    s.totp[SEC] = svc.staff.create_account(admin, SEC, "周安全", ["security_officer"], PASSWORD)
    trail = svc.rights.audit
    monitor = ActivityMonitor(svc.rights.sessions, trail.ring, trail.log)
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    monitor.ingest_many(TENANT, [ActivityEvent(EventKind.LOGIN_FAILURE, "13800000000", t0 + timedelta(seconds=i))
                                 for i in range(6)])
    sec = bearer(s.staff_token(SEC))
    alerts = s.client.get("/api/v1/staff/alerts", headers=sec).json()["alerts"]
    assert alerts and "13800000000" not in str(alerts)
    assert s.client.get("/api/v1/staff/alerts", headers=bearer(s.staff_token(PO))).status_code == 403
    r = s.client.post(f"/api/v1/staff/alerts/{alerts[0]['id']}/ack", json={"note": "已联系用户，确认为本人"}, headers=sec)
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert s.client.get("/api/v1/staff/alerts", headers=sec).json()["alerts"] == []
    assert s.client.post("/api/v1/staff/alerts/999999/ack", json={"note": "x"}, headers=sec).status_code == 404
