"""Identity verification by one-time code, end to end: the code travels through the outbox to a real SMTP
server (aiosmtpd) or the SMS file, is read back from there, and verified."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.test_notify import (  # noqa: F401  (env, senv, smtp_server are fixtures used here)
    MAILBOX,
    OTHER,
    PHONE,
    T0,
    TENANT,
    Env,
    env,
    senv,
    smtp_server,
)
from yinsi.notify import Outbox
from yinsi.rights.verification import (
    AddressNotOnRecord,
    Challenge,
    ResendLimited,
    VerificationError,
    VerificationResult,
    check_code,
    start_verification,
)
from yinsi.storage.notify_tables import OutboxMessage, VerificationCodeRow

pytestmark = pytest.mark.usefixtures("isolated_env")

CODE_TEXT = re.compile(r"^您的隐私请求验证码为 (\d{6})，10分钟内有效。如非本人操作请忽略。$")


def start(env: Env, outbox: Outbox, channel: str = "sms", address: str = PHONE, *, ref: str = "REQ-1",
          now: timedelta = timedelta(0), **kwargs: object) -> Challenge:
    with env.sessions() as session, session.begin():
        return start_verification(session, outbox, TENANT, ref, channel, address, now=T0 + now,  # type: ignore[arg-type]
                                  **kwargs)  # type: ignore[arg-type]


def check(env: Env, challenge: Challenge | str, code: str, now: timedelta = timedelta(minutes=1),
          **kwargs: str) -> VerificationResult:
    challenge_id = challenge if isinstance(challenge, str) else challenge.id
    with env.sessions() as session, session.begin():  # committed whatever the result
        return check_code(session, challenge_id, code, T0 + now, **kwargs)


def sms_code(env: Env, index: int = -1) -> str:
    line = env.sms.read_messages()[index]
    match = CODE_TEXT.match(line["body"])
    assert match, line["body"]
    assert line["params"]["code"] == match.group(1)
    return match.group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_code_by_email_through_a_real_smtp_server(env: Env) -> None:
    outbox = env.outbox()
    challenge = start(env, outbox, "email", "Zhang.San@Example.com", app_name="微聊客")
    assert challenge.masked_address == "z***@example.com"
    assert challenge.notice_zh == "验证码已发送至电子邮箱 z***@example.com，10分钟内有效。"
    assert challenge.expires_at == T0 + timedelta(minutes=10)

    assert outbox.deliver(now=T0).sent == 1
    [(rcpt, _)] = env.smtp.received
    assert rcpt == [MAILBOX]
    [mail] = env.smtp.messages()
    assert mail["Subject"] == "微聊客隐私请求验证码"
    body = mail.get_content().strip()
    match = CODE_TEXT.match(body)
    assert match, body
    code = match.group(1)

    result = check(env, challenge, code)
    assert result == VerificationResult(True, "身份验证成功", 4, "verified")
    again = check(env, challenge, code, timedelta(minutes=2))  # single use
    assert (again.ok, again.status) == (False, "used")


def test_code_by_sms_through_the_file_outbox(env: Env) -> None:
    outbox = env.outbox()
    challenge = start(env, outbox, "sms", "+86 138 1234 5678")
    assert challenge.notice_zh == "验证码已发送至手机号 138****5678，10分钟内有效。"
    assert outbox.deliver(now=T0).sent == 1
    line = env.sms.read_messages()[0]
    assert line["to"] == PHONE and line["kind"] == "verification_code" and line["ref"] == "REQ-1"
    code = sms_code(env)
    fullwidth = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert check(env, challenge, f" {fullwidth} ").ok  # typed on a Chinese keyboard


def test_codes_are_never_stored_in_clear(env: Env) -> None:
    outbox = env.outbox()
    challenge = start(env, outbox)
    with env.sessions() as session:
        row = session.get(VerificationCodeRow, challenge.id)
        assert row is not None and row.code_hash.startswith("$argon2id$")
    outbox.deliver(now=T0)
    code = sms_code(env)
    for table in ("verification_codes", "outbox"):
        dump = env.raw_dump(table)
        assert code.encode() not in dump, table
        assert PHONE.encode() not in dump, table


def test_codes_stay_encrypted_while_the_message_waits(senv: Env) -> None:
    outbox = senv.outbox(channels={"email": object()})  # type: ignore[dict-item]  # no SMS adapter: stays pending
    start(senv, outbox)
    outbox.deliver(now=T0)
    with senv.sessions() as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert row.status == "pending" and row.payload is not None
    dump = senv.raw_dump("outbox") + senv.raw_dump("verification_codes")
    assert PHONE.encode() not in dump
    assert "您的隐私请求验证码".encode() not in dump


def test_an_expired_code_is_refused(senv: Env) -> None:
    outbox = senv.outbox()
    challenge = start(senv, outbox)
    outbox.deliver(now=T0)
    code = sms_code(senv)
    result = check(senv, challenge, code, timedelta(minutes=10))
    assert (result.ok, result.status, result.reason_zh) == (False, "expired", "验证码已过期，请重新获取验证码")
    assert check(senv, challenge, code, timedelta(minutes=1)).status == "expired"  # stays expired


def test_a_code_message_not_sent_before_expiry_is_dropped(senv: Env) -> None:
    outbox = senv.outbox()
    start(senv, outbox)
    report = outbox.deliver(now=T0 + timedelta(minutes=11))
    assert report.expired == 1 and senv.sms.read_messages() == []


def test_five_wrong_codes_lock_the_challenge(env: Env) -> None:
    outbox = env.outbox()
    challenge = start(env, outbox)
    outbox.deliver(now=T0)
    code = sms_code(env)
    results = [check(env, challenge, wrong(code)) for _ in range(5)]
    assert [r.attempts_left for r in results] == [4, 3, 2, 1, 0]
    assert [r.status for r in results] == ["wrong_code"] * 4 + ["locked"]
    assert results[0].reason_zh == "验证码错误，还可尝试 4 次"
    final = check(env, challenge, code)
    assert (final.ok, final.status) == (False, "locked")
    with env.sessions() as session:
        row = session.get(VerificationCodeRow, challenge.id)
        assert row is not None and (row.status, row.attempts) == ("locked", 5)


def test_malformed_codes_count_as_attempts(senv: Env) -> None:
    outbox = senv.outbox()
    challenge = start(senv, outbox, max_attempts=2)
    assert check(senv, challenge, "12ab").status == "wrong_code"
    assert check(senv, challenge, "").status == "locked"


def test_resend_is_limited(senv: Env) -> None:
    outbox = senv.outbox()
    first = start(senv, outbox)
    with pytest.raises(ResendLimited, match="秒后") as too_soon:
        start(senv, outbox, now=timedelta(seconds=10))
    assert too_soon.value.retry_after == T0 + timedelta(seconds=60)
    start(senv, outbox, now=timedelta(seconds=60))
    third = start(senv, outbox, now=timedelta(minutes=2))
    with pytest.raises(ResendLimited, match="每小时最多 3 次") as per_hour:
        start(senv, outbox, now=timedelta(minutes=30))
    assert per_hour.value.retry_after == T0 + timedelta(hours=1)
    start(senv, outbox, ref="REQ-2", now=timedelta(minutes=30))  # another request is counted apart
    start(senv, outbox, now=timedelta(hours=1, seconds=1))  # the first code left the window

    # only the newest code of a request works
    assert check(senv, first, "000000", timedelta(minutes=3)).status == "superseded"
    assert check(senv, third, "000000", timedelta(minutes=3)).status == "superseded"


def test_an_address_not_on_record_is_refused(env: Env) -> None:
    outbox = env.outbox()
    with pytest.raises(AddressNotOnRecord, match="与账号记录不一致") as refused:
        start(env, outbox, address=PHONE, claimed="13900001111")
    assert PHONE not in str(refused.value) and "5678" not in str(refused.value)
    with pytest.raises(AddressNotOnRecord):
        start(env, outbox, "email", MAILBOX, claimed="other@example.com")
    with pytest.raises(AddressNotOnRecord):
        start(env, outbox, address=PHONE, claimed="not a phone")
    with env.sessions() as session:  # nothing was stored or queued
        assert session.scalar(select(func.count()).select_from(VerificationCodeRow)) == 0
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    # the same number, formatted differently, is the number on record
    challenge = start(env, outbox, address=PHONE, claimed="+86 138-1234-5678")
    assert challenge.masked_address == "138****5678"


def test_an_unusable_address_on_record_is_reported(senv: Env) -> None:
    with pytest.raises(VerificationError, match="记录中的手机号无效"):
        start(senv, senv.outbox(), address="010-12345678")
    with pytest.raises(ValueError):
        start(senv, senv.outbox(), "wechat", PHONE)


def test_unknown_or_foreign_challenges_are_refused(senv: Env) -> None:
    outbox = senv.outbox()
    challenge = start(senv, outbox)
    outbox.deliver(now=T0)
    code = sms_code(senv)
    assert check(senv, "no-such-challenge", code).status == "unknown"
    assert check(senv, challenge, code, tenant=OTHER).status == "unknown"
    assert check(senv, challenge, code, tenant=TENANT).ok


def test_nothing_is_sent_if_the_caller_rolls_back(senv: Env) -> None:
    outbox = senv.outbox()
    with senv.sessions() as session:
        start_verification(session, outbox, TENANT, "REQ-1", "sms", PHONE, now=T0)
        session.rollback()
    assert outbox.deliver(now=T0).attempted == 0
    assert senv.sms.read_messages() == []
    start(senv, outbox)  # and the rolled-back code does not count against the resend limit
