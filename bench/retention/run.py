"""Retention sweep against a hand-written DELETE of the same rows, in the same run, on PostgreSQL.

    .venv/bin/python -m bench.retention.run --agents 100000 [--admin-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
    .venv/bin/python -m bench.retention.run --database postgresql+psycopg://postgres@127.0.0.1:5432/NAME \\
        [--rows 2000000] [--rounds 2] [--profile out.prof]

Without ``--database``: creates a scratch database and seeds the 微聊客 demo app (``yinsi demo-app seed``).
With ``--database``: an already seeded demo database, left as it was found apart from two bench tables;
``--rows`` tops ``ip_logs`` up to that many rows by copying seeded rows under new keys (the seed writes about
2 ``ip_logs`` rows per agent, so 2,000,000 is the table of the 1,000,000-agent database). The seeded rows are
kept once in ``ip_logs_bench_orig``; every round restores ``ip_logs`` and a copy ``ip_logs_hand`` (same keys,
same indexes) from it, then times ``RetentionService.sweep`` (the data map and the 2022 declaration, default
batches) on ``ip_logs`` and one ``DELETE … WHERE visited_at <= cutoff`` on the copy, alternating which goes
first. Both remove every row (``now`` is past the 180-day network-log hold). Prints rows/s of each, the
ratio, the peak RSS of the process and the load average.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]


def _seed(admin_url: str, agents: int) -> tuple[str, str]:
    name = f"yinsi_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    env = {**os.environ, "WEILIAOKE_DATABASE_URL": url}
    exe = str(ROOT / ".venv" / "bin" / "yinsi")
    t0 = time.perf_counter()
    subprocess.run([exe, "demo-app", "create"], env=env, check=True, capture_output=True)
    subprocess.run([exe, "demo-app", "seed", "--users", str(agents)], env=env, check=True, capture_output=True)
    print(f"seeded {agents} agents in {time.perf_counter() - t0:.0f} s")
    return url, name


def _prepare(url: str, rows: int | None) -> int:
    eng = create_engine(url)
    with eng.begin() as c:
        have = c.execute(text("SELECT to_regclass('ip_logs_bench_orig') IS NOT NULL")).scalar_one()
        if not have:
            c.execute(text("CREATE TABLE ip_logs_bench_orig AS SELECT * FROM ip_logs"))
        n = c.execute(text("SELECT COUNT(*) FROM ip_logs_bench_orig")).scalar_one()
        if rows and n < rows:  # top up with copies of seeded rows under new keys
            top = c.execute(text("SELECT MAX(id) FROM ip_logs_bench_orig")).scalar_one()
            c.execute(text("INSERT INTO ip_logs_bench_orig SELECT o.id + :top * g, o.ip, o.path, o.visited_at "
                           "FROM ip_logs_bench_orig o, generate_series(1, :k) g"),
                      {"top": top, "k": -(-rows // n) - 1})
            c.execute(text("DELETE FROM ip_logs_bench_orig WHERE id > (SELECT id FROM ip_logs_bench_orig "
                           "ORDER BY id OFFSET :r LIMIT 1)"), {"r": rows - 1})
            n = c.execute(text("SELECT COUNT(*) FROM ip_logs_bench_orig")).scalar_one()
        if not c.execute(text("SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'ip_logs' "
                              "AND indexdef LIKE '%visited_at%'")).scalar_one():
            c.execute(text("CREATE INDEX ON ip_logs (visited_at)"))
    eng.dispose()
    return int(n)


def _restore(url: str) -> None:
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text("TRUNCATE ip_logs"))
        c.execute(text("INSERT INTO ip_logs SELECT * FROM ip_logs_bench_orig"))
        c.execute(text("DROP TABLE IF EXISTS ip_logs_hand"))
        c.execute(text("CREATE TABLE ip_logs_hand AS SELECT * FROM ip_logs_bench_orig"))
        c.execute(text("ALTER TABLE ip_logs_hand ADD PRIMARY KEY (id)"))
        c.execute(text("CREATE INDEX ON ip_logs_hand (ip)"))
        c.execute(text("CREATE INDEX ON ip_logs_hand (visited_at)"))
        c.execute(text("VACUUM ANALYZE ip_logs"))
        c.execute(text("VACUUM ANALYZE ip_logs_hand"))
    eng.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=100_000)
    ap.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--database", help="an already seeded 微聊客 demo database (kept)")
    ap.add_argument("--rows", type=int, help="top ip_logs up to this many rows (copies of seeded rows)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--profile", help="write a cProfile of the sweeps to this file")
    args = ap.parse_args()
    scratch = None
    if args.database:
        url = args.database
    else:
        url, scratch = _seed(args.admin_url, args.agents)
    from yinsi.datamap_io import load_datamap
    from yinsi.declarations import load_declaration
    from yinsi.retention.service import RetentionService
    from yinsi.storage import upgrade
    from yinsi.stores.sql import dispose_engines

    yinsi = f"sqlite:///{tempfile.mkdtemp()}/y.db"
    upgrade(yinsi)
    try:
        n = _prepare(url, args.rows)
        dm = load_datamap(ROOT / "examples" / "weiliaoke_app" / "datamap.yaml").datamap
        decl = load_declaration(ROOT / "policies" / "weiliaoke-2022.yaml")
        now = datetime(2030, 1, 1, tzinfo=UTC)
        cutoff = datetime(2029, 12, 31, 8)  # naive Beijing time, one day before now
        prof = cProfile.Profile() if args.profile else None
        eng = create_engine(url)
        for k in range(args.rounds):
            _restore(url)
            svc = RetentionService(yinsi)
            times: dict[str, float] = {}
            for which in (("hand", "sweep") if k % 2 else ("sweep", "hand")):
                t0 = time.perf_counter()
                if which == "sweep":
                    if prof:
                        prof.enable()
                    done = svc.sweep("weiliaoke", dm, decl, {"app_db": url}, now)
                    if prof:
                        prof.disable()
                    removed = sum(d.removed for d in done if d.table == "ip_logs")
                else:
                    with eng.begin() as c:
                        hand = c.execute(text("DELETE FROM ip_logs_hand WHERE visited_at <= :c"),
                                         {"c": cutoff}).rowcount
                times[which] = time.perf_counter() - t0
            svc.close()
            assert removed == hand == n, (removed, hand, n)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            t_s, t_h = times["sweep"], times["hand"]
            print(f"round {k + 1}: rows {n:,}; sweep {t_s:.2f} s ({n / t_s:,.0f} rows/s); hand DELETE {t_h:.2f} s "
                  f"({n / t_h:,.0f} rows/s); ratio {t_h / t_s:.2f}x; peak RSS {peak:.0f} MiB; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
        if prof:
            prof.dump_stats(args.profile)
        eng.dispose()
        dispose_engines()
    finally:
        if scratch:
            admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
