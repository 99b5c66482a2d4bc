"""Counting the people whose PI went abroad (X2): Yinsi's per-transfer counting (one primary-key lookup, an
insert and a counter update in the transfer's transaction; a count is one row) against a naive log that
appends every transfer and answers the threshold question with COUNT(DISTINCT subject) each time, in the same
run on the same database. Measures the counting step only (the gate and the assessment lookup are not timed).

    .venv/bin/python bench/abroad/run.py --people 5000 --repeat 3 --write docs/benchmarks/abroad.md
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, func, insert, select

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)


def declaration(directory: Path) -> Path:
    text = (ROOT / "tests" / "fixtures" / "minimal.yaml").read_text(encoding="utf-8")
    old = "storage: {location: 中国境内, cross_border: none, source: {section: 存储, quote: 存储在中国境内}}\n"
    new = ("recipients:\n  - {id: hk, name: 香港客服中心, kind: affiliate, action: transfer_abroad, contact: a@example.hk, "
           "items: [contact.mobile], purpose: 注册账号, method: 加密传输, abroad: true, source: {section: 出境, quote: 香港}}\n"
           "storage: {location: 中国境内, cross_border: yes, mechanism: 标准合同, source: {section: 存储, quote: 出境}}\n")
    path = directory / "decl.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3, help="transfers per person (the same person again)")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()

    from yinsi.domain import crossborder
    from yinsi.services.abroad import AbroadService
    from yinsi.services.consent import ConsentService
    from yinsi.services.publishing import publish
    from yinsi.storage import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/yinsi.db"
        upgrade(url)
        publish(declaration(Path(tmp)), url=url)
        consents = ConsentService(url, clock=lambda: NOW)
        abroad = AbroadService(consents)
        abroad.record_assessment("demo", "hk", conclusion="adequate", summary="评估", assessor="bench",
                                 assessed_on=date(2026, 1, 2))
        refs = [consents.subjects.ref("demo", f"u{i}") for i in range(args.people)]
        declared = crossborder.Mechanism.CONTRACT
        decision = None

        # naive: a log of transfers, COUNT(DISTINCT) per transfer, in the same database
        md = MetaData()
        log = Table("naive_transfers", md, Column("id", Integer, primary_key=True), Column("tenant", String(64)),
                    Column("year", Integer), Column("subject", String(128)), Column("at", DateTime))
        md.create_all(consents.engine)

        t0 = time.perf_counter()
        for _ in range(args.repeat):
            for ref in refs:
                abroad._count("demo", ref, "hk", 2026, False, declared, NOW.date(), NOW, decision)  # type: ignore[arg-type]
        yinsi_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        for _ in range(args.repeat):
            for ref in refs:
                with consents.engine.begin() as conn:
                    conn.execute(insert(log).values(tenant="demo", year=2026, subject=ref, at=NOW))
                    n = conn.scalar(select(func.count(func.distinct(log.c.subject))).where(
                        log.c.tenant == "demo", log.c.year == 2026))
                    crossborder.check(int(n or 0), 0, declared)
        naive_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        c = abroad.counters("demo")
        read_yinsi = time.perf_counter() - t0
        t0 = time.perf_counter()
        with consents.engine.connect() as conn:
            n = conn.scalar(select(func.count(func.distinct(log.c.subject))).where(log.c.tenant == "demo"))
        read_naive = time.perf_counter() - t0
        consents.close()
    assert c["non_sensitive"] == args.people == n
    transfers = args.people * args.repeat
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()
    lines = [
        "# Transfers abroad: counting distinct people (X2)",
        "",
        f"Command: `.venv/bin/python bench/abroad/run.py --people {args.people} --repeat {args.repeat} "
        "--write docs/benchmarks/abroad.md`",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()} {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLite; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end "
        "(the machine is shared and loaded by other work: compare the ratios, not the absolute times).",
        "",
        f"{args.people:,} distinct people, each sent abroad {args.repeat} times ({transfers:,} transfers), one "
        "transaction per transfer; the counting step only (no gate, no assessment lookup).",
        "",
        "| | Yinsi (`abroad_people` + `abroad_counters`) | naive log + COUNT(DISTINCT) per transfer | ratio |",
        "| --- | --- | --- | --- |",
        f"| all transfers | {yinsi_s:.2f} s ({transfers / yinsi_s:,.0f}/s) | {naive_s:.2f} s "
        f"({transfers / naive_s:,.0f}/s) | {naive_s / yinsi_s:.1f}x |",
        f"| reading the year's count | {read_yinsi * 1000:.2f} ms | {read_naive * 1000:.2f} ms | "
        f"{read_naive / max(read_yinsi, 1e-9):.1f}x |",
        "",
        f"Peak memory {peak:.0f} MiB. The naive log grows with every transfer and its distinct count is linear in it; "
        "Yinsi's rows grow with distinct people only and a count is one row.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        args.write.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
