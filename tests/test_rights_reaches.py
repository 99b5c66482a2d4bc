"""More ways to reach a person's rows (issue 10 items 2, 3, 5, 6, 7) on a small property-management schema of
its own, on SQLite, PostgreSQL and MariaDB, checked with independent SQL:

- several reaches per table and subject kind: a resident's own repair tickets (deleted) and tickets others
  wrote naming the resident as contact (``match`` on the phone: those columns cleared, the rows stay), a
  self-reference (``family_of_id`` of another resident pointing at the person: cleared);
- ``match`` reaches: a visitor pass whose ``visitor_phone`` is the person's phone, a call matched only by
  the phone;
- shared rows (``shared_via``): a house shared with another resident stays, a house only the person lived
  in goes, the person's link rows go; the copy shows the addresses;
- a manual step captures the call recordings' file paths before erasure and shows them to a privacy officer;
- another subject kind (a WeCom contact with the same phone) that the cancellation does not cover is named;
- correction leaves historical columns unless the person asks for them.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, ForeignKey, Integer, MetaData, String, Table, text

from yinsi.datamap_io import DataMapError, parse_datamap
from yinsi.domain.datamap import DataMap
from yinsi.domain.rights import RequestType, State
from yinsi.rights.service import RequestError, RightsService
from yinsi.services.publishing import publish
from yinsi.storage import upgrade
from yinsi.storage.engine import make_engine
from yinsi.stores.sql import dispose_engines

pytestmark = pytest.mark.usefixtures("isolated_env")

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "policies" / "weiliaoke-2022.yaml"  # a published declaration collecting the items used here
TENANT = "weiliaoke"

PHONE, NAME, ID_NUMBER = "13800000001", "张三丰", "110101199003074514"
OTHER_PHONE, OTHER_NAME = "13900000002", "李四光"

MAP = f"""
schema_version: 1
tenant: {TENANT}
subjects:
  - id: resident
    name: 住户
    store: crm_db
    table: residents
    key: id
    attributes: {{phone: phone, name: name, id_number: id_number}}
    identifiers: [phone, name, id_number]
    cancelled_marker: {{status: cancelled}}
  - id: visitor
    name: 访客
    store: crm_db
    table: visitors
    key: id
    attributes: {{phone: visitor_phone}}
    identifiers: [phone]
  - id: wecom_contact
    name: 企业微信联系人
    store: crm_db
    table: wecom_contacts
    key: id
    attributes: {{phone: phone}}
    identifiers: [phone]
stores:
  - id: crm_db
    kind: sql
    name: 物业客户库
    tables:
      residents:
        reach:
          resident:
            - {{name: own, key: id}}
            - {{name: family, key: family_of_id, columns: [family_of_id]}}
        erase: keep_row
        columns:
          id: {{not_pi: true, why: 内部编号}}
          phone: {{item: contact.mobile, erase: "null"}}
          name: {{item: basic.name, erase: "null"}}
          id_number: {{item: identity.id_document, erase: "null"}}
          family_of_id: {{item: basic.name, erase: "null"}}
          status: {{not_pi: true, why: 账号状态}}
      houses:
        shared_via: house_residents
        reach:
          resident: {{join: ["houses.id -> house_residents.house_id", "house_residents.resident_id -> residents.id"]}}
        erase: delete_row
        columns:
          id: {{not_pi: true, why: 内部编号}}
          address: {{item: contact.postal_address}}
      house_residents:
        reach: {{resident: {{key: resident_id}}}}
        erase: delete_row
        columns:
          id: {{not_pi: true, why: 内部编号}}
          house_id: {{item: contact.postal_address}}
          resident_id: {{not_pi: true, why: 关联键}}
      repair_tickets:
        reach:
          resident:
            - {{name: own, key: resident_id}}
            - {{name: as_contact, match: {{contact_phone: phone}}, erase: keep_row,
               columns: [contact_name, contact_phone]}}
        erase: delete_row
        columns:
          id: {{not_pi: true, why: 内部编号}}
          resident_id: {{not_pi: true, why: 关联键}}
          contact_name: {{item: basic.name, erase: "null"}}
          contact_phone: {{item: contact.method, erase: "null"}}
          description: {{item: content.posts}}
      visitors:
        reach:
          visitor: {{key: id}}
          resident: {{match: {{visitor_phone: phone}}}}
        erase: delete_row
        columns:
          id: {{not_pi: true, why: 内部编号}}
          visitor_phone: {{item: contact.mobile}}
          visitor_name: {{item: basic.name}}
          host_id: {{not_pi: true, why: 登记访客的住户内部编号}}
      calls:
        reach: {{resident: {{match: {{caller_phone: phone}}}}}}
        erase: keep_row
        columns:
          id: {{not_pi: true, why: 内部编号}}
          caller_phone: {{item: contact.mobile, erase: "null", historical: true}}
          file_path: {{item: comms.call_log, erase: "null"}}
      wecom_contacts:
        reach: {{wecom_contact: {{key: id}}}}
        erase: delete_row
        columns:
          id: {{not_pi: true, why: 内部编号}}
          phone: {{item: contact.mobile}}
          name: {{item: basic.name}}
  - id: recordings
    kind: manual
    name: 通话录音对象存储
    steps:
      - id: delete_call_recordings
        subject: resident
        items: [comms.call_log]
        description: 在对象存储中删除该住户的通话录音文件
        access: 从对象存储下载该住户的通话录音文件，交付本人
        who: 客服主管
        capture:
          - {{store: crm_db, table: calls, column: file_path}}
"""


def _schema() -> MetaData:
    md = MetaData()
    utf8 = {"mysql_charset": "utf8mb4"}  # the test server's default is latin1
    Table("residents", md, Column("id", Integer, primary_key=True, autoincrement=False),
          Column("phone", String(32)), Column("name", String(64)), Column("id_number", String(32)),
          Column("family_of_id", Integer, ForeignKey("residents.id")), Column("status", String(16)), **utf8)
    Table("houses", md, Column("id", Integer, primary_key=True, autoincrement=False), Column("address", String(200)), **utf8)
    Table("house_residents", md, Column("id", Integer, primary_key=True, autoincrement=False),
          Column("house_id", Integer, ForeignKey("houses.id"), nullable=False),
          Column("resident_id", Integer, ForeignKey("residents.id"), nullable=False), **utf8)
    Table("repair_tickets", md, Column("id", Integer, primary_key=True, autoincrement=False),
          Column("resident_id", Integer, ForeignKey("residents.id"), nullable=False),
          Column("contact_name", String(64)), Column("contact_phone", String(32)), Column("description", String(500)), **utf8)
    Table("visitors", md, Column("id", Integer, primary_key=True, autoincrement=False),
          Column("visitor_phone", String(32)), Column("visitor_name", String(64)), Column("host_id", Integer), **utf8)
    Table("calls", md, Column("id", Integer, primary_key=True, autoincrement=False),
          Column("caller_phone", String(32)), Column("file_path", String(200)), **utf8)
    Table("wecom_contacts", md, Column("id", Integer, primary_key=True, autoincrement=False),
          Column("phone", String(32)), Column("name", String(64)), **utf8)
    return md


ROWS: dict[str, list[dict[str, Any]]] = {
    "residents": [
        {"id": 1, "phone": PHONE, "name": NAME, "id_number": ID_NUMBER, "family_of_id": None, "status": "active"},
        {"id": 2, "phone": OTHER_PHONE, "name": OTHER_NAME, "id_number": "110101198001014517", "family_of_id": 1,
         "status": "active"},
        {"id": 3, "phone": "13700000003", "name": "王五", "id_number": None, "family_of_id": 2, "status": "active"},
    ],
    "houses": [{"id": 10, "address": "幸福小区3栋2单元501"}, {"id": 11, "address": "阳光花园8栋101"},
               {"id": 12, "address": "和平里1号"}],
    "house_residents": [{"id": 1, "house_id": 10, "resident_id": 1}, {"id": 2, "house_id": 10, "resident_id": 2},
                        {"id": 3, "house_id": 11, "resident_id": 1}, {"id": 4, "house_id": 12, "resident_id": 3}],
    "repair_tickets": [
        {"id": 1, "resident_id": 1, "contact_name": NAME, "contact_phone": PHONE, "description": "厨房水管漏水"},
        {"id": 2, "resident_id": 2, "contact_name": NAME, "contact_phone": PHONE, "description": "替父亲报修门锁"},
        {"id": 3, "resident_id": 2, "contact_name": OTHER_NAME, "contact_phone": OTHER_PHONE, "description": "电梯异响"},
    ],
    "visitors": [{"id": 1, "visitor_phone": PHONE, "visitor_name": NAME, "host_id": 2},
                 {"id": 2, "visitor_phone": "13600000006", "visitor_name": "赵六", "host_id": 1}],
    "calls": [{"id": 1, "caller_phone": PHONE, "file_path": "s3://rec/2026/1.mp3"},
              {"id": 2, "caller_phone": OTHER_PHONE, "file_path": "s3://rec/2026/2.mp3"}],
    "wecom_contacts": [{"id": 1, "phone": PHONE, "name": NAME}, {"id": 2, "phone": OTHER_PHONE, "name": OTHER_NAME}],
}


@dataclass
class Crm:
    url: str
    engine: Engine
    dm: DataMap

    def service(self) -> RightsService:
        return RightsService(self.url, datamaps={TENANT: self.dm}, store_urls={"crm_db": self.url}, channels={})

    def rows(self, table: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY id")).mappings()]

    def holding(self, *values: str) -> list[tuple[str, int, str]]:
        """Independent SQL: every (table, id, column) of the app whose text equals or contains a value."""
        out = []
        for table in ROWS:
            for row in self.rows(table):
                for column, value in row.items():
                    if isinstance(value, str) and any(v in value for v in values):
                        out.append((table, int(row["id"]), column))
        return out


@pytest.fixture
def crm(db_url: str) -> Iterator[Crm]:
    engine = make_engine(db_url)
    md = _schema()
    try:
        md.create_all(engine)
        with engine.begin() as conn:
            for table in md.sorted_tables:
                rows = ROWS[table.name]
                if table.name == "residents":  # the self-reference after every row exists
                    conn.execute(table.insert(), [{**r, "family_of_id": None} for r in rows])
                    for r in rows:
                        if r["family_of_id"] is not None:
                            conn.execute(table.update().where(table.c.id == r["id"]).values(family_of_id=r["family_of_id"]))
                else:
                    conn.execute(table.insert(), rows)
        upgrade(db_url)
        publish(POLICY, db_url)
        yield Crm(db_url, engine, parse_datamap(MAP).datamap)
    finally:
        engine.dispose()
        dispose_engines()


def _verified(svc: RightsService, subject: str, rtype: RequestType, **kwargs: Any) -> str:
    rid = svc.submit(TENANT, subject, rtype, subject_kind="resident", **kwargs)
    svc.mark_verified(TENANT, rid, "客服小王", "当面核对身份证件")
    return rid


def _run(svc: RightsService, rid: str) -> State:
    """Run; the declaration's cancellation prerequisites this map does not check are confirmed by a person."""
    state = svc.run(TENANT, rid)
    if state is State.WAITING_MANUAL and any(s["key"].startswith("prerequisite:") and s["status"] == "manual_pending"
                                             for s in svc.show(TENANT, rid).steps):
        svc.complete_manual(TENANT, rid, "客服小王", "已核对注销前提", step="prerequisite")
        state = svc.run(TENANT, rid)
    return state


def _package(svc: RightsService, rid: str, tmp: Path) -> dict[str, Any]:
    out = svc.export(TENANT, rid, tmp / f"{rid}.zip")
    with zipfile.ZipFile(io.BytesIO(out.read_bytes())) as z:
        return dict(json.loads(z.read("personal_information.json")))


# ------------------------------------------------------------------------------------------ the data map
def test_several_reaches_keep_single_reach_ids_and_name_the_others() -> None:
    dm = parse_datamap(MAP).datamap
    ids = {loc.id for loc in dm.locations("resident")}
    assert "crm_db.visitors.visitor_phone@resident" in ids  # one reach: the id as before
    assert "crm_db.houses.address@resident" in ids
    assert {"crm_db.repair_tickets.contact_phone@resident#own", "crm_db.repair_tickets.contact_phone@resident#as_contact",
            "crm_db.repair_tickets.description@resident#own", "crm_db.residents.family_of_id@resident#family"} <= ids
    assert "crm_db.repair_tickets.description@resident#as_contact" not in ids  # only the columns it claims
    by_id = {loc.id: loc for loc in dm.locations("resident")}
    assert by_id["crm_db.repair_tickets.contact_phone@resident#own"].erase.value == "delete_row"
    assert by_id["crm_db.repair_tickets.contact_phone@resident#as_contact"].erase.value == "null"
    assert "主体的phone" in by_id["crm_db.calls.caller_phone@resident"].how()
    manual = by_id["recordings/delete_call_recordings/comms.call_log@resident"]
    assert manual.manual_key == "manual:recordings/delete_call_recordings"


@pytest.mark.parametrize(("old", "new", "message"), [
    ("- {name: own, key: resident_id}", "- {key: resident_id}", "每个都要有名称"),
    ("- {name: own, key: resident_id}", "- {name: as_contact, key: resident_id}", "名称 'as_contact' 重复"),
    ("match: {contact_phone: phone}, erase", "match: {contact_phone: mobile}, erase", "属性 'mobile' 不在主体 resident"),
    ("match: {contact_phone: phone}, erase", "match: {nowhere: phone}, erase", "匹配列 repair_tickets.nowhere"),
    ("- {name: own, key: resident_id}", "- {name: own, key: resident_id, match: {contact_phone: phone}}",
     "只能给一个"),
    ("columns: [contact_name, contact_phone]", "columns: [contact_name, description]",
     "列 repair_tickets.description 必须给出删除动作"),
    ('"houses.id -> house_residents.house_id", ', "", "第一步从 houses 到关联表 house_residents"),
    ("shared_via: house_residents", "shared_via: nowhere", "关联表 'nowhere'"),
    ("column: file_path}", "column: nowhere}", "列 calls.nowhere 不在映射中"),
    ("- {name: own, key: id}", "- {name: own, key: phone}", "必须有一个以主体键 id 关联"),
])
def test_structure_problems_are_named_in_chinese(old: str, new: str, message: str) -> None:
    assert old in MAP
    text_ = MAP.replace(old, new, 1)
    with pytest.raises(DataMapError, match=message):
        parse_datamap(text_)


# ---------------------------------------------------------------------------------------- cancellation
def test_cancellation_reaches_matched_self_referencing_and_shared_rows_and_reads_them_back(crm: Crm, tmp_path: Path) -> None:
    before = {t: crm.rows(t) for t in ROWS}
    with crm.service() as svc:
        rid = _verified(svc, "1", RequestType.CANCEL_ACCOUNT)
        svc.confirm(TENANT, rid)
        assert _run(svc, rid) is State.WAITING_MANUAL  # the recordings in object storage
        view = svc.show(TENANT, rid)
        step = next(s for s in view.steps if s["status"] == "manual_pending")
        assert step["key"] == "manual:recordings/delete_call_recordings"
        assert step["detail"]["captured"] == ["calls.file_path"] and "identifiers" in step["detail"]["what"]
        assert "s3://" not in json.dumps(view.to_json(), ensure_ascii=False)  # captured values only in the plan
        from yinsi.staff.service import StaffService

        staff = StaffService(svc.sessions, svc.audit.log, svc.audit.ring)
        staff.add_staff(TENANT, "admin", "管理员", ["administrator"])
        staff.add_staff(TENANT, "po1", "负责人", ["privacy_officer"], actor="admin")
        shown = svc.identifiers(TENANT, rid, "po1", "在对象存储中删除通话录音")
        assert shown["manual:recordings/delete_call_recordings · calls.file_path"] == "s3://rec/2026/1.mp3"
        assert shown["residents.phone"] == PHONE  # from the plan: the row no longer holds it
        assert svc.complete_manual(TENANT, rid, "po1", "录音已删除，工单 R-1", step="recordings/delete_call_recordings") \
            is State.COMPLETED
        view = svc.show(TENANT, rid)
    after = {t: crm.rows(t) for t in ROWS}
    # independent SQL: nothing holds the person's phone, name or ID number but the kind the result names
    assert crm.holding(PHONE, NAME, ID_NUMBER) == [("wecom_contacts", 1, "phone"), ("wecom_contacts", 1, "name")]
    result = view.result or {}
    assert result["other_kinds_not_covered"] == [{"kind": "wecom_contact", "name": "企业微信联系人", "by": ["phone"]}]
    assert result["checked"]["kinds"] == ["resident", "visitor"]  # the visitor passes are covered by a match reach
    assert "crm_db.calls" in result["checked"]["tables"] and result["checked"]["stores"] == ["crm_db", "recordings"]
    assert result["shared_kept"][0]["table"] == "houses" and result["shared_kept"][0]["kept"] == 1
    assert "企业微信联系人" in view.history[-1]["note"] and "保留与他人共享的 houses 1 行" in view.history[-1]["note"]
    # the person's own row: a tombstone; the self-reference of resident 2 cleared, the rest of it untouched
    assert after["residents"][0] == {"id": 1, "phone": None, "name": None, "id_number": None, "family_of_id": None,
                                     "status": "cancelled"}
    assert after["residents"][1] == {**before["residents"][1], "family_of_id": None}
    assert after["residents"][2] == before["residents"][2]
    # the shared house stays with its other resident's link, the person's own house and links go
    assert [h["id"] for h in after["houses"]] == [10, 12]
    assert [(r["house_id"], r["resident_id"]) for r in after["house_residents"]] == [(10, 2), (12, 3)]
    # own tickets deleted; a ticket another resident wrote keeps its text, the person's name and phone cleared
    assert after["repair_tickets"] == [{**before["repair_tickets"][1], "contact_name": None, "contact_phone": None},
                                       before["repair_tickets"][2]]
    assert after["visitors"] == [before["visitors"][1]]  # the pass in the person's phone deleted
    assert after["calls"] == [{"id": 1, "caller_phone": None, "file_path": None}, before["calls"][1]]
    assert after["wecom_contacts"] == before["wecom_contacts"]  # named as not covered, untouched


def test_the_read_back_of_a_match_reach_looks_at_the_rows_pinned_at_plan_time(crm: Crm) -> None:
    """Clearing a matched phone hides the row from the match itself: the rows found at plan time are pinned,
    so the read-back still sees a name written back into that row afterwards."""
    from yinsi.stores.sql import SqlConnector

    store = crm.dm.store("crm_db")
    locs = [loc for loc in crm.dm.locations("resident") if loc.id.startswith("crm_db.repair_tickets.")
            and loc.reach_name == "as_contact"]
    conn = SqlConnector(crm.dm, store, crm.url, pseudonymise=str)  # type: ignore[arg-type]
    conn.bind({"phone": PHONE, "name": NAME}, "1")
    pins = conn.reaching_keys(locs[0], "1")
    assert pins == ["repair_tickets:id=1", "repair_tickets:id=2"]
    conn.pin({conn.reach_id(locs[0]): pins})
    assert conn.null_columns(locs, "1").affected == 2
    assert conn.remaining_null(locs, "1") == []
    with crm.engine.begin() as c:  # someone writes the name back into the matched ticket
        c.execute(text("UPDATE repair_tickets SET contact_name = :n WHERE id = 2"), {"n": NAME})
    unpinned = SqlConnector(crm.dm, store, crm.url, pseudonymise=str)  # type: ignore[arg-type]
    unpinned.bind({"phone": PHONE}, "1")
    assert unpinned.remaining_null(locs, "1") == []  # the match alone no longer finds the row
    left = conn.remaining_null(locs, "1")
    assert [(r.key, r.values) for r in left] == [("repair_tickets:id=2", {"contact_name": NAME})]
    with crm.engine.begin() as c:  # and a row of another person's phone is never touched
        assert c.execute(text("SELECT contact_phone FROM repair_tickets WHERE id = 3")).scalar() == OTHER_PHONE


def test_a_shared_row_is_kept_while_another_subject_links_to_it(crm: Crm) -> None:
    from yinsi.stores.sql import SqlConnector

    store = crm.dm.store("crm_db")
    loc = next(x for x in crm.dm.locations("resident") if x.table == "houses")
    conn = SqlConnector(crm.dm, store, crm.url, pseudonymise=str)  # type: ignore[arg-type]
    assert conn.shared_split(loc, "1") == (["houses:id=11"], ["houses:id=10"])
    assert conn.shared_split(loc, "3") == (["houses:id=12"], [])
    assert [r.key for r in conn.read(loc, "1")] == ["houses:id=10", "houses:id=11"]  # a copy reads both
    assert [r.key for r in conn.remaining(loc, "1")] == ["houses:id=11"]  # erasure and read-back: the sole one


# ------------------------------------------------------------------------------------------------ copy
def test_the_copy_holds_every_value_including_shared_addresses_and_matched_rows(crm: Crm, tmp_path: Path) -> None:
    with crm.service() as svc:
        rid = _verified(svc, "1", RequestType.COPY)
        assert svc.run(TENANT, rid) is State.WAITING_MANUAL  # the recordings: obtained by a person
        view = svc.show(TENANT, rid)
        assert [s["key"] for s in view.steps if s["status"] == "manual_pending"] == [
            "manual:recordings/delete_call_recordings"]  # the same id as in the erasure
        package = _package(svc, rid, tmp_path)
    values = {(d["location"], str(d["value"])) for d in package["data"]}
    expected = {
        ("crm_db.residents.phone", PHONE), ("crm_db.residents.name", NAME), ("crm_db.residents.id_number", ID_NUMBER),
        ("crm_db.residents.family_of_id", "1"),  # resident 2 names the person as family
        ("crm_db.houses.address", "幸福小区3栋2单元501"), ("crm_db.houses.address", "阳光花园8栋101"),
        ("crm_db.repair_tickets.contact_name", NAME), ("crm_db.repair_tickets.contact_phone", PHONE),
        ("crm_db.repair_tickets.description", "厨房水管漏水"),
        ("crm_db.visitors.visitor_phone", PHONE), ("crm_db.visitors.visitor_name", NAME),
        ("crm_db.calls.caller_phone", PHONE), ("crm_db.calls.file_path", "s3://rec/2026/1.mp3"),
    }
    assert expected <= values
    # independent SQL: every cell holding the person's phone, name or ID number (but the kind not covered)
    for table, row_id, column in crm.holding(PHONE, NAME, ID_NUMBER):
        if table != "wecom_contacts":
            assert any(d["source"] == f"{table}:id={row_id}" and d["location"].endswith(f".{column}")
                       for d in package["data"]), (table, row_id, column)
    assert "和平里1号" not in {v for _, v in values}  # another resident's house
    shared = [d for d in package["data"] if d["location"] == "crm_db.houses.address"]
    assert all("共享" in d["shared"] for d in shared)


# ------------------------------------------------------------------------------------------ correction
def test_correction_leaves_historical_columns_unless_asked(crm: Crm) -> None:
    new = "13811112222"
    with crm.service() as svc:
        rid = _verified(svc, "1", RequestType.CORRECTION, details={"changes": {"contact.mobile": new}})
        assert svc.run(TENANT, rid) is State.COMPLETED
        view = svc.show(TENANT, rid)
    assert crm.rows("residents")[0]["phone"] == new
    assert crm.rows("calls")[0]["caller_phone"] == PHONE  # the number the call came from stays
    assert (view.result or {})["historical_left"] == ["crm_db.calls.caller_phone@resident"]
    with crm.service() as svc:
        with pytest.raises(RequestError, match="只有更正或补充请求"):
            svc.submit(TENANT, "1", RequestType.DELETION, subject_kind="resident",
                       details={"include_historical": True})
        with crm.engine.begin() as conn:
            conn.execute(text("UPDATE residents SET phone = :p WHERE id = 1"), {"p": PHONE})
        rid = _verified(svc, "1", RequestType.CORRECTION,
                        details={"changes": {"contact.mobile": new}, "include_historical": True})
        assert svc.run(TENANT, rid) is State.COMPLETED
    assert crm.rows("calls")[0]["caller_phone"] == new and crm.rows("calls")[1]["caller_phone"] == OTHER_PHONE
    assert crm.rows("visitors")[0]["visitor_phone"] == new  # a matched row is the person's too


def test_the_api_carries_the_request_for_historical_columns() -> None:
    from yinsi.api.models import RequestDetailsIn

    details = RequestDetailsIn(changes={"contact.mobile": "13811112222"}, include_historical=True).as_details()
    assert details == {"changes": {"contact.mobile": "13811112222"}, "include_historical": True}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # values only are compared: one backend is enough
def test_a_match_reach_in_another_store_finds_the_rows_by_the_subjects_phone(crm: Crm, tmp_path: Path) -> None:
    """A call log kept in another database (a PBX) reaches the resident only by the phone: the attributes
    come from the resident's store, and once bound at plan time the rows are found after the phone is gone."""
    from yinsi.stores.base import connector_for

    pbx_url = f"sqlite:///{(tmp_path / 'pbx.db').as_posix()}"
    pbx = make_engine(pbx_url)
    try:
        with pbx.begin() as conn:
            conn.execute(text("CREATE TABLE call_logs (id INTEGER PRIMARY KEY, caller VARCHAR(32), note VARCHAR(64))"))
            conn.execute(text("INSERT INTO call_logs VALUES (1, :p, 'a'), (2, :o, 'b'), (3, :p, 'c')"),
                         {"p": PHONE, "o": OTHER_PHONE})
        text_ = MAP.replace("  - id: recordings\n", """  - id: pbx_db
    kind: sql
    name: 呼叫中心
    tables:
      call_logs:
        reach: {resident: {match: {caller: phone}}}
        erase: delete_row
        columns:
          id: {not_pi: true, why: 内部编号}
          caller: {item: contact.mobile}
          note: {not_pi: true, why: 通话结果代码}
  - id: recordings
""", 1)
        dm = parse_datamap(text_).datamap
        loc = next(x for x in dm.locations("resident") if x.store == "pbx_db")
        assert loc.id == "pbx_db.call_logs.caller@resident"
        urls = {"crm_db": crm.url, "pbx_db": pbx_url}
        conn = connector_for(dm, "pbx_db", urls=urls, pseudonymise=str)
        assert [r.key for r in conn.read(loc, "1")] == ["call_logs:id=1", "call_logs:id=3"]  # resolved from crm_db
        late = connector_for(dm, "pbx_db", urls=urls, pseudonymise=str)
        late.bind({"phone": PHONE}, "1")  # the plan's snapshot
        with crm.engine.begin() as c:
            c.execute(text("UPDATE residents SET phone = NULL WHERE id = 1"))
        assert late.erase(loc, "1").affected == 2 and late.remaining(loc, "1") == []
        with pbx.connect() as c:
            assert c.execute(text("SELECT id, caller FROM call_logs")).all() == [(2, OTHER_PHONE)]
    finally:
        pbx.dispose()


def test_the_map_warns_where_a_person_may_be_known_under_a_kind_no_reach_covers() -> None:
    problems = parse_datamap(MAP).datamap.problems()
    assert all(p.severity == "warning" for p in problems)
    texts = [p.message for p in problems if p.loc[:2] == ("subjects", 0)]
    assert any("wecom_contacts 没有 resident 的 reach" in t for t in texts)
    assert not any("visitors 没有 resident" in t for t in texts)  # covered by the match reach


def test_the_command_line_takes_the_request_for_historical_columns_on_corrections_only(tmp_path: Path) -> None:
    from tests.test_rights_cli import POLICY as CLI_POLICY
    from tests.test_rights_cli import TENANT as CLI_TENANT
    from tests.test_rights_cli import make_cli, out

    cli = make_cli(tmp_path)
    cli("policy", "publish", str(CLI_POLICY))
    desk = cli.desk()
    v = desk.json("request", "submit", CLI_TENANT, "u-hist", "correction", "--change", "contact.mobile=13811112222",
                  "--include-historical")
    assert v["type"] == "correction"
    p = desk("request", "submit", CLI_TENANT, "u-hist", "deletion", "--include-historical", code=1)
    assert "只有更正或补充请求可以要求更正历史记录" in out(p)
