"""The gate on the seed declarations, as pure domain tests: no database, a fixed clock."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.helpers import POLICIES, stored_subject
from yinsi.declarations import load_declaration
from yinsi.domain.changes import diff_declarations
from yinsi.domain.consent import (
    POLICY,
    ConsentEvent,
    ConsentRejected,
    EventType,
    PermissionEvent,
    PermissionEventType,
    RestrictionEvent,
    RestrictionEventType,
    SubjectState,
    apply_consent,
    apply_permission,
    apply_restriction,
    birth_date_from_id_number,
    check_restriction_scope,
    declared_disclosures,
    replay,
    validate_event,
)
from yinsi.domain.gate import CompiledPolicy, Request, decide, may_ask_permission, outdated_scopes
from yinsi.domain.policy import Declaration
from yinsi.domain.taxonomy import Action, ConsentKind, LegalBasis

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
_ids = itertools.count(1)


def decl(name: str) -> Declaration:
    return load_declaration(POLICIES / f"{name}.yaml")


def give(state: SubjectState, d: Declaration, scope: str, event: EventType = EventType.GIVEN, *,
         kind: ConsentKind | None = None, label: str | None = None, at: datetime = NOW,
         disclosures: dict[str, str] | None = None, actor: str | None = None) -> None:
    """Validate an event against the declaration, as the service does, then apply it."""
    from yinsi.domain.consent import required_consent_kind

    ev = ConsentEvent(
        record_id=str(next(_ids)), tenant=d.tenant, subject="s", scope=scope,
        kind=kind or required_consent_kind(scope), event=event, policy_label=label or d.version.label,
        shown_hash="0" * 64, event_time=at, actor=actor,
        disclosures={**declared_disclosures(d, scope), **(disclosures or {})},
    )
    validate_event(d, ev)
    apply_consent(state, ev, next(_ids))


def grant(state: SubjectState, permission: str, device: str = "d1",
          event: PermissionEventType = PermissionEventType.GRANTED, at: datetime = NOW) -> None:
    apply_permission(state, PermissionEvent("t", "s", device, permission, event, at), next(_ids))


def ask(policy: CompiledPolicy, state: SubjectState, action: str, *, at: datetime = NOW, **kw: object):  # type: ignore[no-untyped-def]
    items = tuple(kw.pop("items", ()))  # type: ignore[arg-type]
    return decide(policy, state, Request(policy.decl.tenant, "s", Action(action), items=items, **kw), at)  # type: ignore[arg-type]


SENSITIVE_DIALOG = {"necessity": "向客户发送楼盘位置", "impact": "位置泄露可能暴露行踪"}


# --- 微聊客 2022: chat with location sharing ---------------------------------------------------------

def test_weiliaoke_location_in_chat_needs_policy_separate_consent_and_the_permission() -> None:
    d = decl("weiliaoke-2022")
    policy, st = CompiledPolicy(d), SubjectState()
    req = {"feature": "customer_chat", "items": ["location.precise"], "device": "d1"}
    first = ask(policy, st, "collect", **req)
    assert not first.allowed
    assert {(m.kind, m.scope, m.rule) for m in first.missing} == {
        ("consent", POLICY, "C2"),
        ("consent", "item:customer_chat:location.precise", "C4"),
        ("permission", "location", "P1"),
    }
    give(st, d, POLICY)
    give(st, d, "item:customer_chat:location.precise", disclosures=SENSITIVE_DIALOG)
    grant(st, "location")
    ok = ask(policy, st, "collect", **req)
    assert ok.allowed and ok.basis is LegalBasis.CONSENT
    assert ok.reasons[0].rule == "C1"


def test_withdrawing_location_consent_stops_location_but_keeps_chat_text_working() -> None:
    d = decl("weiliaoke-2022")
    policy, st = CompiledPolicy(d), SubjectState()
    give(st, d, POLICY)
    give(st, d, "item:customer_chat:location.precise", disclosures=SENSITIVE_DIALOG)
    give(st, d, "item:customer_chat:comms.chat_content", disclosures=SENSITIVE_DIALOG)
    grant(st, "location")
    give(st, d, "item:customer_chat:location.precise", EventType.WITHDRAWN, at=NOW + timedelta(hours=1))
    later = NOW + timedelta(hours=2)
    loc = ask(policy, st, "collect", feature="customer_chat", items=["location.precise"], device="d1", at=later)
    assert not loc.allowed
    assert any(r.rule == "C6" for r in loc.reasons)
    chat = ask(policy, st, "use", feature="customer_chat", items=["comms.chat_content"], at=later)
    assert chat.allowed


def test_ticking_the_policy_is_not_separate_consent() -> None:
    d = decl("weiliaoke-2022")
    with pytest.raises(ConsentRejected, match="单独同意"):
        give(SubjectState(), d, "item:customer_chat:location.precise", kind=ConsentKind.GENERAL,
             disclosures=SENSITIVE_DIALOG)


def test_basic_function_with_a_statutory_basis_needs_no_consent() -> None:
    policy = CompiledPolicy(decl("weiliaoke-2022"))
    d = ask(policy, SubjectState(), "collect", feature="register_login", items=["contact.mobile"])
    assert d.allowed and d.basis is LegalBasis.STATUTORY_DUTY


# --- 58同城精选版: face verification -------------------------------------------------------------------

def test_58_face_verification_needs_separate_consent_with_necessity_and_impact_shown() -> None:
    d = decl("58jingxuan-2021")
    policy, st = CompiledPolicy(d), SubjectState()
    give(st, d, POLICY)
    refused = ask(policy, st, "collect", feature="identity_verification", items=["biometric.face"])
    assert not refused.allowed
    assert ("item:identity_verification:biometric.face", "C4") in {(m.scope, m.rule) for m in refused.missing}
    # the seed states no impact for the face: a dialog that does not show it cannot give valid consent
    with pytest.raises(ConsentRejected) as exc:
        give(st, d, "item:identity_verification:biometric.face", disclosures={"necessity": "核验本人"})
    assert exc.value.missing == ["impact"]
    give(st, d, "item:identity_verification:biometric.face",
         disclosures={"necessity": "核验本人", "impact": "人脸信息泄露可能被冒用"})
    assert ask(policy, st, "collect", feature="identity_verification", items=["biometric.face"]).allowed


# --- 客户通: sharing an order with a merchant -------------------------------------------------------------

def test_kehutong_sharing_order_with_merchant_needs_pipl23_disclosures_and_separate_consent() -> None:
    d = decl("kehutong-2021")
    merchants = d.recipient("merchants")
    assert merchants is not None and merchants.items
    policy, st = CompiledPolicy(d), SubjectState()
    give(st, d, POLICY)
    item = merchants.items[0]
    first = ask(policy, st, "provide", recipient="merchants", items=[item])
    assert not first.allowed
    assert ("recipient:merchants", "V1") in {(m.scope, m.rule) for m in first.missing}
    # the policy names no merchant contact (V1 finding): the dialog must show one
    with pytest.raises(ConsentRejected) as exc:
        give(st, d, "recipient:merchants")
    assert "recipient_contact" in exc.value.missing
    give(st, d, "recipient:merchants", disclosures={"recipient_name": "某物业服务商家", "recipient_contact": "0755-12345678"})
    assert ask(policy, st, "provide", recipient="merchants", items=[item]).allowed


def test_undeclared_recipient_item_or_purpose_is_refused() -> None:
    d = decl("kehutong-2021")
    policy, st = CompiledPolicy(d), SubjectState()
    give(st, d, POLICY)
    merchants = d.recipient("merchants")
    assert merchants is not None
    other = next(i for i in d.collected_items() if i not in merchants.items)
    assert ask(policy, st, "provide", recipient="merchants", items=[other]).reasons[0].rule == "V1"
    assert ask(policy, st, "provide", recipient="data_broker", items=[merchants.items[0]]).reasons[0].rule == "V1"
    assert ask(policy, st, "use", purpose="精准广告投放", items=["contact.mobile"]).reasons[0].rule == "N1"
    f = d.features[0]
    undeclared_item = next(i for i in ("biometric.voiceprint", "health.record") if i not in f.item_ids())
    assert ask(policy, st, "collect", feature=f.id, items=[undeclared_item]).reasons[0].rule == "N1"


# --- 吉客安家: a 13-year-old --------------------------------------------------------------------------------

def test_jikeanjia_thirteen_year_old_needs_guardian_consent_and_separate_consent_for_everything() -> None:
    d = decl("jikeanjia-2020")
    f = next(f for f in d.features if f.legal_basis is LegalBasis.CONSENT and any(
        not c.item.startswith(("identity.", "biometric.", "location.", "online.browse")) for c in f.collections))
    item = next(c.item for c in f.collections if not c.item.startswith(("identity.", "biometric.", "location.")))
    policy, st = CompiledPolicy(d), SubjectState(birth_date=date(2012, 6, 1))  # 13 years old on NOW
    give(st, d, POLICY)
    give(st, d, f"feature:{f.id}")
    adult_view = decide(policy, SubjectState(consents=dict(st.consents)),
                        Request(d.tenant, "s", Action.COLLECT, f.id, items=(item,)), NOW)
    child = ask(policy, st, "collect", feature=f.id, items=[item])
    assert not child.allowed
    rules = {(m.kind, m.rule) for m in child.missing}
    assert ("guardian", "M1") in rules
    assert ("consent", "C4") in rules  # every PI of an under-14 is sensitive
    with pytest.raises(ConsentRejected, match="监护人"):
        give(st, d, "guardian", kind=ConsentKind.GUARDIAN)  # who consented must be recorded
    give(st, d, "guardian", kind=ConsentKind.GUARDIAN, actor="parent-1")
    give(st, d, f"item:{f.id}:{item}", kind=ConsentKind.GUARDIAN, actor="parent-1",
         disclosures={"necessity": "提供服务所需", "impact": "未成年人信息泄露风险"})
    assert ask(policy, st, "collect", feature=f.id, items=[item]).allowed
    assert adult_view.allowed or all(m.rule != "M1" for m in adult_view.missing)


def test_age_comes_from_the_id_number_checksum_verified() -> None:
    assert birth_date_from_id_number("110105201303030033") == date(2013, 3, 3)
    with pytest.raises(ValueError, match="校验"):
        birth_date_from_id_number("110105201303030034")


# --- extended functions, C7 / C9 -----------------------------------------------------------------------------

def test_refusing_an_extended_function_never_blocks_a_basic_one() -> None:
    d = decl("weiliaoke-2022")
    ext = next(f for f in d.features if f.kind.value == "extended" and f.legal_basis is LegalBasis.CONSENT
               and any(not c.item.startswith(("biometric", "comms", "location", "property", "identity"))
                       for c in f.collections))
    basic = next(f for f in d.features if f.kind.value == "basic" and f.legal_basis is LegalBasis.CONSENT)
    basic_item = next(c.item for c in basic.collections)
    policy, st = CompiledPolicy(d), SubjectState()
    give(st, d, POLICY)
    before = ask(policy, st, "collect", feature=basic.id, items=[basic_item])
    give(st, d, f"feature:{ext.id}", EventType.REFUSED)
    after = ask(policy, st, "collect", feature=basic.id, items=[basic_item])
    assert before == after
    ext_item = next(c.item for c in ext.collections)
    refused = ask(policy, st, "collect", feature=ext.id, items=[ext_item])
    assert not refused.allowed and any(r.rule == "C7" for r in refused.reasons)


def test_a_function_whose_only_purpose_is_personalisation_needs_its_own_consent_c9() -> None:
    d = decl("jikeanjia-2020")
    policy, st = CompiledPolicy(d), SubjectState()
    give(st, d, POLICY)
    f = d.feature("usage_analytics")
    assert f is not None and f.collections
    got = ask(policy, st, "use", feature=f.id, items=[f.collections[0].item])
    if f.kind.value == "basic":
        assert ("feature:usage_analytics", "C9") in {(m.scope, m.rule) for m in got.missing}
    else:
        assert ("feature:usage_analytics", "C7") in {(m.scope, m.rule) for m in got.missing}


# --- policy change, C5 ----------------------------------------------------------------------------------------

def test_acceptance_of_the_2020_weiliaoke_policy_is_outdated_by_the_2022_version() -> None:
    old, new = decl("weiliaoke-2020"), decl("weiliaoke-2022")
    policy = CompiledPolicy(new, {old.version.label: outdated_scopes(diff_declarations(old, new).reconsent)})
    st = SubjectState()
    give(st, old, POLICY)  # accepted in 2020
    got = ask(policy, st, "collect", feature="customer_chat", items=["comms.chat_content"])
    assert not got.allowed
    assert ("reconsent", POLICY, "C5") in {(m.kind, m.scope, m.rule) for m in got.missing}
    give(st, new, POLICY)
    again = ask(policy, st, "collect", feature="customer_chat", items=["comms.chat_content"])
    assert ("reconsent", POLICY, "C5") not in {(m.kind, m.scope, m.rule) for m in again.missing}


def test_a_minor_change_does_not_invalidate_unaffected_consents() -> None:
    d = decl("weiliaoke-2022")
    edited = d.model_copy(update={"version": d.version.model_copy(update={"label": "2022-09-01"})})
    policy = CompiledPolicy(edited, {d.version.label: outdated_scopes(diff_declarations(d, edited).reconsent)})
    st = SubjectState()
    give(st, d, POLICY)
    give(st, d, "item:customer_chat:comms.chat_content", disclosures=SENSITIVE_DIALOG)
    assert ask(policy, st, "use", feature="customer_chat", items=["comms.chat_content"]).allowed


# --- cross-border, permissions --------------------------------------------------------------------------------

def test_transfer_abroad_is_refused_when_the_policy_declares_none() -> None:
    d = decl("weiliaoke-2022")
    assert d.storage.cross_border in ("none", "possible_with_consent", "unstated")
    r = d.recipients[0]
    got = ask(CompiledPolicy(d), SubjectState(), "transfer_abroad", recipient=r.id, items=list(r.items[:1]) or
              ["contact.mobile"])
    assert not got.allowed and got.reasons[0].rule in ("X1", "V1")


def test_after_a_permission_refusal_the_app_may_not_ask_again_for_48_hours() -> None:
    st = SubjectState()
    grant(st, "location", event=PermissionEventType.DENIED, at=NOW)
    soon = may_ask_permission(st, "d1", "location", NOW + timedelta(hours=47))
    assert not soon.allowed and soon.rule == "C8"
    assert may_ask_permission(st, "d1", "location", NOW + timedelta(hours=48, minutes=1)).allowed
    assert may_ask_permission(st, "d2", "location", NOW + timedelta(hours=1)).allowed  # another device


# --- restriction of processing (限制处理, PIPL 44) ---------------------------------------------------------

def restrict(state: SubjectState, scope: str, event: RestrictionEventType = RestrictionEventType.PLACED,
             at: datetime = NOW) -> None:
    apply_restriction(state.restrictions, RestrictionEvent("t", "s", scope, event, at))


def test_a_restriction_of_all_processing_refuses_consent_and_contract_bases_but_not_a_statutory_duty() -> None:
    d = decl("weiliaoke-2022")
    policy, st = CompiledPolicy(d), SubjectState()
    give(st, d, POLICY)
    give(st, d, "feature:delivery")
    assert ask(policy, st, "use", feature="delivery", items=["transaction.order"]).allowed
    restrict(st, "all", at=NOW + timedelta(hours=1))
    later = NOW + timedelta(hours=2)
    refused = ask(policy, st, "use", feature="delivery", items=["transaction.order"], at=later)  # contract basis
    assert not refused.allowed and [r.rule for r in refused.reasons] == ["N4"]
    assert "限制全部个人信息处理" in refused.reasons[0].message and "2026-03-02 19:00（北京时间）" in refused.reasons[0].message
    # the real-name duty of registration (statutory_duty): a law requires it, a restriction cannot stop it
    duty = ask(policy, st, "collect", feature="register_login", items=["contact.mobile"], at=later)
    assert duty.allowed and duty.basis is LegalBasis.STATUTORY_DUTY


def test_a_restriction_of_one_function_leaves_the_others_and_lifting_it_restores_the_decision() -> None:
    d = decl("weiliaoke-2022")
    policy, st = CompiledPolicy(d), SubjectState()
    give(st, d, POLICY)
    give(st, d, "feature:marketing")
    give(st, d, "feature:delivery")
    restrict(st, "feature:marketing")
    marketing = ask(policy, st, "use", feature="marketing", items=["contact.mobile"])
    assert not marketing.allowed and marketing.reasons[0].rule == "N4" and "营销" in marketing.reasons[0].message
    assert ask(policy, st, "use", feature="delivery", items=["transaction.order"]).allowed
    restrict(st, "feature:marketing", RestrictionEventType.LIFTED, at=NOW + timedelta(days=1))
    assert ask(policy, st, "use", feature="marketing", items=["contact.mobile"]).allowed


def test_restriction_replay_keeps_the_first_placement_and_scopes_are_checked() -> None:
    events = [(1, RestrictionEvent("t", "s", "all", RestrictionEventType.PLACED, NOW)),
              (2, RestrictionEvent("t", "s", "all", RestrictionEventType.PLACED, NOW + timedelta(days=1))),
              (3, RestrictionEvent("t", "s", "feature:marketing", RestrictionEventType.PLACED, NOW)),
              (4, RestrictionEvent("t", "s", "feature:marketing", RestrictionEventType.LIFTED, NOW))]
    assert replay([], restrictions=reversed(events)).restrictions == {"all": NOW}
    d = decl("weiliaoke-2022")
    check_restriction_scope(d, "feature:marketing")
    for bad in ("feature:nope", "item:marketing:contact.mobile", "everything"):
        with pytest.raises(ConsentRejected):
            check_restriction_scope(d, bad)


# --- purpose limitation and processing without consent (PIPL 6, 13) --------------------------------------

def test_a_named_function_allows_only_its_declared_purposes() -> None:
    d = decl("weiliaoke-2022")
    policy, st = CompiledPolicy(d), SubjectState()
    ads = ask(policy, st, "use", feature="security", purpose="精准广告投放", items=["device.identifiers"])
    assert not ads.allowed and ads.basis is None
    assert [(r.rule, r.element) for r in ads.reasons] == [("N1", "features[security].purposes")]
    assert "精准广告投放" in ads.reasons[0].message and "安全" in ads.reasons[0].message
    declared = ask(policy, st, "use", feature="security", purpose="依法采取必要的记录、审计、分析、处置措施",
                   items=["device.identifiers"])
    assert declared.allowed and declared.basis is LegalBasis.STATUTORY_DUTY
    # without a purpose the function's purposes apply; a purpose alone still finds its function
    assert ask(policy, st, "use", feature="security", items=["device.identifiers"]).allowed
    assert ask(policy, st, "use", purpose="依法采取必要的记录、审计、分析、处置措施", items=["device.identifiers"]).allowed
    # another function's purpose is not this function's
    other = ask(policy, st, "use", feature="security", purpose="注册微聊客账户", items=["device.identifiers"])
    assert not other.allowed and other.reasons[0].rule == "N1"


def test_processing_without_consent_names_a_declared_exception() -> None:
    d = decl("weiliaoke-2020")  # lists the cases of collection without consent
    policy, st = CompiledPolicy(d), SubjectState()
    q = {"feature": "user_service", "items": ["contact.mobile"]}
    assert not ask(policy, st, "use", **q).allowed  # consent is this function's basis: none given
    duty = ask(policy, st, "use", exception="statutory_duty", **q)
    assert duty.allowed and duty.basis is LegalBasis.STATUTORY_DUTY and not duty.missing
    assert duty.reasons[0].rule == "C1" and duty.reasons[0].element.startswith("consent_exceptions.collection[")
    assert "国家安全" in duty.reasons[0].message
    public = ask(policy, st, "use", exception="public_info", **q)
    assert public.allowed and public.basis is LegalBasis.PUBLIC_INFO
    # an exception the policy does not state, and a code that is no exception, are refused
    news = ask(policy, st, "use", exception="news_reporting", **q)
    assert not news.allowed and [(r.rule, r.element) for r in news.reasons] == [("C1", "consent_exceptions")]
    for bad in ("contract", "consent", "because"):
        refused = ask(policy, st, "use", exception=bad, **q)
        assert not refused.allowed and refused.reasons[0].rule == "C1" and "无效" in refused.reasons[0].message
    # 2022 lists no case of collection without consent, only cases of sharing
    d22 = decl("weiliaoke-2022")
    p22 = CompiledPolicy(d22)
    assert not ask(p22, st, "use", exception="statutory_duty", **q).allowed
    # the exception does not widen what the function declares, nor its purposes
    assert ask(policy, st, "use", exception="statutory_duty", feature="user_service",
               items=["location.precise"]).reasons[0].element == "features[user_service].collections"
    assert not ask(policy, st, "use", exception="statutory_duty", purpose="精准广告投放", **q).allowed


def test_a_restriction_stops_an_exception_a_law_does_not_impose() -> None:
    d = decl("weiliaoke-2020")
    policy, st = CompiledPolicy(d), SubjectState()
    restrict(st, "all")
    q = {"feature": "user_service", "items": ["contact.mobile"]}
    assert ask(policy, st, "use", exception="statutory_duty", **q).allowed  # PIPL 44: a law requires it
    public = ask(policy, st, "use", exception="public_info", **q)
    assert not public.allowed and public.reasons[0].rule == "N4"


def test_the_gate_command_refuses_an_undeclared_purpose_and_records_the_exception(migrated_url: str) -> None:
    import json

    from typer.testing import CliRunner

    from yinsi.cli.main import app
    from yinsi.storage.consent_tables import ProcessingRecord
    from yinsi.storage.engine import make_engine

    r = CliRunner()
    base = ["--url", migrated_url]
    assert r.invoke(app, ["policy", "publish", str(POLICIES / "weiliaoke-2020.yaml"), *base]).exit_code == 0
    ads = r.invoke(app, ["gate", "check", "weiliaoke", "u9", "--action", "use", "--feature", "security", "--purpose",
                         "精准广告投放", "--item", "device.identifiers", "--json", *base])
    assert ads.exit_code == 1, ads.output
    assert [x["rule"] for x in json.loads(ads.output)["reasons"]] == ["N1"]
    duty = r.invoke(app, ["gate", "check", "weiliaoke", "u9", "--action", "use", "--feature", "user_service",
                          "--item", "contact.mobile", "--exception", "statutory_duty", "--json", *base])
    assert duty.exit_code == 0, duty.output
    assert json.loads(duty.output)["basis"] == "statutory_duty"
    news = r.invoke(app, ["gate", "check", "weiliaoke", "u9", "--action", "use", "--feature", "user_service",
                          "--item", "contact.mobile", "--exception", "news_reporting", *base])
    assert news.exit_code == 1 and "C1" in news.output
    engine = make_engine(migrated_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(ProcessingRecord.__table__.select()  # type: ignore[attr-defined]
                                .where(ProcessingRecord.subject_id == stored_subject(migrated_url, "weiliaoke", "u9"))
                                .order_by(ProcessingRecord.id)).all()
    finally:
        engine.dispose()
    assert [(row.allowed, row.basis) for row in rows] == [(False, None), (True, "statutory_duty"), (False, None)]
    assert "consent_exceptions.collection" in rows[1].reasons
