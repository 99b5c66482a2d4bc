"""The five seed declarations (policies/*.yaml): valid, faithful to their seed texts, and linted exactly as pinned.

``tests/fixtures/expected_lint.yaml`` pins every lint finding on each seed, grouped by rule and severity, each
group with a verbatim quote of the seed that justifies it. Lint must report exactly those findings: a new
finding needs a justification in the fixture, a vanished one must be explained. The 微聊客 diff
(2020 → 2022) is checked against the changes the seed README says it must surface.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import FIXTURES, POLICIES
from yinsi.declarations import load_declaration
from yinsi.domain.changes import Change, PolicyDiff, diff_declarations
from yinsi.domain.lint import Finding, lint_declaration
from yinsi.domain.policy import Declaration, RightKind
from yinsi.domain.taxonomy import taxonomy
from yinsi.faithfulness import check_quotes, normalise, seeds_dir

EXPECTED_LINT = FIXTURES / "expected_lint.yaml"
POLICY_FILES = sorted(p.name for p in POLICIES.glob("*.yaml"))
SEVERITIES = ("error", "warning", "info")

Triple = tuple[str, str, str]  # (rule, severity, path)


# --- helpers -------------------------------------------------------------------------------------------------

@cache
def declaration(name: str) -> Declaration:
    return load_declaration(POLICIES / name)


@cache
def expected() -> dict[str, list[dict[str, Any]]]:
    data = yaml.safe_load(EXPECTED_LINT.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "expected_lint.yaml maps declaration files to lists of finding groups"
    return data


def groups(name: str) -> list[dict[str, Any]]:
    return expected().get(name) or []


def pinned(name: str) -> set[Triple]:
    return {(g["rule"], g["severity"], p) for g in groups(name) for p in g["paths"]}


def iter_groups() -> Iterator[tuple[str, int, dict[str, Any]]]:
    for name in POLICY_FILES:
        for k, g in enumerate(groups(name)):
            yield name, k, g


def require_seeds() -> Path:
    d = seeds_dir()
    if not d.is_dir():
        pytest.skip(f"种子政策原文目录不存在：{d}（可用 YINSI_SEEDS_DIR 指定），跳过逐字引文核对")
    return d


@cache
def seed_texts() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in require_seeds().iterdir() if p.is_file()}


def seed_text(name: str) -> str:
    decl = declaration(name)
    texts = seed_texts()
    if decl.source_file not in texts:
        pytest.fail(f"{name}: seed {decl.source_file} not found in {seeds_dir()}")
    return texts[decl.source_file]


def describe(triples: set[Triple], found: dict[Triple, Finding]) -> str:
    lines = []
    for t in sorted(triples):
        msg = found[t].message if t in found else ""
        lines.append(f"  {t[0]:<4} {t[1]:<7} {t[2]}" + (f"  — {msg}" if msg else ""))
    return "\n".join(lines)


# --- the fixture itself ------------------------------------------------------------------------------------

def test_fixture_covers_exactly_the_seed_declarations() -> None:
    assert sorted(expected()) == POLICY_FILES


@pytest.mark.parametrize(("name", "k", "group"), list(iter_groups()),
                         ids=[f"{n}[{k}]-{g.get('rule')}" for n, k, g in iter_groups()])
def test_fixture_group_is_well_formed(name: str, k: int, group: dict[str, Any]) -> None:
    assert set(group) == {"rule", "severity", "paths", "why", "quote"}, f"{name}[{k}]: unexpected keys {set(group)}"
    assert group["severity"] in SEVERITIES
    assert group["paths"] and all(isinstance(p, str) and p for p in group["paths"])
    assert str(group["why"]).strip() and str(group["quote"]).strip()


@pytest.mark.parametrize("name", POLICY_FILES)
def test_fixture_pins_each_finding_once(name: str) -> None:
    triples = [(g["rule"], g["severity"], p) for g in groups(name) for p in g["paths"]]
    dups = sorted({t for t in triples if triples.count(t) > 1})
    assert not dups, f"{name}: pinned more than once: {dups}"


# --- (a) valid, (b) faithful ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", POLICY_FILES)
def test_seed_declaration_validates(name: str) -> None:
    decl = load_declaration(POLICIES / name)
    assert decl.source_file


@pytest.mark.parametrize("name", POLICY_FILES)
def test_every_source_quote_is_verbatim_in_the_seed(name: str) -> None:
    decl = declaration(name)
    problems = check_quotes(decl, seed_texts())
    assert not problems, f"{name}: quotes not found verbatim:\n" + "\n".join(
        f"  {p.path}: {p.quote!r} ({p.message})" for p in problems)


# --- (c) lint reports exactly the pinned findings -------------------------------------------------------------

@pytest.mark.parametrize("name", POLICY_FILES)
def test_lint_findings_equal_the_pinned_findings(name: str) -> None:
    findings = lint_declaration(declaration(name))
    found: dict[Triple, Finding] = {(f.rule, f.severity, f.path): f for f in findings}
    assert len(found) == len(findings), f"{name}: lint reported the same (rule, severity, path) twice"
    want = pinned(name)
    unexpected, missing = set(found) - want, want - set(found)
    if unexpected or missing:
        parts = [f"{name}: lint findings differ from tests/fixtures/expected_lint.yaml"]
        if unexpected:
            parts.append(f"unexpected (reported by lint, not pinned; justify from the seed or fix lint/YAML), "
                         f"{len(unexpected)}:\n{describe(unexpected, found)}")
        if missing:
            parts.append(f"missing (pinned, not reported by lint), {len(missing)}:\n{describe(missing, found)}")
        pytest.fail("\n".join(parts), pytrace=False)


# --- (d) each pinned quote is verbatim in its seed; (e) each pinned rule is in RULES.md -----------------------

@pytest.mark.parametrize(("name", "k", "group"), list(iter_groups()),
                         ids=[f"{n}[{k}]-{g.get('rule')}" for n, k, g in iter_groups()])
def test_pinned_quote_is_verbatim_in_the_seed(name: str, k: int, group: dict[str, Any]) -> None:
    text = normalise(seed_text(name))
    quote = normalise(str(group["quote"]))
    assert quote and quote in text, (
        f"{name}[{k}] {group['rule']}: quote not found verbatim in {declaration(name).source_file}: {group['quote']!r}")


def test_pinned_rules_exist_in_the_catalogue() -> None:
    catalogue = seeds_dir().parent / "law" / "RULES.md"
    if not catalogue.exists():
        pytest.skip(f"规则目录不可达：{catalogue}")
    text = catalogue.read_text(encoding="utf-8")
    rules = sorted({g["rule"] for _, _, g in iter_groups()})
    unknown = [r for r in rules if f"- {r} " not in text]
    assert not unknown, f"rules not in RULES.md: {unknown}"


# --- (f) the named examples ---------------------------------------------------------------------------

def lint_set(name: str) -> set[Triple]:
    return {(f.rule, f.severity, f.path) for f in lint_declaration(declaration(name))}


def test_58jingxuan_blank_effective_date_is_an_n8_error() -> None:
    assert declaration("58jingxuan-2021.yaml").version.effective_date.value is None
    assert ("N8", "error", "version.effective_date") in lint_set("58jingxuan-2021.yaml")


def test_jikeanjia_retention_is_n3_error_and_continued_use_is_c5_error() -> None:
    found = lint_set("jikeanjia-2020.yaml")
    assert ("N3", "error", "retention") in found
    assert ("C5", "error", "policy_changes.continued_use_is_acceptance") in found


def test_weiliaoke_2020_has_a_c4_error_on_a_features_separate_consent() -> None:
    c4 = [p for r, s, p in lint_set("weiliaoke-2020.yaml")
          if r == "C4" and s == "error" and p.startswith("features[") and p.endswith("].separate_consent")]
    assert c4, "expected at least one C4 error on features[...].separate_consent"


# --- the 微聊客 diff, 2020 → 2022 ----------------------------------------------------------------------------------

OLD, NEW = "weiliaoke-2020.yaml", "weiliaoke-2022.yaml"


@cache
def weiliaoke_diff() -> PolicyDiff:
    return diff_declarations(declaration(OLD), declaration(NEW))


def change(path: str) -> Change:
    hits = [c for c in weiliaoke_diff().changes if c.path == path]
    assert len(hits) == 1, f"expected one change at {path}, got {[(c.kind, c.path) for c in hits]}"
    return hits[0]


def channel_key(kind: str, value: str | None) -> str:
    return f"{kind}:{value or ''}"


def items_of(entry: dict[str, Any]) -> set[str]:
    return {c["item"] for c in entry.get("collections") or []}


def permissions_of(entry: dict[str, Any]) -> set[str]:
    return {p["permission"] for p in entry.get("permissions") or []}


def test_diff_operator_change_is_criterion_2() -> None:
    old, new = declaration(OLD), declaration(NEW)
    assert old.controller.legal_name.value != new.controller.legal_name.value
    c = change("controller.legal_name.value")
    assert (c.kind, c.before, c.after, c.criteria) == (
        "changed", old.controller.legal_name.value, new.controller.legal_name.value, [2])


def test_diff_changed_contact_channels_are_criterion_5() -> None:
    old = {channel_key(c.kind, c.value) for c in declaration(OLD).controller.contacts}
    new = {channel_key(c.kind, c.value) for c in declaration(NEW).controller.contacts}
    assert old - new and new - old
    got = {(c.kind, c.path, tuple(c.criteria)) for c in weiliaoke_diff().changes if c.path.startswith("controller.contacts")}
    assert got == ({("removed", f"controller.contacts[{k}]", (5,)) for k in old - new}
                   | {("added", f"controller.contacts[{k}]", (5,)) for k in new - old})


def test_diff_reply_time_7_to_15_days_is_criterion_4() -> None:
    c = change("response_time.days")
    assert (c.kind, c.before, c.after, c.criteria) == ("changed", 7, 15, [4])
    assert (declaration(OLD).response_time.days, declaration(NEW).response_time.days) == (7, 15)


def test_diff_new_features_customer_chat_and_bracelet_are_criterion_1() -> None:
    old_ids = {f.id for f in declaration(OLD).features}
    assert "customer_chat" not in old_ids and "bracelet" not in old_ids
    chat = change("features[customer_chat]")
    assert chat.kind == "added" and chat.criteria == [1]
    assert {"comms.chat_content", "location.precise"} <= items_of(chat.after)
    assert "calendar" in permissions_of(chat.after)
    bracelet = change("features[bracelet]")
    assert bracelet.kind == "added" and bracelet.criteria == [1]
    assert {"comms.call_log", "comms.sms_content"} <= items_of(bracelet.after)
    assert {"call_log", "sms"} <= permissions_of(bracelet.after)


def test_diff_newly_named_sdks_and_recipients_are_criterion_3() -> None:
    old, new = declaration(OLD), declaration(NEW)
    for field, old_ids, new_ids in (("sdks", {s.id for s in old.sdks}, [s.id for s in new.sdks]),
                                    ("recipients", {r.id for r in old.recipients}, [r.id for r in new.recipients])):
        added = [i for i in new_ids if i not in old_ids]
        assert added, f"no {field} added"
        for i in added:
            c = change(f"{field}[{i}]")
            assert (c.kind, c.criteria) == ("added", [3]), (field, i)
    assert change("sdks[baidu_map_sdk]").kind == "added"


def test_diff_new_withdraw_all_consent_channel_is_criterion_4() -> None:
    new_right = declaration(NEW).right(RightKind.WITHDRAW_CONSENT)
    old_right = declaration(OLD).right(RightKind.WITHDRAW_CONSENT)
    assert new_right is not None and old_right is not None
    [ch] = [c for c in new_right.channels if c.value and "撤回隐私政策" in c.value]
    key = channel_key(ch.kind, ch.value)
    assert key not in {channel_key(c.kind, c.value) for c in old_right.channels}
    c = change(f"rights[withdraw_consent].channels[{key}]")
    assert (c.kind, c.criteria) == ("added", [4])


def test_diff_dropped_consent_exception_lists() -> None:
    old, new = declaration(OLD).consent_exceptions, declaration(NEW).consent_exceptions
    assert old.collection and not new.collection
    for e in old.collection:
        c = change(f"consent_exceptions.collection[{e.text}]")
        assert (c.kind, c.criteria) == ("removed", [1])
    dropped = [e.text for e in old.sharing if e.text not in {n.text for n in new.sharing}]
    assert dropped
    for text in dropped:
        c = change(f"consent_exceptions.sharing[{text}]")
        assert (c.kind, c.criteria) == ("removed", [3])


def test_diff_is_major_and_asks_separate_consent_for_new_sensitive_chat_items() -> None:
    d = weiliaoke_diff()
    assert d.major
    chat = declaration(NEW).feature("customer_chat")
    assert chat is not None
    sensitive = {i for i in chat.item_ids() if taxonomy().is_sensitive(i)}
    assert {"comms.chat_content", "location.precise"} <= sensitive
    separate = [r for r in d.reconsent if r.consent == "separate" and r.scope == "feature:customer_chat"]
    assert len(separate) == 1 and set(separate[0].items) == sensitive and separate[0].rule == "C4"
