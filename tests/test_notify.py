"""The notification outbox and its channels, with real components: a real SMTP server (aiosmtpd) on a free
localhost port, the file SMS adapter, and Yinsi's real key ring on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import email
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from yinsi.notify import (
    ChannelError,
    FileSmsChannel,
    NotifyError,
    NotifySettings,
    Outbox,
    OutgoingMessage,
    RetryPolicy,
    SmtpEmailChannel,
)
from yinsi.notify.messages import recipient_deletion_notice
from yinsi.notify.outbox import scrub
from yinsi.protect.keys import KeyRing, MasterKey
from yinsi.protect.rotation import EncryptedColumn, RotationTarget, rotate_data_key
from yinsi.storage import Base, Tenant, make_engine, make_session_factory
from yinsi.storage.keys_tables import DataKeyRow, KeyRotationColumnRow, KeyRotationRow
from yinsi.storage.notify_tables import OUTBOX_PAYLOAD_FIELD, OutboxMessage, VerificationCodeRow

pytestmark = pytest.mark.usefixtures("isolated_env")

T0 = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
TENANT = "weiliaoke"
OTHER = "jikeanjia"
PHONE = "13812345678"
MAILBOX = "zhang.san@example.com"
TABLES = [Tenant.__table__, DataKeyRow.__table__, KeyRotationRow.__table__, KeyRotationColumnRow.__table__,
          OutboxMessage.__table__, VerificationCodeRow.__table__]


# --- a real SMTP server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        self.server.received.append((list(envelope.rcpt_tos), bytes(raw)))
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on 127.0.0.1:<port>; ``stop()`` and ``start()`` simulate an outage on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[list[str], bytes]] = []
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(raw, _class=EmailMessage, policy=default_policy)  # type: ignore[arg-type]
                for _, raw in self.received]


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- the database, keys and the outbox -----------------------------------------------------------------


@dataclass
class Env:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]
    ring: KeyRing
    sms: FileSmsChannel
    smtp: SmtpServer

    def outbox(self, **kwargs: Any) -> Outbox:
        channels = kwargs.pop("channels", None) or {
            "email": SmtpEmailChannel("127.0.0.1", self.smtp.port, "noreply@yinsi.local", timeout=5),
            "sms": self.sms,
        }
        return Outbox(self.sessions, self.ring, channels, **kwargs)

    def rows(self) -> list[OutboxMessage]:
        with self.sessions() as session:
            return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    def raw_dump(self, table: str) -> bytes:
        """Every value of every row of ``table`` as the database returns it, plus the SQLite file itself."""
        parts: list[bytes] = []
        with self.engine.connect() as conn:
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                for value in row:
                    parts.append(bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode())
        if self.url.startswith("sqlite"):
            self.engine.dispose()
            db = Path(self.url.removeprefix("sqlite:///"))
            for path in (db, db.with_name(db.name + "-wal")):
                if path.exists():
                    parts.append(path.read_bytes())
        return b"\n".join(parts)


def make_env(url: str, smtp: SmtpServer, sms_dir: Path) -> Env:
    engine = make_engine(url)
    Base.metadata.create_all(engine, tables=TABLES)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        session.add(Tenant(id=TENANT, name="微聊客", created_at=T0))
        session.add(Tenant(id=OTHER, name="极客安家", created_at=T0))
    ring = KeyRing(sessions, MasterKey(os.urandom(32), "test"))
    ring.provision(TENANT)
    ring.provision(OTHER)
    return Env(url, engine, sessions, ring, FileSmsChannel(sms_dir), smtp)


@pytest.fixture
def env(db_url: str, smtp_server: SmtpServer, tmp_path: Path) -> Iterator[Env]:
    e = make_env(db_url, smtp_server, tmp_path / "sms")
    try:
        yield e
    finally:
        e.engine.dispose()


@pytest.fixture
def senv(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[Env]:
    """SQLite only (for tests of logic that does not depend on the backend)."""
    e = make_env(f"sqlite:///{(tmp_path / 'db' / 'yinsi.db').as_posix()}", smtp_server, tmp_path / "sms")
    try:
        yield e
    finally:
        e.engine.dispose()


def enqueue(env: Env, outbox: Outbox, channel: str = "email", to: str = MAILBOX, *, now: datetime = T0,
            body: str = "您好，这是一条测试通知：您的请求已受理。", **kwargs: Any) -> int:
    with env.sessions() as session, session.begin():
        return outbox.enqueue_in(session, kwargs.pop("tenant", TENANT), channel, to, kwargs.pop("subject", "【微聊客】通知"),
                                 body, kwargs.pop("kind", "notice"), kwargs.pop("ref", "REQ-1"), now=now, **kwargs)


class FailingChannel:
    name = "email"

    def __init__(self, permanent: bool = False) -> None:
        self.calls = 0
        self.permanent = permanent

    def send(self, message: OutgoingMessage) -> str | None:
        self.calls += 1
        raise ChannelError(f"网关超时 for {message.to}", permanent=self.permanent)


class Crash(BaseException):
    """The process dying (not an ``Exception``: nothing may catch it)."""


class CrashAfterSending:
    """Hands the message to the SMS file, then the process 'dies' before the outbox marks it sent."""

    name = "sms"

    def __init__(self, inner: FileSmsChannel) -> None:
        self.inner = inner
        self.crash = True

    def send(self, message: OutgoingMessage) -> str | None:
        result = self.inner.send(message)
        if self.crash:
            raise Crash
        return result


# --- tests ---------------------------------------------------------------------------------------------


def test_email_over_real_smtp_is_proper_utf8_mime(env: Env) -> None:
    outbox = env.outbox()
    body = "张三您好：\n您提交的个人信息查阅请求（编号 REQ-1）已受理，我们将在15个工作日内答复。\n𠮷"
    message_id = enqueue(env, outbox, subject="【微聊客】隐私请求受理通知", body=body)

    report = outbox.deliver(now=T0)
    assert (report.sent, report.retrying, report.dead) == (1, 0, 0)
    [(rcpt, raw)] = env.smtp.received
    assert rcpt == [MAILBOX]
    assert b"\xe5" not in raw.split(b"\r\n\r\n", 1)[0]  # headers are 7-bit: the subject is RFC 2047 encoded
    [mail] = env.smtp.messages()
    assert mail["Subject"] == "【微聊客】隐私请求受理通知"
    assert mail["From"] == "noreply@yinsi.local"
    assert mail["To"] == MAILBOX
    assert mail["Message-ID"] == f"<outbox-{message_id}.{TENANT}@yinsi.local>"
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    assert mail.get_content().replace("\r\n", "\n").rstrip("\n") == body  # canonical CRLF line ends

    [row] = env.rows()
    assert (row.status, row.attempts, row.payload, row.last_error) == ("sent", 1, None, None)
    assert row.sent_at == T0
    assert row.recipient_masked == "z***@example.com"
    assert outbox.deliver(now=T0 + timedelta(hours=1)).attempted == 0  # sent once, never again


def test_sms_goes_to_the_file_adapter(env: Env) -> None:
    outbox = env.outbox()
    enqueue(env, outbox, "sms", "+86 138-1234-5678", body="【微聊客】您的注销申请已受理。",
            template="notice", params={"n": 1})  # type: ignore[dict-item]
    assert outbox.deliver(now=T0).sent == 1
    [line] = env.sms.read_messages()
    assert line["to"] == PHONE  # normalised
    assert line["body"] == "【微聊客】您的注销申请已受理。"
    assert (line["template"], line["params"], line["tenant"], line["ref"]) == ("notice", {"n": "1"}, TENANT, "REQ-1")
    assert stat.S_IMODE(env.sms.path.stat().st_mode) == 0o600
    assert env.rows()[0].recipient_masked == "138****5678"


def test_a_message_exists_only_if_the_callers_transaction_commits(senv: Env) -> None:
    outbox = senv.outbox()
    with senv.sessions() as session:
        outbox.enqueue_in(session, TENANT, "email", MAILBOX, "s", "正文", "notice", now=T0)
        session.rollback()
    assert senv.rows() == []
    assert outbox.deliver(now=T0).attempted == 0
    assert senv.smtp.received == []


def test_smtp_down_then_up_keeps_the_message_with_backoff(env: Env) -> None:
    outbox = env.outbox()
    env.smtp.stop()
    enqueue(env, outbox, subject="离线期间的通知", body="服务器恢复后应送达。")

    report = outbox.deliver(now=T0)
    assert (report.sent, report.retrying) == (0, 1)
    [row] = env.rows()
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == T0 + timedelta(seconds=30)
    assert row.payload is not None
    assert row.last_error is not None and "SMTP" in row.last_error and MAILBOX not in row.last_error

    assert outbox.deliver(now=T0 + timedelta(seconds=29)).attempted == 0  # not due yet
    assert outbox.deliver(now=T0 + timedelta(seconds=30)).retrying == 1
    [row] = env.rows()
    assert row.attempts == 2 and row.next_attempt_at == T0 + timedelta(seconds=90)  # 30 s, then 60 s

    env.smtp.start()
    report = outbox.deliver(now=T0 + timedelta(seconds=90))
    assert report.sent == 1
    [mail] = env.smtp.messages()
    assert mail["Subject"] == "离线期间的通知"
    assert mail.get_content().strip() == "服务器恢复后应送达。"
    [row] = env.rows()
    assert (row.status, row.attempts, row.payload) == ("sent", 3, None)


def test_backoff_is_exponential_and_capped() -> None:
    policy = RetryPolicy()
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert policy.delay(30) == timedelta(hours=6)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_too_many_failures_make_a_message_dead_and_staff_can_requeue_it(senv: Env) -> None:
    failing = FailingChannel()
    outbox = senv.outbox(channels={"email": failing}, retry=RetryPolicy(max_attempts=3))
    message_id = enqueue(senv, outbox)
    now = T0
    outcomes = []
    for _ in range(3):
        report = outbox.deliver(now=now)
        outcomes.append(report.outcomes[0].outcome)
        now += timedelta(hours=1)
    assert outcomes == ["retry", "retry", "dead"]
    info = outbox.get(message_id)
    assert info is not None and info.status == "dead" and info.attempts == 3
    assert info.last_error is not None and info.last_error == "网关超时 for ***"
    assert outbox.deliver(now=now).attempted == 0

    working = senv.outbox()
    assert working.requeue(message_id, tenant=OTHER, now=now) is False  # another tenant's staff
    assert working.requeue(message_id, tenant=TENANT, now=now) is True
    assert working.deliver(now=now).sent == 1
    assert len(senv.smtp.received) == 1


def test_a_permanent_refusal_is_given_up_at_once(env: Env) -> None:
    outbox = env.outbox()
    enqueue(env, outbox, to="nobody@example.com")
    report = outbox.deliver(now=T0)
    assert report.dead == 1
    [row] = env.rows()
    assert row.status == "dead" and row.attempts == 1 and "550" in (row.last_error or "")
    assert "nobody" not in (row.last_error or "")


def test_crash_between_send_and_mark_redelivers_after_the_lease(senv: Env) -> None:
    """At least once: the message is never lost, and a crash at the worst moment sends it twice."""
    crashing = CrashAfterSending(senv.sms)
    outbox = senv.outbox(channels={"sms": crashing})
    message_id = enqueue(senv, outbox, "sms", PHONE, body="注销已完成。")
    with pytest.raises(Crash):
        outbox.deliver(now=T0)
    [row] = senv.rows()
    assert (row.status, row.attempts) == ("pending", 1)  # the claim committed, the mark did not
    assert row.next_attempt_at == T0 + outbox.retry.lease

    crashing.crash = False
    assert outbox.deliver(now=T0 + timedelta(minutes=1)).attempted == 0  # still leased
    assert outbox.deliver(now=T0 + outbox.retry.lease).sent == 1
    lines = senv.sms.read_messages()
    assert [line["message_id"] for line in lines] == [message_id, message_id]  # same id: the gateway can dedupe
    assert senv.rows()[0].status == "sent"


def test_a_claimed_message_is_not_sent_by_a_second_deliverer(senv: Env) -> None:
    crashing = CrashAfterSending(senv.sms)
    first = senv.outbox(channels={"sms": crashing})
    enqueue(senv, first, "sms", PHONE)
    with pytest.raises(Crash):
        first.deliver(now=T0)
    second = senv.outbox()
    assert second.deliver(now=T0 + timedelta(seconds=10)).attempted == 0


def test_expired_messages_are_dropped_unsent(senv: Env) -> None:
    outbox = senv.outbox()
    enqueue(senv, outbox, "sms", PHONE, expires_at=T0 + timedelta(minutes=10))
    report = outbox.deliver(now=T0 + timedelta(minutes=10))
    assert report.expired == 1 and report.sent == 0
    [row] = senv.rows()
    assert (row.status, row.payload) == ("expired", None)
    assert senv.sms.read_messages() == []


def test_an_unconfigured_channel_is_retried_not_lost(senv: Env) -> None:
    outbox = senv.outbox(channels={"email": SmtpEmailChannel("127.0.0.1", senv.smtp.port, "a@b.c")})
    enqueue(senv, outbox, "sms", PHONE)
    report = outbox.deliver(now=T0)
    assert report.retrying == 1 and "sms" in (report.outcomes[0].error or "")


def test_addresses_and_bodies_are_not_stored_in_clear(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    outbox = env.outbox()
    env.smtp.stop()  # keep one pending (encrypted) and let one fail with an error stored
    enqueue(env, outbox, body="秘密正文甲乙丙")
    enqueue(env, outbox, "sms", PHONE, body="秘密正文丁戊己")
    outbox.deliver(now=T0)
    dump = env.raw_dump("outbox")
    for secret in (MAILBOX, PHONE, "秘密正文甲乙丙", "秘密正文丁戊己", "zhang.san"):
        assert secret.encode("utf-8") not in dump, secret
    assert b"z***@example.com" in dump and b"138****5678" in dump
    logged = caplog.text
    for secret in (MAILBOX, PHONE, "秘密正文"):
        assert secret not in logged


def test_tenants_cannot_read_each_others_payloads(senv: Env) -> None:
    outbox = senv.outbox()
    enqueue(senv, outbox, "sms", PHONE)
    with senv.sessions() as session, session.begin():  # move the row to another tenant
        row = session.scalars(select(OutboxMessage)).one()
        row.tenant_id = OTHER
    report = outbox.deliver(now=T0)
    assert report.dead == 1 and "无法解密" in (report.outcomes[0].error or "")
    assert senv.sms.read_messages() == []


def test_enqueue_validates_its_input(senv: Env) -> None:
    outbox = senv.outbox()
    with senv.sessions() as session:
        with pytest.raises(NotifyError, match="手机号"):
            outbox.enqueue_in(session, TENANT, "sms", "12345", "s", "b", "notice")
        with pytest.raises(NotifyError, match="邮箱"):
            outbox.enqueue_in(session, TENANT, "email", "not-an-address", "s", "b", "notice")
        with pytest.raises(NotifyError, match="渠道"):
            outbox.enqueue_in(session, TENANT, "SMS!", PHONE, "s", "b", "notice")
        with pytest.raises(NotifyError, match="正文"):
            outbox.enqueue_in(session, TENANT, "sms", PHONE, "s", " ", "notice")


def test_missing_tenant_keys_are_reported(senv: Env) -> None:
    with senv.sessions() as session, session.begin():
        session.add(Tenant(id="nokeys", name="无密钥", created_at=T0))
    outbox = senv.outbox()
    with senv.sessions() as session, pytest.raises(NotifyError, match="yinsi keys create nokeys"):
        outbox.enqueue_in(session, "nokeys", "sms", PHONE, "s", "b", "notice")


def test_key_rotation_reencrypts_pending_messages(senv: Env) -> None:
    outbox = senv.outbox()
    senv.smtp.stop()
    enqueue(senv, outbox, body="轮换前写入")
    outbox.deliver(now=T0)  # pending, failed once
    column = EncryptedColumn("outbox", "payload", field=OUTBOX_PAYLOAD_FIELD)
    result = rotate_data_key(senv.ring, TENANT, [RotationTarget(senv.ring.engine, column)])
    assert result.to_version == 2
    senv.smtp.start()
    assert outbox.deliver(now=T0 + timedelta(hours=1)).sent == 1
    assert senv.smtp.messages()[0].get_content().strip() == "轮换前写入"


def test_sent_and_expired_messages_can_be_pruned(senv: Env) -> None:
    outbox = senv.outbox()
    enqueue(senv, outbox, "sms", PHONE)
    enqueue(senv, outbox, "sms", PHONE, expires_at=T0)
    outbox.deliver(now=T0)
    failing = senv.outbox(channels={"email": FailingChannel()})  # no SMS adapter
    enqueue(senv, failing, "sms", PHONE, now=T0)
    failing.deliver(now=T0)
    assert outbox.prune(T0 + timedelta(days=1), tenant=OTHER) == 0
    assert outbox.prune(T0 + timedelta(days=1)) == 2
    assert [m.status for m in outbox.messages(TENANT)] == ["pending"]
    assert [m.status for m in outbox.messages(TENANT, "REQ-1", status="pending")] == ["pending"]


@pytest.mark.postgres
def test_concurrent_deliverers_send_each_message_once(smtp_server: SmtpServer, tmp_path: Path) -> None:
    from tests.conftest import scratch_database

    with scratch_database("postgresql") as url:
        env = make_env(url, smtp_server, tmp_path / "sms")
        try:
            outbox = env.outbox()
            ids = {enqueue(env, outbox, "sms", PHONE, body=f"第{i}条") for i in range(30)}

            class Slow(FileSmsChannel):
                def send(self, message: OutgoingMessage) -> str | None:
                    time.sleep(0.005)
                    return super().send(message)

            workers = [env.outbox(channels={"sms": Slow(env.sms.directory)}) for _ in range(4)]
            errors: list[BaseException] = []

            def run(o: Outbox) -> None:
                try:
                    for _ in range(10):
                        o.deliver(limit=5, now=T0)
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=run, args=(w,)) for w in workers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []
            sent = [line["message_id"] for line in env.sms.read_messages()]
            assert sorted(sent) == sorted(ids)  # every message once, none twice
        finally:
            env.engine.dispose()


def test_settings_from_environment(tmp_path: Path) -> None:
    defaults = NotifySettings.from_env({})
    assert (defaults.smtp_host, defaults.smtp_port, defaults.smtp_sender) == ("127.0.0.1", 8025, "noreply@yinsi.local")
    assert defaults.sms_directory.name == "sms-outbox"
    custom = NotifySettings.from_env({
        "YINSI_SMTP_HOST": "smtp.example.com", "YINSI_SMTP_PORT": "587", "YINSI_SMTP_SENDER": "privacy@weiliaoke.cn",
        "YINSI_SMTP_STARTTLS": "1", "YINSI_SMTP_USERNAME": "u", "YINSI_SMTP_PASSWORD": "secret-pw",
        "YINSI_SMS_OUTBOX_DIR": str(tmp_path / "sms"),
    })
    assert (custom.smtp_host, custom.smtp_port, custom.smtp_starttls) == ("smtp.example.com", 587, True)
    assert custom.sms_directory == tmp_path / "sms"
    assert "secret-pw" not in repr(custom)
    channels = custom.channels()
    assert isinstance(channels["email"], SmtpEmailChannel) and channels["email"].starttls
    assert isinstance(channels["sms"], FileSmsChannel) and channels["sms"].directory == tmp_path / "sms"
    with pytest.raises(NotifyError, match="YINSI_SMTP_PORT"):
        NotifySettings.from_env({"YINSI_SMTP_PORT": "smtp"})
    with pytest.raises(NotifyError, match="YINSI_SMTP_SENDER"):
        NotifySettings.from_env({"YINSI_SMTP_SENDER": "noreply"})


def test_outbox_from_env_delivers_to_the_configured_server(senv: Env, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setenv("YINSI_SMTP_PORT", str(senv.smtp.port))
    monkeypatch.setenv("YINSI_SMS_OUTBOX_DIR", str(tmp_path / "env-sms"))
    outbox = Outbox.from_env(senv.sessions, senv.ring)
    enqueue(senv, outbox)
    enqueue(senv, outbox, "sms", PHONE)
    assert outbox.deliver(now=T0).sent == 2
    assert len(senv.smtp.received) == 1
    assert len(FileSmsChannel(tmp_path / "env-sms").read_messages()) == 1


def test_recipient_deletion_notice_r13() -> None:
    text_ = recipient_deletion_notice(recipient_name="某某支付有限公司", controller_name="微聊客科技有限公司",
                                      app_name="微聊客", subject_ref="p_ABC", items=["手机号码", "银行卡号"],
                                      request_ref="REQ-9")
    assert "请删除" in text_.body and "手机号码、银行卡号" in text_.body and "REQ-9" in text_.subject
    assert "第四十七条" in text_.body


def test_scrub_removes_addresses_and_digit_runs() -> None:
    assert scrub("refused <zhang@example.com> 13812345678 code 123456 port 8025", "x") == \
        "refused <***@***> *********** code ****** port 8025"
