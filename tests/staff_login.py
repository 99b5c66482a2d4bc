"""Real staff accounts for tests: bootstrap an administrator, create accounts with a known password and
TOTP secret, log them in, and hand out their session tokens (``YINSI_STAFF_TOKEN`` for CLI runs).

Argon2id at the production parameters costs about 0.3 s per hash, so a module makes its team once (in a
template database it copies per test) rather than once per test. ``Team.tokens`` are staff API tokens (no
idle timeout: a template made at the start of a long run still works at its end); ``Team.sessions`` are the
login sessions they were made from (30 minutes idle timeout), for what only a session may do.

    team = make_team(url, "t1", {"po1": ["privacy_officer"], "cs1": ["customer_service"]},
                     environ={"YINSI_DATA_DIR": ...})
    cli(..., env={**env, **team.env("po1")})
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyotp

from yinsi.auth.staff import StaffAuthService

PASSWORD = "test-口令-0123"
TOKEN_TTL = timedelta(days=2)
ADMIN = "admin"


def totp_code(secret: str, *, ahead: int = 0) -> str:
    """The secret's TOTP code for now (``ahead`` time steps later: a code not used yet)."""
    return str(pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30 * ahead)))


@contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or with ``None`` remove) environment variables for the block (a module-scoped fixture cannot use
    monkeypatch)."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Team:
    """A tenant's staff for a test: TOTP secrets, API tokens, session tokens and person ids by staff id."""

    tenant: str
    url: str | None
    secrets: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    persons: dict[str, str] = field(default_factory=dict)

    def env(self, staff_id: str) -> dict[str, str]:
        """The environment that makes a CLI run act as ``staff_id``."""
        return {"YINSI_STAFF_TOKEN": self.tokens[staff_id]}


def make_team(url: str | None, tenant: str, accounts: Mapping[str, Sequence[str]], *,
              same_person: Mapping[str, str] | None = None, admin: str = ADMIN,
              environ: Mapping[str, str | None] | None = None) -> Team:
    """Bootstrap ``admin`` for ``tenant`` (which must exist), create ``accounts`` (staff id → roles; with
    ``same_person`` {staff id: other staff id} an account belongs to the other's person) and log every
    account in with password and TOTP. ``environ``: variables to set meanwhile (the data directory or
    master key the CLI under test will use)."""
    team = Team(tenant, url)
    with environment(environ or {}), StaffAuthService(url) as auth:
        _, team.secrets[admin] = auth.bootstrap(tenant, admin, "管理员", PASSWORD)
        token, principal = auth.login(tenant, admin, PASSWORD, totp_code(team.secrets[admin]))
        team.sessions[admin], team.persons[admin] = token, principal.person_id
        team.tokens[admin] = auth.create_api_token(principal, name="tests", ttl=TOKEN_TTL)
        for sid, roles in accounts.items():
            person = team.persons[same_person[sid]] if same_person and sid in same_person else None
            team.secrets[sid] = auth.create_account(principal, sid, sid, roles, PASSWORD, person_id=person)
            t, p = auth.login(tenant, sid, PASSWORD, totp_code(team.secrets[sid]))
            team.sessions[sid], team.persons[sid] = t, p.person_id
            team.tokens[sid] = auth.create_api_token(p, name="tests", ttl=TOKEN_TTL)
    return team
