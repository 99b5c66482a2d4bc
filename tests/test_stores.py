"""Store connectors against the 微聊客 demo app (real foreign keys) on SQLite, PostgreSQL and MariaDB, plus
Redis, using the demo app's own data map.

The expected values are computed with independent hand-written SQL, not with the connectors.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from yinsi.cli.demoapp_cmds import load_demo_app
from yinsi.datamap_io import load_datamap, parse_datamap, with_key_prefixes
from yinsi.domain.datamap import DataMap, EraseAction, Location, RowAction, StoreKind
from yinsi.storage.engine import make_engine
from yinsi.stores import (
    AttributesUnavailable,
    Connector,
    ManualStepPending,
    access_order,
    connector_for,
    erasure_order,
    resolve_attributes,
)
from yinsi.stores.redis_store import RedisConnector
from yinsi.stores.sql import SqlConnector, dispose_engines

demo = load_demo_app()
ROOT = Path(__file__).resolve().parents[1]
MAP = ROOT / "examples" / "weiliaoke_app" / "datamap.yaml"
REDIS_URL = os.environ.get("YINSI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
USERS = 20


def pseud(value: str) -> str:
    """A deterministic test pseudonymiser in Yinsi's shape (``p_`` + 26 characters)."""
    return "p_" + hashlib.sha256(value.encode()).hexdigest()[:26]


def redis_client() -> tuple[Any, str | None]:
    """(a Redis client, None), or (None, why Redis is unreachable)."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        return client, None
    except Exception as exc:  # ImportError or a connection error: both mean "no Redis here"
        return None, f"Redis 不可用: {REDIS_URL}: {exc}"


def need_redis(reason: str | None) -> None:
    """Skip the test (fail it when ``YINSI_REQUIRE_SERVICES=1``) if Redis is unreachable."""
    if reason is not None:
        if os.environ.get("YINSI_REQUIRE_SERVICES") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


# ------------------------------------------------------------------------------------------- world
@dataclass
class World:
    url: str
    engine: Engine
    redis: Any  # None when Redis is unreachable: tests that need it call need_redis(world.no_redis)
    no_redis: str | None
    prefix: str
    dm: DataMap
    urls: dict[str, str]
    agent: int  # the agent whose data is erased
    other: int  # another agent with Redis keys, never touched
    phone: str

    def connectors(self, dm: DataMap | None = None) -> dict[str, Connector]:
        dm = dm or self.dm
        return {s.id: connector_for(dm, s.id, urls=self.urls, pseudonymise=pseud) for s in dm.stores}

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()


#: Independent SQL: the rows of each table reaching an agent.
AGENT_ROWS = {
    "agents": "id = :a",
    "invoices": "order_id IN (SELECT o.id FROM orders o WHERE o.agent_id = :a)",
}


def agent_where(table: str) -> str:
    return AGENT_ROWS.get(table, "agent_id = :a")


def dump(engine: Engine) -> dict[str, dict[int, tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {t.name: {int(r[0]): tuple(r) for r in conn.execute(t.select().order_by(t.c.id))}
                for t in demo.TABLES}


def redis_dump(client: Any, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        kind = client.type(key)
        out[key.decode()] = sorted(client.smembers(key)) if kind == b"set" else client.get(key)
    return out


def ensure_cash_prize(conn: Any, agent: int) -> None:
    """Give the agent a cash prize record (with the ID number kept for tax) unless it has one."""
    if not conn.execute(text("SELECT count(*) FROM prize_records WHERE agent_id = :a"), {"a": agent}).scalar():
        top = conn.execute(text("SELECT coalesce(max(id), 0) FROM prize_records")).scalar()
        conn.execute(text(
            "INSERT INTO prize_records (id, agent_id, campaign, prize, winner_name, phone, address, id_number,"
            " created_at) SELECT :id, id, '春季冲刺', '现金红包500元', name, phone, '上海市浦东新区世纪大道100号',"
            " id_number, created_at FROM agents WHERE id = :a"), {"id": int(top) + 1, "a": agent})


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    client, no_redis = redis_client()
    prefix = f"yinsi-test-{uuid.uuid4().hex[:12]}:"
    engine = make_engine(db_url)
    try:
        demo.create_schema(engine)
        demo.seed(db_url, USERS, 7, chunk_size=64)
        dm = with_key_prefixes(load_datamap(MAP).datamap, {"cache": prefix})
        sql_locs = [loc for loc in dm.locations("agent") if loc.store_kind is StoreKind.SQL]
        with engine.connect() as conn:
            def coverage(aid: int) -> int:
                return sum(1 for loc in sql_locs if conn.execute(text(
                    f"SELECT count(*) FROM {loc.table} WHERE {loc.column} IS NOT NULL AND {agent_where(str(loc.table))}"
                ), {"a": aid}).scalar())
            agents = [int(a) for a in conn.execute(text(
                "SELECT DISTINCT o.agent_id FROM orders o JOIN invoices i ON i.order_id = o.id ORDER BY 1")).scalars()]
            agent = max(agents, key=lambda a: (coverage(a), -a))
            other = next(a for a in range(1, USERS + 1) if a != agent)
            phones = dict(conn.execute(text("SELECT id, phone FROM agents")).all())
        with engine.begin() as conn:  # make sure the agent has a (cash) prize record: every table then holds data
            ensure_cash_prize(conn, agent)
            conn.execute(text(  # and every optional column of its account row is filled
                "UPDATE agents SET face_verify_result = coalesce(face_verify_result, 'passed'),"
                " face_ref = coalesce(face_ref, :ref), bank_card = coalesce(bank_card, '6222020200112233445'),"
                " bank_reserved_phone = coalesce(bank_reserved_phone, phone),"
                " avatar_url = coalesce(avatar_url, 'https://img.example.cn/a/1.jpg') WHERE id = :a"),
                {"a": agent, "ref": "f" * 64})
        for aid in (agent, other) if client is not None else ():
            for k in range(2):
                token = f"{aid:04d}{k}" + "ab" * 13
                client.set(f"{prefix}session:{token}", str(aid), ex=3600)
                client.sadd(f"{prefix}user:{aid}:sessions", token)
            client.set(f"{prefix}sms:code:{phones[aid]}", "123456", ex=300)
        yield World(db_url, engine, client, no_redis, prefix, dm, {"app_db": db_url, "cache": REDIS_URL}, agent, other,
                    str(phones[agent]))
    finally:
        if client is not None:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
        engine.dispose()
        dispose_engines()  # before the scratch database is dropped


def is_hold(loc: Location) -> bool:
    return loc.erase is EraseAction.KEEP_LEGAL_HOLD or loc.row_erase is RowAction.KEEP_LEGAL_HOLD


# ------------------------------------------------------------------------------------------- tests
def test_cancellation_reads_erases_and_verifies_every_location(world: World) -> None:
    w = world
    need_redis(w.no_redis)
    a = str(w.agent)
    locs = w.dm.locations("agent")
    conns = w.connectors()
    assert isinstance(conns["app_db"], SqlConnector) and isinstance(conns["cache"], RedisConnector)

    # the phone is read at plan time, before the SQL side nulls it
    attrs = resolve_attributes(w.dm, a, w.urls)
    assert attrs == {"phone": w.phone}
    cache = conns["cache"]
    assert isinstance(cache, RedisConnector)
    cache.bind(attrs, a)

    # read: every SQL location matches an independent count; Redis finds sessions and the SMS code
    present = 0
    for loc in access_order(locs):
        rows = conns[loc.store].read(loc, a)
        if loc.store_kind is StoreKind.SQL:
            expected = w.scalar(f"SELECT count(*) FROM {loc.table} WHERE {loc.column} IS NOT NULL "
                                f"AND {agent_where(str(loc.table))}", a=w.agent)
            assert len(rows) == expected, loc.id
            assert all(r.key.startswith(f"{loc.table}:id=") and set(r.values) == {loc.column} for r in rows)
            present += bool(rows)
        elif loc.store_kind is StoreKind.REDIS:
            assert rows, loc.id
        else:
            assert rows == []
    sql_locs = [loc for loc in locs if loc.store_kind is StoreKind.SQL]
    assert present == len(sql_locs)  # the chosen agent has data at every SQL location
    by_id = {loc.id: loc for loc in locs}
    assert {r.key for r in cache.read(by_id["cache:sms:code:{phone}@agent"], a)} == {
        f"redis:{w.prefix}sms:code:{w.phone}"}
    sessions = cache.read(by_id["cache:session:{token}@agent"], a)
    assert len(sessions) == 2 and all(r.values == {"value": a} for r in sessions)
    assert cache.read(by_id["cache:user:{subject}:sessions@agent"], a)[0].values["value"] == sorted(
        f"{w.agent:04d}{k}" + "ab" * 13 for k in range(2))

    before = dump(w.engine)
    own: dict[str, set[int]] = {}
    with w.engine.connect() as conn:
        for t in before:
            if t in ("properties", "ip_logs", "customers"):
                own[t] = set()
                continue
            own[t] = {int(r[0]) for r in conn.execute(text(f"SELECT id FROM {t} WHERE {agent_where(t)}"),
                                                      {"a": w.agent})}
    other_keys = {f"{w.prefix}session:{w.other:04d}{k}" + "ab" * 13 for k in range(2)} | {
        f"{w.prefix}user:{w.other}:sessions", f"{w.prefix}sms:code:{before['agents'][w.other][1]}"}
    others_redis = {k: v for k, v in redis_dump(w.redis, w.prefix).items() if k in other_keys}
    assert len(others_redis) == 4

    # erase in plan order, with the real foreign keys on (SQLite: PRAGMA foreign_keys=ON)
    if w.engine.dialect.name == "sqlite":
        assert w.scalar("PRAGMA foreign_keys") == 1
    held: dict[str, int] = {}
    pending: list[ManualStepPending] = []
    results = {}
    for group in erasure_order(locs, conns):
        for loc in group:
            conn = conns[loc.store]
            if is_hold(loc):
                rows = conn.read(loc, a, whole=True)
                assert all(len(r.values) > 1 for r in rows)
                held.setdefault(str(loc.table), len(rows))  # the first capture holds the whole rows
            try:
                results[loc.id] = conn.erase(loc, a)
            except ManualStepPending as exc:
                pending.append(exc)
    assert held["orders"] >= 1 and held["invoices"] >= 1 and held["login_logs"] >= 1
    assert len(pending) == 4 and {p.who for p in pending} == {"实名认证运营专员", "市场部活动运营"}
    assert results["app_db.agents.phone@agent"].detail == "置空 1 行"
    assert results["app_db.orders.order_no@agent"].detail.startswith("移出业务表")

    # read-back: nothing is left anywhere
    for loc in locs:
        assert conns[loc.store].remaining(loc, a) == [], loc.id
    after = dump(w.engine)
    tomb = after["agents"][w.agent]
    assert tomb[1:9] == (None,) * 8 and tomb[9] == before["agents"][w.agent][9]  # PI gone, status and row stay
    for t, rows in before.items():
        kept = {i: r for i, r in rows.items() if i not in own[t]}
        assert {i: after[t][i] for i in kept} == kept, t  # other agents' rows untouched
        if t != "agents":
            assert not own[t] & set(after[t]), t
    assert {k: v for k, v in redis_dump(w.redis, w.prefix).items() if k in others_redis} == others_redis
    assert not [k for k in redis_dump(w.redis, w.prefix) if k not in others_redis]

    # repeating is a no-op
    for group in erasure_order(locs, conns):
        for loc in group:
            if loc.store_kind is not StoreKind.MANUAL:
                again = conns[loc.store].erase(loc, a)
                assert (again.affected, again.detail) == (0, "已无数据"), loc.id
    assert dump(w.engine) == after


def test_children_are_deleted_before_parents_and_foreign_keys_are_enforced(world: World) -> None:
    w = world
    conns = w.connectors()
    customer = w.scalar("SELECT min(customer_id) FROM chat_messages")
    c = str(customer)
    locs = w.dm.locations("customer")
    groups = erasure_order(locs, conns)
    tables = [g[0].table for g in groups]
    assert tables == ["chat_messages", "customers"]
    name = next(loc for loc in locs if loc.id == "app_db.customers.name@customer")
    with pytest.raises(IntegrityError):  # the parent first: the database refuses, nothing is half-done
        conns["app_db"].erase(name, c)
    assert w.scalar("SELECT count(*) FROM customers WHERE id = :c", c=customer) == 1
    chats = w.scalar("SELECT count(*) FROM chat_messages WHERE customer_id = :c", c=customer)
    total = w.scalar("SELECT count(*) FROM chat_messages")
    done = [conns[loc.store].erase(loc, c).affected for g in groups for loc in g]
    assert sum(done) == chats + 1
    assert all(conns[loc.store].remaining(loc, c) == [] for loc in locs)
    assert w.scalar("SELECT count(*) FROM chat_messages") == total - chats


def test_pseudonymise_is_deterministic_and_idempotent_and_correct_updates(world: World) -> None:
    w = world
    raw = MAP.read_text(encoding="utf-8")
    old = 'name: {item: basic.name, erase: "null"}'
    assert raw.count(old) == 1
    dm = with_key_prefixes(parse_datamap(raw.replace(old, "name: {item: basic.name, erase: pseudonymise}")).datamap,
                           {"cache": w.prefix})
    sql = connector_for(dm, "app_db", urls=w.urls, pseudonymise=pseud)
    loc = next(x for x in dm.locations("agent") if x.id == "app_db.agents.name@agent")
    a = str(w.agent)
    original = w.scalar("SELECT name FROM agents WHERE id = :a", a=w.agent)
    assert [r.values for r in sql.remaining(loc, a)] == [{"name": original}]
    first = sql.erase(loc, a)
    assert (first.affected, first.detail) == (1, "假名化 1 行")
    assert w.scalar("SELECT name FROM agents WHERE id = :a", a=w.agent) == pseud(original)
    assert sql.erase(loc, a).affected == 0
    assert sql.remaining(loc, a) == []
    other_name = w.scalar("SELECT name FROM agents WHERE id = :o", o=w.other)
    assert sql.erase(loc, str(w.other)).affected == 1
    assert w.scalar("SELECT name FROM agents WHERE id = :o", o=w.other) == pseud(other_name)  # same function

    # correct: the column of the subject's row; one row of many by its key
    avatar = next(x for x in dm.locations("agent") if x.id == "app_db.agents.avatar_url@agent")
    assert sql.correct(avatar, a, "https://img.example.cn/a/new.jpg") == 1
    assert [r.values for r in sql.read(avatar, a)] == [{"avatar_url": "https://img.example.cn/a/new.jpg"}]
    body = next(x for x in dm.locations("agent") if x.id == "app_db.posts.body@agent")
    posts = sql.read(body, a)
    assert len(posts) >= 2
    assert isinstance(sql, SqlConnector)
    assert sql.correct(body, a, "已更正的内容", row_key=posts[0].key) == 1
    now = {r.key: r.values["body"] for r in sql.read(body, a)}
    assert now[posts[0].key] == "已更正的内容"
    assert all(now[r.key] == r.values["body"] for r in posts[1:])


def test_redis_keys_need_the_attributes_read_before_the_sql_side_erases(world: World) -> None:
    w = world
    need_redis(w.no_redis)
    a = str(w.agent)
    locs = {loc.id: loc for loc in w.dm.locations("agent")}
    sms = locs["cache:sms:code:{phone}@agent"]
    planned = resolve_attributes(w.dm, a, w.urls)
    early = w.connectors()["cache"]
    assert isinstance(early, RedisConnector)
    assert early.read(sms, a)  # an unbound connector reads the phone itself and keeps it
    sql = w.connectors()["app_db"]
    sql.erase(locs["app_db.agents.phone@agent"], a)
    assert resolve_attributes(w.dm, a, w.urls) == {}

    late = w.connectors()["cache"]
    assert isinstance(late, RedisConnector)
    assert late.read(sms, a) == []  # access: nothing can be found any more
    with pytest.raises(AttributesUnavailable, match="phone"):
        late.erase(sms, a)  # erasure and read-back refuse to pretend the key is gone
    with pytest.raises(AttributesUnavailable):
        late.remaining(sms, a)
    assert len(early.remaining(sms, a)) == 1

    bound = w.connectors()["cache"]
    assert isinstance(bound, RedisConnector)
    bound.bind(planned, a)
    assert [r.values for r in bound.remaining(sms, a)] == [{"value": "123456"}]
    assert bound.correct(sms, a, "654321") == 1 and w.redis.ttl(f"{w.prefix}sms:code:{w.phone}") > 0
    assert (bound.erase(sms, a).affected, bound.erase(sms, a).affected) == (1, 0)
    assert bound.remaining(sms, a) == []
    assert w.redis.exists(f"{w.prefix}sms:code:{w.phone}") == 0
    empty = w.connectors()["cache"]
    assert isinstance(empty, RedisConnector)
    assert empty.bind({}, a).remaining(sms, a) == []  # a snapshot without a phone: no such key can exist


def test_manual_steps_wait_for_a_person(world: World) -> None:
    conns = world.connectors()
    step = next(loc for loc in world.dm.locations("agent") if loc.store_kind is StoreKind.MANUAL)
    manual = conns["vendors"]
    assert manual.read(step, "1") == [] and manual.remaining(step, "1") == []
    with pytest.raises(ManualStepPending) as exc:
        manual.erase(step, "1")
    assert (exc.value.description, exc.value.who) == (step.description, step.who)
    assert "需要人工完成" in str(exc.value)


def test_values_that_cannot_match_find_nothing(world: World) -> None:
    conns = world.connectors()
    visitor = world.dm.locations("visitor")
    ip = next(loc for loc in visitor if loc.column == "ip")
    assert conns["app_db"].read(ip, "1' OR '1'='1") == []
    some_ip = world.scalar("SELECT min(ip) FROM ip_logs")
    assert conns["app_db"].read(ip, str(some_ip))
    phone = next(loc for loc in world.dm.locations("agent") if loc.id == "app_db.agents.phone@agent")
    assert conns["app_db"].read(phone, "abc") == [] and conns["app_db"].erase(phone, "1 OR 1=1").affected == 0
    assert world.scalar("SELECT count(*) FROM agents WHERE phone IS NULL") == 0


# ----------------------------------------------------------------------------------- plans (pure)
def test_erasure_order_without_a_database() -> None:
    dm = load_datamap(MAP).datamap
    groups = erasure_order(dm.locations("agent"))
    kinds = [g[0].store_kind for g in groups]
    assert kinds == sorted(kinds, key=[StoreKind.REDIS, StoreKind.SQL, StoreKind.MANUAL].index)
    patterns = [g[0].key_pattern for g in groups if g[0].store_kind is StoreKind.REDIS]
    assert patterns.index("session:{token}") < patterns.index("user:{subject}:sessions")
    tables = [g[0].table for g in groups if g[0].store_kind is StoreKind.SQL]
    assert tables.index("invoices") < tables.index("orders")  # reached through orders
    assert len(tables) == len(set(tables))
    manual = [g for g in groups if g[0].store_kind is StoreKind.MANUAL]
    assert [len(g) for g in manual] == [1, 3]  # one group per step
    agents = next(g for g in groups if g[0].table == "agents")
    assert all(loc.erase is EraseAction.NULL for loc in agents)
    assert sorted(loc.id for g in groups for loc in g) == sorted(loc.id for loc in dm.locations("agent"))
    read = access_order(dm.locations("agent"))
    assert sorted(loc.id for loc in read) == sorted(loc.id for loc in dm.locations("agent"))
    places = [(loc.store, loc.table) for loc in read if loc.table]
    assert all(places.index(p) == k or places[k - 1] == p for k, p in enumerate(places))  # tables together
