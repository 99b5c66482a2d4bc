"""Retention sweep against a hand-written DELETE of the same rows, in the same run, on PostgreSQL.

    .venv/bin/python -m bench.retention.run --agents 100000 [--admin-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Creates a scratch database, seeds the 微聊客 demo app (``yinsi demo-app seed``), copies ``ip_logs`` to
``ip_logs_hand``, then times ``yinsi retention sweep`` (the service, batches of 50,000) on ``ip_logs`` and
one ``DELETE … WHERE visited_at <= cutoff`` on the copy; both remove every row (``now`` is past the
180-day network-log hold). Prints rows/s of each, the ratio and the peak RSS of the process.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=100_000)
    ap.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    name = f"yinsi_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yinsi = f"sqlite:///{tempfile.mkdtemp()}/y.db"
        env = {**os.environ, "WEILIAOKE_DATABASE_URL": url, "YINSI_DATABASE_URL": yinsi}
        exe = str(ROOT / ".venv" / "bin" / "yinsi")
        t0 = time.perf_counter()
        subprocess.run([exe, "demo-app", "create"], env=env, check=True, capture_output=True)
        subprocess.run([exe, "demo-app", "seed", "--users", str(args.agents)], env=env, check=True,
                       capture_output=True)
        subprocess.run([exe, "db", "upgrade"], env=env, check=True, capture_output=True)
        print(f"seeded {args.agents} agents in {time.perf_counter() - t0:.0f} s")
        eng = create_engine(url)
        with eng.begin() as c:
            c.execute(text("CREATE TABLE ip_logs_hand AS SELECT * FROM ip_logs"))
            c.execute(text("ALTER TABLE ip_logs_hand ADD PRIMARY KEY (id)"))
            c.execute(text("CREATE INDEX ON ip_logs_hand (visited_at)"))
            n = c.execute(text("SELECT COUNT(*) FROM ip_logs")).scalar_one()
            has_index = c.execute(text("SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'ip_logs' "
                                       "AND indexdef LIKE '%visited_at%'")).scalar_one()
            if not has_index:
                c.execute(text("CREATE INDEX ON ip_logs (visited_at)"))
            c.execute(text("VACUUM ANALYZE") if False else text("ANALYZE"))
        from yinsi.datamap_io import load_datamap
        from yinsi.declarations import load_declaration
        from yinsi.retention.service import RetentionService

        dm = load_datamap(ROOT / "examples" / "weiliaoke_app" / "datamap.yaml").datamap
        decl = load_declaration(ROOT / "policies" / "weiliaoke-2022.yaml")
        now = datetime(2030, 1, 1, tzinfo=UTC)
        svc = RetentionService(yinsi)
        t0 = time.perf_counter()
        done = svc.sweep("weiliaoke", dm, decl, {"app_db": url}, now)
        t_sweep = time.perf_counter() - t0
        removed = sum(d.removed for d in done)
        svc.close()
        cutoff = datetime(2029, 12, 31, 8)  # naive Beijing time, one day before now
        t0 = time.perf_counter()
        with eng.begin() as c:
            hand = c.execute(text("DELETE FROM ip_logs_hand WHERE visited_at <= :c"), {"c": cutoff}).rowcount
        t_hand = time.perf_counter() - t0
        assert removed == hand == n, (removed, hand, n)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"rows: {n}; sweep {t_sweep:.2f} s ({n / t_sweep:,.0f} rows/s); hand DELETE {t_hand:.2f} s "
              f"({n / t_hand:,.0f} rows/s); ratio {t_hand / t_sweep:.2f}x; peak RSS {peak:.0f} MiB")
        eng.dispose()
        from yinsi.stores.sql import dispose_engines

        dispose_engines()
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
