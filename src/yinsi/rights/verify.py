"""Identity verification of a request (身份核验, R8): a one-time code sent to the address the app already
holds for the subject (the data map's ``verify_by``), checked; or staff verifying in person. The code
machinery (hashes, limits, the outbox message) is :mod:`yinsi.rights.verification`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from yinsi.domain.rights import STATE_ZH, RequestType, State
from yinsi.rights.context import RequestError, RightsContext
from yinsi.rights.transitions import move
from yinsi.storage.notify_tables import VerificationCodeRow


def send_code(ctx: RightsContext, tenant: str, request_id: str, channel: str = "sms", *,
              claimed: str | None = None, deliver: bool = True) -> Any:
    """Send a one-time code to the address the app already holds for the subject (R8) and return the
    challenge (masked address, expiry). ``claimed``: what the person typed, which must match."""
    from yinsi.rights.verification import VerificationError, start_verification

    with ctx.sessions() as s:
        row = ctx.get(s, tenant, request_id)
        if State(row.state) is not State.UNVERIFIED:
            raise RequestError(f"请求处于「{STATE_ZH[State(row.state)]}」状态，无需再核验身份")
        if RequestType(row.type) is RequestType.DECEASED:
            raise RequestError("近亲属请求须由员工核验死亡证明与亲属关系：yinsi request verify --in-person --as 员工")
        kind, subject, rid = row.subject_kind, ctx.subject_of(row), row.id
    dm = ctx.datamap(tenant)
    subj = ctx.subject_kind(dm, kind)
    attribute = subj.verify_by.get(channel)  # type: ignore[call-overload]
    if attribute is None:
        raise RequestError(f"数据地图没有为主体 {kind} 配置{'手机号' if channel == 'sms' else '电子邮箱'}核验"
                           f"（subjects.verify_by.{channel}）；请由员工当面核验")
    address = ctx.attributes(dm, kind, subject).get(attribute)
    if not address:
        raise RequestError("账号中没有可用于接收验证码的联系方式；请由员工当面核验身份")
    decl = ctx.declaration(tenant)
    try:
        with ctx.tx() as s:
            challenge = start_verification(s, ctx.outbox, tenant, rid, channel, address,  # type: ignore[arg-type]
                                           claimed=claimed, now=ctx.clock(), app_name=decl.app.name)
    except VerificationError as exc:
        raise RequestError(str(exc)) from None
    if deliver:
        ctx.deliver(tenant)
    return challenge


def check_code(ctx: RightsContext, tenant: str, request_id: str, code: str) -> Any:
    """Check the code of the request's latest challenge; on success the request is verified."""
    from yinsi.rights.verification import check_code as check

    with ctx.tx() as s:
        row = ctx.get(s, tenant, request_id)
        if State(row.state) is not State.UNVERIFIED:
            raise RequestError(f"请求处于「{STATE_ZH[State(row.state)]}」状态，无需再核验身份")
        challenge = s.scalar(select(VerificationCodeRow.id).where(
            VerificationCodeRow.tenant_id == tenant, VerificationCodeRow.request_ref == row.id)
            .order_by(VerificationCodeRow.created_at.desc()).limit(1))
        if challenge is None:
            raise RequestError("尚未发送验证码：请先运行 yinsi request verify 请求编号 --send sms")
        result = check(s, challenge, code, ctx.clock(), tenant=tenant)
        if result.ok:
            move(ctx, s, row, State.VERIFIED, "requester", "身份已核验：一次性验证码")
    return result


def mark_verified(ctx: RightsContext, tenant: str, request_id: str, actor: str, how: str) -> None:
    """Record an identity verification by staff (in person, documents for a relative's request)."""
    if not actor.strip() or not how.strip():
        raise RequestError("请写明核验的员工与核验方式")
    with ctx.tx() as s:
        row = ctx.get(s, tenant, request_id)
        move(ctx, s, row, State.VERIFIED, actor, f"身份已核验：{how}")
