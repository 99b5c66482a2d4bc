"""Transfers abroad (X1, X2): refused without separate consent, a declared recipient and its recorded
assessment; distinct people counted per Beijing calendar year, sensitive and not; warnings near a threshold and
refusal beyond what the declared mechanism covers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from tests.helpers import minimal_text
from yinsi.cli.main import app
from yinsi.domain import crossborder
from yinsi.domain.crossborder import Mechanism
from yinsi.services.abroad import AbroadError, AbroadService
from yinsi.services.consent import ConsentService
from yinsi.services.publishing import publish
from yinsi.storage import upgrade
from yinsi.storage.engine import make_engine
from yinsi.storage.minors_tables import AbroadCounter

pytestmark = pytest.mark.usefixtures("isolated_env")

T = "demo"
NOW = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)
RECIPIENT = ("recipients:\n  - {id: hk_support, name: 香港客服中心, kind: affiliate, action: transfer_abroad, "
             "contact: support@example.hk, items: [contact.mobile, biometric.face], purpose: 注册账号, method: 加密传输, "
             "abroad: true, source: {section: 出境, quote: 香港客服中心}}\n")
RIGHTS = {"rights_method": "发送邮件至 support@example.hk"}


def declaration(tmp_path: Path, mechanism: str | None) -> Path:
    old = "storage: {location: 中国境内, cross_border: none, source: {section: 存储, quote: 存储在中国境内}}\n"
    text_ = minimal_text()
    assert old in text_
    mech = "null" if mechanism is None else mechanism
    new = (RECIPIENT + f"storage: {{location: 中国境内, cross_border: yes, mechanism: {mech}, "
           "source: {section: 存储, quote: 向境外提供}}\n")
    path = tmp_path / f"decl-{mechanism}.yaml"
    path.write_text(text_.replace(old, new), encoding="utf-8")
    return path


@pytest.mark.parametrize(("n", "s", "need"), [
    (0, 0, Mechanism.EXEMPT), (99_999, 0, Mechanism.EXEMPT), (100_000, 0, Mechanism.CONTRACT),
    (0, 1, Mechanism.CONTRACT), (999_999, 9_999, Mechanism.CONTRACT), (1_000_000, 0, Mechanism.ASSESSMENT),
    (0, 10_000, Mechanism.ASSESSMENT),
])
def test_thresholds_from_rule_x2(n: int, s: int, need: Mechanism) -> None:
    assert crossborder.required(n, s) is need


def test_warnings_and_refusal_by_declared_mechanism() -> None:
    v = crossborder.check(80_000, 0, Mechanism.EXEMPT)
    assert v.allowed and v.warnings and "100,000" in v.warnings[0][2]
    assert not crossborder.check(79_999, 1, Mechanism.EXEMPT).allowed  # sensitive PI is never exempt
    v = crossborder.check(0, 8_000, Mechanism.CONTRACT)
    assert v.allowed and v.warnings[0][0] is True
    assert not crossborder.check(0, 10_000, Mechanism.CONTRACT).allowed
    assert crossborder.check(5_000_000, 50_000, Mechanism.ASSESSMENT).allowed
    assert crossborder.declared_mechanism("标准合同") is Mechanism.CONTRACT
    assert crossborder.declared_mechanism(None) is Mechanism.EXEMPT
    assert crossborder.year_of(datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == 2027  # midnight in Beijing


def _world(url: str, tmp_path: Path) -> Iterator[tuple[str, ConsentService, AbroadService]]:
    publish(declaration(tmp_path, "标准合同"), url=url)
    consents = ConsentService(url, clock=lambda: NOW)
    yield url, consents, AbroadService(consents)
    consents.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[str, ConsentService, AbroadService]]:
    """SQLite only."""
    url = f"sqlite:///{(tmp_path / 'yinsi.db').as_posix()}"
    upgrade(url)
    yield from _world(url, tmp_path)


@pytest.fixture
def any_world(migrated_url: str, tmp_path: Path) -> Iterator[tuple[str, ConsentService, AbroadService]]:
    """SQLite, PostgreSQL and MariaDB."""
    yield from _world(migrated_url, tmp_path)


def consent(consents: ConsentService, subject: str) -> None:
    consents.record_consent(T, subject, "policy")
    consents.record_consent(T, subject, "recipient:hk_support")
    consents.record_consent(T, subject, "cross_border:hk_support", disclosures=RIGHTS)


def test_transfer_needs_consent_recipient_and_assessment(world) -> None:  # type: ignore[no-untyped-def]
    _url, consents, abroad = world
    res = abroad.export(T, "u1", "hk_support", ["contact.mobile"])
    assert not res.allowed and "X1" in {r.rule for r in res.reasons}  # no separate consent yet
    consent(consents, "u1")
    res = abroad.export(T, "u1", "nowhere", ["contact.mobile"])
    assert not res.allowed and res.reasons[0].rule == "V1"  # not a declared recipient
    res = abroad.export(T, "u1", "hk_support", ["contact.mobile"])
    assert not res.allowed and res.reasons[0].rule == "X1" and "评估" in res.reasons[0].message
    abroad.record_assessment(T, "hk_support", conclusion="inadequate", summary="保护能力不足", assessor="dpo",
                             assessed_on=date(2026, 5, 1))
    assert not abroad.export(T, "u1", "hk_support", ["contact.mobile"]).allowed
    abroad.record_assessment(T, "hk_support", conclusion="adequate", summary="已签标准合同并评估", assessor="dpo",
                             assessed_on=date(2026, 6, 1), valid_until=date(2027, 5, 31))
    res = abroad.export(T, "u1", "hk_support", ["contact.mobile"])
    assert res.allowed and res.counts == {"non_sensitive": 1, "sensitive": 0}
    with pytest.raises(AbroadError):
        abroad.record_assessment(T, "nowhere", conclusion="adequate", summary="x", assessor="dpo",
                                 assessed_on=date(2026, 6, 1))
    # the assessment runs out
    later = datetime(2027, 6, 1, 2, 0, tzinfo=UTC)
    res = abroad.export(T, "u1", "hk_support", ["contact.mobile"], at=later)
    assert not res.allowed and "到期" in res.reasons[0].message


def test_distinct_people_per_year_warnings_and_refusal(any_world) -> None:  # type: ignore[no-untyped-def]
    url, consents, abroad = any_world
    abroad.record_assessment(T, "hk_support", conclusion="adequate", summary="评估", assessor="dpo",
                             assessed_on=date(2026, 1, 2))
    for who in ("u1", "u2"):
        consent(consents, who)
    for _ in range(3):
        assert abroad.export(T, "u1", "hk_support", ["contact.mobile"]).allowed
    assert abroad.export(T, "u2", "hk_support", ["contact.mobile", "biometric.face"]).allowed
    c = abroad.counters(T)
    assert (c["non_sensitive"], c["sensitive"], c["required"], c["declared"]) == (1, 1, "contract", "contract")

    # the year already counts 7,999 people with sensitive PI (seeded): the 8,000th brings a warning, once
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(update(AbroadCounter).where(AbroadCounter.sensitive.is_(True)).values(people=7999))
    engine.dispose()
    consent(consents, "u3")
    res = abroad.export(T, "u3", "hk_support", ["biometric.face"])
    assert res.allowed and res.warnings and "10,000" in res.warnings[0]
    assert [a["level"] for a in abroad.alerts(T)] == ["near_10000"]
    assert abroad.check_thresholds(T, NOW) == []  # already raised

    # at 10,000 the standard contract no longer covers sensitive PI: refused (X2)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(update(AbroadCounter).where(AbroadCounter.sensitive.is_(True)).values(people=9999))
    engine.dispose()
    consent(consents, "u4")
    res = abroad.export(T, "u4", "hk_support", ["biometric.face"])
    assert not res.allowed and res.reasons[0].rule == "X2" and "安全评估" in res.reasons[0].message
    assert abroad.export(T, "u1", "hk_support", ["biometric.face"]).allowed is False  # a new sensitive person too
    assert abroad.export(T, "u4", "hk_support", ["contact.mobile"]).allowed  # non-sensitive still covered

    # 1 January in Beijing starts a new count
    new_year = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    c = abroad.counters(T, at=new_year)
    assert (c["year"], c["non_sensitive"], c["sensitive"]) == (2027, 0, 0)
    assert abroad.export(T, "u4", "hk_support", ["biometric.face"], at=new_year).allowed


def test_without_a_declared_mechanism_sensitive_pi_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'yinsi.db').as_posix()}"
    upgrade(url)
    publish(declaration(tmp_path, None), url=url)
    consents = ConsentService(url, clock=lambda: NOW)
    try:
        abroad = AbroadService(consents)
        abroad.record_assessment(T, "hk_support", conclusion="adequate", summary="评估", assessor="dpo",
                                 assessed_on=date(2026, 1, 2))
        consent(consents, "u1")
        assert abroad.export(T, "u1", "hk_support", ["contact.mobile"]).allowed
        res = abroad.export(T, "u1", "hk_support", ["biometric.face"])
        assert not res.allowed and res.reasons[0].rule == "X2"
    finally:
        consents.close()


def test_cli(world) -> None:  # type: ignore[no-untyped-def]
    url, consents, _abroad = world
    consent(consents, "u1")
    run = CliRunner().invoke
    r = run(app, ["abroad", "export", T, "u1", "hk_support", "--item", "contact.mobile", "--url", url])
    assert r.exit_code == 3 and "X1" in r.output, r.output
    r = run(app, ["abroad", "assess", T, "hk_support", "--conclusion", "adequate", "--summary", "评估",
                  "--assessor", "dpo", "--on", "2026-01-02", "--url", url])
    assert r.exit_code == 0, r.output
    r = run(app, ["abroad", "export", T, "u1", "hk_support", "--item", "contact.mobile", "--url", url])
    assert r.exit_code == 0 and "允许" in r.output, r.output
    r = run(app, ["abroad", "counters", T, "--json", "--url", url])
    assert r.exit_code == 0 and json.loads(r.output)["non_sensitive"] == 1, r.output
    r = run(app, ["abroad", "assess", T, "nowhere", "--conclusion", "adequate", "--summary", "x", "--assessor", "d",
                  "--on", "2026-01-02", "--url", url])
    assert r.exit_code == 1 and "Traceback" not in r.output
