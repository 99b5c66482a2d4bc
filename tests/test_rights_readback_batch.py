"""The batched read-back (``SqlConnector.anything_left``) answers exactly what the per-location read-back
(``remaining``, ``remaining_null``) finds: rows still reaching the subject, columns still holding a value,
values that are not pseudonyms, for this subject only (SQLite; the same SQL runs on every database in the
erasure tests of tests/test_rights_service.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from yinsi.datamap_io import parse_datamap
from yinsi.stores.base import PSEUDONYM_PREFIX, connector_for
from yinsi.stores.sql import dispose_engines

MAP = """\
schema_version: 1
tenant: kehutong
declaration_version: "2021-10-25"
subjects:
  - {id: member, name: 物业企业用户, store: app_db, table: members, key: id}
stores:
  - id: app_db
    kind: sql
    name: 客户通业务库
    connection: {env: KHT_TEST_DATABASE_URL}
    tables:
      members:
        reach: {member: {key: id}}
        erase: keep_row
        columns:
          id: {not_pi: true, why: 内部编号}
          name: {item: basic.name, erase: "null"}
          email: {item: contact.email, erase: "null"}
          nick: {item: basic.name, erase: pseudonymise}
      notes:
        reach: {member: {join: ["notes.member_id -> members.id"]}}
        erase: delete_row
        columns:
          id: {not_pi: true, why: 内部编号}
          member_id: {not_pi: true, why: 关联键}
          body: {item: basic.name}
"""


def test_anything_left_agrees_with_the_per_location_read_back(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.executescript("CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT, email TEXT, nick TEXT);"
                      "CREATE TABLE notes (id INTEGER PRIMARY KEY, member_id INTEGER REFERENCES members(id), body TEXT);"
                      "INSERT INTO members VALUES (1, '王小明', 'w@x.example', '小明'), (2, '李红', 'l@x.example', '红');"
                      "INSERT INTO notes VALUES (1, 1, '便签'), (2, 2, '便签');")
    con.commit()
    dm = parse_datamap(MAP).datamap
    conn = connector_for(dm, "app_db", urls={"app_db": f"sqlite:///{db}"}, pseudonymise=lambda v: PSEUDONYM_PREFIX + "x")
    locs = {loc.id.split("@")[0].split(".", 1)[1]: loc for loc in dm.locations("member")}
    nulled = (locs["members.name"], locs["members.email"])
    checks = [(locs["notes.body"],), nulled, (locs["members.name"],), (locs["members.nick"],)]

    def per_location() -> list[bool]:
        return [bool(conn.remaining_null(c, "1") if len(c) > 1 else conn.remaining(c[0], "1")) for c in checks]

    try:
        assert conn.anything_left(checks, "1") == per_location() == [True, True, True, True]
        con.execute("DELETE FROM notes WHERE member_id = 1")
        con.execute("UPDATE members SET name = NULL, nick = ? WHERE id = 1", (PSEUDONYM_PREFIX + "x",))
        con.commit()
        assert conn.anything_left(checks, "1") == per_location() == [False, True, False, False]  # e-mail left
        con.execute("UPDATE members SET email = NULL WHERE id = 1")
        con.commit()
        assert conn.anything_left(checks, "1") == per_location() == [False, False, False, False]
        assert conn.anything_left(checks, "2") == [True, True, True, True]  # the other member untouched
        assert conn.anything_left(checks * 60, "1") == [False] * 240  # more than one statement's worth
    finally:
        con.close()
        dispose_engines()
