"""End to end over HTTP (TestClient on ``create_app``) against the 微聊客 demo app and a real database, with
real people's sessions (a code read from the development SMS outbox) and real staff accounts (password and
TOTP through ``StaffAuthService``):

- a person logs in, withdraws a consent, and the app's gate refuses afterwards;
- a person submits a copy request, an authenticated privacy officer runs it and completes its manual step,
  the person downloads the package;
- person A never sees person B's request (404); a customer-service agent cannot reach the administrator's
  routes (403); a member of staff whose session has no second factor is refused on PI routes.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests import test_rights_service as rights_tests
from tests.test_rights_service import TENANT, Env
from yinsi.api.app import create_app
from yinsi.api.settings import ApiSettings
from yinsi.notify.channels import FileSmsChannel

pytestmark = pytest.mark.usefixtures("isolated_env")

env = rights_tests.env  # the demo app with the 2022 policy published, on each database

PASSWORD = "correct horse battery staple 42"
PO, PO2, CS, ADMIN, AUDITOR = "po-wang", "po-li", "cs-zhao", "admin-chen", "audit-sun"


@dataclass
class Server:
    client: TestClient
    env: Env
    sms: FileSmsChannel
    app_key: str
    totp: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> Any:
        return self.client.app.state.services  # type: ignore[attr-defined]

    def app_call(self, method: str, path: str, body: Any = None) -> Any:
        return self.client.request(method, path, json=body, headers={"Authorization": f"Bearer {self.app_key}"})

    def person_token(self, agent: int) -> str:
        """Log in as the agent with the code the development SMS gateway received."""
        phone = self.env.phones[agent]
        before = len(self._codes(phone))
        r = self.client.post("/api/v1/auth/person/code", json={"tenant": TENANT, "contact": phone, "channel": "sms"})
        assert r.status_code == 202, r.text
        challenge = r.json()["challenge_id"]
        codes = self._codes(phone)
        for _ in range(200):  # the code is sent by a background thread
            if len(codes) > before:
                break
            time.sleep(0.05)
            codes = self._codes(phone)
        assert len(codes) > before, "no code reached the SMS outbox"
        r = self.client.post("/api/v1/auth/person/verify",
                             json={"tenant": TENANT, "challenge_id": challenge, "code": codes[-1]})
        assert r.status_code == 200, r.text
        token = r.cookies.get("yinsi_session")
        assert token
        self.client.cookies.clear()
        return token

    def _codes(self, phone: str) -> list[str]:
        try:
            lines = self.sms.read_messages()
        except FileNotFoundError:
            return []
        return [str(m["params"]["code"]) for m in lines if m["to"].endswith(phone[-8:]) and "code" in m["params"]]

    def staff_token(self, staff_id: str, *, totp: bool = True) -> str:
        """A session of the account (one login each: a TOTP code is accepted only once)."""
        if totp and staff_id in self.tokens:
            return self.tokens[staff_id]
        code = None
        if totp:
            code = pyotp.TOTP(self.totp[staff_id]).now()
        body = {"tenant": TENANT, "staff_id": staff_id, "password": PASSWORD, "totp": code}
        r = self.client.post("/api/v1/auth/staff/login", json=body)
        assert r.status_code == 200, r.text
        token = r.cookies.get("yinsi_staff")
        assert token
        self.client.cookies.clear()
        if totp:
            self.tokens[staff_id] = token
        return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def server(env: Env, tmp_path: Path) -> Iterator[Server]:
    sms = FileSmsChannel(tmp_path / "sms")
    settings = ApiSettings(database_url=env.url, data_dir=tmp_path / "data", datamaps={TENANT: env.dm},
                           store_urls=env.urls, channels={"sms": sms})
    with TestClient(create_app(settings)) as client:
        svc = client.app.state.services  # type: ignore[attr-defined]
        _, key = svc.api_keys.create_unchecked(TENANT, "测试应用",
                                               ["gate", "consent", "permissions", "requests", "subjects"])
        srv = Server(client, env, sms, key)
        auth = svc.staff
        _, srv.totp[ADMIN] = auth.bootstrap(TENANT, ADMIN, "陈管理员", PASSWORD)
        admin = auth.authenticate(srv.staff_token(ADMIN))
        for staff_id, name, roles in ((PO, "王负责人", ["privacy_officer"]), (PO2, "李负责人", ["privacy_officer"]),
                                      (CS, "赵客服", ["customer_service"]), (AUDITOR, "孙审计", ["auditor"])):
            srv.totp[staff_id] = auth.create_account(admin, staff_id, name, roles, PASSWORD)
        yield srv


def test_a_person_withdraws_a_consent_and_the_gate_refuses_afterwards(server: Server) -> None:
    s, agent = server, str(server.env.agent)
    for scope in ("policy", "feature:marketing"):
        r = s.app_call("POST", "/api/v1/consents", {"subject": agent, "scope": scope})
        assert r.status_code == 201, r.text
    ask = {"subject": agent, "action": "collect", "feature": "marketing", "items": ["basic.name"]}
    assert s.app_call("POST", "/api/v1/gate/check", ask).json()["allowed"] is True

    me = bearer(s.person_token(server.env.agent))
    consents = {c["scope"]: c for c in s.client.get("/api/v1/me/consents", headers=me).json()["consents"]}
    assert consents["feature:marketing"]["status"] == "active" and consents["feature:marketing"]["purposes"]
    r = s.client.post("/api/v1/me/consents/withdraw", json={"scope": "feature:marketing"}, headers=me)
    assert r.status_code == 200, r.text
    assert "营销活动" in r.json()["statement"]

    refused = s.app_call("POST", "/api/v1/gate/check", ask).json()
    assert refused["allowed"] is False and any(x["rule"] == "C6" for x in refused["reasons"])
    # withdrawing the policy: everything on consent stops, what rests on other bases is named
    out = s.client.post("/api/v1/me/consents/withdraw-all", headers=me).json()
    assert out["withdrawn"] == ["policy"] and "为履行法定职责或法定义务所必需" in out["statement"]
    assert s.app_call("POST", "/api/v1/gate/check", {**ask, "feature": "user_service",
                                                    "items": ["contact.mobile"]}).json()["allowed"] is False
    assert s.client.get("/api/v1/me/consents").status_code == 401  # no session, no data


def test_a_copy_request_completed_by_staff_is_downloaded_by_the_person_only(server: Server) -> None:
    s, e = server, server.env
    a, b = bearer(s.person_token(e.agent)), bearer(s.person_token(e.other))
    r = s.client.post("/api/v1/me/requests", json={"type": "copy"}, headers=a)
    assert r.status_code == 201, r.text
    view = r.json()
    rid = view["id"]
    assert view["state"] == "verified" and "短信验证码" in view["history"][-1]["note"]
    assert view["deadline"]["due_date"] and view["deadline"]["explanation"]

    for path in (f"/api/v1/me/requests/{rid}", f"/api/v1/me/requests/{rid}/package"):
        r = s.client.get(path, headers=b)
        assert r.status_code == 404 and r.json()["code"] == "request_not_found"
    assert s.client.post(f"/api/v1/me/requests/{rid}/withdraw", headers=b).status_code == 404
    assert s.client.get("/api/v1/me/requests", headers=b).json()["requests"] == []
    assert s.client.get(f"/api/v1/me/requests/{rid}/package", headers=a).status_code == 409  # not done yet

    po = bearer(s.staff_token(PO))
    queue = s.client.get("/api/v1/staff/requests", headers=po).json()
    assert rid in [q["id"] for q in queue["requests"]] and queue["counts"]["open"] >= 1
    r = s.client.post(f"/api/v1/staff/requests/{rid}/run", headers=po)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "waiting_manual" and r.json()["manual_waiting"]
    waiting = s.client.get("/api/v1/staff/requests?view=waiting_manual", headers=po).json()["requests"]
    assert [q["id"] for q in waiting] == [rid]
    r = s.client.post(f"/api/v1/staff/requests/{rid}/complete", json={"note": "其余系统的副本已另行交付，工单 WB-7"},
                      headers=po)
    assert r.status_code == 200, r.text
    story = r.json()
    assert story["state"] == "completed" and story["result"]["package"] == "encrypted"
    assert any(h["actor"] == PO for h in story["history"])

    r = s.client.get(f"/api/v1/me/requests/{rid}/package", headers=a)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.headers["cache-control"] == "no-store"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        package = json.loads(z.read("personal_information.json"))
    assert package["meta"]["request"] == rid
    assert str(e.agent_row()["phone"]) in {str(d["value"]) for d in package["data"]}
    assert s.client.get(f"/api/v1/me/requests/{rid}/package", headers=b).status_code == 404
    mine = s.client.get(f"/api/v1/me/requests/{rid}", headers=a).json()
    assert mine["package_ready"] and any("12377" in x for x in mine["escalation"])


def test_roles_and_second_factor_guard_the_staff_routes(server: Server) -> None:
    s = server
    cs = bearer(s.staff_token(CS))
    for method, path in (("GET", "/api/v1/staff/app-keys"), ("POST", "/api/v1/staff/app-keys/abc/revoke")):
        r = s.client.request(method, path, headers=cs)
        assert r.status_code == 403 and r.json()["code"] == "staff_forbidden" and r.json()["rule"] == "S3"
    assert s.client.post("/api/v1/staff/requests/00000000-0000-0000-0000-000000000000/complete",
                         json={"note": "x"}, headers=cs).status_code == 403
    assert s.client.get("/api/v1/staff/requests", headers=cs).status_code == 200  # customer service takes requests

    admin = bearer(s.staff_token(ADMIN))
    r = s.client.post("/api/v1/staff/app-keys", json={"name": "订单系统", "scopes": ["gate"]}, headers=admin)
    assert r.status_code == 201, r.text
    key_id = r.json()["key_id"]
    assert key_id in [k["key_id"] for k in s.client.get("/api/v1/staff/app-keys", headers=admin).json()["keys"]]
    rotated = s.client.post(f"/api/v1/staff/app-keys/{key_id}/rotate", json={}, headers=admin).json()["token"]
    ask = {"subject": str(s.env.agent), "action": "collect", "feature": "register_login", "items": ["contact.mobile"]}
    assert s.client.post("/api/v1/gate/check", json=ask, headers=bearer(rotated)).status_code == 200
    assert s.client.post(f"/api/v1/staff/app-keys/{key_id}/revoke", headers=admin).status_code == 200
    assert s.client.post("/api/v1/gate/check", json=ask, headers=bearer(rotated)).status_code == 401
    assert s.client.post("/api/v1/staff/subjects/view", json={"subject": str(s.env.agent)},
                         headers=admin).status_code == 403  # the administrator never reads PI

    # an auditor logs in without a second factor (no role of theirs needs one) and reads the audit log …
    auditor_token = s.staff_token(AUDITOR, totp=False)
    audit = s.client.get("/api/v1/staff/audit/verify", headers=bearer(auditor_token))
    assert audit.status_code == 200 and audit.json()["ok"] is True
    assert s.client.post("/api/v1/staff/subjects/view", json={"subject": str(s.env.agent)},
                         headers=bearer(auditor_token)).status_code == 403
    # … then becomes a privacy officer: the session without a second factor is refused on PI routes
    svc = s.services.staff
    admin_p = svc.authenticate(admin["Authorization"].split()[1])
    svc.staff.revoke(TENANT, AUDITOR, "auditor", actor=admin_p.staff_id)
    svc.staff.grant(TENANT, AUDITOR, "privacy_officer", actor=admin_p.staff_id)
    for method, path, body in (("POST", "/api/v1/staff/subjects/view", {"subject": str(s.env.agent)}),
                               ("GET", "/api/v1/staff/requests", None)):
        r = s.client.request(method, path, json=body, headers=bearer(auditor_token))
        assert r.status_code in (401, 403) and r.json()["code"] == "mfa_required", r.text
