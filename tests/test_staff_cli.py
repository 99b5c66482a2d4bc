"""``yinsi staff …``, ``yinsi alerts …`` and ``yinsi login``: every staff command runs as a logged-in
member of staff; Chinese for people, JSON with --json, exit 1 when refused, exit 2 on bad input, never a
traceback (SQLite).

The accounts are made once per module in a template database (Argon2id is deliberately slow) and the
database is copied for each test; a command acts as a member of staff through ``YINSI_STAFF_TOKEN``."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.helpers import subject_row
from tests.staff_login import PASSWORD, Team, make_team, totp_code
from yinsi.cli.main import app
from yinsi.protect.identifiers import store_identifier
from yinsi.protect.keys import KeyRing, MasterKey
from yinsi.storage import Tenant, make_engine, make_session_factory, upgrade

pytestmark = pytest.mark.usefixtures("isolated_env")

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PHONE = "13800138000"
MATERIAL = os.urandom(32)
MASTER_ENV = base64.b64encode(MATERIAL).decode()
ACCOUNTS = {"po1": ["privacy_officer"], "po2": ["个人信息保护负责人"], "cs1": ["customer_service"],
            "sec1": ["security_officer"], "aud1": ["auditor"],
            "po1b": ["privacy_officer"]}  # a second account of po1's person
NOT_LOGGED_IN = "未登录"


@dataclass
class Template:
    db: Path
    team: Team
    other: Team  # tenant t2's


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    root = tmp_path_factory.mktemp("staff-cli")
    db = root / "cli.db"
    url = f"sqlite:///{db}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as s, s.begin():
        s.add(Tenant(id="t1", name="t1", created_at=T0))
        s.add(Tenant(id="t2", name="t2", created_at=T0))
        s.add(Tenant(id="t3", name="t3", created_at=T0))  # no staff yet
    ring = KeyRing(sessions, MasterKey(MATERIAL, "test"))
    ring.provision("t1")
    ring.provision("t2")
    rows = [subject_row(ring, "t1", "u-adult", date(1990, 1, 1), T0), subject_row(ring, "t1", "u-child", date(2016, 1, 1), T0)]
    with sessions() as s, s.begin():
        s.add_all(rows)
    store_identifier(ring, "t1", "u-adult", "mobile_phone", PHONE)
    store_identifier(ring, "t1", "u-child", "mobile_phone", "13912345678")
    engine.dispose()
    env = {"YINSI_MASTER_KEY": MASTER_ENV, "YINSI_DATA_DIR": str(root / "data")}
    team = make_team(url, "t1", ACCOUNTS, same_person={"po1b": "po1"}, environ=env)
    other = make_team(url, "t2", {"po9": ["privacy_officer"]}, environ=env)
    return Template(db, team, other)


@dataclass
class Cli:
    runner: CliRunner
    team: Team
    other: Team
    url: str


@pytest.fixture
def cli(template: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    db = tmp_path / "cli.db"
    shutil.copy2(template.db, db)
    url = f"sqlite:///{db}"
    monkeypatch.setenv("YINSI_DATABASE_URL", url)
    monkeypatch.setenv("YINSI_MASTER_KEY", MASTER_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("YINSI_STAFF_TOKEN", raising=False)
    yield Cli(CliRunner(), template.team, template.other, url)


def run(cli: Cli, *args: str, as_: str | None = None, stdin: str | None = None) -> Result:
    """``yinsi ARGS`` acting as staff member ``as_`` (its session token), or as nobody."""
    env = cli.team.env(as_) if as_ in cli.team.tokens else cli.other.env(as_) if as_ else {}
    result = cli.runner.invoke(app, list(args), env=env, input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def test_bootstrap_once_and_accounts_only_by_a_logged_in_administrator(cli: Cli) -> None:
    r = run(cli, "staff", "bootstrap", "t1", "boss", "--name", "乙", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert r.exit_code == 1 and "已有可登录的管理员" in r.output
    r = run(cli, "staff", "add", "t1", "x", "--name", "乙", "--role", "customer_service", "--password-stdin",
            stdin=f"{PASSWORD}\n")
    assert r.exit_code == 1 and NOT_LOGGED_IN in r.output
    # an agent (customer service) is refused an administrator's action, with the rule
    r = run(cli, "staff", "add", "t1", "x", "--name", "乙", "--role", "customer_service", "--password-stdin",
            "--json", as_="cs1", stdin=f"{PASSWORD}\n")
    assert r.exit_code == 1 and "S3" in r.output
    r = run(cli, "staff", "add", "t1", "cs2", "--name", "丙", "--role", "customer_service", "--password-stdin",
            "--json", as_="admin", stdin=f"{PASSWORD}\n")
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)
    assert made["staff"]["roles"] == ["customer_service"] and made["totp_uri"].startswith("otpauth://totp/")
    r = run(cli, "staff", "grant", "t1", "po1", "auditor", "--json", as_="admin")
    assert r.exit_code == 1 and "职责分离" in r.output
    assert json.loads(r.stdout)["rule"] == "S3"
    # po1b is the same person as po1: the separation of duties holds across a person's accounts
    r = run(cli, "staff", "grant", "t1", "po1b", "auditor", as_="admin")
    assert r.exit_code == 1 and "职责分离" in r.output
    r = run(cli, "staff", "grant", "t1", "cs1", "root", as_="admin")
    assert r.exit_code == 2 and "未知角色" in r.output
    r = run(cli, "staff", "list", "t1", "--json", as_="cs1")
    listed = {m["staff_id"]: m for m in json.loads(r.stdout)}
    assert listed["po2"]["roles"] == ["privacy_officer"]
    assert listed["po1"]["person_id"] == listed["po1b"]["person_id"] != listed["po2"]["person_id"]
    assert "个人信息保护负责人" in run(cli, "staff", "list", "t1", as_="po1").output
    assert "角色权限矩阵" in run(cli, "staff", "rights").output


def test_bootstrap_a_tenant_then_log_in(cli: Cli) -> None:
    r = run(cli, "staff", "bootstrap", "t3", "boss", "--name", "甲", "--password-stdin", "--json",
            stdin="short\n")
    assert r.exit_code == 2 and "口令至少" in r.output
    r = run(cli, "staff", "bootstrap", "t3", "boss", "--name", "甲", "--password-stdin", "--json",
            stdin=f"{PASSWORD}\n")
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)
    assert made["staff"]["roles"] == ["administrator"]
    secret = made["totp_secret"]
    assert made["totp_uri"].startswith("otpauth://totp/") and f"secret={secret}" in made["totp_uri"]
    text = run(cli, "staff", "bootstrap", "t3", "boss2", "--name", "乙", "--password-stdin",
               stdin=f"{PASSWORD}\n").output
    assert "已有可登录的管理员" in text
    r = run(cli, "login", "t3", "boss", "--password-stdin", "--totp", totp_code(secret), "--print-token",
            stdin=f"{PASSWORD}\n")
    assert r.exit_code == 0 and r.stdout.startswith("yss_")
    cli.team.tokens["boss"] = r.stdout.strip()
    r = run(cli, "staff", "add", "t3", "po3", "--name", "丙", "--role", "privacy_officer", "--password-stdin",
            as_="boss", stdin=f"{PASSWORD}\n")
    assert r.exit_code == 0 and "otpauth://" in r.output and "只显示这一次" in r.output


def test_login_whoami_logout(cli: Cli, tmp_path: Path) -> None:
    r = run(cli, "whoami")
    assert r.exit_code == 1 and NOT_LOGGED_IN in r.output
    r = run(cli, "login", "t1", "po2", "--password-stdin", stdin="wrong password 1\n")
    assert r.exit_code == 1 and "登录失败" in r.output
    r = run(cli, "login", "t1", "po2", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert r.exit_code == 1 and "动态验证码" in r.output  # a role that sees PI
    code = totp_code(cli.team.secrets["po2"], ahead=1)  # the current step's was used by the template
    r = run(cli, "login", "t1", "po2", "--password-stdin", "--totp", code, stdin=f"{PASSWORD}\n")
    assert r.exit_code == 0 and "已登录" in r.output, r.output
    saved = tmp_path / "config" / "yinsi" / "session.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    me = json.loads(run(cli, "whoami", "--json").stdout)
    assert me["staff_id"] == "po2" and me["mfa"] is True and me["roles"] == ["privacy_officer"]
    assert PASSWORD not in saved.read_text(encoding="utf-8")
    r = run(cli, "login", "t1", "po2", "--password-stdin", "--totp", code, stdin=f"{PASSWORD}\n")
    assert r.exit_code == 1 and "登录失败" in r.output  # a TOTP code is accepted once
    # the saved session of tenant t1 is refused for tenant t2
    r = run(cli, "staff", "list", "t2")
    assert r.exit_code == 1 and "租户隔离" in r.output
    assert run(cli, "logout").exit_code == 0 and not saved.exists()
    assert run(cli, "whoami").exit_code == 1
    # an auditor needs no second factor
    r = run(cli, "login", "t1", "aud1", "--password-stdin", "--json", stdin=f"{PASSWORD}\n")
    assert r.exit_code == 0 and json.loads(r.stdout)["mfa"] is False


def test_api_tokens(cli: Cli) -> None:
    cli.team.tokens["po1-session"] = cli.team.sessions["po1"]
    r = run(cli, "staff", "token", "create", "--name", "工单系统", "--ttl", "7d", "--json", as_="po1-session")
    assert r.exit_code == 0, r.output
    token = json.loads(r.stdout)["token"]
    cli.team.tokens["po1-api"] = token
    assert json.loads(run(cli, "whoami", "--json", as_="po1-api").stdout)["staff_id"] == "po1"
    r = run(cli, "staff", "token", "create", "--name", "x", "--ttl", "1d", as_="po1-api")
    assert r.exit_code == 1 and "登录会话" in r.output  # not a token from a token
    listed = [t for t in json.loads(run(cli, "staff", "token", "list", "--json", as_="po1").stdout)
              if t["name"] != "tests"]  # the test team's own token
    assert [t["name"] for t in listed] == ["工单系统"] and token not in json.dumps(listed)
    assert run(cli, "staff", "token", "revoke", listed[0]["id"], as_="cs1").exit_code == 2  # not theirs
    assert run(cli, "staff", "token", "revoke", listed[0]["id"], as_="po1").exit_code == 0
    r = run(cli, "whoami", as_="po1-api")
    assert r.exit_code == 1 and "登录" in r.output


def test_view_unmask_and_refusals(cli: Cli) -> None:
    r = run(cli, "staff", "view", "t1", "u-adult", as_="cs1")
    assert r.exit_code == 0 and "138****8000" in r.output and PHONE not in r.output and "审计日志" in r.output
    data = json.loads(run(cli, "staff", "view", "t1", "u-adult", "--json", as_="po1").stdout)
    assert data["items"][0]["value"] == "138****8000" and data["pseudonym"].startswith("p_")
    r = run(cli, "staff", "view", "t1", "u-adult", "--json", as_="admin")
    assert r.exit_code == 1 and json.loads(r.stdout)["rule"] == "S3"
    r = run(cli, "staff", "view", "t1", "u-child", as_="po1")
    assert r.exit_code == 1 and "S6" in r.output
    r = run(cli, "staff", "unmask", "t1", "u-adult", "mobile_phone", as_="po1")
    assert r.exit_code == 1 and "事由" in r.output
    r = run(cli, "staff", "unmask", "t1", "u-adult", "mobile_phone", "--reason", "核实", as_="cs1")
    assert r.exit_code == 1
    r = run(cli, "staff", "unmask", "t1", "u-adult", "mobile_phone", "--reason", "电话回访", as_="po1")
    assert r.exit_code == 0 and PHONE in r.output
    r = run(cli, "staff", "view", "t1", "u-adult", as_="po9")  # another tenant's officer
    assert r.exit_code == 1 and "租户隔离" in r.output
    r = run(cli, "audit", "show", "--tenant", "t1", "--json", as_="aud1")
    assert r.exit_code == 0 and PHONE not in r.stdout and "unmask" in r.stdout and "staff_login" in r.stdout
    assert {e["tenant"] for e in json.loads(r.stdout)} == {"t1"}
    r = run(cli, "audit", "show", "--tenant", "t1", as_="po1")  # works with PI, may not read the log (S3)
    assert r.exit_code == 1 and "查阅审计日志" in r.output
    r = run(cli, "audit", "show", "--tenant", "t1", as_="po9")  # another tenant's officer
    assert r.exit_code == 1 and "租户隔离" in r.output


def test_minor_access_export_and_four_eyes_by_two_people(cli: Cli, tmp_path: Path) -> None:
    req = json.loads(run(cli, "staff", "request-minor-access", "t1", "u-child", "--reason", "监护人来电", "--json",
                         as_="cs1").stdout)["request"]
    assert run(cli, "staff", "approve", req["id"], as_="cs1").exit_code == 1
    assert run(cli, "staff", "approve", req["id"], as_="po1").exit_code == 0
    assert run(cli, "staff", "view", "t1", "u-child", as_="cs1").exit_code == 0

    r = run(cli, "staff", "request-export", "t1", "--reason", "年度核查", as_="po1")
    assert r.exit_code == 2  # neither subjects nor --all
    r = run(cli, "staff", "request-export", "t1", "--all", "--reason", "年度核查", "--unmasked", "--item",
            "mobile_phone", "--json", as_="po1")
    assert r.exit_code == 0, r.output
    rid = json.loads(r.stdout)["request"]["id"]
    out = tmp_path / "out.csv"
    r = run(cli, "staff", "approve", rid, as_="po1")
    assert r.exit_code == 1 and "本人" in r.output
    # po1b is another account of the same person: not a second pair of eyes
    r = run(cli, "staff", "approve", rid, "--json", as_="po1b")
    assert r.exit_code == 1 and "同一人" in r.output and json.loads(r.stdout)["rule"] == "S3"
    assert run(cli, "staff", "export", rid, "--output", str(out), as_="po1").exit_code == 1
    assert run(cli, "staff", "approve", rid, "--tenant", "t2", as_="po2").exit_code == 1  # wrong tenant
    assert run(cli, "staff", "approve", rid, as_="po2").exit_code == 0
    assert "已批准" in run(cli, "staff", "requests", "t1", as_="po2").output
    r = run(cli, "staff", "export", rid, "--output", str(out), as_="po1")
    assert r.exit_code == 0 and "2 行" in r.output
    assert PHONE in out.read_text(encoding="utf-8-sig")
    r = run(cli, "staff", "export", rid, "--output", str(tmp_path / "again.csv"), as_="po1")
    assert r.exit_code == 1 and "一次" in r.output


def test_alerts(cli: Cli, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = [{"kind": "login_failure", "account": PHONE, "ip": "203.0.113.9", "device": "dev-1",
              "time": f"2026-03-01T08:0{i}:00+08:00"} for i in range(5)]
    events.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    r = run(cli, "alerts", "ingest", str(events), "--tenant", "t1", "--json")
    assert r.exit_code == 0, r.output
    raised = json.loads(r.stdout)["tenants"]["t1"]["raised"]
    assert [a["rule"] for a in raised] == ["login_failures_per_account"]
    assert PHONE not in r.stdout
    r = run(cli, "alerts", "list", "--tenant", "t1", as_="po1")
    assert r.exit_code == 1 and "S3" in r.output
    listed = json.loads(run(cli, "alerts", "list", "--tenant", "t1", "--json", as_="sec1").stdout)
    assert len(listed) == 1
    assert "login_failures_per_account" in run(cli, "alerts", "list", as_="sec1").output
    r = run(cli, "alerts", "ack", str(listed[0]["id"]), "--note", "已处理", as_="sec1")
    assert r.exit_code == 0 and "已确认" in r.output
    assert json.loads(run(cli, "alerts", "list", "--tenant", "t1", "--json", as_="sec1").stdout) == []

    # a stricter rule from the command line
    more = tmp_path / "more.jsonl"
    more.write_text("\n".join(json.dumps({**x, "account": "other", "tenant": "t1"}) for x in lines[:3]), encoding="utf-8")
    r = run(cli, "alerts", "ingest", str(more), "--rule", "login_failures_per_account=3/10m")
    assert r.exit_code == 0 and "新告警 1 条" in r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(lines[0]) + "\n{oops\n" + json.dumps({**lines[0], "kind": "logout"}) + "\n",
                   encoding="utf-8")
    r = run(cli, "alerts", "ingest", str(bad), "--tenant", "t1")
    assert r.exit_code == 2 and "第 2 行" in r.output and "第 3 行" in r.output
    assert "accounts_per_device" in run(cli, "alerts", "rules").output


#: Every command that acts as staff, with arguments that would otherwise be valid enough to run.
STAFF_COMMANDS = [
    ["staff", "add", "t1", "x", "--name", "乙", "--role", "customer_service", "--password-stdin"],
    ["staff", "list", "t1"],
    ["staff", "grant", "t1", "cs1", "privacy_officer"],
    ["staff", "revoke", "t1", "po1", "privacy_officer"],
    ["staff", "deactivate", "t1", "cs1"],
    ["staff", "password", "--password-stdin"],
    ["staff", "reset-password", "t1", "cs1", "--password-stdin"],
    ["staff", "view", "t1", "u-adult"],
    ["staff", "unmask", "t1", "u-adult", "mobile_phone", "--reason", "核实"],
    ["staff", "request-export", "t1", "--all", "--reason", "核查"],
    ["staff", "request-minor-access", "t1", "u-child", "--reason", "核查"],
    ["staff", "requests", "t1"],
    ["staff", "approve", "req_x"],
    ["staff", "reject", "req_x"],
    ["staff", "export", "req_x", "--output", "x.csv"],
    ["staff", "token", "create", "--name", "x"],
    ["staff", "token", "list"],
    ["staff", "token", "revoke", "tok_x"],
    ["alerts", "list", "--tenant", "t1"],
    ["alerts", "ack", "1"],
    ["whoami"],
    ["request", "verify", "t1", "r1", "--in-person", "--how", "当面核对身份证件"],
    ["request", "complete", "t1", "r1", "--note", "已完成"],
    ["request", "refuse", "t1", "r1", "--ground", "trade_secret", "--detail", "x"],
    ["request", "export", "t1", "r1", "--output", "x.zip"],
    ["request", "identifiers", "t1", "r1", "--reason", "核实"],
    ["request", "lift-restriction", "t1", "r1", "--note", "本人申请"],
    ["request", "holds", "t1"],
]


@pytest.mark.parametrize("args", STAFF_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_staff_command_is_refused_without_login(cli: Cli, args: list[str]) -> None:
    r = run(cli, *args, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert r.exit_code != 0 and NOT_LOGGED_IN in r.output, r.output


def test_a_bad_token_is_refused(cli: Cli) -> None:
    cli.team.tokens["forged"] = "yss_" + "A" * 43
    r = run(cli, "staff", "list", "t1", as_="forged")
    assert r.exit_code == 1 and "登录" in r.output
