"""``yinsi minors``: age, guardian consent and objection, self-supporting status, the M3 deletion sweep."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import typer
from rich.markup import escape

from yinsi.cli.apps import app, console, exit_on
from yinsi.cli.errors import date_argument, datetime_argument
from yinsi.domain.consent import ConsentRejected
from yinsi.services.consent import ConsentService, NoPublishedPolicy
from yinsi.services.minors import MinorsError, MinorsService
from yinsi.storage.errors import StorageError

minors_app = typer.Typer(help="未成年人：年龄认定、监护人同意与异议、自立认定、未经监护人同意的删除（M1–M3）。",
                         no_args_is_help=True)
app.add_typer(minors_app, name="minors")

URL = typer.Option(None, "--url", help="Yinsi 数据库（默认 YINSI_DATABASE_URL 或 ./.yinsi/yinsi.db）")
TENANT = typer.Argument(..., help="租户")
SUBJECT = typer.Argument(..., help="未成年人在应用中的用户标识")


@contextmanager
def _service(url: str | None) -> Iterator[MinorsService]:
    with exit_on((StorageError, "数据库错误", 2)):
        consents = ConsentService(url)
    try:
        with exit_on(((NoPublishedPolicy, ConsentRejected, MinorsError), "未能完成", 1), (ValueError, "输入有误", 1)):
            yield MinorsService(consents)
    finally:
        consents.close()


@minors_app.command("register")
def register(tenant: str = TENANT, subject: str = SUBJECT,
             id_number: str | None = typer.Option(None, "--id-number", help="18位身份证号码（只保存出生日期，校验位核对）"),
             birth_date: str | None = typer.Option(None, "--birth-date", help="出生日期 YYYY-MM-DD"),
             url: str | None = URL) -> None:
    """登记出生日期（有身份证号码时由号码得出），显示当前的年龄认定。"""
    birth = date_argument(birth_date, "--birth-date")
    with _service(url) as svc:
        st = svc.register(tenant, subject, id_number=id_number, birth_date=birth)
    if st is not None:
        console.print(f"{st.age}周岁：{escape(st.message)}" + (f"（{st.rule}）" if st.rule else ""))


@minors_app.command("guardian")
def guardian(tenant: str = TENANT, subject: str = SUBJECT,
             guardian_id: str = typer.Option(..., "--guardian", help="监护人的身份证号码或手机号码（加密保存）"),
             relation: str = typer.Option(..., "--relation", help="father/mother/grandparent/sibling/other_guardian"),
             verification: str = typer.Option(..., "--verification", help="id_document/face/sms_id_match/in_person"),
             channel: str = typer.Option("staff", "--channel", help="app/web/phone/staff"),
             at: str | None = typer.Option(None, "--at", help="核验时间（ISO 8601，带时区；默认现在）"),
             url: str | None = URL) -> None:
    """记录经核验的监护人同意（监护人身份只以盲索引与密文保存）。"""
    when = datetime_argument(at, "--at") if at else None
    with _service(url) as svc:
        gid = svc.record_guardian_consent(tenant, subject, guardian=guardian_id, relation=relation,
                                          verification=verification, channel=channel, at=when)
    console.print(f"已记录监护人同意：{gid}")


@minors_app.command("object")
def object_(tenant: str = TENANT, subject: str = SUBJECT,
            guardian_id: str = typer.Option(..., "--guardian", help="提出异议的监护人的身份证号码或手机号码"),
            url: str | None = URL) -> None:
    """监护人提出异议：撤回其同意，暂停该未成年人的个人信息处理与账户。"""
    with _service(url) as svc:
        rule = svc.object(tenant, subject, guardian=guardian_id)
    console.print(f"已暂停该未成年人的个人信息处理与账户（{rule}）；监护人重新同意后恢复")


@minors_app.command("self-supporting")
def self_supporting(tenant: str = TENANT, subject: str = SUBJECT,
                    evidence: str = typer.Option(..., "--evidence", help="认定依据，如 labour_contract、income_proof"),
                    actor: str = typer.Option("staff", "--actor", help="经办员工"),
                    undo: bool = typer.Option(False, "--undo", help="撤销认定"),
                    url: str | None = URL) -> None:
    """认定十六周岁以上、以自己劳动收入为主要生活来源的未成年人视为成年人（民法典 18，M2）。"""
    with _service(url) as svc:
        svc.set_self_supporting(tenant, subject, evidence=evidence, actor=actor, on=not undo)
    console.print("已撤销自立认定" if undo else "已认定为视为成年人（M2）")


@minors_app.command("status")
def status(tenant: str = TENANT, subject: str = SUBJECT,
           as_json: bool = typer.Option(False, "--json", help="以 JSON 输出"), url: str | None = URL) -> None:
    """年龄认定、监护人同意、账户是否暂停、自动开启的删除请求。"""
    with _service(url) as svc:
        st = svc.status(tenant, subject)
    if as_json:
        typer.echo(json.dumps(st.to_json(), ensure_ascii=False, indent=2))
        return
    console.print(escape(st.message))
    console.print(f"监护人同意：{'有' if st.guardian_consent else '无'}；账户：{'已暂停' if st.suspended_at else '正常'}"
                  + (f"；删除请求：{st.deletion_request}" if st.deletion_request else ""))


@minors_app.command("sweep")
def sweep(tenant: str = TENANT,
          grace_days: float = typer.Option(7, "--grace-days", help="登记后等待监护人同意的天数"),
          now: str | None = typer.Option(None, "--now", help="按此时间判断（ISO 8601，带时区）"),
          url: str | None = URL) -> None:
    """为未取得可验证监护人同意的未成年人开启删除请求（M3，未成年人保护法 72）。"""
    from yinsi.rights.service import RightsService

    when = datetime_argument(now, "--now") if now else None
    with _service(url) as svc:
        rights = RightsService(svc.consents.url)
        try:
            opened = svc.sweep(tenant, rights, now=when, grace=timedelta(days=grace_days))
        finally:
            rights.close()
    console.print(f"开启删除请求 {len(opened)} 个" + ("：" + "、".join(opened) if opened else ""))
