"""End to end for apps over HTTP, on SQLite, PostgreSQL and MariaDB: an app records consents and asks the gate
(a refusal with its reasons and rule links, then an allowance), in single calls and batches; processing
records survive a clean stop. And two ``yinsi serve`` processes on one PostgreSQL database give the same
answers: a withdrawal recorded through one is enforced by the other within the state TTL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.api_world import ROOT, LiveServer, bearer, serve_env
from tests.conftest import scratch_database
from tests.helpers import stored_subject
from yinsi.api.app import create_app
from yinsi.api.settings import ApiSettings
from yinsi.auth.apikeys import ApiKeyService
from yinsi.auth.principals import ALL_APP_SCOPES
from yinsi.services.publishing import publish
from yinsi.storage import upgrade
from yinsi.storage.consent_tables import ProcessingRecord
from yinsi.storage.engine import make_engine

pytestmark = pytest.mark.usefixtures("isolated_env")

TENANT = "weiliaoke"
LOCATION = {"action": "collect", "feature": "customer_chat", "items": ["location.precise"], "device": "phone-1"}
SEPARATE = {"scope": "item:customer_chat:location.precise",
            "disclosures": {"necessity": "向客户发送您所在楼盘的位置", "impact": "位置信息泄露可能暴露您的行踪"}}


def _seed(url: str) -> str:
    """The 2022 policy published and an app key with every scope; returns the key."""
    upgrade(url)
    publish(ROOT / "policies" / "weiliaoke-2022.yaml", url)
    with ApiKeyService(url) as keys:
        return keys.create_unchecked(TENANT, "端到端测试", sorted(ALL_APP_SCOPES))[1]


def _records(url: str, subject: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(ProcessingRecord)
                                   .where(ProcessingRecord.tenant_id == TENANT,
                                          ProcessingRecord.subject_id == stored_subject(url, TENANT, subject))) or 0)
    finally:
        engine.dispose()


def test_an_app_is_refused_with_reasons_then_allowed(db_url: str, tmp_path: Path) -> None:
    key = _seed(db_url)
    auth = bearer(key)
    settings = ApiSettings(database_url=db_url, data_dir=tmp_path, channels={})
    with TestClient(create_app(settings)) as c:
        r = c.post("/api/v1/gate/check", json={"subject": "agent-1", **LOCATION}, headers=auth)
        assert r.status_code == 200, r.text
        refused = r.json()
        assert refused["allowed"] is False and refused["basis"] == "consent"
        missing = {m["rule"]: m for m in refused["missing"]}
        assert {"C2", "C4", "P1"} <= set(missing)  # the policy, the separate consent, the device permission
        assert missing["C4"]["rule_url"] == "/api/v1/rules/C4" and "单独同意" in missing["C4"]["message"]
        assert c.get(missing["C4"]["rule_url"]).json()["id"] == "C4"  # the link leads to the rule

        # a separate consent without the disclosures the law requires is refused, citing the rule
        r = c.post("/api/v1/consents", json={"subject": "agent-1", "scope": SEPARATE["scope"]}, headers=auth)
        assert r.status_code == 422 and r.json()["code"] == "consent_rejected" and r.json()["rule"] == "C4"
        assert r.headers["content-type"].startswith("application/problem+json")

        r = c.post("/api/v1/consents", headers=auth, json={"batch": [
            {"subject": "agent-1", "scope": "policy"}, {"subject": "agent-1", **SEPARATE}]})
        assert r.status_code == 201, r.text
        assert [e["kind"] for e in r.json()["recorded"]] == ["general", "separate"]
        r = c.post("/api/v1/permissions", headers=auth, json={"subject": "agent-1", "device": "phone-1",
                                                                "permission": "location", "event": "granted",
                                                                "feature": "customer_chat"})
        assert r.status_code == 201, r.text
        allowed = c.post("/api/v1/gate/check", json={"subject": "agent-1", **LOCATION}, headers=auth).json()
        assert allowed["allowed"] is True and allowed["missing"] == []

        batch = [{"subject": "agent-1", **LOCATION}, {"subject": "agent-2", **LOCATION}] * 50
        r = c.post("/api/v1/gate/check", json={"batch": batch}, headers=auth)
        assert [d["allowed"] for d in r.json()["decisions"]] == [True, False] * 50

        state = c.get("/api/v1/subjects/agent-1/state", headers=auth).json()
        assert {x["scope"]: x["status"] for x in state["consents"]} == {"policy": "active", SEPARATE["scope"]: "active"}
        assert state["permissions"][0]["status"] == "granted"

        r = c.post("/api/v1/subjects", json={"subject": "agent-3", "birth_date": "2015-05-01"}, headers=auth)
        assert r.status_code == 201 and r.json()["birth_date"] == "2015-05-01"
        r = c.post("/api/v1/requests", json={"subject": "agent-1", "type": "access"}, headers=auth)
        assert r.status_code == 201 and r.json()["state"] == "unverified" and r.json()["due_date"]
        assert c.post("/api/v1/gate/check", json={"batch": batch * 11}, headers=auth).status_code == 422  # > 1,000
    # the stop wrote every buffered processing record: 2 + 50 single decisions for agent-1
    assert _records(db_url, "agent-1") == 52
    assert _records(db_url, "agent-2") == 50


def _gate(server: LiveServer, key: str, subject: str) -> bool:
    r = httpx.post(f"{server.url}/api/v1/gate/check", json={"subject": subject, **LOCATION}, headers=bearer(key), timeout=30)
    assert r.status_code == 200, r.text
    return bool(r.json()["allowed"])


@pytest.mark.postgres
def test_two_servers_on_one_postgresql_database_agree(tmp_path: Path, isolated_env: Path) -> None:
    with scratch_database("postgresql") as url:
        key = _seed(url)
        env = serve_env(YINSI_DATABASE_URL=url, YINSI_DATA_DIR=str(isolated_env), YINSI_GATE_STATE_TTL="1")
        servers = [LiveServer([], env, tmp_path, tmp_path / "logs") for _ in range(2)]
        try:
            one, two = (s.wait_ready() for s in servers)
            calls: dict[str, int] = {"agent-1": 0}

            def ask(server: LiveServer) -> bool:
                calls["agent-1"] += 1
                return _gate(server, key, "agent-1")

            assert ask(one) is False and ask(two) is False
            for body in ({"subject": "agent-1", "scope": "policy"}, {"subject": "agent-1", **SEPARATE}):
                assert httpx.post(f"{one.url}/api/v1/consents", json=body, headers=bearer(key)).status_code == 201
            assert httpx.post(f"{one.url}/api/v1/permissions", headers=bearer(key), json={
                "subject": "agent-1", "device": "phone-1", "permission": "location", "event": "granted"}).status_code == 201
            assert _eventually(lambda: ask(two)) and ask(one)  # recorded through one, allowed by both

            r = httpx.post(f"{one.url}/api/v1/consents", headers=bearer(key),
                           json={"subject": "agent-1", "scope": SEPARATE["scope"], "event": "withdrawn"})
            assert r.status_code == 201, r.text
            assert ask(one) is False  # at once where it was recorded
            assert _eventually(lambda: not ask(two))  # the other process sees it once its cached state expires
            assert [ask(s) for s in (one, two, one, two)] == [False] * 4
        finally:
            codes = [s.stop() for s in servers]
        # uvicorn shuts down gracefully on SIGTERM (the application's shutdown closes the services), then
        # exits by the same signal
        for server, code in zip(servers, codes, strict=True):
            assert code in (0, -15) and "Application shutdown complete" in server.stderr(), server.stderr()[-2000:]
        assert _records(url, "agent-1") == calls["agent-1"]  # a clean stop loses no processing record


def _eventually(check: Any, timeout: float = 60.0) -> bool:
    """Poll ``check`` until it holds (the state TTL is 1 s; the timeout only bounds a broken run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False
