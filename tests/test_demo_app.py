"""The 微聊客 demo app: schema and generator on SQLite, PostgreSQL and MariaDB, plus Redis.

Generated values are checked with independent implementations of the checksums (not the generator's).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from yinsi.cli.demoapp_cmds import load_demo_app
from yinsi.cli.main import app
from yinsi.storage.engine import make_engine

demo = load_demo_app()
runner = CliRunner()

REDIS_URL = os.environ.get("YINSI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# 号段 of China Mobile, Unicom and Telecom (independent of the generator's list).
MOBILE = re.compile(r"^1(3\d|4[5-9]|5[0-35-9]|6[67]|7[1-35-8]|8\d|9[0-35-9])\d{8}$")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
PROVINCES = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54,
             61, 62, 63, 64, 65}


# ---------------------------------------------------------------------------------------- helpers
def redis_or_skip() -> Any:
    """A Redis client, or skip (fail when ``YINSI_REQUIRE_SERVICES=1``) if Redis is unreachable."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        return client
    except Exception as exc:  # ImportError or a connection error: both mean "no Redis here"
        message = f"Redis 不可用: {REDIS_URL}: {exc}"
        if os.environ.get("YINSI_REQUIRE_SERVICES") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture
def redis_ns() -> Iterator[tuple[Any, str]]:
    """(client, a unique key prefix); every key under the prefix is deleted afterwards."""
    client = redis_or_skip()
    prefix = f"yinsi-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield client, prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def dump(url: str) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every demo table, as strings, ordered by id."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: [tuple(_text(v) for v in row) for row in conn.execute(select(t).order_by(t.c.id))]
                    for t in demo.TABLES}
    finally:
        engine.dispose()


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def orphans(url: str) -> dict[str, int]:
    """Rows whose foreign key points nowhere, per ``table.column``."""
    engine = make_engine(url)
    out: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            for t in demo.TABLES:
                for fk in t.foreign_keys:
                    parent = fk.column.table
                    q = (select(func.count()).select_from(t.outerjoin(parent, fk.parent == fk.column))
                         .where(fk.parent.is_not(None), fk.column.is_(None)))
                    out[f"{t.name}.{fk.parent.name}"] = int(conn.execute(q).scalar_one())
    finally:
        engine.dispose()
    return out


def id_number_ok(value: str) -> bool:
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], ID_WEIGHTS, strict=True))
    if "10X98765432"[total % 11] != value[17] or int(value[:2]) not in PROVINCES:
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return date(1940, 1, 1) <= born <= date(2010, 1, 1)


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    return sum(d if k % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for k, d in enumerate(digits)) % 10 == 0


def uscc_ok(code: str) -> bool:
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    if len(code) != 18 or any(c not in chars for c in code):
        return False
    total = sum(chars.index(c) * w for c, w in zip(code[:17], weights, strict=True))
    return chars[(31 - total % 31) % 31] == code[17]


def sqlite_url(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{(tmp_path / name).as_posix()}"


def create(url: str) -> None:
    engine = make_engine(url)
    try:
        demo.create_schema(engine)
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------------ tests
def test_schema_and_200_users_load_on_each_backend_consistently(db_url: str, tmp_path: Path) -> None:
    create(db_url)
    result = demo.seed(db_url, 200, 11, chunk_size=64)
    engine = make_engine(db_url)
    try:
        counts = demo.stats(engine)
    finally:
        engine.dispose()
    assert counts == result.rows_by_table
    assert counts["agents"] == 200 and counts["properties"] == 50
    per_user = {"property_bindings": 1.9, "posts": 5, "chat_messages": 20, "devices": 3, "login_logs": 10,
                "customers": 4, "orders": 0.95}
    for table, mean in per_user.items():
        assert 0.7 * mean * 200 <= counts[table] <= 1.3 * mean * 200, (table, counts[table])
    assert all(n == 0 for n in orphans(db_url).values()), orphans(db_url)
    # the same seed gives the same rows on SQLite: nothing is lost or changed by COPY, utf8mb4, ...
    reference = sqlite_url(tmp_path, "reference.db")
    create(reference)
    demo.seed(reference, 200, 11, chunk_size=200)
    assert dump(db_url) == dump(reference)


def test_seeding_a_non_empty_database_appends_with_new_ids(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path, "append.db")
    create(url)
    first = demo.seed(url, 30, 1)
    second = demo.seed(url, 20, 1)
    assert (first.first_agent_id, second.first_agent_id) == (1, 31)
    rows = dump(url)
    assert [int(r[0]) for r in rows["agents"]] == list(range(1, 51))
    phones = [r[1] for r in rows["agents"]]
    assert len(set(phones)) == 50  # phone numbers are unique per agent id, whatever the seed
    assert rows["properties"] and all(n == 0 for n in orphans(url).values())


def test_generated_values_are_valid_chinese_data(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path, "valid.db")
    create(url)
    demo.seed(url, 200, 3)
    rows = dump(url)
    agents = rows["agents"]
    ids = [r[3] for r in agents if r[3] != "NULL"]
    assert len(ids) > 150 and all(id_number_ok(v) for v in ids), [v for v in ids if not id_number_ok(v)]
    cards = [r[6] for r in agents if r[6] != "NULL"]
    assert len(cards) > 60 and all(luhn_ok(c) and len(c) in (16, 18, 19) for c in cards)
    phones = [r[1] for r in agents] + [r[7] for r in agents if r[7] != "NULL"]
    phones += [r[3] for r in rows["customers"] if r[3] != "NULL"]
    assert all(MOBILE.match(p) for p in phones), [p for p in phones if not MOBILE.match(p)]
    names = [r[2] for r in agents if r[2] != "NULL"]
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,4}", n) for n in names)
    imeis = [r[3] for r in rows["devices"] if r[3] != "NULL"]
    assert imeis and all(len(i) == 15 and luhn_ok(i) for i in imeis)
    taxes = [r[4] for r in rows["invoices"] if r[4] != "NULL"]
    assert taxes and all(uscc_ok(t) for t in taxes)
    for r in rows["property_bindings"]:
        assert id_number_ok(r[4]) and MOBILE.match(r[5])
    assert all(re.fullmatch(r"WLK\d{8}\d{10}", r[1]) for r in rows["orders"])
    private = re.compile(r"^(10\.|127\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)")
    assert not [r[2] for r in rows["login_logs"] if private.match(r[2])]
    addresses = [r[10] for r in rows["orders"] if r[10] != "NULL"]
    assert all(re.search(r"(省|市|自治区).*(区).*号.*栋.*单元.*室$", a) for a in addresses)
    face_refs = [r[5] for r in agents if r[5] != "NULL"]
    assert face_refs and all(re.fullmatch(r"[0-9a-f]{64}", f) for f in face_refs)  # a reference, never an image
    locations = [r for r in rows["chat_messages"] if r[4] == "location"]
    assert locations and all(r[6] != "NULL" and r[7] != "NULL" for r in locations)


def test_seed_is_deterministic_whatever_the_chunking(tmp_path: Path) -> None:
    urls = [sqlite_url(tmp_path, f"d{k}.db") for k in range(3)]
    for url in urls:
        create(url)
    demo.seed(urls[0], 60, 42, chunk_size=60)
    demo.seed(urls[1], 60, 42, chunk_size=7)
    demo.seed(urls[2], 60, 43)
    a, b, c = (dump(u) for u in urls)
    assert a == b
    assert a["agents"] != c["agents"]


def test_seed_refuses_a_database_without_the_schema_in_chinese(tmp_path: Path) -> None:
    with pytest.raises(demo.DemoAppError, match="请先运行 yinsi demo-app create"):
        demo.seed(sqlite_url(tmp_path, "empty.db"), 5)


def test_redis_sessions_and_sms_codes(tmp_path: Path, redis_ns: tuple[Any, str]) -> None:
    client, prefix = redis_ns
    url = sqlite_url(tmp_path, "r.db")
    create(url)
    result = demo.seed(url, 200, 9, redis_url=REDIS_URL, redis_prefix=prefix)
    shapes = demo.redis_stats(client, prefix)
    assert set(shapes) == {"session:*", "sms:code:*", "user:*:sessions"}
    assert shapes["session:*"] == shapes["user:*:sessions"] > 40
    assert result.redis_commands == sum(shapes.values())
    agent_phones = {r[0]: r[1] for r in dump(url)["agents"]}
    for key in list(client.scan_iter(match=f"{prefix}user:*:sessions"))[:10]:
        user = key.decode().split(":")[-2]
        for token in client.smembers(key):
            session = f"{prefix}session:{token.decode()}"
            assert client.get(session).decode() == user
            assert 0 < client.ttl(session) <= 7 * 86400
    for key in client.scan_iter(match=f"{prefix}sms:code:*"):
        assert key.decode().rsplit(":", 1)[1] in agent_phones.values()
        assert 0 < client.ttl(key) <= 300 and re.fullmatch(rb"\d{6}", client.get(key))


def test_cli_create_seed_stats(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path, "cli.db")
    created = runner.invoke(app, ["demo-app", "create", "--url", url])
    assert created.exit_code == 0, created.output
    assert "已创建 13 张表" in created.output
    seeded = runner.invoke(app, ["demo-app", "seed", "--users", "25", "--url", url, "--seed", "5", "--json"])
    assert seeded.exit_code == 0, seeded.output
    out = json.loads(seeded.stdout)
    assert out["users"] == 25 and out["first_agent_id"] == 1 and out["rows"] == sum(out["rows_by_table"].values())
    stats = runner.invoke(app, ["demo-app", "stats", "--url", url, "--json"])
    assert stats.exit_code == 0
    assert json.loads(stats.stdout)["tables"] == out["rows_by_table"]
    again = runner.invoke(app, ["demo-app", "create", "--url", url])
    assert "都已存在" in again.output


def test_cli_seed_without_schema_exits_1_with_a_chinese_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo-app", "seed", "--users", "3", "--url", sqlite_url(tmp_path, "none.db")])
    assert result.exit_code == 1
    assert "请先运行 yinsi demo-app create" in result.output
