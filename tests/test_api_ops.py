"""Operations: /healthz and /readyz, the request id, the 500 problem for an unexpected failure (whose message,
which may quote PI, reaches neither the caller nor the log), oversized bodies, and the access log naming route
templates, never paths with their values."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api_world import ROOT
from yinsi.api.app import create_app
from yinsi.api.settings import ApiSettings
from yinsi.services.publishing import publish
from yinsi.storage import upgrade
from yinsi.storage.migrate import downgrade

pytestmark = pytest.mark.usefixtures("isolated_env")

PHONE = "13812345678"


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{(tmp_path / 'ops.db').as_posix()}"
    upgrade(url)
    publish(ROOT / "policies" / "weiliaoke-2022.yaml", url)
    return url


def test_health_readiness_and_request_ids(url: str, tmp_path: Path) -> None:
    with TestClient(create_app(ApiSettings(database_url=url, data_dir=tmp_path, channels={}))) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "ready"
        assert len(r.headers["x-request-id"]) == 32
        assert c.get("/healthz", headers={"X-Request-ID": "lb-0123456789"}).headers["x-request-id"] == "lb-0123456789"
        downgrade(url, "0008")  # the schema falls behind what this server needs
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["code"] == "schema_not_current"
        assert r.headers["content-type"].startswith("application/problem+json")


def test_an_unexpected_failure_is_a_500_without_its_message(url: str, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(ApiSettings(database_url=url, data_dir=tmp_path, channels={}))

    @app.get("/boom/{subject}")
    def boom(subject: str) -> None:
        raise RuntimeError(f"cannot handle {subject}")

    caplog.set_level(logging.INFO)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get(f"/boom/{PHONE}", params={"q": PHONE})
        assert r.status_code == 500
        body = r.json()
        assert body["code"] == "internal_error" and body["request_id"] in body["detail"]
        assert PHONE not in r.text
    server_log = "\n".join(rec.getMessage() for rec in caplog.records if rec.name.startswith("yinsi"))
    assert "RuntimeError" in server_log and body["request_id"] in server_log
    assert PHONE not in server_log and "/boom/{subject}" in server_log


def test_oversized_and_non_json_bodies(url: str, tmp_path: Path) -> None:
    with TestClient(create_app(ApiSettings(database_url=url, data_dir=tmp_path, channels={}))) as c:
        r = c.post("/api/v1/auth/person/code", content=b"x" * (5 * 1024 * 1024), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["code"] == "too_large"
        r = c.post("/api/v1/auth/staff/login", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["code"] == "invalid_request"
        assert c.get("/api/v1/nowhere").json()["code"] == "not_found"
        assert c.delete("/healthz").json()["code"] == "method_not_allowed"
