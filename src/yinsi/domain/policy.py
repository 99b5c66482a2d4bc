"""The policy declaration (隐私政策声明): one app version, from which everything else is derived.

Every element carries a ``source``: where in the published policy text it comes from (file, section, a
short verbatim quote), or, where the text is silent, ``silent: true`` with a note saying so. Nothing in a
declaration may be invented: a value the text does not give stays ``null`` and its source says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from yinsi.domain.taxonomy import LegalBasis, taxonomy

T = TypeVar("T")
Loc = tuple[int | str, ...]


class ReferenceErrors(ValueError):
    """Cross-reference problems (unknown PI item, missing SDK, ...), each with its location."""

    def __init__(self, errors: list[tuple[Loc, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(msg for _, msg in errors))


class Model(BaseModel):
    """Base for declaration models: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Model):
    """Where an element comes from in the policy text (出处)."""

    file: str | None = None
    section: str | None = None
    quote: str | None = None
    silent: bool = False
    note: str | None = None

    @model_validator(mode="after")
    def _quote_or_silence(self) -> Source:
        if self.silent:
            if not self.note:
                raise ValueError("a silent source needs a note that says what the text does not state")
        elif not self.quote:
            raise ValueError("a source needs a verbatim quote, or silent: true with a note")
        return self


class Sourced(Model):
    """An element traceable to the policy text."""

    source: Source


class Stated(Sourced, Generic[T]):
    """A single fact with its source; ``value: null`` where the text is silent or blank."""

    value: T | None = None


class DayUnit(StrEnum):
    """Natural days (自然日) or working days (工作日)."""

    NATURAL = "natural"
    WORKING = "working"


class ReplyTime(Sourced):
    """A promised reply time, e.g. 十五天内（国家法定节假日顺延）."""

    days: int | None = Field(default=None, ge=1)
    unit: DayUnit = DayUnit.NATURAL
    holidays_extended: bool = False

    def describe(self) -> str:
        if self.days is None:
            return "未承诺"
        unit = "个工作日" if self.unit is DayUnit.WORKING else "天"
        tail = "（国家法定节假日顺延）" if self.holidays_extended else ""
        return f"{self.days}{unit}内{tail}"


ChannelKind = Literal[
    "in_app", "phone", "email", "web", "mail", "letter", "wechat", "push", "sms", "popup",
    "announcement", "written", "customer_service", "other",
]

CHANNEL_KIND_ZH: dict[str, str] = {
    "in_app": "应用内", "phone": "电话", "email": "电子邮件", "web": "网站", "mail": "邮寄",
    "letter": "信函", "wechat": "微信", "push": "推送通知", "sms": "短信", "popup": "弹窗",
    "announcement": "公告", "written": "书面", "customer_service": "客服", "other": "其他",
}


class Channel(Sourced):
    """A contact or request channel: an in-app path, a phone number, an e-mail address, ..."""

    kind: ChannelKind
    value: str | None = None


class Officer(Sourced):
    """The PI protection department or officer (个人信息保护负责人/部门)."""

    department: str | None = None
    name: str | None = None
    contact: str | None = None


class Controller(Sourced):
    """The personal-information processor (个人信息处理者) that publishes the policy."""

    legal_name: Stated[str]
    registered_address: Stated[str]
    office_address: Stated[str]
    contacts: list[Channel] = Field(default_factory=list)
    protection_officer: Officer | None = None


class App(Sourced):
    """The product the policy covers."""

    name: str
    product_types: list[str] = Field(default_factory=list, description="必要个人信息范围规定 app types")
    platforms: list[str] = Field(default_factory=list)
    description: str | None = None


class VersionInfo(Model):
    """Version and dates (版本、更新日期、生效日期)."""

    label: str = Field(description="Yinsi's identifier of this version; unique per tenant")
    stated_version: Stated[str]
    updated_date: Stated[date]
    effective_date: Stated[date]


CollectionMethod = Literal[
    "user_provided", "device_permission", "automatic", "third_party", "sdk", "generated", "unstated",
]


class Collection(Sourced):
    """One PI item a feature collects (收集的个人信息)."""

    item: str
    required: bool = True
    method: CollectionMethod = "user_provided"


class FeaturePermission(Sourced):
    """A device permission a feature asks for, and why (P1)."""

    permission: str
    purpose: str | None = None
    timing: Literal["on_use", "first_run", "app_update", "unstated"] = Field(
        default="unstated", description="when the app asks: when the function starts, or up front (P1)"
    )


class SensitiveNotice(Sourced):
    """PIPL 30: why a sensitive item is necessary, and its impact on the person."""

    items: list[str]
    necessity: str | None = None
    impact: str | None = None


class FeatureKind(StrEnum):
    """Basic (基本业务功能) or extended (扩展业务功能) function."""

    BASIC = "basic"
    EXTENDED = "extended"


class Feature(Sourced):
    """A business function (业务功能) with what it collects and why."""

    id: str
    name: str
    kind: FeatureKind
    kind_source: Source | None = Field(
        default=None, description="where the text says basic/extended, or silent with the reasoning"
    )
    purposes: list[str]
    collections: list[Collection] = Field(default_factory=list)
    collects_nothing: bool = Field(default=False, description="the text says this function collects no PI")
    legal_basis: LegalBasis
    legal_basis_source: Source | None = None
    permissions: list[FeaturePermission] = Field(default_factory=list)
    sdks: list[str] = Field(default_factory=list)
    separate_consent: bool | None = Field(
        default=None, description="the text says sensitive PI here is processed only with separate consent"
    )
    sensitive_notice: list[SensitiveNotice] = Field(default_factory=list)
    refusal_impact: str | None = None
    personalized: bool = False
    opt_out: Channel | None = None

    def item_ids(self) -> list[str]:
        return [c.item for c in self.collections]


class Sdk(Sourced):
    """A third-party SDK embedded in the app (第三方SDK)."""

    id: str
    name: str
    provider: str | None = None
    purpose: str | None = None
    scenario: str | None = None
    items: list[str] = Field(default_factory=list)
    collection_method: str | None = None
    policy_url: str | None = None


RecipientKind = Literal[
    "affiliate", "partner", "payment_institution", "entrusted_processor", "sdk_provider", "authority",
    "transferee", "counterparty", "public", "other",
]

RECIPIENT_KIND_ZH: dict[str, str] = {
    "affiliate": "关联公司", "partner": "授权合作伙伴", "payment_institution": "支付机构",
    "entrusted_processor": "受托处理者", "sdk_provider": "SDK提供方", "authority": "国家机关",
    "transferee": "受让方", "counterparty": "交易对方", "public": "公开披露", "other": "其他",
}

RecipientAction = Literal["provide", "entrust", "disclose", "transfer", "transfer_abroad"]


class Recipient(Sourced):
    """A party that receives PI (共享、委托、转让、公开披露的对象)."""

    id: str
    name: str
    kind: RecipientKind
    action: RecipientAction = "provide"
    contact: str | None = None
    items: list[str] = Field(default_factory=list)
    purpose: str | None = None
    method: str | None = None
    legal_basis: LegalBasis = LegalBasis.CONSENT
    separate_consent: bool | None = None
    contract: bool | None = Field(default=None, description="V2: an entrustment/confidentiality contract")
    abroad: bool = False


CrossBorder = Literal["none", "possible_with_consent", "yes", "unstated"]


class Storage(Sourced):
    """Where PI is stored and the cross-border stance (存储地点、跨境传输)."""

    location: str | None = None
    cross_border: CrossBorder = "unstated"
    mechanism: str | None = Field(default=None, description="X1: assessment, certification, contract")


class LegalHold(Sourced):
    """A statutory minimum retention (法定保存期限)."""

    basis: str
    min_days: int | None = Field(default=None, ge=1)


RetentionAction = Literal["delete", "anonymise", "delete_or_anonymise", "unstated"]


class RetentionRule(Sourced):
    """How long items are kept and what happens at expiry (N3, T1)."""

    items: list[str] = Field(description="PI item ids, or ['*'] for a policy-wide default")
    period_days: int | None = Field(default=None, ge=1)
    determination: str | None = Field(default=None, description="how the period is determined")
    generic: bool = Field(
        default=False,
        description="the text only restates the principle (目的所必需的期间) without a period or a way to determine it",
    )
    trigger: str | None = None
    action: RetentionAction = "unstated"
    legal_hold: LegalHold | None = None


class RightKind(StrEnum):
    """The person's rights (个人在个人信息处理活动中的权利)."""

    ACCESS = "access"
    COPY = "copy"
    PORTABILITY = "portability"
    CORRECTION = "correction"
    SUPPLEMENT = "supplement"
    DELETION = "deletion"
    RESTRICTION = "restriction"
    WITHDRAW_CONSENT = "withdraw_consent"
    CANCEL_ACCOUNT = "cancel_account"
    EXPLANATION = "explanation"
    REFUSE_AUTOMATED_DECISION = "refuse_automated_decision"
    DECEASED_RELATIVES = "deceased_relatives"
    COMPLAINT = "complaint"


RIGHT_ZH: dict[RightKind, str] = {
    RightKind.ACCESS: "查阅", RightKind.COPY: "复制", RightKind.PORTABILITY: "转移",
    RightKind.CORRECTION: "更正", RightKind.SUPPLEMENT: "补充", RightKind.DELETION: "删除",
    RightKind.RESTRICTION: "限制处理", RightKind.WITHDRAW_CONSENT: "撤回同意",
    RightKind.CANCEL_ACCOUNT: "注销账号", RightKind.EXPLANATION: "要求解释说明",
    RightKind.REFUSE_AUTOMATED_DECISION: "拒绝仅通过自动化决策作出决定",
    RightKind.DECEASED_RELATIVES: "近亲属对死者个人信息的权利", RightKind.COMPLAINT: "投诉举报",
}

# NDSR 21(4): the rights a policy must list (N4).
REQUIRED_RIGHTS: tuple[RightKind, ...] = (
    RightKind.ACCESS, RightKind.COPY, RightKind.PORTABILITY, RightKind.CORRECTION, RightKind.SUPPLEMENT,
    RightKind.DELETION, RightKind.RESTRICTION, RightKind.CANCEL_ACCOUNT, RightKind.WITHDRAW_CONSENT,
)


class Right(Sourced):
    """A right the policy offers, with its channels and reply time."""

    right: RightKind
    channels: list[Channel] = Field(default_factory=list)
    reply_time: ReplyTime | None = Field(default=None, description="null: the general response_time applies")
    conditions: str | None = None


class Prerequisite(Sourced):
    """A condition before an account can be cancelled (注销前提条件)."""

    description: str


class Cancellation(Sourced):
    """Account cancellation (注销账号)."""

    channels: list[Channel] = Field(default_factory=list)
    prerequisites: list[Prerequisite] = Field(default_factory=list)
    reply_time: ReplyTime | None = None
    effects: str | None = None


class Minors(Sourced):
    """Minors' protection (未成年人个人信息保护)."""

    adult_age: int | None = None
    self_supporting_16: bool | None = Field(default=None, description="16+ living on own income = adult")
    guardian_consent_under: int | None = Field(default=None, description="age below which a guardian consents")
    unverified_deletion: bool | None = Field(default=None, description="M3: PI without guardian consent deleted")


class IncidentNotice(Sourced):
    """How people are told of a security incident (个人信息安全事件告知)."""

    channels: list[ChannelKind] = Field(default_factory=list)
    announcement: bool = False
    contents: list[str] = Field(default_factory=list)


class PolicyChanges(Sourced):
    """Policy update rules (隐私政策的更新)."""

    major_change_criteria: list[int] = Field(default_factory=list, description="which of the six are listed")
    notice_channels: list[ChannelKind] = Field(default_factory=list)
    continued_use_is_acceptance: bool = False
    archive_old_versions: bool | None = None
    no_reduction_of_rights: bool | None = None
    notice_days: int | None = Field(
        default=None, ge=0, le=365,
        description="notices of a change reach people at least this many days before it takes effect (null: "
                    "before the effective date)",
    )

    @model_validator(mode="after")
    def _criteria_range(self) -> PolicyChanges:
        bad = [c for c in self.major_change_criteria if c not in range(1, 7)]
        if bad:
            raise ValueError(f"major_change_criteria are numbered 1-6, got {bad}")
        return self


DisputeKind = Literal["regulator", "court", "arbitration", "consumer_association", "other"]


class DisputeRoute(Sourced):
    """A complaint or dispute route outside the company (争议解决)."""

    kind: DisputeKind
    value: str


#: How a case's wording names the PIPL 13 (3)–(7) basis it rests on, checked in this order (an already-public
#: source mentioning news reports is public information; a duty to the authorities before "other law").
_EXCEPTION_WORDING: tuple[tuple[LegalBasis, re.Pattern[str]], ...] = (
    (LegalBasis.PUBLIC_INFO, re.compile(r"自行.{0,12}公[开開]|合法公[开開]|已公[开開]|已[经經]公[开開]")),
    (LegalBasis.NEWS_REPORTING, re.compile(r"新[闻聞][报報]道|[舆輿][论論][监監]督")),
    (LegalBasis.EMERGENCY, re.compile(r"公共[卫衛]生|突[发發]|生命|健康")),
    (LegalBasis.STATUTORY_DUTY, re.compile(r"[国國]家安全|[国國]防安全|犯罪[侦偵]查|起[诉訴]|[审審][判批]|判[决決]执行|判決執行|"
                                           r"司法|行政机[关構]|主管部[门門]|[强強]制性要求|法定[职職][责責]|法定[义義][务務]|"
                                           r"[规規]定的[义義][务務]|[监監]管部[门門]")),
    (LegalBasis.OTHER_LAW, re.compile(r"法律法[规規].{0,8}[规規]定的其他|法律、行政法[规規][规規]定|法律法[规規]另有[规規]定")),
)
EXCEPTION_BASES = frozenset(b for b, _ in _EXCEPTION_WORDING)


class ExceptionCase(Sourced):
    """One case where PI is processed without consent (征得授权同意的例外)."""

    text: str
    basis: LegalBasis | None = Field(
        default=None, description="the PIPL 13 (3)–(7) basis the case rests on; default: read from the text"
    )

    @model_validator(mode="after")
    def _exception_basis_only(self) -> ExceptionCase:
        if self.basis is not None and self.basis not in EXCEPTION_BASES:
            raise ValueError(f"basis of a case without consent must be one of "
                             f"{', '.join(sorted(b.value for b in EXCEPTION_BASES))}")
        return self

    def exception_basis(self) -> LegalBasis | None:
        """The basis this case declares: ``basis`` if given, else the first the wording names (None when it
        names none, e.g. academic research or a contract)."""
        if self.basis is not None:
            return self.basis
        return next((b for b, pattern in _EXCEPTION_WORDING if pattern.search(self.text)), None)


class ConsentExceptions(Sourced):
    """The lists of cases processed without consent, as the policy states them."""

    collection: list[ExceptionCase] = Field(default_factory=list)
    sharing: list[ExceptionCase] = Field(default_factory=list)


SecurityMeasureKind = Literal[
    "encryption", "masking", "deidentification", "access_control", "audit", "authentication", "backup",
    "training", "incident_plan", "risk_control", "other",
]


class SecurityMeasure(Sourced):
    """A protection measure the policy promises (安全保护措施)."""

    measure: SecurityMeasureKind
    items: list[str] = Field(default_factory=list)
    description: str


class AutomatedDecision(Sourced):
    """An automated decision-making use (自动化决策, PIPL 24)."""

    purpose: str
    opt_out: Channel | None = None


class Declaration(Model):
    """One app version's privacy declaration."""

    schema_version: Literal[1] = 1
    tenant: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    source_file: str = Field(description="the published policy text this declaration encodes")
    app: App
    version: VersionInfo
    controller: Controller
    features: list[Feature]
    sdks: list[Sdk] = Field(default_factory=list)
    recipients: list[Recipient] = Field(default_factory=list)
    storage: Storage
    retention: list[RetentionRule] = Field(default_factory=list)
    security_measures: list[SecurityMeasure] = Field(default_factory=list)
    response_time: ReplyTime
    rights: list[Right] = Field(default_factory=list)
    account_cancellation: Cancellation | None = None
    automated_decisions: list[AutomatedDecision] = Field(default_factory=list)
    minors: Minors
    incident_notice: IncidentNotice
    policy_changes: PolicyChanges
    disputes: list[DisputeRoute] = Field(default_factory=list)
    consent_exceptions: ConsentExceptions

    @model_validator(mode="before")
    @classmethod
    def _fill_source_files(cls, data: Any) -> Any:
        """Sources without a ``file`` refer to the declaration's ``source_file``."""
        if isinstance(data, dict) and isinstance(data.get("source_file"), str):
            _fill_file(data, data["source_file"])
        return data

    @model_validator(mode="after")
    def _references(self) -> Declaration:
        tax = taxonomy()
        errors: list[tuple[Loc, str]] = []
        for field, label, ids in (("features", "feature", [f.id for f in self.features]),
                                  ("sdks", "sdk", [s.id for s in self.sdks]),
                                  ("recipients", "recipient", [r.id for r in self.recipients])):
            for k, i in enumerate(ids):
                if ids.index(i) != k:
                    errors.append(((field, k, "id"), f"duplicate {label} id {i!r}"))
        for k, t in enumerate(self.app.product_types):
            if t not in tax.app_types:
                errors.append((("app", "product_types", k), f"unknown app type {t!r} (必要个人信息范围规定)"))
        sdk_ids = {s.id for s in self.sdks}
        for loc, item in self.iter_item_refs():
            if item != "*" and item not in tax.items:
                errors.append((loc, f"unknown PI item {item!r} (see domain/data/pi_items.yaml)"))
        for fk, f in enumerate(self.features):
            for pk, p in enumerate(f.permissions):
                if p.permission not in tax.permissions:
                    errors.append((("features", fk, "permissions", pk, "permission"),
                                   f"unknown permission {p.permission!r} (see domain/data/permissions.yaml)"))
            for sk, s in enumerate(f.sdks):
                if s not in sdk_ids:
                    errors.append((("features", fk, "sdks", sk), f"no SDK with id {s!r} in sdks"))
        kinds = [r.right for r in self.rights]
        for k, kind in enumerate(kinds):
            if kinds.index(kind) != k:
                errors.append((("rights", k, "right"), f"right {kind.value!r} listed twice"))
        if errors:
            raise ReferenceErrors(errors)
        return self

    # --- derived views -------------------------------------------------------------------------
    def iter_item_refs(self) -> Iterator[tuple[Loc, str]]:
        """Every PI item id referenced anywhere, with its location in the declaration."""
        for fk, f in enumerate(self.features):
            for ck, c in enumerate(f.collections):
                yield ("features", fk, "collections", ck, "item"), c.item
            for nk, n in enumerate(f.sensitive_notice):
                for ik, i in enumerate(n.items):
                    yield ("features", fk, "sensitive_notice", nk, "items", ik), i
        for sk, s in enumerate(self.sdks):
            for ik, i in enumerate(s.items):
                yield ("sdks", sk, "items", ik), i
        for rk, r in enumerate(self.recipients):
            for ik, i in enumerate(r.items):
                yield ("recipients", rk, "items", ik), i
        for k, rule in enumerate(self.retention):
            for ik, i in enumerate(rule.items):
                yield ("retention", k, "items", ik), i
        for k, m in enumerate(self.security_measures):
            for ik, i in enumerate(m.items):
                yield ("security_measures", k, "items", ik), i

    def collected_items(self) -> list[str]:
        """Every PI item any feature collects, in first-seen order."""
        seen: dict[str, None] = {}
        for f in self.features:
            for c in f.collections:
                seen.setdefault(c.item, None)
        return list(seen)

    def shared_items(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.recipients:
            for i in r.items:
                seen.setdefault(i, None)
        return list(seen)

    def feature(self, feature_id: str) -> Feature | None:
        return next((f for f in self.features if f.id == feature_id), None)

    def recipient(self, recipient_id: str) -> Recipient | None:
        return next((r for r in self.recipients if r.id == recipient_id), None)

    def right(self, kind: RightKind) -> Right | None:
        return next((r for r in self.rights if r.right is kind), None)

    def reply_time_for(self, kind: RightKind) -> ReplyTime:
        r = self.right(kind)
        return r.reply_time if r is not None and r.reply_time is not None else self.response_time

    def iter_sources(self) -> Iterator[tuple[str, Source]]:
        """Every source in the declaration with its path, for faithfulness checks."""
        yield from _walk_sources(self, "")


def _fill_file(node: Any, file: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("source", "legal_basis_source", "kind_source") and isinstance(value, dict):
                value.setdefault("file", file)
            else:
                _fill_file(value, file)
    elif isinstance(node, list):
        for value in node:
            _fill_file(value, file)


def _walk_sources(node: Any, path: str) -> Iterator[tuple[str, Source]]:
    if isinstance(node, Source):
        yield path, node
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _walk_sources(getattr(node, name), f"{path}.{name}" if path else name)
    elif isinstance(node, list):
        for k, value in enumerate(node):
            key = getattr(value, "id", None) or k
            yield from _walk_sources(value, f"{path}[{key}]")
