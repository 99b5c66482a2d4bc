"""Rights requests (个人信息权利请求): types, the state machine, refusal grounds and prerequisites.

A request moves from intake to close through explicit transitions. A refusal always carries a ground
from RULES R7 (PIPL 50): the type makes a refusal without a reason impossible. "Completed" is reached only
from verification of what was done (R11: the UI may only show "done" when the back end really did it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from yinsi.domain.policy import Declaration, RightKind


class RequestType(StrEnum):
    """What the person asks for."""

    ACCESS = "access"  # 查阅 (PIPL 45)
    COPY = "copy"  # 复制 (PIPL 45)
    PORTABILITY = "portability"  # 转移 (PIPL 45, R2)
    CORRECTION = "correction"  # 更正 (PIPL 46)
    SUPPLEMENT = "supplement"  # 补充 (PIPL 46)
    DELETION = "deletion"  # 删除 (PIPL 47, R4)
    RESTRICTION = "restriction"  # 限制处理 (PIPL 44)
    WITHDRAW_CONSENT = "withdraw_consent"  # 撤回同意 (PIPL 15)
    CANCEL_ACCOUNT = "cancel_account"  # 注销账号 (R9)
    EXPLANATION = "explanation"  # 解释说明 (PIPL 48, 24; R5)
    DECEASED = "deceased"  # 近亲属请求 (PIPL 49; R6)
    COMPLAINT = "complaint"  # 投诉 (R10)


REQUEST_ZH: dict[RequestType, str] = {
    RequestType.ACCESS: "查阅", RequestType.COPY: "复制", RequestType.PORTABILITY: "转移",
    RequestType.CORRECTION: "更正", RequestType.SUPPLEMENT: "补充", RequestType.DELETION: "删除",
    RequestType.RESTRICTION: "限制处理", RequestType.WITHDRAW_CONSENT: "撤回同意",
    RequestType.CANCEL_ACCOUNT: "注销账号", RequestType.EXPLANATION: "解释说明",
    RequestType.DECEASED: "近亲属行使死者个人信息权利", RequestType.COMPLAINT: "投诉",
}

# The right of the declaration whose promise (channels, reply time) governs each request type.
RIGHT_OF: dict[RequestType, RightKind] = {
    RequestType.ACCESS: RightKind.ACCESS, RequestType.COPY: RightKind.COPY,
    RequestType.PORTABILITY: RightKind.PORTABILITY, RequestType.CORRECTION: RightKind.CORRECTION,
    RequestType.SUPPLEMENT: RightKind.SUPPLEMENT, RequestType.DELETION: RightKind.DELETION,
    RequestType.RESTRICTION: RightKind.RESTRICTION, RequestType.WITHDRAW_CONSENT: RightKind.WITHDRAW_CONSENT,
    RequestType.CANCEL_ACCOUNT: RightKind.CANCEL_ACCOUNT, RequestType.EXPLANATION: RightKind.EXPLANATION,
    RequestType.DECEASED: RightKind.DECEASED_RELATIVES, RequestType.COMPLAINT: RightKind.COMPLAINT,
}


class State(StrEnum):
    """Where a request stands."""

    UNVERIFIED = "unverified"  # 已受理，待核验身份
    VERIFIED = "verified"  # 身份已核验
    CONFIRMED = "confirmed"  # 本人已确认注销（此后不可撤回）
    IN_PROGRESS = "in_progress"  # 执行中
    WAITING_MANUAL = "waiting_manual"  # 等待人工步骤
    COMPLETED = "completed"  # 已完成（已核实）
    REFUSED = "refused"  # 已拒绝（附理由）
    ERROR = "error"  # 出错，可重试
    WITHDRAWN = "withdrawn"  # 申请人撤回


STATE_ZH: dict[State, str] = {
    State.UNVERIFIED: "待核验身份", State.VERIFIED: "身份已核验", State.CONFIRMED: "已确认注销（不可撤回）",
    State.IN_PROGRESS: "处理中",
    State.WAITING_MANUAL: "等待人工处理", State.COMPLETED: "已完成", State.REFUSED: "已拒绝",
    State.ERROR: "出错（可重试）", State.WITHDRAWN: "已撤回申请",
}

OPEN_STATES = frozenset({State.UNVERIFIED, State.VERIFIED, State.CONFIRMED, State.IN_PROGRESS, State.WAITING_MANUAL,
                         State.ERROR})

TRANSITIONS: dict[State, frozenset[State]] = {
    State.UNVERIFIED: frozenset({State.VERIFIED, State.REFUSED, State.WITHDRAWN}),
    State.VERIFIED: frozenset({State.CONFIRMED, State.IN_PROGRESS, State.REFUSED, State.WITHDRAWN}),
    # Confirmed cancellation is irreversible: the person can no longer withdraw it.
    State.CONFIRMED: frozenset({State.IN_PROGRESS, State.REFUSED}),
    State.IN_PROGRESS: frozenset({State.WAITING_MANUAL, State.COMPLETED, State.ERROR, State.REFUSED}),
    State.WAITING_MANUAL: frozenset({State.IN_PROGRESS, State.ERROR}),
    State.ERROR: frozenset({State.IN_PROGRESS, State.REFUSED}),
    State.COMPLETED: frozenset(),
    State.REFUSED: frozenset(),
    State.WITHDRAWN: frozenset(),
}


#: Request types that run only after the person confirmed them (irreversible once confirmed).
NEEDS_CONFIRMATION = frozenset({RequestType.CANCEL_ACCOUNT})


def may_start(rtype: RequestType, state: State) -> bool:
    """Whether a request of ``rtype`` in ``state`` may be executed now (a cancellation only once confirmed)."""
    if state in (State.IN_PROGRESS, State.ERROR, State.WAITING_MANUAL, State.CONFIRMED):
        return True
    return state is State.VERIFIED and rtype not in NEEDS_CONFIRMATION


class DeletionGround(StrEnum):
    """The grounds of PIPL 47 on which a person asks for deletion (R4)."""

    PURPOSE_DONE = "purpose_done"
    SERVICE_STOPPED = "service_stopped"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    UNLAWFUL = "unlawful"
    OTHER_LAW = "other_law"


DELETION_GROUND_ZH: dict[DeletionGround, str] = {
    DeletionGround.PURPOSE_DONE: "处理目的已实现、无法实现或者为实现处理目的不再必要",
    DeletionGround.SERVICE_STOPPED: "停止提供产品或者服务，或者保存期限已届满",
    DeletionGround.CONSENT_WITHDRAWN: "个人撤回同意",
    DeletionGround.UNLAWFUL: "违反法律、行政法规或者违反约定处理个人信息",
    DeletionGround.OTHER_LAW: "法律、行政法规规定的其他情形",
}


class RefusalGround(StrEnum):
    """Grounds for refusing a request (R7: PIPL 50, GB/T 35273 8.7, the seeds)."""

    LEGAL_DUTY = "legal_duty"
    NATIONAL_SECURITY = "national_security"
    PUBLIC_SAFETY = "public_safety"
    CRIMINAL_INVESTIGATION = "criminal_investigation"
    MALICE_OR_ABUSE = "malice_or_abuse"
    HARM_TO_OTHERS = "harm_to_others"
    TRADE_SECRET = "trade_secret"
    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    PREREQUISITE_UNMET = "prerequisite_unmet"
    PORTABILITY_CONDITIONS = "portability_conditions"
    RIGHT_NOT_APPLICABLE = "right_not_applicable"


REFUSAL_ZH: dict[RefusalGround, tuple[str, str]] = {
    RefusalGround.LEGAL_DUTY: ("R7", "与我们履行法律法规规定的义务相关"),
    RefusalGround.NATIONAL_SECURITY: ("R7", "与国家安全、国防安全直接相关"),
    RefusalGround.PUBLIC_SAFETY: ("R7", "与公共安全、公共卫生、重大公共利益直接相关"),
    RefusalGround.CRIMINAL_INVESTIGATION: ("R7", "与犯罪侦查、起诉、审判和执行判决等直接相关"),
    RefusalGround.MALICE_OR_ABUSE: ("R7", "有充分证据表明存在主观恶意或滥用权利"),
    RefusalGround.HARM_TO_OTHERS: ("R7", "响应请求将导致他人或组织的合法权益受到严重损害"),
    RefusalGround.TRADE_SECRET: ("R7", "涉及商业秘密"),
    RefusalGround.IDENTITY_NOT_VERIFIED: ("R8", "未能核验申请人的身份"),
    RefusalGround.PREREQUISITE_UNMET: ("R9", "未满足隐私政策载明的注销前提条件"),
    RefusalGround.PORTABILITY_CONDITIONS: ("R2", "不符合个人信息转移的条件"),
    RefusalGround.RIGHT_NOT_APPLICABLE: ("R7", "该项请求不适用于所涉个人信息"),
}


class InvalidTransition(ValueError):
    """A state change the machine does not allow."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refusal: a ground (with its rule) and a Chinese explanation for the person."""

    ground: RefusalGround
    detail: str

    @property
    def rule(self) -> str:
        return REFUSAL_ZH[self.ground][0]

    def message(self) -> str:
        return f"{REFUSAL_ZH[self.ground][1]}：{self.detail}（{self.rule}，PIPL 50）"


@dataclass(frozen=True, slots=True)
class Transition:
    """One recorded state change."""

    from_state: State | None
    to_state: State
    at: datetime
    actor: str
    note: str
    refusal: Refusal | None = None


def check_transition(current: State, to: State, refusal: Refusal | None) -> None:
    """Raise InvalidTransition unless ``current → to`` is allowed; a refusal must carry a ground."""
    if to not in TRANSITIONS[current]:
        raise InvalidTransition(f"请求状态不能从「{STATE_ZH[current]}」变为「{STATE_ZH[to]}」")
    if to is State.REFUSED and (refusal is None or not refusal.detail.strip()):
        raise InvalidTransition("拒绝请求必须说明理由（PIPL 50，R7）")
    if to is not State.REFUSED and refusal is not None:
        raise InvalidTransition("只有拒绝才附拒绝理由")


@dataclass(frozen=True, slots=True)
class Prerequisite:
    """A declared condition before cancellation, with the Chinese explanation for the person."""

    description: str
    met: bool | None  # None: Yinsi cannot check it; a person confirms it


def cancellation_prerequisites(decl: Declaration, facts: dict[str, bool]) -> list[Prerequisite]:
    """The declaration's cancellation prerequisites with what the app's data says of them.

    ``facts`` maps a prerequisite's description to whether it holds (checked by the service against the
    app's data, e.g. "no property bindings left"); a prerequisite without a fact is for a person to confirm.
    """
    c = decl.account_cancellation
    if c is None:
        return []
    return [Prerequisite(p.description, facts.get(p.description)) for p in c.prerequisites]
