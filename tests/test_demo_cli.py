"""``yinsi demo``, the README's main job, run as a new user runs it: a real process, a fresh data directory.

It must finish, and what it prints must be what happened: the gate's refusals, the restriction, and the
cancellation that an independent SQL check (printed by the demo, read here from the demo app's database)
shows as erased.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.staff_login import environment
from tests.test_rights_cli import Cli, make_cli, out
from tests.test_stores import REDIS_URL, need_redis, redis_client


def _demo_login(data_dir: Path, staff_id: str) -> str:
    """A session token of one of the demo's staff accounts (password and TOTP, as the demo logs in)."""
    from yinsi.auth.demo_staff import demo_login, ensure_demo_staff
    from yinsi.auth.staff import StaffAuthService

    with environment({"YINSI_DATA_DIR": str(data_dir), "YINSI_DATABASE_URL": None, "YINSI_MASTER_KEY": None,
                      "YINSI_MASTER_KEY_FILE": None}), StaffAuthService() as auth:
        token, _ = demo_login(auth, ensure_demo_staff(auth, "weiliaoke", data_dir), staff_id)
    return token


def test_the_demo_runs_end_to_end_and_its_claims_hold(tmp_path: Path) -> None:
    client, no_redis = redis_client()
    need_redis(no_redis)
    before = {k for k in client.scan_iter(match="yinsi-demo-*", count=1000)}
    cli = make_cli(tmp_path, {"WEILIAOKE_REDIS_URL": REDIS_URL})
    p = cli("demo")
    text = out(p)
    assert "Traceback" not in text
    assert "六、权利请求" in text
    assert "此前闸门允许使用其手机号营销，此后拒绝" in text and "PIPL 44" in text  # the restriction, enforced
    assert "status=cancelled" in text and "业务表中剩余行 0" in text
    # staff steps are done by real demo accounts that logged in (password and TOTP), named in the audit log
    assert "以真实账号登录" in text and "demo-po" in text
    auditor = _demo_login(tmp_path / "yinsi-data", "demo-audit")  # the log is read by the demo's auditor
    audit = Cli({**cli.env, "YINSI_STAFF_TOKEN": auditor}, cli.cwd)(
        "audit", "show", "--tenant", "weiliaoke", "--limit", "500", "--json")
    actors = {e["actor"] for e in json.loads(audit.stdout)}
    assert {"demo-po", "demo-cs"} <= actors and "客服小王" not in actors
    # what the demo printed about the cancelled agent holds in its database
    app_db = tmp_path / "yinsi-data" / "demo-app.db"
    con = sqlite3.connect(app_db)
    try:
        cancelled = con.execute("SELECT id, phone, name, id_number FROM agents WHERE status = 'cancelled'").fetchall()
        assert len(cancelled) == 1 and cancelled[0][1:] == (None, None, None)
        agent = cancelled[0][0]
        for table in ("property_bindings", "posts", "orders", "chat_messages", "devices", "login_logs"):
            assert con.execute(f"SELECT count(*) FROM {table} WHERE agent_id = ?", (agent,)).fetchone()[0] == 0
    finally:
        con.close()
    assert list((tmp_path / "out").glob("copy-*.zip")), "the copy package is handed over as a zip"
    # run again on the same data directory: the demo accounts log in again
    again = out(cli("demo"))
    assert "以真实账号登录" in again and "业务表中剩余行 0" in again and "Traceback" not in again
    after = {k for k in client.scan_iter(match="yinsi-demo-*", count=1000)}
    assert after <= before, "the demo removes the Redis keys it created"
    client.close()
