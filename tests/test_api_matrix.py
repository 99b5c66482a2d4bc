"""The authorisation matrix, generated from ``/openapi.json``: every operation × every kind of caller.

Each operation declares its audience as ``x-yinsi-auth`` (``public``, ``app:<scope>``, ``person``,
``staff:<action>``); the expected status for each caller follows from it (:func:`expectation`). A new route
is covered as soon as it exists; a route without ``x-yinsi-auth`` fails :func:`test_every_operation_declares_its_audience`.
Adding a caller or a route's sample input is adding data (:data:`CALLERS`, :data:`PATH_VALUES`,
:data:`APP_BODIES`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from tests.api_world import ROLE_OF, TENANT, World, bearer, build_world, person_login, saved_environ, staff_login
from yinsi.api.app import create_app, mark_auth
from yinsi.api.deps import AUTH_EXTENSION
from yinsi.api.settings import ApiSettings
from yinsi.auth.principals import ALL_APP_SCOPES
from yinsi.staff.roles import RIGHTS, Role, StaffAction

try:  # which actions need a second factor (the staff rules' own definition)
    from yinsi.staff.roles import SECOND_FACTOR_ACTIONS as _SECOND
except ImportError:  # pragma: no cover
    from yinsi.staff.roles import PI_ACTIONS as _SECOND

AUTH_VALUE = re.compile(r"^(public|person|app:(" + "|".join(sorted(ALL_APP_SCOPES)) + r")|staff:("
                        + "|".join(a.value for a in StaffAction) + r"))$")


def _document() -> dict[str, Any]:
    return create_app(ApiSettings(database_url="sqlite://", data_dir=Path("."))).openapi()


DOC = _document()
OPERATIONS = [(method.upper(), path, op) for path, ops in DOC["paths"].items() for method, op in ops.items()]

#: A value for each path parameter ("request_id" is filled with person B's request).
PATH_VALUES: dict[str, str] = {
    "tenant": TENANT, "label": "2022-08-04", "rule_id": "C4", "subject": "1",
    "approval_id": "00000000-0000-4000-8000-000000000000", "alert_id": "1", "key_id": "0123456789abcdef",
    "job_id": "1", "incident_id": "INC-20260101-000000",
}
#: Valid bodies of the app routes (the tenant check runs after the body is parsed).
APP_BODIES: dict[str, Any] = {
    "/api/v1/gate/check": {"subject": "1", "action": "collect", "feature": "customer_chat", "items": ["location.precise"]},
    "/api/v1/consents": {"subject": "1", "scope": "policy"},
    "/api/v1/permissions": {"subject": "1", "device": "d1", "permission": "location", "event": "granted"},
    "/api/v1/subjects": {"subject": "1", "birth_date": "1990-01-01"},
    "/api/v1/requests": {"subject": "1", "type": "access"},
    "/api/v1/minors/{subject}/guardian": {"guardian": "13800000000", "relation": "mother", "verification": "face"},
    "/api/v1/minors/{subject}/objection": {"guardian": "13800000000"},
    "/api/v1/minors/{subject}/self-supporting": {"evidence": "income_proof"},
    "/api/v1/abroad/transfers": {"subject": "1", "recipient": "hk_support", "items": ["contact.mobile"]},
}

#: Callers: how each presents itself. Staff callers are ``staff:<account>``; "staff-no-mfa" is the auditor
#: logged in with the password only (the one role that may: it never sees PI).
STAFF_ACCOUNTS = tuple(ROLE_OF)
CALLERS = ("none", "app", "app-other-tenant", "app-missing-scope", "person", *(f"staff:{s}" for s in STAFF_ACCOUNTS),
           "staff-no-mfa")


@dataclass
class Matrix:
    world: World
    client: TestClient
    person_a: str
    request_of_b: str
    staff: dict[str, str]
    staff_no_mfa: str


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    with saved_environ():
        world = build_world(tmp_path_factory.mktemp("matrix") / "demo")
        with TestClient(create_app(world.settings)) as client:
            person_a = person_login(client, world, 1)
            r = client.post("/api/v1/requests", json={"subject": "2", "type": "copy"}, headers=bearer(world.app_key))
            assert r.status_code == 201, r.text
            staff = {s: staff_login(client, world, s) for s in STAFF_ACCOUNTS}
            no_mfa = staff_login(client, world, "aud", totp=False)
            yield Matrix(world, client, person_a, r.json()["id"], staff, no_mfa)


def test_every_operation_declares_its_audience() -> None:
    missing = [f"{m} {p}" for m, p, op in OPERATIONS if not AUTH_VALUE.match(str(op.get(AUTH_EXTENSION, "")))]
    assert not missing, f"operations without a valid {AUTH_EXTENSION} (depend on one of yinsi.api.deps): {missing}"
    for method, path, op in OPERATIONS:  # and the ones needing a credential say which in the security schemes
        if op[AUTH_EXTENSION] != "public":
            assert op.get("security"), f"{method} {path} names no security scheme"


def test_a_route_without_an_authentication_dependency_gets_no_audience() -> None:
    router = APIRouter()

    @router.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    mark_auth(router)
    assert AUTH_EXTENSION not in (router.routes[0].openapi_extra or {})  # type: ignore[attr-defined]


def _path(path: str, m: Matrix) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "request_id":
            return m.request_of_b
        assert name in PATH_VALUES, f"add a sample value for the path parameter {name!r} to PATH_VALUES"
        return PATH_VALUES[name]

    return re.sub(r"\{([^}]+)\}", fill, path)


def _credentials(caller: str, auth: str, m: Matrix) -> dict[str, str]:
    w = m.world
    if caller == "app":
        return bearer(w.app_key)
    if caller == "app-other-tenant":
        return bearer(w.other_tenant_key)
    if caller == "app-missing-scope":
        scope = auth.split(":", 1)[1] if auth.startswith("app:") else "gate"
        return bearer(w.keys_without[scope])
    if caller == "person":
        return {"Cookie": f"yinsi_session={m.person_a}"}
    if caller == "staff-no-mfa":
        return {"Cookie": f"yinsi_staff={m.staff_no_mfa}"}
    if caller.startswith("staff:"):
        return {"Cookie": f"yinsi_staff={m.staff[caller.split(':', 1)[1]]}"}
    return {}


def expectation(auth: str, caller: str, path: str) -> str:
    """What the caller must get: ``"401"``, ``"403"``, ``"404"``, or ``"through"`` (authentication and
    authorisation passed: the route answered something else, below 500)."""
    kind, _, what = auth.partition(":")
    if kind == "public":
        return "through"
    if caller == "none":
        return "401"
    if kind == "app":
        if caller == "app":
            return "through"
        if caller == "app-missing-scope":
            return "403"
        if caller == "app-other-tenant":
            return "403" if path in APP_BODIES else "through"  # it names 微聊客 in the body; GETs act on its own
        return "401"
    if kind == "person":
        if caller == "person":
            return "404" if "{request_id}" in path else "through"  # person A on person B's request
        return "401"
    if kind == "staff":
        action = StaffAction(what)
        if caller == "staff-no-mfa":
            if action not in RIGHTS[Role.AUDITOR] or action in _SECOND:
                return "403"
            return "through"
        if caller.startswith("staff:"):
            role = Role(ROLE_OF[caller.split(":", 1)[1]])
            return "through" if action in RIGHTS[role] else "403"
        return "401"
    raise AssertionError(f"unknown audience {auth!r}")


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_authorisation_matrix(matrix: Matrix, method: str, path: str, op: dict[str, Any]) -> None:
    auth = str(op.get(AUTH_EXTENSION))
    if path == "/api/v1/auth/logout":
        pytest.skip("logging out ends the sessions the matrix uses; covered by the end-to-end tests")
    callers = ("none",) if auth == "public" else CALLERS
    failures = []
    for caller in callers:
        body = APP_BODIES.get(path, {}) if method in ("POST", "PUT", "PATCH") else None
        if caller == "app-other-tenant" and body is not None and path in APP_BODIES:
            body = {**body, "tenant": TENANT}
        r = matrix.client.request(method, _path(path, matrix), json=body, headers=_credentials(caller, auth, matrix))
        matrix.client.cookies.clear()
        want = expectation(auth, caller, path)
        got = r.status_code
        ok = (got < 500 and got not in (401, 403)) if want == "through" else str(got) == want
        if ok and got >= 400:
            ok = r.headers.get("content-type", "").startswith("application/problem+json")
        if not ok:
            failures.append(f"{caller}: expected {want}, got {got} {r.text[:200]}")
    assert not failures, f"{method} {path} ({auth}):\n" + "\n".join(failures)


def test_a_key_of_another_tenant_never_reads_this_tenants_state(matrix: Matrix) -> None:
    c, w = matrix.client, matrix.world
    assert c.post("/api/v1/consents", json={"subject": "7", "scope": "policy"}, headers=bearer(w.app_key)).status_code == 201
    mine = c.get("/api/v1/subjects/7/state", headers=bearer(w.app_key)).json()
    assert [x["scope"] for x in mine["consents"]] == ["policy"]
    theirs = c.get("/api/v1/subjects/7/state", headers=bearer(w.other_tenant_key))
    assert theirs.status_code == 200 and theirs.json()["consents"] == []  # 客户通's own subject 7: nothing of 微聊客
    r = c.post("/api/v1/gate/check", headers=bearer(w.other_tenant_key),
               json={"batch": [{"subject": "7", "action": "use", "feature": "register_login", "tenant": TENANT}]})
    assert r.status_code == 403 and r.json()["code"] == "tenant_forbidden"
