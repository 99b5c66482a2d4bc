"""The rights queue on the jobs module: ``rights.queue`` enqueues ``rights.run`` for the requests
``yinsi request work`` takes (verified, not an unconfirmed cancellation), once per due time, and
``rights.run`` runs each to completion as ``system`` (on the demo app, SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests import test_rights_service as rights_tests
from tests.test_rights_service import TENANT, Env, _verified
from yinsi.domain.rights import RequestType, State
from yinsi.jobs import builtin
from yinsi.jobs.runner import Runner
from yinsi.jobs.store import JobStore
from yinsi.jobs.worker import run_until_idle
from yinsi.rights.run import runnable

pytestmark = [pytest.mark.usefixtures("isolated_env"), pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]

env = rights_tests.env


@pytest.fixture
def service_hook(env: Env) -> Iterator[None]:
    builtin.RIGHTS_SERVICE = lambda url: env.service()
    try:
        yield
    finally:
        builtin.RIGHTS_SERVICE = None


def test_the_rights_queue_runs_as_jobs(env: Env, service_hook: None) -> None:
    e = env
    with e.service() as svc:
        ready = _verified(svc, str(e.agent), RequestType.ACCESS)
        unverified = svc.submit(TENANT, str(e.other), RequestType.ACCESS)
        cancel = _verified(svc, str(e.other), RequestType.CANCEL_ACCOUNT)  # not confirmed by the person
        assert runnable(svc, TENANT) == [ready]
    store = JobStore(svc.sessions)
    due = {"due": "2026-12-04T03:05:00+08:00"}
    queue_id, _ = store.enqueue("rights.queue", due, key="periodic:rights.queue:t:03:05", tenant=TENANT)
    outcomes = run_until_idle(Runner(store, e.url, lease=timedelta(minutes=1)))
    assert [(o.name, o.state) for o in outcomes] == [("rights.queue", "done"), ("rights.run", "done")]
    queued = store.get(queue_id, tenant=TENANT)
    assert queued is not None and queued.result == {"queued": 1}
    run = store.by_key(f"rights.run:{ready}:2026-12-04T03:05")
    assert run is not None and run.state == "done" and run.result == {"state": "waiting_manual"}  # manual steps wait
    assert run.payload == {"request": ready}  # ids only
    with e.service() as svc:
        assert svc.show(TENANT, ready).state is State.WAITING_MANUAL
        assert svc.show(TENANT, unverified).state is State.UNVERIFIED
        assert svc.show(TENANT, cancel).state is State.VERIFIED
        assert runnable(svc, TENANT) == []
    # the same due time again (a second scheduler, a repeated tick): nothing runs twice
    again, created = store.enqueue("rights.queue", due, key="periodic:rights.queue:t:03:05", tenant=TENANT)
    assert (again, created) == (queue_id, False)
    assert run_until_idle(Runner(store, e.url)) == []
