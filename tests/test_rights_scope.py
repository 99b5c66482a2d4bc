"""Erasure that does what was asked, and honest errors: on the 微聊客 demo app on SQLite, PostgreSQL and
MariaDB (the ``env`` fixture of test_rights_service), checked with independent SQL.

- a deletion of chosen items erases those columns, keeps the rows (a bank card in an order under a legal
  hold goes to the vault and leaves the order and its invoices in place), withdraws only the consents of
  what it deletes (C6) and tells only the recipients who received those items (R13);
- an R13 e-mail counts as "notified" only once delivered, "queued" before (R11);
- a request for a subject the app does not hold is refused with a reason;
- a store that cannot be reached gives a Chinese message naming the store and a non-zero exit.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests import test_rights_service as rights_tests
from tests.test_notify import SmtpServer
from tests.test_rights_service import MAP, TENANT, Env, _verified
from yinsi.domain.rights import RequestType, State
from yinsi.notify.smtp import SmtpEmailChannel
from yinsi.rights.service import RequestError, RightsService

pytestmark = pytest.mark.usefixtures("isolated_env")

env = rights_tests.env  # the demo app with the 2022 policy published, on each database

CARD_DIALOG = {"necessity": "提现时核验银行卡", "impact": "泄露可能导致资金损失"}


def _orders(e: Env) -> list[dict[str, Any]]:
    with e.engine.connect() as conn:
        return [dict(r) for r in conn.execute(text("SELECT * FROM orders WHERE agent_id = :a ORDER BY id"),
                                              {"a": e.agent}).mappings()]


def _invoices(e: Env) -> int:
    with e.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM invoices i JOIN orders o ON o.id = i.order_id "
                                     "WHERE o.agent_id = :a"), {"a": e.agent}).scalar() or 0)


def test_deleting_chosen_items_erases_them_their_consents_and_tells_their_recipients(env: Env) -> None:
    e = env
    with e.engine.begin() as conn:  # every order of the agent paid by card
        conn.execute(text("UPDATE orders SET pay_card = '622202*********1234' WHERE agent_id = :a"), {"a": e.agent})
    orders, invoices = _orders(e), _invoices(e)
    assert orders and invoices
    smtp = SmtpServer()
    smtp.start()
    svc = RightsService(e.url, datamaps={TENANT: e.dm}, store_urls=e.urls,
                        channels={"email": SmtpEmailChannel("127.0.0.1", smtp.port, "privacy@wlk.example", timeout=5)})
    try:
        subject = str(e.agent)
        rights_tests._share_with_payment(svc, subject)  # transaction.amount to payment_institutions
        cs = svc.consents
        cs.record_consent(TENANT, subject, "feature:withdrawal")
        cs.record_consent(TENANT, subject, "item:withdrawal:property.bank_card", disclosures=CARD_DIALOG)
        cs.record_consent(TENANT, subject, "recipient:withdrawal_payment_institution",
                          disclosures={"recipient_contact": "95188", "method": "接口传输"})
        card = cs.check(TENANT, subject, "provide", feature="withdrawal", items=["property.bank_card"],
                        recipient="withdrawal_payment_institution")
        assert card.allowed, card.explain()
        cs.flush()
        rid = _verified(svc, subject, RequestType.DELETION, details={"items": ["property.bank_card"]})
        assert svc.run(TENANT, rid) is State.COMPLETED
        view = svc.show(TENANT, rid)
        holds = svc.holds(TENANT, rid)
        consents = {k: v.status.value for k, v in cs.state(TENANT, subject).consents.items()}
        # R11: queued until the outbox delivers it, then notified
        assert view.result is not None
        assert view.result["recipients_queued"] == ["withdrawal_payment_institution"]
        assert view.result["recipients_notified"] == []
        svc.deliver(TENANT)
        delivered = svc.show(TENANT, rid).result
    finally:
        svc.close()
        smtp.stop()
    # the card is gone from the account and from every order; the orders and their invoices stay
    after = _orders(e)
    assert e.agent_row()["bank_card"] is None and e.agent_row()["phone"] is not None
    assert [o["id"] for o in after] == [o["id"] for o in orders] and all(o["pay_card"] is None for o in after)
    assert [{k: v for k, v in o.items() if k != "pay_card"} for o in after] == \
        [{k: v for k, v in o.items() if k != "pay_card"} for o in orders]
    assert _invoices(e) == invoices
    # the order's card is kept in the vault under the e-commerce law's hold, once per order
    assert sorted(h.source_key for h in holds) == sorted(f"orders:id={o['id']}" for o in orders)
    # C6: only the consents of what was deleted end (no ground was stated)
    assert consents["item:withdrawal:property.bank_card"] == "withdrawn"
    assert {k: v for k, v in consents.items() if k != "item:withdrawal:property.bank_card"} == \
        {k: "active" for k in consents if k != "item:withdrawal:property.bank_card"}
    # R13: the recipient that received the card, not the one that received only amounts
    assert len(smtp.received) == 1 and "privacy-deletion@withdraw-pay.example" in smtp.received[0][0]
    assert delivered is not None and delivered["recipients_notified"] == ["withdrawal_payment_institution"]
    assert delivered["recipients_queued"] == []


def test_a_request_for_a_subject_the_app_does_not_hold_is_refused(env: Env) -> None:
    e = env
    with e.service() as svc:
        with pytest.raises(RequestError, match="没有该主体"):
            svc.submit(TENANT, "987654321", RequestType.COPY)
        with e.engine.connect() as conn:
            ip = conn.execute(text("SELECT ip FROM ip_logs ORDER BY ip")).scalars().first()
        rid = _verified(svc, ip, RequestType.COPY, subject_kind="visitor")
        with e.engine.begin() as conn:  # the app's retention sweep removed the visitor's logs in between
            conn.execute(text("DELETE FROM ip_logs WHERE ip = :ip"), {"ip": ip})
        assert svc.run(TENANT, rid) is State.REFUSED
        view = svc.show(TENANT, rid)
    assert view.refusal is not None and "没有该主体" in view.refusal
    assert view.state is State.REFUSED and view.result is None
    assert not (svc.exports_dir / TENANT / f"{rid}.zip.enc").exists()  # no empty package


def test_a_store_that_cannot_be_reached_is_named_in_chinese_with_a_non_zero_exit(env: Env) -> None:
    from yinsi.cli.main import app

    e = env
    with e.service() as svc:
        rid = _verified(svc, str(e.agent), RequestType.COPY)
        unverified = svc.submit(TENANT, str(e.agent), RequestType.COPY)
    environ = {"YINSI_DATABASE_URL": e.url, "YINSI_DATAMAP": str(MAP), "YINSI_SMTP_PORT": "1",
               "YINSI_STORES": "app_db=postgresql+psycopg://nobody:secret@127.0.0.1:1/none,cache=redis://127.0.0.1:1/0"}
    runner = CliRunner()
    with RightsService(e.url, datamaps={TENANT: e.dm}, store_urls={"app_db": "postgresql+psycopg://nobody:secret@"
                                                                   "127.0.0.1:1/none"}, channels={}) as svc, \
            pytest.raises(RequestError, match="无法连接存储 app_db（微聊客业务库）"):
        svc.submit(TENANT, str(e.agent), RequestType.COPY)  # intake looks for the subject's row
    for args in (["request", "verify", TENANT, unverified, "--send", "sms"],):
        out = runner.invoke(app, args, env=environ)
        text_out = out.output
        assert out.exit_code == 1, (args, text_out)
        assert "无法连接存储 app_db（微聊客业务库）" in text_out, text_out
        assert "Traceback" not in text_out and "secret" not in text_out and str(e.phones[e.agent]) not in text_out
    down = {"app_db": "postgresql+psycopg://nobody:secret@127.0.0.1:1/none", "cache": "redis://127.0.0.1:1/0"}
    with RightsService(e.url, datamaps={TENANT: e.dm}, store_urls=down, channels={}) as svc:
        with pytest.raises(RequestError, match="无法连接存储 app_db（微聊客业务库）") as failed:
            svc.run(TENANT, rid)
        view = svc.show(TENANT, rid)
    assert "secret" not in str(failed.value)
    assert view.state is State.ERROR and "无法连接存储 app_db" in str(view.result)


def test_a_hold_counts_from_each_rows_own_date(env: Env) -> None:
    """orders held 3 years from created_at (the map's legal_hold.date_column): an order past its hold is
    deleted at erasure, a recent one goes to the vault until its own date + 1095 days."""
    from datetime import UTC, date, datetime, timedelta

    from yinsi.datamap_io import parse_datamap, with_key_prefixes

    e = env
    raw = MAP.read_text(encoding="utf-8").replace(
        "          min_days: 1095\n", "          min_days: 1095\n          date_column: created_at\n", 1)
    dm = with_key_prefixes(parse_datamap(raw, str(MAP)).datamap, {"cache": e.prefix})
    orders = _orders(e)
    assert len(orders) >= 2
    old, recent = orders[0]["id"], orders[1]["id"]
    recent_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(days=400)
    with e.engine.begin() as conn:
        conn.execute(text("UPDATE orders SET created_at = :t WHERE agent_id = :a"),
                     {"t": datetime(2020, 1, 2, 10, 0), "a": e.agent})
        conn.execute(text("UPDATE orders SET created_at = :t WHERE id = :o"), {"t": recent_at, "o": recent})
    with RightsService(e.url, datamaps={TENANT: dm}, store_urls=e.urls, channels={}) as svc:
        rid = _verified(svc, str(e.agent), RequestType.DELETION, details={"ground": "consent_withdrawn"})
        assert svc.run(TENANT, rid) is State.WAITING_MANUAL  # automatic locations erased and read back
        held = [h for h in svc.holds(TENANT, rid) if h.location.startswith("app_db.orders")]
    assert _orders(e) == []  # none left in the app
    assert [(h.source_key, h.hold_until) for h in held] == [(f"orders:id={recent}",
                                                             recent_at.date() + timedelta(days=1095))]
    assert all(h.source_key != f"orders:id={old}" for h in held) and held[0].hold_until > date.today()
