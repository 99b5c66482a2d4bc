"""Diff of two declaration versions: every change, classified; re-consent per PIPL 14."""

from __future__ import annotations

from tests.helpers import minimal
from yinsi.domain.changes import diff_declarations


def test_identical_versions_have_no_changes_and_are_not_major() -> None:
    d = diff_declarations(minimal(), minimal())
    assert d.changes == [] and not d.major and d.reconsent == []


def test_source_quotes_alone_are_not_policy_changes() -> None:
    new = minimal(("quote: 注册时需要提供手机号码", "quote: 注册时需要提供您的手机号码"))
    assert diff_declarations(minimal(), new).changes == []


def test_operator_change_is_criterion_2_and_requires_reaccepting_the_policy() -> None:
    new = minimal(("value: 示例科技有限公司, source", "value: 另一科技有限公司, source"))
    d = diff_declarations(minimal(), new)
    [c] = d.changes
    assert (c.path, c.kind, c.before, c.after, c.criteria) == (
        "controller.legal_name.value", "changed", "示例科技有限公司", "另一科技有限公司", [2])
    assert d.major
    assert [(r.consent, r.scope) for r in d.reconsent] == [("policy", "policy")]


def test_changed_phone_number_is_criterion_5_as_removed_and_added_channel() -> None:
    d = diff_declarations(minimal(), minimal(("400-000-0000", "400-999-9999")))
    assert {(c.kind, c.path, tuple(c.criteria)) for c in d.changes} == {
        ("removed", "controller.contacts[phone:400-000-0000]", (5,)),
        ("added", "controller.contacts[phone:400-999-9999]", (5,)),
    }


def test_new_sensitive_item_is_criterion_1_and_needs_separate_consent() -> None:
    new = minimal((
        "      - {item: contact.mobile, required: true, method: user_provided, source: {section: 一, quote: 手机号码}}",
        "      - {item: contact.mobile, required: true, method: user_provided, source: {section: 一, quote: 手机号码}}\n"
        "      - {item: location.precise, required: false, method: device_permission, source: {section: 一, quote: 位置}}",
    ))
    d = diff_declarations(minimal(), new)
    [c] = d.changes
    assert c.path == "features[register].collections[location.precise]" and c.kind == "added"
    assert c.criteria == [1]
    kinds = {(r.consent, r.rule, tuple(r.items)) for r in d.reconsent}
    assert ("separate", "C4", ("location.precise",)) in kinds
    assert ("policy", "C5", ("location.precise",)) in kinds


def test_longer_reply_time_is_criterion_4() -> None:
    d = diff_declarations(minimal(), minimal(("days: 15, unit: natural", "days: 30, unit: natural")))
    [c] = d.changes
    assert (c.path, c.before, c.after, c.criteria) == ("response_time.days", 15, 30, [4])


def test_removed_feature_is_reported_once_as_a_whole() -> None:
    text_old = minimal()
    new = text_old.model_copy(update={"features": text_old.features[:1]})
    d = diff_declarations(text_old, new)
    assert [(c.path, c.kind) for c in d.changes] == [("features[face_verify]", "removed")]
    assert d.changes[0].before["name"] == "实名认证"


def test_effective_date_change_alone_is_not_major() -> None:
    d = diff_declarations(minimal(), minimal(("value: 2024-01-01, source", "value: 2024-02-01, source")))
    assert [c.path for c in d.changes] == ["version.effective_date.value"]
    assert not d.major


def test_json_shape_matches_the_documented_contract() -> None:
    j = diff_declarations(minimal(), minimal(("400-000-0000", "400-999-9999"))).to_json()
    assert set(j) >= {"changes", "major", "reconsent"}
    assert set(j["changes"][0]) == {"path", "kind", "before", "after", "criteria"}
