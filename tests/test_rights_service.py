"""Rights requests executed by ``RightsService`` against the 微聊客 demo app on SQLite, PostgreSQL and MariaDB
(plus Redis), with Yinsi's own tables in the same database.

Expected values come from independent SQL over the demo app, never from the service itself. The
kill-and-resume tests kill a real ``yinsi request run`` process with SIGKILL in the middle of an erasure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.helpers import stored_subject
from tests.test_stores import REDIS_URL, agent_where, ensure_cash_prize, need_redis, redis_client
from yinsi.cli.demoapp_cmds import load_demo_app
from yinsi.datamap_io import load_datamap, with_key_prefixes
from yinsi.domain.datamap import DataMap, StoreKind
from yinsi.domain.gate import beijing_date
from yinsi.domain.rights import RefusalGround, RequestType, State
from yinsi.rights.service import ErasureIncomplete, RequestError, RightsService
from yinsi.services.publishing import publish
from yinsi.storage import upgrade
from yinsi.storage.engine import make_engine
from yinsi.stores.sql import SqlConnector, dispose_engines

pytestmark = pytest.mark.usefixtures("isolated_env")

demo = load_demo_app()
ROOT = Path(__file__).resolve().parents[1]
MAP = ROOT / "examples" / "weiliaoke_app" / "datamap.yaml"
POLICY_2022 = ROOT / "policies" / "weiliaoke-2022.yaml"
POLICY_2020 = ROOT / "policies" / "weiliaoke-2020.yaml"
TENANT = "weiliaoke"
USERS = 30
#: Tables whose rows reaching an agent are deleted, and those moved into the legal-hold vault.
DELETED = ("property_bindings", "posts", "reviews", "chat_messages", "devices", "prize_records")
HELD = {"orders": 1095, "invoices": 1825, "login_logs": 180}
AGENT_PI = ("phone", "name", "id_number", "face_verify_result", "face_ref", "bank_card", "bank_reserved_phone",
            "avatar_url")


@dataclass
class Env:
    url: str
    engine: Engine
    redis: Any
    prefix: str
    dm: DataMap
    urls: dict[str, str]
    agent: int
    other: int
    phones: dict[int, str]

    def service(self, **kwargs: Any) -> RightsService:
        return RightsService(self.url, datamaps={TENANT: self.dm}, store_urls=self.urls, channels={}, **kwargs)

    def count(self, table: str, agent: int | None = None) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE {agent_where(table)}"),
                                    {"a": agent or self.agent}).scalar() or 0)

    def agent_row(self, agent: int | None = None) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return dict(conn.execute(text("SELECT * FROM agents WHERE id = :a"), {"a": agent or self.agent}).mappings().one())

    def redis_keys(self, agent: int) -> list[str]:
        """The agent's keys: its session set, the sessions holding its id, its phone's SMS code."""
        out = []
        for raw in self.redis.scan_iter(match=f"{self.prefix}*", count=1000):
            key = raw.decode()
            if f"user:{agent}:" in key or key.endswith(f"sms:code:{self.phones[agent]}") or (
                    ":session:" in key and self.redis.get(raw) == str(agent).encode()):
                out.append(key)
        return sorted(out)


def _pick_agent(engine: Engine) -> int:
    """An agent with rows in every table (orders with invoices, bindings, posts, chat, logs)."""
    with engine.connect() as conn:
        candidates = [int(a) for a in conn.execute(text(
            "SELECT DISTINCT o.agent_id FROM orders o JOIN invoices i ON i.order_id = o.id ORDER BY 1")).scalars()]
        for a in candidates:
            if all(conn.execute(text(f"SELECT count(*) FROM {t} WHERE agent_id = :a"), {"a": a}).scalar()
                   for t in ("property_bindings", "posts", "chat_messages", "login_logs", "devices")):
                return a
    raise AssertionError("no agent with data in every table")


@pytest.fixture
def env(db_url: str, request: pytest.FixtureRequest) -> Iterator[Env]:
    """The demo app with USERS agents, Yinsi migrated in the same database, the 2022 policy published (or
    the one a ``@pytest.mark.policy(path)`` names)."""
    marker = request.node.get_closest_marker("policy")
    client, no_redis = redis_client()
    need_redis(no_redis)
    prefix = f"yinsi-rt-{uuid.uuid4().hex[:12]}:"
    engine = make_engine(db_url)
    try:
        demo.create_schema(engine)
        demo.seed(db_url, USERS, 11, chunk_size=64, redis_url=REDIS_URL, redis_prefix=prefix)
        agent = _pick_agent(engine)
        other = next(a for a in range(1, USERS + 1) if a != agent)
        with engine.begin() as conn:  # a cash prize record too, so every mapped table holds the agent's data
            ensure_cash_prize(conn, agent)
            phones = dict(conn.execute(text("SELECT id, phone FROM agents")).all())
        for aid in (agent, other):  # sessions and a pending SMS code for both
            token = f"{aid:04d}" + "cd" * 13
            client.set(f"{prefix}session:{token}", str(aid), ex=3600)
            client.sadd(f"{prefix}user:{aid}:sessions", token)
            client.set(f"{prefix}sms:code:{phones[aid]}", "123456", ex=300)
        upgrade(db_url)
        publish(marker.args[0] if marker else POLICY_2022, db_url)
        dm = with_key_prefixes(load_datamap(MAP).datamap, {"cache": prefix})
        yield Env(db_url, engine, client, prefix, dm, {"app_db": db_url, "cache": REDIS_URL}, agent, other,
                  {int(k): str(v) for k, v in phones.items()})
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        engine.dispose()
        dispose_engines()


def _share_with_payment(svc: RightsService, subject: str) -> None:
    """Consents, then a provision to the payment institutions through the gate (a processing record)."""
    cs = svc.consents
    for scope in ("policy", "feature:marketing", "feature:payment"):
        cs.record_consent(TENANT, subject, scope)
    cs.record_consent(TENANT, subject, "recipient:payment_institutions",
                      disclosures={"recipient_contact": "95188", "method": "接口传输"})
    assert cs.check(TENANT, subject, "provide", feature="payment", items=["transaction.amount"],
                    recipient="payment_institutions").allowed
    cs.flush()


def _verified(svc: RightsService, subject: str, rtype: RequestType, **kwargs: Any) -> str:
    rid = svc.submit(TENANT, subject, rtype, **kwargs)
    svc.mark_verified(TENANT, rid, "客服小王", "当面核对身份证件")
    return rid


def _snapshot(e: Env) -> dict[str, int]:
    return {t: e.count(t) for t in (*DELETED, *HELD)}


# --------------------------------------------------------------------------------------- cancellation
def test_cancellation_erases_every_location_isolates_legal_holds_and_is_verified(env: Env) -> None:
    e = env
    before = _snapshot(e)
    other_before = {t: e.count(t, e.other) for t in (*DELETED, *HELD)}
    other_keys = e.redis_keys(e.other)
    assert all(before.values()) and other_keys
    with e.service() as svc:
        _share_with_payment(svc, str(e.agent))
        rid = _verified(svc, str(e.agent), RequestType.CANCEL_ACCOUNT)
        with pytest.raises(RequestError, match="确认"):
            svc.run(TENANT, rid)
        svc.confirm(TENANT, rid)
        with pytest.raises(RequestError, match="不可撤回"):
            svc.withdraw(TENANT, rid)
        assert svc.run(TENANT, rid) is State.WAITING_MANUAL  # the vendor systems Yinsi cannot reach
        # every automatic location is already erased while the manual steps wait
        assert all(e.count(t) == 0 for t in (*DELETED, *HELD))
        assert svc.complete_manual(TENANT, rid, "实名认证运营专员", "工单 WB-1 已删除", step="vendors/wuba") \
            is State.WAITING_MANUAL
        assert svc.complete_manual(TENANT, rid, "市场部", "寄送表已删除") is State.COMPLETED
        view = svc.show(TENANT, rid)
        holds = svc.holds(TENANT, rid)
        state = svc.consents.state(TENANT, str(e.agent))
    row = e.agent_row()
    assert row["status"] == "cancelled" and all(row[c] is None for c in AGENT_PI)  # the tombstone keeps no PI
    assert all(e.count(t) == 0 for t in (*DELETED, *HELD))
    assert e.redis_keys(e.agent) == [] and e.redis_keys(e.other) == other_keys
    assert {t: e.count(t, e.other) for t in other_before} == other_before  # nobody else was touched
    by_table: dict[str, int] = {}
    for h in holds:
        table = h.location.split(".")[1].split("#")[0]
        by_table[table] = by_table.get(table, 0) + 1
        # the period counts from the day of the erasure in Beijing (after 16:00 UTC that is the next day)
        assert (h.hold_until - beijing_date(view.received_at)).days == HELD[table]
    assert by_table == {t: before[t] for t in HELD}  # each held row once in the vault, nothing else
    assert view.result is not None and view.result["verified_locations"] >= 50
    assert view.result["legal_hold_rows"] == sum(before[t] for t in HELD)
    assert {v.status.value for v in state.consents.values()} == {"withdrawn"}
    # R11: written to the outbox in the completing transaction; "notified" only once delivered
    assert view.result["recipients_queued"] == ["payment_institutions"] and view.result["recipients_notified"] == []
    assert [h["to"] for h in view.history] == ["unverified", "verified", "confirmed", "in_progress", "waiting_manual",
                                               "in_progress", "completed"]


def test_the_vault_holds_the_rows_encrypted(env: Env) -> None:
    e = env
    with e.engine.connect() as conn:
        order_no = conn.execute(text("SELECT order_no FROM orders WHERE agent_id = :a"), {"a": e.agent}).scalars().first()
    with e.service() as svc:
        rid = _verified(svc, str(e.agent), RequestType.DELETION, details={"ground": "consent_withdrawn"})
        svc.run(TENANT, rid)
    with e.engine.connect() as conn:
        payloads = conn.execute(text("SELECT payload_encrypted FROM legal_holds")).scalars().all()
    assert payloads and not any(order_no in p for p in payloads)


def test_a_location_left_behind_fails_the_request_loudly_and_a_retry_finishes(env: Env,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    e = env
    real_erase = SqlConnector.erase

    def erase_but_not_posts(self: SqlConnector, loc: Any, subject: str) -> Any:
        if loc.table == "posts":
            from yinsi.stores.base import EraseResult
            return EraseResult(0, "已无数据")  # a buggy store that claims success
        return real_erase(self, loc, subject)

    monkeypatch.setattr(SqlConnector, "erase", erase_but_not_posts)
    with e.service() as svc:
        rid = _verified(svc, str(e.agent), RequestType.DELETION)
        with pytest.raises(ErasureIncomplete, match=r"app_db\.posts\.body@agent"):
            svc.run(TENANT, rid)
        assert svc.show(TENANT, rid).state is State.ERROR
        assert e.count("posts") > 0
        step = next(s for s in svc.show(TENANT, rid).steps if s["key"].startswith("app_db.posts"))
        assert step["status"] == "pending" and "read_back_left" in step["detail"]  # reopened for the retry
        monkeypatch.setattr(SqlConnector, "erase", real_erase)
        assert svc.run(TENANT, rid) is State.WAITING_MANUAL  # everything automatic is verified now
        assert svc.complete_manual(TENANT, rid, "运营", "外部系统已删除") is State.COMPLETED
        assert svc.show(TENANT, rid).result["verified_locations"] > 0  # type: ignore[index]
    assert e.count("posts") == 0


@pytest.mark.policy(POLICY_2020)  # 2020 requires unbinding the properties first; 2022 states no prerequisite
def test_prerequisites_of_the_2020_policy_are_checked_and_explained(env: Env) -> None:
    e = env
    with e.service() as svc:
        rid = _verified(svc, str(e.agent), RequestType.CANCEL_ACCOUNT)
        with pytest.raises(RequestError, match="请先在“我的-头像或姓名-楼盘名称-解除绑定”解除全部楼盘绑定"):
            svc.confirm(TENANT, rid)
        assert e.count("property_bindings") > 0 and e.agent_row()["phone"] is not None  # nothing touched
        with e.engine.begin() as conn:  # the person unbinds in the app
            conn.execute(text("DELETE FROM property_bindings WHERE agent_id = :a"), {"a": e.agent})
        unchecked = svc.confirm(TENANT, rid)
        assert any("证明身份" in p for p in unchecked)
        # the prerequisite nobody can check waits for a person before anything is erased
        assert svc.run(TENANT, rid) is State.WAITING_MANUAL
        assert e.agent_row()["phone"] is not None
        svc.complete_manual(TENANT, rid, "客服小王", "已核对书面申请", step="prerequisite")
        assert e.agent_row()["phone"] is None


# --------------------------------------------------------------------------------------- copy and more
def _expected_values(e: Env) -> set[tuple[str, str]]:
    """(item, value) of every non-null mapped SQL column reaching the agent, by hand-written SQL."""
    out: set[tuple[str, str]] = set()
    with e.engine.connect() as conn:
        for loc in e.dm.locations("agent"):
            if loc.store_kind is not StoreKind.SQL:
                continue
            for v in conn.execute(text(f"SELECT {loc.column} FROM {loc.table} WHERE {agent_where(str(loc.table))} "
                                       f"AND {loc.column} IS NOT NULL"), {"a": e.agent}).scalars():
                out.add((loc.item, str(v)))
    return out


def _package(svc: RightsService, rid: str, tmp: Path) -> dict[str, Any]:
    import zipfile

    out = svc.export(TENANT, rid, tmp / f"{rid}.zip")
    with zipfile.ZipFile(out) as z:
        assert sorted(z.namelist()) == ["personal_information.csv", "personal_information.html",
                                        "personal_information.json"]
        assert "您的个人信息副本" in z.read("personal_information.html").decode() or \
               "个人信息转移包" in z.read("personal_information.html").decode()
        return dict(json.loads(z.read("personal_information.json")))


def _norm(value: Any) -> str:
    from decimal import Decimal, InvalidOperation

    text_value = str(value)
    try:
        return str(Decimal(text_value).normalize()) if "." in text_value or text_value.isdigit() else _dt(text_value)
    except InvalidOperation:
        return _dt(text_value)


def _dt(text_value: str) -> str:
    return text_value.replace("T", " ") if len(text_value) == 19 and text_value[10] == "T" else text_value


def test_copy_contains_every_value_and_is_encrypted_at_rest(env: Env, tmp_path: Path) -> None:
    e = env
    with e.service() as svc:
        rid = _verified(svc, str(e.agent), RequestType.COPY)
        assert svc.run(TENANT, rid) is State.WAITING_MANUAL  # the manual systems must be supplied by people
        view = svc.show(TENANT, rid)
        data = _package(svc, rid, tmp_path)
    got = {(d["item"], _norm(d["value"])) for d in data["data"] if not d["location"].startswith("cache:")}
    expected = {(i, _norm(v)) for i, v in _expected_values(e)}
    assert expected and expected <= got
    assert any(d["location"].startswith("cache:") for d in data["data"])  # Redis sessions too
    assert {x["reason"] for x in data["excluded"]} and all("另行提供" in x["reason"] for x in data["excluded"])
    stored = Path(view.result["package"]) if view.result else None
    assert stored is not None and stored.exists() and not stored.read_bytes().startswith(b"PK")
    assert str(e.agent_row()["phone"]) not in json.dumps(view.to_json(), ensure_ascii=False)


def test_portability_keeps_only_consent_or_contract_items(env: Env, tmp_path: Path) -> None:
    e = env
    with e.service() as svc:
        rid = _verified(svc, str(e.agent), RequestType.PORTABILITY)
        svc.run(TENANT, rid)
        data = _package(svc, rid, tmp_path)
        decl = svc._declaration(TENANT)
    portable = {c.item for f in decl.features if f.legal_basis.value in ("consent", "contract") for c in f.collections}
    assert data["meta"]["format"] == "yinsi.portability/1"
    assert data["data"] and {d["item"] for d in data["data"]} <= portable
    assert any("R2" in x["reason"] for x in data["excluded"])


def test_correction_and_supplement_change_every_mapped_location_only(env: Env) -> None:
    e = env
    with e.engine.connect() as conn:
        before_other = e.agent_row(e.other)
        names_in_bindings = conn.execute(text("SELECT count(*) FROM property_bindings WHERE agent_id = :a"),
                                         {"a": e.agent}).scalar()
    with e.service() as svc:
        rid = _verified(svc, str(e.agent), RequestType.CORRECTION, details={"changes": {"basic.name": "王小明"}})
        assert svc.run(TENANT, rid) in (State.COMPLETED, State.WAITING_MANUAL)
        bad = _verified(svc, str(e.agent), RequestType.CORRECTION, details={"changes": {"contact.mobile": "123"}})
        with pytest.raises(RequestError, match="手机号格式无效"):
            svc.run(TENANT, bad)
        with e.engine.begin() as conn:
            conn.execute(text("UPDATE agents SET avatar_url = NULL WHERE id = :a"), {"a": e.agent})
        sup = _verified(svc, str(e.agent), RequestType.SUPPLEMENT,
                        details={"changes": {"agents.avatar_url": "https://img.example.cn/new.jpg"}})
        assert svc.run(TENANT, sup) is State.COMPLETED
        again = _verified(svc, str(e.agent), RequestType.SUPPLEMENT, details={"changes": {"agents.name": "李四"}})
        with pytest.raises(RequestError, match="已有内容"):
            svc.run(TENANT, again)
    with e.engine.connect() as conn:
        assert e.agent_row()["name"] == "王小明"
        assert conn.execute(text("SELECT count(*) FROM property_bindings WHERE agent_id = :a AND real_name = '王小明'"),
                            {"a": e.agent}).scalar() == names_in_bindings
    assert e.agent_row()["avatar_url"] == "https://img.example.cn/new.jpg"
    assert e.agent_row(e.other) == before_other


def test_withdrawing_one_consent_keeps_the_others(env: Env) -> None:
    e = env
    with e.service() as svc:
        svc.consents.record_consent(TENANT, str(e.agent), "policy")
        svc.consents.record_consent(TENANT, str(e.agent), "feature:marketing")
        rid = _verified(svc, str(e.agent), RequestType.WITHDRAW_CONSENT, details={"scopes": ["feature:marketing"]})
        assert svc.run(TENANT, rid) is State.COMPLETED
        st = svc.consents.state(TENANT, str(e.agent)).consents
    assert st["feature:marketing"].status.value == "withdrawn" and st["policy"].status.value == "active"


def test_deletion_of_chosen_items_leaves_the_rest(env: Env) -> None:
    e = env
    before = _snapshot(e)
    with e.service() as svc:
        rid = _verified(svc, str(e.agent), RequestType.DELETION, details={"items": ["content.posts"]})
        assert svc.run(TENANT, rid) is State.COMPLETED
    assert e.count("posts") == 0 and e.count("reviews") == 0
    assert {t: e.count(t) for t in before if t not in ("posts", "reviews")} == \
        {t: n for t, n in before.items() if t not in ("posts", "reviews")}
    assert e.agent_row()["phone"] is not None


# --------------------------------------------------------------------------------------- the state machine
def test_refusals_carry_a_ground_and_tenants_are_isolated(env: Env) -> None:
    e = env
    with e.service() as svc:
        rid = svc.submit(TENANT, str(e.agent), RequestType.ACCESS)
        with pytest.raises(RequestError, match="没有编号"):
            svc.show("kehutong", rid)
        with pytest.raises(RequestError, match="尚未核验身份"):
            svc.run(TENANT, rid)
        with pytest.raises(Exception, match="理由"):
            svc.refuse(TENANT, rid, RefusalGround.TRADE_SECRET, "  ", "法务")
        svc.refuse(TENANT, rid, RefusalGround.MALICE_OR_ABUSE, "同一天内重复提交 30 次相同请求", "法务")
        view = svc.show(TENANT, rid)
        assert view.state is State.REFUSED and view.refusal is not None and "R7" in view.refusal
        assert svc.show(TENANT, rid[:8]).id == rid  # a unique prefix finds it
        assert [v.id for v in svc.requests("kehutong")] == []


# --------------------------------------------------------------------------------------- kill and resume
def _cli_env(e: Env, tmp: Path) -> dict[str, str]:
    mapped = tmp / "datamap.yaml"
    mapped.write_text(MAP.read_text(encoding="utf-8").replace('key_prefix: ""', f'key_prefix: "{e.prefix}"'),
                      encoding="utf-8")
    env = dict(os.environ)
    env.update({"YINSI_DATABASE_URL": e.url, "YINSI_DATAMAP": str(mapped), "WEILIAOKE_DATABASE_URL": e.url,
                "WEILIAOKE_REDIS_URL": REDIS_URL, "YINSI_STEP_DELAY": "0.5", "YINSI_SMTP_PORT": "1"})
    return env


def _done_steps(e: Env, rid: str) -> int:
    with e.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM request_steps WHERE request_id = :r AND status = 'done'"),
                                {"r": rid}).scalar() or 0)


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres),
                                    pytest.param("mariadb", marks=pytest.mark.mariadb)], indirect=True)
def test_killing_a_cancellation_mid_way_and_running_again_finishes_it_exactly_once(env: Env, tmp_path: Path) -> None:
    e = env
    before = _snapshot(e)
    with e.service() as svc:
        _share_with_payment(svc, str(e.agent))
        rid = _verified(svc, str(e.agent), RequestType.CANCEL_ACCOUNT)
        svc.confirm(TENANT, rid)
    cmd = [str(Path(sys.executable).with_name("yinsi")), "request", "run", TENANT, rid]
    proc = subprocess.Popen(cmd, env=_cli_env(e, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120

    def wait_for(steps: int) -> None:
        while _done_steps(e, rid) < steps and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"finished before the kill after {_done_steps(e, rid)} steps: {out.decode()[-3000:]}"
                                 f" {err.decode()[-2000:]}")

    # a second run while the first is alive is refused: they would race (checked early, so that opening a
    # service on a loaded machine does not let the first run get past the point where it is killed)
    wait_for(1)
    with e.service() as svc, pytest.raises(RequestError, match="另一进程"):
        svc.run(TENANT, rid)
    wait_for(8)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done_at_kill = _done_steps(e, rid)
    partial = _snapshot(e)
    with e.engine.connect() as conn:
        pending = conn.execute(text("SELECT count(*) FROM request_steps WHERE request_id = :r AND status = 'pending'"),
                               {"r": rid}).scalar()
    # really killed mid-way: some steps recorded, some still to do, the data partly erased
    assert done_at_kill >= 8 and pending and partial != before and e.agent_row()["phone"] is not None
    with e.service() as svc:
        assert svc.show(TENANT, rid).state is State.IN_PROGRESS
    rerun = subprocess.run(cmd, env={**_cli_env(e, tmp_path), "YINSI_STEP_DELAY": "0"}, capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    with e.service() as svc:
        assert svc.show(TENANT, rid).state is State.WAITING_MANUAL
        assert svc.complete_manual(TENANT, rid, "运营", "两个外部系统均已删除") is State.COMPLETED
        view = svc.show(TENANT, rid)
        holds = svc.holds(TENANT, rid)
        messages = svc.outbox.messages(TENANT, rid)
        events = svc.consents.state(TENANT, str(e.agent)).consents
    # nothing missed
    assert all(e.count(t) == 0 for t in (*DELETED, *HELD)) and e.redis_keys(e.agent) == []
    assert all(e.agent_row()[c] is None for c in AGENT_PI)
    # nothing done twice: each held row once; each step run once, but the one in flight at the kill
    assert len(holds) == sum(before[t] for t in HELD) == len({(h.location, h.source_key) for h in holds})
    attempts = [s["attempts"] for s in view.steps if s["action"] != "manual"]
    assert all(a >= 1 for a in attempts) and sum(a - 1 for a in attempts) <= 1
    assert [m.kind for m in messages] == ["deletion_notice"]  # one R13 notice to payment_institutions
    assert {v.status.value for v in events.values()} == {"withdrawn"} and len(events) == 4
    with e.engine.connect() as conn:
        withdrawals = conn.execute(text("SELECT count(*) FROM consent_events WHERE subject_id = :s AND event = 'withdrawn'"),
                                   {"s": stored_subject(e.url, TENANT, str(e.agent))}).scalar()
    assert withdrawals == 4
    assert view.result is not None and view.result["recipients_queued"] == ["payment_institutions"]


def test_deadline_outside_the_holiday_data_is_provisional_and_early(env: Env) -> None:
    with env.service() as svc:
        rid = svc.submit(TENANT, str(env.agent), RequestType.CANCEL_ACCOUNT,
                         received_at=datetime(2026, 12, 22, 10, 0, tzinfo=UTC))
        view = svc.show(TENANT, rid)
    assert view.deadline_provisional and "2027" in view.deadline
    assert (view.due_date - datetime(2026, 12, 22).date()).days <= 15


# --------------------------------------------------------------------------------------- the other request types
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_a_close_relative_deletes_a_deceased_persons_data_after_staff_verify_the_documents(env: Env) -> None:
    e = env
    with e.service() as svc:
        with pytest.raises(RequestError, match="与死者的关系"):
            svc.submit(TENANT, str(e.agent), RequestType.DECEASED, requester="王某（配偶）", details={"action": "deletion"})
        rid = svc.submit(TENANT, str(e.agent), RequestType.DECEASED, requester="王某（配偶）",
                         details={"action": "deletion", "relation": "配偶", "items": ["content.posts"]})
        with pytest.raises(RequestError, match="死亡证明"):
            svc.send_code(TENANT, rid, "sms")  # the deceased's phone proves nothing about the relative
        svc.mark_verified(TENANT, rid, "客服小王", "核对死亡证明、结婚证与申请人身份证")
        assert svc.run(TENANT, rid) is State.COMPLETED
        view = svc.show(TENANT, rid)
    assert e.count("posts") == 0 and e.count("reviews") == 0 and e.agent_row()["phone"] is not None
    assert view.type is RequestType.DECEASED and view.result is not None and view.result["verified_locations"] > 0


def test_staff_doing_a_manual_step_see_the_identifiers_only_as_privacy_officers_and_audited(env: Env) -> None:
    from yinsi.staff.service import StaffService

    e = env
    phone = e.agent_row()["phone"]
    with e.service() as svc:
        staff = StaffService(svc.sessions, svc.audit.log, svc.audit.ring)
        staff.add_staff(TENANT, "admin", "管理员", ["administrator"])
        staff.add_staff(TENANT, "po1", "负责人", ["privacy_officer"], actor="admin")
        staff.add_staff(TENANT, "cs1", "客服", ["customer_service"], actor="admin")
        rid = _verified(svc, str(e.agent), RequestType.CANCEL_ACCOUNT)
        svc.confirm(TENANT, rid)
        assert svc.run(TENANT, rid) is State.WAITING_MANUAL
        assert e.agent_row()["phone"] is None  # the app's row no longer holds it
        for who, why, match in (("cs1", "删除外部系统记录", "S3"), ("admin", "删除外部系统记录", "管理员"),
                                ("po1", " ", "事由"), ("nobody", "删除外部系统记录", "不是租户")):
            with pytest.raises(RequestError, match=match):
                svc.identifiers(TENANT, rid, who, why)
        shown = svc.identifiers(TENANT, rid, "po1", "在58实名认证系统中删除记录（工单 WB-1）")
    assert shown == {"agents.id": str(e.agent), "agents.phone": phone}  # from the encrypted plan
    with e.engine.connect() as conn:
        entries = conn.execute(text("SELECT actor, action, items, details FROM audit_entries WHERE tenant_id = :t "
                                    "AND action = 'unmask' ORDER BY seq"), {"t": TENANT}).all()
    assert [(a, json.loads(i)) for a, _, i, _ in entries] == [
        ("cs1", ["contact.mobile"]), ("admin", ["contact.mobile"]), ("po1", ["contact.mobile"]),
        ("nobody", ["contact.mobile"]), ("po1", ["contact.mobile"])]
    assert [json.loads(d)["outcome"] for *_, d in entries] == ["denied"] * 4 + ["allowed"]
    assert phone not in repr(entries)


def _yinsi_tables_text(e: Env) -> str:
    """Every value Yinsi keeps about requests (requests, history, steps, audit entries), as text."""
    parts = []
    with e.engine.connect() as conn:
        for table in ("rights_requests", "request_transitions", "request_steps", "audit_entries"):
            parts += [repr(tuple(r)) for r in conn.execute(text(f"SELECT * FROM {table}"))]
    return "\n".join(parts)


def test_a_visitor_known_by_ip_and_a_relative_are_kept_only_encrypted(env: Env) -> None:
    e = env
    with e.engine.connect() as conn:
        ip, visits = conn.execute(text("SELECT ip, count(*) FROM ip_logs GROUP BY ip ORDER BY 2 DESC, 1")).first()
        total = conn.execute(text("SELECT count(*) FROM ip_logs")).scalar()
    with e.service() as svc:
        rid = svc.submit(TENANT, ip, RequestType.DELETION, subject_kind="visitor", details={"ground": "purpose_done"})
        kin = svc.submit(TENANT, str(e.agent), RequestType.DECEASED, requester="王某某（配偶）",
                         details={"action": "access", "relation": "配偶"})
        assert [v.id for v in svc.requests(TENANT, subject=ip)] == [rid]  # found by the IP, through the index
        svc.mark_verified(TENANT, rid, "客服小王", "核对访问记录")
        assert svc.run(TENANT, rid) is State.COMPLETED
        view = svc.show(TENANT, rid)
    with e.engine.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM ip_logs WHERE ip = :ip"), {"ip": ip}).scalar()
        after = conn.execute(text("SELECT count(*) FROM ip_logs")).scalar()
        stored = conn.execute(text("SELECT subject_id, requester FROM rights_requests WHERE id IN (:a, :b) "
                                   "ORDER BY subject_kind"), {"a": rid, "b": kin}).all()
    assert left == 0 and after == total - visits  # that visitor's visits, and only those
    assert view.subject != ip and view.subject.split(".")[:2] == ip.split(".")[:2]  # shown masked
    # every subject kind is kept as a blind index in the requests table (issue 11), never the app's id
    assert stored[0][1] == "other" and stored[0][0].startswith("bi:") and stored[0][0] != str(e.agent)
    assert stored[1][0].startswith("bi:")
    dump = _yinsi_tables_text(e)
    assert ip not in dump and "王某某" not in dump


@SQLITE_ONLY
def test_complaints_and_explanations_wait_for_a_person_and_close_when_answered(env: Env) -> None:
    e = env
    received = datetime(2026, 9, 28, 2, 0, tzinfo=UTC)  # Monday 28 September, 10:00 in Beijing
    with e.service() as svc:
        complaint = _verified(svc, str(e.agent), RequestType.COMPLAINT, details={"text": "客服三次未回复我的注销问题"},
                              received_at=received)
        # The promise, 15 days with statutory holidays extended: 29, 30 Sep (2), 1–7 Oct not counted, 8–20 Oct (13)
        # → Tuesday 20 October. The R10 ceiling, 15 working days, ends later: 29, 30 Sep; 8, 9, 10 (Saturday,
        # worked) Oct; 12–16; 19–23 → 23 October. The earlier date is the deadline.
        assert svc.show(TENANT, complaint).due_date.isoformat() == "2026-10-20"
        assert svc.run(TENANT, complaint) is State.WAITING_MANUAL
        assert svc.complete_manual(TENANT, complaint, "个人信息保护负责人", "已致电说明并补发答复") is State.COMPLETED
        explanation = _verified(svc, str(e.agent), RequestType.EXPLANATION,
                                details={"about": "rules", "question": "为什么要收集我的身份证号？"})
        assert svc.run(TENANT, explanation) is State.WAITING_MANUAL
        rules = svc.show(TENANT, explanation).result
        assert rules is not None and rules["features"] == len(svc._declaration(TENANT).features) and rules["rules"]
        assert svc.complete_manual(TENANT, explanation, "个人信息保护负责人", "已书面答复") is State.COMPLETED


def test_restriction_is_enforced_by_the_gate_until_staff_lift_it(env: Env) -> None:
    e = env
    subject = str(e.agent)
    marketing = {"feature": "marketing", "items": ["contact.mobile"]}
    delivery = {"feature": "delivery", "items": ["transaction.order"]}
    with e.service() as svc:
        cs = svc.consents
        for scope in ("policy", "feature:marketing", "feature:delivery"):
            cs.record_consent(TENANT, subject, scope)
        assert cs.check(TENANT, subject, "use", **marketing).allowed
        with pytest.raises(RequestError, match="未在隐私政策中声明"):
            svc.submit(TENANT, subject, RequestType.RESTRICTION, details={"features": ["no_such_function"]})
        rid = _verified(svc, subject, RequestType.RESTRICTION, details={"features": ["marketing"]})
        assert svc.run(TENANT, rid) is State.COMPLETED  # nothing waits for a person: the gate enforces it
        refused = cs.check(TENANT, subject, "use", **marketing)
        assert not refused.allowed and refused.reasons[0].rule == "N4"
        assert cs.check(TENANT, subject, "use", **delivery).allowed  # other functions go on
        assert cs.state(TENANT, subject).consents["feature:marketing"].status.value == "active"  # not withdrawn
        assert all(r.rule != "N4" for r in cs.check(TENANT, str(e.other), "use", **marketing).reasons)  # only them
        view = svc.show(TENANT, rid)
        assert view.result is not None and view.result["restricted"] == ["feature:marketing"]
        with pytest.raises(RequestError, match="员工与原因"):
            svc.lift_restriction(TENANT, rid, "客服小王", " ")
        assert svc.lift_restriction(TENANT, rid, "客服小王", "本人申请解除，工单 GD-7") == ["feature:marketing"]
        assert cs.check(TENANT, subject, "use", **marketing).allowed
        with pytest.raises(RequestError, match="已于"):
            svc.lift_restriction(TENANT, rid, "客服小王", "again")
        everything = _verified(svc, subject, RequestType.RESTRICTION)  # no functions named: all processing
        assert svc.run(TENANT, everything) is State.COMPLETED
        assert not cs.check(TENANT, subject, "use", **delivery).allowed
        duty = cs.check(TENANT, subject, "collect", feature="register_login", items=["contact.mobile"])
        assert duty.allowed  # a statutory duty is not stopped (PIPL 44: 法律、行政法规另有规定的除外)
    with e.engine.connect() as conn:
        events = conn.execute(text("SELECT scope, event, request_ref FROM restriction_events WHERE subject_id = :s "
                                   "ORDER BY id"), {"s": stored_subject(e.url, TENANT, subject)}).all()
    assert [tuple(r) for r in events] == [("feature:marketing", "placed", rid), ("feature:marketing", "lifted", rid),
                                          ("all", "placed", everything)]


@SQLITE_ONLY
def test_a_withdrawn_request_cannot_run_and_an_unknown_type_is_explained(env: Env) -> None:
    e = env
    with e.service() as svc:
        rid = _verified(svc, str(e.agent), RequestType.DELETION)
        svc.withdraw(TENANT, rid)
        with pytest.raises(RequestError, match="已撤回申请"):
            svc.run(TENANT, rid)
        with pytest.raises(RequestError, match="未知的请求类型"):
            svc.submit(TENANT, str(e.agent), "forget_me")
    assert e.count("posts") > 0
