"""``yinsi audit …`` as an operator and an auditor use it: exit codes, JSON contracts, Chinese output."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yinsi.cli.main import app

pytestmark = pytest.mark.usefixtures("isolated_env")

runner = CliRunner()


def _record(*args: str) -> None:
    result = runner.invoke(app, ["audit", "record", *args])
    assert result.exit_code == 0, result.output


@pytest.fixture
def witness_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A witness directory outside the data directory, as on another mount."""
    d = tmp_path / "witness-mount"
    d.mkdir()
    monkeypatch.setenv("YINSI_AUDIT_WITNESS", str(d))
    return d


def test_record_show_checkpoint_verify_round_trip(isolated_env: Path, witness_dir: Path) -> None:
    _record("--tenant", "acme", "--actor", "staff-7", "--action", "unmask", "--subject", "psn_1",
            "--item", "contact.mobile", "--item", "basic.name", "--reason", "核实订单", "--details", '{"ticket": "T-9"}')
    _record("--tenant", "acme", "--actor", "staff-8", "--action", "export", "--reason", "季度报表")
    shown = runner.invoke(app, ["audit", "show", "--tenant", "acme", "--json"])
    assert shown.exit_code == 0
    entries = json.loads(shown.stdout)
    assert [e["seq"] for e in entries] == [1, 2]
    assert set(entries[0]) == {"tenant", "seq", "time", "actor", "action", "subject", "items", "reason", "details",
                               "prev_hash", "entry_hash"}
    assert entries[0]["items"] == ["contact.mobile", "basic.name"] and entries[0]["time"].endswith("Z")
    table = runner.invoke(app, ["audit", "show"])
    assert "查看未掩码信息" in table.output and "核实订单" in table.output
    assert json.loads(runner.invoke(app, ["audit", "show", "--tenant", "acme", "--limit", "1", "--json"]).stdout)[0]["seq"] == 2

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


def test_plaintext_pi_is_refused_with_exit_2_and_without_echoing_it() -> None:
    result = runner.invoke(app, ["audit", "record", "--tenant", "acme", "--actor", "staff-1", "--action", "pi_access",
                                 "--reason", "客户 13800138000 来电"])
    assert result.exit_code == 2
    assert "明文个人信息" in result.output and "13800138000" not in result.output
    assert json.loads(runner.invoke(app, ["audit", "show", "--json"]).stdout) == []


def test_bad_input_gives_chinese_errors_not_tracebacks() -> None:
    for args in (["--details", "{not json"], ["--details", '["a"]'], ["--item", "张三"]):
        result = runner.invoke(app, ["audit", "record", "--tenant", "acme", "--actor", "s", "--action", "other", *args])
        assert result.exit_code == 2 and "Traceback" not in result.output, args
    unknown = runner.invoke(app, ["audit", "record", "--tenant", "acme", "--actor", "s", "--action", "nope"])
    assert unknown.exit_code == 2
    bad_url = runner.invoke(app, ["audit", "verify", "--url", "nosuchdb://x"])
    assert bad_url.exit_code == 2 and "错误" in bad_url.output


def test_init_chains_and_an_sm_chain() -> None:
    init = runner.invoke(app, ["audit", "init", "--tenant", "gm", "--hash", "sm3", "--sign", "sm2", "--every", "2"])
    assert init.exit_code == 0 and "SM3" in init.output and "SM2" in init.output
    for _ in range(3):
        _record("--tenant", "gm", "--actor", "system", "--action", "config_change")
    chains = json.loads(runner.invoke(app, ["audit", "chains", "--json"]).stdout)
    assert [(c["tenant"], c["hash_alg"], c["sign_alg"], c["last_seq"], c["last_checkpoint_seq"]) for c in chains] == [
        ("gm", "sm3", "sm2", 3, 3)]  # the third entry was signed when its command ended
    assert runner.invoke(app, ["audit", "verify", "--tenant", "gm"]).exit_code == 0
    clash = runner.invoke(app, ["audit", "init", "--tenant", "gm", "--hash", "sha256"])
    assert clash.exit_code == 2 and "不能更改" in clash.output


def test_rotate_key_is_logged_and_old_checkpoints_still_verify() -> None:
    runner.invoke(app, ["audit", "init", "--tenant", "acme", "--every", "1"])
    _record("--tenant", "acme", "--actor", "staff-1", "--action", "other")
    rotated = runner.invoke(app, ["audit", "rotate-key", "--actor", "sec-officer-1"])
    assert rotated.exit_code == 0, rotated.output
    entries = json.loads(runner.invoke(app, ["audit", "show", "--json"]).stdout)
    assert entries[-1]["action"] == "key_rotation" and entries[-1]["actor"] == "sec-officer-1"
    verified = json.loads(runner.invoke(app, ["audit", "verify", "--json"]).stdout)
    assert verified["ok"] is True and verified["chains"][0]["key_trust"] == "local"


def test_an_empty_database_has_nothing_to_verify() -> None:
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0 and "没有审计日志" in result.output
    assert json.loads(runner.invoke(app, ["audit", "verify", "--json"]).stdout) == {
        "ok": True, "confirmed": False, "strict": False, "chains": []}  # no witness configured
