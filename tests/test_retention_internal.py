"""Retention of Yinsi's own records (sweep-internal) on SQLite, PostgreSQL and MariaDB with a fixed clock."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Boolean, Date, DateTime, Integer, LargeBinary, String, create_engine, func, insert, select

from yinsi.domain.retention import INTERNAL_PERIODS, internal_rules, parse_periods
from yinsi.retention.service import RetentionService
from yinsi.storage.audit_tables import AuditEntryRow
from yinsi.storage.auth_tables import LoginChallengeRow, RateEventRow, SubjectSessionRow
from yinsi.storage.consent_tables import ProcessingRecord
from yinsi.storage.notify_tables import OutboxMessage, VerificationCodeRow
from yinsi.storage.rights_tables import LegalHoldRecord, RequestTransition, RightsRequest
from yinsi.storage.tables import Tenant

NOW = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)  # the fixed clock
DAY = timedelta(days=1)


def _row(model: Any, **values: Any) -> dict[str, Any]:
    """``values`` plus a placeholder for every other required column."""
    out = dict(values)
    for col in model.__table__.columns:
        if col.name in out or (col.primary_key and col.autoincrement is True):
            continue
        if col.nullable:
            out[col.name] = None
            continue
        t = col.type
        impl = getattr(t, "impl", t)
        if isinstance(impl, Boolean):
            out[col.name] = False
        elif isinstance(impl, Integer):
            out[col.name] = 0
        elif isinstance(impl, DateTime):
            out[col.name] = NOW
        elif isinstance(impl, Date):
            out[col.name] = NOW.date()
        elif isinstance(impl, LargeBinary):
            out[col.name] = b""
        elif isinstance(impl, String):
            out[col.name] = "x"
        else:
            out[col.name] = "x"
    return out


def _count(conn: Any, model: Any, tenant: str = "t1") -> int:
    return conn.execute(select(func.count()).select_from(model).where(model.tenant_id == tenant)).scalar_one()


def _seed(url: str, tmp_path: Path) -> Path:
    engine = create_engine(url)
    package = tmp_path / "old.zip.enc"
    package.write_bytes(b"ciphertext")
    with engine.begin() as c:
        for t in ("t1", "t2"):
            c.execute(insert(Tenant).values(id=t, name=t, created_at=NOW))
        for t in ("t1", "t2"):
            c.execute(insert(RateEventRow), [_row(RateEventRow, tenant_id=t, at=NOW - 2 * DAY),
                                            _row(RateEventRow, tenant_id=t, at=NOW - DAY / 2)])
        c.execute(insert(VerificationCodeRow), [
            _row(VerificationCodeRow, id="v-old", tenant_id="t1", status="verified", expires_at=NOW - 40 * DAY,
                 finished_at=NOW - 31 * DAY),
            _row(VerificationCodeRow, id="v-new", tenant_id="t1", status="verified", expires_at=NOW - 40 * DAY,
                 finished_at=NOW - 29 * DAY)])
        c.execute(insert(OutboxMessage), [
            _row(OutboxMessage, tenant_id="t1", status="sent", sent_at=NOW - 31 * DAY, created_at=NOW - 31 * DAY),
            _row(OutboxMessage, tenant_id="t1", status="pending", created_at=NOW - 300 * DAY)])
        c.execute(insert(RightsRequest), [
            _row(RightsRequest, id="r-old", tenant_id="t1", state="completed", updated_at=NOW - 1100 * DAY),
            _row(RightsRequest, id="r-held", tenant_id="t1", state="completed", updated_at=NOW - 1100 * DAY),
            _row(RightsRequest, id="r-open", tenant_id="t1", state="in_progress", updated_at=NOW - 1100 * DAY),
            _row(RightsRequest, id="r-export", tenant_id="t1", state="completed", updated_at=NOW - 31 * DAY,
                 result=json.dumps({"package": str(package), "rows": 3}))])
        c.execute(insert(RequestTransition), [_row(RequestTransition, request_id="r-old", tenant_id="t1", at=NOW)])
        c.execute(insert(LegalHoldRecord), [
            _row(LegalHoldRecord, tenant_id="t1", request_id="r-held", location_id="a", source_key="1",
                 hold_until=date(2026, 3, 2)),
            _row(LegalHoldRecord, tenant_id="t1", request_id="r-gone", location_id="a", source_key="2",
                 hold_until=date(2026, 2, 28))])
        c.execute(insert(ProcessingRecord), [
            _row(ProcessingRecord, tenant_id="t1", subject_id="p", decided_at=NOW - 1096 * DAY),
            _row(ProcessingRecord, tenant_id="t1", subject_id="p", decided_at=NOW - 400 * DAY)])
        c.execute(insert(LoginChallengeRow), [_row(LoginChallengeRow, id="l1", tenant_id="t1",
                                                   expires_at=NOW - 2 * DAY)])
        c.execute(insert(SubjectSessionRow), [
            _row(SubjectSessionRow, id="s1", token_hash="h1", tenant_id="t1", expires_at=NOW + DAY, revoked_at=NOW - 2 * DAY),
            _row(SubjectSessionRow, id="s2", token_hash="h2", tenant_id="t1", expires_at=NOW + DAY)])
    engine.dispose()
    return package


def test_internal_sweep_deletes_what_is_past_its_period(migrated_url: str, tmp_path: Path) -> None:
    package = _seed(migrated_url, tmp_path)
    svc = RetentionService(migrated_url)
    try:
        dry = {d.name: d.removed for d in svc.sweep_internal(NOW, tenant="t1", dry_run=True)}
        assert dry["rate_events"] == 1 and dry["processing_records"] == 1 and dry["export_packages"] == 1
        done = svc.sweep_internal(NOW, tenant="t1")
        again = svc.sweep_internal(NOW, tenant="t1")  # resumable: a second run finds nothing left
    finally:
        svc.close()
    got = {d.name: d.removed for d in done}
    assert got == {"verification_codes": 1, "outbox": 1, "export_packages": 1, "rights_requests": 1,
                   "processing_records": 1, "legal_holds": 1, "login_challenges": 1, "subject_sessions": 1,
                   "staff_sessions": 0, "rate_events": 1}
    assert got == dry
    assert all(d.removed == 0 for d in again)
    engine = create_engine(migrated_url)
    with engine.connect() as c:
        assert _count(c, RateEventRow, "t2") == 2  # another tenant is untouched
        assert set(c.execute(select(RightsRequest.id)).scalars()) == {"r-held", "r-open", "r-export"}
        assert _count(c, RequestTransition) == 0
        assert c.execute(select(VerificationCodeRow.id)).scalars().all() == ["v-new"]
        assert _count(c, OutboxMessage) == 1 and _count(c, ProcessingRecord) == 1 and _count(c, LegalHoldRecord) == 1
        result = json.loads(c.execute(select(RightsRequest.result).where(RightsRequest.id == "r-export")).scalar_one())
        assert result == {"rows": 3, "package_deleted": True}
        audits = [json.loads(r.details) if isinstance(r.details, str) else r.details
                  for r in c.execute(select(AuditEntryRow).where(AuditEntryRow.tenant_id == "t1"))]
    engine.dispose()
    assert not package.exists()
    swept = {a["records"]: a for a in audits if a and a.get("kind") == "retention_sweep_internal"}
    assert set(swept) == {n for n, k in got.items() if k} and swept["processing_records"]["rule"] == "T2"


def test_a_period_below_the_statutory_minimum_is_raised_and_says_why() -> None:
    rules = {r.name: r for r in internal_rules(parse_periods("processing_records=30, rate_events=2"))}
    assert rules["processing_records"].days == 3 * 365 and rules["processing_records"].raised_from == 30
    assert "第五十六条" in (rules["processing_records"].floor_basis or "")
    assert rules["rate_events"].days == 2 and rules["rate_events"].raised_from is None
    with pytest.raises(ValueError):
        internal_rules({"nonsense": 3})
    with pytest.raises(ValueError):
        parse_periods("outbox=abc")
    assert all(p.reason for p in INTERNAL_PERIODS)


def test_internal_sweep_is_a_periodic_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typing import cast

    from sqlalchemy.orm import Session

    from yinsi import jobs
    from yinsi.storage import upgrade

    jobs.load_task_modules()
    assert "retention.internal" in jobs.PERIODICS and jobs.PERIODICS["retention.internal"].per_tenant
    url = f"sqlite:///{(tmp_path / 'y.db').as_posix()}"
    upgrade(url)
    _seed(url, tmp_path)
    monkeypatch.setenv("YINSI_RETENTION_INTERNAL", "rate_events=3")  # both of t1's rate events are kept
    ctx = jobs.JobContext(1, "retention.internal", "k", "t1", {}, 1, NOW, cast(Session, None), url)
    result = jobs.TASKS["retention.internal"].fn(ctx)
    assert result["rate_events"] == 0 and result["processing_records"] == 1


def test_the_command_sweeps_every_tenant_and_says_when_the_law_raised_a_period(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from yinsi.cli.main import app
    from yinsi.storage import upgrade

    url = f"sqlite:///{(tmp_path / 'y.db').as_posix()}"
    upgrade(url)
    _seed(url, tmp_path)
    cli = CliRunner()
    args = ["retention", "sweep-internal", "--url", url, "--now", NOW.isoformat()]
    dry = cli.invoke(app, [*args, "--dry-run", "--period", "processing_records=30"])
    assert dry.exit_code == 0, dry.output
    assert "t2 rate_events：将删除 1 条" in dry.output and "配置的 30 天短于法定最短保存期" in dry.output
    assert cli.invoke(app, [*args, "--period", "bogus=3"]).exit_code == 2
    done = cli.invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    counts = {(r["tenant"], r["name"]): r["removed"] for r in json.loads(done.output)["records"]}
    assert counts[("t1", "rate_events")] == 1 and counts[("t2", "rate_events")] == 1
    assert counts[("t1", "processing_records")] == 1
