"""Minors (M1–M3): age boundaries with a fixed clock, age from an ID number, guardian consent with the
guardian's identity protected, a guardian's objection suspending processing and the account, self-supporting
16- and 17-year-olds, and the deletion opened automatically for a minor without a guardian's consent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tests.helpers import POLICIES
from yinsi.cli.main import app
from yinsi.domain.consent import ConsentRejected
from yinsi.domain.minors import classify
from yinsi.domain.policy import Minors
from yinsi.rights.service import RightsService
from yinsi.services.consent import ConsentService
from yinsi.services.minors import MinorsError, MinorsService
from yinsi.services.publishing import publish
from yinsi.storage import upgrade

pytestmark = pytest.mark.usefixtures("isolated_env")

NOW = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
TODAY = date(2026, 6, 15)
T = "weiliaoke"  # declares guardian consent under 18 and accepts self-supporting 16- and 17-year-olds
SILENT = {"source": {"silent": True, "note": "测试"}}
DECLARED = Minors.model_validate({"adult_age": 18, "self_supporting_16": True, "guardian_consent_under": 18,
                                  "unverified_deletion": True, **SILENT})


def id_number(birth: date, region: str = "110101", seq: str = "123") -> str:
    """A valid 18-digit resident ID number for ``birth`` (ISO 7064 MOD 11-2 check digit)."""
    body = f"{region}{birth:%Y%m%d}{seq}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def years_ago(n: int, days: int = 0) -> date:
    return TODAY.replace(year=TODAY.year - n) + timedelta(days=days)


@pytest.mark.parametrize(("birth", "self_supporting", "adult", "needs", "rule"), [
    (years_ago(14), False, False, True, "M2"),  # 14 today: no longer a child, still under the declared 18
    (years_ago(14, 1), False, False, True, "M1"),  # 14 tomorrow: a child (all PI sensitive)
    (years_ago(16), True, True, False, None),  # 16 today and self-supporting: treated as an adult
    (years_ago(16, 1), True, False, True, "M2"),  # 16 tomorrow: self-support does not count
    (years_ago(17), False, False, True, "M2"),
    (years_ago(18), False, True, False, None),  # 18 today: adult
    (years_ago(18, 1), False, False, True, "M2"),  # 18 tomorrow: still a minor
])
def test_age_boundaries(birth: date, self_supporting: bool, adult: bool, needs: bool, rule: str | None) -> None:
    st = classify(birth, TODAY, DECLARED, self_supporting)
    assert (st.adult, st.guardian_needed, st.rule) == (adult, needs, rule)


def test_a_declaration_silent_on_minors_needs_a_guardian_under_14_only() -> None:
    silent = Minors.model_validate(SILENT)
    assert classify(years_ago(14, 1), TODAY, silent).rule == "M1"
    assert not classify(years_ago(14), TODAY, silent).guardian_needed
    assert not classify(years_ago(17), TODAY, silent, self_supporting=True).adult  # not accepted: not declared


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _world(url: str) -> Iterator[tuple[str, ConsentService, MinorsService, Clock]]:
    publish(POLICIES / "weiliaoke-2022.yaml", url=url)
    clock = Clock()
    consents = ConsentService(url, clock=clock)
    yield url, consents, MinorsService(consents), clock
    consents.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[str, ConsentService, MinorsService, Clock]]:
    """SQLite only."""
    url = f"sqlite:///{(tmp_path / 'yinsi.db').as_posix()}"
    upgrade(url)
    yield from _world(url)


@pytest.fixture
def any_world(migrated_url: str) -> Iterator[tuple[str, ConsentService, MinorsService, Clock]]:
    """SQLite, PostgreSQL and MariaDB."""
    yield from _world(migrated_url)


def post(consents: ConsentService, subject: str):  # type: ignore[no-untyped-def]
    return consents.check(T, subject, "collect", feature="publish_content", items=["basic.name"])


def test_age_from_the_id_number_and_the_guardian_rules_at_the_gate(world) -> None:  # type: ignore[no-untyped-def]
    _url, consents, minors, clock = world
    good = id_number(years_ago(13))
    with pytest.raises(ValueError, match="校验位"):
        minors.register(T, "kid", id_number=good[:-1] + ("1" if good.endswith("0") else "0"))
    st = minors.register(T, "kid", id_number=id_number(years_ago(13)))
    assert st is not None and st.age == 13 and st.rule == "M1"
    consents.record_consent(T, "kid", "policy")
    d = post(consents, "kid")
    assert not d.allowed and (d.missing[0].kind, d.missing[0].rule) == ("guardian", "M1")

    # 17 and self-supporting: an adult under this declaration
    minors.register(T, "worker", birth_date=years_ago(17))
    consents.record_consent(T, "worker", "policy")
    assert any(m.rule == "M2" for m in post(consents, "worker").missing)
    minors.set_self_supporting(T, "worker", evidence="labour_contract", actor="staff:s1")
    assert post(consents, "worker").allowed
    assert minors.status(T, "worker").self_supporting

    # 15: self-support cannot be recorded (民法典 18 starts at 16)
    minors.register(T, "fifteen", birth_date=years_ago(15))
    with pytest.raises(MinorsError, match="未满十六周岁"):
        minors.set_self_supporting(T, "fifteen", evidence="income_proof", actor="staff:s1")

    # the birthday that makes the 17-year-old 18 lifts the guardian requirement without any new event
    minors.register(T, "almost", birth_date=years_ago(18, 1))
    consents.record_consent(T, "almost", "policy")
    assert not post(consents, "almost").allowed
    clock.now = NOW + timedelta(days=1)
    assert post(consents, "almost").allowed


def test_guardian_consent_objection_and_resumption(any_world) -> None:  # type: ignore[no-untyped-def]
    url, consents, minors, clock = any_world
    guardian_id = id_number(date(1985, 3, 1), seq="456")
    minors.register(T, "kid", birth_date=years_ago(15))
    consents.record_consent(T, "kid", "policy")
    assert not post(consents, "kid").allowed
    with pytest.raises(MinorsError, match="成年人"):
        minors.record_guardian_consent(T, "kid", guardian=id_number(years_ago(17)), relation="sibling",
                                       verification="id_document")
    gid = minors.record_guardian_consent(T, "kid", guardian=guardian_id, relation="mother",
                                         verification="id_document")
    assert post(consents, "kid").allowed
    st = minors.status(T, "kid")
    assert st.guardian_consent and st.guardians[0]["relation"] == "mother" and st.guardians[0]["id"] == gid

    # nobody's identity in clear in any column of the guardians table or the ledger
    engine = create_engine(url)
    with engine.connect() as conn:
        for table in ("guardians", "consent_events", "minor_accounts"):
            dump = json.dumps([list(map(str, r)) for r in conn.execute(text(f"SELECT * FROM {table}"))])
            assert guardian_id not in dump and guardian_id[6:14] not in dump, table
    engine.dispose()

    # an unknown person cannot object; the guardian can, and processing and the account are suspended
    with pytest.raises(MinorsError, match="未找到"):
        minors.object(T, "kid", guardian=id_number(date(1980, 1, 1), seq="789"))
    clock.now = NOW + timedelta(hours=1)
    assert minors.object(T, "kid", guardian=guardian_id) == "M2"
    d = post(consents, "kid")
    assert not d.allowed and d.reasons[0].rule == "M2" and "异议" in d.reasons[0].message
    st = minors.status(T, "kid")
    assert st.suspended_at == clock.now and st.suspension_rule == "M2" and not st.guardian_consent
    # the person cannot lift the suspension through a restriction request
    with pytest.raises(ConsentRejected):
        consents.lift_restriction(T, "kid", ["minor:guardian_objection"])
    # the guardian's renewed consent resumes the account
    minors.record_guardian_consent(T, "kid", guardian=guardian_id, relation="mother", verification="face")
    assert post(consents, "kid").allowed
    assert minors.status(T, "kid").suspended_at is None


def test_a_minor_without_guardian_consent_gets_a_deletion_request(world) -> None:  # type: ignore[no-untyped-def]
    url, _consents, minors, clock = world
    minors.register(T, "kid", birth_date=years_ago(12))
    minors.register(T, "guarded", birth_date=years_ago(12))
    minors.record_guardian_consent(T, "guarded", guardian="13800000000", relation="father", verification="face")
    minors.register(T, "adult", birth_date=years_ago(30))
    rights = RightsService(url, channels={}, clock=clock)
    try:
        assert minors.sweep(T, rights, now=NOW + timedelta(days=1)) == []  # within the grace period
        opened = minors.sweep(T, rights, now=NOW + timedelta(days=8))
        assert len(opened) == 1
        req = rights.show(T, opened[0])
        assert req.type == "deletion"
        assert minors.status(T, "kid").deletion_request == opened[0]
        assert minors.sweep(T, rights, now=NOW + timedelta(days=9)) == []  # once per person
    finally:
        rights.close()


def test_cli(world) -> None:  # type: ignore[no-untyped-def]
    url = world[0]
    r = CliRunner().invoke(app, ["minors", "register", T, "kid", "--birth-date", years_ago(12).isoformat(),
                                 "--url", url])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["minors", "guardian", T, "kid", "--guardian", "13800000000", "--relation", "mother",
                                 "--verification", "face", "--url", url])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["minors", "status", T, "kid", "--json", "--url", url])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["guardian_consent"] is True
    assert "13800000000" not in r.output
    r = CliRunner().invoke(app, ["minors", "object", T, "kid", "--guardian", "13800000000", "--url", url])
    assert r.exit_code == 0 and "暂停" in r.output, r.output
    r = CliRunner().invoke(app, ["minors", "self-supporting", T, "kid", "--evidence", "x", "--url", url])
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_the_worker_runs_the_m3_sweep(world) -> None:  # type: ignore[no-untyped-def]
    """``minors.sweep`` registered with the jobs module: the worker opens the deletion at the job's time; a
    second due time opens nothing more."""
    import yinsi.services.minors_jobs  # noqa: F401  (registers the periodic tasks)
    from yinsi.jobs.runner import Runner
    from yinsi.jobs.store import JobStore
    from yinsi.jobs.transports import EmbeddedTransport
    from yinsi.jobs.worker import run_until_idle

    url, consents, minors, _clock = world
    minors.register(T, "kid", birth_date=years_ago(12))
    late = NOW + timedelta(days=8)
    store = JobStore(consents.sessions, lambda: late)
    runner = Runner(store, url, EmbeddedTransport(), timedelta(seconds=60))
    for due in ("02:30", "02:31"):
        store.enqueue("minors.sweep", {"due": due}, key=f"periodic:minors.sweep:{T}:{due}", tenant=T)
        assert [o.state for o in run_until_idle(runner)] == ["done"]
    st = minors.status(T, "kid")
    assert st.deletion_request is not None
    rights = RightsService(url, channels={})
    try:
        assert rights.show(T, st.deletion_request).state == "verified"
    finally:
        rights.close()
