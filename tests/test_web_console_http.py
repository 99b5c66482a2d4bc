"""The staff console over HTTP (no browser) on SQLite, PostgreSQL and MariaDB, and the console's use cases in
``yinsi.services.staff_desk``: sessions (a new one at log-in, the idle timeout, CSRF on every form), manual
steps confirmed with an evidence file kept encrypted, and policy preview and publishing by the administrator
only, for the principal's own tenant only."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests import test_api_e2e as e2e
from tests import test_rights_service as rights_tests
from tests.test_api_e2e import ADMIN, AUDITOR, CS, PASSWORD, PO, Server
from tests.test_api_staff import intake, staff_service
from yinsi.auth.principals import AuthError
from yinsi.services import staff_desk
from yinsi.staff.errors import AccessDenied, InvalidInput, RequestStateError
from yinsi.staff.roles import StaffAction

pytestmark = pytest.mark.usefixtures("isolated_env")

env = rights_tests.env  # the demo app with the 2022 policy published, on each database
server = e2e.server  # the API on it, with an administrator, two privacy officers, customer service, an auditor

ROOT = Path(__file__).resolve().parent.parent


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def console_login(s: Server, staff_id: str) -> TestClient:
    """A browser-like client logged in to the console through its form (the account's TOTP code once)."""
    web = TestClient(s.client.app)
    form = web.get("/console/login")
    r = web.post("/console/login", data={"csrf": csrf(form.text), "tenant": rights_tests.TENANT, "staff_id": staff_id,
                                         "password": PASSWORD, "totp": pyotp.TOTP(s.totp[staff_id]).now()},
                 follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/", r.text
    return web


def test_login_starts_a_new_session_and_the_idle_timeout_ends_it(server: Server) -> None:
    s = server
    auth = s.services.staff
    old = s.staff_token(AUDITOR, totp=False)  # a session the browser already holds
    web = TestClient(s.client.app)
    form = web.get("/console/login")
    domain = next(c.domain for c in web.cookies.jar if c.name == "yinsi_pre")
    web.cookies.set("yinsi_staff", old, domain=domain)
    r = web.post("/console/login", data={"csrf": csrf(form.text), "tenant": rights_tests.TENANT,
                                         "staff_id": AUDITOR, "password": PASSWORD, "totp": ""},
                 follow_redirects=False)  # an auditor sees no PI: no second factor needed
    assert r.status_code == 303
    new = web.cookies.get("yinsi_staff")
    assert new and new != old
    with pytest.raises(AuthError):
        auth.authenticate(old)  # the session held before log-in was ended (session fixation)
    assert web.get("/console/audit").status_code == 200

    real = auth.clock
    auth.clock = lambda: real() + timedelta(minutes=31)
    try:
        r = web.get("/console/audit", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
        assert "expired=1" in r.headers["location"]
        page = web.get(r.headers["location"])
        assert "30 分钟未操作" in page.text
    finally:
        auth.clock = real


def test_every_form_needs_its_csrf_token(server: Server) -> None:
    s = server
    web = console_login(s, PO)
    rid = intake(s)
    page = web.get(f"/console/requests/{rid}")
    assert page.status_code == 200 and "当面核验身份" in page.text
    for data in ({"how": "当面核对居民身份证"}, {"how": "当面核对居民身份证", "csrf": "0" * 43}):
        r = web.post(f"/console/requests/{rid}/verify", data=data, follow_redirects=False)
        assert r.status_code == 403
    assert "待核验身份" in web.get(f"/console/requests/{rid}").text
    r = web.post(f"/console/requests/{rid}/verify", data={"how": "当面核对居民身份证", "csrf": csrf(page.text)},
                 follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/console/requests/{rid}?done=verified"
    other = TestClient(s.client.app)  # another browser: its pre-session token does not fit this session
    token = csrf(other.get("/console/login").text)
    r = web.post("/console/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 403


def test_an_unmask_without_a_reason_is_refused(server: Server) -> None:
    from yinsi.protect.identifiers import store_identifier

    s = server
    subject, phone = str(s.env.agent), s.env.phones[s.env.agent]
    assert s.app_call("POST", "/api/v1/subjects", {"subject": subject, "birth_date": "1990-05-01"}).status_code in (
        200, 201)
    store_identifier(s.services.rights.audit.ring, rights_tests.TENANT, subject, "mobile_phone", phone)
    web = console_login(s, PO)
    page = web.post("/console/subjects/view", data={"csrf": csrf(web.get("/console/subjects").text),
                                                   "subject": subject, "reason": "客户来电核实"})
    assert page.status_code == 200 and phone not in page.text and phone[-4:] in page.text
    token = csrf(page.text)
    r = web.post("/console/subjects/unmask", data={"csrf": token, "subject": subject, "item": "contact.mobile",
                                                  "reason": "", "view_reason": "客户来电核实"})
    assert r.status_code == 403 and "须说明事由" in r.text and phone not in r.text
    r = web.post("/console/subjects/unmask", data={"csrf": token, "subject": subject, "item": "contact.mobile",
                                                  "reason": "电话回访", "view_reason": "客户来电核实"})
    assert r.status_code == 200 and phone in r.text


def test_evidence_is_kept_encrypted_and_only_a_privacy_officer_confirms(server: Server) -> None:
    s = server
    rights, staff = s.services.rights, staff_service(s)
    po = s.services.staff.authenticate(s.staff_token(PO))
    cs = s.services.staff.authenticate(s.staff_token(CS))
    rid = intake(s, "copy")
    with pytest.raises(RequestStateError):  # nothing waits for a person yet
        staff_desk.complete_with_evidence(po, staff, rights, rid, "已交付", evidence=b"receipt")
    from yinsi.staff import actions

    actions.verify_in_person(po, staff, rights, rid, "当面核对居民身份证")
    staff_desk.run_request(po, staff, rights, rid)
    story = staff_desk.story(po, staff, rights, rid)
    assert story["manual_waiting"]
    step = story["manual_waiting"][0]["key"]
    with pytest.raises(AccessDenied):
        staff_desk.complete_with_evidence(cs, staff, rights, rid, "已交付", step=step, evidence=b"receipt")
    with pytest.raises(InvalidInput):
        staff_desk.complete_with_evidence(po, staff, rights, rid, "已交付", step=step,
                                          evidence=b"x" * (staff_desk.EVIDENCE_MAX_BYTES + 1))
    with pytest.raises(InvalidInput):
        staff_desk.complete_with_evidence(po, staff, rights, rid, "   ", step=step)
    secret = b"receipt of 13800138000"
    staff_desk.complete_with_evidence(po, staff, rights, rid, "已在第三方后台导出并交付", step=step,
                                      reference="WB-7", evidence=secret)
    done = next(st for st in staff_desk.story(po, staff, rights, rid)["steps"] if st["key"] == step)
    assert done["status"] == "done" and "WB-7" in done["detail"]["note"] and done["detail"]["confirmed_by"] == PO
    [kept] = list((Path(rights.exports_dir) / "evidence" / rights_tests.TENANT / rid).glob("*.bin"))
    blob = kept.read_bytes()
    assert b"13800138000" not in blob and kept.stat().st_mode & 0o077 == 0
    cipher = rights.audit.ring.cipher(rights_tests.TENANT)
    assert cipher.decrypt_bytes(staff_desk.EVIDENCE_FIELD, blob) == secret


def _declaration(label: str, source: str = "weiliaoke-2022.yaml") -> str:
    text = (ROOT / "policies" / source).read_text(encoding="utf-8")
    return re.sub(r'label: "[^"]+"', f'label: "{label}"', text, count=1)


def test_policy_preview_and_publishing_are_the_administrators_for_their_own_tenant(server: Server) -> None:
    s = server
    staff, url = staff_service(s), s.env.url
    admin = s.services.staff.authenticate(s.staff_token(ADMIN))
    po = s.services.staff.authenticate(s.staff_token(PO))
    assert StaffAction.CONFIGURE in staff_desk.allowed_actions(admin, staff)
    assert StaffAction.CONFIGURE not in staff_desk.allowed_actions(po, staff)
    assert StaffAction.HANDLE_RIGHTS_REQUEST in staff_desk.allowed_actions(po, staff)

    text = _declaration("2026-12-01")
    with pytest.raises(AccessDenied):
        staff_desk.preview_policy(po, staff, url, text)
    with pytest.raises(AccessDenied):
        staff_desk.publish_policy(po, staff, url, text)

    preview = staff_desk.preview_policy(admin, staff, url, text)
    assert preview.publishable and preview.label == "2026-12-01" and preview.previous is not None
    assert preview.findings and all(re.fullmatch(r"[A-Z]\d+", f.rule) for f in preview.findings)
    assert preview.diff is not None and preview.diff["new"] == "2026-12-01"

    other = staff_desk.preview_policy(admin, staff, url, (ROOT / "policies" / "jikeanjia-2020.yaml").read_text("utf-8"))
    assert not other.publishable and "不能发布到本租户" in (other.error or "")
    broken = staff_desk.preview_policy(admin, staff, url, "tenant: [")
    assert not broken.publishable and broken.error
    with pytest.raises(InvalidInput):
        staff_desk.publish_policy(admin, staff, url, "tenant: [")

    published = staff_desk.publish_policy(admin, staff, url, text)
    assert published.created and published.published_by == ADMIN and published.label == "2026-12-01"
    again = staff_desk.preview_policy(admin, staff, url, text)
    assert not again.publishable and "已发布" in (again.error or "")
    labels = [v.label for v in staff_desk.policy_versions(po, staff, url)]
    assert labels[-1] == "2026-12-01"
    archived, findings = staff_desk.policy_version(po, staff, url, "2026-12-01")
    assert archived.declaration_yaml == text and findings == preview.findings
    diff = staff_desk.policy_diff(po, staff, url, labels[0], "2026-12-01")
    assert diff["old"] == labels[0] and isinstance(diff["groups"], list)


def test_the_console_menu_follows_the_roles(server: Server) -> None:
    s = server
    web = console_login(s, CS)
    home = web.get("/console/")
    assert home.status_code == 200
    nav = home.text.split('aria-label="控制台菜单"')[1].split("</nav>")[0]
    assert "/console/requests" in nav and "/console/app-keys" not in nav and "/console/audit" not in nav
    for path in ("/console/app-keys", "/console/policies/new", "/console/audit", "/console/alerts"):
        r = web.get(path)
        assert r.status_code == 403 and "无权" in r.text, path
