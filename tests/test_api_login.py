"""Logging in over HTTP: session cookies are HttpOnly and SameSite=Lax, Secure over TLS (or when the settings
say the server sits behind TLS); logout ends the session; repeated failed staff log-ins from one address are
refused for a while (429) before any password is checked."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api_world import TENANT, World, build_world, person_login, saved_environ
from yinsi.api.app import create_app
from yinsi.api.throttle import MAX_FAILURES


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with saved_environ():
        yield build_world(tmp_path_factory.mktemp("login") / "demo")


def _cookie_header(response: object, name: str) -> str:
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    return next(h for h in headers if h.startswith(f"{name}="))


def test_person_session_cookie_flags_and_logout(world: World) -> None:
    with TestClient(create_app(world.settings)) as c:
        token = person_login(c, world, 1)
        me = c.get("/api/v1/me", headers={"Cookie": f"yinsi_session={token}"})
        assert me.status_code == 200
        r = c.post("/api/v1/auth/logout", headers={"Cookie": f"yinsi_session={token}"})
        assert r.status_code == 204
        cleared = _cookie_header(r, "yinsi_session")
        assert "Max-Age=0" in cleared or "expires=" in cleared.lower()
        assert c.get("/api/v1/me", headers={"Cookie": f"yinsi_session={token}"}).status_code == 401


@pytest.mark.parametrize(("agent", "base_url", "secure_setting", "secure"), [
    (2, "http://testserver", False, False), (3, "https://testserver", False, True), (4, "http://testserver", True, True)])
def test_cookie_is_httponly_lax_and_secure_over_tls(world: World, agent: int, base_url: str, secure_setting: bool,
                                                    secure: bool) -> None:
    settings = dataclasses.replace(world.settings, secure_cookies=secure_setting)
    with TestClient(create_app(settings), base_url=base_url) as c:
        phone = world.phones[agent]  # one agent each: codes to one contact are limited to one a minute
        r = c.post("/api/v1/auth/person/code", json={"tenant": TENANT, "contact": phone})
        assert r.status_code == 202
        import time

        from tests.api_world import sms_codes

        for _ in range(400):
            if sms_codes(world.sms_outbox, phone):
                break
            time.sleep(0.05)
        r = c.post("/api/v1/auth/person/verify", json={"tenant": TENANT, "challenge_id": r.json()["challenge_id"],
                                                         "code": sms_codes(world.sms_outbox, phone)[-1]})
        assert r.status_code == 200, r.text
        cookie = _cookie_header(r, "yinsi_session").lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and ("secure" in cookie) is secure


def test_failed_staff_logins_from_one_address_are_throttled(world: World) -> None:
    with TestClient(create_app(world.settings)) as c:
        wrong = {"tenant": TENANT, "staff_id": "nobody", "password": "not-the-password", "totp": "123456"}
        for _ in range(MAX_FAILURES):
            assert c.post("/api/v1/auth/staff/login", json=wrong).status_code == 401
        r = c.post("/api/v1/auth/staff/login", json=wrong)
        assert r.status_code == 429 and r.json()["code"] == "rate_limited" and int(r.headers["Retry-After"]) > 0
