"""The dead-letter list for staff: the console page /console/jobs and the API /api/v1/staff/jobs show the
tenant's dead jobs to its administrator only (others are refused), never another tenant's or the system's,
and put one back in the queue."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests import jobs_tasks  # noqa: F401  (registers the test tasks)
from tests import test_api_e2e as e2e
from tests import test_rights_service as rights_tests
from tests.test_api_e2e import ADMIN, CS, Server, bearer
from tests.test_web_console_http import console_login, csrf
from yinsi.jobs.runner import Runner
from yinsi.jobs.store import JobStore
from yinsi.jobs.worker import run_until_idle
from yinsi.storage.tables import Tenant

pytestmark = pytest.mark.usefixtures("isolated_env")

env = rights_tests.env
server = e2e.server


def test_the_dead_letter_list_in_the_console_and_the_api(server: Server) -> None:
    s = server
    rights = s.services.rights
    store = JobStore(rights.sessions, rights.clock)
    with rights.sessions() as session, session.begin():
        if session.get(Tenant, "other") is None:
            session.add(Tenant(id="other", name="other", created_at=rights.clock()))
    mine, _ = store.enqueue("test.failing", key="staff:mine", tenant=rights_tests.TENANT, max_attempts=1)
    theirs, _ = store.enqueue("test.failing", key="staff:theirs", tenant="other", max_attempts=1)
    system, _ = store.enqueue("test.failing", key="staff:system", max_attempts=1)
    run_until_idle(Runner(store, rights.url))
    assert {store.get(j, any_tenant=True).state for j in (mine, theirs, system)} == {"dead"}  # type: ignore[union-attr]

    token = s.staff_token(ADMIN)  # the fixture's log-in (a TOTP code counts once), in the API and the console
    admin = bearer(token)
    web = TestClient(s.client.app)
    web.get("/console/login")
    web.cookies.set("yinsi_staff", token, domain=next(c.domain for c in web.cookies.jar if c.name == "yinsi_pre"))
    listed = s.client.get("/api/v1/staff/jobs/dead", headers=admin)
    assert listed.status_code == 200, listed.text
    assert [(j["id"], j["name"], j["last_error"]) for j in listed.json()["jobs"]] == [
        (mine, "test.failing", "RuntimeError: always fails")]
    customer_service = console_login(s, CS)
    assert customer_service.get("/console/jobs").status_code == 403
    refused = s.client.get("/api/v1/staff/jobs/dead", headers=bearer(customer_service.cookies.get("yinsi_staff") or ""))
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/problem+json")
    assert s.client.post(f"/api/v1/staff/jobs/{theirs}/retry", headers=admin).status_code == 404
    assert s.client.post(f"/api/v1/staff/jobs/{system}/retry", headers=admin).status_code == 404

    page = web.get("/console/jobs")
    assert page.status_code == 200 and "死信作业" in page.text and "always fails" in page.text
    assert f"/console/jobs/{mine}/retry" in page.text and f"/console/jobs/{theirs}/retry" not in page.text
    r = web.post(f"/console/jobs/{mine}/retry", data={"csrf": csrf(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/jobs")
    job = store.get(mine, tenant=rights_tests.TENANT)
    assert job is not None and job.state == "queued" and job.attempts == 0
    again = web.get(r.headers["location"])
    assert "作业已重新入队" in again.text and "死信列表为空" in again.text
