"""Identity verification by e-mail through ``RightsService``, with a real SMTP server (aiosmtpd).

The tenant is 客户通 (policies/kehutong-2021.yaml collects ``contact.email`` from property-company users).
Its app here is one SQLite table of users with their e-mail addresses; the data map says the code goes to
the address on record (``verify_by: {email: email}``), so the person is never asked for new PI (R8).
"""

from __future__ import annotations

import re
import sqlite3
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.test_notify import SmtpServer
from yinsi.datamap_io import load_datamap
from yinsi.domain.rights import RequestType, State
from yinsi.notify.smtp import SmtpEmailChannel
from yinsi.rights.service import RequestError, RightsService
from yinsi.services.publishing import publish
from yinsi.storage import upgrade
from yinsi.stores.sql import dispose_engines

pytestmark = pytest.mark.usefixtures("isolated_env")

ROOT = Path(__file__).resolve().parents[1]
TENANT = "kehutong"
DATAMAP = """\
schema_version: 1
tenant: kehutong
declaration_version: "2021-10-25"
subjects:
  - id: member
    name: 物业企业用户
    store: app_db
    table: members
    key: id
    attributes: {email: email}
    verify_by: {email: email}
stores:
  - id: app_db
    kind: sql
    name: 客户通业务库
    connection: {env: KHT_TEST_DATABASE_URL}
    tables:
      members:
        reach: {member: {key: id}}
        erase: delete_row
        columns:
          id: {not_pi: true, why: 内部编号}
          name: {item: basic.name}
          email: {item: contact.email}
"""
MEMBERS = [(1, "王小明", "wang.xm@wuye-a.example"), (2, "李红", "lihong@wuye-b.example")]


@dataclass
class World:
    svc: RightsService
    smtp: SmtpServer
    app_db: Path

    def codes_sent_to(self, address: str) -> list[str]:
        out = []
        for (rcpts, _), msg in zip(self.smtp.received, self.smtp.messages(), strict=True):
            if address in rcpts:
                body = msg.get_body(("plain",))
                assert body is not None
                found = re.findall(r"(?<!\d)\d{6}(?!\d)", body.get_content())
                assert len(found) == 1, body.get_content()
                out.append(found[0])
        return out

    def members(self) -> list[tuple[int, str, str]]:
        con = sqlite3.connect(self.app_db)
        try:
            return [tuple(r) for r in con.execute("SELECT id, name, email FROM members ORDER BY id")]
        finally:
            con.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    app_db = tmp_path / "kehutong-app.db"
    con = sqlite3.connect(app_db)
    con.execute("CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT, email TEXT)")
    con.executemany("INSERT INTO members VALUES (?, ?, ?)", MEMBERS)
    con.commit()
    con.close()
    url = f"sqlite:///{(tmp_path / 'yinsi.db').as_posix()}"
    upgrade(url)
    publish(ROOT / "policies" / "kehutong-2021.yaml", url)
    path = tmp_path / "datamap.yaml"
    path.write_text(DATAMAP, encoding="utf-8")
    loaded = load_datamap(path)
    smtp = SmtpServer()
    smtp.start()
    channel = SmtpEmailChannel("127.0.0.1", smtp.port, "privacy@khtong.example", timeout=5)
    svc = RightsService(url, datamaps={TENANT: loaded.datamap}, store_urls={"app_db": f"sqlite:///{app_db}"},
                        channels={"email": channel})
    try:
        with svc:
            yield World(svc, smtp, app_db)
    finally:
        smtp.stop()
        dispose_engines()


def test_the_code_goes_by_email_to_the_address_on_record_and_verifies_the_request(world: World,
                                                                                  tmp_path: Path) -> None:
    w = world
    rid = w.svc.submit(TENANT, "1", RequestType.ACCESS)
    challenge = w.svc.send_code(TENANT, rid, "email")
    assert challenge.channel == "email" and "wang.xm@wuye-a.example" not in challenge.masked_address
    [code] = w.codes_sent_to("wang.xm@wuye-a.example")
    assert [rcpts for rcpts, _ in w.smtp.received] == [["wang.xm@wuye-a.example"]]  # nobody else got a code
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert not w.svc.check_code(TENANT, rid, wrong).ok
    assert w.svc.show(TENANT, rid).state is State.UNVERIFIED
    assert w.svc.check_code(TENANT, rid, code).ok
    assert w.svc.show(TENANT, rid).state is State.VERIFIED
    assert w.svc.run(TENANT, rid) is State.COMPLETED
    result = w.svc.show(TENANT, rid).result
    assert result is not None and result["items"] == ["basic.name", "contact.email"]
    assert "wang.xm@wuye-a.example" not in repr(result)  # the answer is in the encrypted package only
    with zipfile.ZipFile(w.svc.export(TENANT, rid, tmp_path / "copy.zip")) as z:
        package = z.read("personal_information.json").decode()
    assert "wang.xm@wuye-a.example" in package and "王小明" in package and "李红" not in package


def test_a_typed_address_must_match_the_one_on_record(world: World) -> None:
    w = world
    rid = w.svc.submit(TENANT, "1", RequestType.ACCESS)
    with pytest.raises(RequestError):
        w.svc.send_code(TENANT, rid, "email", claimed="lihong@wuye-b.example")  # someone else's address
    assert w.smtp.received == []
    w.svc.send_code(TENANT, rid, "email", claimed="Wang.XM@wuye-a.example")  # the same address, other case
    assert len(w.codes_sent_to("wang.xm@wuye-a.example")) == 1


def test_sms_is_refused_when_the_data_map_verifies_by_email_only(world: World) -> None:
    rid = world.svc.submit(TENANT, "2", RequestType.ACCESS)
    with pytest.raises(RequestError, match=r"verify_by\.sms"):
        world.svc.send_code(TENANT, rid, "sms")
    assert world.smtp.received == []


def test_an_email_verified_deletion_erases_only_that_member(world: World) -> None:
    w = world
    rid = w.svc.submit(TENANT, "2", RequestType.DELETION, details={"ground": "purpose_done"})
    w.svc.send_code(TENANT, rid, "email")
    [code] = w.codes_sent_to("lihong@wuye-b.example")
    assert w.svc.check_code(TENANT, rid, code).ok
    assert w.svc.run(TENANT, rid) is State.COMPLETED
    assert w.members() == [MEMBERS[0]]
