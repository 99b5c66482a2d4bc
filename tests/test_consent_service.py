"""The ledger and the gate through the service, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from tests.helpers import POLICIES
from yinsi.cli.main import app
from yinsi.client import ProcessingRefused, Yinsi
from yinsi.domain.consent import ConsentRejected
from yinsi.services.consent import ConsentService, NoPublishedPolicy
from yinsi.services.publishing import publish

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DIALOG = {"necessity": "向客户发送楼盘位置", "impact": "位置泄露可能暴露行踪"}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def svc(migrated_url: str) -> Iterator[ConsentService]:
    for name in ("weiliaoke-2022", "kehutong-2021"):
        publish(POLICIES / f"{name}.yaml", url=migrated_url)
    s = ConsentService(migrated_url, clock=Clock())
    yield s
    s.close()


def chat_location(s: ConsentService, subject: str = "u1"):  # type: ignore[no-untyped-def]
    return s.check("weiliaoke", subject, "collect", feature="customer_chat", items=["location.precise"], device="d1")


def test_consent_permission_withdrawal_and_report(svc: ConsentService) -> None:
    assert not chat_location(svc).allowed
    svc.record_consent("weiliaoke", "u1", "policy")
    svc.record_consent("weiliaoke", "u1", "item:customer_chat:location.precise", disclosures=DIALOG)
    svc.record_permission("weiliaoke", "u1", "d1", "location", "granted", feature="customer_chat")
    assert chat_location(svc).allowed  # the cache was invalidated by each new event
    svc.record_consent("weiliaoke", "u1", "item:customer_chat:location.precise", "withdrawn")
    after = chat_location(svc)
    assert not after.allowed and any(r.rule == "C6" for r in after.reasons)
    rep = svc.report("weiliaoke", "u1")
    assert [c["item"] for c in rep["collected"]] == ["location.precise"]
    assert rep["collected"][0]["times"] == 1 and rep["refused_requests"] == 2
    scopes = {c["scope"]: c["event"] for c in rep["consents"]}
    assert scopes["item:customer_chat:location.precise"] == "withdrawn"


def test_shared_list_records_provision_to_a_merchant(svc: ConsentService) -> None:
    decl = svc.policy("kehutong").decl
    merchants = decl.recipient("merchants")
    assert merchants is not None
    svc.record_consent("kehutong", "c1", "policy")
    svc.record_consent("kehutong", "c1", "recipient:merchants",
                       disclosures={"recipient_name": "某商家", "recipient_contact": "0755-12345678"})
    d = svc.check("kehutong", "c1", "provide", recipient="merchants", items=merchants.items[:1])
    assert d.allowed
    shared = svc.report("kehutong", "c1")["shared"]
    assert [(s["recipient"], s["item"]) for s in shared] == [("merchants", merchants.items[0])]


def test_separate_consent_without_required_disclosures_is_rejected_and_not_stored(svc: ConsentService) -> None:
    with pytest.raises(ConsentRejected) as exc:
        svc.record_consent("kehutong", "c2", "recipient:merchants")
    assert "recipient_contact" in exc.value.missing
    assert "接收方联系方式" in str(exc.value)
    assert svc.state("kehutong", "c2").consents == {}


def test_rebuilt_projection_equals_the_incremental_one(svc: ConsentService) -> None:
    for subject in ("a", "b", "c"):
        svc.record_consent("weiliaoke", subject, "policy")
        svc.record_consent("weiliaoke", subject, "item:customer_chat:location.precise", disclosures=DIALOG)
        svc.record_permission("weiliaoke", subject, "d1", "location", "denied")
        svc.record_permission("weiliaoke", subject, "d1", "location", "granted")
    svc.record_consent("weiliaoke", "b", "item:customer_chat:location.precise", "withdrawn")
    incremental = svc.projection("weiliaoke")
    assert len(incremental) == 3 * 2 + 3
    assert svc.rebuild("weiliaoke") == 3
    assert svc.projection("weiliaoke") == incremental


def test_a_restriction_persists_survives_a_rebuild_and_is_lifted(svc: ConsentService, migrated_url: str) -> None:
    svc.record_consent("weiliaoke", "u1", "policy")
    svc.record_consent("weiliaoke", "u1", "feature:marketing")
    marketing = {"feature": "marketing", "items": ["contact.mobile"]}
    assert svc.check("weiliaoke", "u1", "use", **marketing).allowed  # cached and memoised now
    assert svc.restrict("weiliaoke", "u1", ["feature:marketing"], request_ref="r-1", actor="客服小王") == [
        "feature:marketing"]
    assert svc.restrict("weiliaoke", "u1", ["feature:marketing"]) == []  # already in force: no second event
    refused = svc.check("weiliaoke", "u1", "use", **marketing)
    assert not refused.allowed and refused.reasons[0].rule == "N4"  # the cache followed the new fact
    with pytest.raises(ConsentRejected, match="未在隐私政策中声明"):
        svc.restrict("weiliaoke", "u1", ["feature:no_such_function"])
    # another process (a fresh service) reads the projection; a rebuild gives the same one
    with ConsentService(migrated_url, clock=Clock()) as other:
        assert not other.check("weiliaoke", "u1", "use", **marketing).allowed
        assert other.state("kehutong", "u1").restrictions == {}  # tenants stay apart
        before = other.projection("weiliaoke")
        assert ("r", "u1", "feature:marketing") in before
        other.rebuild("weiliaoke")
        assert other.projection("weiliaoke") == before
        assert not other.check("weiliaoke", "u1", "use", **marketing).allowed
    assert svc.report("weiliaoke", "u1")["restrictions"][0]["scope"] == "feature:marketing"
    assert svc.lift_restriction("weiliaoke", "u1", ["feature:marketing"], actor="客服小王", reason="本人申请解除") == [
        "feature:marketing"]
    assert svc.check("weiliaoke", "u1", "use", **marketing).allowed
    assert ("r", "u1", "feature:marketing") not in svc.projection("weiliaoke")


def test_a_large_batch_of_new_subjects_is_ingested(migrated_url: str) -> None:
    # Each event's audit entry needs its subject's pseudonym, read through the key ring's own connection.
    # Read inside the batch's write transaction, that waited on SQLite for the very transaction that
    # holds the lock once its page cache spilled ("database is locked").
    publish(POLICIES / "weiliaoke-2022.yaml", url=migrated_url)
    with ConsentService(migrated_url, clock=Clock()) as s:
        template = s.make_event("weiliaoke", "x", "policy")
        events = [dataclasses.replace(template, subject=f"bulk-{i}", record_id=f"r-{i}") for i in range(3000)]
        ids = s.append_consents(events)
        assert len(ids) == 3000 == len(set(ids))
        assert s.state("weiliaoke", "bulk-2999").consents["policy"].status.value == "active"


class Ticker:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_withdrawal_in_another_process_reaches_a_cached_gate_within_the_state_ttl(migrated_url: str) -> None:
    publish(POLICIES / "weiliaoke-2022.yaml", url=migrated_url)
    ticker = Ticker()
    marketing = {"feature": "marketing", "items": ["contact.mobile"]}
    with ConsentService(migrated_url, clock=Clock(), state_ttl=1.0, ticker=ticker) as app_worker, \
            ConsentService(migrated_url, clock=Clock()) as privacy_center:
        privacy_center.record_consent("weiliaoke", "u1", "policy")
        privacy_center.record_consent("weiliaoke", "u1", "feature:marketing")
        assert app_worker.check("weiliaoke", "u1", "use", **marketing).allowed  # cached and memoised at t=0
        privacy_center.record_consent("weiliaoke", "u1", "feature:marketing", "withdrawn")
        ticker.t = 0.5
        assert app_worker.check("weiliaoke", "u1", "use", **marketing).allowed  # within the bound: not re-read
        ticker.t = 1.0
        after = app_worker.check("weiliaoke", "u1", "use", **marketing)
        assert not after.allowed and any(r.rule == "C6" for r in after.reasons)
        privacy_center.restrict("weiliaoke", "u1", ["all"])
        ticker.t = 2.5
        assert [r.rule for r in app_worker.check("weiliaoke", "u1", "collect", feature="register_login",
                                                 items=["contact.mobile"]).reasons] == ["C1"]  # statutory duty
        assert app_worker.check("weiliaoke", "u1", "use", feature="delivery",
                                items=["transaction.order"]).reasons[0].rule == "N4"


def test_a_version_published_by_another_process_is_used_within_the_policy_ttl(migrated_url: str) -> None:
    from yinsi.declarations import load_declaration

    publish(POLICIES / "weiliaoke-2020.yaml", url=migrated_url)
    ticker = Ticker()
    with ConsentService(migrated_url, clock=Clock(), state_ttl=1.0, policy_ttl=10.0, ticker=ticker) as app_worker:
        register = {"feature": "register_login", "items": ["contact.mobile"]}
        old = app_worker.check("weiliaoke", "u1", "collect", **register)
        publish(POLICIES / "weiliaoke-2022.yaml", url=migrated_url)  # by `yinsi policy publish`, elsewhere
        ticker.t = 5.0
        assert app_worker.check("weiliaoke", "u1", "collect", **register).policy_label == old.policy_label
        ticker.t = 10.0
        new = app_worker.check("weiliaoke", "u1", "collect", **register)
    assert new.policy_label == load_declaration(POLICIES / "weiliaoke-2022.yaml").version.label != old.policy_label


def test_the_state_ttl_comes_from_the_environment(migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YINSI_GATE_STATE_TTL", "0.25")
    with ConsentService(migrated_url) as s:
        assert s.state_ttl == 0.25
    monkeypatch.setenv("YINSI_GATE_STATE_TTL", "soon")
    with pytest.raises(ValueError, match="YINSI_GATE_STATE_TTL"):
        ConsentService(migrated_url)


def test_tenants_never_see_each_others_subjects(svc: ConsentService) -> None:
    svc.record_consent("weiliaoke", "same-id", "policy")
    assert svc.state("kehutong", "same-id").consents == {}
    assert svc.report("kehutong", "same-id")["consents"] == []


def test_unknown_tenant_is_a_clear_error(svc: ConsentService) -> None:
    with pytest.raises(NoPublishedPolicy, match="尚未发布"):
        svc.check("nobody", "u", "collect", feature="x", items=["contact.mobile"])


def test_python_guard_decorator_refuses_and_allows(migrated_url: str) -> None:
    publish(POLICIES / "weiliaoke-2022.yaml", url=migrated_url)
    with Yinsi(migrated_url) as y:
        calls: list[str] = []

        @y.guard("weiliaoke", "collect", feature="customer_chat", items=["location.precise"], device_arg="device")
        def send_location(subject: str, device: str, lat: float) -> None:
            calls.append(subject)

        with pytest.raises(ProcessingRefused) as exc:
            send_location("u9", "d1", 31.2)
        assert not exc.value.decision.allowed and calls == []
        y.consent("weiliaoke", "u9", "policy")
        y.consent("weiliaoke", "u9", "item:customer_chat:location.precise", disclosures=DIALOG)
        y.permission("weiliaoke", "u9", "d1", "location", "granted")
        send_location("u9", "d1", 31.2)
        assert calls == ["u9"]
        assert y.report("weiliaoke", "u9")["collected"][0]["item"] == "location.precise"


def test_cli_scenario_consent_refusal_withdrawal_report(migrated_url: str) -> None:
    r = CliRunner()
    assert r.invoke(app, ["policy", "publish", str(POLICIES / "weiliaoke-2022.yaml"), "--url", migrated_url]).exit_code == 0
    base = ["--url", migrated_url]
    gate = ["gate", "check", "weiliaoke", "u7", "--action", "collect", "--feature", "customer_chat",
            "--item", "location.precise", "--device", "d1", "--json", *base]
    refused = r.invoke(app, gate)
    assert refused.exit_code == 1
    assert {m["rule"] for m in json.loads(refused.stdout)["missing"]} == {"C2", "C4", "P1"}
    assert r.invoke(app, ["consent", "record", "weiliaoke", "u7", "policy", *base]).exit_code == 0
    assert r.invoke(app, ["consent", "record", "weiliaoke", "u7", "item:customer_chat:location.precise",
                          "--disclose", "necessity=发送位置", "--disclose", "impact=可能暴露行踪", *base]).exit_code == 0
    assert r.invoke(app, ["permission", "record", "weiliaoke", "u7", "d1", "location", "granted", *base]).exit_code == 0
    allowed = r.invoke(app, gate)
    assert allowed.exit_code == 0 and json.loads(allowed.stdout)["basis"] == "consent"
    assert r.invoke(app, ["consent", "record", "weiliaoke", "u7", "item:customer_chat:location.precise",
                          "--event", "withdrawn", *base]).exit_code == 0
    assert r.invoke(app, gate).exit_code == 1
    rep = r.invoke(app, ["subject", "report", "weiliaoke", "u7", "--json", *base])
    assert json.loads(rep.stdout)["collected"][0]["name"] == "精准定位信息"
    bad = r.invoke(app, ["consent", "record", "weiliaoke", "u7", "item:customer_chat:nonexistent.item", *base])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
