"""Column classification on a real SQLite database: proposals from names, types and masked samples."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from yinsi.scan.columns import NOT_PI, classify_columns, name_tokens, propose, rule_for_name
from yinsi.storage.errors import DatabaseUnavailable, InvalidDatabaseUrl

ROWS = [
    (1, "张三", "13800138000", "11010519491231002X", "zhang@example.com", "北京市朝阳区建国路88号", "2024-01-01",
     "好评", "6222020000000000000", "10.1.2.3", "0000"),
    (2, "李四", "13912345678", "440105199001011236", "li@example.cn", "上海市浦东新区世纪大道1号", "2024-02-01",
     "一般", "4367421234567896", "192.168.0.1", "0001"),
]


@pytest.fixture
def app_db(tmp_path: Path) -> str:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, real_name TEXT, shouji TEXT, sfzh TEXT, email TEXT,"
                 " addr TEXT, created_at TEXT, remark TEXT, bankCardNo TEXT, last_ip TEXT, code TEXT)")
    conn.executemany("INSERT INTO users VALUES (?,?,?,?,?,?,?,?,?,?,?)", ROWS)
    # a column whose name says nothing but whose values are mobile numbers
    conn.execute("CREATE TABLE contacts (id INTEGER, c1 TEXT, price REAL)")
    conn.executemany("INSERT INTO contacts VALUES (?,?,?)", [(1, "13800138000", 9.5), (2, "138 0013 8001", 1.0)])
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def by_column(url: str) -> dict[tuple[str, str], object]:
    return {(p.table, p.column): p for p in classify_columns(url)}


def test_every_column_gets_a_proposal_with_the_right_pi_item(app_db: str) -> None:
    props = {k: p.pi_item for k, p in by_column(app_db).items()}  # type: ignore[attr-defined]
    assert props[("users", "shouji")] == "contact.mobile"
    assert props[("users", "sfzh")] == "identity.id_card_number"
    assert props[("users", "email")] == "contact.email"
    assert props[("users", "addr")] == "basic.home_address"
    assert props[("users", "bankCardNo")] == "property.bank_card"
    assert props[("users", "last_ip")] == "online.ip_address"
    assert props[("users", "real_name")] == "basic.name"
    assert props[("contacts", "c1")] == "contact.mobile"
    for column in ("id", "created_at", "remark", "code"):
        assert props[("users", column)] == NOT_PI
    assert props[("contacts", "price")] == NOT_PI


def test_value_evidence_raises_confidence_and_samples_are_masked(app_db: str) -> None:
    proposals = classify_columns(app_db)
    shouji = next(p for p in proposals if p.column == "shouji")
    c1 = next(p for p in proposals if p.column == "c1")
    assert shouji.confidence > c1.confidence > 0.5
    assert shouji.masked_samples == ("138****8000", "139****5678")
    dump = repr([p.to_dict() for p in proposals])
    for row in ROWS:
        for value in row[1:6] + row[8:10]:
            assert str(value) not in dump, value


def test_name_rules_cover_english_pinyin_and_camel_case() -> None:
    assert name_tokens("userMobileNo") == "user_mobile_no"
    assert rule_for_name("userMobile")[0] == "contact.mobile"  # type: ignore[index]
    assert rule_for_name("SFZHM")[0] == "identity.id_card_number"  # type: ignore[index]
    assert rule_for_name("id_no")[0] == "identity.id_card_number"  # type: ignore[index]
    assert rule_for_name("card_no")[0] == "property.bank_card"  # type: ignore[index]
    assert rule_for_name("shipping_address")[0] == "contact.postal_address"  # type: ignore[index]
    assert rule_for_name("device_id")[0] == "device.identifiers"  # type: ignore[index]
    assert rule_for_name("updated_at") is None


def test_a_name_that_values_contradict_gets_low_confidence() -> None:
    p = propose("t", "phone", "TEXT", ["n/a", "unknown", "—"])
    assert p.pi_item == "contact.mobile" and p.confidence <= 0.4
    assert any("不一致" in r for r in p.reasons)


def test_missing_sqlite_file_and_unreachable_server_fail_with_chinese_messages(tmp_path: Path) -> None:
    with pytest.raises(InvalidDatabaseUrl, match="不存在"):
        classify_columns(f"sqlite:///{tmp_path / 'nope.db'}")
    assert not (tmp_path / "nope.db").exists()
    with pytest.raises(DatabaseUnavailable, match="无法连接数据库"):
        classify_columns("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
