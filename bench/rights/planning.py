#!/usr/bin/env python
"""Erasure and its planning as the data map grows: 1, 16, 64 and 256 tables, in one run, on PostgreSQL.

A synthetic app per size: a ``members`` table (the subject; its row stays, its name and e-mail are cleared)
and ``N - 1`` tables holding members' rows: fifteen in sixteen reference ``members`` by a foreign key
(``member_id``), every sixteenth references the table before it (``parent_id``) and reaches the member through
a join path, so the plan has foreign-key layers and join paths as a real map does. Each member has
``--rows`` rows in each table (and one grandchild row per parent row).

Measured per size, in the same run (the 1-table case is the baseline):

- **erasure**: ``submit`` + staff verification + ``run`` of a deletion of everything (ground: purpose
  done): the plan, one operation per table run layer by layer, each layer's steps recorded, the read-back
  of every location, the completion; Yinsi's own database is a scratch PostgreSQL database too;
- **planning**: ``erasure_order`` + ``erasure_operations`` + ``layers`` over the member's locations (what
  ``run_erasure`` computes before touching a store), in process, best of the repeats;
- **peak memory**: tracemalloc peak of one extra erasure per size (untimed), and the process's RSS.

Usage::

    .venv/bin/python bench/rights/planning.py [--admin-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Writes ``docs/benchmarks/rights-planning.md`` (then ``.venv/bin/python bench/collect.py``).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

TENANT = "kehutong"
POLICY = ROOT / "policies" / "kehutong-2021.yaml"
OUT = ROOT / "docs" / "benchmarks" / "rights-planning.md"
SIZES = (1, 16, 64, 256)


def table_names(n: int) -> list[str]:
    return [f"t{k:03d}" for k in range(1, n)]


def parent_of(k: int) -> int | None:
    """The table ``t{k}`` hangs off (every sixteenth one: the table before it), or None (it references members)."""
    return k - 1 if k % 16 == 0 else None


def datamap_yaml(n: int) -> str:
    lines = [
        "schema_version: 1", f"tenant: {TENANT}", 'declaration_version: "2021-10-25"', "subjects:",
        "  - id: member", "    name: 物业企业用户", "    store: app_db", "    table: members", "    key: id",
        "stores:", "  - id: app_db", "    kind: sql", "    name: 基准业务库", "    connection: {env: BENCH_APP_URL}",
        "    tables:", "      members:", "        reach: {member: {key: id}}", "        erase: keep_row",
        "        columns:", "          id: {not_pi: true, why: 内部编号}",
        "          name: {item: basic.name, erase: \"null\"}", "          email: {item: contact.email, erase: \"null\"}",
    ]
    for k in range(1, n):
        name = f"t{k:03d}"
        parent = parent_of(k)
        lines.append(f"      {name}:")
        if parent is None:
            lines += ["        reach: {member: {key: member_id}}", "        erase: delete_row", "        columns:",
                      "          member_id: {not_pi: true, why: 关联键}"]
        else:
            p = f"t{parent:03d}"
            lines += [f'        reach: {{member: {{join: ["{name}.parent_id -> {p}.id", "{p}.member_id -> members.id"]}}}}',
                      "        erase: delete_row", "        columns:", "          parent_id: {not_pi: true, why: 关联键}"]
        lines += ["          id: {not_pi: true, why: 内部编号}", "          name: {item: basic.name}",
                  "          email: {item: contact.email}"]
    return "\n".join(lines) + "\n"


def create_app(url: str, n: int, members: int, rows: int) -> None:
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT, email TEXT)"))
        c.execute(text("INSERT INTO members SELECT g, '会员' || g, 'm' || g || '@wuye.example' "
                       "FROM generate_series(1, :m) g"), {"m": members})
        for k in range(1, n):
            name, parent = f"t{k:03d}", parent_of(k)
            if parent is None:
                c.execute(text(f"CREATE TABLE {name} (id SERIAL PRIMARY KEY, member_id INTEGER NOT NULL "
                               f"REFERENCES members(id), name TEXT, email TEXT)"))
                c.execute(text(f"CREATE INDEX ON {name} (member_id)"))
                c.execute(text(f"INSERT INTO {name} (member_id, name, email) SELECT m, '会员' || m, "
                               f"'m' || m || '@wuye.example' FROM generate_series(1, :m) m, generate_series(1, :r) r"),
                          {"m": members, "r": rows})
            else:
                p = f"t{parent:03d}"
                c.execute(text(f"CREATE TABLE {name} (id SERIAL PRIMARY KEY, parent_id INTEGER NOT NULL "
                               f"REFERENCES {p}(id), name TEXT, email TEXT)"))
                c.execute(text(f"CREATE INDEX ON {name} (parent_id)"))
                c.execute(text(f"INSERT INTO {name} (parent_id, name, email) SELECT id, name, email FROM {p}"))
        c.execute(text("ANALYZE"))
    engine.dispose()


def create_db(admin_url: str) -> str:
    name = f"yinsi_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_db(admin_url: str, url: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def best_ms(fn: Callable[[], Any], repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return min(out)


def measure(n: int, yinsi_url: str, app_url: str, requests: int, repeat: int, members: int) -> dict[str, Any]:
    from yinsi.datamap_io import parse_datamap
    from yinsi.domain.rights import RequestType, State
    from yinsi.rights.plan import erasure_operations, layers
    from yinsi.rights.service import RightsService
    from yinsi.stores.plan import erasure_order

    dm = parse_datamap(datamap_yaml(n)).datamap
    svc = RightsService(yinsi_url, datamaps={TENANT: dm}, store_urls={"app_db": app_url}, channels={})
    subjects = iter(range(1, members + 1))

    def erase() -> float:
        t0 = time.perf_counter()
        rid = svc.submit(TENANT, str(next(subjects)), RequestType.DELETION, details={"ground": "purpose_done"})
        svc.mark_verified(TENANT, rid, "bench", "基准测试")
        state = svc.run(TENANT, rid, "bench")
        ms = (time.perf_counter() - t0) * 1000
        assert state is State.COMPLETED, state
        return ms

    erase()  # warm-up: reflection of the schema, connections (not reported)
    times = [erase() for _ in range(requests)]
    # planning alone, on the same connectors (reflected schema cached)
    connectors = svc.connectors(dm, TENANT)
    locations = dm.locations("member")
    subj = dm.subject("member") if hasattr(dm, "subject") else None
    deps = {sid: c.dependencies() for sid, c in connectors.items() if hasattr(c, "dependencies")}
    groups = erasure_order(locations, connectors)
    ops = erasure_operations(groups, subj)
    t_order = best_ms(lambda: erasure_order(locations, connectors), repeat)
    t_ops = best_ms(lambda: erasure_operations(groups, subj), repeat)
    t_layers = best_ms(lambda: layers(ops, deps), repeat)
    t_deps = best_ms(lambda: connectors["app_db"].dependencies(), repeat)
    tracemalloc.start()
    erase()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    svc.close()
    return {"tables": n, "locations": len(locations), "operations": len(ops), "layers": len(layers(ops, deps)),
            "erasure_ms": statistics.median(times), "erasure_p95_ms": max(times) if len(times) < 20 else
            sorted(times)[int(0.95 * (len(times) - 1))], "n": len(times),
            "order_ms": t_order, "ops_ms": t_ops, "layers_ms": t_layers, "deps_ms": t_deps,
            "planning_ms": t_order + t_ops + t_layers + t_deps, "tracemalloc_mib": peak}


def report(results: list[dict[str, Any]], command: str, load: tuple[float, float, float], started: str,
           wall: float, rss: float) -> str:
    base = results[0]
    lines = [
        "# Benchmark: erasure and its planning as the data map grows (1 → 256 tables)",
        "",
        f"- Command: `{command}`",
        f"- Date: {started}; wall time of the run {wall:.0f} s",
        f"- Machine: nproc={os.cpu_count()}, {platform.machine()}, {platform.system()} {platform.release()}; "
        f"load average at start {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} (shared machine, loaded by other work)",
        f"- Python {platform.python_version()}; the app and Yinsi's own database: scratch PostgreSQL databases on "
        "127.0.0.1; each size a fresh app database (members + N−1 tables, one in sixteen reached through a join path)",
        "",
        "| tables | locations | operations | layers | erasure p50 ms | erasure max ms | vs 1 table | per table ms "
        "| planning ms | planning vs 1 table | planning share | layers() ms | tracemalloc peak MiB |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        lines.append(
            f"| {r['tables']} | {r['locations']} | {r['operations']} | {r['layers']} | {r['erasure_ms']:.1f} | "
            f"{r['erasure_p95_ms']:.1f} | {r['erasure_ms'] / base['erasure_ms']:.1f}× | {r['erasure_ms'] / r['tables']:.2f} | "
            f"{r['planning_ms']:.2f} | {r['planning_ms'] / base['planning_ms']:.0f}× | "
            f"{100 * r['planning_ms'] / r['erasure_ms']:.1f} % | {r['layers_ms']:.2f} | {r['tracemalloc_mib']:.1f} |")
    lines += [
        "",
        f"Peak RSS of the benchmark process: {rss:.0f} MiB.",
        "",
        "Notes:",
        "- erasure: `submit` + staff verification + `run` of a deletion of every item (ground: purpose done), "
        f"median of {base['n']} requests per size after one warm-up request; the time includes Yinsi's bookkeeping "
        "(request row, transitions, one step row per operation recorded per layer, audit entries, the encrypted "
        "plan) and the read-back of every location (one query per store).",
        "- planning: `erasure_order` + `erasure_operations` + `layers` + the reflected foreign keys, in process, "
        "best of the repeats; the planning share is planning / erasure p50.",
        "- Erasure necessarily grows with the tables (one DELETE per table, each its own transaction); planning must grow "
        "no faster than the tables.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    p.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    p.add_argument("--requests", type=int, default=10)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--rows", type=int, default=2, help="rows per member in each table")
    p.add_argument("--no-write", action="store_true")
    a = p.parse_args()
    command = ".venv/bin/python bench/rights/planning.py " + " ".join(sys.argv[1:])
    load = os.getloadavg()
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    os.environ.setdefault("YINSI_DATA_DIR", tempfile.mkdtemp(prefix="yinsi-bench-data-"))
    members = a.requests + 2
    results = []
    from yinsi.services.publishing import publish
    from yinsi.storage import upgrade
    from yinsi.stores.sql import dispose_engines

    for n in (int(s) for s in a.sizes.split(",")):
        app_url, yinsi_url = create_db(a.admin_url), create_db(a.admin_url)
        try:
            create_app(app_url, n, members, a.rows)
            upgrade(yinsi_url)
            publish(POLICY, yinsi_url)
            r = measure(n, yinsi_url, app_url, a.requests, a.repeat, members)
            print(r, file=sys.stderr)
            results.append(r)
        finally:
            dispose_engines()
            drop_db(a.admin_url, app_url)
            drop_db(a.admin_url, yinsi_url)
    out = report(results, command, load, started, time.perf_counter() - t0,
                 resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(out)
    if not a.no_write:
        OUT.write_text(out, encoding="utf-8")
        print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
