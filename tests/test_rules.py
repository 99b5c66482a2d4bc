"""The rule catalogue that ships with the package: complete, cited correctly, and reachable from the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yinsi import rules
from yinsi.cli.main import app
from yinsi.render.links import rule_links

ROOT = Path(__file__).resolve().parents[1]
RULES_MD = ROOT.parent / "shared" / "law" / "RULES.md"
SRC = ROOT / "src" / "yinsi"
CJK = re.compile(r"[\u4e00-\u9fff]")

runner = CliRunner()


def _areas() -> str:
    return "".join(sorted({r.area for r in rules.all()}))


@pytest.mark.skipif(not RULES_MD.is_file(), reason="../shared/law/RULES.md is not present in this checkout")
def test_catalogue_has_every_rule_of_rules_md_and_nothing_else() -> None:
    text = RULES_MD.read_text(encoding="utf-8")
    listed = set(re.findall(r"^- ([A-Z][0-9]+) ", text, flags=re.MULTILINE))
    assert len(listed) > 60
    assert rules.ids() == listed


@pytest.mark.skipif(not RULES_MD.is_file(), reason="../shared/law/RULES.md is not present in this checkout")
def test_duties_are_in_our_own_words() -> None:
    text = RULES_MD.read_text(encoding="utf-8")
    for r in rules.all():
        assert r.duty not in text, r.id
        assert not any(len(sentence) > 20 and sentence in r.duty for sentence in re.split(r"[.;。；]\s*", text)), r.id


def test_every_rule_id_cited_in_the_source_is_in_the_catalogue() -> None:
    # rule IDs are cited as "N1", rule="S3", "（C8）", "V1（PIPL 23）" in code, messages and data files
    pattern = re.compile(rf"(?<![A-Za-z0-9_/.#-])([{_areas()}][1-9][0-9]?)(?![A-Za-z0-9_])")
    cited: dict[str, set[str]] = {}
    for path in [*SRC.rglob("*.py"), *SRC.rglob("*.j2"), *(p for p in SRC.rglob("*.yaml") if p.name != "rules.yaml")]:
        for rid in pattern.findall(path.read_text(encoding="utf-8")):
            cited.setdefault(rid, set()).add(str(path.relative_to(SRC)))
    assert {"N1", "C4", "R7", "S3"} <= set(cited)  # the scan finds what lint, gate, rights and staff cite
    unknown = {rid: sorted(where) for rid, where in cited.items() if rules.get(rid) is None}
    assert not unknown


def test_every_rule_has_titles_a_chinese_duty_and_a_legal_source() -> None:
    catalogue = rules.all()
    assert len(catalogue) == len(rules.ids())
    for r in catalogue:
        assert CJK.search(r.title_zh) and CJK.search(r.duty), r.id
        assert r.title_en.isascii() and r.title_en.strip(), r.id
        assert r.sources and all(s.law for s in r.sources), r.id
        assert r.severity in (None, "error", "warning", "info"), r.id
        assert r.url_path == rules.url_path(r.id) == f"/api/v1/rules/{r.id}"
    assert rules.get("n1") is rules.get("N1")
    assert rules.get("Z9") is None


def test_cli_shows_one_rule() -> None:
    result = runner.invoke(app, ["rules", "N1"])
    assert result.exit_code == 0, result.output
    n1 = rules.get("N1")
    assert n1 is not None
    assert "N1" in result.stdout and n1.title_zh in result.stdout
    assert "个人信息保护法" in result.stdout and "第17条" in result.stdout


def test_cli_lists_every_rule() -> None:
    result = runner.invoke(app, ["rules"])
    assert result.exit_code == 0
    for r in rules.all():
        assert r.id in result.stdout


def test_cli_unknown_rule_fails_in_chinese() -> None:
    result = runner.invoke(app, ["rules", "Q42"])
    assert result.exit_code == 1
    assert "没有编号为 Q42 的规则" in result.output


def test_cli_json_of_one_rule_and_of_all() -> None:
    one = json.loads(runner.invoke(app, ["rules", "C4", "--json"]).stdout)
    assert {"id", "title_zh", "title_en", "duty", "sources", "area", "severity", "url"} <= set(one)
    assert one["id"] == "C4" and one["url"] == "/api/v1/rules/C4"
    assert {"law": "中华人民共和国个人信息保护法", "article": "第23条、第25条、第26条、第29条、第39条"} in one["sources"]
    every = json.loads(runner.invoke(app, ["rules", "--json"]).stdout)
    assert [r["id"] for r in every] == [r.id for r in rules.all()]


def test_json_output_gets_a_rule_url_next_to_each_cited_rule() -> None:
    data = {"allowed": False, "missing": [{"rule": "C4"}, {"rule": "V1（PIPL 23）"}], "reasons": [{"rule": "Q42"}],
            "rule": None}
    rules.add_rule_urls(data)
    assert data["missing"] == [{"rule": "C4", "rule_url": "/api/v1/rules/C4"},
                               {"rule": "V1（PIPL 23）", "rule_url": "/api/v1/rules/V1"}]
    assert data["reasons"] == [{"rule": "Q42"}] and "rule_url" not in data


def test_html_rule_ids_link_to_the_catalogue_and_text_stays_escaped() -> None:
    html = str(rule_links("拒绝（C4）<b>, 见 R7；Q42 与 api/v1 不变"))
    assert '<a class="rule" href="/api/v1/rules/C4" title="单独同意">C4</a>' in html
    assert 'href="/api/v1/rules/R7"' in html
    assert "&lt;b&gt;" in html and "Q42" in html and "rules/Q42" not in html
