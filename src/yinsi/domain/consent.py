"""Consent and permission ledger (同意与权限台账): events, scopes, validation and the projection.

Facts are append-only events; a subject's current state is a projection obtained by replaying them.
``apply_consent`` and ``apply_permission`` are the only transitions, used both incrementally and by a full
rebuild, so that the two can never disagree.

Scopes name what a consent covers:

- ``policy``: acceptance of a policy version (一般同意), the basis of every consent-based processing;
- ``feature:<id>``: an extended function (扩展业务功能), refusable without affecting others (C7);
- ``item:<feature>:<item>``: separate consent (单独同意) to a sensitive PI item for one function (C4, PIPL 29);
- ``recipient:<id>``: separate consent to providing PI to a recipient (PIPL 23) or disclosing it (PIPL 25);
- ``cross_border:<recipient>``: separate consent to a transfer abroad (PIPL 39);
- ``guardian``: a parent's or guardian's consent for a child (监护人同意, PIPL 31).

A person may also restrict processing (限制处理, PIPL 44; N4): a restriction event places or lifts one
restriction scope, ``all`` or ``feature:<id>``. ``apply_restriction`` is its one transition; the gate
refuses restricted processing unless a law requires it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from yinsi.domain.policy import Declaration
from yinsi.domain.taxonomy import ConsentKind, taxonomy

POLICY = "policy"
GUARDIAN = "guardian"


def feature_scope(feature_id: str) -> str:
    return f"feature:{feature_id}"


def item_scope(feature_id: str, item: str) -> str:
    return f"item:{feature_id}:{item}"


def recipient_scope(recipient_id: str) -> str:
    return f"recipient:{recipient_id}"


def cross_border_scope(recipient_id: str) -> str:
    return f"cross_border:{recipient_id}"


class EventType(StrEnum):
    """What happened to a consent."""

    GIVEN = "given"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    INVALIDATED = "invalidated"
    RENEWED = "renewed"


class Status(StrEnum):
    """The current state of a consent scope."""

    ACTIVE = "active"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    INVALIDATED = "invalidated"


_TRANSITION: dict[EventType, Status] = {
    EventType.GIVEN: Status.ACTIVE,
    EventType.RENEWED: Status.ACTIVE,
    EventType.REFUSED: Status.REFUSED,
    EventType.WITHDRAWN: Status.WITHDRAWN,
    EventType.EXPIRED: Status.EXPIRED,
    EventType.INVALIDATED: Status.INVALIDATED,
}

STATUS_ZH: dict[Status, str] = {
    Status.ACTIVE: "有效", Status.REFUSED: "已拒绝", Status.WITHDRAWN: "已撤回", Status.EXPIRED: "已过期",
    Status.INVALIDATED: "已失效（政策变更）",
}

CHANNELS = ("app", "web", "phone", "staff")


RESTRICT_ALL = "all"


class RestrictionEventType(StrEnum):
    """What happened to a restriction of processing (限制处理)."""

    PLACED = "placed"
    LIFTED = "lifted"


class PermissionEventType(StrEnum):
    """What happened to a device permission."""

    GRANTED = "granted"
    DENIED = "denied"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One consent fact, with the fields of an ISO/IEC TS 27560 consent record."""

    record_id: str
    tenant: str
    subject: str
    scope: str
    kind: ConsentKind
    event: EventType
    policy_label: str
    shown_hash: str
    event_time: datetime
    purposes: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    disclosures: Mapping[str, str] = field(default_factory=dict)
    controller: str = ""
    storage_location: str | None = None
    retention: str | None = None
    jurisdiction: str = "CN"
    withdrawal_method: str | None = None
    channel: str = "app"
    collection_method: str = "click"
    language: str = "zh-CN"
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class PermissionEvent:
    """One device-permission fact."""

    tenant: str
    subject: str
    device: str
    permission: str
    event: PermissionEventType
    event_time: datetime
    feature: str | None = None


@dataclass(frozen=True, slots=True)
class RestrictionEvent:
    """One restriction fact: ``scope`` is ``all`` or ``feature:<id>``; ``request_ref`` the rights request."""

    tenant: str
    subject: str
    scope: str
    event: RestrictionEventType
    event_time: datetime
    request_ref: str | None = None
    actor: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ScopeState:
    """The projected state of one consent scope."""

    status: Status
    kind: ConsentKind
    policy_label: str
    event_time: datetime
    last_event_id: int


@dataclass(frozen=True, slots=True)
class PermissionState:
    """The projected state of one permission on one device."""

    status: PermissionEventType
    changed_at: datetime
    last_denied_at: datetime | None
    last_event_id: int


@dataclass
class SubjectState:
    """Everything the gate needs to know about one subject."""

    consents: dict[str, ScopeState] = field(default_factory=dict)
    permissions: dict[tuple[str, str], PermissionState] = field(default_factory=dict)
    birth_date: date | None = None
    #: restriction scope (``all`` or ``feature:<id>``) → since when (PIPL 44)
    restrictions: dict[str, datetime] = field(default_factory=dict)

    def restricted_since(self, feature: str | None) -> tuple[str, datetime] | None:
        """The restriction covering processing for ``feature`` (``all`` first), if any."""
        if not self.restrictions:
            return None
        for scope in (RESTRICT_ALL, f"feature:{feature}" if feature else None):
            if scope is not None and scope in self.restrictions:
                return scope, self.restrictions[scope]
        return None

    def permission_granted(self, permission: str, device: str | None) -> bool:
        if device is not None:
            st = self.permissions.get((device, permission))
            return st is not None and st.status is PermissionEventType.GRANTED
        return any(p == permission and st.status is PermissionEventType.GRANTED
                   for (_, p), st in self.permissions.items())


def apply_consent(state: SubjectState, event: ConsentEvent, event_id: int) -> None:
    """The one consent transition: the scope takes the status the event implies."""
    state.consents[event.scope] = ScopeState(
        _TRANSITION[event.event], event.kind, event.policy_label, event.event_time, event_id
    )


def apply_permission(state: SubjectState, event: PermissionEvent, event_id: int) -> None:
    """The one permission transition; a denial or revocation starts the quiet period (C8)."""
    key = (event.device, event.permission)
    before = state.permissions.get(key)
    denied_at = event.event_time if event.event is not PermissionEventType.GRANTED else (
        before.last_denied_at if before else None)
    state.permissions[key] = PermissionState(event.event, event.event_time, denied_at, event_id)


def apply_restriction(restrictions: dict[str, datetime], event: RestrictionEvent) -> None:
    """The one restriction transition: placing keeps the earliest time; lifting ends it."""
    if event.event is RestrictionEventType.PLACED:
        restrictions.setdefault(event.scope, event.event_time)
    else:
        restrictions.pop(event.scope, None)


def replay(consents: Iterable[tuple[int, ConsentEvent]], permissions: Iterable[tuple[int, PermissionEvent]] = (),
           birth_date: date | None = None,
           restrictions: Iterable[tuple[int, RestrictionEvent]] = ()) -> SubjectState:
    """The state obtained from events in id order (a full rebuild)."""
    state = SubjectState(birth_date=birth_date)
    for event_id, ev in sorted(consents, key=lambda p: p[0]):
        apply_consent(state, ev, event_id)
    for event_id, pev in sorted(permissions, key=lambda p: p[0]):
        apply_permission(state, pev, event_id)
    for _, rev in sorted(restrictions, key=lambda p: p[0]):
        apply_restriction(state.restrictions, rev)
    return state


def check_restriction_scope(decl: Declaration, scope: str) -> None:
    """``all`` or ``feature:<id>`` of a declared function; else :class:`ConsentRejected`."""
    if scope == RESTRICT_ALL:
        return
    kind, _, fid = scope.partition(":")
    if kind != "feature" or not fid:
        raise ConsentRejected(f"限制处理的范围应为 all 或 feature:<功能>，而不是 {scope!r}")
    if decl.feature(fid) is None:
        names = "、".join(f.id for f in decl.features)
        raise ConsentRejected(f"功能「{fid}」未在隐私政策中声明（可选：{names}）")


# --- validation against the declaration ---------------------------------------------------------

class ConsentRejected(ValueError):
    """A consent event that the declaration or the law does not allow; ``missing`` names what is lacking."""

    def __init__(self, message: str, missing: list[str] | None = None) -> None:
        self.missing = missing or []
        super().__init__(message)


# Disclosures the law requires to be shown before each kind of separate consent.
DISCLOSURE_ZH: dict[str, str] = {
    "recipient_name": "接收方名称", "recipient_contact": "接收方联系方式", "purpose": "处理目的",
    "method": "处理方式", "items": "个人信息种类", "necessity": "处理敏感个人信息的必要性",
    "impact": "对个人权益的影响", "rights_method": "向境外接收方行使权利的方式", "guardian": "监护人",
}
REQUIRED_DISCLOSURES: dict[str, tuple[str, ...]] = {
    "recipient": ("recipient_name", "recipient_contact", "purpose", "method", "items"),  # PIPL 23
    "disclosure": ("purpose", "items"),  # PIPL 25
    "cross_border": ("recipient_name", "recipient_contact", "purpose", "method", "items", "rights_method"),  # 39
    "item": ("purpose", "necessity", "impact"),  # PIPL 29, 30
}


def scope_kind(scope: str) -> str:
    return scope.split(":", 1)[0]


def required_consent_kind(scope: str) -> ConsentKind:
    k = scope_kind(scope)
    if k == GUARDIAN:
        return ConsentKind.GUARDIAN
    if k in ("item", "recipient", "cross_border"):
        return ConsentKind.SEPARATE
    return ConsentKind.GENERAL


def declared_disclosures(decl: Declaration, scope: str) -> dict[str, str]:
    """What the declaration itself states for a scope's separate-consent dialog."""
    tax = taxonomy()
    kind = scope_kind(scope)
    out: dict[str, str] = {}
    if kind in ("recipient", "cross_border"):
        r = decl.recipient(scope.split(":", 1)[1])
        if r is not None:
            pairs = {"recipient_name": r.name, "recipient_contact": r.contact, "purpose": r.purpose,
                     "method": r.method, "items": "、".join(tax.item(i).name for i in r.items if i in tax.items)}
            out = {k: v for k, v in pairs.items() if v}
    elif kind == "item":
        _, fid, item = scope.split(":", 2)
        f = decl.feature(fid)
        if f is not None:
            if f.purposes:
                out["purpose"] = "；".join(f.purposes)
            for n in f.sensitive_notice:
                if item in n.items:
                    if n.necessity:
                        out["necessity"] = n.necessity
                    if n.impact:
                        out["impact"] = n.impact
    return out


def check_scope(decl: Declaration, scope: str) -> None:
    """Raise ConsentRejected unless the scope names something the declaration declares."""
    kind = scope_kind(scope)
    parts = scope.split(":")
    if scope in (POLICY, GUARDIAN):
        return
    if kind == "feature" and len(parts) == 2:
        if decl.feature(parts[1]) is None:
            raise ConsentRejected(f"声明中没有功能「{parts[1]}」，不能就其记录同意（N1）")
        return
    if kind == "item" and len(parts) == 3:
        f = decl.feature(parts[1])
        if f is None:
            raise ConsentRejected(f"声明中没有功能「{parts[1]}」（N1）")
        if parts[2] not in f.item_ids():
            raise ConsentRejected(f"功能「{f.name}」未声明收集个人信息项「{parts[2]}」（N1）")
        return
    if kind in ("recipient", "cross_border") and len(parts) == 2:
        r = decl.recipient(parts[1])
        if r is None:
            raise ConsentRejected(f"声明中没有接收方「{parts[1]}」（V1）")
        if kind == "cross_border" and not r.abroad and decl.storage.cross_border in ("none", "unstated"):
            raise ConsentRejected("声明未说明向境外提供个人信息，不能记录出境同意（X1）")
        return
    raise ConsentRejected(f"无法识别的同意范围「{scope}」；可用：policy、guardian、feature:功能、"
                          "item:功能:个人信息项、recipient:接收方、cross_border:接收方")


def validate_event(decl: Declaration, event: ConsentEvent) -> None:
    """A consent event must name a declared scope, be of the kind the law requires for it, and — when it is
    given — carry every disclosure the law requires to have been shown (PIPL 23, 25, 29-31, 39)."""
    check_scope(decl, event.scope)
    need = required_consent_kind(event.scope)
    if event.event in (EventType.GIVEN, EventType.RENEWED):
        if need is ConsentKind.SEPARATE and event.kind not in (ConsentKind.SEPARATE, ConsentKind.WRITTEN,
                                                                ConsentKind.GUARDIAN):
            raise ConsentRejected(f"「{event.scope}」需要单独同意，勾选同意隐私政策不构成单独同意（C4）")
        if need is ConsentKind.GUARDIAN and event.kind is not ConsentKind.GUARDIAN:
            raise ConsentRejected("未成年人的同意须由其父母或其他监护人作出（M1）")
        if (need is ConsentKind.GUARDIAN or event.kind is ConsentKind.GUARDIAN) and not event.actor:
            raise ConsentRejected("监护人同意须记录作出同意的监护人（M1）", ["guardian"])
        required = _required_for(decl, event.scope)
        missing = [k for k in required if not (event.disclosures.get(k) or "").strip()]
        if missing:
            names = "、".join(DISCLOSURE_ZH[k] for k in missing)
            rule = {"recipient": "V1（PIPL 23）", "cross_border": "X1（PIPL 39）", "item": "C4（PIPL 29、30）",
                    "disclosure": "C4（PIPL 25）"}.get(_disclosure_key(decl, event.scope), "C4")
            raise ConsentRejected(f"单独同意缺少法定告知事项：{names}，不能记录为有效同意（{rule}）", missing)
    if event.channel not in CHANNELS:
        raise ConsentRejected(f"未知的渠道「{event.channel}」；可用：{'、'.join(CHANNELS)}")


def _disclosure_key(decl: Declaration, scope: str) -> str:
    kind = scope_kind(scope)
    if kind == "recipient":
        r = decl.recipient(scope.split(":", 1)[1])
        return "disclosure" if r is not None and r.action == "disclose" else "recipient"
    return kind


def _required_for(decl: Declaration, scope: str) -> tuple[str, ...]:
    return REQUIRED_DISCLOSURES.get(_disclosure_key(decl, scope), ())


def disclosures_hash(disclosures: Mapping[str, str]) -> str:
    """SHA-256 of exactly what a dialog showed (canonical JSON)."""
    text = json.dumps(dict(disclosures), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- age -------------------------------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def birth_date_from_id_number(id_number: str) -> date:
    """The birth date encoded in an 18-digit resident ID number (checksum verified, ISO 7064 MOD 11-2)."""
    s = id_number.strip().upper()
    if len(s) != 18 or not s[:17].isdigit() or s[17] not in "0123456789X":
        raise ValueError("身份证号码应为18位（最后一位可为X）")
    if _ID_CHECK[sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS, strict=True)) % 11] != s[17]:
        raise ValueError("身份证号码校验位不正确")
    try:
        return date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise ValueError("身份证号码中的出生日期无效") from None


def age_on(birth: date, today: date) -> int:
    """Full years of age on ``today`` (周岁)."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
