"""The 客户通 (物业通) demo app as a user meets it, on SQLite, PostgreSQL and MariaDB: its generator (schema,
determinism, the hard cases it promises), its data map against the 2021 declaration and the live schema, and
the acceptance checks of issue 10 through the real command line.

Expected values never come from the program under test: the person's data are read with hand-written SQL
over every text column the database reports (SQLAlchemy inspection, not the data map), rows attributable
to the person are named by SQL written here from the app's schema, and the copy package is compared with
that independent dump.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import traceback
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import String, Text, inspect, text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from tests.staff_login import Team, make_team
from tests.test_rights_cli import YINSI, Cli, make_cli, out
from yinsi.cli.demoapp_cmds import load_demo_app
from yinsi.cli.main import app
from yinsi.storage.engine import make_engine
from yinsi.stores.sql import dispose_engines

ROOT = Path(__file__).resolve().parents[1]
MAP = ROOT / "examples" / "kehutong_app" / "datamap.yaml"
POLICY = ROOT / "policies" / "kehutong-2021.yaml"
TENANT = "kehutong"
HOUSES = 30  # houses 3, 13 and 23 are marked households with every hard case around their owner
BEIJING = ZoneInfo("Asia/Shanghai")
STAFF = {"po1": ["privacy_officer"], "cs1": ["customer_service"]}
demo = load_demo_app("kehutong")
runner = CliRunner()


#: The variables an in-process command sees from its Cli's environment (the rest of os.environ is the test's).
_PASSED = ("YINSI_", "KEHUTONG_", "WEILIAOKE_")


@dataclass
class InProcessCli(Cli):
    """``yinsi`` run inside the test process (the command line parsed and run by the real Typer app, with
    the same environment variables, working directory, output and exit code as a subprocess), so that a
    test does not pay the interpreter's start-up and imports (about 2 s of CPU) for every command. An
    exception no command handled is reported with its traceback in stderr, as a subprocess would show it."""

    def __call__(self, *args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith(_PASSED)}
        env.update({k: v for k, v in self.env.items() if k.startswith(_PASSED)})
        env.update({"COLUMNS": self.env.get("COLUMNS"), "NO_COLOR": self.env.get("NO_COLOR")})
        here = Path.cwd()
        os.chdir(self.cwd)
        try:
            r = runner.invoke(app, list(args), env=env, catch_exceptions=True)
        finally:
            os.chdir(here)
        stderr = r.stderr
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            stderr += "".join(traceback.format_exception(r.exception))
        p = subprocess.CompletedProcess(["yinsi", *args], r.exit_code, r.stdout, stderr)
        if code is not None:
            assert p.returncode == code, (f"yinsi {' '.join(args)} → exit {p.returncode}, expected {code}\n"
                                          f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def acting_as(self, team: Team, staff_id: str) -> Cli:
        return InProcessCli({**self.env, **team.env(staff_id)}, self.cwd)

    def subprocess(self) -> Cli:
        """The same command line run as the installed ``yinsi`` program in a child process."""
        return Cli(dict(self.env), self.cwd)


def in_process(tmp_path: Path, extra: dict[str, str] | None = None) -> InProcessCli:
    c = make_cli(tmp_path, extra)
    return InProcessCli(c.env, c.cwd)


def data_now() -> datetime:
    """The dataset's "now": the current Beijing minute, so row ages (a payment 4 years old, a log 2 months
    old) hold at the moment the request runs."""
    return datetime.now(BEIJING).replace(tzinfo=None, second=0, microsecond=0)


def seed_app(url: str, houses: int = HOUSES, seed: int = 2021, now: datetime | None = None) -> None:
    engine = make_engine(url)
    try:
        demo.create_schema(engine)
    finally:
        engine.dispose()
    demo.seed(url, houses, seed, now=now or data_now(), workers=1)


def text_columns(engine: Engine) -> dict[str, list[str]]:
    """Every character column of every table, as the database reports it (not as the data map says)."""
    found: dict[str, list[str]] = {}
    insp = inspect(engine)
    for table in insp.get_table_names():
        cols = [c["name"] for c in insp.get_columns(table) if isinstance(c["type"], String | Text)]
        if cols:
            found[table] = cols
    return found


def canon(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    try:
        d = Decimal(str(value))
        if d.is_finite():
            return format(d.normalize(), "f")
    except InvalidOperation:
        pass
    return str(value)


# ------------------------------------------------------------------------------------------- generator
def test_generator_is_deterministic_has_every_hard_case_and_no_dangling_key(db_url: str, tmp_path: Path) -> None:
    now = datetime(2025, 6, 30, 12, 0)
    seed_app(db_url, now=now)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            def one(sql: str, **params: Any) -> Any:
                return conn.execute(text(sql), params).scalar_one()

            owner = conn.execute(text("SELECT r.id, r.phone, r.name, r.id_number FROM residents r JOIN "
                                      "house_residents hr ON hr.resident_id = r.id WHERE hr.house_id = 13 "
                                      "AND r.family_of_id IS NULL")).one()
            rid, phone, name, idn = owner
            # a relative's row points at the owner
            assert one("SELECT count(*) FROM residents WHERE family_of_id = :r", r=rid) >= 2
            # others' tickets mention the owner by phone and by ID number, and one names them as contact
            assert one("SELECT count(*) FROM repair_tickets WHERE resident_id <> :r AND description LIKE :p",
                       r=rid, p=f"%{phone}%") >= 2
            assert one("SELECT count(*) FROM repair_tickets WHERE description LIKE :p", p=f"%{idn}%") == 1
            assert one("SELECT count(*) FROM repair_tickets WHERE house_id = 14 AND contact_phone = :p",
                       p=phone) >= 1
            # another resident registered a visitor pass for the owner
            assert one("SELECT count(*) FROM visitor_passes WHERE visitor_phone = :p AND resident_id <> :r",
                       p=phone, r=rid) >= 1
            # calls matched only by phone, an unlinked WeCom contact, the shared house
            assert one("SELECT count(*) FROM calls WHERE caller_phone = :p", p=phone) >= 1
            assert one("SELECT count(*) FROM wecom_contacts WHERE resident_id IS NULL AND mobile = :p", p=phone) == 1
            assert one("SELECT count(*) FROM house_residents WHERE house_id = 13") >= 3
            # payments on both sides of the 3-year hold, logs on both sides of 6 months
            assert one("SELECT count(*) FROM payments WHERE resident_id = :r AND paid_at < :t", r=rid,
                       t=now - timedelta(days=1095)) >= 1
            assert one("SELECT count(*) FROM payments WHERE resident_id = :r AND paid_at > :t", r=rid,
                       t=now - timedelta(days=1095)) >= 1
            assert one("SELECT count(*) FROM network_logs WHERE resident_id = :r AND logged_at < :t", r=rid,
                       t=now - timedelta(days=180)) >= 1
            assert one("SELECT count(*) FROM network_logs WHERE resident_id = :r AND logged_at > :t", r=rid,
                       t=now - timedelta(days=180)) >= 1
            assert name and len(idn) == 18
            # no dangling foreign key
            for child, col, parent in (("residents", "family_of_id", "residents"),
                                       ("house_residents", "house_id", "houses"),
                                       ("house_residents", "resident_id", "residents"),
                                       ("repair_tickets", "resident_id", "residents"),
                                       ("repair_tickets", "house_id", "houses"),
                                       ("visitor_passes", "resident_id", "residents"),
                                       ("payments", "resident_id", "residents"),
                                       ("payments", "house_id", "houses"),
                                       ("wecom_contacts", "resident_id", "residents"),
                                       ("network_logs", "resident_id", "residents")):
                assert one(f"SELECT count(*) FROM {child} c LEFT JOIN {parent} p ON c.{col} = p.id "
                           f"WHERE c.{col} IS NOT NULL AND p.id IS NULL") == 0, (child, col)
            rows = {t.name: [tuple(canon(v) for v in r) for r in conn.execute(t.select().order_by(t.c.id))]
                    for t in demo.TABLES}
    finally:
        engine.dispose()
    # the same seed gives the same rows on SQLite, whatever the chunk size
    ref = f"sqlite:///{(tmp_path / 'ref.db').as_posix()}"
    engine = make_engine(ref)
    demo.create_schema(engine)
    demo.seed(ref, HOUSES, 2021, now=now, chunk_size=7)
    try:
        with engine.connect() as conn:
            ref_rows = {t.name: [tuple(canon(v) for v in r) for r in conn.execute(t.select().order_by(t.c.id))]
                        for t in demo.TABLES}
    finally:
        engine.dispose()
    assert ref_rows == rows


def test_cli_seed_appends_and_validates_against_the_declaration(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'kht.db').as_posix()}"
    assert runner.invoke(app, ["demo-app", "create", "--app", "kehutong", "--url", url]).exit_code == 0
    first = runner.invoke(app, ["demo-app", "seed", "--app", "kehutong", "--houses", "12", "--url", url, "--json"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["demo-app", "seed", "--app", "kehutong", "--houses", "5", "--url", url, "--json"])
    assert json.loads(again.output)["first_house_id"] == 13
    stats = json.loads(runner.invoke(app, ["demo-app", "stats", "--app", "kehutong", "--url", url, "--json"]).output)
    assert stats["tables"]["houses"] == 17 and stats["tables"]["repair_tickets"] > 0
    p = runner.invoke(app, ["demo-app", "seed", "--app", "kehutong", "--url", url])
    assert p.exit_code == 2 and "--houses" in p.output
    v = runner.invoke(app, ["datamap", "validate", "--app", "kehutong", "--url", url])
    assert v.exit_code == 0, v.output
    assert "通过" in v.output and "kehutong 2021-10-25" in v.output
    # the default app is still 微聊客
    p = runner.invoke(app, ["demo-app", "seed", "--houses", "3", "--url", url])
    assert p.exit_code == 2 and "--users" in p.output


# ------------------------------------------------------------------------------------- the acceptance
@dataclass
class World:
    cli: Cli
    url: str
    engine: Engine
    team: Team
    resident: int = 0
    phone: str = ""
    name: str = ""
    id_number: str = ""
    house: int = 0
    before: dict[str, dict[Any, dict[str, Any]]] = field(default_factory=dict, repr=False)

    def staff(self, staff_id: str = "po1") -> Cli:
        return self.cli.acting_as(self.team, staff_id)

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(query), params))

    def snapshot(self) -> dict[str, dict[Any, dict[str, Any]]]:
        """Every row of every table by id."""
        snap: dict[str, dict[Any, dict[str, Any]]] = {}
        with self.engine.connect() as conn:
            for t in demo.TABLES:
                snap[t.name] = {r["id"]: dict(r) for r in conn.execute(t.select()).mappings()}
        return snap

    def identifiers(self) -> tuple[str, str, str]:
        return self.phone, self.name, self.id_number

    def hits(self) -> list[tuple[str, str, Any, str]]:
        """(table, column, row id, which) wherever a text column holds the person's phone, name or ID number."""
        found = []
        cols = text_columns(self.engine)
        with self.engine.connect() as conn:
            for table, names in cols.items():
                for col in names:
                    for label, value in zip(("phone", "name", "id_number"), self.identifiers(), strict=True):
                        for (rid,) in conn.execute(text(f"SELECT id FROM {table} WHERE {col} LIKE :v"),
                                                   {"v": f"%{value}%"}):
                            found.append((table, col, rid, label))
        return found

    # --- the person's rows, named by SQL written here from the app's schema -----------------------
    def own_ids(self) -> dict[str, set[Any]]:
        r, p = self.resident, self.phone
        q = {
            "house_residents": ("SELECT id FROM house_residents WHERE resident_id = :r", {"r": r}),
            "repair_tickets": ("SELECT id FROM repair_tickets WHERE resident_id = :r", {"r": r}),
            "visitor_passes": ("SELECT id FROM visitor_passes WHERE resident_id = :r", {"r": r}),
            "payments": ("SELECT id FROM payments WHERE resident_id = :r", {"r": r}),
            "calls": ("SELECT id FROM calls WHERE caller_phone = :p", {"p": p}),
            "wecom_contacts": ("SELECT id FROM wecom_contacts WHERE resident_id = :r OR mobile = :p",
                               {"r": r, "p": p}),
            "network_logs": ("SELECT id FROM network_logs WHERE resident_id = :r", {"r": r}),
        }
        return {t: {row[0] for row in self.sql(s, **params)} for t, (s, params) in q.items()}

    def mention_tickets(self) -> dict[Any, str]:
        """Tickets filed by others whose text names the person (by phone, name or ID number)."""
        rows = self.sql("SELECT id, description FROM repair_tickets WHERE resident_id <> :r AND "
                        "(description LIKE :p OR description LIKE :n OR description LIKE :i)",
                        r=self.resident, p=f"%{self.phone}%", n=f"%{self.name}%", i=f"%{self.id_number}%")
        return {rid: desc for rid, desc in rows}


def _distinctive(w: World) -> bool:
    """Whether the person's name occurs only where the person's own data is (so that "no text column holds
    the name" is a fair check): every other occurrence is in a row that also holds their phone or ID number
    or is linked to them."""
    name, phone, idn, r = w.name, w.phone, w.id_number, w.resident
    n = f"%{name}%"
    checks = [
        ("SELECT count(*) FROM residents WHERE name LIKE :n AND id <> :r", {}),
        ("SELECT count(*) FROM repair_tickets WHERE contact_name LIKE :n AND contact_phone <> :p", {}),
        ("SELECT count(*) FROM repair_tickets WHERE description LIKE :n AND description NOT LIKE :pp "
         "AND description NOT LIKE :ii", {"pp": f"%{phone}%", "ii": f"%{idn}%"}),
        ("SELECT count(*) FROM visitor_passes WHERE visitor_name LIKE :n AND visitor_phone <> :p", {}),
        ("SELECT count(*) FROM payments WHERE payer_name LIKE :n AND resident_id <> :r", {}),
        ("SELECT count(*) FROM wecom_contacts WHERE name LIKE :n AND mobile <> :p", {}),
        ("SELECT count(*) FROM houses WHERE address LIKE :n", {}),
    ]
    return all(w.sql(sql, n=n, p=phone, r=r, **extra)[0][0] == 0 for sql, extra in checks)


@dataclass
class Template:
    """Yinsi's data directory with the 2021 policy published and the staff team logged in, made once per
    module (Argon2 hashing and the CLI's start-up are the slow parts) and copied for each test."""

    root: Path
    team: Team


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    root = tmp_path_factory.mktemp("kehutong-template")
    cli = in_process(root, {"YINSI_DATAMAP": str(MAP)})
    cli("policy", "publish", str(POLICY))
    return Template(root, make_team(None, TENANT, STAFF, environ=cli.yinsi_environ()))


def pick_owner(w: World, houses: tuple[int, ...] = (3, 13, 23)) -> None:
    """The owner of a marked household whose name is distinctive (chosen by SQL, not by the program)."""
    for house in houses:
        rid, phone, name, idn = w.sql(
            "SELECT r.id, r.phone, r.name, r.id_number FROM residents r JOIN house_residents hr ON "
            "hr.resident_id = r.id WHERE hr.house_id = :h AND r.family_of_id IS NULL", h=house)[0]
        w.resident, w.phone, w.name, w.id_number, w.house = rid, phone, name, idn, house
        if _distinctive(w):
            return
    pytest.fail("seed 2021 should give a marked household owner with a distinctive name")


@pytest.fixture
def world(db_url: str, tmp_path: Path, template: Template) -> Iterator[World]:
    seed_app(db_url)
    shutil.copytree(template.root / "yinsi-data", tmp_path / "yinsi-data")
    cli = in_process(tmp_path, {"KEHUTONG_DATABASE_URL": db_url, "YINSI_DATAMAP": str(MAP)})
    engine = make_engine(db_url)
    try:
        w = World(cli, db_url, engine, template.team)
        pick_owner(w)
        w.before = w.snapshot()
        yield w
    finally:
        engine.dispose()
        dispose_engines()  # the app database's pool the in-process commands opened (it is dropped next)


def verify(w: World, rid: str) -> None:
    w.cli("request", "verify", TENANT, rid, "--send", "sms")
    outbox = Path(w.cli.env["YINSI_DATA_DIR"]) / "sms-outbox" / "sms-outbox.jsonl"
    mine = [json.loads(x) for x in outbox.read_text(encoding="utf-8").splitlines() if x.strip()]
    mine = [m for m in mine if m.get("ref") == rid]
    assert mine and mine[-1]["to"] == w.phone, "the code goes to the number the account already holds (R8)"
    w.cli("request", "verify", TENANT, rid, "--code", str(mine[-1]["params"]["code"]))


def submit(w: World, rtype: str) -> str:
    return str(w.staff().json("request", "submit", TENANT, str(w.resident), rtype)["id"])


def _redacted_exactly(before: str, after: str, identifiers: tuple[str, ...]) -> bool:
    """Whether ``after`` is ``before`` with each run of the person's identifiers replaced by the marker and
    every other character kept (field labels such as 身份证号 or 电话 right before an identifier stay)."""
    pattern = "|".join(re.escape(x) for x in sorted(identifiers, key=len, reverse=True))
    return after == re.sub(rf"(?:{pattern})+", "[已删除]", before)


def cancel(w: World) -> dict[str, Any]:
    """A cancellation as the desk runs it; the manual steps are completed once the staff member has seen the
    values they need (the recording files, the WeCom contacts), which must be every one the database held."""
    paths = {r[0] for r in w.sql("SELECT file_path FROM calls WHERE caller_phone = :p", p=w.phone)}
    wecom = {r[0] for r in w.sql("SELECT external_userid FROM wecom_contacts WHERE resident_id = :r OR mobile = :p",
                                 r=w.resident, p=w.phone)}
    assert paths and wecom
    rid = submit(w, "cancel_account")
    verify(w, rid)
    w.staff()("request", "confirm", TENANT, rid)
    # on SQLite the cancellation itself runs through the installed program, as the desk runs it
    run_cli = w.cli.subprocess() if isinstance(w.cli, InProcessCli) and w.url.startswith("sqlite") else w.cli
    assert run_cli is w.cli or Path(YINSI[0]).name == "yinsi", YINSI  # the installed entry point
    v = run_cli.json("request", "run", TENANT, rid)
    assert v["state"] == "waiting_manual", v
    pending = [s["key"] for s in v["steps"] if s["status"] == "manual_pending"]
    assert any("delete_call_recordings" in k for k in pending), pending
    assert any("wecom_external_contact" in k for k in pending), pending
    # the captured values, shown to the authorised member of staff (and only to them)
    w.staff("cs1")("request", "identifiers", TENANT, rid, "--reason", "删除通话录音", code=1)
    shown = w.staff("po1").json("request", "identifiers", TENANT, rid, "--reason", "删除通话录音与企业微信联系人")
    shown_text = json.dumps(shown, ensure_ascii=False)
    assert all(p in shown_text for p in paths), (paths, shown)
    assert all(x in shown_text for x in wecom), (wecom, shown)
    w.staff("po1")("request", "complete", TENANT, rid, "--note", "录音已删除 OSS-20261203-7；企业微信联系人已删除")
    v = w.staff().json("request", "show", TENANT, rid)
    assert v["state"] == "completed", v
    return dict(v)


def test_cancellation_leaves_no_phone_name_or_id_number_and_touches_nobody_else(world: World) -> None:
    w = world
    assert len(w.hits()) > 5  # the person's identifiers are all over the database before
    own = w.own_ids()
    mentions = w.mention_tickets()
    as_contact = {r[0] for r in w.sql("SELECT id FROM repair_tickets WHERE contact_phone = :p AND resident_id <> :r",
                                      p=w.phone, r=w.resident)}
    as_visitor = {r[0] for r in w.sql("SELECT id FROM visitor_passes WHERE visitor_phone = :p AND "
                                      "resident_id <> :r", p=w.phone, r=w.resident)}
    relatives = {r[0] for r in w.sql("SELECT id FROM residents WHERE family_of_id = :r", r=w.resident)}
    assert mentions and as_contact and as_visitor and relatives and own["calls"] and own["payments"]

    v = cancel(w)
    # the person is also known as a visitor (their phone in others' passes): covered, and said so
    checked = v["result"].get("checked") or {}
    assert "visitor" in checked.get("kinds", []), v["result"]
    assert not [o for o in v["result"].get("other_kinds_not_covered", []) if o.get("kind") == "visitor"]
    assert any(x.get("table") == "houses" for x in v["result"].get("shared_kept", [])), v["result"]

    # 1. no text column of the app database holds the person's phone, name or ID number
    assert w.hits() == [], w.hits()[:10]
    tomb = w.sql("SELECT status, phone, name, id_number, family_of_id FROM residents WHERE id = :r", r=w.resident)
    assert tomb == [("cancelled", None, None, None, None)]

    # 2. the person's own rows are gone (held ones are in the vault, outside the app database)
    after = w.snapshot()
    for table, ids in own.items():
        assert not (ids & set(after[table])), (table, sorted(ids & set(after[table])))

    # 3. everyone else's rows: untouched, except the columns that pointed at or named the person
    allowed: dict[tuple[str, Any], set[str]] = {}
    for rid in relatives:
        allowed[("residents", rid)] = {"family_of_id", "relation"}
    for rid in as_contact:
        allowed[("repair_tickets", rid)] = {"contact_name", "contact_phone"}
    for rid in mentions:
        allowed.setdefault(("repair_tickets", rid), set()).add("description")
    for rid in as_visitor:
        allowed[("visitor_passes", rid)] = {"visitor_name", "visitor_phone"}
    for table, rows in w.before.items():
        gone = own.get(table, set())
        for rid, row in rows.items():
            if rid in gone or (table == "residents" and rid == w.resident):
                continue
            assert rid in after[table], f"{table} row {rid} of someone else was deleted"
            changed = {c for c in row if canon(row[c]) != canon(after[table][rid][c])}
            extra = changed - allowed.get((table, rid), set())
            assert not extra, f"{table} row {rid}: {sorted(extra)} changed"
            if "description" in changed:
                assert _redacted_exactly(row["description"], after[table][rid]["description"], w.identifiers()), (
                    row["description"], after[table][rid]["description"])
    # the shared house and its address stay (others still live there)
    assert after["houses"][w.house] == w.before["houses"][w.house]
    assert w.sql("SELECT count(*) FROM house_residents WHERE house_id = :h", h=w.house)[0][0] >= 2

    # 4. the vault holds exactly the person's payments and logs still inside their holds, until date + period
    holds = [h for h in w.staff().json("request", "holds", TENANT) if h["request"] == v["id"]]
    today = datetime.now(BEIJING).date()
    expected: dict[str, date] = {}
    for table, col, days in (("payments", "paid_at", 1095), ("network_logs", "logged_at", 180)):
        for rid in own[table]:
            when = w.before[table][rid][col]
            when = when if isinstance(when, datetime) else datetime.fromisoformat(str(when))
            until = when.date() + timedelta(days=days)
            if until > today:
                expected[f"{table}:id={rid}"] = until
    assert expected and {h["source"] for h in holds} == set(expected)
    for h in holds:
        assert abs(date.fromisoformat(h["hold_until"]) - expected[h["source"]]) <= timedelta(days=1), h


def _export(w: World, rid: str) -> list[dict[str, Any]]:
    zip_path = w.cli.cwd / f"{rid}.zip"
    w.staff("po1")("request", "export", TENANT, rid, "--output", str(zip_path))
    with zipfile.ZipFile(zip_path) as z:
        return list(json.loads(z.read("personal_information.json").decode("utf-8"))["data"])


def _values(value: Any) -> list[str]:
    if isinstance(value, list | tuple | set):
        return [canon(x) for x in value]
    if isinstance(value, dict):
        return [canon(x) for x in value.values()]
    return [canon(value)]


def _table_of(location: str) -> str | None:
    for t in sorted((t.name for t in demo.TABLES), key=len, reverse=True):
        if re.search(rf"(?<![A-Za-z0-9_]){t}(?![A-Za-z0-9_])", location):
            return t
    return None


def test_copy_holds_every_value_the_database_held_about_the_person(world: World) -> None:
    w = world
    r, p = w.resident, w.phone
    # the independent dump: (table, value) of every value about the person
    dump: set[tuple[str, str]] = set()

    def add(table: str, sql: str, **params: Any) -> None:
        for row in w.sql(sql, **params):
            dump.update((table, canon(v)) for v in row if v is not None and v != "")

    add("residents", "SELECT phone, name, id_number FROM residents WHERE id = :r", r=r)
    add("houses", "SELECT h.address FROM houses h JOIN house_residents hr ON hr.house_id = h.id "
                  "WHERE hr.resident_id = :r", r=r)
    add("house_residents", "SELECT role FROM house_residents WHERE resident_id = :r", r=r)
    add("repair_tickets", "SELECT contact_name, contact_phone, description FROM repair_tickets WHERE resident_id = :r",
        r=r)
    add("repair_tickets", "SELECT contact_name, contact_phone FROM repair_tickets WHERE contact_phone = :p", p=p)
    add("visitor_passes", "SELECT visitor_name, visitor_phone FROM visitor_passes WHERE visitor_phone = :p", p=p)
    add("payments", "SELECT order_no, fee_type, amount, payer_name FROM payments WHERE resident_id = :r", r=r)
    add("calls", "SELECT caller_phone, file_path, duration_s FROM calls WHERE caller_phone = :p", p=p)
    add("wecom_contacts", "SELECT external_userid, name, mobile FROM wecom_contacts WHERE resident_id = :r "
                          "OR mobile = :p", r=r, p=p)
    add("network_logs", "SELECT ip, path FROM network_logs WHERE resident_id = :r", r=r)
    mentions = w.mention_tickets()
    assert mentions and any(t == "houses" for t, _ in dump)

    rid = submit(w, "copy")
    verify(w, rid)
    v = w.cli.json("request", "run", TENANT, rid)
    assert v["state"] in ("waiting_manual", "completed"), v
    data = _export(w, rid)
    exported: set[tuple[str, str]] = set()
    for d in data:
        table = _table_of(str(d.get("location", "")))
        if table is not None:
            exported.update((table, x) for x in _values(d.get("value")))
    missing = dump - exported
    assert not missing, f"{len(missing)} values missing from the copy, e.g. {sorted(missing)[:6]}"
    # the house address is readable (not an internal id) and every passage that names the person is there
    passages = [x for t, x in exported if t == "repair_tickets"]
    for ticket, desc in mentions.items():
        assert any(x.strip("…. ") and x.strip("…. ") in desc and any(i in x for i in w.identifiers())
                   for x in passages), (ticket, desc)
    # nothing changed in the database
    assert w.snapshot() == w.before


def test_correction_changes_the_present_not_the_calls_history_and_nobody_is_refused(world: World) -> None:
    w = world
    old, new = w.phone, "19912345678"
    assert not w.sql("SELECT id FROM residents WHERE phone = :p", p=new)
    calls = {r[0] for r in w.sql("SELECT id FROM calls WHERE caller_phone = :p", p=old)}
    assert calls
    # correcting only the number a call came from is refused unless the person asks for history explicitly
    rid = str(w.staff().json("request", "submit", TENANT, str(w.resident), "correction",
                             "--change", f"calls.caller_phone={new}")["id"])
    verify(w, rid)
    p = w.cli("request", "run", TENANT, rid, code=None)
    assert p.returncode != 0 and "历史" in out(p) and "Traceback" not in out(p)
    # the phone is corrected; the calls keep the number they came from
    rid = str(w.staff().json("request", "submit", TENANT, str(w.resident), "correction",
                             "--change", f"residents.phone={new}")["id"])
    verify(w, rid)
    v = w.cli.json("request", "run", TENANT, rid)
    assert v["state"] == "completed", v
    assert w.sql("SELECT phone FROM residents WHERE id = :r", r=w.resident) == [(new,)]
    assert {r[0] for r in w.sql("SELECT id FROM calls WHERE caller_phone = :p", p=old)} == calls
    after = w.snapshot()
    for table, rows in w.before.items():
        for rid_, row in rows.items():
            if (table, rid_) != ("residents", w.resident):
                assert after[table][rid_] == row, (table, rid_)
    # another owner asks for the history too: their calls follow the new number
    pick_owner(w, (23, 13, 3))
    other_old, other_new = w.phone, "19912345679"
    other_calls = {r[0] for r in w.sql("SELECT id FROM calls WHERE caller_phone = :p", p=other_old)}
    rid = str(w.staff().json("request", "submit", TENANT, str(w.resident), "correction", "--include-historical",
                             "--change", f"residents.phone={other_new}",
                             "--change", f"calls.caller_phone={other_new}")["id"])
    w.staff()("request", "verify", TENANT, rid, "--in-person", "--how", "当面核对身份证件")
    v = w.cli.json("request", "run", TENANT, rid)
    assert v["state"] == "completed", v
    assert {r[0] for r in w.sql("SELECT id FROM calls WHERE caller_phone = :p", p=other_new)} == other_calls
    assert not w.sql("SELECT id FROM calls WHERE caller_phone = :p", p=other_old)
    refused_for_nobody(w)


def refused_for_nobody(w: World) -> None:
    """A request for a resident who does not exist is refused with a reason, never completed empty (run in
    the correction test's world: one database per backend is enough for both)."""
    ghost = str(10**9 + 7)
    assert not w.sql("SELECT id FROM residents WHERE id = :r", r=int(ghost))
    p = w.staff()("request", "submit", TENANT, ghost, "copy", "--json", code=None)
    if p.returncode != 0:
        assert "Traceback" not in out(p) and re.search("[\u4e00-\u9fff]", out(p)), out(p)
        return
    rid = str(json.loads(p.stdout)["id"])
    w.staff()("request", "verify", TENANT, rid, "--in-person", "--how", "当面核对身份证件", code=None)
    run = w.cli("request", "run", TENANT, rid, "--json", code=None)
    v = w.staff().json("request", "show", TENANT, rid)
    assert v["state"] != "completed", v
    assert v["state"] == "refused" and v.get("refusal"), (v, out(run))
