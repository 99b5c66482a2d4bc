"""Free-text redaction per erasure request as the ticket table grows, beside a hand-written SQL baseline
measured in the same run, on PostgreSQL.

    .venv/bin/python bench/freetext/run.py [--sizes 10000,100000,1000000] [--requests 30]
        [--admin-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--write docs/benchmarks/freetext.md]

For each size: a scratch database holds ``residents`` (one per 4 tickets: a name and a mobile number) and
``tickets`` (realistic repair-ticket texts, each mentioning one or two residents by name and phone in the
written variants people use: 13812345678, 138 1234 5678, 138-1234-5678, +86 …), written with COPY; a
copy ``tickets_hand`` for the baseline; Yinsi's own tables in the same database. The free-text index is
built once (``yinsi freetext index``; its time is reported). Then for ``--requests`` distinct residents,
after 10 new tickets arrive (the tail the next request indexes first):

- **Yinsi**: the erasure's free-text step for the resident (index the tail, look the identifiers up,
  read the rows found, redact, write back, index them again) and the read-back of the column;
- **baseline**: ``UPDATE tickets_hand SET body = REPLACE(REPLACE(body, phone, '[已删除]'), name, '[已删除]')
  WHERE body LIKE '%phone%' OR body LIKE '%name%'`` (it finds only the plain written form of the phone,
  so it does less than Yinsi).

Reports the median time per request of each, their ratio, and the peak RSS of the process; checks with
independent SQL that the sampled residents' phones are gone from ``tickets``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
TENANT = "bench_ft"

MAP = """
schema_version: 1
tenant: bench_ft
subjects:
  - id: resident
    name: 住户
    store: app
    table: residents
    key: id
    attributes: {phone: phone, name: name}
    identifiers: [phone, name]
stores:
  - id: app
    kind: sql
    name: 物业库
    tables:
      residents:
        reach: {resident: {key: id}}
        erase: delete_row
        columns:
          id: {not_pi: true, why: 编号}
          name: {item: basic.name}
          phone: {item: contact.mobile}
      tickets:
        columns:
          id: {not_pi: true, why: 工单编号}
          body: {item: content.posts, free_text: true}
"""

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜"
            "崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉力梅琳丹雪晨宇浩然子涵欣怡俊杰思远"
         "嘉怡梓轩博文雨桐志强海燕春生秋菊冬梅")
PROBLEMS = ["厨房水管漏水", "卫生间下水道堵塞", "客厅灯不亮", "门锁坏了打不开", "空调外机噪音大", "楼道感应灯失灵",
            "阳台窗户关不严", "热水器不出热水", "墙面渗水发霉", "电梯按钮失灵", "燃气灶打不着火", "地漏返臭味"]
TIMES = ["明天上午", "今天下午", "周末", "工作日晚上七点后", "尽快", "下周一"]
WORKERS = "王李张刘陈杨"


def person(i: int, rng: random.Random) -> tuple[str, str]:
    """Resident ``i``: a name (2–3 characters) and a unique mobile number."""
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    phone = f"1{'3456789'[i % 7]}{(i * 7919 + 1234567) % 1_000_000_000:09d}"
    return name, phone


def written(phone: str, rng: random.Random) -> str:
    k = rng.randrange(5)
    if k == 0:
        return f"{phone[:3]} {phone[3:7]} {phone[7:]}"
    if k == 1:
        return f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"
    if k == 2:
        return f"+86 {phone}"
    return phone


def ticket(rng: random.Random, people: list[tuple[str, str]]) -> str:
    a, b = rng.choice(people), rng.choice(people)
    place = f"{rng.randint(1, 30)}号楼{rng.randint(1, 4)}单元{rng.randint(1, 30)}0{rng.randint(1, 4)}室"
    p, q = rng.choice(PROBLEMS), rng.choice(PROBLEMS)
    k = rng.randrange(6)
    if k == 0:
        return f"{place}{p}，联系人：{a[0]} 电话：{written(a[1], rng)}，{rng.choice(TIMES)}上门。"
    if k == 1:
        return f"业主{a[0]}（{written(a[1], rng)}）反映{p}，邻居{b[0]}也说{q}。"
    if k == 2:
        return f"{a[0]}先生来电 {written(a[1], rng)}，称{place}{p}，已派{rng.choice(WORKERS)}师傅处理。"
    if k == 3:
        return f"访客登记：{a[0]}，手机{written(a[1], rng)}，拜访{place}住户{b[0]}。"
    if k == 4:
        return (f"{p}，报修人{a[0]}，回访电话 {written(a[1], rng)}；{b[0]}女士（{written(b[1], rng)}）"
                f"为紧急联系人，{rng.choice(TIMES)}可上门。")
    return f"公共区域{p}，保洁已处理，无联系人。"


def copy_rows(url: str, table: str, columns: str, rows: Any) -> None:
    """COPY rows (tuples) into ``table`` through psycopg."""
    import psycopg

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
        conn.commit()


def one_size(admin_url: str, n: int, requests: int, seed: int) -> dict[str, Any]:
    from yinsi.datamap_io import parse_datamap
    from yinsi.domain import freetext as ft
    from yinsi.rights import freetext
    from yinsi.rights.context import RightsContext
    from yinsi.storage import upgrade
    from yinsi.storage.tables import Tenant
    from yinsi.stores.sql import dispose_engines

    name = f"yinsi_bench_ft_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        rng = random.Random(seed)
        n_people = max(1000, n // 4)
        people = [person(i, rng) for i in range(n_people)]
        eng = create_engine(url)
        with eng.begin() as c:
            c.execute(text("CREATE TABLE residents (id INTEGER PRIMARY KEY, name VARCHAR(20), phone VARCHAR(20))"))
            c.execute(text("CREATE TABLE tickets (id BIGINT PRIMARY KEY, body TEXT)"))
        t0 = time.perf_counter()
        copy_rows(url, "residents", "id, name, phone", ((i, nm, ph) for i, (nm, ph) in enumerate(people)))
        copy_rows(url, "tickets", "id, body", ((i, ticket(rng, people)) for i in range(1, n + 1)))
        with eng.begin() as c:
            c.execute(text("CREATE INDEX ON residents (name)"))  # looked up for namesakes, as a CRM's search does
            c.execute(text("CREATE TABLE tickets_hand AS SELECT * FROM tickets"))
            c.execute(text("ALTER TABLE tickets_hand ADD PRIMARY KEY (id)"))
            c.execute(text("ANALYZE"))
        t_gen = time.perf_counter() - t0
        upgrade(url)
        dm = parse_datamap(MAP).datamap
        ctx = RightsContext(url, datamaps={TENANT: dm}, store_urls={"app": url})
        with ctx.tx() as s:
            s.add(Tenant(id=TENANT, name="物业", created_at=datetime.now(UTC)))
        ctx.audit.ensure_tenant_keys(TENANT)
        t0 = time.perf_counter()
        freetext.build_index(ctx, TENANT, dm)
        t_index = time.perf_counter() - t0
        with eng.connect() as c:
            tokens = int(c.execute(text("SELECT count(*) FROM freetext_tokens")).scalar() or 0)
        col = freetext.free_text_columns(dm)[0]
        index = freetext.tenant_index(ctx, TENANT)
        conn = ctx.connector(dm, TENANT, "app")
        subj = dm.subject("resident")
        assert subj is not None
        sample = rng.sample(range(n_people), requests)
        others = [p for i, p in enumerate(people) if i not in set(sample)]  # new tickets mention the others
        ours: list[float] = []
        checks: list[float] = []
        hand: list[float] = []
        rows_changed: list[int] = []
        namesakes = 0
        next_id = n + 1
        for pid in sample:
            pname, pphone = people[pid]
            with eng.begin() as c:  # the app keeps writing: 10 new tickets before each request
                c.execute(text("INSERT INTO tickets (id, body) VALUES (:i, :b)"),
                          [{"i": next_id + k, "b": ticket(rng, others)} for k in range(10)])
                c.execute(text("INSERT INTO tickets_hand SELECT * FROM tickets WHERE id >= :i"), {"i": next_id})
            next_id += 10
            idents = freetext.person_identifiers(dm, subj, {"phone": pphone, "name": pname})
            t0 = time.perf_counter()
            shared = freetext.shared_names(dm, subj, conn, str(pid), {"phone": pphone, "name": pname})
            detail = freetext.redact_column(index, conn, col, idents, shared)
            ours.append(time.perf_counter() - t0)
            rows_changed.append(int(detail["affected"]))
            namesakes += bool(shared)
            t0 = time.perf_counter()
            left = freetext.remaining(index, conn, col, idents, detail["rows"], shared)
            checks.append(time.perf_counter() - t0)
            assert not left, left
            t0 = time.perf_counter()
            with eng.begin() as c:
                c.execute(text("UPDATE tickets_hand SET body = REPLACE(REPLACE(body, :p, '[已删除]'), :n, '[已删除]') "
                               "WHERE body LIKE :lp OR body LIKE :ln"),
                          {"p": pphone, "n": pname, "lp": f"%{pphone}%", "ln": f"%{pname}%"})
            hand.append(time.perf_counter() - t0)
        with eng.connect() as c:  # independent SQL: the sampled phones are gone in every written form
            for pid in sample[:5]:
                ph = people[pid][1]
                found = c.execute(text("SELECT count(*) FROM tickets WHERE REPLACE(REPLACE(REPLACE(body, ' ', ''), "
                                       "'-', ''), '+86', '') LIKE :p"), {"p": f"%{ph}%"}).scalar()
                assert found == 0, (ph, found)
        assert ft.MARKER
        ctx.close()
        eng.dispose()
        dispose_engines()
        return {"n": n, "people": n_people, "gen": t_gen, "index": t_index, "tokens": tokens,
                "ours": statistics.median(ours), "check": statistics.median(checks), "hand": statistics.median(hand),
                "rows": statistics.median(rows_changed), "namesakes": namesakes}
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--write", type=Path, default=None, help="write the results as markdown to this file")
    args = ap.parse_args()
    os.environ.setdefault("YINSI_DATA_DIR", tempfile.mkdtemp(prefix="yinsi-bench-ft-"))
    load_before = os.getloadavg()
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        r = one_size(args.admin_url, n, args.requests, args.seed)
        results.append(r)
        print(f"{r['n']:>9,} tickets: generate {r['gen']:.1f} s, index {r['index']:.1f} s ({r['tokens']:,} tokens); "
              f"per request: Yinsi {r['ours'] * 1000:.1f} ms (+ read-back {r['check'] * 1000:.1f} ms), "
              f"baseline {r['hand'] * 1000:.1f} ms, ratio {r['hand'] / r['ours']:.1f}x; rows changed {r['rows']}; "
              f"with namesakes {r['namesakes']}/{args.requests}",
              flush=True)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        load_after = os.getloadavg()
        print(f"peak RSS {peak:.0f} MiB; load average before {load_before[0]:.2f}, now {load_after[0]:.2f}", flush=True)
        if args.write is not None:  # after every size, so a long run leaves its results so far
            args.write.write_text(markdown(args, results, peak, load_before, load_after), encoding="utf-8")
            print(f"wrote {args.write}", flush=True)
    return 0


def markdown(args: Any, results: list[dict[str, Any]], peak: float, before: tuple[float, ...],
             after: tuple[float, ...]) -> str:
    lines = [
        "# Benchmark: free-text redaction per erasure request as the table grows (`bench/freetext/run.py`)",
        "",
        "```sh",
        f".venv/bin/python bench/freetext/run.py --sizes {args.sizes} --requests {args.requests} "
        f"--write docs/benchmarks/freetext.md",
        "```",
        "",
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC, {platform.node() or 'this machine'} "
        f"({os.cpu_count()} cores, shared with other work: load average {before[0]:.2f} before, {after[0]:.2f} after), "
        "PostgreSQL on the same machine. Per size a scratch database: residents (one per 4 tickets), repair "
        "tickets written with COPY, each mentioning one or two residents by name and phone in the written "
        "variants people use; Yinsi's tables in the same database. Per request (median over "
        f"{args.requests} distinct residents, 10 new tickets arriving before each): **Yinsi** = the erasure's "
        "free-text step (look for namesakes in `residents`, index the tail, look the identifiers up, read the "
        "rows found, redact, write back, index them again); **read-back** = the column searched again for the "
        "identifiers; **baseline** = one "
        "hand-written `UPDATE tickets_hand SET body = REPLACE(REPLACE(body, phone, '[已删除]'), name, '[已删除]') "
        "WHERE body LIKE '%phone%' OR body LIKE '%name%'` on a copy of the table, in the same run (it finds only "
        "the plain written form of the phone: it does less).",
        "",
        "| tickets | residents | index build (once) | tokens | Yinsi per request | read-back | baseline per request "
        "| baseline ÷ Yinsi | rows changed (median) | residents with a namesake |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r['n']:,} | {r['people']:,} | {r['index']:.1f} s ({r['n'] / r['index']:,.0f} rows/s) | "
                     f"{r['tokens']:,} | {r['ours'] * 1000:.1f} ms | {r['check'] * 1000:.1f} ms | "
                     f"{r['hand'] * 1000:.1f} ms | {r['hand'] / r['ours']:.1f}× | {r['rows']:.0f} | "
                     f"{r['namesakes']} of {args.requests} |")
    first, last = results[0], results[-1]
    growth = last["ours"] / first["ours"]
    size = last["n"] / first["n"]
    lines += [
        "",
        f"Peak RSS of the process: {peak:.0f} MiB (the largest size; ticket generation included).",
        "",
        f"From {first['n']:,} to {last['n']:,} tickets ({size:,.0f}× the rows) Yinsi's time per request changes "
        f"{growth:.2f}× (an index lookup, plus the tail and the rows that mention the person: flat), the "
        f"baseline's {last['hand'] / first['hand']:.1f}× (a scan of the whole column per request: linear).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
