"""Lint: findings name RULES.md ids, follow what the declaration states, and stay silent otherwise."""

from __future__ import annotations

from tests.helpers import minimal
from yinsi.domain.lint import lint_declaration


def rules(*edits: tuple[str, str]) -> set[tuple[str, str, str]]:
    return {(f.rule, f.severity, f.path) for f in lint_declaration(minimal(*edits))}


def test_blank_effective_date_is_an_n8_error() -> None:
    found = rules(("value: 2024-01-01, source", "value: null, source"))
    assert ("N8", "error", "version.effective_date") in found
    assert not any(r == "N8" for r, _, _ in rules())


def test_continued_use_as_acceptance_is_a_c5_error() -> None:
    found = rules(("notice_channels: [popup]", "notice_channels: [popup], continued_use_is_acceptance: true"))
    assert ("C5", "error", "policy_changes.continued_use_is_acceptance") in found
    assert not any(r == "C5" for r, _, _ in rules())


def test_sensitive_item_with_ordinary_consent_only_is_a_c4_error_and_silence_a_warning() -> None:
    assert ("C4", "error", "features[face_verify].separate_consent") in rules(
        ("separate_consent: true", "separate_consent: false"))
    assert ("C4", "warning", "features[face_verify].separate_consent") in rules(
        ("    separate_consent: true\n", ""))
    assert not any(r == "C4" for r, _, _ in rules())


def test_missing_rights_are_listed_one_by_one_under_n4() -> None:
    missing = {p for r, _, p in rules() if r == "N4"}
    assert "rights[access]" not in missing
    assert {"rights[copy]", "rights[portability]", "rights[deletion]", "rights[cancel_account]"} <= missing


def test_items_without_any_retention_are_n3_errors() -> None:
    default_rule = 'items: ["*"], period_days: null, determination: 使用服务期间'
    found = rules((default_rule, "items: [contact.mobile]"))
    only_mobile = minimal((default_rule, "items: [contact.mobile], determination: 使用服务期间"))
    n3 = [f for f in lint_declaration(only_mobile) if f.rule == "N3"]
    assert ("N3", "error", "retention") in found  # no period or determination at all
    assert len(n3) == 1 and "面部" in n3[0].message and "手机号码" not in n3[0].message


def test_sensitive_item_without_necessity_and_impact_is_n2() -> None:
    assert not any(r == "N2" for r, _, _ in rules())
    assert ("N2", "warning", "features[face_verify]") in rules(("impact: 泄露可能导致身份被冒用, ", ""))


def test_guardian_consent_below_14_missing_is_m1() -> None:
    assert ("M1", "error", "minors.guardian_consent_under") in rules((", guardian_consent_under: 14", ""))
    assert not any(r == "M1" for r, _, _ in rules())


def test_permission_requested_at_first_run_is_p1_error() -> None:
    found = rules(("{permission: camera, purpose: 拍摄人脸,", "{permission: camera, purpose: 拍摄人脸, timing: first_run,"))
    assert ("P1", "error", "features[face_verify].permissions[camera]") in found


def test_thirty_day_reply_may_exceed_the_complaint_ceiling_r10() -> None:
    assert ("R10", "warning", "response_time") in rules(("days: 15, unit: natural", "days: 30, unit: natural"))
    assert ("R10", "error", "response_time") in rules(("days: 15, unit: natural", "days: 20, unit: working"))
    assert not any(r == "R10" for r, _, _ in rules())


def test_every_finding_cites_a_rule_of_the_catalogue() -> None:
    from yinsi.faithfulness import seeds_dir

    catalogue = (seeds_dir().parent / "law" / "RULES.md")
    text = catalogue.read_text(encoding="utf-8") if catalogue.exists() else None
    for f in lint_declaration(minimal()):
        assert f.severity in ("error", "warning", "info")
        assert f.message
        if text is not None:
            assert f"- {f.rule} " in text, f.rule
