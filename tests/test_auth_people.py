"""People's sessions: a one-time code to a contact already on record (read here from the development SMS
outbox file and a real SMTP server), or a deep link signed by the tenant's app (joserfc); rate limits;
idle and absolute expiry; logout; nothing in clear in the new tables. Real databases.

The app is one SQLite table of 置业顾问 (agents) with their phone numbers and e-mail addresses; its data
map says codes go to the number or address on record (``verify_by``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey
from sqlalchemy import create_engine, text

from tests.test_auth_apikeys import Clock, admin_of, staff_login, values_containing
from tests.test_notify import SmtpServer
from yinsi.auth.applinks import AppLinkService
from yinsi.auth.people import PersonAuthService, PersonLimits
from yinsi.auth.principals import AuthError, StaffPrincipal
from yinsi.auth.ratelimit import Limit
from yinsi.datamap_io import parse_datamap
from yinsi.domain.datamap import DataMap
from yinsi.notify.channels import FileSmsChannel
from yinsi.services.publishing import publish
from yinsi.storage import upgrade
from yinsi.stores.sql import dispose_engines

pytestmark = pytest.mark.usefixtures("isolated_env")

ROOT = Path(__file__).resolve().parents[1]
TENANT = "weiliaoke"
DATAMAP = """\
schema_version: 1
tenant: weiliaoke
subjects:
  - id: agent
    name: 置业顾问
    store: app_db
    table: agents
    key: id
    attributes: {phone: phone, email: email}
    verify_by: {sms: phone, email: email}
stores:
  - id: app_db
    kind: sql
    name: 微聊客业务库
    connection: {env: WLK_TEST_DATABASE_URL}
    tables:
      agents:
        reach: {agent: {key: id}}
        erase: delete_row
        columns:
          id: {not_pi: true, why: 内部编号}
          name: {item: basic.name}
          phone: {item: contact.mobile}
          email: {item: contact.email}
"""
PHONE, EMAIL = "13912345678", "wang.xm@fangchan.example"
SHARED = "13700001111"
AGENTS = [
    ("wx_8f3a", "王小明", PHONE, EMAIL),
    ("wx_77c1", "李红", "138-0013-8000", None),  # stored with dashes
    ("wx_aa01", "赵一", SHARED, None),
    ("wx_aa02", "赵二", SHARED, None),  # one phone on two accounts: nobody is logged in by it
]
UNKNOWN = "13600000000"


@dataclass
class World:
    url: str
    svc: PersonAuthService
    clock: Clock
    sms: FileSmsChannel
    smtp: SmtpServer
    admin: StaffPrincipal
    datamap: DataMap

    def sms_codes(self, phone: str) -> list[str]:
        out = []
        for message in self.sms.read_messages():
            if message["to"] == phone:
                [code] = re.findall(r"(?<!\d)\d{6}(?!\d)", message["body"])
                out.append(code)
        return out

    def email_codes(self, address: str) -> list[str]:
        out = []
        for (rcpts, _), msg in zip(self.smtp.received, self.smtp.messages(), strict=True):
            if address in rcpts:
                body = msg.get_body(("plain",))
                assert body is not None
                out.extend(re.findall(r"(?<!\d)\d{6}(?!\d)", body.get_content()))
        return out

    def service(self, **kw: Any) -> PersonAuthService:
        return PersonAuthService(self.url, datamaps={TENANT: self.datamap}, clock=self.clock, **kw)


@pytest.fixture
def world(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    app_db = tmp_path / "weiliaoke-app.db"
    con = sqlite3.connect(app_db)
    con.execute("CREATE TABLE agents (id TEXT PRIMARY KEY, name TEXT, phone TEXT, email TEXT)")
    con.executemany("INSERT INTO agents VALUES (?, ?, ?, ?)", AGENTS)
    con.commit()
    con.close()
    monkeypatch.setenv("WLK_TEST_DATABASE_URL", f"sqlite:///{app_db}")
    sms_dir = tmp_path / "sms-outbox"
    monkeypatch.setenv("YINSI_SMS_OUTBOX_DIR", str(sms_dir))
    smtp = SmtpServer()
    smtp.start()
    monkeypatch.setenv("YINSI_SMTP_PORT", str(smtp.port))
    upgrade(db_url)
    publish(ROOT / "policies" / "weiliaoke-2022.yaml", db_url)
    datamap = parse_datamap(DATAMAP, "datamap.yaml").datamap
    clock = Clock()
    admin = admin_of(db_url, TENANT)
    svc = PersonAuthService(db_url, datamaps={TENANT: datamap}, clock=clock)
    try:
        yield World(db_url, svc, clock, FileSmsChannel(sms_dir), smtp, admin, datamap)
    finally:
        svc.close()
        smtp.stop()
        dispose_engines()


# --- one-time codes ---------------------------------------------------------------------------------


def test_a_person_logs_in_with_a_code_sent_to_the_phone_on_record(world: World) -> None:
    w = world
    started = w.svc.start_code(TENANT, "+86 139 1234 5678", channel="sms", ip="203.0.113.7")
    assert started["masked_address"] == "139****5678" and PHONE not in repr(started)
    [code] = w.sms_codes(PHONE)
    assert len(w.sms.read_messages()) == 1  # nobody else got a code
    token, person = w.svc.verify_code(TENANT, started["challenge_id"], code, ip="203.0.113.7")
    assert (person.tenant, person.subject, person.subject_kind, person.method) == (TENANT, "wx_8f3a", "agent", "sms")
    assert token.startswith("yps_")
    assert w.svc.authenticate(token) == person
    with pytest.raises(AuthError) as info:
        w.svc.verify_code(TENANT, started["challenge_id"], code)  # a code works once
    assert info.value.code == "invalid_code" and "已使用" in info.value.detail
    w.svc.logout(token)
    with pytest.raises(AuthError) as info:
        w.svc.authenticate(token)
    assert (info.value.code, info.value.status) == ("invalid_session", 401)
    w.svc.logout(token)  # twice: nothing happens


def test_a_number_stored_in_another_format_is_found(world: World) -> None:
    started = world.svc.start_code(TENANT, "13800138000")
    [code] = world.sms_codes("13800138000")
    _, person = world.svc.verify_code(TENANT, started["challenge_id"], code)
    assert person.subject == "wx_77c1"


def test_a_person_logs_in_with_a_code_sent_by_email(world: World) -> None:
    started = world.svc.start_code(TENANT, "Wang.XM@fangchan.example", channel="email")
    assert EMAIL not in repr(started)
    [code] = world.email_codes(EMAIL)
    _, person = world.svc.verify_code(TENANT, started["challenge_id"], code)
    assert (person.subject, person.method) == ("wx_8f3a", "email")


def _wrong(code: str | None = None) -> str:
    return f"{(int(code or '0') + 1) % 1_000_000:06d}"


def test_an_unknown_contact_gets_the_same_answer_and_no_code(world: World) -> None:
    w = world
    known = w.svc.start_code(TENANT, PHONE, ip="198.51.100.1")
    unknown = w.svc.start_code(TENANT, UNKNOWN, ip="198.51.100.1")
    shared = w.svc.start_code(TENANT, SHARED, ip="198.51.100.1")
    assert set(known) == set(unknown) == set(shared)
    assert known["expires_at"] == unknown["expires_at"] == shared["expires_at"]
    assert known["notice"].replace(known["masked_address"], "X") == unknown["notice"].replace(
        unknown["masked_address"], "X")
    assert [m["to"] for m in w.sms.read_messages()] == [PHONE]  # only the one known, unambiguous number
    [code] = w.sms_codes(PHONE)
    wrong = _wrong(code)
    for attempt in range(1, 6):  # wrong codes: the same answers, down to the lock
        reasons = set()
        for started in (known, unknown, shared):
            with pytest.raises(AuthError) as info:
                w.svc.verify_code(TENANT, started["challenge_id"], wrong)
            reasons.add((info.value.code, info.value.status, info.value.detail))
        assert len(reasons) == 1, (attempt, reasons)
    with pytest.raises(AuthError) as info:
        w.svc.verify_code(TENANT, known["challenge_id"], code)  # locked now, even with the right code
    assert "错误次数过多" in info.value.detail


def test_a_rights_request_challenge_never_logs_anyone_in(world: World) -> None:
    with pytest.raises(AuthError) as info:
        world.svc.verify_code(TENANT, str(uuid.uuid4()), "123456")
    assert info.value.code == "invalid_code"
    with pytest.raises(AuthError) as info:
        world.svc.start_code(TENANT, "not-a-phone")
    assert (info.value.code, info.value.status) == ("invalid_contact", 400)


def test_codes_are_limited_per_contact_per_minute_and_per_hour(world: World) -> None:
    w = world
    for contact in (PHONE, UNKNOWN):  # the same limits whether or not the number is a user's
        w.svc.start_code(TENANT, contact)
        with pytest.raises(AuthError) as info:
            w.svc.start_code(TENANT, contact)  # again at once
        assert (info.value.code, info.value.status) == ("rate_limited", 429)
        assert info.value.retry_after is not None and 0 < info.value.retry_after <= 60
        for _ in range(4):
            w.clock.advance(seconds=61)
            w.svc.start_code(TENANT, contact)
        w.clock.advance(seconds=61)
        with pytest.raises(AuthError) as info:
            w.svc.start_code(TENANT, contact)  # a sixth code within the hour
        assert info.value.status == 429 and info.value.retry_after is not None
        assert 60 * 50 < info.value.retry_after <= 3600
        w.clock.advance(seconds=info.value.retry_after)
        w.svc.start_code(TENANT, contact)  # the window moved on
    assert len(w.sms_codes(PHONE)) == 6


def test_codes_are_limited_per_ip(world: World) -> None:
    w = world
    for i in range(20):
        w.svc.start_code(TENANT, f"1360000{i:04d}", ip="192.0.2.9")
    with pytest.raises(AuthError) as info:
        w.svc.start_code(TENANT, "13600009999", ip="192.0.2.9")
    assert info.value.status == 429
    w.svc.start_code(TENANT, "13600009999", ip="192.0.2.10")  # another address is not held back


def test_codes_per_subject_are_limited_silently(world: World) -> None:
    w = world
    svc = w.service(limits=PersonLimits(codes_per_subject=Limit("code_subject", 2, timedelta(hours=1))))
    try:
        answers = []
        for _ in range(3):
            answers.append(svc.start_code(TENANT, PHONE))
            w.clock.advance(seconds=61)
        assert all(set(a) == set(answers[0]) for a in answers)
        assert len(w.sms_codes(PHONE)) == 2  # the third answer looks the same; no code was sent
    finally:
        svc.close()


def test_code_checks_are_limited_per_ip(world: World) -> None:
    w = world
    svc = w.service(limits=PersonLimits(checks_per_ip=Limit("check_ip", 3, timedelta(hours=1))))
    try:
        started = svc.start_code(TENANT, PHONE)
        for _ in range(3):
            with pytest.raises(AuthError) as info:
                svc.verify_code(TENANT, started["challenge_id"], "000000", ip="192.0.2.50")
            assert info.value.code == "invalid_code"
        with pytest.raises(AuthError) as info:
            svc.verify_code(TENANT, started["challenge_id"], "000000", ip="192.0.2.50")
        assert info.value.code == "rate_limited"
    finally:
        svc.close()


# --- sessions ---------------------------------------------------------------------------------------


def _login(w: World) -> str:
    started = w.svc.start_code(TENANT, PHONE)
    code = w.sms_codes(PHONE)[-1]
    return w.svc.verify_code(TENANT, started["challenge_id"], code)[0]


def test_a_session_ends_after_30_idle_minutes_and_after_12_hours(world: World) -> None:
    w = world
    idle = _login(w)
    w.clock.advance(minutes=31)
    with pytest.raises(AuthError):
        w.svc.authenticate(idle)
    w.clock.advance(seconds=61)
    busy = _login(w)
    for _ in range(12 * 3):  # used every 20 minutes: alive until the 12 hours are up
        w.clock.advance(minutes=20)
        try:
            w.svc.authenticate(busy)
        except AuthError:
            break
    else:
        pytest.fail("the session outlived its 12 hours")
    with pytest.raises(AuthError):
        w.svc.authenticate(busy)
    with pytest.raises(AuthError):
        w.svc.authenticate("yps_" + "x" * 43)
    assert _count(w.url, "subject_sessions") == 2
    w.clock.advance(days=1, minutes=1)
    later = w.service()  # another process, which tidies up as it starts its first session
    try:
        started = later.start_code(TENANT, PHONE)
        later.verify_code(TENANT, started["challenge_id"], w.sms_codes(PHONE)[-1])
    finally:
        later.close()
    assert _count(w.url, "subject_sessions") == 1  # the two ended a day ago are gone
    assert _count(w.url, "login_challenges") == 0  # used challenges go at once


def _count(url: str, table: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


# --- deep links -------------------------------------------------------------------------------------


def _claims(w: World, **over: Any) -> dict[str, Any]:
    now = int(w.clock.now.timestamp())
    claims: dict[str, Any] = {"iss": TENANT, "aud": f"yinsi:{TENANT}", "sub": "wx_13912345678", "iat": now,
                              "exp": now + 300, "jti": uuid.uuid4().hex}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_deep_link_signed_with_the_hs256_secret_starts_a_session(world: World) -> None:
    w = world
    with AppLinkService(w.url, clock=w.clock) as links:
        info = links.set_hs256(w.admin, TENANT)
        shown = links.show(w.admin, TENANT)
    secret = info["secret"]
    assert shown is not None and "secret" not in shown and secret not in repr(shown)
    assert values_containing(w.url, secret) == []  # stored encrypted only
    key = OctKey.import_key(secret.encode("ascii"))
    good = jwt.encode({"alg": "HS256"}, _claims(w), key)
    token, person = w.svc.from_app_token(TENANT, good, ip="203.0.113.7")
    assert (person.subject, person.subject_kind, person.method) == ("wx_13912345678", "agent", "app_token")
    assert w.svc.authenticate(token) == person

    def refused(jws: str) -> str:
        with pytest.raises(AuthError) as info:
            w.svc.from_app_token(TENANT, jws)
        assert (info.value.code, info.value.status) == ("invalid_app_token", 401)
        return info.value.detail

    assert "已使用" in refused(good)  # a replay
    assert "过期" in refused(jwt.encode({"alg": "HS256"}, _claims(w, iat=int(w.clock.now.timestamp()) - 400,
                                                                   exp=int(w.clock.now.timestamp()) - 100), key))
    assert "aud" in refused(jwt.encode({"alg": "HS256"}, _claims(w, aud="yinsi:kehutong"), key))
    assert "iss" in refused(jwt.encode({"alg": "HS256"}, _claims(w, iss="someone-else"), key))
    refused(jwt.encode({"alg": "HS256"}, _claims(w), OctKey.import_key(b"another-secret-of-32-bytes-long!")))
    assert "10 分钟" in refused(jwt.encode({"alg": "HS256"}, _claims(w, exp=int(w.clock.now.timestamp()) + 3600), key))
    refused(jwt.encode({"alg": "HS256"}, _claims(w, jti=None), key))  # jti is required
    refused(jwt.encode({"alg": "HS256"}, _claims(w, kind="nobody"), key))
    refused(good[:-2] + ("AA" if not good.endswith("AA") else "BB"))
    refused("not a token")
    _, visitor = w.svc.from_app_token(TENANT, jwt.encode({"alg": "HS256"}, _claims(w, kind="agent"), key))
    assert visitor.subject_kind == "agent"
    with pytest.raises(AuthError) as info:  # another tenant's token is not accepted for this one
        w.svc.from_app_token("kehutong", jwt.encode({"alg": "HS256"}, _claims(w), key))
    assert info.value.code == "invalid_app_token"


def _hs256_by_hand(claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 token made without a JOSE library (joserfc refuses a public key as an HMAC secret): the
    attacker's side of an algorithm-confusion attempt."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = part(b'{"alg":"HS256","typ":"JWT"}') + "." + part(json.dumps(claims).encode())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + part(signature)


def test_a_deep_link_signed_with_the_apps_own_key(world: World) -> None:
    w = world
    ec = ECKey.generate_key("P-256")
    ed = OKPKey.generate_key("Ed25519")
    with AppLinkService(w.url, clock=w.clock) as links:
        with pytest.raises(ValueError, match="私钥"):
            links.set_public_key(w.admin, TENANT, ec.as_pem(private=True).decode())
        info = links.set_public_key(w.admin, TENANT, ec.as_pem(private=False).decode(), issuer="weiliaoke-app")
        assert (info["algorithm"], info["issuer"], info["kind"]) == ("ES256", "weiliaoke-app", "public")
        _, person = w.svc.from_app_token(TENANT, jwt.encode({"alg": "ES256"}, _claims(w, iss="weiliaoke-app"), ec))
        assert person.subject == "wx_13912345678"
        with pytest.raises(AuthError):  # signed by another key
            w.svc.from_app_token(TENANT, jwt.encode({"alg": "ES256"}, _claims(w, iss="weiliaoke-app"),
                                                    ECKey.generate_key("P-256")))
        with pytest.raises(AuthError):  # HS256 with the public key as the secret (algorithm confusion)
            w.svc.from_app_token(TENANT, _hs256_by_hand(_claims(w, iss="weiliaoke-app"), ec.as_pem(private=False)))
        links.set_public_key(w.admin, TENANT, json.dumps(ed.as_dict(private=False)))
        _, person = w.svc.from_app_token(TENANT, jwt.encode({"alg": "Ed25519"}, _claims(w), ed, algorithms=["Ed25519"]))
        assert person.method == "app_token"
        with pytest.raises(AuthError):  # the old key no longer works
            w.svc.from_app_token(TENANT, jwt.encode({"alg": "ES256"}, _claims(w, iss="weiliaoke-app"), ec))


def test_only_an_administrator_sets_the_deep_link_key(world: World) -> None:
    w = world
    _, officer = staff_login(w.url, w.admin, "po1", ["privacy_officer"])
    with AppLinkService(w.url, clock=w.clock) as links:
        with pytest.raises(AuthError) as info:
            links.set_hs256(officer, TENANT)
        assert info.value.status == 403
        with pytest.raises(AuthError):
            links.show(officer, TENANT)
        assert links.show(w.admin, TENANT) is None
    with pytest.raises(AuthError) as info:
        w.svc.from_app_token(TENANT, "a.b.c")
    assert "尚未配置" in info.value.detail


def test_nothing_identifying_is_stored_in_clear(world: World) -> None:
    w = world
    _login(w)
    w.clock.advance(seconds=61)
    w.svc.start_code(TENANT, UNKNOWN, ip="203.0.113.77")
    started = w.svc.start_code(TENANT, EMAIL, channel="email", ip="203.0.113.77")
    w.svc.verify_code(TENANT, started["challenge_id"], w.email_codes(EMAIL)[-1], ip="203.0.113.77")
    with AppLinkService(w.url, clock=w.clock) as links:
        secret = links.set_hs256(w.admin, TENANT)["secret"]
    w.svc.from_app_token(TENANT, jwt.encode({"alg": "HS256"}, _claims(w), OctKey.import_key(secret.encode())))
    tables = ["api_keys", "app_link_keys", "app_link_jtis", "login_challenges", "subject_sessions", "rate_events",
              "verification_codes", "outbox"]
    for needle in (PHONE, UNKNOWN, EMAIL, "wx_8f3a", "wx_13912345678", "203.0.113.77", secret):
        assert values_containing(w.url, needle, tables) == [], needle


def test_the_signing_example_in_the_docs_works(world: World) -> None:
    w = world
    text = (ROOT / "docs" / "auth.md").read_text(encoding="utf-8")
    [example] = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "def deep_link_token" in b]
    namespace: dict[str, Any] = {}
    exec(compile(example, "docs/auth.md", "exec"), namespace)
    with AppLinkService(w.url) as links:
        secret = links.set_hs256(w.admin, TENANT)["secret"]
    token = namespace["deep_link_token"](secret, TENANT, "wx_8f3a")
    with PersonAuthService(w.url, datamaps={TENANT: w.datamap}) as svc:  # the real clock, as the example's
        _, person = svc.from_app_token(TENANT, token)
    assert (person.subject, person.method) == ("wx_8f3a", "app_token")
