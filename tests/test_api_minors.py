"""Minors and transfers abroad over HTTP (SQLite): an app records a guardian's consent and objection, sees the
account suspended and the gate refuse citing the rule; a transfer abroad to an undeclared recipient is
refused as problem-free JSON with rule ids."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api_world import ROOT, bearer
from yinsi.api.app import create_app
from yinsi.api.settings import ApiSettings
from yinsi.auth.apikeys import ApiKeyService
from yinsi.auth.principals import ALL_APP_SCOPES
from yinsi.services.publishing import publish
from yinsi.storage import upgrade

pytestmark = pytest.mark.usefixtures("isolated_env")

TENANT = "weiliaoke"
GUARDIAN = "13912345678"


def test_guardian_objection_suspends_the_account_over_http(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'yinsi.db').as_posix()}"
    upgrade(url)
    publish(ROOT / "policies" / "weiliaoke-2022.yaml", url)
    with ApiKeyService(url) as keys:
        auth = bearer(keys.create_unchecked(TENANT, "测试", sorted(ALL_APP_SCOPES))[1])
    post = {"subject": "kid", "action": "collect", "feature": "publish_content", "items": ["basic.name"]}
    birth = date.today() - timedelta(days=15 * 365 + 100)  # 15 years old (the server runs on the real clock)
    with TestClient(create_app(ApiSettings(database_url=url, data_dir=tmp_path, channels={}))) as c:
        assert c.post("/api/v1/subjects", json={"subject": "kid", "birth_date": birth.isoformat()},
                      headers=auth).status_code == 201
        assert c.post("/api/v1/consents", json={"subject": "kid", "scope": "policy"}, headers=auth).status_code == 201
        refused = c.post("/api/v1/gate/check", json=post, headers=auth).json()
        assert refused["allowed"] is False and refused["missing"][0]["rule"] == "M2"

        r = c.post("/api/v1/minors/kid/guardian", json={"guardian": GUARDIAN, "relation": "mother",
                                                        "verification": "face"}, headers=auth)
        assert r.status_code == 201, r.text
        assert c.post("/api/v1/gate/check", json=post, headers=auth).json()["allowed"] is True
        status = c.get("/api/v1/minors/kid", headers=auth).json()
        assert status["guardian_consent"] is True and status["suspended"] is False
        assert GUARDIAN not in str(status)

        r = c.post("/api/v1/minors/kid/objection", json={"guardian": GUARDIAN}, headers=auth)
        assert r.status_code == 200 and r.json() == {"suspended": True, "rule": "M2"}, r.text
        status = c.get("/api/v1/minors/kid", headers=auth).json()
        assert status["suspended"] is True and status["suspension_rule"] == "M2"
        d = c.post("/api/v1/gate/check", json=post, headers=auth).json()
        assert d["allowed"] is False and d["reasons"][0]["rule"] == "M2"

        r = c.post("/api/v1/minors/kid/objection", json={"guardian": "13900000000"}, headers=auth)
        assert r.status_code in (400, 409, 422) and r.headers["content-type"].startswith("application/problem+json")
        assert "13900000000" not in r.text

        r = c.post("/api/v1/abroad/transfers", json={"subject": "kid", "recipient": "nowhere",
                                                     "items": ["basic.name"]}, headers=auth)
        assert r.status_code == 200 and r.json()["allowed"] is False and r.json()["reasons"][0]["rule"] == "V1"
