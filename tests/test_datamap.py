"""The data map: the shipped 微聊客 map validates against its declaration and the live demo databases;
broken copies fail loudly with the exact file line, path and reason."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.helpers import POLICIES, ROOT
from tests.test_demo_app import REDIS_URL, create, redis_or_skip, sqlite_url
from yinsi.cli.demoapp_cmds import load_demo_app
from yinsi.cli.main import app
from yinsi.datamap_io import DataMapError, MapProblem, ValidationReport, parse_datamap, validate
from yinsi.declarations import load_declaration
from yinsi.domain.datamap import (
    DataMap,
    DataMapInvalid,
    EraseAction,
    LiveColumn,
    LiveSchema,
    RowAction,
    StoreKind,
    check_live_redis,
    check_live_sql,
)
from yinsi.storage.engine import make_engine

demo = load_demo_app()
runner = CliRunner()
MAP = ROOT / "examples" / "weiliaoke_app" / "datamap.yaml"
DECL = POLICIES / "weiliaoke-2022.yaml"
DECLARATION = load_declaration(DECL)
MAP_TEXT = MAP.read_text(encoding="utf-8")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique Redis key prefix; its keys are deleted afterwards (skips without Redis, see test_demo_app)."""
    client = redis_or_skip()
    prefix = f"yinsi-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def edited(*edits: tuple[str, str]) -> str:
    """The shipped map with textual (old, new) replacements; each must match exactly once."""
    out = MAP_TEXT
    for old, new in edits:
        assert out.count(old) == 1, f"edit target not unique in datamap.yaml: {old!r}"
        out = out.replace(old, new)
    return out


def line_of(text_: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    return next(k for k, line in enumerate(text_.splitlines(), 1) if needle in line)


def problems_of(map_text: str) -> list[MapProblem]:
    with pytest.raises(DataMapError) as info:
        parse_datamap(map_text, "broken.yaml")
    return info.value.problems


def write(tmp_path: Path, map_text: str) -> Path:
    path = tmp_path / "datamap.yaml"
    path.write_text(map_text, encoding="utf-8")
    return path


def only_error(report: ValidationReport) -> MapProblem:
    assert len(report.errors) == 1, [str(p) for p in report.errors]
    return report.errors[0]


# ---------------------------------------------------------------------------------- shipped map
def test_shipped_map_is_consistent_and_matches_the_2022_declaration() -> None:
    dm = parse_datamap(MAP_TEXT, str(MAP)).datamap
    assert dm.problems() == []
    assert dm.check_declaration(DECLARATION) == []  # no error and no unexplained declared item
    collected = set(DECLARATION.collected_items())
    assert set(dm.mapped_items()) <= collected


def test_locations_have_stable_unique_ids_and_say_how_to_find_and_erase() -> None:
    dm = parse_datamap(MAP_TEXT, str(MAP)).datamap
    locations = {loc.id: loc for loc in dm.locations()}
    assert len(locations) == len(dm.locations())
    assert [loc.id for loc in dm.locations()] == [loc.id for loc in parse_datamap(MAP_TEXT).datamap.locations()]

    phone = locations["app_db.agents.phone@agent"]
    assert (phone.item, phone.erase, phone.row_erase, phone.key_column) == (
        "contact.mobile", EraseAction.NULL, RowAction.KEEP_ROW, "id")
    invoice = locations["app_db.invoices.tax_no@agent"]
    assert invoice.key_column is None
    assert [str(h) for h in invoice.join] == ["invoices.order_id -> orders.id", "orders.agent_id -> agents.id"]
    assert invoice.erase is EraseAction.KEEP_LEGAL_HOLD and invoice.legal_hold is not None
    assert invoice.legal_hold.min_days == 1825 and invoice.legal_hold.rule == "T2"
    order = locations["app_db.orders.consignee_phone@agent"]
    assert order.legal_hold is not None and order.legal_hold.min_days == 1095 and "电子商务法" in (order.legal_hold.basis or "")
    log = locations["app_db.login_logs.ip@agent"]
    assert log.legal_hold is not None and log.legal_hold.min_days == 180 and "网络安全法" in (log.legal_hold.basis or "")
    visit = locations["app_db.ip_logs.ip@visitor"]
    assert visit.retention is not None and visit.retention.max_days == 1 and visit.erase is EraseAction.DELETE_ROW
    chat = [loc.subject for loc in dm.locations() if loc.table == "chat_messages" and loc.column == "body"]
    assert chat == ["agent", "customer"]
    session = locations["cache:session:{token}@agent"]
    assert (session.store_kind, session.members_of, session.key_type) == (StoreKind.REDIS, "user:{subject}:sessions",
                                                                         "string")
    sms = locations["cache:sms:code:{phone}@agent"]
    assert sms.attributes == (("phone", "phone"),)
    face = locations["vendors/wuba_auth_face/biometric.face@agent"]
    assert face.store_kind is StoreKind.MANUAL and face.who and face.description
    assert {loc.subject for loc in dm.locations("customer")} == {"customer"}
    assert "customers.id = 主体编号" in locations["app_db.customers.phone@customer"].how()


# -------------------------------------------------------------------------------- broken copies
def test_undeclared_pi_item_fails_with_line_and_path(tmp_path: Path) -> None:
    broken = edited(("imei: {item: device.identifiers}", "imei: {item: device.model}"))
    report = validate(write(tmp_path, broken), DECLARATION, live=False)
    problem = only_error(report)
    assert problem.line == line_of(broken, "imei: {item: device.model}")
    assert problem.path == "stores[app_db].tables.devices.columns.imei.item"
    assert "device.model" in problem.message and "不在政策声明" in problem.message


def test_join_that_does_not_reach_the_subject_fails() -> None:
    broken = edited(('"orders.agent_id -> agents.id"', '"orders.id -> invoices.order_id"'))
    [problem] = problems_of(broken)
    assert problem.path == "stores[app_db].tables.invoices.reach.agent.join[1]"
    assert "关联路径没有到达主体 agent" in problem.message and "invoices.order_id" in problem.message
    assert problem.line == line_of(broken, "agent: {join:")


def test_join_that_breaks_the_chain_or_uses_unmapped_columns_fails() -> None:
    broken = edited(('"orders.agent_id -> agents.id"', '"devices.agent_id -> agents.id"'))
    assert [p.message for p in problems_of(broken)] == ["关联路径断开：这一步应从表 orders 出发，实际从 devices 出发"]
    broken = edited(('"invoices.order_id -> orders.id"', '"invoices.order_ref -> orders.id"'))
    assert [p.message for p in problems_of(broken)] == ["关联路径经过的列 invoices.order_ref 不在映射中"]


def test_legal_hold_without_basis_fails() -> None:
    broken = edited(("          basis: 电子商务法第三十一条：商品和服务信息、交易信息保存时间自交易完成之日起不少于三年\n", ""))
    [problem] = problems_of(broken)
    assert problem.path == "stores[app_db].tables.orders.legal_hold"
    assert "法定保存缺少依据（basis）" in problem.message


def test_keep_legal_hold_column_without_any_hold_fails() -> None:
    broken = edited(("bank_card: {item: property.bank_card, erase: \"null\"}",
                     "bank_card: {item: property.bank_card, erase: keep_legal_hold}"))
    [problem] = problems_of(broken)
    assert problem.path == "stores[app_db].tables.agents.columns.bank_card.erase"
    assert "必须给出 legal_hold" in problem.message


def test_unknown_erase_action_fails_at_its_line() -> None:
    broken = edited(('face_ref: {item: biometric.face, erase: "null"}', "face_ref: {item: biometric.face, erase: shred}"))
    [problem] = problems_of(broken)
    assert problem.line == line_of(broken, "erase: shred")
    assert problem.path == "stores[app_db].tables.agents.columns.face_ref.erase"
    assert "未知的取值 'shred'" in problem.message and "pseudonymise" in problem.message


def test_erase_action_that_contradicts_the_row_action_fails() -> None:
    broken = edited(("          imei: {item: device.identifiers}", "          imei: {item: device.identifiers, erase: \"null\"}"))
    [problem] = problems_of(broken)
    assert "按行删除（delete_row），列 imei 不能另设 null" in problem.message


def test_column_neither_mapped_nor_not_pi_fails_and_not_pi_needs_a_reason() -> None:
    result_line = "          result: {not_pi: true, why: 登录结果（success/failed_*），应用的固定取值}"
    broken = edited((result_line, "          result: {}"))
    [problem] = problems_of(broken)
    assert problem.path == "stores[app_db].tables.login_logs.columns.result"
    assert "既没有映射到个人信息项（item）也没有标记 not_pi" in problem.message
    broken = edited((result_line, "          result: {not_pi: true}"))
    assert [p.path for p in problems_of(broken)] == ["stores[app_db].tables.login_logs.columns.result.why"]


def test_unknown_subject_item_store_kind_and_placeholder_fail() -> None:
    problems = problems_of(edited(
        ("reach: {customer: {key: id}}", "reach: {client: {key: id}}"),
        ("name: {item: basic.name, erase: \"null\"}", "name: {item: basic.fullname, erase: \"null\"}"),
        ('pattern: "sms:code:{phone}"', 'pattern: "sms:code:{email}"'),
    ))
    messages = "\n".join(str(p) for p in problems)
    assert "未知的主体 'client'" in messages
    assert "主体表 customers 的 reach 中没有主体 customer" in messages
    assert "未知的个人信息项 'basic.fullname'" in messages
    assert "占位符 {email} 既不是 {subject} 也不是主体 agent 的属性" in messages
    [problem] = problems_of(edited(("    kind: redis\n", "    kind: memcached\n")))
    assert problem.path == "stores[cache].kind" and "未知的存储类型 'memcached'" in problem.message


def test_locations_refuse_a_broken_map() -> None:
    raw = parse_datamap(MAP_TEXT).raw
    raw["stores"][0]["tables"]["posts"]["reach"] = {"agent": {"key": "author_id"}}
    dm = DataMap.model_validate(raw)
    with pytest.raises(DataMapInvalid, match=r"posts\.author_id"):
        dm.locations()


def test_wrong_tenant_or_version_fails() -> None:
    dm = parse_datamap(edited(('declaration_version: "2022-08-04"', 'declaration_version: "2020-01-01"'))).datamap
    [problem] = dm.check_declaration(DECLARATION)
    assert problem.loc == ("declaration_version",) and "2020-01-01" in problem.message


def test_declared_item_neither_mapped_nor_explained_is_a_warning() -> None:
    crash = next(line for line in MAP_TEXT.splitlines(keepends=True) if "device.crash_log" in line)
    dm = parse_datamap(edited((crash, ""))).datamap
    [problem] = dm.check_declaration(DECLARATION)
    assert problem.severity == "warning" and "device.crash_log" in problem.message


# ------------------------------------------------------------------------------- live schema (pure)
def test_live_schema_check_is_pure_and_catches_not_null_columns_erased_by_null() -> None:
    dm = parse_datamap(MAP_TEXT).datamap
    live = LiveSchema({t.name: tuple(LiveColumn(c.name, c.nullable or False) for c in t.columns)
                       for t in demo.TABLES})
    assert check_live_sql(dm, "app_db", live) == []
    agents = tuple(LiveColumn(c.name, c.name != "name") for c in demo.TABLES[0].columns)
    [problem] = check_live_sql(dm, "app_db", LiveSchema({**live.tables, "agents": agents}))
    assert problem.loc[-2:] == ("name", "erase") and "NOT NULL" in problem.message


def test_live_redis_check_groups_unmapped_keys_and_catches_wrong_types() -> None:
    dm = parse_datamap(MAP_TEXT).datamap
    keys = {"session:ab12": "string", "user:7:sessions": "set", "sms:code:13800138000": "hash"}
    keys.update({f"user:{k}:recent_search": "list" for k in range(500)})
    problems = check_live_redis(dm, "cache", keys)
    assert len(problems) == 2
    assert "500 个键（形如 user:*:recent_search" in problems[0].message
    assert problems[1].loc == ("stores", 1, "keys", 2, "type") and "hash" in problems[1].message


# ------------------------------------------------------------------------------ live databases
def test_shipped_map_validates_against_the_live_demo_database(db_url: str, tmp_path: Path) -> None:
    create(db_url)
    demo.seed(db_url, 20, 1)
    report = validate(MAP, DECLARATION, urls={"app_db": db_url}, live=True)
    assert report.errors == [], [str(p) for p in report.errors]
    assert any("13 张表" in c for c in report.checked)
    assert report.locations == 71
    # a column added to a mapped table, and a new table, are errors until the map says what they are
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE agents ADD wechat_id VARCHAR(32)"))
            conn.execute(text("CREATE TABLE favourites (id INTEGER PRIMARY KEY, agent_id INTEGER, property_id INTEGER)"))
    finally:
        engine.dispose()
    report = validate(MAP, DECLARATION, urls={"app_db": db_url}, live=True)
    by_message = {p.message: p for p in report.errors}
    column = by_message["数据库表 agents 的列 wechat_id 既没有映射到个人信息项，也没有标记 not_pi"]
    assert column.path == "stores[app_db].tables.agents.columns" and column.line == line_of(MAP_TEXT, "        columns:")
    assert any("表 favourites 不在数据地图中" in m for m in by_message)
    assert len(report.errors) == 2


def test_unreachable_store_is_an_error_not_a_silent_skip() -> None:
    report = validate(MAP, DECLARATION, urls={"app_db": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    problem = only_error(report)
    assert problem.path == "stores[app_db].connection" and "无法连接 SQL 存储" in problem.message


def test_live_redis_with_undeclared_search_history_fails(tmp_path: Path, redis_prefix: str) -> None:
    prefix = redis_prefix
    url = sqlite_url(tmp_path, "app.db")
    create(url)
    demo.seed(url, 60, 2, redis_url=REDIS_URL, redis_prefix=prefix)
    urls = {"app_db": url, "cache": REDIS_URL}
    assert validate(MAP, DECLARATION, urls=urls, key_prefixes={"cache": prefix}).errors == []
    demo.seed(url, 60, 2, redis_url=REDIS_URL, redis_prefix=prefix, with_undeclared=True)
    problem = only_error(validate(MAP, DECLARATION, urls=urls, key_prefixes={"cache": prefix}))
    assert problem.path == "stores[cache].keys"
    assert f"形如 {prefix}user:*:recent_search" in problem.message and "不匹配数据地图中的任何键模式" in problem.message


# ------------------------------------------------------------------------------------------- CLI
def test_cli_validate_passes_on_the_shipped_map_and_the_live_database(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path, "cli.db")
    create(url)
    demo.seed(url, 10, 1)
    result = runner.invoke(app, ["datamap", "validate", str(MAP), "--policy", str(DECL), "--url", url])
    assert result.exit_code == 0, result.output
    assert "通过" in result.output and "71 个个人信息位置" in result.output and "已核对实时结构" in result.output


def test_cli_validate_exits_1_with_file_line_path_and_json(tmp_path: Path) -> None:
    broken = edited(("imei: {item: device.identifiers}", "imei: {item: device.model}"))
    path = write(tmp_path, broken)
    result = runner.invoke(app, ["datamap", "validate", str(path), "--policy", str(DECL), "--static"])
    assert result.exit_code == 1
    line = line_of(broken, "device.model")
    assert f"{path}:{line}: stores[app_db].tables.devices.columns.imei.item: 个人信息项 device.model" in result.output
    result = runner.invoke(app, ["datamap", "validate", str(path), "--policy", str(DECL), "--static", "--json"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["ok"] is False
    assert [(p["line"], p["path"], p["severity"]) for p in out["problems"]] == [
        (line, "stores[app_db].tables.devices.columns.imei.item", "error")]


def test_cli_locations_json_for_one_subject() -> None:
    result = runner.invoke(app, ["datamap", "locations", str(MAP), "--subject", "visitor", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == ["app_db.ip_logs.ip@visitor", "app_db.ip_logs.path@visitor",
                                       "app_db.ip_logs.visited_at@visitor"]
    assert rows[0]["retention"]["max_days"] == 1 and rows[0]["how"] == "ip_logs.ip = 主体编号"
