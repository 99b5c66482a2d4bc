"""No personal information in any answer to bad input, nor in the logs: PI-looking garbage (phone numbers, ID
numbers, e-mail addresses, names, addresses) is sent to every operation of ``/openapi.json`` in every field,
path parameter and query parameter, with a valid credential so that it reaches validation and the services,
and must never come back (nor be logged)."""

from __future__ import annotations

import itertools
import logging
import re
from typing import Any

import pytest

from tests.api_world import ROLE_OF
from tests.test_api_matrix import DOC, OPERATIONS, Matrix, matrix  # noqa: F401  (the module-scoped world)
from yinsi.api.deps import AUTH_EXTENSION
from yinsi.staff.roles import RIGHTS, Role, StaffAction

PHONE, ID_NUMBER, EMAIL, NAME, ADDRESS = "13912345678", "11010519491231002X", "zhang.wei@example.com", "张伟明", \
    "北京市朝阳区建国路88号"
GARBAGE = (PHONE, ID_NUMBER, EMAIL, NAME, ADDRESS)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = DOC["components"]["schemas"][name]
    for key in ("oneOf", "anyOf", "allOf"):
        if key in schema:
            variants = [_resolve(v) for v in schema[key] if v.get("type") != "null"]
            return variants[0] if variants else {"type": "string"}
    return schema


def _garbage(schema: dict[str, Any], values: itertools.cycle[str], depth: int = 0) -> Any:
    s = _resolve(schema)
    kind = s.get("type")
    if kind == "object" or "properties" in s:
        props = s.get("properties") or {}
        if not props or depth > 3:
            return {next(values): next(values)}
        return {k: _garbage(v, values, depth + 1) for k, v in props.items()}
    if kind == "array":
        return [_garbage(s.get("items") or {}, values, depth + 1)]
    if kind in ("integer", "number"):
        return int(PHONE)
    if kind == "boolean":
        return next(values)
    return next(values)


def _account_for(auth: str) -> str:
    action = StaffAction(auth.split(":", 1)[1])
    return next(s for s, role in ROLE_OF.items() if action in RIGHTS[Role(role)])


def _credentials(auth: str, m: Matrix) -> dict[str, str]:
    if auth.startswith("app:"):
        return {"Authorization": f"Bearer {m.world.app_key}"}
    if auth == "person":
        return {"Cookie": f"yinsi_session={m.person_a}"}
    if auth.startswith("staff:"):
        return {"Cookie": f"yinsi_staff={m.staff[_account_for(auth)]}"}
    return {}


def _leaks(text: str) -> list[str]:
    digits = re.sub(r"\D", "", text)
    found = [g for g in GARBAGE if g in text]
    found += [g for g in (PHONE, ID_NUMBER[:-1]) if g in digits and g not in found]
    return found


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_no_pi_in_answers_or_logs(matrix: Matrix, method: str, path: str, op: dict[str, Any],  # noqa: F811
                                  caplog: pytest.LogCaptureFixture) -> None:
    auth = str(op.get(AUTH_EXTENSION))
    if path == "/api/v1/auth/logout":
        pytest.skip("ends the sessions the other cases use; it takes no input")
    headers = _credentials(auth, matrix)
    params = [p for p in op.get("parameters", []) if p.get("in") in ("path", "query")]
    body_schema = (((op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}).get("schema")
    attempts: list[tuple[dict[str, str], dict[str, str], Any, str | None]] = []
    for start in range(len(GARBAGE)):  # each field gets each kind of garbage once
        values = itertools.cycle(GARBAGE[start:] + GARBAGE[:start])
        path_values = {p["name"]: next(values) for p in params if p["in"] == "path"}
        query = {p["name"]: next(values) for p in params if p["in"] == "query"}
        body = _garbage(body_schema, values) if body_schema else None
        attempts.append((path_values, query, body, None))
    if body_schema:  # and bodies that are not what the route expects at all
        attempts.append(({}, {}, list(GARBAGE), None))
        attempts.append(({}, {}, None, f"{PHONE} {NAME} {EMAIL}"))
    caplog.set_level(logging.DEBUG)
    for path_values, query, body, raw in attempts:
        url = re.sub(r"\{([^}]+)\}", lambda m, pv=path_values: pv.get(m.group(1), PHONE), path)  # type: ignore[misc]
        if raw is not None:
            r = matrix.client.request(method, url, content=raw.encode(), headers={**headers, "Content-Type": "application/json"})
        else:
            r = matrix.client.request(method, url, params=query, json=body, headers=headers)
        matrix.client.cookies.clear()
        assert r.status_code < 500, f"{method} {url}: {r.status_code} {r.text[:300]}"
        leaked = _leaks(r.text) + _leaks(str(dict(r.headers)))
        assert not leaked, f"{method} {path} answered {r.status_code} with {leaked}: {r.text[:300]}"
    server_lines = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records
                             if r.name.startswith(("yinsi", "uvicorn", "fastapi", "starlette", "sqlalchemy")))
    logged = _leaks(server_lines)
    assert not logged, f"{method} {path}: the log has {logged}"
