"""``yinsi audit …`` as an operator and an auditor use it: exit codes, JSON contracts, Chinese output.

``record`` and ``show`` act as a logged-in member of staff: the accounts are made once per module in a
template database (Argon2id is deliberately slow), copied as each test's default database; a command acts as
a member of staff through ``YINSI_STAFF_TOKEN`` (by default the customer-service account ``cs1``)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete
from typer.testing import CliRunner, Result

from tests.staff_login import Team, make_team
from yinsi.audit.store import CHAINS, CHECKPOINTS, ENTRIES, KEYS
from yinsi.cli.main import app
from yinsi.storage import Tenant, make_engine, make_session_factory, upgrade

pytestmark = pytest.mark.usefixtures("isolated_env")

runner = CliRunner()
#: The master key, given in the environment (as from a secrets manager) to the template and every test.
MASTER_ENV = base64.b64encode(os.urandom(32)).decode()
ACCOUNTS = {"aud1": ["auditor"], "cs1": ["customer_service"]}


@dataclass
class StaffTemplate:
    db: Path
    teams: dict[str, Team]


def staff_template(root: Path, tenants: Iterable[str],
                   accounts: Mapping[str, Sequence[str]] = ACCOUNTS) -> StaffTemplate:
    """A database with ``tenants`` and their staff (an administrator ``admin`` plus ``accounts``), logged
    in. The accounts' own audit entries (creation, logins) and the signing keys are then removed, so that
    a test starts with an empty audit log and counts only its own entries."""
    db = root / "yinsi.db"
    url = f"sqlite:///{db.as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as s, s.begin():
        for t in tenants:
            s.add(Tenant(id=t, name=t, created_at=datetime(2026, 3, 1, tzinfo=UTC)))
    env: dict[str, str | None] = {"YINSI_MASTER_KEY": MASTER_ENV, "YINSI_DATA_DIR": str(root / "data"),
                                  "YINSI_DATABASE_URL": None, "YINSI_AUDIT_WITNESS": None}
    teams = {t: make_team(url, t, accounts, environ=env) for t in tenants}
    with engine.begin() as conn:
        for table in (ENTRIES, CHECKPOINTS, CHAINS, KEYS):
            conn.execute(delete(table))
    engine.dispose()
    return StaffTemplate(db, teams)


def use_template(template: StaffTemplate, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a copy of the template the default database of ``data_dir`` (the test's data directory)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copy2(template.db, data_dir / "yinsi.db")
    monkeypatch.setenv("YINSI_MASTER_KEY", MASTER_ENV)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> StaffTemplate:
    return staff_template(tmp_path_factory.mktemp("audit-cli"), ["acme", "gm"])


@pytest.fixture(autouse=True)
def staffed(template: StaffTemplate, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Team]:
    use_template(template, isolated_env, monkeypatch)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(isolated_env.parent / "config"))  # no saved session
    monkeypatch.setenv("YINSI_STAFF_TOKEN", template.teams["acme"].tokens["cs1"])
    return template.teams


def invoke(*args: str, as_: tuple[Team, str] | None = None, nobody: bool = False) -> Result:
    """``yinsi ARGS`` as ``cs1`` of acme, as another member of staff (``as_``), or with no login at all."""
    env: dict[str, str | None] | None = None
    if nobody:
        env = {"YINSI_STAFF_TOKEN": None}
    elif as_ is not None:
        env = {"YINSI_STAFF_TOKEN": as_[0].tokens[as_[1]]}
    return runner.invoke(app, list(args), env=env)


def _record(*args: str, as_: tuple[Team, str] | None = None) -> None:
    result = invoke("audit", "record", *args, as_=as_)
    assert result.exit_code == 0, result.output


def _show(staffed: dict[str, Team], *args: str, tenant: str = "acme") -> Result:
    return invoke("audit", "show", *args, as_=(staffed[tenant], "aud1"))


@pytest.fixture
def witness_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A witness directory outside the data directory, as on another mount."""
    d = tmp_path / "witness-mount"
    d.mkdir()
    monkeypatch.setenv("YINSI_AUDIT_WITNESS", str(d))
    return d


def test_record_show_checkpoint_verify_round_trip(isolated_env: Path, witness_dir: Path,
                                                 staffed: dict[str, Team]) -> None:
    _record("--tenant", "acme", "--action", "unmask", "--subject", "psn_1",
            "--item", "contact.mobile", "--item", "basic.name", "--reason", "核实订单", "--details", '{"ticket": "T-9"}')
    _record("--tenant", "acme", "--action", "export", "--reason", "季度报表", as_=(staffed["acme"], "aud1"))
    shown = _show(staffed, "--tenant", "acme", "--json")
    assert shown.exit_code == 0, shown.output
    entries = json.loads(shown.stdout)
    assert [e["seq"] for e in entries] == [1, 2]
    assert [e["actor"] for e in entries] == ["cs1", "aud1"]  # the logged-in members of staff
    assert set(entries[0]) == {"tenant", "seq", "time", "actor", "action", "subject", "items", "reason", "details",
                               "prev_hash", "entry_hash"}
    assert entries[0]["items"] == ["contact.mobile", "basic.name"] and entries[0]["time"].endswith("Z")
    assert entries[0]["details"] == {"ticket": "T-9"}
    table = _show(staffed)  # the tenant is the auditor's own
    assert "查看未掩码信息" in table.output and "核实订单" in table.output and "acme" in table.output
    assert json.loads(_show(staffed, "--tenant", "acme", "--limit", "1", "--json").stdout)[0]["seq"] == 2

    # every command that wrote entries ended with a checkpoint over them
    cp = runner.invoke(app, ["audit", "checkpoint", "--json"])
    assert cp.exit_code == 0
    made = json.loads(cp.stdout)
    assert made[0]["upto_seq"] == 2 and made[0]["checkpoint"] == 2 and made[0]["created"] is False
    assert len(made[0]["signature"]) == 128
    assert "未新建" in runner.invoke(app, ["audit", "checkpoint", "--tenant", "acme"]).output

    ok = runner.invoke(app, ["audit", "verify", "--strict"])
    assert ok.exit_code == 0 and "审计日志完整" in ok.output and "共 2 条记录" in ok.output and "警告" not in ok.output
    key = (isolated_env / "audit_signing.key").read_bytes()
    assert key.startswith(b"YINSI-AUDIT-WRAPPED-KEY/1") and b"PRIVATE KEY" not in key  # wrapped by the master key
    assert (witness_dir / "yinsi-audit-witness.json").exists()

    with sqlite3.connect(isolated_env / "yinsi.db") as conn:
        conn.execute("UPDATE audit_entries SET reason = '例行' WHERE seq = 1")
    bad = runner.invoke(app, ["audit", "verify", "--tenant", "acme", "--json"])
    assert bad.exit_code == 1
    data = json.loads(bad.stdout)
    assert data["ok"] is False
    assert data["chains"][0]["first_problem"] == {"seq": 1, "kind": "modified", "checkpoint": None,
                                                  "message": "第 1 条的内容被修改（重算的哈希与记录的哈希不符）"}
    human = runner.invoke(app, ["audit", "verify"])
    assert human.exit_code == 1 and "被篡改" in human.output and "第 1 条" in human.output


def test_plaintext_pi_is_refused_with_exit_2_and_without_echoing_it(staffed: dict[str, Team]) -> None:
    result = invoke("audit", "record", "--tenant", "acme", "--action", "pi_access", "--reason", "客户 13800138000 来电")
    assert result.exit_code == 2
    assert "明文个人信息" in result.output and "13800138000" not in result.output
    assert json.loads(_show(staffed, "--json").stdout) == []


def test_bad_input_gives_chinese_errors_not_tracebacks() -> None:
    for args in (["--details", "{not json"], ["--details", '["a"]'], ["--item", "张三"]):
        result = invoke("audit", "record", "--tenant", "acme", "--action", "other", *args)
        assert result.exit_code == 2 and "Traceback" not in result.output, args
    assert "不是有效的 JSON" in invoke("audit", "record", "--tenant", "acme", "--action", "other",
                                        "--details", "{not json").output
    unknown = invoke("audit", "record", "--tenant", "acme", "--action", "nope")
    assert unknown.exit_code == 2
    gone = invoke("audit", "record", "--tenant", "acme", "--actor", "staff-7", "--action", "other")
    assert gone.exit_code == 2 and "--actor" in gone.output  # a typed name is not an identity
    bad_url = runner.invoke(app, ["audit", "verify", "--url", "nosuchdb://x"])
    assert bad_url.exit_code == 2 and "错误" in bad_url.output


def test_init_chains_and_an_sm_chain(staffed: dict[str, Team]) -> None:
    init = runner.invoke(app, ["audit", "init", "--tenant", "gm", "--hash", "sm3", "--sign", "sm2", "--every", "2"])
    assert init.exit_code == 0 and "SM3" in init.output and "SM2" in init.output
    for _ in range(3):
        _record("--tenant", "gm", "--action", "config_change", as_=(staffed["gm"], "cs1"))
    chains = json.loads(runner.invoke(app, ["audit", "chains", "--json"]).stdout)
    assert [(c["tenant"], c["hash_alg"], c["sign_alg"], c["last_seq"], c["last_checkpoint_seq"]) for c in chains] == [
        ("gm", "sm3", "sm2", 3, 3)]  # the third entry was signed when its command ended
    assert runner.invoke(app, ["audit", "verify", "--tenant", "gm"]).exit_code == 0
    clash = runner.invoke(app, ["audit", "init", "--tenant", "gm", "--hash", "sha256"])
    assert clash.exit_code == 2 and "不能更改" in clash.output


def test_rotate_key_is_an_operator_command_logged_as_system(staffed: dict[str, Team]) -> None:
    runner.invoke(app, ["audit", "init", "--tenant", "acme", "--every", "1"])
    _record("--tenant", "acme", "--action", "other")
    rotated = invoke("audit", "rotate-key", nobody=True)  # its authority is the signing key and the database
    assert rotated.exit_code == 0, rotated.output
    entries = json.loads(_show(staffed, "--json").stdout)
    assert entries[-1]["action"] == "key_rotation" and entries[-1]["actor"] == "system"
    assert invoke("audit", "rotate-key", "--actor", "sec-officer-1").exit_code == 2
    verified = json.loads(runner.invoke(app, ["audit", "verify", "--json"]).stdout)
    assert verified["ok"] is True and verified["chains"][0]["key_trust"] == "local"


def test_an_empty_database_has_nothing_to_verify() -> None:
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0 and "没有审计日志" in result.output
    assert json.loads(runner.invoke(app, ["audit", "verify", "--json"]).stdout) == {
        "ok": True, "confirmed": False, "strict": False, "chains": []}  # no witness configured


def test_record_and_show_need_a_logged_in_member_of_staff(staffed: dict[str, Team]) -> None:
    for args in (["record", "--tenant", "acme", "--action", "other"], ["show"], ["show", "--tenant", "acme"]):
        result = invoke("audit", *args, nobody=True)
        assert result.exit_code == 1 and "未登录" in result.output and "yinsi login" in result.output, args
    refused = invoke("audit", "show", "--json", nobody=True)
    assert refused.exit_code == 1 and json.loads(refused.stdout)["ok"] is False
    assert json.loads(_show(staffed, "--json").stdout) == []  # nothing was recorded


def test_show_needs_a_role_that_may_read_the_audit_log(staffed: dict[str, Team]) -> None:
    _record("--tenant", "acme", "--action", "other", "--reason", "配置变更")
    for who in ("cs1", "admin"):  # customer service and the administrator may not read the log (S3)
        result = invoke("audit", "show", "--tenant", "acme", "--json", as_=(staffed["acme"], who))
        assert result.exit_code == 1 and "查阅审计日志" in result.output, who
        assert json.loads(result.stdout)["rule"] == "S3" and "配置变更" not in result.stdout
    entries = json.loads(_show(staffed, "--json").stdout)
    assert [(e["actor"], e["details"].get("outcome")) for e in entries] == [
        ("cs1", None), ("cs1", "denied"), ("admin", "denied")]  # the refusals are audited


def test_staff_act_only_on_their_own_tenant(staffed: dict[str, Team]) -> None:
    _record("--tenant", "gm", "--action", "other", as_=(staffed["gm"], "cs1"))
    other = _show(staffed, "--tenant", "gm")  # acme's auditor
    assert other.exit_code == 1 and "租户隔离" in other.output
    wrong = invoke("audit", "record", "--tenant", "gm", "--action", "other")  # acme's cs1
    assert wrong.exit_code == 1 and "租户隔离" in wrong.output
    entries = json.loads(_show(staffed, "--json", tenant="gm").stdout)
    assert [(e["tenant"], e["actor"]) for e in entries] == [("gm", "cs1")]
    assert json.loads(_show(staffed, "--json").stdout) == []  # acme's log shows acme's entries only
