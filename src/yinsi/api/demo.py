"""``yinsi serve --demo``: a data directory with everything a new user needs to try the API.

The five seed declarations published; the 微聊客 demo app (SQLite, 20 agents) with its data map, so that a
person can log in with a code sent to a phone on record (the development SMS gateway writes it to a file);
an administrator and a privacy officer of 微聊客 with passwords and TOTP secrets; an app key for 微聊客.

Demo credentials are printed and written to ``demo-login.txt`` (0600) in the data directory; they are for
this throw-away directory only (a real deployment creates its administrator with ``yinsi staff bootstrap``
and its keys through an administrator).
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TENANT = "weiliaoke"
DEFAULT_DIR = Path(".yinsi") / "demo-serve"
INFO_FILE = "demo-login.txt"
DATAMAP_FILE = "demo-datamap.yaml"
#: Marks a directory this command created (only such a directory is ever emptied).
MARKER = ".yinsi-demo-serve"
AGENTS = 20


@dataclass
class DemoStaff:
    staff_id: str
    name: str
    role: str
    role_zh: str
    password: str
    totp_secret: str


@dataclass
class DemoSetup:
    data_dir: Path
    database_url: str
    datamap: Any
    datamap_file: Path
    store_urls: dict[str, str]
    key_id: str
    app_key: str
    phone: str
    agent_id: int
    sms_outbox: Path
    staff: list[DemoStaff] = field(default_factory=list)
    #: the administrator's session used for seeding (token, principal); only with ``keep_admin_session``
    admin_session: tuple[str, Any] | None = None


class DemoDirError(RuntimeError):
    """The directory exists and was not made by ``yinsi serve --demo``: it is left alone."""


def reset_dir(directory: Path) -> Path:
    """Empty ``directory`` (only if this command made it) and create it again."""
    directory = directory.expanduser().resolve()
    if directory.exists():
        if not (directory / MARKER).is_file() and any(directory.iterdir()):
            raise DemoDirError(f"目录 {directory} 已存在且不是演示数据目录；请换一个目录（--data-dir）或先自行删除")
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("yinsi serve --demo\n", encoding="utf-8")
    return directory


def prepare(directory: Path, *, policies: Path | None = None, keep_admin_session: bool = False) -> DemoSetup:
    """Seed a fresh demo data directory. Sets ``YINSI_DATA_DIR`` to it (the master key, the default SQLite
    database and the SMS outbox live there) and clears ``YINSI_DATABASE_URL`` for this process. The
    administrator's seeding session is ended unless ``keep_admin_session`` (tests: a TOTP code is accepted
    only once, so a second login in the same 30 seconds would fail)."""
    import pyotp
    from sqlalchemy import text

    from yinsi.auth.apikeys import ApiKeyService
    from yinsi.auth.principals import ALL_APP_SCOPES
    from yinsi.auth.staff import StaffAuthService
    from yinsi.cli.demo_cmds import SEED_FILES, policies_dir
    from yinsi.cli.demoapp_cmds import demo_app_dir, load_demo_app
    from yinsi.config import database_url
    from yinsi.datamap_io import load_datamap
    from yinsi.domain.datamap import RedisStore
    from yinsi.notify.channels import SMS_OUTBOX_FILE
    from yinsi.services.publishing import publish
    from yinsi.storage.engine import make_engine

    data = reset_dir(directory)
    os.environ["YINSI_DATA_DIR"] = str(data)
    os.environ.pop("YINSI_DATABASE_URL", None)
    os.environ.pop("YINSI_SMS_OUTBOX_DIR", None)
    url = database_url()
    base = policies_dir(policies)
    for name in SEED_FILES:
        publish(base / name, url=url, by="yinsi serve --demo")

    # the demo app: its own SQLite database; the map without the Redis cache (not needed for the demo)
    app_db = data / "demo-app.db"
    app_url = f"sqlite:///{app_db.as_posix()}"
    demo_app = load_demo_app()
    engine = make_engine(app_url)
    try:
        demo_app.create_schema(engine)
        demo_app.seed(app_url, AGENTS, 2022)
        with engine.connect() as conn:
            agent_id, phone = conn.execute(text("SELECT id, phone FROM agents ORDER BY id LIMIT 1")).one()
    finally:
        engine.dispose()
    dm = load_datamap(demo_app_dir() / "datamap.yaml").datamap
    dm = dm.model_copy(update={"stores": [st for st in dm.stores if not isinstance(st, RedisStore)]})
    datamap_file = data / DATAMAP_FILE
    datamap_file.write_text(yaml.safe_dump(dm.model_dump(mode="json", by_alias=True, exclude_none=True),
                                           allow_unicode=True, sort_keys=False), encoding="utf-8")

    # staff: the administrator (bootstrap), who then creates a privacy officer
    staff_svc = StaffAuthService(url)
    try:
        admin_password = _password()
        _, admin_secret = staff_svc.bootstrap(TENANT, "admin", "演示管理员", admin_password)
        # the previous 30-second step's code (accepted too): a TOTP code is accepted once, and the person trying
        # the demo must be able to log in as the administrator with the current one right away
        previous = pyotp.TOTP(admin_secret).at(time.time() - 30)
        admin_token, admin = staff_svc.login(TENANT, "admin", admin_password, previous)
        dpo_password = _password()
        dpo_secret = staff_svc.create_account(admin, "dpo", "演示个人信息保护负责人", ["privacy_officer"], dpo_password)
        if not keep_admin_session:
            staff_svc.logout(admin_token)
    finally:
        staff_svc.close()
    keys = ApiKeyService(url)
    try:
        key_id, token = keys.create_unchecked(TENANT, "微聊客演示后端", sorted(ALL_APP_SCOPES))
    finally:
        keys.close()
    return DemoSetup(
        data_dir=data, database_url=url, datamap=dm, datamap_file=datamap_file, store_urls={"app_db": app_url},
        key_id=key_id, app_key=token, phone=str(phone), agent_id=int(agent_id),
        sms_outbox=data / "sms-outbox" / SMS_OUTBOX_FILE,
        staff=[DemoStaff("admin", "演示管理员", "administrator", "管理员", admin_password, admin_secret),
               DemoStaff("dpo", "演示个人信息保护负责人", "privacy_officer", "个人信息保护负责人", dpo_password, dpo_secret)],
        admin_session=(admin_token, admin) if keep_admin_session else None,
    )


def _password() -> str:
    return "demo-" + secrets.token_urlsafe(12)


def instructions(setup: DemoSetup, base_url: str, python: str = ".venv/bin/python") -> str:
    """What to open and how to log in, in Chinese (printed, and written to ``demo-login.txt``)."""
    key = setup.app_key
    lines = [
        "Yinsi（隐私）演示服务",
        "=" * 40,
        f"数据目录：{setup.data_dir}（每次 yinsi serve --demo 都会重新创建）",
        f"接口文档（OpenAPI）：{base_url}/docs    机器可读：{base_url}/openapi.json",
        f"微聊客当前隐私政策（公开，无需登录）：{base_url}/api/v1/tenants/{TENANT}/policy",
        "",
        "一、应用（服务端对服务端）：微聊客的演示应用密钥（只在此显示；正式环境由管理员创建，只显示一次）",
        f"  {key}",
        "  询问处理闸门（尚未取得同意，应当拒绝并说明原因）：",
        f"  curl -s -X POST {base_url}/api/v1/gate/check -H 'Authorization: Bearer {key}' \\",
        "       -H 'Content-Type: application/json' \\",
        "       -d '{\"subject\": \"u1\", \"action\": \"collect\", \"feature\": \"customer_chat\", "
        "\"items\": [\"location.precise\"]}'",
        "  更多调用（同意、权限、个人登记、权利请求）：docs/api.md",
        "",
        f"二、个人（置业顾问 {setup.agent_id}，演示手机号 {setup.phone}）：用验证码登录",
        f"  curl -s -c person.txt -X POST {base_url}/api/v1/auth/person/code -H 'Content-Type: application/json' \\",
        f"       -d '{{\"tenant\": \"{TENANT}\", \"contact\": \"{setup.phone}\"}}'",
        f"  验证码由开发用短信网关写入文件：tail -n 1 {setup.sms_outbox}",
        f"  curl -s -b person.txt -c person.txt -X POST {base_url}/api/v1/auth/person/verify "
        "-H 'Content-Type: application/json' \\",
        f"       -d '{{\"tenant\": \"{TENANT}\", \"challenge_id\": \"上一步返回的 challenge_id\", \"code\": \"验证码\"}}'",
        f"  之后：curl -s -b person.txt {base_url}/api/v1/me/consents",
        f"  或在浏览器中打开个人信息保护中心：{base_url}/privacy/{TENANT}/ （输入上面的手机号，验证码同样写入上面的文件）",
        "",
        "三、工作人员（微聊客）：口令 + 动态口令（TOTP）登录",
    ]
    for st in setup.staff:
        lines += [
            f"  {st.role_zh}：账号 {st.staff_id}，口令 {st.password}，TOTP 密钥 {st.totp_secret}",
            f"    当前动态口令：{python} -c \"import pyotp;print(pyotp.TOTP('{st.totp_secret}').now())\"",
        ]
    dpo = setup.staff[-1]
    lines += [
        f"  curl -s -c staff.txt -X POST {base_url}/api/v1/auth/staff/login -H 'Content-Type: application/json' \\",
        f"       -d '{{\"tenant\": \"{TENANT}\", \"staff_id\": \"{dpo.staff_id}\", \"password\": \"{dpo.password}\", "
        "\"totp\": \"动态口令\"}'",
        f"  之后：curl -s -b staff.txt {base_url}/api/v1/staff/requests",
        "  （演示账号的密钥写在这里只为方便试用；正式账号的 TOTP 密钥只显示一次，由本人录入身份验证器。）",
        "",
        f"以上内容也已写入 {setup.data_dir / INFO_FILE}（仅本人可读）。按 Ctrl+C 停止服务。",
    ]
    return "\n".join(lines)


def write_info(setup: DemoSetup, text: str) -> Path:
    path = setup.data_dir / INFO_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path
