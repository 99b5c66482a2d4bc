"""Schemathesis against a running ``yinsi serve --demo``: for every operation of ``/openapi.json``, generated
input (valid and invalid, with the credentials the operation needs so that it gets past authentication)
never causes a 5xx, every error is problem+json, and no value the caller sent that is not a plain identifier
comes back in an error. Bounded: a few examples per operation (a few hundred calls in all)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.api_world import ROOT, LiveServer, serve_env, sms_codes
from tests.test_api_matrix import OPERATIONS

EXAMPLES = 5
#: Staff actions the administrator does (the privacy officer does the others).
ADMIN_ACTIONS = ("staff:configure", "staff:manage_staff")
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]*$")


@dataclass
class Demo:
    server: LiveServer
    key: str
    person: str
    staff: str
    admin: str
    doc: dict[str, Any]


def _login_person(url: str, info: str, outbox: Any) -> str:
    phone = re.search(r"演示手机号 (\d+)", info).group(1)  # type: ignore[union-attr]
    r = httpx.post(f"{url}/api/v1/auth/person/code", json={"tenant": "weiliaoke", "contact": phone})
    assert r.status_code == 202, r.text
    for _ in range(400):
        codes = sms_codes(outbox, phone)
        if codes:
            break
        import time

        time.sleep(0.05)
    r = httpx.post(f"{url}/api/v1/auth/person/verify",
                   json={"tenant": "weiliaoke", "challenge_id": r.json()["challenge_id"], "code": codes[-1]})
    assert r.status_code == 200, r.text
    return str(r.cookies["yinsi_session"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    base = tmp_path_factory.mktemp("schemathesis")
    data = base / "demo"
    server = LiveServer(["--demo", "--data-dir", str(data), "--policies", str(ROOT / "policies")], serve_env(), base,
                        base / "logs")
    try:
        server.wait_ready()
        info = (data / "demo-login.txt").read_text(encoding="utf-8")
        key = re.search(r"yk_\S+", info).group(0)  # type: ignore[union-attr]
        sessions = {}
        for staff_id in ("dpo", "admin"):
            account = re.search(rf"账号 {staff_id}，口令 (\S+)，TOTP 密钥 (\w+)", info)
            assert account is not None
            r = httpx.post(f"{server.url}/api/v1/auth/staff/login", json={
                "tenant": "weiliaoke", "staff_id": staff_id, "password": account.group(1),
                "totp": pyotp.TOTP(account.group(2)).now()})
            assert r.status_code == 200, r.text
            sessions[staff_id] = str(r.cookies["yinsi_staff"])
        person = _login_person(server.url, info, data / "sms-outbox" / "sms-outbox.jsonl")
        doc = httpx.get(f"{server.url}/openapi.json").json()
        yield Demo(server, key, person, sessions["dpo"], sessions["admin"], doc)
    finally:
        server.stop()
    assert "Traceback" not in server.stderr(), server.stderr()[-3000:]


@pytest.fixture(scope="module")
def api_schema(demo: Demo) -> Any:
    return schemathesis.openapi.from_url(f"{demo.server.url}/openapi.json")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in OPERATIONS], ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_generated_input_never_breaks_the_server(method: str, path: str, demo: Demo, api_schema: Any) -> None:
    if path == "/api/v1/auth/logout":
        pytest.skip("it would end the sessions the other cases use")
    auth = str(demo.doc["paths"][path][method.lower()].get("x-yinsi-auth"))
    headers = {"Authorization": f"Bearer {demo.key}"} if auth.startswith("app:") else \
        {"Cookie": f"yinsi_session={demo.person}"} if auth == "person" else \
        {"Cookie": f"yinsi_staff={demo.admin if auth in ADMIN_ACTIONS else demo.staff}"} if auth.startswith("staff:") \
        else {}
    operation = api_schema[path][method]

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              phases=[Phase.explicit, Phase.generate])
    @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                          operation.as_strategy(GenerationMode.NEGATIVE)))
    def check(case: Any) -> None:
        case.cookies = {}  # the credentials are ours, not generated from the security schemes
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        response = case.call(base_url=demo.server.url, headers=headers, timeout=60)
        assert response.status_code < 500, f"{method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
        if response.status_code >= 400:
            assert "application/problem+json" in str(response.headers), response.headers
            sent = [*_strings(case.body), *_strings(case.path_parameters or {}), *_strings(case.query or {})]
            echoed = [s for s in sent if len(s.strip()) >= 6 and not _IDENTIFIER.match(s) and s in response.text]
            assert not echoed, f"{method} {case.formatted_path} echoed {echoed!r}: {response.text[:300]}"

    check()
