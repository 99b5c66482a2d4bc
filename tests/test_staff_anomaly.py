"""Abnormal-activity detection: rules fire exactly at their thresholds and windows, bursts merge into one
alert, order does not matter, nothing is stored in the clear, and only the security officer sees alerts."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from yinsi.audit import AuditLog
from yinsi.protect.keys import KeyRing, MasterKey
from yinsi.staff import AccessDenied, InvalidInput
from yinsi.staff.anomaly import (
    DEFAULT_RULES,
    ActivityEvent,
    ActivityMonitor,
    EventKind,
    KeyKind,
    RateRule,
    apply_overrides,
    load_rules,
    parse_event,
    parse_window,
)
from yinsi.staff.service import StaffService
from yinsi.storage import Tenant, make_engine, make_session_factory, upgrade

pytestmark = pytest.mark.usefixtures("isolated_env")

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
FAIL, OK, REG = EventKind.LOGIN_FAILURE, EventKind.LOGIN_SUCCESS, EventKind.REGISTRATION


@dataclass
class Env:
    ring: KeyRing
    audit: AuditLog
    staff: StaffService
    monitor: ActivityMonitor

    def raw(self, table: str) -> str:
        with self.ring.session() as s:
            return json.dumps([list(map(str, r)) for r in s.execute(text(f"SELECT * FROM {table}"))])


def _setup(url: str) -> Iterator[Env]:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as s, s.begin():
        for tid in ("t1", "t2"):
            s.add(Tenant(id=tid, name=tid, created_at=T0))
    ring = KeyRing(sessions, MasterKey(os.urandom(32), "test"))
    ring.provision("t1")
    ring.provision("t2")
    audit = AuditLog(sessions, use_witness=False)
    staff = StaffService(sessions, audit, ring, clock=lambda: T0)
    staff.add_staff("t1", "admin", "管理员", ["administrator"])
    staff.add_staff("t1", "sec1", "安全负责人", ["security_officer"], actor="admin")
    staff.add_staff("t1", "po1", "负责人", ["privacy_officer"], actor="admin")
    staff.add_staff("t1", "aud1", "审计员", ["auditor"], actor="admin")
    staff.add_staff("t2", "admin", "管理员", ["administrator"])
    staff.add_staff("t2", "sec2", "安全负责人", ["security_officer"], actor="admin")
    try:
        yield Env(ring, audit, staff, ActivityMonitor(sessions, ring, audit, clock=lambda: T0))
    finally:
        engine.dispose()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    upgrade(url)
    yield from _setup(url)


def ev(kind: EventKind, account: str, seconds: float, *, device: str | None = None,
       ip: str | None = None) -> ActivityEvent:
    return ActivityEvent(kind, account, T0 + timedelta(seconds=seconds), device, ip)


def test_defaults() -> None:
    rules = {r.name: r for r in DEFAULT_RULES}
    assert (rules["login_failures_per_account"].threshold, rules["login_failures_per_account"].window_seconds) == (5, 600)
    assert (rules["registrations_per_ip"].threshold, rules["registrations_per_ip"].window_seconds) == (20, 3600)
    assert (rules["accounts_per_device"].threshold, rules["accounts_per_device"].distinct) == (3, KeyKind.ACCOUNT)


def test_failed_logins_fire_exactly_at_threshold_and_window(env: Env) -> None:
    m = env.monitor
    # four failures in 9 minutes: nothing
    for i in range(4):
        assert not m.ingest("t1", ev(FAIL, "alice", i * 180)).raised
    # the fifth 9 min 59 s after the first: fires, count 5
    res = m.ingest("t1", ev(FAIL, "alice", 599))
    assert [a.rule for a in res.raised] == ["login_failures_per_account"]
    alert = res.raised[0]
    assert (alert.count, alert.threshold, alert.window_seconds) == (5, 5, 600)
    assert alert.first_at == T0 and alert.last_at == T0 + timedelta(seconds=599)
    assert alert.key_hash == m.key_of("t1", "account", "alice") and alert.key_kind == "account"
    # exactly 10 minutes between first and fifth: the window (t-10min, t] no longer holds the first
    for i in range(4):
        m.ingest("t1", ev(FAIL, "bob", i * 150))
    assert not m.ingest("t1", ev(FAIL, "bob", 600)).raised
    # successes do not count
    for i in range(10):
        assert not m.ingest("t1", ev(OK, "carol", i)).raised


def test_registrations_per_ip_and_accounts_per_device(env: Env) -> None:
    m = env.monitor
    batch = [ev(REG, f"new{i}", i * 180, ip="203.0.113.7") for i in range(19)]
    res = m.ingest_many("t1", batch)
    assert not res.raised
    res = m.ingest("t1", ev(REG, "new19", 3599, ip="203.0.113.7"))
    assert [a.rule for a in res.raised] == ["registrations_per_ip"] and res.raised[0].count == 20
    # the 20th one hour after the first would not have fired: check on another IP
    m.ingest_many("t1", [ev(REG, f"x{i}", i * 189, ip="2001:db8::1") for i in range(19)])
    assert not m.ingest("t1", ev(REG, "x19", 3600 + 1, ip="2001:DB8:0::1")).raised  # same IP, other spelling
    # a device: the same account many times is fine, three different accounts in an hour are not
    assert not m.ingest_many("t1", [ev(OK, "dan", i, device="dev-1") for i in range(10)]).raised
    assert not m.ingest("t1", ev(OK, "erin", 100, device="dev-1")).raised
    res = m.ingest("t1", ev(FAIL, "frank", 3599, device="dev-1"))
    assert [a.rule for a in res.raised] == ["accounts_per_device"] and res.raised[0].count == 3
    assert res.raised[0].key_hash == m.key_of("t1", "device", "dev-1")


def test_a_burst_is_one_alert_and_a_later_burst_another(env: Env) -> None:
    m = env.monitor
    first = m.ingest_many("t1", [ev(FAIL, "gina", i * 30) for i in range(5)]).raised
    assert len(first) == 1
    more = m.ingest_many("t1", [ev(FAIL, "gina", 150 + i * 30) for i in range(10)])
    assert not more.raised and [a.id for a in more.updated] == [first[0].id]
    assert more.updated[0].count == 15 and more.updated[0].last_at == T0 + timedelta(seconds=420)
    later = m.ingest_many("t1", [ev(FAIL, "gina", 7200 + i) for i in range(5)]).raised
    assert len(later) == 1 and later[0].id != first[0].id
    assert len(m.alerts("t1", "sec1", status="open")) == 2


def test_order_does_not_matter(tmp_path: Path) -> None:
    events = [ev(FAIL, "h", i * 50, ip="198.51.100.1") for i in range(12)]
    events += [ev(REG, f"r{i}", i * 100, ip="198.51.100.2", device="d9") for i in range(25)]
    outcomes = []
    for n, order in enumerate((list(events), random.Random(7).sample(events, len(events)), events[::-1])):
        url = f"sqlite:///{tmp_path / f'o{n}.db'}"
        upgrade(url)
        for e in _setup(url):
            for chunk in range(0, len(order), 5):  # several batches, late events included
                e.monitor.ingest_many("t1", order[chunk:chunk + 5])
            alerts = e.monitor.alerts("t1", "sec1")
            outcomes.append(sorted((a.rule, a.count, a.first_at, a.last_at) for a in alerts))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert {r for r, *_ in outcomes[0]} == {"login_failures_per_account", "registrations_per_ip", "accounts_per_device"}


def test_nothing_in_the_clear(migrated_url: str) -> None:
    """On every backend: accounts, devices and IPs are stored only as keyed pseudonyms."""
    for e in _setup(migrated_url):
        account, device, ip = "13800138000", "IMEI-356938035643809", "192.0.2.55"
        e.monitor.ingest_many("t1", [ev(FAIL, account, i, device=device, ip=ip) for i in range(6)])
        e.monitor.ingest_many("t1", [ev(REG, f"user{i}@example.com", i, device=f"d{i}", ip=ip) for i in range(25)])
        raw = e.raw("activity_events") + e.raw("activity_alerts")
        for value in (account, device, ip, "356938035643809", "example.com", "user1"):
            assert value not in raw
        alerts = e.monitor.alerts("t1", "sec1")
        assert {a.rule for a in alerts} == {"login_failures_per_account", "registrations_per_ip"}
        # pseudonyms are per tenant
        assert e.monitor.key_of("t1", "account", account) != e.monitor.key_of("t2", "account", account)
        assert e.monitor.alerts("t2", "sec2") == []


def test_only_the_security_officer_sees_and_acknowledges(env: Env) -> None:
    m = env.monitor
    alert = m.ingest_many("t1", [ev(FAIL, "ivan", i) for i in range(5)]).raised[0]
    for staff_id in ("po1", "aud1", "admin", "nobody"):
        with pytest.raises(AccessDenied):
            m.alerts("t1", staff_id)
        with pytest.raises(AccessDenied):
            m.ack(alert.id, staff_id)
    with pytest.raises(AccessDenied):
        m.alerts("t1", "sec2")  # another tenant's security officer
    with pytest.raises(AccessDenied):
        m.ack(alert.id, "sec2")
    acked = m.ack(alert.id, "sec1", note="已封禁该账号")
    assert acked.status == "acknowledged" and acked.acknowledged_by == "sec1"
    assert m.alerts("t1", "sec1", status="open") == []
    last = env.audit.entries("t1")[-1]
    assert (last.actor, last.details["step"], last.details["alert"]) == ("sec1", "alert_ack", alert.id)


def test_rules_from_file_and_overrides(tmp_path: Path, env: Env) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - {name: login_failures_per_account, threshold: 3, window: 5m}\n"
        "  - {name: accounts_per_device, enabled: false}\n"
        "  - {name: sms_login_burst, events: [login_success], key: ip, threshold: 2, window: 30s}\n",
        encoding="utf-8")
    rules = {r.name: r for r in load_rules(path)}
    assert (rules["login_failures_per_account"].threshold, rules["login_failures_per_account"].window_seconds) == (3, 300)
    assert "accounts_per_device" not in rules and rules["sms_login_burst"].key is KeyKind.IP
    assert "3 次" in rules["login_failures_per_account"].describe()
    json_path = tmp_path / "rules.json"
    json_path.write_text(json.dumps({"include_defaults": False, "rules": [
        {"name": "only", "events": "registration", "key": "device", "threshold": 2, "window": 60}]}), encoding="utf-8")
    assert [r.name for r in load_rules(json_path)] == ["only"]
    tuned = {r.name: r for r in apply_overrides(DEFAULT_RULES, ["registrations_per_ip=5/10m"])}
    assert (tuned["registrations_per_ip"].threshold, tuned["registrations_per_ip"].window_seconds) == (5, 600)
    for bad in (["nope=1/1m"], ["registrations_per_ip=x"]):
        with pytest.raises(InvalidInput):
            apply_overrides(DEFAULT_RULES, bad)
    bad_path = tmp_path / "bad.yaml"
    bad_path.write_text("rules:\n  - {name: new_rule, threshold: 3}\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="缺少字段"):
        load_rules(bad_path)
    assert parse_window("1h") == 3600 and parse_window(90) == 90 and parse_window("2 分钟") == 120
    monitor = ActivityMonitor(env.monitor.sessions, env.ring, env.audit, rules=tuple(rules.values()))
    assert monitor.ingest_many("t1", [ev(FAIL, "judy", i * 100) for i in range(3)]).raised


def test_event_validation_never_repeats_values() -> None:
    ok = parse_event({"kind": "login_failure", "account": "u1", "ip": "::ffff:1.2.3.4", "time": "2026-03-01T08:00:00+08:00"})
    assert ok.time == T0 and ok.kind is FAIL
    assert parse_event({"kind": "registration", "account": "u1", "time": 1772323200}).time == T0
    for data, match in (
        ({"kind": "logout", "account": "u", "time": "2026-03-01T00:00:00Z"}, "事件类型"),
        ({"kind": "registration", "time": "2026-03-01T00:00:00Z"}, "account"),
        ({"kind": "registration", "account": "u", "time": "2026-03-01T00:00:00"}, "时区"),
        ({"kind": "registration", "account": "u", "ip": "13800138000", "time": "2026-03-01T00:00:00Z"}, "ip"),
    ):
        with pytest.raises(InvalidInput, match=match) as info:
            parse_event(data)
        assert "13800138000" not in str(info.value)
    with pytest.raises(InvalidInput):
        RateRule("bad name!", frozenset({FAIL}), KeyKind.IP, 1, 1)
