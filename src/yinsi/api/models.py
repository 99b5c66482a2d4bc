"""Request bodies: every field typed and bounded, so bad input is a 422 problem and never a 500.

Limits follow the columns the values end up in (``yinsi.storage``); control characters are refused (a NUL
byte is not storable in PostgreSQL text), as are unknown fields.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag

from yinsi.auth.principals import AppScope
from yinsi.domain.consent import EventType, PermissionEventType
from yinsi.domain.rights import DeletionGround, RequestType
from yinsi.domain.taxonomy import Action, ConsentKind

#: Most decisions (or consent events) one call may carry.
MAX_BATCH = 1000
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_PRINTABLE)]
Text128 = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_PRINTABLE)]
Text254 = Annotated[str, StringConstraints(min_length=1, max_length=254, pattern=_PRINTABLE)]
Text500 = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=_PRINTABLE)]


Tenant = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Subject = Text128
Ident = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Short = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Scope = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class GateDecisionIn(Body):
    """One question to the gate: may the app do ``action`` for ``feature`` on ``items`` of ``subject``?"""

    tenant: Tenant | None = Field(None, description="租户（省略时为应用密钥所属租户；给出时必须一致）")
    subject: Subject = Field(description="个人在应用中的用户标识")
    action: Action = Field(description="处理行为：collect、use、provide、entrust、disclose、transfer_abroad、automated_decision")
    feature: Ident | None = Field(None, description="功能（声明中的 feature id）")
    purpose: Text500 | None = None
    items: list[Ident] = Field(default_factory=list, max_length=100, description="个人信息项（分类表 id）")
    recipient: Ident | None = Field(None, description="接收方（provide、entrust、transfer_abroad）")
    destination: Ident | None = Field(None, description="境外接收方所在国家或地区")
    device: Text128 | None = Field(None, description="设备标识（检查设备权限时）")
    record: bool = Field(True, description="是否写入处理记录（默认写入，供双清单使用）")
    exception: Short | None = Field(None, description="不经同意处理时所依据的法定情形（PIPL 13 第 3–7 项，"
                                    "如 statutory_duty、emergency），须已在声明中写明")


class GateBatchIn(Body):
    tenant: Tenant | None = None
    batch: list[GateDecisionIn] = Field(min_length=1, max_length=MAX_BATCH)


def _one_or_batch(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "batch" in value else "one"


#: One decision, or ``{"batch": [...]}``.
GateCheckIn = Annotated[Annotated[GateDecisionIn, Tag("one")] | Annotated[GateBatchIn, Tag("batch")],
                        Discriminator(_one_or_batch)]


class ConsentIn(Body):
    tenant: Tenant | None = None
    subject: Subject
    scope: Scope = Field(description="policy | guardian | feature:功能 | item:功能:个人信息项 | recipient:接收方 | "
                                     "cross_border:接收方")
    event: EventType = EventType.GIVEN
    kind: ConsentKind | None = None
    channel: Short = "app"
    disclosures: dict[Short, Text500] = Field(
        default_factory=dict, max_length=20,
        description="单独同意对话框中展示的告知事项（recipient_name、purpose、necessity、impact…）")
    at: AwareDatetime | None = Field(None, description="发生时间（ISO 8601，带时区；默认现在）")
    actor: Text128 | None = Field(None, description="作出同意的监护人或经办员工")
    collection_method: Short = "click"
    shown_hash: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9:_-]+$")] | None = None


class ConsentBatchIn(Body):
    tenant: Tenant | None = None
    batch: list[ConsentIn] = Field(min_length=1, max_length=MAX_BATCH)


#: One consent event, or ``{"batch": [...]}``.
ConsentsIn = Annotated[Annotated[ConsentIn, Tag("one")] | Annotated[ConsentBatchIn, Tag("batch")],
                       Discriminator(_one_or_batch)]


class PermissionIn(Body):
    tenant: Tenant | None = None
    subject: Subject
    device: Text128
    permission: Short = Field(description="设备权限（分类表 id，例如 location、camera）")
    event: PermissionEventType
    feature: Ident | None = None
    at: AwareDatetime | None = None


class SubjectIn(Body):
    tenant: Tenant | None = None
    subject: Subject
    birth_date: date | None = Field(None, description="出生日期（用于判断是否不满十四周岁）")
    id_number: Annotated[str, StringConstraints(pattern=r"^\d{17}[\dXx]$")] | None = Field(
        None, description="居民身份证号：只取出生日期，号码本身不保存")


DetailKey = Ident
DetailText = Annotated[str, StringConstraints(min_length=1, max_length=2000,
                                              pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]
DetailValue = Annotated[str, StringConstraints(max_length=500, pattern=_PRINTABLE)] | int | float | bool | None


class RequestDetailsIn(Body):
    """What a request carries, by type (every field optional; the service checks which one a type needs)."""

    changes: dict[DetailKey, DetailValue] | None = Field(
        None, max_length=50, description="correction / supplement：{个人信息项或 表.列: 新值}")
    ground: DeletionGround | None = Field(None, description="deletion：PIPL 47 的删除情形（R4）")
    items: list[DetailKey] | None = Field(None, max_length=100, description="deletion：要删除的个人信息项（默认全部）")
    include_historical: bool | None = Field(
        None, description="correction：本人明确要求一并更正历史记录列（数据地图 historical: true，默认不改）")
    scopes: list[Scope] | None = Field(None, max_length=100, description="withdraw_consent / restriction：同意范围")
    features: list[DetailKey] | None = Field(None, max_length=100, description="restriction：限制处理的功能（默认全部）")
    about: Literal["rules", "automated_decision"] | None = Field(None, description="explanation：处理规则或自动化决策")
    question: DetailText | None = Field(None, description="explanation：想了解的问题")
    text: DetailText | None = Field(None, description="complaint：投诉内容")

    def as_details(self) -> dict[str, Any]:
        """The fields given, as the rights service takes them."""
        return self.model_dump(mode="json", exclude_none=True)


class AppRequestDetailsIn(RequestDetailsIn):
    """An app's intake may also carry a close relative's request about a deceased person (PIPL 49)."""

    action: Literal["access", "copy", "correction", "deletion"] | None = Field(
        None, description="近亲属请求：access、copy、correction、deletion")
    relation: Text128 | None = Field(None, description="近亲属请求：与死者的关系")


class RightsRequestIn(Body):
    tenant: Tenant | None = None
    subject: Subject
    type: RequestType
    subject_kind: Ident | None = None
    requester: Text128 | None = Field(None, description="代为提出请求的人（近亲属、监护人），默认本人")
    details: AppRequestDetailsIn = Field(default_factory=lambda: AppRequestDetailsIn(),
                                         description="按类型：changes、ground、items、scopes、features、action、relation、"
                                                     "about、question、text")
    received_at: AwareDatetime | None = None


class PersonCodeIn(Body):
    tenant: Tenant
    contact: Text254
    channel: Annotated[str, StringConstraints(pattern=r"^(sms|email)$")] = "sms"


class PersonVerifyIn(Body):
    tenant: Tenant
    challenge_id: Text64
    code: Annotated[str, StringConstraints(min_length=4, max_length=12, pattern=r"^[0-9A-Za-z]+$")]


class AppTokenIn(Body):
    tenant: Tenant
    token: Annotated[str, StringConstraints(min_length=10, max_length=4096, pattern=r"^[A-Za-z0-9_.=-]+$")]


class StaffLoginIn(Body):
    tenant: Tenant
    staff_id: Text128
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    totp: Annotated[str, StringConstraints(pattern=r"^\d{6,8}$")] | None = None


__all__ = [
    "MAX_BATCH", "AppScope", "AppTokenIn", "ConsentBatchIn", "ConsentIn", "ConsentsIn", "GateBatchIn", "GateCheckIn",
    "GateDecisionIn", "Label", "PermissionIn", "PersonCodeIn", "PersonVerifyIn", "RequestDetailsIn", "RightsRequestIn",
    "StaffLoginIn", "SubjectIn", "Tenant",
]
