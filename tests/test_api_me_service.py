"""The person's own use cases (``yinsi.services.me``) against the 微聊客 demo app and a real database.

The principals are built here as authentication would yield them; the HTTP tests (test_api_me*.py,
test_api_e2e*.py) start real sessions.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import test_rights_service as rights_tests
from tests.test_rights_service import POLICY_2020, TENANT, Env
from yinsi.auth.principals import PersonPrincipal
from yinsi.domain.rights import RequestType, State
from yinsi.services.consent import ConsentService
from yinsi.services.me import MeService, PersonError, policy_changes
from yinsi.services.publishing import publish

pytestmark = pytest.mark.usefixtures("isolated_env")

env = rights_tests.env  # the demo app with the 2022 policy published, on each database

ROOT = Path(__file__).resolve().parents[1]


def person(e: Env, agent: int | None = None, method: str = "sms") -> PersonPrincipal:
    return PersonPrincipal(TENANT, str(agent or e.agent), "agent", "s-test", method)


@pytest.fixture
def me(env: Env) -> Iterator[tuple[MeService, ConsentService]]:
    gate = ConsentService(env.url)
    rights = env.service()
    svc = MeService(env.url, consents=gate, rights=rights)
    try:
        yield svc, gate
    finally:
        svc.close()
        gate.close()
        rights.close()


def test_withdrawing_one_consent_stops_that_processing_in_the_gate_at_once(env: Env, me: tuple[MeService, ConsentService]
                                                                         ) -> None:
    svc, gate = me
    who = person(env)
    for scope in ("policy", "feature:marketing"):
        gate.record_consent(TENANT, who.subject, scope)
    assert gate.check(TENANT, who.subject, "collect", feature="marketing", items=["basic.name"]).allowed
    listed = {c["scope"]: c for c in svc.consents_of(who)}
    assert listed["feature:marketing"]["status"] == "active" and listed["feature:marketing"]["withdrawable"]
    assert listed["feature:marketing"]["name"].startswith("营销活动")
    assert {"item": "basic.name", "name": "姓名", "sensitive": False} in listed["feature:marketing"]["items"]
    assert listed["feature:marketing"]["purposes"] and listed["policy"]["kind_zh"] == "一般同意"

    out = svc.withdraw(who, "feature:marketing")
    decision = gate.check(TENANT, who.subject, "collect", feature="marketing", items=["basic.name"])
    assert not decision.allowed and any(r.rule == "C6" for r in decision.reasons)
    assert "营销活动" in out["statement"] and "撤回前" in out["statement"] and "C7" in out["statement"]
    assert {c["scope"]: c["status"] for c in svc.consents_of(who)}["feature:marketing"] == "withdrawn"
    assert listed["feature:marketing"]["channel"] == "app"
    assert {c["scope"]: c["channel"] for c in svc.consents_of(who)}["feature:marketing"] == "web"
    with pytest.raises(PersonError) as err:
        svc.withdraw(who, "feature:marketing")
    assert err.value.status == 409


def test_withdrawing_the_policy_says_what_continues_on_which_legal_basis(env: Env,
                                                                       me: tuple[MeService, ConsentService]) -> None:
    svc, gate = me
    who = person(env)
    for scope in ("policy", "feature:marketing", "feature:payment"):
        gate.record_consent(TENANT, who.subject, scope)
    out = svc.withdraw_all(who)
    assert sorted(out["withdrawn"]) == ["feature:marketing", "feature:payment", "policy"]
    decl = gate.policy(TENANT).decl
    stops = {e["element"] for e in out["effects"]["stops"]}
    continues = {e["element"]: e["basis"] for e in out["effects"]["continues"]}
    # derived from the declaration's legal bases: consent-based functions stop, the others go on
    assert stops >= {f"features[{f.id}]" for f in decl.features if f.legal_basis.value == "consent"}
    assert continues["features[register_login]"] == "statutory_duty"
    assert continues["features[delivery]"] == "contract"
    assert "recipients[authorities]" in continues and "recipients[payment_institutions]" in stops
    assert "为履行法定职责或法定义务所必需" in out["statement"] and "注册、登录" in out["statement"]
    assert not gate.check(TENANT, who.subject, "collect", feature="marketing", items=["basic.name"]).allowed
    assert gate.check(TENANT, who.subject, "collect", feature="register_login", items=["contact.mobile"]).allowed
    assert {c["status"] for c in svc.consents_of(who)} == {"withdrawn"}


def test_permissions_list_every_declared_permission_per_device(env: Env, me: tuple[MeService, ConsentService]) -> None:
    svc, gate = me
    who = person(env)
    gate.record_permission(TENANT, who.subject, "phone-1", "camera", "granted")
    gate.record_permission(TENANT, who.subject, "phone-1", "location", "denied")
    out = svc.permissions(who)
    declared = {p["permission"] for p in out["declared"]}
    decl = gate.policy(TENANT).decl
    assert declared == {p.permission for f in decl.features for p in f.permissions}
    [device] = out["devices"]
    rows = {p["permission"]: p for p in device["permissions"]}
    assert set(rows) == declared
    assert rows["camera"]["status"] == "granted" and rows["location"]["status"] == "denied"
    assert not rows["location"]["may_ask_now"]  # C8: not again within 48 hours
    assert rows["microphone"]["status"] == "never_asked" and rows["microphone"]["status_zh"] == "从未申请"
    assert rows["microphone"]["may_ask_now"]


def test_a_copy_request_is_verified_by_the_session_and_downloadable_by_its_subject_only(
        env: Env, me: tuple[MeService, ConsentService]) -> None:
    svc, _ = me
    a, b = person(env), person(env, env.other)
    view = svc.submit(a, "copy")
    assert view["state"] == "verified"
    assert "短信验证码" in view["history"][-1]["note"] and view["history"][-1]["by"] == "您本人"
    assert view["deadline"]["status"] in ("on_track", "due_soon") and view["deadline"]["explanation"]
    rid = view["id"]
    with pytest.raises(PersonError) as err:
        svc.request(b, rid)
    assert err.value.status == 404
    with pytest.raises(PersonError) as err:
        svc.package(b, rid)
    assert err.value.status == 404
    assert [r["id"] for r in svc.requests(b)] == []
    with pytest.raises(PersonError) as err:
        svc.package(a, rid)
    assert err.value.status == 409  # not done yet (R11)

    with env.service() as rights:  # staff work the request: the run, then its manual steps
        assert rights.run(TENANT, rid) is State.WAITING_MANUAL
        waiting = svc.request(a, rid)
        assert waiting["state"] == "waiting_manual" and any(not s["done"] for s in waiting["steps"])
        assert rights.complete_manual(TENANT, rid, "客服小王", "其余系统的副本已另行交付") is State.COMPLETED
    done = svc.request(a, rid)
    assert done["package_ready"] and "package" not in (done["result"] or {})
    assert any("12377" in r for r in done["escalation"])
    assert any(h["by"] == "工作人员" for h in done["history"])
    name, data = svc.package(a, rid)
    assert name.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        package = json.loads(z.read("personal_information.json"))
    assert package["meta"]["request"] == rid and package["data"]
    assert str(env.agent_row()["phone"]) in {str(d["value"]) for d in package["data"]}


def test_requests_of_a_person_not_signed_in_through_a_verified_channel_wait_for_verification(
        env: Env, me: tuple[MeService, ConsentService]) -> None:
    svc, _ = me
    who = PersonPrincipal(TENANT, str(env.agent), "agent", "s-test", "unknown")
    assert svc.submit(who, "access")["state"] == "unverified"
    with pytest.raises(PersonError) as err:
        svc.submit(who, "deceased", details={"action": "access", "relation": "配偶"})
    assert err.value.code == "relative_request_needs_staff"
    with pytest.raises(PersonError) as err:
        svc.submit(who, "nonsense")
    assert err.value.code == "unknown_request_type"


@pytest.mark.policy(POLICY_2020)
def test_cancellation_shows_prerequisites_and_what_is_kept_before_confirming(
        env: Env, me: tuple[MeService, ConsentService]) -> None:
    svc, _ = me
    who = person(env)
    terms = svc.cancellation(who)
    assert any("解除绑定" in p or "解绑" in p for p in terms["prerequisites"])
    assert terms["unmet"]  # the agent still has property bindings
    assert any("电子商务法" in k["basis"] for k in terms["kept"])
    assert "不可撤回" in terms["irreversible"]
    rid = svc.submit(who, RequestType.CANCEL_ACCOUNT)["id"]
    with pytest.raises(PersonError) as err:
        svc.confirm(who, rid)
    assert err.value.status == 409 and err.value.rule == "R9"
    with pytest.raises(PersonError):
        svc.confirm(person(env, env.other), rid)
    assert svc.withdraw_request(who, rid)["state"] == "withdrawn"


def test_policy_changes_in_plain_chinese_major_first(migrated_url: str) -> None:
    for p in ("weiliaoke-2020.yaml", "weiliaoke-2022.yaml"):
        publish(ROOT / "policies" / p, migrated_url)
    out = policy_changes(TENANT, "2020-06-07", "2022-08-04", migrated_url)
    assert out["major"] and out["criteria"] == [1, 2, 3, 4, 5]
    majors = [g["major"] for g in out["groups"]]
    assert majors == sorted(majors, reverse=True)  # every major group before any other
    topics = {g["topic"]: g for g in out["groups"]}
    controller = "个人信息处理者由「瑞庭网络技术（上海）有限公司」变更为「上海网邻信息技术有限公司」"
    assert controller in topics["个人信息处理者"]["changes"]
    bracelet = next(g for t, g in topics.items() if "手环" in t)
    assert bracelet["changes"][0].startswith("新增扩展业务功能「使用微聊客手环」")
    assert "答复期限由 7 天改为 15 天" in topics["答复期限"]["changes"]
    assert "重大变更" in out["summary"] and out["reconsent"]
    assert not any("version" in s for g in out["groups"] for s in g["changes"])
    with pytest.raises(PersonError) as err:
        policy_changes(TENANT, "2020-06-07", "1999", migrated_url)
    assert err.value.status == 404


@pytest.mark.policy(POLICY_2020)
def test_consents_given_under_an_older_version_are_marked_for_renewal(env: Env,
                                                                     me: tuple[MeService, ConsentService]) -> None:
    svc, gate = me
    who = person(env)
    for scope in ("policy", "feature:marketing"):
        gate.record_consent(TENANT, who.subject, scope)
    assert not any(c["needs_renewal"] for c in svc.consents_of(who))
    publish(ROOT / "policies" / "weiliaoke-2022.yaml", env.url)  # a major change: marketing gains items
    gate.reload_policies()
    listed = {c["scope"]: c for c in svc.consents_of(who)}
    assert listed["feature:marketing"]["needs_renewal"] and listed["feature:marketing"]["policy"] == "2020-06-07"
    assert listed["policy"]["needs_renewal"]  # the policy consent no longer covers the changed functions
    renewals = {r["scope"]: r for r in svc.renewals(who)["renewals"]}
    assert set(renewals) == {"policy", "feature:marketing"}
    assert any("营销活动" in r["reason"] and r["rule"] == "C5" for r in renewals["feature:marketing"]["reasons"])
    assert any("个人信息处理者" in r["reason"] for r in renewals["policy"]["reasons"])
    assert not gate.check(TENANT, who.subject, "collect", feature="marketing", items=["basic.name"]).allowed
    for scope in ("policy", "feature:marketing"):
        svc.give(who, scope)
    assert not any(c["needs_renewal"] for c in svc.consents_of(who)) and not svc.renewals(who)["renewals"]
    assert gate.check(TENANT, who.subject, "collect", feature="marketing", items=["basic.name"]).allowed


def test_withdrawal_effects_of_single_scopes_follow_the_legal_bases() -> None:
    from yinsi.declarations import load_declaration
    from yinsi.domain.withdrawal import withdrawal_effects

    decl = load_declaration(ROOT / "policies" / "weiliaoke-2022.yaml")
    pay = withdrawal_effects(decl, ["recipient:payment_institutions"])
    assert [e.element for e in pay.stops] == ["recipients[payment_institutions]"] and not pay.continues
    delivery = withdrawal_effects(decl, ["feature:delivery"])  # on contract: a withdrawal does not stop it
    assert not delivery.stops and [e.basis.value for e in delivery.continues] == ["contract"]
    assert "继续" in delivery.statement() and "为订立、履行合同" in delivery.statement()
    item = withdrawal_effects(decl, ["item:bind_property:location.precise"])
    assert [e.element for e in item.stops] == ["features[bind_property].collections[location.precise]"]
    assert "C7" in item.statement() and not item.everything
