#!/usr/bin/env python
"""Benchmark of the audit log's append path (issue 5, "Appending stays fast under concurrency").

For each backend — SQLite as configured by default (rollback journal, ``synchronous=FULL``: every commit
waits for the disk), SQLite with ``synchronous=OFF`` (no disk waits: shows the CPU cost of the log
itself), PostgreSQL — and each case — 1 or 4 writer processes, one shared chain or one chain per
writer (4 tenants), one entry per transaction or batches of 100 — it measures, in the same run:

- audit entries/s committed with ``AuditLog.append`` / ``append_many`` (hash chain, Merkle frontier, an
  Ed25519-signed checkpoint every 1000 entries, the witness file);
- the baseline: plain Core INSERTs in the same transaction pattern of rows of the same width (the audit
  entry's columns and values, the same secondary index, an auto-increment key instead of the chain);
- the ratio audit ÷ baseline;
- peak memory: Python allocations of one writer during a timed run (tracemalloc, in a separate pass so
  that tracing does not slow the measured runs) and the writer processes' RSS high-water mark;
- how fast ``verify`` re-checks the longest chain written.

Commit latency on a virtual disk varies a lot from second to second, so audit and baseline runs are
interleaved and repeated (``--repeat``, default 3) and the median is reported. The writer processes are
started once per backend and synchronised per run by a start time, so process start-up is never timed.

Usage: ``.venv/bin/python bench/audit/run.py [--seconds S] [--repeat N] [--pg URL | --no-pg] [--no-write]``.
``--pg`` names a PostgreSQL database whose user may create databases (default: the test server,
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); a scratch database is created and dropped.
The report is printed and written to ``docs/benchmarks/audit.md`` (below its ``<!-- results -->`` line).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import (  # noqa: E402
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
    text,
)
from sqlalchemy.engine import make_url  # noqa: E402

from yinsi.audit import AuditLog, AuditRecord  # noqa: E402
from yinsi.storage import make_engine, make_session_factory, upgrade  # noqa: E402
from yinsi.storage.types import LargeText, UTCDateTime  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BATCH = 100
WRITERS = 4
DOC = ROOT / "docs" / "benchmarks" / "audit.md"
MARKER = "<!-- results -->"

# One entry as the consent and rights services will write it: pseudonym, PI item IDs, short reason, small details.
ACTOR, ACTION, SUBJECT = "staff-0017", "pi_access", "psn_7f3a9c41d2"
ITEMS = ["contact.mobile", "basic.name"]
REASON = "核实订单收货信息"
DETAILS = {"ticket": "T-20260301-0042", "channel": "console", "masked": True}

plain_metadata = MetaData()
PLAIN = Table(
    "bench_plain_rows", plain_metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("subject", String(128)),
    Column("items", LargeText, nullable=False),
    Column("reason", LargeText),
    Column("details", LargeText, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
    Index("ix_bench_plain_rows_tenant_subject", "tenant_id", "subject", "id"),
)


@dataclass(frozen=True)
class Case:
    writers: int
    chains: int
    batched: bool

    @property
    def label(self) -> str:
        chains = "1 chain" if self.chains == 1 else f"{self.chains} chains"
        return f"{self.writers}w {chains} {'batch' if self.batched else 'single'}"


CASES = [Case(1, 1, False), Case(1, 1, True), Case(WRITERS, 1, False), Case(WRITERS, 1, True),
         Case(WRITERS, WRITERS, False)]


def _plain_row(tenant: str) -> dict[str, Any]:
    return {"tenant_id": tenant, "recorded_at": datetime.now(UTC), "actor": ACTOR, "action": ACTION,
            "subject": SUBJECT, "items": json.dumps(ITEMS), "reason": REASON,
            "details": json.dumps(DETAILS, ensure_ascii=False), "prev_hash": secrets.token_hex(32),
            "entry_hash": secrets.token_hex(32)}


def _engine(url: str, nosync: bool) -> Engine:
    engine = make_engine(url)
    if nosync:
        event.listen(engine, "connect", lambda dbapi, _rec: dbapi.execute("PRAGMA synchronous=OFF"))
    return engine


def _worker(url: str, nosync: bool, data_dir: str, commands: Any, results: Any) -> None:
    """A writer process: prepares and runs cases on command until told to stop."""
    os.environ["YINSI_DATA_DIR"] = data_dir
    engine = _engine(url, nosync)
    log = AuditLog(make_session_factory(engine))
    records = [AuditRecord(ACTOR, ACTION, SUBJECT, ITEMS, REASON, DETAILS)] * BATCH
    while True:
        cmd = commands.get()
        if cmd is None:
            break
        kind, batched, tenant, seconds, trace = cmd

        def one_op(kind: str = kind, batched: bool = batched, tenant: str = tenant) -> int:
            if kind == "audit":
                if batched:
                    log.append_many(tenant, records)
                    return BATCH
                log.append(tenant, ACTOR, ACTION, SUBJECT, ITEMS, REASON, DETAILS)
                return 1
            with engine.begin() as conn:
                if batched:
                    conn.execute(insert(PLAIN), [_plain_row(tenant) for _ in range(BATCH)])
                    return BATCH
                conn.execute(insert(PLAIN), _plain_row(tenant))
                return 1

        one_op()  # warm-up: the chain and the signing key exist, caches are filled
        results.put("ready")
        start_at = commands.get()
        time.sleep(max(0.0, start_at - time.time()))
        if trace:
            tracemalloc.start()
        count, t0 = 0, time.perf_counter()
        deadline = t0 + seconds
        while time.perf_counter() < deadline:
            count += one_op()
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        if trace:
            tracemalloc.stop()
        results.put((count, elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, peak))
    engine.dispose()


class Pool:
    """Writer processes for one backend, each with its own command queue."""

    def __init__(self, url: str, nosync: bool, data_dir: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.results = ctx.Queue()
        self.commands = [ctx.Queue() for _ in range(WRITERS)]
        self.procs = [ctx.Process(target=_worker, args=(url, nosync, data_dir, q, self.results)) for q in self.commands]
        for p in self.procs:
            p.start()

    def run(self, case: Case, kind: str, seconds: float, *, trace: bool = False) -> dict[str, Any]:
        n = 1 if trace else case.writers
        tenants = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(case.chains)]
        for i in range(n):
            self.commands[i].put((kind, case.batched, tenants[i % case.chains], seconds, trace))
        for _ in range(n):
            assert self.results.get(timeout=120) == "ready"
        start_at = time.time() + 0.05
        for i in range(n):
            self.commands[i].put(start_at)
        got = [self.results.get(timeout=seconds + 120) for _ in range(n)]
        total = sum(r[0] for r in got)
        return {"rate": total / max(r[1] for r in got), "rows": total, "rss_mib": max(r[2] for r in got) / 1024,
                "traced_mib": max(r[3] for r in got) / 2**20, "tenants": tenants}

    def close(self) -> None:
        for q in self.commands:
            q.put(None)
        for p in self.procs:
            p.join(60)


def _pg_scratch(admin_url: str) -> tuple[str, str, Any]:
    name = f"yinsi_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        version = str(conn.execute(text("SHOW server_version")).scalar()).split()[0]

    def cleanup() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), version, cleanup


def _verify_rate(url: str, tenant: str, data_dir: str) -> tuple[int, float]:
    os.environ["YINSI_DATA_DIR"] = data_dir
    engine = make_engine(url)
    try:
        log = AuditLog(make_session_factory(engine))
        t0 = time.perf_counter()
        result = log.verify(tenant)
        elapsed = time.perf_counter() - t0
        assert result.ok, result.problems
        return result.entries, result.entries / elapsed
    finally:
        engine.dispose()


def bench_backend(name: str, url: str, nosync: bool, data_dir: str, seconds: float, repeat: int) -> tuple[list[str], str]:
    upgrade(url)
    engine = create_engine(url)
    plain_metadata.create_all(engine)
    engine.dispose()
    pool = Pool(url, nosync, data_dir)
    rows: list[str] = []
    longest: tuple[int, str] = (0, "")
    rss = 0.0
    try:
        for case in CASES:
            audit_rates, plain_rates = [], []
            for _ in range(repeat):  # interleaved, so that both see the same disk weather
                ra = pool.run(case, "audit", seconds)
                rp = pool.run(case, "plain", seconds)
                audit_rates.append(ra["rate"])
                plain_rates.append(rp["rate"])
                rss = max(rss, ra["rss_mib"], rp["rss_mib"])
                if case.chains == 1 and ra["rows"] > longest[0]:
                    longest = (int(ra["rows"]), ra["tenants"][0])
            audit, plain = statistics.median(audit_rates), statistics.median(plain_rates)
            traced = "—"
            if case.writers == 1:
                ta = pool.run(case, "audit", min(seconds, 1.0), trace=True)["traced_mib"]
                tp = pool.run(case, "plain", min(seconds, 1.0), trace=True)["traced_mib"]
                traced = f"{ta:.2f} / {tp:.2f}"
            spread = f"{min(audit_rates):,.0f}–{max(audit_rates):,.0f}"
            rows.append(f"| {name} | {case.writers} | {case.chains} | {'100 entries' if case.batched else '1 entry'} | "
                        f"{audit:,.0f} ({spread}) | {plain:,.0f} | {audit / plain:.2f} | {traced} |")
            print(rows[-1], flush=True)
    finally:
        pool.close()
    n, rate = _verify_rate(url, longest[1], data_dir)
    verify = f"| {name} | {n:,} | {rate:,.0f} | {rss:.0f} |"
    print(verify, flush=True)
    return rows, verify


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="timed run per case and repeat (default 1.5)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repeats per case; the median is reported")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL admin URL (a scratch database is created)")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {DOC.relative_to(ROOT)}")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="yinsi-bench-audit-"))
    data_dir = str(tmp / "data")
    rows: list[str] = []
    verifies: list[str] = []
    pg_version = ""
    started = time.perf_counter()
    try:
        for name, db, nosync in (("SQLite", "full.db", False), ("SQLite, synchronous=OFF", "nosync.db", True)):
            url = f"sqlite:///{(tmp / db).as_posix()}"
            r, v = bench_backend(name, url, nosync, data_dir, args.seconds, args.repeat)
            rows += r
            verifies.append(v)
        if not args.no_pg:
            url, pg_version, cleanup = _pg_scratch(args.pg)
            try:
                r, v = bench_backend("PostgreSQL", url, False, data_dir, args.seconds, args.repeat)
                rows += r
                verifies.append(v)
            finally:
                cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    took = time.perf_counter() - started

    command = (f".venv/bin/python bench/audit/run.py --seconds {args.seconds:g} --repeat {args.repeat}"
               + (" --no-pg" if args.no_pg else f" --pg {args.pg}"))
    env = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
           f"SQLite {sqlite3.sqlite_version}" + (f", PostgreSQL {pg_version} (local, default settings)" if pg_version else ""))
    report = "\n".join([
        f"Measured {time.strftime('%Y-%m-%d')} on {env}; {args.seconds:g} s per run, median of {args.repeat} "
        f"interleaved runs; the whole benchmark took {took:.0f} s.", "",
        "```sh", command, "```", "",
        "| backend | writers | chains | per transaction | audit entries/s (min–max) | plain INSERT rows/s | audit ÷ plain "
        "| peak traced MiB, audit / plain |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
        *rows, "",
        "Verification of the longest chain written (re-hash every entry, recompute every Merkle root, check every "
        "signature), and the writer processes' RSS high-water mark:", "",
        "| backend | entries | entries/s verified | writer RSS MiB |", "|---|---:|---:|---:|", *verifies, "",
    ])
    print()
    print(report)
    if not args.no_write:
        existing = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Audit log: append throughput\n\n" + MARKER + "\n"
        head = existing.split(MARKER)[0] if MARKER in existing else existing.rstrip() + "\n\n"
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(head + MARKER + "\n\n" + report, encoding="utf-8")
        print(f"written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
