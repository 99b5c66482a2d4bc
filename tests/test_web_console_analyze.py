"""The console's analyse page: upload a policy text, see the findings marked in it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.test_api_e2e import ADMIN, PO, Server
from tests.test_web_console_http import console_login, csrf, env  # noqa: F401  (fixtures)
from tests.test_web_console_http import server as server

pytestmark = pytest.mark.usefixtures("isolated_env")

POLICY = "示例应用隐私政策\n更新日期：2021年 月 日\n我们会收集您的手机号码<用于>登录。\n"


def as_admin(s: Server) -> TestClient:
    """The administrator's session (a TOTP code is accepted only once, and the setup already used it)."""
    web = TestClient(s.client.app)
    web.cookies.set("yinsi_staff", s.staff_token(ADMIN))
    return web


def test_an_uploaded_policy_is_shown_with_its_findings_marked(server: Server) -> None:
    web = as_admin(server)
    form = web.get("/console/analyze")
    assert form.status_code == 200 and 'href="/console/analyze"' in form.text
    r = web.post("/console/analyze", data={"csrf": csrf(form.text)},
                 files={"policy": ("policy.txt", POLICY.encode("utf-8"), "text/plain")})
    assert r.status_code == 200, r.text
    assert "<mark" in r.text and 'href="#f-1"' in r.text and 'id="f-' in r.text
    assert "2021年 月 日</mark>" in r.text and "N8" in r.text  # the blank date is marked where it is
    assert "&lt;用于&gt;" in r.text and "<用于>" not in r.text  # the text is escaped, never markup
    assert "<style" not in r.text and "<script" not in r.text

    bad = web.post("/console/analyze", data={"csrf": csrf(form.text)},
                   files={"policy": ("policy.exe", b"x", "application/octet-stream")})
    assert bad.status_code == 422 and "不支持的文件类型" in bad.text
    big = web.post("/console/analyze", data={"csrf": csrf(form.text)},
                   files={"policy": ("policy.txt", b"a" * (2 * 1024 * 1024 + 1), "text/plain")})
    assert big.status_code == 422 and "文件过大" in big.text
    assert web.post("/console/analyze", files={"policy": ("policy.txt", b"x", "text/plain")}).status_code in (400, 403)


def test_only_members_who_may_configure_open_it(server: Server) -> None:
    web = console_login(server, PO)
    page = web.get("/console/")
    assert 'href="/console/analyze"' not in page.text
    assert web.get("/console/analyze").status_code == 403
