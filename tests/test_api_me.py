"""The person's API (``/api/v1/me/``) over HTTP with real sessions (a code from the SMS outbox) against the
微聊客 demo app: permissions per device, the 双清单, consents, requests taken in by the app and verified in
the session, cancellation, policy versions and their changes, and errors without personal information."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import test_api_e2e as e2e
from tests import test_rights_service as rights_tests
from tests.test_api_e2e import Server, bearer
from yinsi.services.publishing import publish

pytestmark = pytest.mark.usefixtures("isolated_env")

env = rights_tests.env  # the demo app with the 2022 policy published, on each database
server = e2e.server  # the API on it

ROOT = Path(__file__).resolve().parents[1]


def test_permissions_and_lists_show_the_persons_own_data(server: Server) -> None:
    s, agent = server, str(server.env.agent)
    r = s.app_call("POST", "/api/v1/permissions", {"subject": agent, "device": "iphone-1", "permission": "camera",
                                                   "event": "granted"})
    assert r.status_code == 201, r.text
    for scope in ("policy", "feature:marketing"):
        s.app_call("POST", "/api/v1/consents", {"subject": agent, "scope": scope})
    s.app_call("POST", "/api/v1/gate/check",
               {"subject": agent, "action": "collect", "feature": "marketing", "items": ["basic.name"]})
    me = bearer(s.person_token(s.env.agent))
    who = s.client.get("/api/v1/me", headers=me).json()
    assert who == {"tenant": "weiliaoke", "subject_kind": "agent", "method": "sms"}
    perms = s.client.get("/api/v1/me/permissions", headers=me).json()
    [device] = perms["devices"]
    statuses = {p["permission"]: p["status"] for p in device["permissions"]}
    assert device["device"] == "iphone-1" and statuses["camera"] == "granted"
    assert statuses["microphone"] == "never_asked" and set(statuses) == {p["permission"] for p in perms["declared"]}
    lists = s.client.get("/api/v1/me/lists", headers=me).json()
    assert "basic.name" in {c["item"] for c in lists["collected"]}
    other = bearer(s.person_token(s.env.other))
    assert s.client.get("/api/v1/me/lists", headers=other).json()["collected"] == []
    assert s.client.get("/api/v1/me/consents", headers=other).json()["consents"] == []


def test_consents_can_be_given_again_and_bad_input_is_refused(server: Server) -> None:
    s = server
    me = bearer(s.person_token(s.env.agent))
    r = s.client.post("/api/v1/me/consents/withdraw", json={"scope": "feature:marketing"}, headers=me)
    assert r.status_code == 409 and r.json()["code"] == "consent_not_active"
    assert s.client.post("/api/v1/me/consents/give", json={"scope": "feature:marketing"}, headers=me).status_code == 200
    consents = {c["scope"]: c for c in s.client.get("/api/v1/me/consents", headers=me).json()["consents"]}
    assert consents["feature:marketing"]["channel"] == "web" and consents["feature:marketing"]["status"] == "active"
    r = s.client.post("/api/v1/me/consents/give", json={"scope": "recipient:nobody"}, headers=me)
    assert r.status_code == 400 and r.json()["code"] == "consent_rejected"
    bad = s.client.post("/api/v1/me/requests", json={"type": "nonsense", "subject": "13800000000"}, headers=me)
    assert bad.status_code == 422 and "13800000000" not in bad.text
    assert s.client.get("/api/v1/me/requests/not-an-id", headers=me).status_code == 422
    r = s.client.post("/api/v1/me/requests", json={"type": "correction", "details": {}}, headers=me)
    assert r.status_code == 400 and r.json()["code"] == "request_rejected"
    for details in ({"items": 5}, {"ground": {"x": 1}}, {"features": "marketing"}, {"unknown": 1}):
        r = s.client.post("/api/v1/me/requests", json={"type": "deletion", "details": details}, headers=me)
        assert r.status_code == 422, (details, r.text)
    r = s.client.post("/api/v1/me/requests", json={"type": "deletion", "details": {
        "ground": "consent_withdrawn", "items": ["basic.name"]}}, headers=me)
    assert r.status_code == 201 and r.json()["state"] == "verified"


def test_a_request_taken_in_by_the_app_is_verified_in_the_session(server: Server) -> None:
    s = server
    r = s.app_call("POST", "/api/v1/requests", {"subject": str(s.env.agent), "type": "access"})
    rid = r.json()["id"]
    me = bearer(s.person_token(s.env.agent))
    [listed] = s.client.get("/api/v1/me/requests", headers=me).json()["requests"]
    assert listed["id"] == rid and listed["state"] == "unverified"
    other = bearer(s.person_token(s.env.other))
    assert s.client.post(f"/api/v1/me/requests/{rid}/verify", headers=other).status_code == 404
    r = s.client.post(f"/api/v1/me/requests/{rid}/verify", headers=me)
    assert r.status_code == 200 and r.json()["state"] == "verified"
    assert s.client.post(f"/api/v1/me/requests/{rid}/verify", headers=me).status_code == 409
    phone = str(s.env.agent_row()["phone"])
    assert phone not in s.client.get(f"/api/v1/me/requests/{rid}", headers=me).text


def test_cancellation_terms_then_an_irreversible_confirmation(server: Server) -> None:
    s = server
    me = bearer(s.person_token(s.env.agent))
    terms = s.client.get("/api/v1/me/cancellation", headers=me).json()
    assert terms["unmet"] == [] and "不可撤回" in terms["irreversible"] and terms["kept"]
    rid = s.client.post("/api/v1/me/requests", json={"type": "cancel_account"}, headers=me).json()["id"]
    r = s.client.post(f"/api/v1/me/requests/{rid}/confirm", headers=me)
    assert r.status_code == 200 and r.json()["state"] == "confirmed"
    r = s.client.post(f"/api/v1/me/requests/{rid}/withdraw", headers=me)
    assert r.status_code == 409 and "不可撤回" in r.json()["detail"]


def test_policy_versions_and_what_changed(server: Server) -> None:
    s = server
    publish(ROOT / "policies" / "weiliaoke-2020.yaml", s.env.url)
    me = bearer(s.person_token(s.env.agent))
    labels = [v["label"] for v in s.client.get("/api/v1/me/policy/versions", headers=me).json()["versions"]]
    assert labels == ["2020-06-07", "2022-08-04"]
    text = s.client.get("/api/v1/me/policy/versions/2020-06-07", headers=me).json()
    assert "瑞庭网络技术（上海）有限公司" in text["markdown"]
    changes = s.client.get("/api/v1/me/policy/changes?old=2020-06-07&new=2022-08-04", headers=me).json()
    assert changes["major"] and changes["groups"][0]["major"] and "重大变更" in changes["summary"]
    assert s.client.get("/api/v1/me/policy/changes?old=2020-06-07&new=1999", headers=me).status_code == 404


def test_a_session_ends_at_logout(server: Server) -> None:
    s = server
    token = s.person_token(s.env.agent)
    assert s.client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert s.client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    r = s.client.get("/api/v1/me", headers=bearer(token))
    assert r.status_code == 401 and token not in r.text


def test_the_rights_offered_with_their_reply_times(server: Server) -> None:
    s = server
    me = bearer(s.person_token(s.env.agent))
    out = s.client.get("/api/v1/me/rights", headers=me).json()
    rights = {r["type"]: r for r in out["rights"]}
    assert rights["cancel_account"]["declared"] and "R9" in rights["cancel_account"]["reply"]
    assert "15" in rights["access"]["reply"]  # 微聊客 2022 promises 15 days
    assert not rights["deceased"]["here"]
    assert {g["ground"] for g in out["deletion_grounds"]} >= {"consent_withdrawn", "purpose_done"}
