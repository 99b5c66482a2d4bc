"""Staff authentication through ``StaffAuthService``: bootstrap once, passwords and lockout, TOTP for roles
that see PI (each code once), sessions that expire, end and are revoked, staff API tokens, four-eyes
approvals by two people, and what the audit log says about it (no password, code or token in it).

The flows that touch every table run on SQLite, PostgreSQL and MariaDB (``db_url``); the rest on SQLite.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import text

from tests.helpers import subject_row
from yinsi.auth.principals import AuthError, StaffPrincipal
from yinsi.auth.staff import LOCKOUT, MAX_FAILURES, SESSION_IDLE, SESSION_LIFETIME, StaffAuthService, token_hash
from yinsi.staff import AccessDenied, SeparationOfDuties
from yinsi.staff.roles import PI_ACTIONS, RIGHTS, SECOND_FACTOR_ACTIONS, Role, needs_second_factor
from yinsi.storage import Tenant, make_engine, make_session_factory, upgrade
from yinsi.storage.migrate import alembic_config

pytestmark = pytest.mark.usefixtures("isolated_env")

T0 = datetime(2026, 3, 1, 2, 0, 7, tzinfo=UTC)
PASSWORD = "correct horse 电池"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Env:
    url: str
    auth: StaffAuthService
    clock: Clock
    admin_secret: str

    def code(self, secret: str, ahead: int = 0) -> str:
        return str(pyotp.TOTP(secret).at(self.clock.now + timedelta(seconds=30 * ahead)))

    def admin(self) -> StaffPrincipal:
        _, p = self.auth.login("t1", "admin", PASSWORD, self.code(self.admin_secret))
        self.clock.advance(timedelta(seconds=30))  # the next login needs the next time step's code
        return p

    def account(self, staff_id: str, roles: list[str], **kw: str) -> str:
        return self.auth.create_account(self.admin(), staff_id, staff_id, roles, PASSWORD, **kw)

    def audit_text(self) -> str:
        engine = make_engine(self.url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT actor, action, subject, items, reason, details FROM audit_entries")).all()
        finally:
            engine.dispose()
        return json.dumps([list(map(str, r)) for r in rows], ensure_ascii=False)


def _env(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("YINSI_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as s, s.begin():
        s.add(Tenant(id="t1", name="t1", created_at=T0))
        s.add(Tenant(id="t2", name="t2", created_at=T0))
    engine.dispose()
    clock = Clock()
    auth = StaffAuthService(url, clock=clock)
    _, secret = auth.bootstrap("t1", "admin", "管理员", PASSWORD, contact="admin@example.com")
    try:
        yield Env(url, auth, clock, secret)
    finally:
        auth.close()


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from _env(db_url, monkeypatch)


@pytest.fixture
def lite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from _env(f"sqlite:///{tmp_path / 'y.db'}", monkeypatch)


# --- the rules themselves --------------------------------------------------------------------------


def test_the_second_factor_follows_the_rights_table() -> None:
    for role in Role:
        assert needs_second_factor([role]) == bool(RIGHTS[role] & SECOND_FACTOR_ACTIONS)
    # every role that can see PI needs it; the auditor (audit log only) does not
    for role in Role:
        if RIGHTS[role] & PI_ACTIONS:
            assert needs_second_factor([role]), role
    assert needs_second_factor([Role.SECURITY_OFFICER]) and needs_second_factor([Role.ADMINISTRATOR])
    assert not needs_second_factor([Role.AUDITOR])


# --- on every backend ------------------------------------------------------------------------------


def test_bootstrap_login_session_logout_and_lockout(env: Env) -> None:
    auth, clock = env.auth, env.clock
    with pytest.raises(AuthError) as refused:
        auth.bootstrap("t1", "boss", "另一人", PASSWORD)
    assert refused.value.code == "already_bootstrapped" and refused.value.status == 409
    # accounts: a privacy officer needs a TOTP code; an auditor does not
    po_secret = env.account("po1", ["privacy_officer"])
    env.account("aud1", ["auditor"])
    with pytest.raises(AuthError) as no_code:
        auth.login("t1", "po1", PASSWORD)
    assert no_code.value.code == "totp_required"
    token, p = auth.login("t1", "po1", PASSWORD, env.code(po_secret))
    assert p.mfa and p.roles == {"privacy_officer"} and p.tenant == "t1"
    assert auth.authenticate(token) == p
    with pytest.raises(AuthError):  # the same code again: a replay
        auth.login("t1", "po1", PASSWORD, env.code(po_secret))
    aud_token, aud = auth.login("t1", "aud1", PASSWORD)
    assert not aud.mfa
    # idle timeout; use keeps a session alive until its absolute lifetime
    clock.advance(SESSION_IDLE - timedelta(minutes=1))
    auth.authenticate(token)
    clock.advance(SESSION_IDLE - timedelta(minutes=1))
    auth.authenticate(token)
    with pytest.raises(AuthError) as idle:
        auth.authenticate(aud_token)
    assert idle.value.code == "not_authenticated" and "30 分钟" in idle.value.detail
    while clock.now < T0 + SESSION_LIFETIME:
        auth.authenticate(token)
        clock.advance(SESSION_IDLE - timedelta(minutes=1))
    clock.advance(timedelta(minutes=2))
    with pytest.raises(AuthError):
        auth.authenticate(token)
    # logout ends the session on the server
    token, _ = auth.login("t1", "po1", PASSWORD, env.code(po_secret))
    auth.logout(token)
    with pytest.raises(AuthError):
        auth.authenticate(token)
    # lockout: the answer is the same for a wrong password, an unknown account and a locked account
    clock.advance(timedelta(seconds=30))
    with pytest.raises(AuthError) as unknown:
        auth.login("t1", "nobody", PASSWORD, "123456")
    for _ in range(MAX_FAILURES):
        with pytest.raises(AuthError) as wrong:
            auth.login("t1", "po1", "wrong password", env.code(po_secret))
        assert wrong.value.detail == unknown.value.detail
    with pytest.raises(AuthError) as locked:
        auth.login("t1", "po1", PASSWORD, env.code(po_secret))
    assert locked.value.detail == unknown.value.detail and locked.value.code == "login_failed"
    clock.advance(LOCKOUT)
    token, _ = auth.login("t1", "po1", PASSWORD, env.code(po_secret))
    auth.authenticate(token)
    # the audit log tells the story without a password, a code or a token
    logged = env.audit_text()
    for event in ("staff_login", "staff_login_failed", "staff_locked_out", "staff_logout"):
        assert event in logged
    assert PASSWORD not in logged and "wrong password" not in logged and token not in logged
    assert token_hash(token) not in logged and "admin@example.com" not in logged


def test_four_eyes_needs_two_people_not_two_accounts(env: Env) -> None:
    from yinsi.audit import AuditLog
    from yinsi.protect.keys import KeyRing, load_master_key
    from yinsi.staff.service import StaffService

    env.account("po1", ["privacy_officer"], contact="13800138000")
    env.account("po1b", ["privacy_officer"], contact="+86 138-0013-8000")  # the same person's second account
    env.account("po2", ["privacy_officer"])
    engine = make_engine(env.url)
    try:
        sessions = make_session_factory(engine)
        ring = KeyRing(sessions, load_master_key())
        ring.provision("t1")
        row = subject_row(ring, "t1", "u1", date(1990, 1, 1), T0)
        with sessions() as s, s.begin():
            s.add(row)
        staff = StaffService(sessions, AuditLog(sessions), ring, clock=env.clock)
        members = {m.staff_id: m for m in staff.list_staff("t1")}
        assert members["po1"].person_id == members["po1b"].person_id != members["po2"].person_id
        req = staff.request_export("t1", "po1", None, reason="年度核查")
        with pytest.raises(AccessDenied) as same:
            staff.approve(req.id, "po1b")
        assert same.value.rule == "S3" and "同一人" in str(same.value)
        with pytest.raises(AccessDenied):
            staff.reject(req.id, "po1b")
        assert staff.approve(req.id, "po2").status == "approved"
        # nor may the person hold conflicting roles through their second account (S3)
        with pytest.raises(SeparationOfDuties):
            staff.grant("t1", "po1b", Role.AUDITOR, actor="admin")
    finally:
        engine.dispose()


def test_api_tokens(env: Env) -> None:
    auth, clock = env.auth, env.clock
    secret = env.account("po1", ["privacy_officer"])
    aud_secret = env.account("aud1", ["auditor"])
    _, aud = auth.login("t1", "aud1", PASSWORD)
    with pytest.raises(AuthError) as no_mfa:
        auth.create_api_token(aud, name="报表", ttl=timedelta(days=1))
    assert no_mfa.value.code == "mfa_required"
    session, p = auth.login("t1", "po1", PASSWORD, env.code(secret))
    with pytest.raises(Exception, match="90"):
        auth.create_api_token(p, name="工单", ttl=timedelta(days=91))
    token = auth.create_api_token(p, name="工单", ttl=timedelta(days=7))
    from_token = auth.authenticate(token)
    assert from_token.staff_id == "po1" and from_token.mfa
    with pytest.raises(AuthError):  # not a token made from a token
        auth.create_api_token(from_token, name="x", ttl=timedelta(days=1))
    clock.advance(timedelta(hours=13))  # longer than any session: the token lives on
    assert auth.authenticate(token).staff_id == "po1"
    with pytest.raises(AuthError):
        auth.authenticate(session)
    listed = auth.list_api_tokens(from_token)
    assert [t.name for t in listed] == ["工单"]
    _, aud = auth.login("t1", "aud1", PASSWORD, env.code(aud_secret))
    with pytest.raises(LookupError):  # not theirs
        auth.revoke_api_token(aud, listed[0].id)
    auth.revoke_api_token(from_token, listed[0].id)
    with pytest.raises(AuthError):
        auth.authenticate(token)
    expiring = auth.create_api_token(auth.login("t1", "po1", PASSWORD, env.code(secret, 1))[1], name="短期",
                                     ttl=timedelta(hours=1))
    clock.advance(timedelta(hours=1))
    with pytest.raises(AuthError):
        auth.authenticate(expiring)


# --- on SQLite -------------------------------------------------------------------------------------


def test_changes_to_the_account_reach_its_sessions(lite: Env) -> None:
    auth, clock = lite.auth, lite.clock
    from yinsi.audit import AuditLog
    from yinsi.staff.service import StaffService

    secret = lite.account("cs1", ["customer_service"])
    aud_secret = lite.account("aud1", ["auditor"])
    del aud_secret
    token, _ = auth.login("t1", "cs1", PASSWORD, lite.code(secret))
    aud_token, _ = auth.login("t1", "aud1", PASSWORD)
    engine = make_engine(lite.url)
    try:
        sessions = make_session_factory(engine)
        staff = StaffService(sessions, AuditLog(sessions), clock=clock)
        # the auditor's session had no second factor: once the account may see PI, it must log in again
        staff.revoke("t1", "aud1", Role.AUDITOR, actor="admin")
        staff.grant("t1", "aud1", Role.SECURITY_OFFICER, actor="admin")
        with pytest.raises(AuthError) as again:
            auth.authenticate(aud_token)
        assert again.value.code == "mfa_required"
        # a deactivated account's sessions end at once
        staff.deactivate("t1", "cs1", actor="admin")
        with pytest.raises(AuthError):
            auth.authenticate(token)
        with pytest.raises(AuthError):
            auth.login("t1", "cs1", PASSWORD, lite.code(secret, 1))
    finally:
        engine.dispose()


def test_customer_service_cannot_create_accounts_and_passwords_change(lite: Env) -> None:
    auth, clock = lite.auth, lite.clock
    secret = lite.account("cs1", ["customer_service"])
    token, cs = auth.login("t1", "cs1", PASSWORD, lite.code(secret))
    with pytest.raises(AccessDenied) as refused:
        auth.create_account(cs, "x", "x", ["customer_service"], PASSWORD)
    assert refused.value.rule == "S3"
    with pytest.raises(AccessDenied):
        auth.reset_password(cs, "admin", "another password")
    with pytest.raises(Exception, match="口令"):
        auth.create_account(lite.admin(), "weak", "x", ["auditor"], "short")
    # change one's own password: other sessions end, this one goes on
    clock.advance(timedelta(seconds=30))
    other, _ = auth.login("t1", "cs1", PASSWORD, lite.code(secret))
    with pytest.raises(AuthError):
        auth.set_password(cs, "not the password", "a new password 1")
    auth.set_password(cs, PASSWORD, "a new password 1")
    auth.authenticate(token)
    with pytest.raises(AuthError):
        auth.authenticate(other)
    # an administrator resets it (and the lockout): all of the account's sessions end
    admin = lite.admin()
    new_secret = auth.reset_password(admin, "cs1", "reset password 2", new_totp=True)
    assert new_secret and new_secret != secret
    with pytest.raises(AuthError):
        auth.authenticate(token)
    auth.login("t1", "cs1", "reset password 2", lite.code(new_secret, 1))


def test_a_tenant_s_accounts_and_tokens_stay_in_it(lite: Env) -> None:
    auth = lite.auth
    _, t2_secret = auth.bootstrap("t2", "admin", "乙租户管理员", PASSWORD)
    with pytest.raises(AuthError):  # the same staff id in another tenant is another account
        auth.login("t2", "admin", PASSWORD, lite.code(lite.admin_secret, 1))
    _, t2_admin = auth.login("t2", "admin", PASSWORD, lite.code(t2_secret))
    secret = lite.account("po1", ["privacy_officer"])
    _, po = auth.login("t1", "po1", PASSWORD, lite.code(secret))
    token = auth.create_api_token(po, name="工单", ttl=timedelta(days=1))
    tid = auth.list_api_tokens(po)[0].id
    assert auth.list_api_tokens(t2_admin) == []
    with pytest.raises(LookupError):
        auth.revoke_api_token(t2_admin, tid)
    assert auth.authenticate(token).tenant == "t1"


def test_accounts_made_before_logins_become_people_and_an_old_administrator_can_be_given_credentials(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alembic import command

    monkeypatch.setenv("YINSI_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0008")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name, created_at) VALUES ('t1', 't1', '2026-01-01 00:00:00')"))
        for sid, role in (("boss", "administrator"), ("po1", "privacy_officer")):
            conn.execute(text("INSERT INTO staff (tenant_id, staff_id, name, active, created_at) "
                              "VALUES ('t1', :s, :s, 1, '2026-01-01 00:00:00')"), {"s": sid})
            conn.execute(text("INSERT INTO staff_roles (tenant_id, staff_id, role, granted_at) "
                              "VALUES ('t1', :s, :r, '2026-01-01 00:00:00')"), {"s": sid, "r": role})
    engine.dispose()
    upgrade(url)
    with StaffAuthService(url) as auth:
        members = {m.staff_id: m for m in auth.staff.list_staff("t1")}
        assert members["boss"].person_id == "boss" and members["po1"].person_id == "po1"
        _, secret = auth.bootstrap("t1", "boss", "boss", PASSWORD)
        _, boss = auth.login("t1", "boss", PASSWORD, pyotp.TOTP(secret).now())
        assert boss.roles == {"administrator"}
        with pytest.raises(AuthError):
            auth.bootstrap("t1", "boss2", "x", PASSWORD)
