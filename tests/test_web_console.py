"""The staff console (/console/) in a real browser (Debian's chromium under Playwright) against
``yinsi serve --demo``: a member of staff logs in with password and TOTP (the code computed with pyotp from
the demo's credentials file), works the queue (verifies a copy request's requester in person, runs it and
completes its manual steps with evidence attached), is refused an unmask without a reason, is refused
approving their own export (four-eyes) while a second privacy officer may; customer service cannot reach
the administrator's pages (403, also for a forged POST); the administrator creates, rotates and revokes an
app key (shown once) and publishes a declaration after seeing its lint findings and diff; the security
officer acknowledges an alert, the auditor verifies the audit log. Every console page passes axe-core
without serious or critical violations and is photographed at 360 and 1280 px for docs/console.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.api_world import ROOT, serve_env
from tests.staff_login import environment
from tests.web_browser import Demo, check_accessibility, chromium, screenshot, start_demo

__all__ = ["chromium"]

TENANT = "weiliaoke"
PASSWORD = "console-口令-0123"
#: Accounts the administrator adds to the demo's administrator and privacy officer (dpo).
ACCOUNTS = {"cs1": ("演示客服", "customer_service"), "dpo2": ("演示第二负责人", "privacy_officer"),
            "sec1": ("演示安全负责人", "security_officer"), "aud1": ("演示审计员", "auditor")}


@dataclass
class Console:
    demo: Demo
    secrets: dict[str, str] = field(default_factory=dict)
    states: dict[str, Any] = field(default_factory=dict)  # staff id → the browser's storage state once logged in
    admin_token: str = ""

    @property
    def url(self) -> str:
        return self.demo.url


def _credentials(demo: Demo, staff_id: str) -> tuple[str, str]:
    if staff_id in demo.staff:
        return demo.staff[staff_id]
    raise KeyError(staff_id)


def fill_login(page: Any, url: str, staff_id: str, password: str, totp: str | None) -> None:
    page.goto(f"{url}/console/login")
    page.get_by_label("租户标识").fill(TENANT)
    page.get_by_label("工作人员账号").fill(staff_id)
    page.get_by_label("口令", exact=True).fill(password)
    if totp is not None:
        page.get_by_label("动态口令").fill(totp)
    page.get_by_role("button", name="登录").click()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, chromium: Any) -> Iterator[Console]:
    """The demo server; the administrator (logged in here, with the TOTP step the demo did not use) adds customer
    service, a second privacy officer, a security officer and an auditor; each member of staff but the
    administrator then logs in once through the console's form (a TOTP code is accepted once)."""
    from yinsi.auth.staff import StaffAuthService
    from yinsi.protect.identifiers import store_identifier
    from yinsi.protect.keys import KeyRing

    demo = start_demo(tmp_path_factory.mktemp("web-console"))
    c = Console(demo)
    try:
        r = demo.app_call("POST", "/api/v1/subjects", {"subject": demo.agent, "birth_date": "1990-05-01"})
        assert r.status_code in (200, 201), r.text
        url = f"sqlite:///{(demo.data / 'yinsi.db').as_posix()}"
        with environment({"YINSI_DATA_DIR": str(demo.data), "YINSI_DATABASE_URL": None}):
            with KeyRing.open(url) as ring:  # the person's phone, kept as Yinsi keeps identifiers (encrypted)
                store_identifier(ring, TENANT, demo.agent, "mobile_phone", demo.phone)
            with StaffAuthService(url) as auth:
                password, secret = _credentials(demo, "admin")
                c.admin_token, admin = auth.login(TENANT, "admin", password, pyotp.TOTP(secret).now())
                for staff_id, (name, role) in ACCOUNTS.items():
                    c.secrets[staff_id] = auth.create_account(admin, staff_id, name, [role], PASSWORD)
        c.secrets["dpo"] = demo.staff["dpo"][1]
        for staff_id in ("dpo", "cs1", "dpo2", "sec1", "aud1"):
            password = demo.staff["dpo"][0] if staff_id == "dpo" else PASSWORD
            ctx = chromium.new_context(locale="zh-CN")
            try:
                page = ctx.new_page()
                fill_login(page, demo.url, staff_id, password, pyotp.TOTP(c.secrets[staff_id]).now())
                page.wait_for_url(f"{demo.url}/console/")
                c.states[staff_id] = ctx.storage_state()
            finally:
                ctx.close()
        yield c
    finally:
        demo.server.stop()


def as_staff(chromium: Any, c: Console, staff_id: str, **options: Any) -> Any:
    """A page in a browser context holding ``staff_id``'s console session."""
    if staff_id == "admin":
        ctx = chromium.new_context(locale="zh-CN", **options)
        ctx.add_cookies([{"name": "yinsi_staff", "value": c.admin_token, "url": c.url}])
    else:
        ctx = chromium.new_context(locale="zh-CN", storage_state=c.states[staff_id], **options)
    return ctx.new_page()


def notice(page: Any) -> str:
    return str(page.locator("main .notice").first.inner_text())


def new_request(c: Console, kind: str = "copy") -> str:
    r = c.demo.app_call("POST", "/api/v1/requests", {"subject": c.demo.agent, "type": kind})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


# --- log-in ------------------------------------------------------------------------------------------------------
def test_login_needs_the_second_factor_and_answers_failures_alike(chromium: Any, console: Console) -> None:
    page = chromium.new_context(locale="zh-CN").new_page()
    try:
        password = console.demo.staff["dpo"][0]
        fill_login(page, console.url, "dpo", password, None)
        assert "动态口令" in notice(page)
        assert page.get_by_label("工作人员账号").input_value() == "dpo"  # the form keeps what is not secret
        assert page.get_by_label("口令", exact=True).input_value() == ""
        fill_login(page, console.url, "dpo", "not-the-password", "000000")
        assert "登录失败" in notice(page) and "锁定" in notice(page)  # one answer for every failure
        page.goto(f"{console.url}/console/requests")  # not logged in: to the log-in page
        assert page.url.startswith(f"{console.url}/console/login")
    finally:
        page.context.close()


def test_logout_ends_the_session(chromium: Any, console: Console) -> None:
    """A fresh log-in (a new session id) and its logout: the old cookie no longer opens a page."""
    ctx = chromium.new_context(locale="zh-CN", storage_state=console.states["aud1"])
    page = ctx.new_page()
    try:
        page.goto(f"{console.url}/console/")
        old = next(ck["value"] for ck in ctx.cookies() if ck["name"] == "yinsi_staff")
        page.get_by_role("button", name="退出登录").click()
        assert "已退出登录" in notice(page)
        other = chromium.new_context(locale="zh-CN")
        other.add_cookies([{"name": "yinsi_staff", "value": old, "url": console.url}])
        p2 = other.new_page()
        p2.goto(f"{console.url}/console/audit")
        assert p2.url.startswith(f"{console.url}/console/login") and "expired=1" in p2.url
        other.close()
    finally:
        ctx.close()
    # log the auditor in again for the tests that follow (the next TOTP step: the current one was used)
    secret = console.secrets["aud1"]
    ctx = chromium.new_context(locale="zh-CN")
    try:
        page = ctx.new_page()
        fill_login(page, console.url, "aud1", PASSWORD, pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30)))
        page.wait_for_url(f"{console.url}/console/")
        console.states["aud1"] = ctx.storage_state()
    finally:
        ctx.close()


# --- the queue and a request's story -------------------------------------------------------------------------------
def test_staff_work_the_queue_and_complete_a_copy_requests_manual_steps(chromium: Any, console: Console) -> None:
    rid = new_request(console)
    page = as_staff(chromium, console, "dpo", java_script_enabled=False)  # the pages need no script
    try:
        page.goto(f"{console.url}/console/")
        assert page.get_by_role("link", name=re.compile("未结请求")).count() == 1
        page.get_by_role("link", name="权利请求", exact=True).first.click()
        page.locator(f"a[href='/console/requests/{rid}']").click()
        assert "待核验身份" in page.locator("dl.request-facts").inner_text()

        page.get_by_label("核验方式").fill("当面核对居民身份证")
        page.get_by_role("button", name="记录已核验").click()
        assert "已记录当面核验身份" in notice(page)
        assert "dpo" in page.locator("ol.history").inner_text()  # recorded against the logged-in member

        page.get_by_role("button", name="执行", exact=True).click()
        assert "等待人工处理" in page.locator("dl.request-facts").inner_text()
        steps = page.locator(".manual-step")
        assert steps.count() == 2

        first = steps.nth(0)
        first.get_by_label("处理结果").fill("已在第三方后台导出核验记录并交付")
        first.get_by_label("凭证编号（选填）").fill("WB-2026-001")
        first.get_by_label("凭证文件（选填）").set_input_files(
            {"name": "回执.png", "mimeType": "image/png", "buffer": b"\x89PNG receipt 13800138000"})
        first.get_by_role("button", name="确认此步骤已完成").click()
        assert "已确认人工步骤" in notice(page)
        assert page.locator(".manual-step").count() == 1

        last = page.locator(".manual-step").first
        last.get_by_label("处理结果").fill("已另存寄送表副本并交付")
        last.get_by_role("button", name="确认此步骤已完成").click()
        assert "已完成" in page.locator("dl.request-facts").inner_text()
        story = page.locator("main").inner_text()
        assert "WB-2026-001" in story and "凭证文件已加密存档" in story and "已完成" in story
    finally:
        page.context.close()
    # the evidence is kept encrypted beside the packages, never in clear
    kept = list((console.demo.data / "exports" / "evidence" / TENANT / rid).glob("*.bin"))
    assert len(kept) == 1 and b"13800138000" not in kept[0].read_bytes()


def test_refusal_names_an_enumerated_ground_and_the_reason(chromium: Any, console: Console) -> None:
    rid = new_request(console, "deletion")
    page = as_staff(chromium, console, "dpo", java_script_enabled=False)
    try:
        page.goto(f"{console.url}/console/requests/{rid}")
        page.get_by_label("告知本人的拒绝理由").fill("该账号涉及尚在进行的诉讼")
        page.get_by_role("button", name="拒绝并告知本人").click()  # no ground chosen: the browser asks first
        assert page.url.endswith(rid)
        page.get_by_label(re.compile("与犯罪侦查")).check()
        page.get_by_role("button", name="拒绝并告知本人").click()
        assert "已拒绝该请求" in notice(page)
        facts = page.locator("dl.request-facts").inner_text()
        assert "已拒绝" in facts and "与犯罪侦查" in facts and "该账号涉及尚在进行的诉讼" in facts
    finally:
        page.context.close()


def test_an_unknown_request_is_not_found(chromium: Any, console: Console) -> None:
    page = as_staff(chromium, console, "dpo")
    try:
        r = page.goto(f"{console.url}/console/requests/00000000-0000-0000-0000-000000000000")
        assert r is not None and r.status == 404
    finally:
        page.context.close()


# --- PI: masked view, unmask with a reason ---------------------------------------------------------------------------
def test_unmask_without_a_reason_is_refused(chromium: Any, console: Console) -> None:
    page = as_staff(chromium, console, "dpo", bypass_csp=True)
    try:
        page.goto(f"{console.url}/console/subjects")
        page.get_by_label("主体标识").fill(console.demo.agent)
        page.get_by_label("事由（选填）").fill("客户来电核实")
        page.get_by_role("button", name="掩码查看").click()
        table = page.locator("table").inner_text()
        assert console.demo.phone not in page.content() and "****" in table
        assert check_accessibility(page) == []

        page.get_by_role("button", name="查看明文").click()  # no reason
        alert = page.locator("[role=alert]").inner_text()
        assert "须说明事由" in alert
        assert console.demo.phone not in page.content()

        page.get_by_label("事由（必填）").fill("电话回访")
        page.get_by_role("button", name="查看明文").click()
        assert console.demo.phone in notice(page)
    finally:
        page.context.close()


# --- four-eyes approvals ----------------------------------------------------------------------------------------------
def test_an_export_is_approved_by_another_person_only(chromium: Any, console: Console) -> None:
    page = as_staff(chromium, console, "dpo")
    try:
        page.goto(f"{console.url}/console/approvals")
        page.get_by_label("事由").fill("配合监管检查")
        page.get_by_role("button", name="提交审批申请").click()
        assert "已提交审批申请" in notice(page)
        page.get_by_role("button", name="批准").first.click()
        assert "不得审批本人提出的申请" in notice(page)
    finally:
        page.context.close()
    page = as_staff(chromium, console, "dpo2")
    try:
        page.goto(f"{console.url}/console/approvals")
        page.get_by_role("button", name="批准").first.click()
        assert "已批准" in notice(page)
        assert "dpo2" in page.locator(".approval").first.inner_text()
    finally:
        page.context.close()


# --- roles: what customer service cannot reach --------------------------------------------------------------------------
ADMIN_PAGES = ["/console/app-keys", "/console/policies/new"]


def test_customer_service_cannot_reach_the_administrators_pages(chromium: Any, console: Console) -> None:
    page = as_staff(chromium, console, "cs1")
    try:
        page.goto(f"{console.url}/console/")
        menu = page.get_by_role("navigation", name="控制台菜单").inner_text()
        assert "权利请求" in menu and "应用密钥" not in menu and "审计日志" not in menu
        for path in [*ADMIN_PAGES, "/console/audit", "/console/alerts"]:
            r = page.goto(console.url + path)
            assert r is not None and r.status == 403, path
            assert "无权" in page.locator("main").inner_text()
        # the form is not shown, and a forged POST with a valid CSRF token is refused by the server too
        page.goto(f"{console.url}/console/")
        token = page.locator("input[name=csrf]").first.input_value()
        forged = page.request.post(f"{console.url}/console/app-keys",
                                   form={"csrf": token, "name": "偷偷创建", "scopes": "gate"}, max_redirects=0)
        assert forged.status == 403
        rid = new_request(console)
        page.goto(f"{console.url}/console/requests/{rid}")
        assert page.get_by_role("button", name="执行", exact=True).count() == 0
        ran = page.request.post(f"{console.url}/console/requests/{rid}/run", form={"csrf": token}, max_redirects=0)
        assert ran.status == 403
        missing = page.request.post(f"{console.url}/console/requests/{rid}/run", form={}, max_redirects=0)
        assert missing.status == 403  # no CSRF token: refused before anything else
    finally:
        page.context.close()


# --- the administrator: app keys and publishing ---------------------------------------------------------------------------
def test_administrator_creates_rotates_and_revokes_an_app_key(chromium: Any, console: Console) -> None:
    page = as_staff(chromium, console, "admin")
    try:
        page.goto(f"{console.url}/console/app-keys")
        page.get_by_label("名称").fill("客服工单系统")
        page.get_by_label(re.compile("权利请求受理")).check()
        page.get_by_role("button", name="创建").click()
        token = page.get_by_label("密钥", exact=True).input_value()
        assert token.startswith("yk_")
        page.goto(f"{console.url}/console/app-keys")
        assert token not in page.content()  # shown once
        row = page.locator("tr", has_text="客服工单系统")
        row.get_by_role("button", name=re.compile("轮换")).click()
        rotated = page.get_by_label("密钥", exact=True).input_value()
        assert rotated.startswith("yk_") and rotated != token
        page.locator("tr", has_text="客服工单系统").get_by_role("button", name=re.compile("吊销")).click()
        assert "已吊销" in notice(page)
        assert "已吊销" in page.locator("tr", has_text="客服工单系统").inner_text()
    finally:
        page.context.close()


def test_administrator_publishes_a_version_after_seeing_lint_findings_and_the_diff(
        chromium: Any, console: Console, tmp_path: Path) -> None:
    text = (ROOT / "policies" / "weiliaoke-2022.yaml").read_text(encoding="utf-8")
    text = text.replace('label: "2022-08-04"', 'label: "2026-12-01"', 1)
    upload = tmp_path / "weiliaoke-2026.yaml"
    upload.write_text(text, encoding="utf-8")
    page = as_staff(chromium, console, "admin", bypass_csp=True)
    try:
        page.goto(f"{console.url}/console/policies")
        page.get_by_role("link", name="发布新版本").click()
        page.get_by_label("声明文件").set_input_files(str(upload))
        page.get_by_role("button", name="检查").click()
        assert check_accessibility(page) == []
        main = page.locator("main")
        assert "版本 2026-12-01" in main.inner_text() and "与当前版本 2022-08-04 相比" in main.inner_text()
        links = page.locator("table.findings a.rule")
        if links.count():
            assert links.first.get_attribute("href", timeout=1000).startswith("/api/v1/rules/")
        page.get_by_role("button", name="发布版本 2026-12-01").click()
        assert "新版本已发布" in notice(page)
        assert page.get_by_role("link", name="2026-12-01").count() == 1
        page.get_by_label("旧版本").select_option("2020-06-07")
        page.get_by_label("新版本").select_option("2026-12-01")
        page.get_by_role("button", name="查看变化").click()
        assert "重大变更" in page.locator("main").inner_text()
    finally:
        page.context.close()
    # published by the member, byte for byte as uploaded
    r = console.demo.app_call("GET", f"/api/v1/tenants/{TENANT}/policy")
    assert r.status_code == 200 and "2026-12-01" in r.text


def test_a_declaration_of_another_tenant_is_not_published_here(chromium: Any, console: Console, tmp_path: Path) -> None:
    upload = tmp_path / "other.yaml"
    upload.write_text((ROOT / "policies" / "jikeanjia-2020.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    page = as_staff(chromium, console, "admin")
    try:
        page.goto(f"{console.url}/console/policies/new")
        page.get_by_label("声明文件").set_input_files(str(upload))
        page.get_by_role("button", name="检查").click()
        assert "不能发布到本租户" in page.locator("[role=alert]").inner_text()
        assert page.get_by_role("button", name=re.compile("发布版本")).count() == 0
    finally:
        page.context.close()


# --- alerts and the audit log ------------------------------------------------------------------------------------------------
def test_security_officer_acknowledges_an_alert_and_the_auditor_verifies_the_log(
        chromium: Any, console: Console, tmp_path: Path) -> None:
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps({"kind": "login_failure", "account": "user-42", "ip": "203.0.113.9",
                                          "time": (start + timedelta(minutes=i)).isoformat()}) + "\n"
                              for i in range(6)), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "yinsi.cli.main", "alerts", "ingest", str(events), "--tenant", TENANT],
                          env=serve_env(YINSI_DATA_DIR=str(console.demo.data)), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    page = as_staff(chromium, console, "sec1")
    try:
        page.goto(f"{console.url}/console/alerts")
        assert "user-42" not in page.content() and "203.0.113.9" not in page.content()
        page.get_by_label(re.compile("处理说明")).first.fill("已锁定该账号")
        page.get_by_role("button", name="确认告警").first.click()
        assert "已确认告警" in notice(page)
    finally:
        page.context.close()
    page = as_staff(chromium, console, "aud1")
    try:
        page.goto(f"{console.url}/console/audit")
        assert "sec1" in page.locator("table.audit").inner_text()
        page.get_by_role("button", name=re.compile("校验审计日志")).click()
        assert "校验通过" in notice(page)
    finally:
        page.context.close()


# --- accessibility and screenshots of every page -------------------------------------------------------------------------------
#: (who, path, screenshot name or None)
PAGES = [
    (None, "/console/login", "console-login"),
    ("dpo", "/console/", "console-dashboard"),
    ("dpo", "/console/requests", "console-queue"),
    ("dpo", "{request}", "console-request"),
    ("dpo", "/console/approvals", "console-approvals"),
    ("dpo", "/console/subjects", None),
    ("dpo", "/console/policies", "console-policies"),
    ("dpo", "/console/policies/2022-08-04", None),
    ("dpo", "/console/policies/diff?old=2020-06-07&new=2022-08-04", "console-policy-diff"),
    ("cs1", "/console/app-keys", "console-forbidden"),
    ("admin", "/console/app-keys", "console-app-keys"),
    ("admin", "/console/policies/new", None),
    ("sec1", "/console/alerts?status=all", "console-alerts"),
    ("aud1", "/console/audit", "console-audit"),
    ("aud1", "/console/audit/verify", None),
]


def test_every_console_page_is_accessible_and_photographed(chromium: Any, console: Console) -> None:
    rid = new_request(console)
    page = as_staff(chromium, console, "dpo")
    try:  # the story photographed is of a request waiting for its manual steps
        page.goto(f"{console.url}/console/requests/{rid}")
        page.get_by_label("核验方式").fill("当面核对居民身份证")
        page.get_by_role("button", name="记录已核验").click()
        page.get_by_role("button", name="执行", exact=True).click()
        assert page.locator(".manual-step").count() == 2
    finally:
        page.context.close()
    problems: dict[str, Any] = {}
    for who, path, name in PAGES:
        path = path.replace("{request}", f"/console/requests/{rid}")
        if who is None:
            page = chromium.new_context(locale="zh-CN", bypass_csp=True).new_page()
        else:
            page = as_staff(chromium, console, who, bypass_csp=True)
        try:
            page.goto(console.url + path)
            assert page.locator("h1").count() == 1, path
            found = check_accessibility(page)
            if found:
                problems[f"{who} {path}"] = found
            if name is not None:
                state = page.context.storage_state()
                screenshot(chromium.new_context, path, name, console.demo, state)
        finally:
            page.context.close()
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)
