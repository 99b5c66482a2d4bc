"""Demo staff accounts (演示工作人员), for ``yinsi demo`` and a demo server only — never for real tenants.

:func:`ensure_demo_staff` bootstraps a demo administrator for a tenant that has none and has it create the
other demo accounts, all with the public password :data:`DEMO_PASSWORD`; their TOTP secrets are kept in
``<data dir>/demo-staff.json`` (0600) so that a later run can log them in again (:func:`demo_login`). It
refuses a tenant whose administrator was not made by the demo: real accounts are never touched.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyotp

from yinsi.auth.principals import AuthError, StaffPrincipal
from yinsi.auth.staff import TOTP_STEP, StaffAuthService

#: The demo accounts' password (public: printed by the demo).
DEMO_PASSWORD = "yinsi-demo-口令"

#: staff_id → (name, roles)
DEMO_ACCOUNTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "demo-admin": ("演示管理员", ("administrator",)),
    "demo-po": ("演示个人信息保护负责人", ("privacy_officer",)),
    "demo-po2": ("演示个人信息保护负责人（审批人）", ("privacy_officer",)),
    "demo-cs": ("演示客服", ("customer_service",)),
    "demo-sec": ("演示安全负责人", ("security_officer",)),
    "demo-audit": ("演示审计员", ("auditor",)),
}


class DemoStaffUnavailable(Exception):
    """The tenant has staff not made by the demo (the demo leaves real accounts alone)."""


@dataclass(frozen=True)
class DemoStaff:
    tenant: str
    secrets: dict[str, str]  # staff_id → TOTP secret
    path: Path


def _secrets_file(data_dir: Path) -> Path:
    return data_dir / "demo-staff.json"


def _load(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: Path, data: dict[str, dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)


def demo_login(auth: StaffAuthService, staff: DemoStaff, staff_id: str) -> tuple[str, StaffPrincipal]:
    """Log a demo account in with its password and a TOTP code computed from its saved secret (the next
    time step's code when this step's was already used)."""
    totp = pyotp.TOTP(staff.secrets[staff_id])
    now = auth.clock()
    last: AuthError | None = None
    for ahead in (0, 1):
        code = totp.at(int(now.timestamp()) + ahead * TOTP_STEP)
        try:
            return auth.login(staff.tenant, staff_id, DEMO_PASSWORD, code)
        except AuthError as exc:
            last = exc
    assert last is not None
    raise last


def ensure_demo_staff(auth: StaffAuthService, tenant: str, data_dir: Path) -> DemoStaff:
    """The demo accounts of ``tenant``, created as needed (see the module's doc)."""
    from yinsi.storage.engine import display_url

    path = _secrets_file(data_dir)
    saved = _load(path)
    where = f"{display_url(auth.url)}#{tenant}"
    mine = dict(saved.get(where, {}))
    existing = {m.staff_id for m in auth.staff.list_staff(tenant)}
    if "demo-admin" not in existing:
        if auth.has_login_administrator(tenant):
            raise DemoStaffUnavailable(f"租户 {tenant} 已有管理员，演示不创建演示账号")
        _, mine["demo-admin"] = auth.bootstrap(tenant, "demo-admin", DEMO_ACCOUNTS["demo-admin"][0], DEMO_PASSWORD)
    elif "demo-admin" not in mine:
        raise DemoStaffUnavailable(f"找不到演示账号的动态验证码密钥（{path}）")
    staff = DemoStaff(tenant, mine, path)
    missing = [sid for sid in DEMO_ACCOUNTS if sid not in existing and sid != "demo-admin"]
    if missing:
        token, admin = demo_login(auth, staff, "demo-admin")
        try:
            for sid in missing:
                name, roles = DEMO_ACCOUNTS[sid]
                mine[sid] = auth.create_account(admin, sid, name, roles, DEMO_PASSWORD)
        finally:
            auth.logout(token)
    unknown = [sid for sid in DEMO_ACCOUNTS if sid not in mine]
    if unknown:
        raise DemoStaffUnavailable(f"找不到演示账号的动态验证码密钥（{path}）")
    saved[where] = mine
    _save(path, saved)
    return staff
