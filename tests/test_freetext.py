"""PI inside free text (issue 10 item 1): erasure redacts the person's identifiers in every row of a free-text
column, a copy quotes the passages, the read-back searches the column; on SQLite, PostgreSQL and MariaDB (the
微聊客 demo app of test_rights_service with a ``tickets`` table added), checked by independent SQL."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Column, Integer, MetaData, String, Table, text

from tests import test_rights_service as rights_tests
from tests.test_rights_service import MAP, TENANT, Env, _verified
from yinsi.datamap_io import parse_datamap, with_key_prefixes
from yinsi.domain import freetext as ft
from yinsi.domain.rights import RequestType, State
from yinsi.rights import erasure as erasure_module
from yinsi.rights import freetext
from yinsi.rights.context import ErasureIncomplete
from yinsi.storage.tables import Tenant

pytestmark = pytest.mark.usefixtures("isolated_env")

env = rights_tests.env


# ------------------------------------------------------------------------------------ the texts alone
def test_written_variants_of_one_identifier_are_found_and_only_they_are_cut() -> None:
    idents = ft.identifiers([("phone", "13812345678"), ("name", "张伟"), ("id_card", "11010119900307451x"),
                             ("email", "Zhang.Wei@Example.com"), ("plate", "京A12345")])
    text = ("联系人：张伟 电话：138 1234 5678，另留 +86 138-1234-5678 和 １３８１２３４５６７８；"
            "邻居王芳 13912345678。证件 110101 19900307 451X，邮箱 zhang.wei@example.com，车 京A·12345。")
    out = freetext.redact_text(text, idents, names=lambda t: [])
    assert out == ("联系人：[已删除] 电话：[已删除]，另留 [已删除] 和 [已删除]；"
                   "邻居王芳 13912345678。证件 [已删除]，邮箱 [已删除]，车 [已删除]。")
    # a longer number that merely contains the digits is another number
    assert freetext.redact_text("订单号 9138123456780", idents, names=lambda t: []) == "订单号 9138123456780"


def test_a_name_the_scanner_finds_right_next_to_the_persons_phone_goes_too_and_nothing_further() -> None:
    idents = ft.identifiers([("phone", "13812345678")])
    text = "联系人：李建国 电话：13812345678，邻居王芳也反映漏水。"
    out = freetext.redact_text(text, idents)  # the shipped name model
    assert out == "联系人：[已删除] 电话：[已删除]，邻居王芳也反映漏水。"
    assert freetext.redact_text("13812345678（李建国）来电", idents) == "[已删除]（[已删除]）来电"
    assert freetext.redact_text("李建国说楼上13812345678漏水", idents) == "李建国说楼上[已删除]漏水"


@pytest.mark.parametrize(("text", "expected"), [
    ("业主身份证号460100199001011234来电", "业主身份证号[已删除]来电"),
    ("身份证460100199001011234", "身份证[已删除]"),
    ("身份证号码：460100199001011234", "身份证号码：[已删除]"),
    ("业主电话13812345678", "业主电话[已删除]"),
    ("住户手机13812345678", "住户手机[已删除]"),
    ("业主手机号13812345678", "业主手机号[已删除]"),
    ("联系电话：13812345678", "联系电话：[已删除]"),
    ("业主邮箱a.b@example.com", "业主邮箱[已删除]"),
    ("车主车牌京A12345停错位置", "车主车牌[已删除]停错位置"),
    ("姓名张伟，身份证号460100199001011234", "姓名[已删除]，身份证号[已删除]"),
    ("联系人李建国电话13812345678", "联系人[已删除]电话[已删除]"),
    ("业主李建国身份证号460100199001011234", "业主[已删除]身份证号[已删除]"),
    ("联系人：李建国 手机号：13812345678", "联系人：[已删除] 手机号：[已删除]"),
])
def test_a_field_label_before_an_identifier_stays_only_the_identifier_and_the_name_go(text: str,
                                                                                    expected: str) -> None:
    """Labels (身份证号、电话、手机号、邮箱、车牌、姓名、联系人…) are not personal information: a label is
    never read as the name next to a number, nor cut with it, whether the name model is there or not."""
    idents = ft.identifiers([("phone", "13812345678"), ("id_card", "460100199001011234"),
                             ("email", "a.b@example.com"), ("plate", "京A12345"), ("name", "张伟")])
    assert freetext.redact_text(text, idents) == expected  # the shipped name model
    assert freetext.redact_text(text, idents, names=lambda t: [(s, e, b) for s, e, b in ft.name_candidates(t)]) \
        == expected


def test_the_index_sees_numbers_anywhere_and_names_only_in_name_like_contexts() -> None:
    toks = ft.tokens("报修人：张伟，王芳女士（139 1234 5678），赵敏说楼上漏水")
    assert ("phone", "13912345678") in toks
    assert ("name", "张伟") in toks and ("name", "王芳") in toks
    assert ("name", "赵敏") not in toks  # running text: found only through the person's other identifiers


def test_a_copy_passage_hides_other_peoples_numbers() -> None:
    idents = ft.identifiers([("phone", "13812345678")])
    assert freetext.quoted("前情。邻居13912345678说13812345678家漏水。后来修好了。", idents) == \
        ["邻居[他人信息已隐去]说13812345678家漏水。"]


# ------------------------------------------------------------------------------- on the three databases
def _with_tickets(e: Env) -> Any:
    """The demo map with a free-text tickets table and the agent's phone and name as identifiers."""
    doc = yaml.safe_load(Path(MAP).read_text(encoding="utf-8"))
    agent = next(s for s in doc["subjects"] if s["id"] == "agent")
    agent["attributes"] = {**agent.get("attributes", {}), "name": "name"}
    agent["identifiers"] = ["phone", "name"]
    app_db = next(s for s in doc["stores"] if s["id"] == "app_db")
    app_db["tables"]["tickets"] = {
        "columns": {"id": {"not_pi": True, "why": "工单编号"},
                    "author_id": {"not_pi": True, "why": "提交人编号（工单由他人代写时不是被提及的人）"},
                    "body": {"item": "content.posts", "free_text": True}}}
    dm = parse_datamap(yaml.safe_dump(doc, allow_unicode=True), "tickets-map").datamap
    return with_key_prefixes(dm, {"cache": e.prefix})


def _spaced(phone: str) -> str:
    return f"{phone[:3]} {phone[3:7]} {phone[7:]}"


def _dashed(phone: str) -> str:
    return f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}"


def _setup(e: Env) -> tuple[Any, dict[int, str], str, str, str]:
    md = MetaData()
    tickets = Table("tickets", md, Column("id", Integer, primary_key=True, autoincrement=False),
                    Column("author_id", Integer), Column("body", String(1000)), mysql_charset="utf8mb4")
    md.create_all(e.engine)
    me, other = e.agent_row(), e.agent_row(e.other)
    phone, name, other_phone, other_name = me["phone"], me["name"], other["phone"], other["name"]
    assert phone and name and other_phone and other_name and name != other_name
    bodies = {
        1: f"联系人：{name} 电话：{_spaced(phone)}，厨房水管漏水，请尽快处理。",
        2: f"邻居{other_name}（{other_phone}）反映楼上 {_dashed(phone)} 家漏水。",
        3: f"业主{other_name}，手机{other_phone}，门锁坏了。",
        4: f"报修人：{name}，要求周末上门。",
        5: "公共区域灯坏了，无联系人。",
    }
    with e.engine.begin() as conn:
        conn.execute(tickets.insert(), [{"id": k, "author_id": e.other, "body": v} for k, v in bodies.items()])
    return _with_tickets(e), bodies, phone, name, other_phone


def _count(e: Env, like: str) -> int:
    """Rows whose body holds ``like`` once spaces, dashes and a +86 are taken out (independent SQL)."""
    with e.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM tickets WHERE REPLACE(REPLACE(REPLACE(body, ' ', ''), "
                                     "'-', ''), '+86', '') LIKE :p"), {"p": f"%{like}%"}).scalar() or 0)


def _bodies(e: Env) -> dict[int, str]:
    with e.engine.connect() as conn:
        return {int(k): str(v) for k, v in conn.execute(text("SELECT id, body FROM tickets ORDER BY id")).all()}


def test_copy_quotes_erasure_redacts_every_row_and_read_back_searches_the_column(env: Env, tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    e = env
    dm, bodies, phone, name, other_phone = _setup(e)
    assert _count(e, phone) == 2 and _count(e, name) == 2 and _count(e, other_phone) == 2
    subject = str(e.agent)
    with rights_tests.RightsService(e.url, datamaps={TENANT: dm}, store_urls=e.urls, channels={}) as svc:
        # the copy quotes the passages, the column named; a name-only mention (a namesake?) is not quoted
        rid = _verified(svc, subject, RequestType.COPY)
        assert svc.run(TENANT, rid) in (State.COMPLETED, State.WAITING_MANUAL)  # the vendor systems
        package = svc.export(TENANT, rid, tmp_path / "copy.zip")
        data = json.loads(zipfile.ZipFile(io.BytesIO(package.read_bytes())).read("personal_information.json"))
        quoted = sorted((d["source"], d["value"]) for d in data["data"] if d["location"] == "app_db.tickets.body")
        assert quoted == [("tickets:1", bodies[1]),
                          ("tickets:2", f"邻居{other_name_of(e)}（[他人信息已隐去]）反映楼上 {_dashed(phone)} 家漏水。")]

        # erasure; a mention written into the column just before the read-back fails the run
        real = freetext.erase_steps

        def then_reinsert(*args: Any, **kwargs: Any) -> None:
            real(*args, **kwargs)
            with e.engine.begin() as conn:
                conn.execute(text("INSERT INTO tickets (id, author_id, body) VALUES (6, :a, :b)"),
                             {"a": e.other, "b": f"再次来电 {phone}"})

        monkeypatch.setattr(erasure_module.freetext, "erase_steps", then_reinsert)
        rid = _verified(svc, subject, RequestType.DELETION)
        with pytest.raises(ErasureIncomplete, match=r"app_db\.tickets\.body"):
            svc.run(TENANT, rid)
        assert svc.show(TENANT, rid).state is not State.COMPLETED
        monkeypatch.setattr(erasure_module.freetext, "erase_steps", real)
        assert svc.run(TENANT, rid) in (State.COMPLETED, State.WAITING_MANUAL)  # the retry redacts row 6 too
    after = _bodies(e)
    # independent SQL: the person's phone and name are in no row; other people's mentions are untouched
    assert _count(e, phone) == 0 and _count(e, name) == 0
    assert _count(e, other_phone) == 2
    assert after == {1: "联系人：[已删除] 电话：[已删除]，厨房水管漏水，请尽快处理。",
                     2: f"邻居{other_name_of(e)}（{other_phone}）反映楼上 [已删除] 家漏水。",
                     3: bodies[3], 4: "报修人：[已删除]，要求周末上门。", 5: bodies[5], 6: "再次来电 [已删除]"}


def other_name_of(e: Env) -> str:
    return str(e.agent_row(e.other)["name"])


def test_the_index_holds_keyed_hashes_only_per_tenant_and_catches_up_from_its_mark(env: Env) -> None:
    e = env
    dm, _, phone, name, _ = _setup(e)
    col = freetext.free_text_columns(dm)[0]
    idents = ft.identifiers([("phone", phone), ("name", name)])
    with rights_tests.RightsService(e.url, datamaps={TENANT: dm}, store_urls=e.urls, channels={}) as svc:
        index = freetext.tenant_index(svc, TENANT)
        conn = svc.connector(dm, TENANT, "app_db")
        assert index.refresh(conn, col) == 5
        assert index.lookup(col, idents) == ["1", "2", "4"]
        assert index.refresh(conn, col) == 0  # nothing new
        with e.engine.begin() as c:
            c.execute(text("INSERT INTO tickets (id, author_id, body) VALUES (9, 1, :b)"), {"b": f"回电{phone}"})
        assert index.refresh(conn, col) == 1 and index.lookup(col, idents) == ["1", "2", "4", "9"]
        with svc.tx() as s:
            s.add(Tenant(id="another", name="另一租户", created_at=datetime(2026, 3, 1, tzinfo=UTC)))
        svc.audit.ensure_tenant_keys("another")
        other_tenant = freetext.tenant_index(svc, "another")
        assert other_tenant.lookup(col, idents) == []
    with e.engine.connect() as c:
        stored = " ".join(str(v) for row in c.execute(text("SELECT * FROM freetext_tokens")).all() for v in row)
    assert phone not in stored and name not in stored and len(stored) > 0


def test_yinsi_freetext_index_reads_only_the_rows_added_since_its_last_run(env: Env, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from yinsi.cli.main import app

    e = env
    dm, _, phone, _, _ = _setup(e)
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump(dm.model_dump(mode="json", exclude_none=True), allow_unicode=True), encoding="utf-8")
    args = ["freetext", "index", TENANT, "--datamap", str(path), "--store", f"app_db={e.url}",
            "--store", f"cache={e.urls['cache']}", "--url", e.url, "--json"]
    runner = CliRunner()
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["columns"][0] | {"indexed_at": None} == \
        {"column": "app_db.tickets.body", "key_mark": "5", "rows_indexed": 5, "read": 5, "indexed_at": None}
    with e.engine.begin() as c:
        c.execute(text("INSERT INTO tickets (id, author_id, body) VALUES (7, 1, :b)"), {"b": f"回电{phone}"})
    again = json.loads(runner.invoke(app, args).output)["columns"][0]
    assert (again["read"], again["rows_indexed"], again["key_mark"]) == (1, 6, "7")
    assert phone not in first.output
    unknown = runner.invoke(app, ["freetext", "index", "nosuch", *args[3:]])
    assert unknown.exit_code == 1 and "租户 nosuch 不存在" in unknown.output and "Traceback" not in unknown.output


def test_the_map_checks_free_text_columns() -> None:
    from yinsi.datamap_io import DataMapError

    base = """
schema_version: 1
tenant: t
subjects:
  - {id: user, name: 用户, store: db, table: users, key: id, attributes: {phone: phone}, identifiers: [IDENT]}
stores:
  - id: db
    kind: sql
    name: 业务库
    tables:
      users:
        reach: {user: {key: id}}
        erase: keep_row
        columns:
          id: {not_pi: true, why: 编号}
          phone: {item: contact.mobile, erase: ACTION}
          remark: {item: content.posts, free_text: true}
      notes:
        UPDATED
        columns:
          id: {not_pi: true, why: 编号}
          body: {item: content.posts, free_text: true}
"""

    def load(ident: str = "phone", action: str = '"null"', updated: str = "") -> Any:
        return parse_datamap(base.replace("IDENT", ident).replace("ACTION", action).replace("UPDATED", updated)).datamap

    dm = load()  # a table of free text alone needs no reach; a keep_row table's free text defaults to redact
    assert [c.id for c in freetext.free_text_columns(dm)] == ["db.users.remark", "db.notes.body"]
    assert {loc.column: loc.erase.value for loc in dm.locations("user")}["remark"] == "redact"
    with pytest.raises(DataMapError, match="标识属性 'email' 不在主体 user 的 attributes 中"):
        load(ident="email")
    with pytest.raises(DataMapError, match="只有自由文本列"):
        load(action="redact")
    with pytest.raises(DataMapError, match=r"更新时间列 notes\.changed_at 不在映射中"):
        load(updated="updated_at: changed_at")
    assert load(updated="updated_at: id").stores[0].tables["notes"].updated_at == "id"


def test_rows_edited_since_the_last_run_are_indexed_again_when_the_map_names_updated_at(env: Env) -> None:
    e = env
    dm, _, phone, name, _ = _setup(e)
    with e.engine.begin() as c:
        c.execute(text("ALTER TABLE tickets ADD COLUMN changed_at TIMESTAMP NULL"))
        c.execute(text("UPDATE tickets SET changed_at = :t"), {"t": datetime(2026, 3, 1, 8, 0)})
    doc = dm.model_dump(mode="json", exclude_none=True)
    tickets = next(s for s in doc["stores"] if s["id"] == "app_db")["tables"]["tickets"]
    tickets["updated_at"] = "changed_at"
    tickets["columns"]["changed_at"] = {"not_pi": True, "why": "最后修改时间"}
    dm = parse_datamap(yaml.safe_dump(doc, allow_unicode=True)).datamap
    col = freetext.free_text_columns(dm)[0]
    idents = ft.identifiers([("phone", phone), ("name", name)])
    with rights_tests.RightsService(e.url, datamaps={TENANT: dm}, store_urls=e.urls, channels={}) as svc:
        index = freetext.tenant_index(svc, TENANT)
        conn = svc.connector(dm, TENANT, "app_db")
        index.refresh(conn, col)
        assert index.lookup(col, idents) == ["1", "2", "4"]
        with e.engine.begin() as c:  # an old row edited: now it mentions the person, and row 1 no longer
            c.execute(text("UPDATE tickets SET body = :b, changed_at = :t WHERE id = 5"),
                      {"b": f"补充：业主电话 {phone}", "t": datetime(2026, 3, 2, 8, 0)})
            c.execute(text("UPDATE tickets SET body = '已处理', changed_at = :t WHERE id = 1"),
                      {"t": datetime(2026, 3, 2, 9, 0)})
        assert index.refresh(conn, col) == 2
        assert index.lookup(col, idents) == ["2", "4", "5"]
        assert index.refresh(conn, col) == 0


def test_a_namesakes_name_alone_is_left_and_the_persons_mentions_still_go(env: Env) -> None:
    e = env
    dm, bodies, phone, name, other_phone = _setup(e)
    with e.engine.begin() as c:  # another agent has the same name
        c.execute(text("UPDATE agents SET name = :n WHERE id = :o"), {"n": name, "o": e.other})
    col = freetext.free_text_columns(dm)[0]
    subj = dm.subject("agent")
    assert subj is not None
    idents = freetext.person_identifiers(dm, subj, {"phone": phone, "name": name})
    with rights_tests.RightsService(e.url, datamaps={TENANT: dm}, store_urls=e.urls, channels={}) as svc:
        index = freetext.tenant_index(svc, TENANT)
        conn = svc.connector(dm, TENANT, "app_db")
        shared = freetext.shared_names(dm, subj, conn, str(e.agent), {"phone": phone, "name": name})
        assert shared == [name]
        detail = freetext.redact_column(index, conn, col, idents, shared)
        assert detail["namesakes"] == 1 and sorted(detail["rows"]) == ["1", "2"]
        # "报修人：<name>" alone may be the namesake: left, and not reported by the read-back either
        assert freetext.remaining(index, conn, col, idents, detail["rows"], shared) == []
    after = _bodies(e)
    assert after[1] == "联系人：[已删除] 电话：[已删除]，厨房水管漏水，请尽快处理。"  # beside the person's phone: goes
    assert after[4] == bodies[4] and _count(e, phone) == 0 and _count(e, other_phone) == 2
