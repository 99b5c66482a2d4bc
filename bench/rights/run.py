#!/usr/bin/env python
"""Benchmark of rights requests (issue 4): access and erasure per request, and queued throughput, on the
微聊客 demo app in PostgreSQL, with Fides 2.86.2 run side by side on the same database.

Measured in one run:

- **baseline**: the floor for an access request: hand-written SQL reading every mapped table of one agent
  (13 SELECTs through SQLAlchemy Core on one connection, no Yinsi);
- **Yinsi access** (复制): ``submit`` + staff verification + ``run`` of a copy request: the plan over the data
  map, one query per table plus the Redis keys, the zip package (JSON, CSV, HTML) encrypted with the
  tenant key, the audit entries, every state change in Yinsi's database (PostgreSQL);
- **Yinsi erasure** (注销): ``submit`` + verification + confirmation + ``run`` of an account cancellation:
  Redis sessions and codes, the account marked cancelled, 13 tables erased children-first, legal-hold rows
  captured into the encrypted vault, then every location read back. The run ends in ``waiting_manual``
  because the data map has two systems only people can reach: the automatic part, the part Fides does too,
  is complete and verified at that point. Afterwards an independent SQL check confirms nothing is left;
- **queued**: ``--queued`` verified copy requests processed by ``--workers`` worker processes (each with its
  own ``RightsService``), wall time from the first to the last;
- **Fides 2.86.2** (``bench/peers/fides_rights.py``, in its own Python 3.13 virtual environment): access
  requests for the same agents as Yinsi's access requests, erasure requests for a disjoint sample of the
  same size (an agent can be erased only once), queued access requests; Fides's erasure masks fields with
  UPDATEs (``null_rewrite``), read back by the harness.

Peak memory: the benchmark process's RSS high-water mark and the workers' (``getrusage``), and the
tracemalloc peak of 20 extra Yinsi requests in a separate, untimed pass.

Usage::

    .venv/bin/yinsi demo-app create --url postgresql+psycopg://postgres@127.0.0.1:5432/wlk_bench
    .venv/bin/yinsi demo-app seed --users 1000000 --url postgresql+psycopg://postgres@127.0.0.1:5432/wlk_bench
    bash bench/peers/setup_fides.sh
    .venv/bin/python bench/rights/run.py --app-url postgresql+psycopg://postgres@127.0.0.1:5432/wlk_bench \\
        --access 200 --erasure 200 --queued 1000 --workers 2 --fides --fides-n 30 --fides-queued 50

The report is printed and written to ``docs/benchmarks/rights.md``. Erasure changes the demo database:
each run picks agents that are still active.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

TENANT = "weiliaoke"
MAP = ROOT / "examples" / "weiliaoke_app" / "datamap.yaml"
POLICY = ROOT / "policies" / "weiliaoke-2022.yaml"
FIDES_PY = ROOT / "bench" / ".venv-fides" / "bin" / "python"
FIDES_HARNESS = ROOT / "bench" / "peers" / "fides_rights.py"
OUT = ROOT / "docs" / "benchmarks" / "rights.md"
TABLES_OF_AGENT = {  # the baseline's hand-written reads
    "agents": "SELECT * FROM agents WHERE id = :a",
    "invoices": "SELECT i.* FROM invoices i JOIN orders o ON o.id = i.order_id WHERE o.agent_id = :a",
    "customers": "SELECT * FROM customers WHERE agent_id = :a",
}
AGENT_TABLES = ("property_bindings", "posts", "reviews", "chat_messages", "orders", "devices", "login_logs",
                "prize_records")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return s[k]


def summary(times_ms: list[float]) -> dict[str, Any]:
    return {"n": len(times_ms), "p50_ms": pct(times_ms, 0.5), "p95_ms": pct(times_ms, 0.95),
            "mean_ms": statistics.fmean(times_ms) if times_ms else float("nan")}


def rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------- set-up
def scratch_db(server_url: str) -> str:
    name = f"yinsi_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_db(url: str) -> None:
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
    admin.dispose()


def sample_agents(app_url: str, n: int, rng: random.Random, exclude: set[int]) -> list[int]:
    """``n`` active agents (not yet cancelled) with orders, sampled uniformly by id."""
    engine = create_engine(app_url)
    out: list[int] = []
    with engine.connect() as conn:
        top = int(conn.execute(text("SELECT max(id) FROM agents")).scalar() or 0)
        while len(out) < n:
            ids = [i for i in rng.sample(range(1, top + 1), min(top, (n - len(out)) * 4)) if i not in exclude]
            rows = conn.execute(text("SELECT a.id FROM agents a WHERE a.id = ANY(:ids) AND a.status = 'active' "
                                     "AND a.phone IS NOT NULL AND EXISTS (SELECT 1 FROM orders o WHERE o.agent_id = a.id)"),
                                {"ids": ids}).scalars().all()
            for a in rows:
                if a not in exclude and len(out) < n:
                    out.append(int(a))
                    exclude.add(int(a))
    engine.dispose()
    return out


def seed_redis(redis_url: str, prefix: str, app_url: str, agents: list[int]) -> None:
    """Two sessions and a pending SMS code per sampled agent (the generator's shapes)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    engine = create_engine(app_url)
    with engine.connect() as conn:
        phones = dict(conn.execute(text("SELECT id, phone FROM agents WHERE id = ANY(:ids)"), {"ids": agents}).all())
    engine.dispose()
    pipe = client.pipeline(transaction=False)
    for a in agents:
        for k in range(2):
            token = f"{a:08d}{k}" + "ef" * 12
            pipe.set(f"{prefix}session:{token}", str(a), ex=86400)
            pipe.sadd(f"{prefix}user:{a}:sessions", token)
        pipe.set(f"{prefix}sms:code:{phones[a]}", "246810", ex=3600)
    pipe.execute()
    client.close()


def service(yinsi_url: str, app_url: str, redis_url: str, prefix: str, exports: Path) -> Any:
    from yinsi.datamap_io import load_datamap, with_key_prefixes
    from yinsi.rights.service import RightsService

    dm = with_key_prefixes(load_datamap(MAP).datamap, {"cache": prefix})
    return RightsService(yinsi_url, datamaps={TENANT: dm}, store_urls={"app_db": app_url, "cache": redis_url},
                         channels={}, exports_dir=exports)


# ------------------------------------------------------------------------------------------- cases
def baseline_access(app_url: str, agents: list[int]) -> list[float]:
    engine = create_engine(app_url)
    queries = [text(TABLES_OF_AGENT.get(t, f"SELECT * FROM {t} WHERE agent_id = :a"))
               for t in ("agents", *AGENT_TABLES, "invoices", "customers")]
    times = []
    with engine.connect() as conn:
        for a in agents:
            t0 = time.perf_counter()
            for q in queries:
                conn.execute(q, {"a": a}).all()
            times.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    return times


def yinsi_access(svc: Any, agents: list[int]) -> tuple[list[float], int]:
    from yinsi.domain.rights import RequestType, State

    times, values = [], 0
    for a in agents:
        t0 = time.perf_counter()
        rid = svc.submit(TENANT, str(a), RequestType.COPY)
        svc.mark_verified(TENANT, rid, "bench", "基准测试")
        state = svc.run(TENANT, rid, "bench")
        times.append((time.perf_counter() - t0) * 1000)
        assert state in (State.WAITING_MANUAL, State.COMPLETED), state
        values += int(svc.show(TENANT, rid).result["values"])
    return times, values


def yinsi_erasure(svc: Any, agents: list[int]) -> list[float]:
    from yinsi.domain.rights import RequestType, State

    times = []
    for a in agents:
        t0 = time.perf_counter()
        rid = svc.submit(TENANT, str(a), RequestType.CANCEL_ACCOUNT)
        svc.mark_verified(TENANT, rid, "bench", "基准测试")
        svc.confirm(TENANT, rid)
        state = svc.run(TENANT, rid, "bench")
        times.append((time.perf_counter() - t0) * 1000)
        assert state is State.WAITING_MANUAL, state  # automatic part done and read back; two manual systems left
    return times


def independent_erasure_check(app_url: str, redis_url: str, prefix: str, agents: list[int]) -> dict[str, int]:
    """What is left of the erased agents, by plain SQL and Redis (must be all zero)."""
    import redis

    engine = create_engine(app_url)
    left: dict[str, int] = {}
    with engine.connect() as conn:
        ids = {"ids": agents}
        for t in AGENT_TABLES:
            left[t] = int(conn.execute(text(f"SELECT count(*) FROM {t} WHERE agent_id = ANY(:ids)"), ids).scalar() or 0)
        left["invoices"] = int(conn.execute(text("SELECT count(*) FROM invoices i JOIN orders o ON o.id = i.order_id "
                                                 "WHERE o.agent_id = ANY(:ids)"), ids).scalar() or 0)
        left["agents PI columns"] = int(conn.execute(text(
            "SELECT count(*) FROM agents WHERE id = ANY(:ids) AND (phone IS NOT NULL OR name IS NOT NULL OR "
            "id_number IS NOT NULL OR face_ref IS NOT NULL OR bank_card IS NOT NULL OR avatar_url IS NOT NULL "
            "OR status <> 'cancelled')"), ids).scalar() or 0)
    engine.dispose()
    client = redis.Redis.from_url(redis_url)
    left["redis keys"] = sum(1 for a in agents for _ in client.scan_iter(match=f"{prefix}user:{a}:*"))
    client.close()
    return left


def _worker(args: tuple[str, str, str, str, str, list[str]]) -> tuple[int, float]:
    yinsi_url, app_url, redis_url, prefix, exports, rids = args
    svc = service(yinsi_url, app_url, redis_url, prefix, Path(exports))
    n = 0
    for rid in rids:
        svc.run(TENANT, rid, "worker")
        n += 1
    svc.close()
    return n, rss_mib()


def yinsi_queued(svc: Any, yinsi_url: str, app_url: str, redis_url: str, prefix: str, exports: Path,
                 agents: list[int], workers: int) -> dict[str, Any]:
    from yinsi.domain.rights import RequestType

    rids = []
    for a in agents:
        rid = svc.submit(TENANT, str(a), RequestType.COPY)
        svc.mark_verified(TENANT, rid, "bench", "基准测试")
        rids.append(rid)
    chunks = [rids[k::workers] for k in range(workers)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        t0 = time.perf_counter()
        results = pool.map(_worker, [(yinsi_url, app_url, redis_url, prefix, str(exports), c) for c in chunks])
        seconds = time.perf_counter() - t0
    done = sum(n for n, _ in results)
    return {"n": len(rids), "finished": done, "seconds": seconds, "per_second": done / seconds,
            "workers": workers, "worker_rss_mib": max(r for _, r in results)}


def memory_pass(svc: Any, agents: list[int]) -> float:
    tracemalloc.start()
    yinsi_access(svc, agents[:10])
    yinsi_erasure(svc, agents[10:20])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def run_fides(app_url: str, access: list[int], erasure: list[int], queued: list[int], timeout: int) -> dict[str, Any]:
    if not FIDES_PY.exists():
        raise SystemExit(f"Fides is not installed: run bash bench/peers/setup_fides.sh ({FIDES_PY} missing)")
    plain = make_url(app_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with tempfile.TemporaryDirectory() as tmp:
        ids = Path(tmp) / "ids.json"
        ids.write_text(json.dumps({"access": access, "erasure": erasure, "queued": queued}))
        out = Path(tmp) / "fides.json"
        cmd = [str(FIDES_PY), str(FIDES_HARNESS), "--db-url", plain, "--ids-file", str(ids), "--out", str(out),
               "--timeout", str(timeout)]
        print("running Fides:", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, timeout=timeout + 900)
        return dict(json.loads(out.read_text()))


# ------------------------------------------------------------------------------------------- report
def fmt(x: float) -> str:
    return "—" if x != x else (f"{x:,.1f}" if x < 100 else f"{x:,.0f}")


def report(r: dict[str, Any], command: str) -> str:
    f = r.get("fides")
    lines = [
        "# Benchmark: rights requests on the demo app (1,000,000 agents) vs Fides 2.86.2",
        "",
        f"- Command: `{command}`",
        f"- Date: {r['date']}; wall time of the run {r['wall_s']:.0f} s",
        f"- Machine: nproc={os.cpu_count()}, {platform.processor() or platform.machine()}, {platform.system()} "
        f"{platform.release()}; load average at start {r['load'][0]:.2f}, {r['load'][1]:.2f}, {r['load'][2]:.2f}",
        f"- Demo app: PostgreSQL `{r['app_db']}`, {r['agents']:,} agents, {r['rows']:,} rows in its 13 tables; Yinsi's "
        "own database: a scratch PostgreSQL database on the same server; Redis for sessions and codes",
        f"- Python {platform.python_version()}; Fides {f['version'] if f else '—'} "
        f"on Python {f.get('python', '—') if f else '—'}",
        "",
        "| Case | n | p50 ms | p95 ms | mean ms | vs baseline (p50) | vs Fides (p50) | vs Fides (p95) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    base = r["baseline"]
    for key, label, peer in (("baseline", "Baseline: hand-written SQL reading the agent's 13 tables", None),
                             ("access", "Yinsi access (复制): submit, verify, run → encrypted zip", "access"),
                             ("erasure", "Yinsi erasure (注销): submit, verify, confirm, run, read-back", "erasure")):
        c = r[key]
        vs_base = f"{c['p50_ms'] / base['p50_ms']:.1f}×" if key != "baseline" else "1×"
        if f and peer and f.get(peer, {}).get("n"):
            vf50 = f"**{f[peer]['p50_ms'] / c['p50_ms']:.0f}× faster**"
            vf95 = f"{f[peer]['p95_ms'] / c['p95_ms']:.0f}× faster"
        else:
            vf50 = vf95 = "—"
        lines.append(f"| {label} | {c['n']} | {fmt(c['p50_ms'])} | {fmt(c['p95_ms'])} | {fmt(c['mean_ms'])} | {vs_base} "
                     f"| {vf50} | {vf95} |")
    if f:
        for peer, label in (("access", "Fides access request (submission → complete)"),
                            ("erasure", "Fides erasure request (submission → complete)")):
            c = f.get(peer) or {}
            if c.get("n"):
                lines.append(f"| {label} | {c['n']} | {fmt(c['p50_ms'])} | {fmt(c['p95_ms'])} | "
                             f"{fmt(statistics.fmean(c['times_ms']) if c.get('times_ms') else float('nan'))} | "
                             f"{c['p50_ms'] / base['p50_ms']:.0f}× | 1× | 1× |")
    q = r["queued"]
    lines += ["", "| Queued requests | n | finished | wall s | requests/s | vs Fides | peak RSS MiB |",
              "|---|--:|--:|--:|--:|--:|--:|",
              f"| Yinsi, {q['workers']} worker processes, copy requests | {q['n']} | {q['finished']} | {q['seconds']:.1f} | "
              f"{q['per_second']:.1f} | "
              + (f"{q['per_second'] / f['queued']['per_second']:.0f}×" if f and f.get("queued", {}).get("per_second") else "—")
              + f" | {q['worker_rss_mib']:.0f} |"]
    if f and f.get("queued"):
        fq = f["queued"]
        lines.append(f"| Fides, access requests | {fq['n']} | {fq['finished']} | {fq['seconds']:.1f} | "
                     f"{fq['per_second']:.2f} | 1× | {f.get('peak_rss_mib', float('nan')):.0f} |")
    lines += [
        "",
        f"Peak memory: benchmark process RSS high-water mark {r['rss_mib']:.0f} MiB; Python allocations of 20 Yinsi "
        f"requests (10 copies, 10 cancellations) in a separate untimed pass: tracemalloc peak {r['tracemalloc_mib']:.1f} MiB.",
        "",
        f"Erasure verified: after the Yinsi cancellations an independent SQL and Redis check found "
        f"{sum(r['erasure_left'].values())} rows or keys left ({', '.join(f'{k} {v}' for k, v in r['erasure_left'].items())}); "
        f"the legal-hold vault holds {r['held_rows']:,} rows of those agents (orders, invoices, login logs), encrypted. "
        f"Each copy package held {r['values_per_access']:.0f} values on average.",
    ]
    if f:
        v = f.get("erasure", {}).get("verified", {})
        lines += ["", f"What Fides's erasure left (read back by the harness): {v.get('rows_deleted', 0)} rows deleted, "
                  f"{v.get('pi_values_erased', 0):,} PI values erased, **{v.get('pi_values_left', 0):,} PI values left** "
                  "while every request was reported complete:", "",
                  "| table | rows before | rows after | PI values erased | PI values left | columns left |",
                  "|---|--:|--:|--:|--:|---|"]
        for table, t in v.get("tables", {}).items():
            left_cols = ", ".join(f"{c} {n['left']}" for c, n in t.get("columns", {}).items() if n.get("left"))
            lines.append(f"| {table} | {t.get('rows_before')} | {t.get('rows_after')} | {t.get('pi_values_erased')} | "
                         f"{t.get('pi_values_left')} | {left_cols or '—'} |")
        lines += ["", *[f"- Fides: {n}" for n in f.get("notes", [])]]
    lines += [
        "",
        "Notes:",
        "- Yinsi's times include its own bookkeeping in PostgreSQL: the request row, every state transition, one "
        "step row per operation, the hash-chained audit entries, the encrypted plan snapshot and the vault rows.",
        "- The erasure run stops at `waiting_manual`: the data map lists two systems only people can reach "
        "(58 认证平台, 奖品寄送表). All automatic locations are erased and read back before it waits, so the "
        "time covers the work Fides does and more (Fides masks columns; Yinsi deletes rows, moves held rows "
        "into the vault and reads every location back).",
        "- Fides ran access requests for the same agents as Yinsi's first access requests; its erasure ran on a "
        "disjoint sample of the same size (an agent can be erased only once). See bench/peers/FIDES.md for how "
        "the harness configures Fides.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--app-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/wlk_bench")
    p.add_argument("--yinsi-url", default=None, help="Yinsi's own database (default: a scratch PostgreSQL database)")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/8")
    p.add_argument("--access", type=int, default=200)
    p.add_argument("--erasure", type=int, default=200)
    p.add_argument("--queued", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--fides", action="store_true", help="run Fides side by side (bench/peers/setup_fides.sh first)")
    p.add_argument("--fides-n", type=int, default=30, help="Fides access and erasure requests each")
    p.add_argument("--fides-queued", type=int, default=50)
    p.add_argument("--fides-timeout", type=int, default=1800)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--no-write", action="store_true")
    a = p.parse_args()
    command = ".venv/bin/python bench/rights/run.py " + " ".join(sys.argv[1:])
    started = time.perf_counter()
    load = os.getloadavg()
    rng = random.Random(a.seed)
    taken: set[int] = set()
    access = sample_agents(a.app_url, a.access, rng, taken)
    erasure = sample_agents(a.app_url, a.erasure, rng, taken)
    queued = sample_agents(a.app_url, a.queued, rng, taken)
    mem = sample_agents(a.app_url, 20, rng, taken)
    fides_erasure = sample_agents(a.app_url, a.fides_n, rng, taken) if a.fides else []
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    seed_redis(a.redis, prefix, a.app_url, access + erasure + queued + mem)
    yinsi_url = a.yinsi_url or scratch_db(a.app_url)
    exports = Path(tempfile.mkdtemp(prefix="yinsi-bench-exports-"))
    os.environ.setdefault("YINSI_DATA_DIR", tempfile.mkdtemp(prefix="yinsi-bench-data-"))
    try:
        from yinsi.services.publishing import publish
        from yinsi.storage import upgrade

        upgrade(yinsi_url)
        publish(POLICY, yinsi_url)
        engine = create_engine(a.app_url)
        with engine.connect() as conn:
            agents_n = int(conn.execute(text("SELECT count(*) FROM agents")).scalar() or 0)
            rows = sum(int(conn.execute(text(f"SELECT reltuples::bigint FROM pg_class WHERE relname = '{t}'")).scalar() or 0)
                       for t in ("agents", "properties", *AGENT_TABLES, "invoices", "customers", "ip_logs"))
        engine.dispose()
        r: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "load": load,
                             "app_db": make_url(a.app_url).database, "agents": agents_n, "rows": rows}
        print(f"baseline: {len(access)} agents", file=sys.stderr)
        r["baseline"] = summary(baseline_access(a.app_url, access))
        svc = service(yinsi_url, a.app_url, a.redis, prefix, exports)
        yinsi_access(svc, mem[:2])  # warm-up: connections, reflection, keys (not timed, not reported)
        print(f"yinsi access: {len(access)}", file=sys.stderr)
        times, values = yinsi_access(svc, access)
        r["access"] = summary(times)
        r["values_per_access"] = values / max(1, len(access))
        print(f"yinsi erasure: {len(erasure)}", file=sys.stderr)
        r["erasure"] = summary(yinsi_erasure(svc, erasure))
        r["erasure_left"] = independent_erasure_check(a.app_url, a.redis, prefix, erasure)
        r["held_rows"] = sum(1 for _ in svc.holds(TENANT))
        print(f"yinsi queued: {len(queued)} with {a.workers} workers", file=sys.stderr)
        r["queued"] = yinsi_queued(svc, yinsi_url, a.app_url, a.redis, prefix, exports, queued, a.workers)
        r["tracemalloc_mib"] = memory_pass(svc, mem)
        svc.close()
        r["rss_mib"] = rss_mib()
        if a.fides:
            r["fides"] = run_fides(a.app_url, access[: a.fides_n], fides_erasure, access[a.fides_n: a.fides_n + a.fides_queued]
                                   if len(access) >= a.fides_n + a.fides_queued else queued[: a.fides_queued],
                                   a.fides_timeout)
        r["wall_s"] = time.perf_counter() - started
    finally:
        if a.yinsi_url is None:
            drop_db(yinsi_url)
    text_out = report(r, command)
    print(text_out)
    print(json.dumps({k: v for k, v in r.items() if k != "fides"}, default=str), file=sys.stderr)
    if not a.no_write:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(text_out, encoding="utf-8")
        print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
