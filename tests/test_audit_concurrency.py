"""Concurrent appends never fork a chain or leave a gap: threads and separate processes, on SQLite,
PostgreSQL and MariaDB; verification running during appends sees no false tampering."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from yinsi.audit import AuditLog, AuditRecord
from yinsi.storage import make_engine, make_session_factory

pytestmark = pytest.mark.usefixtures("isolated_env")

T = "acme"


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    eng = make_engine(migrated_url)
    try:
        yield eng
    finally:
        eng.dispose()


def _assert_one_gapless_chain(engine: Engine, log: AuditLog, total: int, every: int) -> None:
    with engine.connect() as conn:
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM audit_entries WHERE tenant_id = :t ORDER BY seq"), {"t": T})]
        chains = conn.execute(text("SELECT COUNT(*) FROM audit_chains WHERE tenant_id = :t"), {"t": T}).scalar()
    assert seqs == list(range(1, total + 1))
    assert chains == 1
    result = log.verify(T)
    assert result.ok, result.problems
    # after every append the newest checkpoint is fewer than ``every`` entries behind
    assert result.entries == total and total - result.last_checkpoint_seq < every


def _thread_worker(factory_engine: Engine, key_file: Path, witness: Path, n: int, barrier: threading.Barrier,
                   errors: list[BaseException]) -> None:
    try:
        log = AuditLog(make_session_factory(factory_engine), checkpoint_every=16, key_file=key_file, witness_file=witness)
        barrier.wait()
        for i in range(n):
            if i % 4 == 3:
                log.append_many(T, [AuditRecord("staff-1", "pi_access", details={"i": i, "j": j}) for j in range(3)])
            else:
                log.append(T, "staff-1", "pi_access", items=["contact.mobile"], details={"i": i})
    except BaseException as exc:
        errors.append(exc)


def test_threads_appending_to_one_chain(engine: Engine, tmp_path: Path) -> None:
    threads_n, per_thread = 4, 30
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []
    key_file, witness = tmp_path / "k.key", tmp_path / "w.json"
    threads = [threading.Thread(target=_thread_worker, args=(engine, key_file, witness, per_thread, barrier, errors))
               for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # per thread: 3 of every 4 iterations append one entry, the fourth appends three
    total = threads_n * (per_thread // 4 * 6 + per_thread % 4)
    log = AuditLog(make_session_factory(engine), key_file=key_file, witness_file=witness)
    _assert_one_gapless_chain(engine, log, total, 16)


def _process_worker(url: str, key_file: str, witness: str, n: int, start: multiprocessing.synchronize.Event) -> None:
    engine = make_engine(url)
    try:
        log = AuditLog(make_session_factory(engine), checkpoint_every=20, key_file=Path(key_file),
                       witness_file=Path(witness))
        start.wait(30)
        for i in range(n):
            log.append(T, "system", "consent_change", target_subject=f"psn_{i}", details={"i": i})
    finally:
        engine.dispose()


@pytest.mark.parametrize("processes", [4])
def test_processes_appending_to_one_chain(migrated_url: str, engine: Engine, tmp_path: Path, processes: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    key_file, witness = tmp_path / "k.key", tmp_path / "w.json"
    per_process = 40
    workers = [ctx.Process(target=_process_worker, args=(migrated_url, str(key_file), str(witness), per_process, start))
               for _ in range(processes)]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0] * processes
    log = AuditLog(make_session_factory(engine), key_file=key_file, witness_file=witness)
    _assert_one_gapless_chain(engine, log, processes * per_process, 20)
    # the processes raced to create the signing key: exactly one key signed every checkpoint
    assert len({c.key_id for c in log.checkpoints(T)}) == 1


def test_verifying_while_others_append_reports_no_false_tampering(engine: Engine, tmp_path: Path) -> None:
    key_file, witness = tmp_path / "k.key", tmp_path / "w.json"
    factory = make_session_factory(engine)
    writer = AuditLog(factory, checkpoint_every=7, key_file=key_file, witness_file=witness)
    writer.append(T, "system", "other")
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(120):
                writer.append(T, "system", "other", details={"i": i})
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    reader = AuditLog(factory, key_file=key_file, witness_file=witness)
    runs = 0
    while not done.is_set() or runs == 0:
        result = reader.verify(T)
        assert result.ok, result.problems
        runs += 1
    thread.join()
    assert errors == [] and runs >= 1
    assert reader.verify(T).entries == 121
