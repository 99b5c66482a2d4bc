"""A seeded world for the API tests: the ``yinsi serve --demo`` data directory (five seeds published, the
微聊客 demo app with 20 agents, an administrator and a privacy officer, an app key), plus one account of
every other staff role, keys that lack one scope each, a key of another tenant, and helpers to log people
and staff in through the API itself. Also :class:`LiveServer`: ``yinsi serve`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyotp

from yinsi.api import demo
from yinsi.api.settings import ApiSettings
from yinsi.auth.principals import ALL_APP_SCOPES

ROOT = Path(__file__).resolve().parents[1]
TENANT = demo.TENANT
OTHER_TENANT = "kehutong"
PASSWORD = "matrix-test-password-42"
#: Staff accounts beyond the demo's administrator ("admin") and privacy officer ("dpo").
EXTRA_STAFF = {"cs": "customer_service", "sec": "security_officer", "aud": "auditor"}
ROLE_OF = {"admin": "administrator", "dpo": "privacy_officer", **EXTRA_STAFF}


@dataclass
class World:
    setup: demo.DemoSetup
    settings: ApiSettings
    app_key: str  # 微聊客, every scope
    other_tenant_key: str  # 客户通, every scope
    keys_without: dict[str, str]  # scope → a 微聊客 key holding every scope but that one
    totp: dict[str, str]  # staff id → TOTP secret
    passwords: dict[str, str]
    phones: dict[int, str] = field(default_factory=dict)  # agent id → phone on record
    #: staff sessions with a second factor already open (a TOTP code is accepted once: reuse them)
    sessions: dict[str, str] = field(default_factory=dict)

    @property
    def sms_outbox(self) -> Path:
        return self.setup.sms_outbox


@contextmanager
def saved_environ() -> Iterator[None]:
    """``demo.prepare`` points ``YINSI_DATA_DIR`` at its directory: give the process its environment back."""
    before = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


def build_world(directory: Path) -> World:
    """Seed ``directory`` (call inside :func:`saved_environ`)."""
    from sqlalchemy import text

    from yinsi.auth.apikeys import ApiKeyService
    from yinsi.auth.staff import StaffAuthService
    from yinsi.notify.channels import FileSmsChannel
    from yinsi.storage.engine import make_engine

    setup = demo.prepare(directory, policies=ROOT / "policies", keep_admin_session=True)
    assert setup.admin_session is not None
    url = setup.database_url
    totp = {st.staff_id: st.totp_secret for st in setup.staff}
    passwords = {st.staff_id: st.password for st in setup.staff}
    admin_token, admin = setup.admin_session
    staff = StaffAuthService(url)
    try:
        for staff_id, role in EXTRA_STAFF.items():
            totp[staff_id] = staff.create_account(admin, staff_id, f"测试{role}", [role], PASSWORD)
            passwords[staff_id] = PASSWORD
    finally:
        staff.close()
    keys = ApiKeyService(url)
    try:
        _, other = keys.create_unchecked(OTHER_TENANT, "另一租户", sorted(ALL_APP_SCOPES))
        without = {scope: keys.create_unchecked(TENANT, f"缺少{scope}", sorted(ALL_APP_SCOPES - {scope}))[1]
                   for scope in sorted(ALL_APP_SCOPES)}
    finally:
        keys.close()
    engine = make_engine(setup.store_urls["app_db"])
    try:
        with engine.connect() as conn:
            phones = {int(a): str(p) for a, p in conn.execute(text("SELECT id, phone FROM agents ORDER BY id LIMIT 8"))}
    finally:
        engine.dispose()
    settings = ApiSettings(database_url=url, data_dir=setup.data_dir, datamaps={TENANT: setup.datamap},
                           store_urls=setup.store_urls, channels={"sms": FileSmsChannel(setup.sms_outbox.parent)})
    return World(setup, settings, setup.app_key, other, without, totp, passwords, phones, {"admin": admin_token})


# --- logging in through the API -------------------------------------------------------------------------------
def sms_codes(outbox: Path, phone: str) -> list[str]:
    try:
        lines = outbox.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        m = json.loads(line)
        if str(m.get("to", "")).endswith(phone[-8:]) and "code" in (m.get("params") or {}):
            out.append(str(m["params"]["code"]))
    return out


def person_login(client: Any, world: World, agent: int, base: str = "") -> str:
    """A person's session token, from a code read in the development SMS outbox."""
    phone = world.phones[agent]
    before = len(sms_codes(world.sms_outbox, phone))
    r = client.post(f"{base}/api/v1/auth/person/code", json={"tenant": TENANT, "contact": phone})
    assert r.status_code == 202, r.text
    challenge = r.json()["challenge_id"]
    for _ in range(400):  # the code is sent by a background thread
        codes = sms_codes(world.sms_outbox, phone)
        if len(codes) > before:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("no code reached the SMS outbox")
    r = client.post(f"{base}/api/v1/auth/person/verify",
                    json={"tenant": TENANT, "challenge_id": challenge, "code": codes[-1]})
    assert r.status_code == 200, r.text
    token = r.cookies.get("yinsi_session")
    assert token
    client.cookies.clear()
    return str(token)


def staff_login(client: Any, world: World, staff_id: str, *, totp: bool = True, base: str = "") -> str:
    """A staff session (with the TOTP code: one per account, kept in ``world.sessions``)."""
    if totp and staff_id in world.sessions:
        return world.sessions[staff_id]
    body = {"tenant": TENANT, "staff_id": staff_id, "password": world.passwords[staff_id],
            "totp": pyotp.TOTP(world.totp[staff_id]).now() if totp else None}
    r = client.post(f"{base}/api/v1/auth/staff/login", json=body)
    assert r.status_code == 200, r.text
    token = r.cookies.get("yinsi_staff")
    assert token
    client.cookies.clear()
    if totp:
        world.sessions[staff_id] = str(token)
    return str(token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- a real server ----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """``yinsi serve`` in a subprocess (stdout and stderr kept in files), stopped with SIGTERM."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log_dir: Path, *,
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = log_dir / f"serve-{self.port}.out"
        self.stderr_path = log_dir / f"serve-{self.port}.err"
        cmd = [sys.executable, "-m", "yinsi.cli.main", "serve", "--port", str(self.port), *args]
        self._out = self.stdout_path.open("wb")
        self._err = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self._out, stderr=self._err)

    def wait_ready(self, timeout: float = 120) -> LiveServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"yinsi serve exited ({self.proc.returncode}):\n{self.stderr()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"yinsi serve did not become ready:\n{self.stderr()[-3000:]}")

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        self._err.close()
        return int(self.proc.returncode)


def serve_env(**extra: str) -> dict[str, str]:
    """The environment for a server subprocess: this one without the test's database settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YINSI_DATABASE_URL", "YINSI_DATAMAP", "YINSI_STORES"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env
