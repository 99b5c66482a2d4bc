"""Browser tests of the web pages: Playwright (Python) driving Debian's chromium against a live
``yinsi serve --demo`` on 127.0.0.1 with a free port.

- :func:`chromium` (session fixture): the browser, launched from ``/usr/bin/chromium`` (never a downloaded
  one: ``scripts/setup`` installs Debian's ``chromium`` and ``fonts-noto-cjk``). Without it, or without the
  ``playwright`` package, the tests skip with the reason — and fail when ``YINSI_REQUIRE_SERVICES=1``.
- :class:`Demo` / :func:`start_demo`: the demo server with what its banner printed (app key, phone, staff).
- :func:`check_accessibility`: axe-core (``npm install`` by ``scripts/setup`` into ``.cache/web-test``),
  injected at test time; serious and critical violations fail.
- :func:`screenshot`: a page at 360×740 and at 1280×800, saved under ``docs/screenshots/``.

Use the fixtures in a test module with ``from tests.web_browser import chromium  # noqa: F401``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from tests.api_world import ROOT, LiveServer, serve_env, sms_codes

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AXE = ROOT / ".cache" / "web-test" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORTS = {"360": {"width": 360, "height": 740}, "1280": {"width": 1280, "height": 800}}


def _unavailable(reason: str) -> None:
    if os.environ.get("YINSI_REQUIRE_SERVICES") == "1":
        pytest.fail(f"浏览器测试无法运行：{reason}（YINSI_REQUIRE_SERVICES=1）")
    pytest.skip(f"浏览器测试跳过：{reason}（运行 scripts/setup 安装 Debian 的 chromium 与 fonts-noto-cjk）")


#: One Playwright and one browser per test process: every module that imports the fixture gets its own
#: session-scoped copy of it, and a second ``sync_playwright()`` started while the first runs fails
#: ("Sync API inside the asyncio loop"). The copies share this and the last to finish closes it.
_shared: dict[str, Any] = {"users": 0}


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's chromium under Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("未安装 playwright（pip install -e '.[dev]'）")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} 不存在")
    if _shared["users"] == 0:
        pw = sync_playwright().start()
        _shared["pw"] = pw
        _shared["browser"] = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    _shared["users"] += 1
    try:
        yield _shared["browser"]
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            _shared.pop("browser").close()
            _shared.pop("pw").stop()


@dataclass
class Demo:
    server: LiveServer
    data: Path
    app_key: str
    phone: str
    agent: str
    staff: dict[str, tuple[str, str]]  # staff id → (password, TOTP secret)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def outbox(self) -> Path:
        return self.data / "sms-outbox" / "sms-outbox.jsonl"

    def app_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.request(method, self.url + path, json=body, headers={"Authorization": f"Bearer {self.app_key}"},
                             timeout=30)

    def phone_of(self, agent: str) -> str:
        """The phone on record for a demo agent (each test logs in as its own agent: codes to one phone are
        limited to one a minute)."""
        import sqlite3

        with sqlite3.connect(self.data / "demo-app.db") as conn:
            row = conn.execute("SELECT phone FROM agents WHERE id = ?", (int(agent),)).fetchone()
        return str(row[0])

    def code_after(self, phone: str, before: int, timeout: float = 20) -> str:
        """The newest login code sent to ``phone`` once there are more than ``before``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            codes = sms_codes(self.outbox, phone)
            if len(codes) > before:
                return codes[-1]
            time.sleep(0.05)
        raise AssertionError("no code reached the development SMS outbox")

    def codes(self, phone: str) -> int:
        return len(sms_codes(self.outbox, phone))

    def staff_client(self, staff_id: str = "dpo") -> httpx.Client:
        """An HTTP client logged in as a member of staff (password and the current TOTP code)."""
        password, secret = self.staff[staff_id]
        client = httpx.Client(base_url=self.url, timeout=60)
        body = {"tenant": "weiliaoke", "staff_id": staff_id, "password": password, "totp": pyotp.TOTP(secret).now()}
        r = client.post("/api/v1/auth/staff/login", json=body)
        assert r.status_code == 200, r.text
        return client


def start_demo(tmp: Path, **env: str) -> Demo:
    """``yinsi serve --demo`` in a fresh directory under ``tmp`` (``env``: more environment variables)."""
    data = tmp / "demo"
    server = LiveServer(["--demo", "--data-dir", str(data), "--policies", str(ROOT / "policies")], serve_env(**env),
                        ROOT, tmp / "logs")
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    info = (data / "demo-login.txt").read_text(encoding="utf-8")
    key = re.search(r"yk_\S+", info)
    person = re.search(r"置业顾问 (\d+)，演示手机号 (\d+)", info)
    assert key is not None and person is not None
    staff = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(r"账号 (\w+)，口令 (\S+)，TOTP 密钥 (\w+)", info)}
    return Demo(server, data, key.group(0), person.group(2), person.group(1), staff)


# --- pages -----------------------------------------------------------------------------------------------------
def login_with_code(page: Any, demo: Demo, agent: str, tenant: str = "weiliaoke") -> None:
    """Log in to the privacy center as demo ``agent`` with the code read from the development SMS outbox."""
    phone = demo.phone_of(agent)
    before = demo.codes(phone)
    page.goto(f"{demo.url}/privacy/{tenant}/login")
    page.get_by_label("手机号或电子邮箱").fill(phone)
    page.get_by_role("button", name="获取验证码").click()
    page.get_by_label("验证码").fill(demo.code_after(phone, before))
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{demo.url}/privacy/{tenant}/")


def check_accessibility(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page (the context must bypass the CSP to inject it);
    skipped when axe-core is not installed (``scripts/setup``)."""
    if not AXE.exists():
        _unavailable(f"未找到 axe-core（{AXE.relative_to(ROOT)}；scripts/setup 以 npm 安装）")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def screenshot(context_factory: Any, url_path: str, name: str, demo: Demo, storage_state: Any) -> list[Path]:
    """Save ``url_path`` at both sizes as ``docs/screenshots/<name>-<width>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out = []
    for width, viewport in VIEWPORTS.items():
        ctx = context_factory(viewport=viewport, storage_state=storage_state, locale="zh-CN")
        try:
            page = ctx.new_page()
            page.goto(demo.url + url_path)
            path = SCREENSHOTS / f"{name}-{width}.png"
            page.screenshot(path=str(path), full_page=False)
            out.append(path)
        finally:
            ctx.close()
    return out


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1)
