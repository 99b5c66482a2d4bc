"""The gate's cache across processes (bulk revalidation) and its processing records (background writer),
on SQLite, PostgreSQL and MariaDB. Another ``ConsentService`` on the same database stands for another process;
time moves through the injected ticker, never by sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select, text

from tests.helpers import POLICIES
from yinsi.services.consent import ConsentService
from yinsi.services.publishing import publish
from yinsi.services.records import RecordBufferFull, RecordWriteError
from yinsi.storage.consent_tables import ProcessingRecord

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MARKETING = {"feature": "marketing", "items": ["contact.mobile"]}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class Ticker:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def marketing(s: ConsentService, subject: str, tenant: str = "weiliaoke"):  # type: ignore[no-untyped-def]
    return s.check(tenant, subject, "use", record=False, **MARKETING)


def consent_to_marketing(s: ConsentService, *subjects: str) -> None:
    for subject in subjects:
        s.record_consent("weiliaoke", subject, "policy")
        s.record_consent("weiliaoke", subject, "feature:marketing")


def records(url: str, tenant: str = "weiliaoke") -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(ProcessingRecord)
                                    .where(ProcessingRecord.tenant_id == tenant)).scalar_one())
    finally:
        engine.dispose()


def test_a_withdrawal_by_another_process_is_enforced_after_the_ttl_and_unchanged_subjects_keep_their_memo(
        migrated_url: str) -> None:
    publish(POLICIES / "weiliaoke-2022.yaml", url=migrated_url)
    ticker = Ticker()
    with ConsentService(migrated_url, clock=Clock(), state_ttl=1.0, ticker=ticker) as gate, \
            ConsentService(migrated_url, clock=Clock()) as privacy_center:
        consent_to_marketing(privacy_center, "u1", "u2", "u3")
        before = {u: marketing(gate, u) for u in ("u1", "u2", "u3")}
        assert all(d.allowed for d in before.values()) and gate.stats.cold_loads == 3
        privacy_center.record_consent("weiliaoke", "u2", "feature:marketing", "withdrawn")
        ticker.t = 0.9
        assert marketing(gate, "u2") is before["u2"]  # within the bound: the cached decision
        ticker.t = 1.0
        after = marketing(gate, "u2")
        assert not after.allowed and any(r.rule == "C6" for r in after.reasons)
        # one bulk round found u2 changed and read it again; u1 and u3 were not read again
        assert (gate.stats.revalidations, gate.stats.reloaded, gate.stats.memo_cleared) == (1, 1, 1)
        assert gate.stats.cold_loads == 3
        assert marketing(gate, "u1") is before["u1"] and marketing(gate, "u3") is before["u3"]  # memo kept
        kept = gate.stats.memo_kept
        ticker.t = 2.0
        assert marketing(gate, "u1") is before["u1"]
        assert gate.stats.revalidations == 2 and gate.stats.memo_kept > kept and gate.stats.cold_loads == 3


def test_a_restriction_and_a_birth_date_from_another_process_are_enforced_after_the_ttl(migrated_url: str) -> None:
    publish(POLICIES / "weiliaoke-2022.yaml", url=migrated_url)
    ticker = Ticker()
    with ConsentService(migrated_url, clock=Clock(), state_ttl=1.0, ticker=ticker) as gate, \
            ConsentService(migrated_url, clock=Clock()) as other:
        consent_to_marketing(other, "adult", "child", "idle")
        for u in ("adult", "child", "idle"):
            assert marketing(gate, u).allowed
        other.register_subject("weiliaoke", "child", birth_date=date(2016, 1, 1))  # updated in place
        other.restrict("weiliaoke", "adult", ["all"])
        ticker.t = 1.5
        assert marketing(gate, "adult").reasons[0].rule == "N4"
        child = marketing(gate, "child")
        assert not child.allowed and any(m.rule == "M1" for m in child.missing)
        # "idle" was not decided during the last period: its birth date is compared on its next decision
        other.register_subject("weiliaoke", "idle", birth_date=date(2015, 5, 5))
        ticker.t = 3.0
        assert marketing(gate, "child").allowed is False
        idle = marketing(gate, "idle")
        assert not idle.allowed and any(m.rule == "M1" for m in idle.missing)


def test_revalidation_is_per_tenant(migrated_url: str) -> None:
    for name in ("weiliaoke-2022", "kehutong-2021"):
        publish(POLICIES / f"{name}.yaml", url=migrated_url)
    ticker = Ticker()
    with ConsentService(migrated_url, clock=Clock(), state_ttl=1.0, ticker=ticker) as gate, \
            ConsentService(migrated_url, clock=Clock()) as other:
        consent_to_marketing(other, "same-id")
        first = marketing(gate, "same-id")
        assert first.allowed
        other.record_consent("kehutong", "same-id", "policy")
        other.restrict("kehutong", "same-id", ["all"])
        ticker.t = 1.0
        assert marketing(gate, "same-id") is first  # another tenant's subject of the same id changed
        assert gate.stats.changed_seen == 0 and gate.stats.memo_kept == 1
        other.record_consent("weiliaoke", "same-id", "feature:marketing", "withdrawn")
        ticker.t = 2.0
        assert not marketing(gate, "same-id").allowed and gate.stats.changed_seen == 1


def test_records_are_written_by_the_background_writer_and_all_are_there_after_close(migrated_url: str) -> None:
    publish(POLICIES / "weiliaoke-2022.yaml", url=migrated_url)
    with ConsentService(migrated_url, clock=Clock()) as setup:
        consent_to_marketing(setup, *(f"u{i}" for i in range(8)))
    svc = ConsentService(migrated_url, clock=Clock(), record_batch=50, record_buffer=500, record_interval=0.01)
    per_thread = 400
    errors: list[BaseException] = []

    def decide(worker: int) -> None:
        try:
            for i in range(per_thread):
                svc.check("weiliaoke", f"u{(worker + i) % 8}", "use", actor=f"w{worker}", **MARKETING)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=decide, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    svc.close()
    assert errors == []
    assert records(migrated_url) == 8 * per_thread == svc.records.stats.written
    assert svc.records.stats.batches >= 8 * per_thread // 50 and svc.records.stats.failures == 0


def test_a_failing_write_is_retried_and_reported_and_a_full_buffer_refuses_to_decide(migrated_url: str) -> None:
    publish(POLICIES / "weiliaoke-2022.yaml", url=migrated_url)
    svc = ConsentService(migrated_url, clock=Clock(), record_batch=2, record_buffer=4, record_interval=0.005,
                         record_full_wait=0.05)
    consent_to_marketing(svc, "u1")
    engine = create_engine(migrated_url)
    try:
        with engine.begin() as conn:  # the table disappears: every write fails
            conn.execute(text("ALTER TABLE processing_records RENAME TO processing_records_away"))
        decided = 0
        with pytest.raises(RecordBufferFull, match="缓冲区已满"):
            for _ in range(10):
                svc.check("weiliaoke", "u1", "use", **MARKETING)
                decided += 1
        assert decided == 4 == len(svc.records.buffer)  # the fifth decision was not made: nothing dropped
        with pytest.raises(RecordWriteError, match="4 条记录仍在缓冲区"):
            svc.flush()
        assert svc.records.stats.failures >= 1 and svc.records.last_error is not None
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE processing_records_away RENAME TO processing_records"))
        svc.close()
    finally:
        engine.dispose()
    assert records(migrated_url) == 4


def test_a_decision_time_without_a_zone_is_refused_before_its_record_is_buffered(migrated_url: str) -> None:
    publish(POLICIES / "weiliaoke-2022.yaml", url=migrated_url)
    with ConsentService(migrated_url, clock=Clock()) as svc:
        with pytest.raises(ValueError, match="时区"):
            svc.check("weiliaoke", "u1", "use", at=datetime(2026, 3, 2, 9, 0), **MARKETING)
        svc.check("weiliaoke", "u1", "use", at=T0, **MARKETING)
        assert svc.flush() == 1
        report = svc.report("weiliaoke", "u1")
    assert report["refused_requests"] == 1


def test_the_warm_path_serves_a_repeated_decision_in_the_evening_utc_when_beijing_is_already_on_the_next_day(
        migrated_url: str) -> None:
    """The memo is keyed by the Beijing day (ages change at Beijing midnight): the warm path must use the same
    key as decide(), or from 16:00 UTC every repeated decision would be decided again."""
    publish(POLICIES / "weiliaoke-2022.yaml", url=migrated_url)
    evening = datetime(2026, 12, 3, 20, 30, tzinfo=UTC)  # 04:30 on 12-04 in Beijing
    with ConsentService(migrated_url) as svc:
        svc.record_consent("weiliaoke", "u-evening", "policy", at=evening)
        first = svc.check("weiliaoke", "u-evening", "use", feature="marketing", items=["device.identifiers"],
                          at=evening, record=False)
        calls: list[object] = []
        decide = svc.decide

        def counting(*args: object, **kwargs: object) -> object:
            calls.append(args)
            return decide(*args, **kwargs)  # type: ignore[arg-type]

        svc.decide = counting  # type: ignore[method-assign]
        again = svc.check("weiliaoke", "u-evening", "use", feature="marketing", items=["device.identifiers"],
                          at=evening, record=False)
    assert again == first
    assert calls == []
