"""End-to-end tests of ``yinsi request`` as a user runs it: the real CLI in a subprocess, against the 微聊客
demo app on SQLite, Redis (logical DB 11, flushed before and after each test) and a real SMTP server.

Expected values are computed independently of the program: PI values and row counts with hand-written
SQL over the columns that examples/weiliaoke_app/datamap.yaml maps (read here as plain YAML), Redis keys
with direct Redis commands, and due dates counted by hand (the reasoning is in the comments).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.staff_login import Team, make_team
from tests.test_notify import SmtpServer

ROOT = Path(__file__).resolve().parents[1]
MAP = ROOT / "examples" / "weiliaoke_app" / "datamap.yaml"
POLICY = ROOT / "policies" / "weiliaoke-2022.yaml"
TENANT = "weiliaoke"
#: Only this logical DB belongs to these tests (they flush it): 11, or 11 + N on pytest-xdist worker gwN
#: (DBs 11-15); another run at the same time needs another (YINSI_TEST_RIGHTS_CLI_REDIS_URL).
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
if _WORKER > 4:
    raise RuntimeError("test_rights_cli has Redis DBs 11-15 for at most 5 pytest-xdist workers")
REDIS_URL = os.environ.get("YINSI_TEST_RIGHTS_CLI_REDIS_URL", f"redis://127.0.0.1:6379/{11 + _WORKER}")
STAFF = {"po1": ["privacy_officer"], "cs1": ["customer_service"], "au1": ["auditor"]}
USERS = 200  # enough for seed 2022 to give agents with every kind of row and a pending sms code
BEIJING = ZoneInfo("Asia/Shanghai")


# --------------------------------------------------------------------------------------------- the CLI
def _yinsi_command() -> list[str]:
    exe = Path(sys.executable).parent / "yinsi"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from yinsi.cli.main import app; sys.argv[0] = 'yinsi'; app()"]


YINSI = _yinsi_command()


@dataclass
class Cli:
    """Runs ``yinsi`` with an explicit environment (nothing ambient from YINSI_* or WEILIAOKE_*)."""

    env: dict[str, str]
    cwd: Path
    teams: dict[str, Team] = field(default_factory=dict, repr=False)

    def __call__(self, *args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([*YINSI, *args], env=self.env, cwd=self.cwd, capture_output=True, text=True,
                           timeout=300)
        if code is not None:
            assert p.returncode == code, (f"yinsi {' '.join(args)} → exit {p.returncode}, expected {code}\n"
                                          f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def json(self, *args: str, code: int | None = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)

    def acting_as(self, team: Team, staff_id: str) -> Cli:
        """The same CLI run by a logged-in member of staff (their session token in YINSI_STAFF_TOKEN)."""
        return Cli({**self.env, **team.env(staff_id)}, self.cwd)

    def team(self, tenant: str = TENANT) -> Team:
        """Real staff accounts of ``tenant`` in this CLI's database: an administrator, a privacy officer
        (``po1``), customer service (``cs1``) and an auditor (``au1``), logged in (made once per CLI)."""
        if tenant not in self.teams:
            self.teams[tenant] = make_team(None, tenant, STAFF, environ=self.yinsi_environ())
        return self.teams[tenant]

    def desk(self, staff_id: str = "po1", tenant: str = TENANT) -> Cli:
        """The CLI run by a logged-in member of ``tenant``'s staff (the privacy officer by default)."""
        return self.acting_as(self.team(tenant), staff_id)

    def yinsi_environ(self) -> dict[str, str | None]:
        """The Yinsi variables of this CLI's environment, for doing in-process what it would do."""
        keys = ("YINSI_DATA_DIR", "YINSI_DATABASE_URL", "YINSI_MASTER_KEY", "YINSI_MASTER_KEY_FILE")
        return {k: self.env.get(k) for k in keys}


def out(p: subprocess.CompletedProcess[str]) -> str:
    """stdout and stderr joined, with rich's line wrapping undone."""
    return (p.stdout + p.stderr).replace("\n", "")


def make_cli(tmp_path: Path, extra: dict[str, str] | None = None) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YINSI_", "WEILIAOKE_"))}
    env.update({"YINSI_DATA_DIR": str(tmp_path / "yinsi-data"), "COLUMNS": "500", "NO_COLOR": "1",
                "PYTHONIOENCODING": "utf-8"})
    env.update(extra or {})
    return Cli(env, tmp_path)


def rid_of(cli: Cli, *submit_args: str) -> str:
    return str(cli.json("request", "submit", TENANT, *submit_args)["id"])


# ----------------------------------------------------------------------------------- deadline/refusal worlds
@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A fresh Yinsi data directory with the 2022 policy published (no demo app needed)."""
    c = make_cli(tmp_path)
    c("policy", "publish", str(POLICY))
    return c


# ---------------------------------------------------------------------------------------- the demo world
def _redis() -> tuple[Any, str | None]:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, decode_responses=True)
        client.ping()
        return client, None
    except Exception as exc:  # ImportError or a connection error: both mean "no Redis here"
        return None, f"Redis 不可用: {REDIS_URL}: {exc}"


@dataclass
class World:
    cli: Cli
    db: Path
    redis: Any
    smtp: SmtpServer
    agent: int
    phone: str
    name: str
    datamap: dict[str, Any] = field(repr=False)
    team: Team | None = field(default=None, repr=False)

    def staff(self, staff_id: str = "po1") -> Cli:
        """The CLI run by a logged-in member of the tenant's staff."""
        assert self.team is not None
        return self.cli.acting_as(self.team, staff_id)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(self.db)
        try:
            return con.execute(query, params).fetchall()
        finally:
            con.close()

    def sms_code(self, request_id: str) -> str:
        outbox = Path(self.cli.env["YINSI_DATA_DIR"]) / "sms-outbox" / "sms-outbox.jsonl"
        lines = [json.loads(x) for x in outbox.read_text(encoding="utf-8").splitlines() if x.strip()]
        mine = [m for m in lines if m.get("ref") == request_id]
        assert mine, f"no SMS for {request_id} in {outbox}"
        assert mine[-1]["to"] == self.phone, "the code must go to the number the account already holds (R8)"
        return str(mine[-1]["params"]["code"])

    def verify_by_sms(self, request_id: str, wrong_first: bool = False) -> None:
        self.cli("request", "verify", TENANT, request_id, "--send", "sms")
        code = self.sms_code(request_id)
        if wrong_first:
            wrong = f"{(int(code) + 1) % 1_000_000:06d}"
            p = self.cli("request", "verify", TENANT, request_id, "--code", wrong, code=1)
            assert "还可尝试" in out(p)
        self.cli("request", "verify", TENANT, request_id, "--code", code)

    # --- what the data map maps, read independently (plain YAML, hand-written SQL) --------------------
    def agent_tables(self) -> dict[str, dict[str, Any]]:
        store = next(s for s in self.datamap["stores"] if s["id"] == "app_db")
        return {t: spec for t, spec in store["tables"].items() if "agent" in (spec.get("reach") or {})}

    def pi_columns(self, table: str) -> list[str]:
        return [c for c, spec in self.agent_tables()[table]["columns"].items() if "item" in spec]

    def _from_where(self, table: str) -> str:
        reach = self.agent_tables()[table]["reach"]["agent"]
        if "key" in reach:
            return f"FROM {table} WHERE {table}.{reach['key']} = ?"
        # join: ["invoices.order_id -> orders.id", "orders.agent_id -> agents.id"]
        steps = [tuple(part.strip() for part in s.split("->")) for s in reach["join"]]
        sql = f"FROM {table}"
        for src, dst in steps[:-1]:
            sql += f" JOIN {dst.split('.')[0]} ON {src} = {dst}"
        return sql + f" WHERE {steps[-1][0]} = ?"

    def rows(self, table: str, columns: list[str] | None = None) -> list[tuple[Any, ...]]:
        cols = ", ".join(f"{table}.{c}" for c in (columns or ["id"]))
        return self.sql(f"SELECT {cols} {self._from_where(table)}", self.agent)

    def pi_values(self) -> set[tuple[str, str]]:
        """(app_db.table.column, canonical value) of every non-null PI value of the agent."""
        found: set[tuple[str, str]] = set()
        for table in self.agent_tables():
            cols = self.pi_columns(table)
            for row in self.rows(table, cols):
                for col, value in zip(cols, row, strict=True):
                    if value is not None and value != "":
                        found.add((f"app_db.{table}.{col}", canon(value)))
        return found


def canon(value: Any) -> str:
    """A value's canonical text: numbers compare numerically (199 == "199.00"), the rest as text."""
    if isinstance(value, bool):
        return str(value)
    try:
        d = Decimal(str(value))
        if d.is_finite():
            return format(d.normalize(), "f")
    except InvalidOperation:
        pass
    return str(value)


@dataclass
class Template:
    """The seeded demo app, Yinsi's data directory after publishing, and the Redis keys, made once."""

    root: Path
    keys: list[tuple[str, int, bytes]]  # Redis key, milliseconds to live (0: none), DUMP payload
    team: Team  # staff accounts in the template's Yinsi database (copied with it)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    """Seeding 200 agents and publishing through the CLI takes a few seconds: done once per module with
    the same commands a user runs, then copied for each test (files, and Redis keys by DUMP/RESTORE)."""
    client, why = _redis()
    if why is not None:
        if os.environ.get("YINSI_REQUIRE_SERVICES") == "1":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    client.flushdb()
    root = tmp_path_factory.mktemp("rights-cli-template")
    url = f"sqlite:///{(root / 'wlk.db').as_posix()}"
    cli = make_cli(root, {"WEILIAOKE_DATABASE_URL": url, "WEILIAOKE_REDIS_URL": REDIS_URL, "YINSI_DATAMAP": str(MAP)})
    cli("demo-app", "create", "--url", url)
    cli("demo-app", "seed", "--users", str(USERS), "--url", url, "--redis", REDIS_URL, "--seed", "2022")
    cli("policy", "publish", str(POLICY))
    team = cli.team()
    import redis

    raw = redis.Redis.from_url(REDIS_URL)
    keys = [(k.decode(), max(int(raw.pttl(k)), 0), bytes(raw.dump(k))) for k in raw.scan_iter("*", count=1000)]
    raw.close()
    client.flushdb()
    client.close()
    yield Template(root, keys, team)


@pytest.fixture
def world(tmp_path: Path, template: Template) -> Iterator[World]:
    import redis

    client, _ = _redis()
    client.flushdb()
    raw = redis.Redis.from_url(REDIS_URL)
    with raw.pipeline(transaction=False) as pipe:
        for key, ttl, payload in template.keys:
            pipe.restore(key, ttl, payload)
        pipe.execute()
    raw.close()
    shutil.copy2(template.root / "wlk.db", tmp_path / "wlk.db")
    shutil.copytree(template.root / "yinsi-data", tmp_path / "yinsi-data")
    smtp = SmtpServer()
    smtp.start()
    try:
        db = tmp_path / "wlk.db"
        url = f"sqlite:///{db.as_posix()}"
        cli = make_cli(tmp_path, {"WEILIAOKE_DATABASE_URL": url, "WEILIAOKE_REDIS_URL": REDIS_URL,
                                  "YINSI_DATAMAP": str(MAP), "YINSI_SMTP_HOST": "127.0.0.1",
                                  "YINSI_SMTP_PORT": str(smtp.port)})
        datamap = yaml.safe_load(MAP.read_text(encoding="utf-8"))
        w = World(cli, db, client, smtp, 0, "", "", datamap, template.team)
        # The person: an agent with orders, invoices, login logs, bindings, chat messages, Redis sessions and
        # a pending sms code — chosen by SQL and Redis, not by the program.
        candidates = []
        for key in sorted(client.scan_iter("sms:code:*")):
            phone = key.split(":")[-1]
            hit = w.sql("SELECT id, name FROM agents WHERE phone = ?", phone)
            if not hit:
                continue
            agent, name = hit[0]
            w.agent = agent
            counts = [len(w.rows(t)) for t in ("orders", "invoices", "login_logs", "property_bindings",
                                               "chat_messages")]
            if all(counts) and client.exists(f"user:{agent}:sessions"):
                candidates.append((agent, phone, name))
        assert candidates, "seed 2022 with 200 users should give an agent with every kind of row"
        w.agent, w.phone, w.name = candidates[0]
        yield w
    finally:
        smtp.stop()
        client.flushdb()


def agent_redis_keys(w: World) -> set[str]:
    tokens = w.redis.smembers(f"user:{w.agent}:sessions")
    keys = {f"user:{w.agent}:sessions", f"sms:code:{w.phone}"} | {f"session:{t}" for t in tokens}
    return {k for k in keys if w.redis.exists(k)}


def beijing_today() -> date:
    return datetime.now(BEIJING).date()


# =============================================================================== 1. the "done when" scenario
def test_copy_request_exports_every_pi_value_of_the_agent(world: World) -> None:
    w, cli = world, world.cli
    expected = w.pi_values()
    sms_code_value = w.redis.get(f"sms:code:{w.phone}")
    session_tokens = w.redis.smembers(f"user:{w.agent}:sessions")
    assert expected and sms_code_value and session_tokens

    rid = rid_of(w.staff(), str(w.agent), "copy")
    w.verify_by_sms(rid, wrong_first=True)
    v = cli.json("request", "run", TENANT, rid)
    # The data map has manual systems (vendors) the package cannot include: a person provides them.
    assert v["state"] in ("waiting_manual", "completed")
    if v["state"] == "waiting_manual":
        assert any(s["status"] == "manual_pending" for s in v["steps"])
    package = Path(v["result"]["package"])

    zip_path = w.cli.cwd / "x.zip"
    # decrypting the package is a staff action: nobody without a login, and only a privacy officer
    assert "未登录" in out(cli("request", "export", TENANT, rid, "--output", str(zip_path), code=1))
    p = w.staff("cs1")("request", "export", TENANT, rid, "--output", str(zip_path), code=1)
    assert "S3" in out(p) and not zip_path.exists()
    w.staff("po1")("request", "export", TENANT, rid, "--output", str(zip_path))
    with zipfile.ZipFile(zip_path) as z:
        names = set(z.namelist())
        assert {"personal_information.json", "personal_information.csv", "personal_information.html"} <= names
        data = json.loads(z.read("personal_information.json").decode("utf-8"))
        html = z.read("personal_information.html").decode("utf-8")
        csv_text = z.read("personal_information.csv").decode("utf-8-sig")

    exported = {(d["location"], canon(d["value"])) for d in data["data"]
                if d["location"].startswith("app_db.")}
    missing = expected - exported
    assert not missing, f"{len(missing)} PI values of agent {w.agent} missing from the package, e.g. {sorted(missing)[:5]}"
    # Redis: the pending sms code and the session set of the agent
    cache = {d["location"]: d["value"] for d in data["data"] if d["location"].startswith("cache:")}
    assert canon(cache.get("cache:sms:code:{phone}")) == canon(sms_code_value)
    assert set(cache.get("cache:user:{subject}:sessions") or []) == session_tokens
    # The HTML is in Chinese and shows the person's values; the CSV has them too.
    assert "zh" in html.split(">", 2)[1] and "个人信息" in html
    assert w.name in html and w.phone in html
    assert w.phone in csv_text
    # At rest the package is encrypted: not a zip, no PI in clear.
    assert package.exists()
    raw = package.read_bytes()
    assert not zipfile.is_zipfile(package) and not raw.startswith(b"PK")
    assert w.phone.encode() not in raw and w.name.encode("utf-8") not in raw


def test_correction_updates_every_mapped_location_and_refuses_an_invalid_phone(world: World) -> None:
    w, cli = world, world.cli
    new_name = "欧阳新名"
    name_tables = {t: [c for c in w.pi_columns(t)
                       if w.agent_tables()[t]["columns"][c]["item"] == "basic.name"] for t in w.agent_tables()}
    name_tables = {t: cols for t, cols in name_tables.items() if cols}
    assert set(name_tables) >= {"agents", "property_bindings"}
    rows_before = {t: len(w.rows(t)) for t in name_tables}
    customers_before = w.sql("SELECT id, name FROM customers WHERE agent_id = ? ORDER BY id", w.agent)

    rid = rid_of(w.staff(), str(w.agent), "correction", "--change", f"basic.name={new_name}")
    w.verify_by_sms(rid)
    v = cli.json("request", "run", TENANT, rid)
    if v["state"] == "waiting_manual":
        # basic.name is also in the marketing team's prize shipping sheet (a manual system of the map)
        pending = [s["key"] for s in v["steps"] if s["status"] == "manual_pending"]
        assert pending and all("prize_shipping_sheet" in k for k in pending), pending
        w.staff("po1")("request", "complete", TENANT, rid, "--note", "寄送表已更正")
        v = w.staff().json("request", "show", TENANT, rid)
    assert v["state"] == "completed", v

    for table, cols in name_tables.items():
        values = w.rows(table, cols)
        assert len(values) == rows_before[table]
        for row in values:
            assert all(x == new_name for x in row), (table, row)
    # Customers are other people: their names are not the agent's and are untouched.
    assert w.sql("SELECT id, name FROM customers WHERE agent_id = ? ORDER BY id", w.agent) == customers_before

    phone_before = w.sql("SELECT phone FROM agents WHERE id = ?", w.agent)
    bad = rid_of(w.staff(), str(w.agent), "correction", "--change", "contact.mobile=123")
    w.verify_by_sms(bad)
    p = cli("request", "run", TENANT, bad, code=1)
    assert "新值无效" in out(p) and "手机号" in out(p)
    assert w.sql("SELECT phone FROM agents WHERE id = ?", w.agent) == phone_before


def test_withdraw_consent_for_one_scope_keeps_the_other(world: World) -> None:
    w, cli = world, world.cli
    subject = str(w.agent)
    cli("consent", "record", TENANT, subject, "policy")
    cli("consent", "record", TENANT, subject, "feature:marketing")
    rid = rid_of(w.staff(), subject, "withdraw_consent", "--scope", "feature:marketing")
    w.verify_by_sms(rid)
    v = cli.json("request", "run", TENANT, rid)
    assert v["state"] == "completed"
    assert v["result"]["consents_ended"] == 1
    state = {c["scope"]: c["status"] for c in cli.json("consent", "show", TENANT, subject)["consents"]}
    assert state == {"policy": "active", "feature:marketing": "withdrawn"}


def test_restriction_refuses_processing_at_the_gate_until_lifted(world: World) -> None:
    w, cli = world, world.cli
    subject = str(w.agent)
    cli("consent", "record", TENANT, subject, "policy")
    cli("consent", "record", TENANT, subject, "feature:marketing")
    gate = ["gate", "check", TENANT, subject, "--action", "use", "--feature", "marketing", "--item", "contact.mobile",
            "--json"]
    assert cli.json(*gate)["allowed"] is True
    rid = rid_of(w.staff(), subject, "restriction", "--feature", "marketing")
    w.verify_by_sms(rid)
    assert cli.json("request", "run", TENANT, rid)["state"] == "completed"
    refused = cli.json(*gate, code=1)
    assert refused["allowed"] is False and [r["rule"] for r in refused["reasons"]] == ["N4"]
    p = w.staff("po1")("request", "lift-restriction", TENANT, rid, "--note", "本人申请解除，工单 GD-7")
    assert "已解除限制" in out(p)
    assert cli.json(*gate)["allowed"] is True
    p = w.staff()("request", "submit", TENANT, subject, "restriction", "--feature", "no_such_function", code=1)
    assert "未在隐私政策中声明" in out(p) and "Traceback" not in out(p)


def test_cancellation_erases_holds_notifies_and_verifies(world: World) -> None:
    w, cli = world, world.cli
    subject = str(w.agent)
    # The agent's data went to the payment institutions (a processing record of the gate).
    cli("consent", "record", TENANT, subject, "policy")
    cli("consent", "record", TENANT, subject, "recipient:payment_institutions",
        "--disclose", "recipient_contact=客服电话400-620-6688", "--disclose", "method=接口传输")
    cli("gate", "check", TENANT, subject, "--action", "provide", "--recipient", "payment_institutions",
        "--item", "transaction.order_number", "--item", "transaction.amount")

    held_before = {t: {r[0] for r in w.rows(t)} for t in ("orders", "invoices", "login_logs")}
    assert all(held_before.values())
    customers_before = w.sql("SELECT count(*) FROM customers WHERE agent_id = ?", w.agent)[0][0]
    all_keys_before = set(w.redis.keys("*"))
    mine = agent_redis_keys(w)
    assert f"user:{w.agent}:sessions" in mine and f"sms:code:{w.phone}" in mine
    assert any(k.startswith("session:") for k in mine)
    others = all_keys_before - mine
    assert others

    rid = rid_of(w.staff(), subject, "cancel_account")
    w.verify_by_sms(rid)
    p = cli("request", "run", TENANT, rid, code=1)
    assert "须先由本人确认" in out(p) and "confirm" in out(p)
    w.staff()("request", "confirm", TENANT, rid)
    p = w.staff()("request", "withdraw", TENANT, rid, code=1)
    assert "不可撤回" in out(p)
    v = cli.json("request", "run", TENANT, rid)
    assert v["state"] == "waiting_manual"
    pending = [s["key"] for s in v["steps"] if s["status"] == "manual_pending"]
    assert any("wuba_auth_face" in k for k in pending), pending
    day_before = beijing_today()
    cli("request", "complete", TENANT, rid, "--note", "已完成", code=1)  # nobody logged in
    w.staff("cs1")("request", "complete", TENANT, rid, "--note", "已完成", code=1)  # not a privacy officer
    w.staff("po1")("request", "complete", TENANT, rid, "--note", "58同城工单 WB-20260213-1 已完成；寄送表已删除")
    day_after = beijing_today()
    v = w.staff().json("request", "show", TENANT, rid)
    assert v["state"] == "completed", v
    assert v["result"]["verified_locations"] > 0

    # --- no PI of the agent left in any mapped column (independent SQL) ---
    assert w.pi_values() == set()
    tomb = w.sql(f"SELECT status, {', '.join(w.pi_columns('agents'))} FROM agents WHERE id = ?", w.agent)
    assert len(tomb) == 1 and tomb[0][0] == "cancelled" and all(x is None for x in tomb[0][1:]), tomb
    for table in w.agent_tables():
        if table != "agents":
            assert w.rows(table) == [], f"{table} still has rows of agent {w.agent}"
    # the agent's customers are other people's PI: kept (README finding 4)
    assert w.sql("SELECT count(*) FROM customers WHERE agent_id = ?", w.agent)[0][0] == customers_before

    # --- Redis: the agent's keys gone, everyone else's intact ---
    assert not any(w.redis.exists(k) for k in mine), [k for k in mine if w.redis.exists(k)]
    assert {k for k in others if not w.redis.exists(k)} == set()

    # --- the legal-hold vault: exactly the agent's orders, invoices and login logs ---
    holds = [h for h in w.staff("po1").json("request", "holds", TENANT) if h["request"] == v["id"]]
    days = {"orders": 1095, "invoices": 1825, "login_logs": 180}
    for table, ids in held_before.items():
        mine_h = [h for h in holds if h["location"].startswith(f"app_db.{table}#")]
        assert {h["source"] for h in mine_h} == {f"{table}:id={i}" for i in ids}, table
        assert len(mine_h) == len(ids)
        for h in mine_h:
            assert date.fromisoformat(h["hold_until"]) in {day_before + timedelta(days=days[table]),
                                                           day_after + timedelta(days=days[table])}, h
    assert len(holds) == sum(len(ids) for ids in held_before.values())

    # --- R13: one deletion notice to the payment institutions, without the agent's phone or name ---
    to_pay = [(rcpt, raw) for rcpt, raw in w.smtp.received if "privacy-deletion@pay.example" in rcpt]
    assert len(to_pay) == 1, w.smtp.received
    cli("request", "deliver", TENANT)  # delivering again sends nothing twice
    assert len(w.smtp.received) == 1, "only the payment institutions received the agent's data"
    msg = next(m for (rcpt, _), m in zip(w.smtp.received, w.smtp.messages(), strict=True)
               if "privacy-deletion@pay.example" in rcpt)
    subject_text = str(make_header(decode_header(msg["Subject"])))
    assert v["id"] in subject_text and any("\u4e00" <= ch <= "\u9fff" for ch in subject_text), subject_text
    body = msg.get_content()
    assert w.phone not in body and w.name not in body
    assert w.phone not in subject_text and w.name not in subject_text


# =============================================================================== 2. deadlines via the CLI
# weiliaoke-2022 promises, for every right (no right has its own reply_time; account_cancellation.reply_time
# is null): response_time = 15 natural days, 国家法定节假日顺延 (days of an official holiday block inside
# the period are not counted), last day on a rest day → next working day (D1). Statutory ceilings: R9
# cancellation and R10 complaints ≤ 15 working days (D2); other replies ≤ 30 natural days (R10), D1 applies.
# 2026 (D3): Spring Festival off Sun 15 – Mon 23 Feb, Sat 14 Feb and Sat 28 Feb worked; National Day off
# Thu 1 – Wed 7 Oct, Sun 20 Sep and Sat 10 Oct worked. The received day is never counted.
DEADLINES = [
    # Cancellation received Fri 13 Feb. Promise: 14 Feb (worked Saturday) = 1; 15–23 Feb skipped (9 holiday
    # days); 24 Feb = 2, 25 = 3, 26 = 4, 27 = 5, 28 = 6, 1 Mar = 7, 2 = 8, 3 = 9, 4 = 10, 5 = 11, 6 = 12,
    # 7 = 13, 8 = 14, Mon 9 Mar = 15 (a working day) → 9 Mar. Ceiling 15 working days: 14 Feb = 1, 24–28 Feb
    # = 2..6 (28th is worked), 2–6 Mar = 7..11, 9–12 Mar = 12..15 → 12 Mar. Earlier: 9 Mar.
    ("cancel_account", "2026-02-13", "2026-03-09"),
    # Cancellation received Sat 14 Feb. Promise: 15–23 Feb skipped; 24 Feb = 1 … 28 Feb = 5, 1 Mar = 6 …
    # Tue 10 Mar = 15 → 10 Mar. Ceiling: 24–28 Feb = 1..5, 2–6 Mar = 6..10, 9–13 Mar = 11..15 → 13 Mar.
    ("cancel_account", "2026-02-14", "2026-03-10"),
    # Cancellation received Wed 30 Sep. Promise: 1–7 Oct skipped; 8 Oct = 1 … Thu 22 Oct = 15 → 22 Oct.
    # Ceiling: 8, 9, 10 (worked Sat) = 1..3, 12–16 Oct = 4..8, 19–23 = 9..13, 26 = 14, 27 = 15 → 27 Oct.
    ("cancel_account", "2026-09-30", "2026-10-22"),
    # Access received Fri 13 Feb. Promise as for the cancellation: 9 Mar. Ceiling 30 natural days: 13 Feb +
    # 30 = Sun 15 Mar, a rest day → Mon 16 Mar. Earlier: 9 Mar.
    ("access", "2026-02-13", "2026-03-09"),
    # Access received Thu 5 Feb. Promise: 6–14 Feb = 1..9; 15–23 skipped; 24–28 Feb = 10..14; 1 Mar = 15,
    # a Sunday (rest day) → D1: Mon 2 Mar. Ceiling: 5 Feb + 30 = Sat 7 Mar → Mon 9 Mar. Earlier: 2 Mar.
    ("access", "2026-02-05", "2026-03-02"),
    # Access received Wed 30 Sep. Promise: 22 Oct (as above). Ceiling: 30 Sep + 30 = Fri 30 Oct. → 22 Oct.
    ("access", "2026-09-30", "2026-10-22"),
    # Complaint received Mon 28 Sep. Promise: 29 Sep = 1, 30 Sep = 2, 1–7 Oct skipped, 8 Oct = 3 … Tue 20 Oct
    # = 15 → 20 Oct. Ceiling 15 working days: 29, 30 Sep = 1, 2; 8, 9, 10 Oct = 3..5; 12–16 = 6..10;
    # 19–23 = 11..15 → 23 Oct. Earlier: 20 Oct.
    ("complaint", "2026-09-28", "2026-10-20"),
]


@pytest.mark.parametrize(("rtype", "received", "due"), DEADLINES, ids=[f"{t}-{r}" for t, r, _ in DEADLINES])
def test_due_date_around_2026_holidays(cli: Cli, rtype: str, received: str, due: str) -> None:
    extra = ["--text", "我的个人信息受到了侵扰"] if rtype == "complaint" else []
    v = cli.desk().json("request", "submit", TENANT, "u-deadline", rtype, "--received", received, *extra)
    assert v["due_date"] == due, v["deadline"]
    assert v["deadline_provisional"] is False


def test_overdue_lists_a_request_only_after_its_due_date(cli: Cli) -> None:
    rid = rid_of(cli.desk(), "u-overdue", "access", "--received", "2026-02-13")  # due 9 Mar (see DEADLINES)

    def status_on(day: str) -> str | None:
        rows = cli.desk().json("request", "overdue", TENANT, "--today", day)
        return next((r["status"] for r in rows if r["id"] == rid), None)

    assert status_on("2026-02-24") is None  # many working days left: not listed at all
    assert status_on("2026-03-09") != "overdue"  # the due day itself is still in time
    assert status_on("2026-03-10") == "overdue"


@pytest.mark.parametrize("rtype", ["cancel_account", "access"])
def test_deadline_running_into_2027_is_provisional(cli: Cli, rtype: str) -> None:
    # Received Sun 20 Dec 2026: every period runs into 2027, which the holiday data does not cover. The
    # promise counted in natural days without any extension ends 20 Dec + 15 = 4 Jan 2027; a provisional
    # date must never be later than that (nor than the statutory ceilings, which are later still).
    v = cli.desk().json("request", "submit", TENANT, "u-2027", rtype, "--received", "2026-12-20")
    assert v["deadline_provisional"] is True
    due = date.fromisoformat(v["due_date"])
    assert date(2026, 12, 21) <= due <= date(2027, 1, 4), v["due_date"]


# =============================================================================== 3. isolation and refusals
def test_show_under_another_tenant_is_not_found(cli: Cli) -> None:
    rid = rid_of(cli.desk(), "u-iso", "access")
    assert cli.desk().json("request", "show", TENANT, rid)["id"] == rid
    cli("policy", "publish", str(ROOT / "policies" / "jikeanjia-2020.yaml"))
    other = cli.desk(tenant="jikeanjia")
    mine = cli.desk()
    for ref in (rid, rid[:8]):
        p = other("request", "show", "jikeanjia", ref, code=1)
        assert "没有编号" in out(p)
        assert "u-iso" not in p.stdout
    # nor can another tenant act on it or list it; its staff are not another tenant's
    p = other("request", "withdraw", "jikeanjia", rid, code=1)
    assert "没有编号" in out(p)
    for args in (["export", "jikeanjia", rid, "--output", str(cli.cwd / "leak.zip")],
                 ["refuse", "jikeanjia", rid, "--ground", "trade_secret", "--detail", "x"],
                 ["holds", "jikeanjia", "--request", rid]):
        p = other("request", *args, code=1)
        assert "没有编号" in out(p), args
        p = mine("request", *args, code=1)
        assert "租户隔离" in out(p), args
    for args in (["show", "jikeanjia", rid], ["list", "jikeanjia"], ["overdue", "jikeanjia"],
                 ["withdraw", "jikeanjia", rid], ["confirm", "jikeanjia", rid],
                 ["submit", "jikeanjia", "u-iso", "access"]):
        p = mine("request", *args, code=1)
        assert "租户隔离" in out(p) and "u-iso" not in p.stdout, args
    assert not (cli.cwd / "leak.zip").exists()
    assert other.json("request", "list", "jikeanjia") == []
    assert cli.desk().json("request", "show", TENANT, rid)["state"] == "unverified"


def test_refusal_needs_a_detail_and_is_shown_with_its_rule(cli: Cli) -> None:
    rid = rid_of(cli.desk(), "u-refuse", "access")
    p = cli("request", "refuse", TENANT, rid, "--ground", "trade_secret", code=2)
    assert "--detail" in out(p)
    assert cli.desk().json("request", "show", TENANT, rid)["state"] == "unverified"

    detail = "所请求的推荐算法参数属于商业秘密"
    p = cli("request", "refuse", TENANT, rid, "--ground", "trade_secret", "--detail", detail, code=1)
    assert "未登录" in out(p)
    team = cli.team()
    p = cli.acting_as(team, "cs1")("request", "refuse", TENANT, rid, "--ground", "trade_secret", "--detail", detail,
                                   code=1)
    assert "S3" in out(p) and "处理个人权利请求" in out(p)
    cli.acting_as(team, "po1")("request", "refuse", TENANT, rid, "--ground", "trade_secret", "--detail", detail)
    # identity verified in person by customer service, named in the history as the logged-in account
    other = rid_of(cli.desk(), "u-in-person", "access")
    p = cli("request", "verify", TENANT, other, "--in-person", "--how", "当面核对身份证件", code=1)
    assert "未登录" in out(p)
    cli.acting_as(team, "cs1")("request", "verify", TENANT, other, "--in-person", "--how", "当面核对身份证件")
    seen = cli.desk().json("request", "show", TENANT, other)
    assert seen["state"] == "verified" and seen["history"][-1]["actor"] == "cs1"
    v = cli.desk().json("request", "show", TENANT, rid)
    assert v["state"] == "refused"
    assert detail in v["refusal"] and "R7" in v["refusal"] and "商业秘密" in v["refusal"]
    text = out(cli.desk()("request", "show", TENANT, rid))
    assert "拒绝理由" in text and detail in text and "R7" in text


def _desk_commands(rid: str) -> dict[str, list[str]]:
    """Every request command a person at the desk runs, with arguments that would otherwise succeed."""
    return {"submit": ["submit", TENANT, "u-desk", "access"], "show": ["show", TENANT, rid],
            "list": ["list", TENANT], "overdue": ["overdue", TENANT],
            "confirm": ["confirm", TENANT, rid], "withdraw": ["withdraw", TENANT, rid]}


def test_desk_commands_refuse_without_a_login(cli: Cli) -> None:
    rid = rid_of(cli.desk(), "u-desk", "cancel_account")
    for name, args in _desk_commands(rid).items():
        p = cli("request", *args, code=None)
        assert p.returncode != 0, name
        assert "未登录" in out(p) and "yinsi login" in out(p), name
        assert "u-desk" not in p.stdout, name
    # nothing happened: still one request, still waiting for its verification
    views = cli.desk().json("request", "list", TENANT)
    assert [(v["id"], v["state"]) for v in views] == [(rid, "unverified")]


def test_desk_commands_refuse_an_auditor(cli: Cli) -> None:
    rid = rid_of(cli.desk(), "u-desk", "access")
    auditor = cli.desk("au1")
    for name, args in _desk_commands(rid).items():
        p = auditor("request", *args, code=1)
        assert "未获授权" in out(p) and "S3" in out(p), (name, out(p))
        assert "u-desk" not in p.stdout, name
    assert [v["state"] for v in cli.desk().json("request", "list", TENANT)] == ["unverified"]


def test_desk_commands_record_the_logged_in_member_of_staff(cli: Cli) -> None:
    desk = cli.desk("cs1")  # customer service takes requests (受理) and reads them
    rid = rid_of(desk, "u-desk", "access")
    assert desk.json("request", "show", TENANT, rid)["id"] == rid
    assert [v["id"] for v in desk.json("request", "list", TENANT)] == [rid]
    desk("request", "overdue", TENANT)
    # recording a withdrawal on the person's behalf is a privacy officer's, in the history under their id
    p = desk("request", "withdraw", TENANT, rid, code=1)
    assert "S3" in out(p) and "处理个人权利请求" in out(p)
    cli.desk("po1")("request", "withdraw", TENANT, rid)
    v = cli.desk().json("request", "show", TENANT, rid)
    assert v["state"] == "withdrawn" and v["history"][-1]["actor"] == "po1"
