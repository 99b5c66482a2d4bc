"""``yinsi staff …`` and ``yinsi alerts …``: Chinese for people, JSON with --json, exit 1 when refused,
exit 2 on bad input, never a traceback (SQLite)."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from yinsi.cli.main import app
from yinsi.protect.identifiers import store_identifier
from yinsi.protect.keys import KeyRing, MasterKey
from yinsi.storage import Tenant, make_engine, make_session_factory, upgrade
from yinsi.storage.consent_tables import Subject

pytestmark = pytest.mark.usefixtures("isolated_env")

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PHONE = "13800138000"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    material = os.urandom(32)
    monkeypatch.setenv("YINSI_DATABASE_URL", url)
    monkeypatch.setenv("YINSI_MASTER_KEY", base64.b64encode(material).decode())
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as s, s.begin():
        s.add(Tenant(id="t1", name="t1", created_at=T0))
    with sessions() as s, s.begin():
        s.add(Subject(tenant_id="t1", subject_id="u-adult", birth_date=date(1990, 1, 1), created_at=T0))
        s.add(Subject(tenant_id="t1", subject_id="u-child", birth_date=date(2016, 1, 1), created_at=T0))
    ring = KeyRing(sessions, MasterKey(material, "test"))
    ring.provision("t1")
    store_identifier(ring, "t1", "u-adult", "mobile_phone", PHONE)
    store_identifier(ring, "t1", "u-child", "mobile_phone", "13912345678")
    engine.dispose()
    return CliRunner()


def run(cli: CliRunner, *args: str) -> Result:
    result = cli.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def team(cli: CliRunner) -> None:
    assert run(cli, "staff", "add", "t1", "admin", "--name", "管理员", "--role", "administrator").exit_code == 0
    for sid, role in (("po1", "privacy_officer"), ("po2", "个人信息保护负责人"), ("cs1", "customer_service"),
                      ("sec1", "security_officer")):
        r = run(cli, "staff", "add", "t1", sid, "--name", sid, "--role", role, "--as", "admin")
        assert r.exit_code == 0, r.output


def test_bootstrap_and_separation_of_duties(cli: CliRunner) -> None:
    r = run(cli, "staff", "add", "t1", "po1", "--name", "甲", "--role", "privacy_officer")
    assert r.exit_code == 1 and "第一位须为管理员" in r.output
    team(cli)
    r = run(cli, "staff", "add", "t1", "x", "--name", "乙", "--role", "customer_service")
    assert r.exit_code == 1 and "管理员" in r.output
    r = run(cli, "staff", "grant", "t1", "po1", "auditor", "--as", "admin", "--json")
    assert r.exit_code == 1 and "职责分离" in r.output
    assert json.loads(r.stdout)["rule"] == "S3"
    r = run(cli, "staff", "grant", "t1", "cs1", "root", "--as", "admin")
    assert r.exit_code == 2 and "未知角色" in r.output
    r = run(cli, "staff", "list", "t1", "--json")
    assert {m["staff_id"]: m["roles"] for m in json.loads(r.stdout)}["po2"] == ["privacy_officer"]
    assert "个人信息保护负责人" in run(cli, "staff", "list", "t1").output
    assert "角色权限矩阵" in run(cli, "staff", "rights").output


def test_view_unmask_and_refusals(cli: CliRunner) -> None:
    team(cli)
    r = run(cli, "staff", "view", "t1", "u-adult", "--as", "cs1")
    assert r.exit_code == 0 and "138****8000" in r.output and PHONE not in r.output and "审计日志" in r.output
    data = json.loads(run(cli, "staff", "view", "t1", "u-adult", "--as", "po1", "--json").stdout)
    assert data["items"][0]["value"] == "138****8000" and data["pseudonym"].startswith("p_")
    r = run(cli, "staff", "view", "t1", "u-adult", "--as", "admin", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["rule"] == "S3"
    r = run(cli, "staff", "view", "t1", "u-child", "--as", "po1")
    assert r.exit_code == 1 and "S6" in r.output
    r = run(cli, "staff", "unmask", "t1", "u-adult", "mobile_phone", "--as", "po1")
    assert r.exit_code == 1 and "事由" in r.output
    r = run(cli, "staff", "unmask", "t1", "u-adult", "mobile_phone", "--as", "cs1", "--reason", "核实")
    assert r.exit_code == 1
    r = run(cli, "staff", "unmask", "t1", "u-adult", "mobile_phone", "--as", "po1", "--reason", "电话回访")
    assert r.exit_code == 0 and PHONE in r.output
    r = run(cli, "audit", "show", "--tenant", "t1", "--json")
    assert PHONE not in r.stdout and "unmask" in r.stdout


def test_minor_access_and_export(cli: CliRunner, tmp_path: Path) -> None:
    team(cli)
    req = json.loads(run(cli, "staff", "request-minor-access", "t1", "u-child", "--as", "cs1", "--reason",
                         "监护人来电", "--json").stdout)["request"]
    assert run(cli, "staff", "approve", req["id"], "--as", "cs1").exit_code == 1
    assert run(cli, "staff", "approve", req["id"], "--as", "po1").exit_code == 0
    assert run(cli, "staff", "view", "t1", "u-child", "--as", "cs1").exit_code == 0

    r = run(cli, "staff", "request-export", "t1", "--as", "po1", "--reason", "年度核查")
    assert r.exit_code == 2  # neither subjects nor --all
    r = run(cli, "staff", "request-export", "t1", "--all", "--as", "po1", "--reason", "年度核查", "--unmasked",
            "--item", "mobile_phone", "--json")
    assert r.exit_code == 0, r.output
    rid = json.loads(r.stdout)["request"]["id"]
    out = tmp_path / "out.csv"
    r = run(cli, "staff", "approve", rid, "--as", "po1")
    assert r.exit_code == 1 and "本人" in r.output
    assert run(cli, "staff", "export", rid, "--as", "po1", "--output", str(out)).exit_code == 1
    assert run(cli, "staff", "approve", rid, "--as", "po2").exit_code == 0
    assert "已批准" in run(cli, "staff", "requests", "t1", "--as", "po2").output
    r = run(cli, "staff", "export", rid, "--as", "po1", "--output", str(out))
    assert r.exit_code == 0 and "2 行" in r.output
    assert PHONE in out.read_text(encoding="utf-8-sig")
    r = run(cli, "staff", "export", rid, "--as", "po1", "--output", str(tmp_path / "again.csv"))
    assert r.exit_code == 1 and "一次" in r.output


def test_alerts(cli: CliRunner, tmp_path: Path) -> None:
    team(cli)
    events = tmp_path / "events.jsonl"
    lines = [{"kind": "login_failure", "account": PHONE, "ip": "203.0.113.9", "device": "dev-1",
              "time": f"2026-03-01T08:0{i}:00+08:00"} for i in range(5)]
    events.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    r = run(cli, "alerts", "ingest", str(events), "--tenant", "t1", "--json")
    assert r.exit_code == 0, r.output
    raised = json.loads(r.stdout)["tenants"]["t1"]["raised"]
    assert [a["rule"] for a in raised] == ["login_failures_per_account"]
    assert PHONE not in r.stdout
    r = run(cli, "alerts", "list", "--tenant", "t1", "--as", "po1")
    assert r.exit_code == 1 and "S3" in r.output
    listed = json.loads(run(cli, "alerts", "list", "--tenant", "t1", "--as", "sec1", "--json").stdout)
    assert len(listed) == 1
    assert "login_failures_per_account" in run(cli, "alerts", "list", "--tenant", "t1", "--as", "sec1").output
    r = run(cli, "alerts", "ack", str(listed[0]["id"]), "--as", "sec1", "--note", "已处理")
    assert r.exit_code == 0 and "已确认" in r.output
    assert json.loads(run(cli, "alerts", "list", "--tenant", "t1", "--as", "sec1", "--json").stdout) == []

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
