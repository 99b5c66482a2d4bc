"""The privacy center in a real browser (Debian's chromium under Playwright) against ``yinsi serve --demo``:
a person logs in with the code from the development SMS outbox, withdraws a separate consent (the app's gate
refuses afterwards), asks for a copy that a member of staff completes and downloads it, cancels the account
once the prerequisite is met; every page works without JavaScript, passes axe-core without serious or
critical violations, and is photographed at 360 and 1280 px for docs/privacy-center.md."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web_browser import Demo, check_accessibility, chromium, login_with_code, screenshot, start_demo

__all__ = ["chromium"]

TENANT = "weiliaoke"
BASE = f"/privacy/{TENANT}"
LOCATION = "item:customer_chat:location.precise"
ASK_LOCATION = {"action": "collect", "feature": "customer_chat", "items": ["location.precise"], "device": "phone-1"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, chromium: Any) -> Iterator[Demo]:
    d = start_demo(tmp_path_factory.mktemp("web-privacy"))
    try:
        yield d
    finally:
        d.server.stop()


@pytest.fixture(scope="module")
def consented(demo: Demo) -> Demo:
    """The demo person accepted the policy and gave the separate consent to precise location in the app."""
    agent = demo.agent
    for body in ({"subject": agent, "scope": "policy"},
                 {"subject": agent, "scope": LOCATION, "disclosures": {"necessity": "向客户发送您所在楼盘的位置",
                                                                        "impact": "位置信息泄露可能暴露您的行踪"}}):
        r = demo.app_call("POST", "/api/v1/consents", body)
        assert r.status_code == 201, r.text
    r = demo.app_call("POST", "/api/v1/permissions", {"subject": agent, "device": "phone-1", "permission": "location",
                                                      "event": "granted", "feature": "customer_chat"})
    assert r.status_code == 201, r.text
    assert demo.app_call("POST", "/api/v1/gate/check", {"subject": agent, **ASK_LOCATION}).json()["allowed"] is True
    return demo


def new_page(chromium: Any, **options: Any) -> Any:
    ctx = chromium.new_context(locale="zh-CN", accept_downloads=True, **options)
    return ctx.new_page()


def test_withdrawing_a_separate_consent_makes_the_gate_refuse(chromium: Any, consented: Demo) -> None:
    demo = consented
    page = new_page(chromium)
    try:
        login_with_code(page, demo, demo.agent)
        page.get_by_role("link", name="我的同意").first.click()
        page.locator(f"a[href$='scope={LOCATION.replace(':', '%3A')}']").click()
        assert "将停止的处理" in page.content()
        page.get_by_role("button", name="确认撤回").click()
        page.get_by_role("heading", name="已撤回").wait_for()
        statement = page.locator("main .notice").inner_text()
        assert "停止" in statement and "不等于删除个人信息或注销账号" in statement
    finally:
        page.context.close()
    decision = demo.app_call("POST", "/api/v1/gate/check", {"subject": demo.agent, **ASK_LOCATION}).json()
    assert decision["allowed"] is False, decision
    consents = demo.app_call("GET", f"/api/v1/subjects/{demo.agent}/state").json()
    assert LOCATION in str(consents)


def test_a_copy_request_completed_by_staff_is_downloaded(chromium: Any, demo: Demo) -> None:
    page = new_page(chromium)
    try:
        login_with_code(page, demo, "2")
        page.goto(f"{demo.url}{BASE}/rights/copy")
        page.get_by_role("button", name="提交复制请求").click()
        page.wait_for_url("**/requests/*?done=submitted")
        rid = page.url.split("/requests/")[1].split("?")[0]
        assert "身份已核验" in page.content() or "身份已通过本次登录核验" in page.content()
        staff = demo.staff_client("dpo")
        try:
            state = staff.post(f"/api/v1/staff/requests/{rid}/run").json()["state"]
            for _ in range(20):
                if state != "waiting_manual":
                    break
                r = staff.post(f"/api/v1/staff/requests/{rid}/complete",
                               json={"note": "已按人工步骤调取并核对副本，工单 WEB-1"})
                assert r.status_code == 200, r.text
                state = r.json()["state"]
            assert state == "completed", state
        finally:
            staff.close()
        page.reload()
        assert "已完成" in page.locator("main").inner_text()
        with page.expect_download() as info:
            page.get_by_role("link", name="下载个人信息副本（zip）").click()
        data = Path(info.value.path()).read_bytes()
        assert zipfile.ZipFile(io.BytesIO(data)).namelist()
        assert "12377.cn" in page.locator("main").inner_text()
        assert page.get_by_role("link", name="https://www.12377.cn").count() == 1
    finally:
        page.context.close()


PAGES = {
    "home": "/", "policy": "/policy", "versions": "/policy/versions", "changes": "/policy/changes?old=2020-06-07&new=2022-08-04",
    "consents": "/consents", "withdraw-all": "/consents/withdraw?scope=policy", "permissions": "/permissions",
    "lists": "/lists", "rights": "/rights", "right-deletion": "/rights/deletion", "right-correction": "/rights/correction",
    "cancel": "/cancel", "renew": "/renew",
}


def test_every_page_works_without_javascript(chromium: Any, demo: Demo) -> None:
    page = new_page(chromium, java_script_enabled=False)
    try:
        login_with_code(page, demo, "3")
        for path in PAGES.values():
            response = page.goto(f"{demo.url}{BASE}{path}")
            assert response is not None and response.status == 200, path
            assert page.locator("h1").count() == 1, path
        # a complaint, then withdrawing it, with forms only
        page.goto(f"{demo.url}{BASE}/rights/complaint")
        page.get_by_label("投诉内容").fill("客服电话一直无人接听")
        page.get_by_role("button", name="提交投诉请求").click()
        page.wait_for_url("**/requests/*?done=submitted")
        page.get_by_role("button", name="撤回此请求").click()
        page.wait_for_url("**?done=withdrawn")
        assert "申请人撤回" in page.locator("main").inner_text() or "已撤回" in page.locator("main").inner_text()
        # a deletion with its ground
        page.goto(f"{demo.url}{BASE}/rights/deletion")
        page.get_by_label("个人撤回同意").check()
        page.get_by_role("button", name="提交删除请求").click()
        page.wait_for_url("**/requests/*?done=submitted")
        # a form without its CSRF token is refused
        page.goto(f"{demo.url}{BASE}/")
        status = page.request.post(f"{demo.url}{BASE}/consents/withdraw", form={"scope": "policy"}).status
        assert status == 403
        page.get_by_role("button", name="退出登录").click()
        page.wait_for_url("**/login?done=logged_out")
        response = page.goto(f"{demo.url}{BASE}/consents")
        assert response is not None and "/login" in page.url
    finally:
        page.context.close()


def seed_person(demo: Demo, agent: str) -> None:
    """What the app records for a person who uses it: consents, a permission, decisions of its gate (the 双清单)
    and a request from the app's own pages."""
    disclosures = {"necessity": "向客户发送您所在楼盘的位置", "impact": "位置信息泄露可能暴露您的行踪"}
    for body in ({"subject": agent, "scope": "policy"}, {"subject": agent, "scope": "feature:marketing"},
                 {"subject": agent, "scope": LOCATION, "disclosures": disclosures}):
        assert demo.app_call("POST", "/api/v1/consents", body).status_code == 201
    demo.app_call("POST", "/api/v1/permissions", {"subject": agent, "device": "phone-1", "permission": "location",
                                                  "event": "granted", "feature": "customer_chat"})
    batch = [{"subject": agent, **ASK_LOCATION},
             {"subject": agent, "action": "use", "feature": "register_login", "items": ["contact.mobile"]},
             {"subject": agent, "action": "collect", "feature": "marketing", "items": ["basic.name"]}]
    assert demo.app_call("POST", "/api/v1/gate/check", {"batch": batch}).status_code == 200
    assert demo.app_call("POST", "/api/v1/requests", {"subject": agent, "type": "access"}).status_code == 201


def test_every_page_is_accessible_and_photographed(chromium: Any, demo: Demo) -> None:
    seed_person(demo, "4")
    ctx = chromium.new_context(locale="zh-CN", bypass_csp=True)
    page = ctx.new_page()
    try:
        page.goto(f"{demo.url}{BASE}/login")
        problems = {"login": check_accessibility(page)}
        screenshot(chromium.new_context, f"{BASE}/login", "privacy-login", demo, None)
        login_with_code(page, demo, "4")
        state = ctx.storage_state()
        for name, path in PAGES.items():
            page.goto(f"{demo.url}{BASE}{path}")
            problems[name] = check_accessibility(page)
        page.goto(f"{demo.url}{BASE}/rights")
        req = page.locator("main table a").first.get_attribute("href")  # the access request the app took in
        assert req is not None
        page.goto(demo.url + req)
        problems["request"] = check_accessibility(page)
        screenshot(chromium.new_context, req, "privacy-request", demo, state)
        for name in ("home", "policy", "consents", "withdraw-all", "lists", "rights", "changes", "cancel"):
            screenshot(chromium.new_context, f"{BASE}{PAGES[name]}", f"privacy-{name}", demo, state)
    finally:
        ctx.close()
    assert {k: v for k, v in problems.items() if v} == {}


PREREQUISITE = '''  prerequisites:
    - description: 确定注销前，须在“我的-头像或姓名-楼盘名称-解除绑定”将楼盘解绑
      source: {section: "七、(四)注销账号", quote: "您该账户内的所有信息将被清空"}
'''


def publish_with_prerequisite(demo: Demo, tmp: Path) -> None:
    """A new version of the 2022 policy that states the 2020 version's prerequisite (unbind every property)."""
    import subprocess
    import sys

    from tests.api_world import ROOT, serve_env

    text = (ROOT / "policies" / "weiliaoke-2022.yaml").read_text(encoding="utf-8")
    assert text.count("  prerequisites: []\n") == 1
    text = text.replace('  label: "2022-08-04"', '  label: "2022-08-04-b"').replace("  prerequisites: []\n", PREREQUISITE)
    marketing = "      - 向用户支付现金时代缴税款\n"
    assert text.count(marketing) == 1  # and a new purpose of the marketing function: a major change (PIPL 14)
    text = text.replace(marketing, marketing + "      - 向合作商户推荐您参加其营销活动\n")
    path = tmp / "weiliaoke-2022-b.yaml"
    path.write_text(text, encoding="utf-8")
    # the version's effective date (2022) is long past, so no notice could arrive before it: published without
    # scheduling notices (publishing with notices refuses that, N7/C5; see tests/test_policy_notices.py)
    done = subprocess.run([sys.executable, "-m", "yinsi.cli.main", "policy", "publish", str(path), "--no-notify"],
                          cwd=ROOT,
                          env=serve_env(YINSI_DATA_DIR=str(demo.data)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def unbind_properties(demo: Demo, agent: str) -> None:
    """What the app does when the person unbinds their properties (我的-头像或姓名-楼盘名称-解除绑定)."""
    import sqlite3

    with sqlite3.connect(demo.data / "demo-app.db") as conn:
        conn.execute("DELETE FROM property_bindings WHERE agent_id = ?", (int(agent),))


MARKETING = {"action": "collect", "feature": "marketing", "items": ["basic.name"]}


def test_a_major_change_then_cancelling_the_account_once_the_prerequisite_is_met(chromium: Any, tmp_path: Path) -> None:
    demo = start_demo(tmp_path, YINSI_GATE_POLICY_TTL="0", YINSI_GATE_STATE_TTL="0")
    try:
        for scope in ("policy", "feature:marketing"):  # agent 8 uses the marketing function under 2022-08-04
            assert demo.app_call("POST", "/api/v1/consents", {"subject": "8", "scope": scope}).status_code == 201
        assert demo.app_call("POST", "/api/v1/gate/check", {"subject": "8", **MARKETING}).json()["allowed"] is True
        publish_with_prerequisite(demo, tmp_path)
        assert demo.app_call("POST", "/api/v1/gate/check", {"subject": "8", **MARKETING}).json()["allowed"] is False
        renew = new_page(chromium, java_script_enabled=False)
        try:
            login_with_code(renew, demo, "8")
            assert "需要您重新确认" in renew.locator("main").inner_text()
            renew.get_by_role("link", name="查看变更内容并重新同意").click()
            main = renew.locator("main").inner_text()
            assert "营销活动" in main and "变更了什么" in main
            buttons = renew.get_by_role("button", name="我已阅读变更，重新同意")
            names = [b.inner_text() for b in buttons.all()]
            assert any("营销活动" in n for n in names) and any("隐私政策" in n for n in names), names
            for _ in names:  # the policy consent no longer covers marketing either: both are renewed
                buttons.first.click()
                renew.wait_for_url("**/renew?done=renewed")
            assert "没有需要您重新同意的事项" in renew.locator("main").inner_text()
        finally:
            renew.context.close()
        assert demo.app_call("POST", "/api/v1/gate/check", {"subject": "8", **MARKETING}).json()["allowed"] is True
        agent = next(a for a in map(str, range(1, 21)) if _bindings(demo, a))
        page = new_page(chromium, java_script_enabled=False)
        try:
            login_with_code(page, demo, agent)
            page.goto(f"{demo.url}{BASE}/cancel")
            main = page.locator("main")
            assert "楼盘解绑" in main.inner_text() and "暂不能注销" in main.inner_text()
            assert page.get_by_role("button", name="申请注销账号").count() == 0
            assert "不可撤回" in main.inner_text()
            unbind_properties(demo, agent)
            page.reload()
            assert "暂不能注销" not in main.inner_text()
            page.get_by_role("button", name="申请注销账号").click()
            page.wait_for_url("**/requests/*")
            rid = page.url.split("/requests/")[1].split("?")[0]
            token = page.locator("input[name=csrf]").first.get_attribute("value")
            unacknowledged = page.request.post(f"{page.url}/confirm", form={"csrf": token or ""})
            assert unacknowledged.status == 400 and "请先勾选确认" in unacknowledged.text()
            page.get_by_label("我已了解：注销后不可撤回").check()
            page.get_by_role("button", name="确认注销账号").click()
            page.wait_for_url("**?done=confirmed")
            assert "已确认注销（不可撤回）" in main.inner_text() and page.get_by_role("button", name="撤回此请求").count() == 0
            staff = demo.staff_client("dpo")
            try:
                r = staff.post(f"/api/v1/staff/requests/{rid}/run")
                assert r.status_code == 200, r.text
                assert r.json()["state"] in ("completed", "waiting_manual", "in_progress")
            finally:
                staff.close()
            page.reload()  # the progress, or (once done) the session is over
            assert "处理进度" in main.inner_text() or "/login" in page.url
        finally:
            page.context.close()
    finally:
        demo.server.stop()


def _bindings(demo: Demo, agent: str) -> int:
    import sqlite3

    with sqlite3.connect(demo.data / "demo-app.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM property_bindings WHERE agent_id = ?", (int(agent),)).fetchone()[0])


def hs256_secret(demo: Demo, tmp: Path) -> str:
    """The tenant's deep-link secret, set by the administrator through the CLI (printed once)."""
    import re
    import subprocess
    import sys

    import pyotp

    from tests.api_world import ROOT, serve_env

    password, secret = demo.staff["admin"]
    env = serve_env(YINSI_DATA_DIR=str(demo.data), XDG_CONFIG_HOME=str(tmp / "xdg"))
    cli = [sys.executable, "-m", "yinsi.cli.main"]
    done = subprocess.run([*cli, "login", TENANT, "admin", "--password-stdin", "--totp", pyotp.TOTP(secret).now()],
                          input=password + "\n", cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([*cli, "applink", "set", TENANT, "--generate-hs256"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1].strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", last), "the secret is printed last"
    return last


def deep_link_token(secret: str, subject: str) -> str:
    """What the app's back end signs for its logged-in user (docs/auth.md)."""
    import time
    import uuid

    from joserfc import jwt
    from joserfc.jwk import OctKey

    now = int(time.time())
    claims = {"iss": TENANT, "aud": f"yinsi:{TENANT}", "sub": subject, "iat": now, "exp": now + 300,
              "jti": uuid.uuid4().hex}
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(secret.encode("ascii")))


def test_the_apps_deep_link_starts_a_new_session_and_leaves_no_token_in_the_address(
        chromium: Any, demo: Demo, tmp_path: Path) -> None:
    import httpx

    secret = hs256_secret(demo, tmp_path)
    page = new_page(chromium, java_script_enabled=False)
    try:
        token = deep_link_token(secret, "6")
        page.goto(f"{demo.url}{BASE}/link?token={token}&to={BASE}/consents")
        assert page.url == f"{demo.url}{BASE}/consents" and page.locator("h1").inner_text() == "我的同意"
        first = next(c["value"] for c in page.context.cookies() if c["name"] == "yinsi_session")
        again = page.goto(f"{demo.url}{BASE}/link?token={token}")  # a token is used once
        assert again is not None and again.status == 401 and "重新进入" in page.locator("main").inner_text()
        page.goto(f"{demo.url}{BASE}/link?token={deep_link_token(secret, '6')}")
        assert page.url == f"{demo.url}{BASE}/"
        second = next(c["value"] for c in page.context.cookies() if c["name"] == "yinsi_session")
        assert second != first  # a new session at every log-in, and the old one is over
        me = httpx.get(f"{demo.url}/api/v1/me", headers={"Authorization": f"Bearer {first}"})
        assert me.status_code == 401
        assert httpx.get(f"{demo.url}/api/v1/me", headers={"Authorization": f"Bearer {second}"}).status_code == 200
        response = page.goto(f"{demo.url}{BASE}/")
        assert response is not None
        headers = response.headers
        assert "default-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"
    finally:
        page.context.close()
