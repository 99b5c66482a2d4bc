"""The policy commands as a user runs them: exit codes, JSON contracts, Chinese messages."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.helpers import MINIMAL, POLICIES, minimal_text
from yinsi.cli.main import app

runner = CliRunner()


def test_lint_exits_1_on_errors_and_json_lists_file_rule_severity_path_message() -> None:
    result = runner.invoke(app, ["policy", "lint", "--json", str(POLICIES / "58jingxuan-2021.yaml")])
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert all(set(r) == {"file", "rule", "rule_url", "severity", "path", "message"} for r in rows)
    assert all(r["rule_url"] == f"/api/v1/rules/{r['rule']}" for r in rows)
    assert {"rule": "N8", "severity": "error", "path": "version.effective_date"}.items() <= next(
        r for r in rows if r["rule"] == "N8" and r["severity"] == "error").items()


def test_lint_exits_0_when_only_warnings(tmp_path: Path) -> None:
    # the minimal fixture with every N4 right offered and cancellation declared has no error left
    rights = "\n".join(
        f"  - right: {r}\n    channels: [{{kind: phone, value: 400-000-0000, source: {{section: 权利, quote: 查阅}}}}]\n"
        f"    source: {{section: 权利, quote: 查阅}}"
        for r in ("copy", "portability", "correction", "supplement", "deletion", "restriction", "withdraw_consent",
                  "cancel_account"))
    text = minimal_text().replace("minors:", rights + "\nminors:", 1)
    f = tmp_path / "ok.yaml"
    f.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["policy", "lint", str(f)])
    assert result.exit_code == 0, result.stdout
    assert "0 个错误" in result.stdout


def test_diff_json_contract_on_the_two_weiliaoke_versions() -> None:
    result = runner.invoke(app, ["policy", "diff", "--json", str(POLICIES / "weiliaoke-2020.yaml"),
                                 str(POLICIES / "weiliaoke-2022.yaml")])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["major"] is True
    change = next(c for c in data["changes"] if c["path"] == "response_time.days")
    assert (change["before"], change["after"], change["criteria"]) == (7, 15, [4])
    assert any(r["consent"] == "separate" for r in data["reconsent"])
    assert all(r["rule_url"] == f"/api/v1/rules/{r['rule']}" for r in data["reconsent"])


def test_invalid_declaration_gives_file_line_and_exit_code_without_traceback(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(minimal_text().replace("item: contact.mobile", "item: contact.mobil"), encoding="utf-8")
    for args in (["policy", "validate", str(f)], ["policy", "lint", str(f)], ["policy", "diff", str(MINIMAL), str(f)]):
        result = runner.invoke(app, args)
        assert result.exit_code in (1, 2), args
        assert "Traceback" not in result.output
        assert f"{f}:" in result.output and "contact.mobil" in result.output


def test_validate_accepts_all_seed_declarations() -> None:
    result = runner.invoke(app, ["policy", "validate", *map(str, sorted(POLICIES.glob("*.yaml")))])
    assert result.exit_code == 0
    assert "通过" in result.stdout
