"""An app's request intake (``POST /api/v1/requests``) types its details by field: malformed details are a
422 problem naming no value, never a server error; well-formed details reach the request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api_world import ROOT, bearer
from yinsi.api.app import create_app
from yinsi.api.settings import ApiSettings
from yinsi.auth.apikeys import ApiKeyService
from yinsi.auth.principals import ALL_APP_SCOPES
from yinsi.rights.service import RightsService
from yinsi.services.publishing import publish
from yinsi.storage import upgrade

pytestmark = pytest.mark.usefixtures("isolated_env")

TENANT = "weiliaoke"
MALFORMED = [
    {"type": "deletion", "details": {"items": 5}},
    {"type": "deletion", "details": {"ground": {"why": "x"}}},
    {"type": "deletion", "details": {"ground": "because"}},
    {"type": "correction", "details": {"changes": ["phone"]}},
    {"type": "correction", "details": {"changes": {"phone": {"nested": 1}}}},
    {"type": "explanation", "details": {"about": "everything"}},
    {"type": "complaint", "details": {"text": "bad\x00byte"}},
    {"type": "access", "details": {"unknown_field": "x"}},
    {"type": "access", "details": "not an object"},
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    url = f"sqlite:///{tmp_path / 'yinsi.db'}"
    upgrade(url)
    publish(ROOT / "policies" / "weiliaoke-2022.yaml", url)
    with ApiKeyService(url) as keys:
        key = keys.create_unchecked(TENANT, "受理测试", sorted(ALL_APP_SCOPES))[1]
    settings = ApiSettings(database_url=url, data_dir=tmp_path, channels={})
    with TestClient(create_app(settings)) as c:
        yield c, bearer(key), url


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_details_are_a_422_problem(client: tuple[TestClient, dict[str, str], str], body: dict[str, Any]) -> None:
    c, auth, _ = client
    r = c.post("/api/v1/requests", json={"subject": "agent-1", **body}, headers=auth)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "agent-1" not in r.text


def test_well_formed_details_reach_the_request(client: tuple[TestClient, dict[str, str], str]) -> None:
    c, auth, url = client
    r = c.post("/api/v1/requests", headers=auth, json={
        "subject": "agent-1", "type": "deletion", "details": {"ground": "consent_withdrawn"}})
    assert r.status_code == 201, r.text
    r = c.post("/api/v1/requests", headers=auth, json={
        "subject": "agent-1", "type": "complaint", "details": {"text": "客服未按时答复"}})
    assert r.status_code == 201, r.text
    with RightsService(url) as rights:
        assert rights.show(TENANT, r.json()["id"]).type.value == "complaint"
