"""A completed account cancellation ends the person's sessions: the token they used to confirm it is refused
afterwards, on every database; another person's session is untouched."""

from __future__ import annotations

import pytest

from tests import test_api_e2e as e2e
from tests import test_rights_service as rights_tests
from tests.test_api_e2e import PO, Server, bearer

pytestmark = pytest.mark.usefixtures("isolated_env")

env = rights_tests.env  # the demo app with the 2022 policy published, on each database
server = e2e.server  # the API on it


def test_a_completed_cancellation_ends_the_persons_sessions(server: Server) -> None:
    s, e = server, server.env
    token, other = s.person_token(e.agent), s.person_token(e.other)
    me = bearer(token)
    rid = s.client.post("/api/v1/me/requests", json={"type": "cancel_account"}, headers=me).json()["id"]
    r = s.client.post(f"/api/v1/me/requests/{rid}/confirm", headers=me)
    assert r.status_code == 200 and r.json()["state"] == "confirmed", r.text
    assert s.client.get("/api/v1/me", headers=me).status_code == 200  # confirmed, not yet cancelled

    po = bearer(s.staff_token(PO))
    r = s.client.post(f"/api/v1/staff/requests/{rid}/run", headers=po)
    assert r.status_code == 200, r.text
    if r.json()["state"] == "waiting_manual":
        assert s.client.get("/api/v1/me", headers=me).status_code == 200  # not completed yet
        r = s.client.post(f"/api/v1/staff/requests/{rid}/complete", json={"note": "外部系统已注销，工单 WB-9"},
                          headers=po)
        assert r.status_code == 200, r.text
    assert r.json()["state"] == "completed", r.json()

    r = s.client.get("/api/v1/me", headers=me)
    assert r.status_code == 401 and token not in r.text
    assert s.client.get(f"/api/v1/me/requests/{rid}", headers=me).status_code == 401
    assert s.client.get("/api/v1/me", headers=bearer(other)).status_code == 200
