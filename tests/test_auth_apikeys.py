"""App API keys: made, listed, rotated and revoked by an authenticated administrator; stored only as a
hash; a key names its tenant. Real databases (SQLite, PostgreSQL, MariaDB) and the real staff logins."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import MetaData, create_engine, select
from typer.testing import CliRunner

from yinsi.audit import AuditLog
from yinsi.auth.apikeys import CACHE_TTL, ApiKeyService
from yinsi.auth.principals import AppScope, AuthError, StaffPrincipal
from yinsi.auth.staff import StaffAuthService
from yinsi.services.publishing import publish
from yinsi.storage import upgrade
from yinsi.storage.auth_tables import ApiKeyRow

pytestmark = pytest.mark.usefixtures("isolated_env")

ROOT = Path(__file__).resolve().parents[1]
TENANT, OTHER = "weiliaoke", "kehutong"
POLICIES = {TENANT: "weiliaoke-2022.yaml", OTHER: "kehutong-2021.yaml"}
PASSWORD = "correct horse battery staple"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def admin_of(url: str, tenant: str, staff_id: str = "admin", *, mfa: bool = True) -> StaffPrincipal:
    """The tenant's first administrator, logged in (with a TOTP code when ``mfa``)."""
    with StaffAuthService(url) as auth:
        _, secret = auth.bootstrap(tenant, staff_id, "管理员", PASSWORD)
        _, principal = auth.login(tenant, staff_id, PASSWORD, pyotp.TOTP(secret).now() if mfa else None)
    return principal


def staff_login(url: str, admin: StaffPrincipal, staff_id: str, roles: list[str]) -> tuple[str, StaffPrincipal]:
    """Another member of the admin's tenant, created by the admin and logged in with a second factor."""
    with StaffAuthService(url) as auth:
        secret = auth.create_account(admin, staff_id, f"员工{staff_id}", roles, PASSWORD)
        return auth.login(admin.tenant, staff_id, PASSWORD, pyotp.TOTP(secret).now())


def values_containing(url: str, needle: str, tables: list[str] | None = None) -> list[str]:
    """``table.column`` of every stored value (text or bytes) that contains ``needle``."""
    engine = create_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine, only=tables)
        found = []
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                for row in conn.execute(select(table)).mappings():
                    for column, value in row.items():
                        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                        if needle in text:
                            found.append(f"{table.name}.{column}")
        return sorted(set(found))
    finally:
        engine.dispose()


@dataclass
class World:
    url: str
    keys: ApiKeyService
    clock: Clock
    admin: StaffPrincipal
    other_admin: StaffPrincipal
    opened: list[ApiKeyService]

    def fresh(self) -> ApiKeyService:
        """Another server process's service (its own cache)."""
        svc = ApiKeyService(self.url, clock=self.clock)
        self.opened.append(svc)
        return svc


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    upgrade(db_url)
    for policy in POLICIES.values():
        publish(ROOT / "policies" / policy, db_url)
    clock = Clock()
    admin, other = admin_of(db_url, TENANT), admin_of(db_url, OTHER)
    with ApiKeyService(db_url, clock=clock) as keys:
        w = World(db_url, keys, clock, admin, other, [])
        yield w
        for svc in w.opened:
            svc.close()


def test_a_key_is_shown_once_and_stored_only_as_a_hash(world: World) -> None:
    key_id, token = world.keys.create(world.admin, TENANT, name="后端服务", scopes=[AppScope.GATE, "consent"])
    assert token.startswith(f"yk_{key_id}_")
    secret = token.removeprefix(f"yk_{key_id}_")
    assert len(secret) == 43  # 32 random bytes
    assert values_containing(world.url, secret) == []  # not in any table, the audit log included
    engine = create_engine(world.url)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(ApiKeyRow.__table__).where(ApiKeyRow.id == key_id)).mappings().one()
    finally:
        engine.dispose()
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    listed = world.keys.list(world.admin, TENANT)
    assert [k["key_id"] for k in listed] == [key_id]
    assert secret not in json.dumps(listed) and row["secret_hash"] not in json.dumps(listed)
    assert listed[0]["scopes"] == ["consent", "gate"] and listed[0]["status"] == "active"
    principal = world.keys.authenticate(token)
    assert (principal.tenant, principal.key_id, principal.scopes) == (TENANT, key_id, frozenset({"gate", "consent"}))
    assert principal.allows(AppScope.GATE) and not principal.allows(AppScope.RECORDS)


def test_wrong_revoked_and_rotated_keys_are_refused_alike(world: World) -> None:
    key_id, token = world.keys.create(world.admin, TENANT, name="app", scopes=["gate"])
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    unknown = f"yk_{'0' * 16}_{token.rsplit('_', 1)[1]}"
    details = set()
    for bad in (wrong, unknown, "yk_garbage", "", "Bearer " + token, token + "x"):
        with pytest.raises(AuthError) as info:
            world.keys.authenticate(bad)
        assert (info.value.code, info.value.status) == ("invalid_api_key", 401)
        details.add(info.value.detail)
    assert len(details) == 1  # nothing says whether the key exists

    other_process = world.fresh()
    assert other_process.authenticate(token).key_id == key_id  # cached there now
    new = world.keys.rotate(world.admin, TENANT, key_id)
    assert world.keys.authenticate(new).key_id == key_id
    with pytest.raises(AuthError):
        world.keys.authenticate(token)  # at once in the process that rotated it
    with pytest.raises(AuthError):
        world.fresh().authenticate(token)  # and in any process that had not cached it
    world.keys.revoke(world.admin, TENANT, key_id)
    with pytest.raises(AuthError):
        world.keys.authenticate(new)
    with pytest.raises(AuthError):
        world.fresh().authenticate(new)
    assert world.keys.list(world.admin, TENANT)[0]["status"] == "revoked"
    with pytest.raises(ValueError, match="已吊销"):
        world.keys.rotate(world.admin, TENANT, key_id)


def test_a_revoked_key_stops_in_other_processes_within_the_cache_bound(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    key_id, token = world.keys.create(world.admin, TENANT, name="app", scopes=["gate"])
    elsewhere = world.fresh()
    assert elsewhere.authenticate(token).tenant == TENANT
    world.keys.revoke(world.admin, TENANT, key_id)
    import yinsi.auth.apikeys as apikeys

    real = apikeys.time.monotonic
    monkeypatch.setattr(apikeys.time, "monotonic", lambda: real() + CACHE_TTL + 0.1)
    with pytest.raises(AuthError):
        elsewhere.authenticate(token)


def test_rotation_grace_period_keeps_the_old_secret_for_a_while(world: World) -> None:
    key_id, old = world.keys.create(world.admin, TENANT, name="app", scopes=["gate"])
    new = world.keys.rotate(world.admin, TENANT, key_id, grace=timedelta(minutes=10))
    assert world.fresh().authenticate(old).key_id == key_id
    assert world.fresh().authenticate(new).key_id == key_id
    world.clock.advance(minutes=11)
    with pytest.raises(AuthError):
        world.fresh().authenticate(old)
    assert world.fresh().authenticate(new).key_id == key_id
    with pytest.raises(ValueError):
        world.keys.rotate(world.admin, TENANT, key_id, grace=timedelta(days=2))


def test_a_key_belongs_to_its_tenant(world: World) -> None:
    key_a, token_a = world.keys.create(world.admin, TENANT, name="a", scopes=["gate"])
    key_b, token_b = world.keys.create(world.other_admin, OTHER, name="b", scopes=["gate"])
    assert world.keys.authenticate(token_a).tenant == TENANT
    assert world.keys.authenticate(token_b).tenant == OTHER
    assert [k["key_id"] for k in world.keys.list(world.other_admin, OTHER)] == [key_b]
    # an administrator of one tenant manages nothing of another
    for attempt in (lambda: world.keys.list(world.other_admin, TENANT),
                    lambda: world.keys.create(world.other_admin, TENANT, name="x", scopes=["gate"]),
                    lambda: world.keys.revoke(world.other_admin, TENANT, key_a)):
        with pytest.raises(AuthError) as info:
            attempt()
        assert info.value.status == 403
    with pytest.raises(LookupError):
        world.keys.revoke(world.other_admin, OTHER, key_a)  # A's key is not found among B's
    assert world.keys.authenticate(token_a).tenant == TENANT


def test_only_an_administrator_with_a_second_factor_manages_keys(world: World) -> None:
    _, officer = staff_login(world.url, world.admin, "po1", ["privacy_officer"])
    _, auditor = staff_login(world.url, world.admin, "aud1", ["auditor"])
    for member in (officer, auditor):
        with pytest.raises(AuthError) as info:
            world.keys.create(member, TENANT, name="x", scopes=["gate"])
        assert (info.value.code, info.value.status, info.value.rule) == ("forbidden", 403, "S3")
        with pytest.raises(AuthError):
            world.keys.list(member, TENANT)
    # a principal claiming a role it does not hold (roles are read from the database, not trusted)
    forged = StaffPrincipal(TENANT, "po1", "po1", frozenset({"administrator"}), True, officer.session_id)
    with pytest.raises(AuthError):
        world.keys.create(forged, TENANT, name="x", scopes=["gate"])
    no_mfa = StaffPrincipal(TENANT, "admin", world.admin.person_id, world.admin.roles, False, world.admin.session_id)
    with pytest.raises(AuthError) as info:
        world.keys.create(no_mfa, TENANT, name="x", scopes=["gate"])
    assert info.value.code == "mfa_required"
    assert world.keys.list(world.admin, TENANT) == []
    with pytest.raises(ValueError, match="权限范围"):
        world.keys.create(world.admin, TENANT, name="x", scopes=["everything"])
    with pytest.raises(ValueError):
        world.keys.create(world.admin, TENANT, name="x", scopes=[])


def test_changes_are_audited_without_the_secret(world: World) -> None:
    key_id, token = world.keys.create(world.admin, TENANT, name="app", scopes=["gate"])
    new = world.keys.rotate(world.admin, TENANT, key_id)
    world.keys.revoke(world.admin, TENANT, key_id)
    entries = AuditLog(world.keys.sessions).entries(TENANT)
    ops = [(e.actor, e.details.get("op"), e.details.get("key_id")) for e in entries if "op" in e.details]
    assert ops == [("admin", "api_key_create", key_id), ("admin", "api_key_rotate", key_id),
                   ("admin", "api_key_revoke", key_id)]
    text = json.dumps([e.to_dict() for e in entries], ensure_ascii=False)
    assert token.rsplit("_", 1)[1] not in text and new.rsplit("_", 1)[1] not in text


def test_last_use_is_written_at_most_once_a_minute(world: World) -> None:
    _, token = world.keys.create(world.admin, TENANT, name="app", scopes=["gate"])
    assert world.keys.list(world.admin, TENANT)[0]["last_used_at"] is None
    first = world.clock.now
    world.fresh().authenticate(token)
    world.clock.advance(seconds=30)
    world.fresh().authenticate(token)
    assert world.keys.list(world.admin, TENANT)[0]["last_used_at"] == first.isoformat()
    world.clock.advance(seconds=31)
    world.fresh().authenticate(token)
    assert world.keys.list(world.admin, TENANT)[0]["last_used_at"] == world.clock.now.isoformat()


def test_create_unchecked_is_for_seeding(world: World) -> None:
    key_id, token = world.keys.create_unchecked(TENANT, "demo", ["gate", "consent"])
    assert world.keys.authenticate(token).key_id == key_id
    with pytest.raises(ValueError, match="不存在"):
        world.keys.create_unchecked("nosuchtenant", "demo", ["gate"])


# --- the CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def cli_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, CliRunner]]:
    url = f"sqlite:///{(tmp_path / 'yinsi.db').as_posix()}"
    upgrade(url)
    publish(ROOT / "policies" / POLICIES[TENANT], url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("YINSI_STAFF_TOKEN", raising=False)
    yield url, CliRunner()


def _staff_token(url: str, tenant: str, *, roles: list[str] | None = None) -> str:
    with StaffAuthService(url) as auth:
        _, secret = auth.bootstrap(tenant, "admin", "管理员", PASSWORD)
        token, principal = auth.login(tenant, "admin", PASSWORD, pyotp.TOTP(secret).now())
        if roles is None:
            return token
        other = auth.create_account(principal, "po1", "张三", roles, PASSWORD)
        return auth.login(tenant, "po1", PASSWORD, pyotp.TOTP(other).now())[0]


def test_cli_manages_keys_as_the_logged_in_administrator(cli_world: tuple[str, CliRunner],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from yinsi.cli.main import app

    url, runner = cli_world
    refused = runner.invoke(app, ["apikey", "create", TENANT, "--name", "app", "--scope", "gate", "--url", url])
    assert refused.exit_code == 1 and "未登录" in refused.output
    monkeypatch.setenv("YINSI_STAFF_TOKEN", _staff_token(url, TENANT))
    made = runner.invoke(app, ["apikey", "create", TENANT, "--name", "后端", "--scope", "gate", "--scope", "consent",
                               "--url", url, "--json"])
    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout)
    with ApiKeyService(url) as keys:
        assert keys.authenticate(created["token"]).scopes == frozenset({"gate", "consent"})
    listed = runner.invoke(app, ["apikey", "list", TENANT, "--url", url, "--json"])
    assert listed.exit_code == 0 and created["token"].rsplit("_", 1)[1] not in listed.stdout
    assert [k["key_id"] for k in json.loads(listed.stdout)["keys"]] == [created["key_id"]]
    human = runner.invoke(app, ["apikey", "list", TENANT, "--url", url])
    assert human.exit_code == 0 and "后端" in human.stdout
    rotated = runner.invoke(app, ["apikey", "rotate", TENANT, created["key_id"], "--url", url])
    assert rotated.exit_code == 0 and "只显示这一次" in rotated.stdout
    new_token = next(line for line in rotated.stdout.splitlines() if line.startswith("yk_"))
    revoked = runner.invoke(app, ["apikey", "revoke", TENANT, created["key_id"], "--url", url])
    assert revoked.exit_code == 0
    with ApiKeyService(url) as keys, pytest.raises(AuthError):
        keys.authenticate(new_token)
    other = runner.invoke(app, ["apikey", "list", OTHER, "--url", url])
    assert other.exit_code == 1 and "租户隔离" in other.output  # a session of one tenant acts on no other


def test_cli_refuses_staff_who_are_not_administrators(cli_world: tuple[str, CliRunner],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from yinsi.cli.main import app

    url, runner = cli_world
    monkeypatch.setenv("YINSI_STAFF_TOKEN", _staff_token(url, TENANT, roles=["privacy_officer"]))
    result = runner.invoke(app, ["apikey", "create", TENANT, "--name", "app", "--scope", "gate", "--url", url])
    assert result.exit_code == 1 and "无权" in result.output
    with ApiKeyService(url) as keys:
        with StaffAuthService(url) as auth:
            officer = auth.authenticate(os.environ["YINSI_STAFF_TOKEN"])
        with pytest.raises(AuthError):
            keys.list(officer, TENANT)


def test_cli_sets_and_shows_the_deep_link_key(cli_world: tuple[str, CliRunner], monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    from joserfc.jwk import ECKey

    from yinsi.cli.main import app

    url, runner = cli_world
    monkeypatch.setenv("YINSI_STAFF_TOKEN", _staff_token(url, TENANT))
    none = runner.invoke(app, ["applink", "show", TENANT, "--url", url])
    assert none.exit_code == 2 and "尚未设置" in none.output
    both = runner.invoke(app, ["applink", "set", TENANT, "--url", url])
    assert both.exit_code == 2
    made = runner.invoke(app, ["applink", "set", TENANT, "--generate-hs256", "--url", url, "--json"])
    assert made.exit_code == 0, made.output
    info = json.loads(made.stdout)
    assert (info["algorithm"], info["audience"], info["issuer"]) == ("HS256", f"yinsi:{TENANT}", TENANT)
    shown = runner.invoke(app, ["applink", "show", TENANT, "--url", url])
    assert shown.exit_code == 0 and info["secret"] not in shown.stdout and "HS256" in shown.stdout
    pem = tmp_path / "app.pem"
    pem.write_bytes(ECKey.generate_key("P-256").as_pem(private=False))
    public = runner.invoke(app, ["applink", "set", TENANT, "--public-key", str(pem), "--issuer", "wlk-app",
                                 "--url", url])
    assert public.exit_code == 0 and "ES256" in public.stdout and "iss=wlk-app" in public.stdout
    private = tmp_path / "private.pem"
    private.write_bytes(ECKey.generate_key("P-256").as_pem(private=True))
    refused = runner.invoke(app, ["applink", "set", TENANT, "--public-key", str(private), "--url", url])
    assert refused.exit_code == 2 and "私钥" in refused.output
