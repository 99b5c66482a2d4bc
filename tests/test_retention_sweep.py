"""Retention plan and sweep on SQLite, PostgreSQL and MariaDB with a fixed clock, checked by independent SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, text

from yinsi.datamap_io import parse_datamap
from yinsi.retention.service import RetentionError, RetentionService
from yinsi.retention.sweep import TableSweep

MAP = """
schema_version: 1
tenant: shop
subjects:
  - {id: user, name: 用户, store: app, table: visits, key: user_id}
stores:
  - id: app
    kind: sql
    name: 业务库
    tables:
      visits:
        reach: {user: {key: user_id}}
        erase: delete_row
        retention: {max_days: 1, time_column: visited_at}
        columns:
          id: {not_pi: true, why: 编号}
          user_id: {not_pi: true, why: 关联键}
          ip: {item: online.ip_address}
          visited_at: {item: online.access_log}
      orders:
        reach: {user: {key: user_id}}
        erase: delete_row
        retention: {max_days: 30, time_column: created_at}
        legal_hold: {basis: 电子商务法第三十一条, rule: T2, min_days: 1095, date_column: paid_at}
        columns:
          id: {not_pi: true, why: 编号}
          user_id: {not_pi: true, why: 关联键}
          amount: {item: transaction.amount}
          created_at: {not_pi: true, why: 创建时间}
          paid_at: {item: transaction.payment_time}
      profiles:
        reach: {user: {key: user_id}}
        erase: keep_row
        retention: {max_days: 365, time_column: last_seen}
        columns:
          id: {not_pi: true, why: 编号}
          user_id: {not_pi: true, why: 关联键}
          nickname: {item: basic.nickname, erase: "null"}
          last_seen: {not_pi: true, why: 最后活跃时间}
"""

NOW = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)  # the fixed clock
BJ = timedelta(hours=8)  # the app stores naive Beijing time


def naive(t: datetime) -> datetime:
    return (t + BJ).replace(tzinfo=None)


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> tuple[str, str]:
    """(app database url, Yinsi database url) with known rows on each side of every boundary."""
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    md = MetaData()
    visits = Table("visits", md, Column("id", Integer, primary_key=True, autoincrement=False),
                   Column("user_id", Integer), Column("ip", String(64)), Column("visited_at", DateTime, nullable=False))
    orders = Table("orders", md, Column("id", Integer, primary_key=True, autoincrement=False),
                   Column("user_id", Integer), Column("amount", Integer), Column("created_at", DateTime, nullable=False),
                   Column("paid_at", DateTime))
    profiles = Table("profiles", md, Column("id", Integer, primary_key=True, autoincrement=False),
                     Column("user_id", Integer), Column("nickname", String(64)),
                     Column("last_seen", DateTime, nullable=False), mysql_charset="utf8mb4")
    engine = create_engine(db_url)
    md.create_all(engine)
    day = timedelta(days=1)
    with engine.begin() as c:
        # visits 1..10: visited k hours before the cutoff (k<0: within the day); IP promised 1 day, no hold in the map
        c.execute(visits.insert(), [{"id": k + 20, "user_id": k, "ip": f"10.0.0.{k + 20}",
                                     "visited_at": naive(NOW - day - timedelta(hours=k))} for k in range(-5, 5)])
        c.execute(orders.insert(), [
            {"id": 1, "user_id": 1, "amount": 5, "created_at": naive(NOW - 40 * day), "paid_at": naive(NOW - 40 * day)},
            {"id": 2, "user_id": 1, "amount": 5, "created_at": naive(NOW - 1200 * day), "paid_at": naive(NOW - 1100 * day)},
            {"id": 3, "user_id": 2, "amount": 5, "created_at": naive(NOW - 1200 * day), "paid_at": naive(NOW - 1000 * day)},
            {"id": 4, "user_id": 2, "amount": 5, "created_at": naive(NOW - 1200 * day), "paid_at": None},
            {"id": 5, "user_id": 3, "amount": 5, "created_at": naive(NOW - 10 * day), "paid_at": None},
        ])
        c.execute(profiles.insert(), [
            {"id": 1, "user_id": 1, "nickname": "甲", "last_seen": naive(NOW - 400 * day)},
            {"id": 2, "user_id": 2, "nickname": "乙", "last_seen": naive(NOW - 10 * day)},
        ])
    engine.dispose()
    from yinsi.storage import upgrade

    yinsi_url = f"sqlite:///{(tmp_path / 'y.db').as_posix()}"
    upgrade(yinsi_url)
    return db_url, yinsi_url


def _sql(url: str, q: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return [tuple(r) for r in c.execute(text(q))]
    finally:
        engine.dispose()


def test_plan_and_sweep_remove_exactly_what_is_past_its_period(app: tuple[str, str]) -> None:
    url, yinsi_url = app
    dm = parse_datamap(MAP).datamap
    svc = RetentionService(yinsi_url)
    try:
        plans = {p.table: p for p in svc.plan("shop", dm, None, {"app": url}, NOW)}
        # visits: the IP is network log data, kept 180 days by law (T2) although the map says 1 day
        assert (plans["visits"].expired, plans["visits"].held, plans["visits"].within) == (0, 5, 5)
        assert plans["visits"].hold_rule == "T2"
        # orders: past 30 days are 1..4; the hold counts from each paid_at (1095 days): 2 is free, 4 counts
        # from its created_at (1200 days ago): free; 1 and 3 held
        assert (plans["orders"].expired, plans["orders"].held, plans["orders"].within) == (2, 2, 1)
        assert (plans["profiles"].expired, plans["profiles"].within) == (1, 1)

        dry = svc.sweep("shop", dm, None, {"app": url}, NOW, dry_run=True)
        assert _sql(url, "SELECT COUNT(*) FROM orders") == [(5,)]
        assert {d.table: d.remaining for d in dry}["orders"] == 2

        done = {d.table: d for d in svc.sweep("shop", dm, None, {"app": url}, NOW, batch=1)}
        assert done["orders"].removed == 2 and done["profiles"].removed == 1
        assert _sql(url, "SELECT id FROM orders ORDER BY id") == [(1,), (3,), (5,)]
        assert _sql(url, "SELECT id, nickname FROM profiles ORDER BY id") == [(1, None), (2, "乙")]
        assert _sql(url, "SELECT COUNT(*) FROM visits") == [(10,)]

        # run again (an interrupted sweep continued): nothing more is touched
        again = {d.table: d.removed for d in svc.sweep("shop", dm, None, {"app": url}, NOW)}
        assert again == {"visits": 0, "orders": 0, "profiles": 0}

        # 180 days on, the network-log hold is over: every visit goes
        later = NOW + timedelta(days=180)
        assert {d.table: d.removed for d in svc.sweep("shop", dm, None, {"app": url}, later)}["visits"] == 10
        assert _sql(url, "SELECT COUNT(*) FROM visits") == [(0,)]

        audit = _sql(yinsi_url, "SELECT reason, details FROM audit_entries WHERE tenant_id = 'shop'")
        assert any("orders" in str(r[0]) for r in audit)
        assert not any("10.0.0." in str(r) or "甲" in str(r) for r in audit)
        assert any('"removed":2' in str(r[1]).replace(" ", "") for r in audit)
    finally:
        svc.close()


def test_another_tenants_map_is_refused(app: tuple[str, str]) -> None:
    url, yinsi_url = app
    svc = RetentionService(yinsi_url)
    try:
        with pytest.raises(RetentionError):
            svc.sweep("other", parse_datamap(MAP).datamap, None, {"app": url}, NOW)
    finally:
        svc.close()


def test_sweep_result_has_no_pi_fields() -> None:
    assert set(TableSweep.__dataclass_fields__) == {
        "store", "table", "action", "removed", "held", "hold_rule", "hold_basis", "remaining", "dry_run"}


def test_an_interrupted_sweep_continues_where_it_stopped(app: tuple[str, str]) -> None:
    """Sparse keys, small batches, a crash after the second batch: the rerun removes the rest, and the two runs
    together remove each expired row exactly once; the held rows and their reason are kept."""
    url, yinsi_url = app
    engine = create_engine(url)
    with engine.begin() as c:  # orders with gaps in the keys: 100, 107, 114 …, all past 30 days and free of the hold
        c.execute(text("INSERT INTO orders (id, user_id, amount, created_at, paid_at) VALUES (:i, 9, 1, :t, :t)"),
                  [{"i": 100 + 7 * k, "t": naive(NOW - 1200 * timedelta(days=1))} for k in range(30)])
    engine.dispose()
    dm = parse_datamap(MAP).datamap
    svc = RetentionService(yinsi_url)
    batches: list[int] = []

    def crash(name: str, n: int) -> None:
        batches.append(n)
        if len(batches) == 2:
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            svc.sweep("shop", dm, None, {"app": url}, NOW, batch=5, progress=crash)
        first = sum(batches)
        assert 0 < first < 32
        done = {d.table: d for d in svc.sweep("shop", dm, None, {"app": url}, NOW, batch=5)}
    finally:
        svc.close()
    assert first + done["orders"].removed == 32  # 30 added + orders 2 and 4
    assert done["orders"].held == 2 and done["orders"].hold_rule == "T2"
    assert _sql(url, "SELECT id FROM orders ORDER BY id") == [(1,), (3,), (5,)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the command's parsing; the stores are covered above
def test_the_commands_show_the_plan_and_sweep_with_the_hold_reason(app: tuple[str, str], tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from yinsi.cli.main import app as cli_app

    url, yinsi_url = app
    (tmp_path / "map.yaml").write_text(MAP, encoding="utf-8")
    common = ["--datamap", str(tmp_path / "map.yaml"), "--store", f"app={url}", "--url", yinsi_url,
              "--now", NOW.isoformat()]
    cli = CliRunner()
    plan = cli.invoke(cli_app, ["retention", "plan", "shop", *common, "--json"])
    assert plan.exit_code == 0, plan.output
    assert {t["table"]: t["expired"] for t in json.loads(plan.output)["tables"]} == {
        "visits": 0, "orders": 2, "profiles": 1}
    done = cli.invoke(cli_app, ["retention", "sweep", "shop", *common, "--batch", "1"])
    assert done.exit_code == 0, done.output
    assert "app.orders：已删除 2 行；依法保留 2 行（T2" in done.output
    assert "app.visits：已删除 0 行；依法保留 5 行（T2：网络安全法" in done.output
    assert _sql(url, "SELECT COUNT(*) FROM orders") == [(3,)]
