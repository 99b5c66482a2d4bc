"""Texts sent to people and to recipients (通知文案), in Chinese.

Bodies are plain text. SMS gateways in China send only pre-approved templates, so each text also has a
template name and its parameters (``template``/``params`` in the outbox), which a gateway adapter uses
instead of the body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Text", "recipient_deletion_notice", "verification_code_text"]

VERIFICATION_TEMPLATE = "verification_code"
RECIPIENT_DELETION_TEMPLATE = "recipient_deletion"


@dataclass(frozen=True)
class Text:
    subject: str
    body: str = field(repr=False)
    template: str
    params: dict[str, str] = field(repr=False)


def verification_code_text(code: str, minutes: int, app_name: str | None = None) -> Text:
    """“您的隐私请求验证码为 123456，10分钟内有效。如非本人操作请忽略。”"""
    body = f"您的隐私请求验证码为 {code}，{minutes}分钟内有效。如非本人操作请忽略。"
    subject = f"{app_name}隐私请求验证码" if app_name else "隐私请求验证码"
    return Text(subject, body, VERIFICATION_TEMPLATE, {"code": code, "minutes": str(minutes)})


def recipient_deletion_notice(
    *,
    recipient_name: str,
    controller_name: str,
    app_name: str,
    subject_ref: str,
    items: Sequence[str],
    request_ref: str,
    reason: str = "个人信息主体已注销账号或请求删除其个人信息",
) -> Text:
    """The notice that tells a party which received a subject's PI to delete it too (R13; GB/T 35273 8.3).

    ``subject_ref`` is how the recipient knows the subject (the pseudonym or account id shared with it),
    never a phone number or a name chosen here; ``items`` are the PI items' Chinese names.
    """
    listed = "、".join(items) if items else "（全部已提供的个人信息）"
    body = (
        f"{recipient_name}：\n\n"
        f"{controller_name}（“{app_name}”的运营者）通知：{reason}。"
        f"根据《个人信息保护法》第四十七条及 GB/T 35273-2020 第 8.3 条，请删除我方向贵方提供的下列个人信息，"
        f"并停止对其的处理：\n\n"
        f"个人信息主体标识：{subject_ref}\n"
        f"个人信息项：{listed}\n"
        f"请求编号：{request_ref}\n\n"
        f"如因法律、行政法规规定的保存期限未届满而无法删除，请停止除存储和采取必要安全保护措施之外的处理，"
        f"并告知我方。完成删除后请回复本邮件确认。\n"
    )
    subject = f"【{app_name}】个人信息删除通知（请求编号 {request_ref}）"
    return Text(subject, body, RECIPIENT_DELETION_TEMPLATE,
                {"subject_ref": subject_ref, "items": listed, "request_ref": request_ref})
