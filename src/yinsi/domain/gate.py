"""The processing gate (处理闸门): may this processing of these PI items happen, and on what basis?

``decide`` answers every collection, use, provision, entrustment, disclosure, transfer abroad or automated
decision with a Decision: allowed or not, the legal basis (PIPL 13), what is missing (which consent, which
permission, a guardian's consent, re-consent after a policy change) and reasons citing RULES.md ids and
declaration elements. Anything the declaration does not declare is refused.

Speed: everything that depends only on the declaration and the request is compiled once into a ``Plan``
(memoised per request shape in ``CompiledPolicy``); ``decide`` then only looks up the subject's state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal

from yinsi.domain.consent import (
    GUARDIAN,
    POLICY,
    STATUS_ZH,
    PermissionEventType,
    ScopeState,
    Status,
    SubjectState,
    age_on,
    cross_border_scope,
    feature_scope,
    item_scope,
    recipient_scope,
    scope_kind,
)
from yinsi.domain.minors import OBJECTION, SELF_SUPPORTING, classify
from yinsi.domain.policy import Declaration, Feature, FeatureKind, Recipient
from yinsi.domain.taxonomy import ACTION_ZH, LEGAL_BASIS_ZH, Action, ConsentKind, LegalBasis, taxonomy

# Which device permission yields which PI items (for collection through a permission, P1).
PERMISSION_ITEMS: dict[str, frozenset[str]] = {
    "location": frozenset({"location.precise", "location.coarse", "location.track"}),
    "camera": frozenset({"biometric.face", "content.photos", "content.video", "identity.id_card_photo",
                         "identity.work_badge", "identity.business_card"}),
    "photos": frozenset({"device.photos", "content.photos", "content.video", "identity.id_card_photo",
                         "identity.work_badge", "basic.avatar"}),
    "storage": frozenset({"device.photos", "content.photos", "content.video", "identity.id_card_photo",
                          "identity.work_badge", "basic.avatar"}),
    "microphone": frozenset({"content.audio", "biometric.voiceprint"}),
    "contacts": frozenset({"contacts.address_book"}),
    "calendar": frozenset({"device.calendar"}),
    "phone_state": frozenset({"device.phone_state", "device.identifiers"}),
    "call_log": frozenset({"comms.call_log"}),
    "sms": frozenset({"comms.sms_content"}),
    "bluetooth": frozenset({"device.bluetooth"}),
    "notification_listener": frozenset({"comms.notifications"}),
    "clipboard": frozenset({"device.clipboard"}),
}

# C9: purposes that cannot justify forced consent ("improving experience / R&D / targeted push").
_C9 = re.compile(
    r"(改善|提升|优化|改進).{0,8}(体验|體驗|服务质量|服務質量)"
    r"|研发|研發|个性化|個性化|定向推送|精准营销|精準營銷|广告|廣告|推荐|推薦"
)

MissingKind = Literal["consent", "permission", "guardian", "reconsent"]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why: a RULES.md id, the declaration element it rests on, and a Chinese sentence."""

    rule: str
    element: str
    message: str


@dataclass(frozen=True, slots=True)
class Missing:
    """What must be obtained before the processing may happen."""

    kind: MissingKind
    scope: str
    consent_kind: ConsentKind | None
    rule: str
    message: str


@dataclass(frozen=True, slots=True)
class Request:
    """A processing the app asks about."""

    tenant: str
    subject: str
    action: Action
    feature: str | None = None
    purpose: str | None = None
    items: tuple[str, ...] = ()
    recipient: str | None = None
    destination: str | None = None
    device: str | None = None
    exception: str | None = None  # processing without consent: the PIPL 13 (3)–(7) basis code it rests on

    def key(self) -> tuple[Any, ...]:
        if self.exception is None:
            return (self.action, self.feature, self.purpose, self.items, self.recipient, self.destination)
        return (self.action, self.feature, self.purpose, self.items, self.recipient, self.destination, self.exception)


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's answer."""

    allowed: bool
    basis: LegalBasis | None
    missing: tuple[Missing, ...]
    reasons: tuple[Reason, ...]
    feature: str | None
    policy_label: str

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "basis": self.basis.value if self.basis else None,
            "feature": self.feature,
            "policy": self.policy_label,
            "missing": [{"kind": m.kind, "scope": m.scope,
                         "consent_kind": m.consent_kind.value if m.consent_kind else None,
                         "rule": m.rule, "message": m.message} for m in self.missing],
            "reasons": [{"rule": r.rule, "element": r.element, "message": r.message} for r in self.reasons],
        }

    def explain(self) -> str:
        """One Chinese paragraph for a person."""
        head = "允许" if self.allowed else "拒绝"
        basis = f"；法律依据：{LEGAL_BASIS_ZH[self.basis]}" if self.basis and self.allowed else ""
        lines = [f"{head}{basis}"]
        lines += [f"- [{m.rule}] {m.message}" for m in self.missing]
        lines += [f"- [{r.rule}] {r.message}" for r in self.reasons]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Requirement:
    """A consent scope that must be active for a planned processing."""

    scope: str
    consent_kind: ConsentKind
    rule: str
    element: str
    message: str
    outdated_keys: frozenset[str]


@dataclass(frozen=True, slots=True)
class Plan:
    """The subject-independent part of a decision, compiled once per request shape."""

    refusal: Decision | None
    basis: LegalBasis | None
    feature: str | None
    consents: tuple[Requirement, ...] = ()
    permissions: tuple[tuple[frozenset[str], str, str], ...] = ()  # (any of, element, message)
    items: tuple[str, ...] = ()
    minor_items: tuple[Requirement, ...] = ()  # item consents needed for a child (all PI sensitive)
    grounds: tuple[Reason, ...] = ()


@dataclass
class CompiledPolicy:
    """A declaration prepared for fast decisions, with the scopes each older version's consents lost."""

    decl: Declaration
    outdated: Mapping[str, frozenset[str]] = field(default_factory=dict)
    _plans: dict[tuple[Any, ...], Plan] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return self.decl.version.label

    def plan(self, req: Request) -> Plan:
        key = req.key()
        p = self._plans.get(key)
        if p is None:
            p = _compile(self.decl, req)
            self._plans[key] = p
        return p


def outdated_scopes(reconsent: Iterable[Any]) -> frozenset[str]:
    """Scopes whose consents (given under an older version) need renewing, from a diff's ``reconsent``."""
    out: set[str] = set()
    for r in reconsent:
        if r.scope == "cross_border":
            out.add("cross_border:*")
        else:
            out.add(r.scope)
    return frozenset(out)


# --- compile ---------------------------------------------------------------------------------------

def _refuse(decl: Declaration, rule: str, element: str, message: str, feature: str | None = None) -> Plan:
    d = Decision(False, None, (), (Reason(rule, element, message),), feature, decl.version.label)
    return Plan(refusal=d, basis=None, feature=feature)


def _find_feature(decl: Declaration, req: Request) -> Feature | None:
    if req.feature is not None:
        return decl.feature(req.feature)
    if req.purpose is not None:
        for f in decl.features:
            if req.purpose in f.purposes or req.purpose == f.name:
                return f
    return None


def _compile(decl: Declaration, req: Request) -> Plan:
    tax = taxonomy()
    label = decl.version.label
    if not req.items and req.action in (Action.COLLECT, Action.USE, Action.PROVIDE, Action.ENTRUST,
                                        Action.DISCLOSE, Action.TRANSFER_ABROAD):
        return _refuse(decl, "N1", "items", "未指明要处理的个人信息项")
    unknown = [i for i in req.items if i not in tax.items]
    if unknown:
        return _refuse(decl, "N1", "items", f"未知的个人信息项：{'、'.join(unknown)}")
    f = _find_feature(decl, req)
    if f is None and (req.feature is not None or req.recipient is None):
        what = f"功能「{req.feature}」" if req.feature else f"目的「{req.purpose}」"
        return _refuse(decl, "N1", "features", f"{what}未在隐私政策中声明，不得处理个人信息")
    fid = f.id if f else None
    felem = f"features[{fid}]" if f else "recipients"
    if f is not None and req.feature is not None and req.purpose is not None \
            and req.purpose.strip() not in _declared_purposes(decl, f, req):
        return _refuse(decl, "N1", f"features[{f.id}].purposes",
                       f"目的「{req.purpose}」不是功能「{f.name}」声明的处理目的（声明的目的：{'；'.join(f.purposes)}），"
                       "不得为此处理个人信息（PIPL 6、17）", fid)

    if req.action is Action.AUTOMATED_DECISION:
        purposes = {a.purpose for a in decl.automated_decisions}
        if req.purpose not in purposes and not (f and purposes & set(f.purposes)):
            return _refuse(decl, "R5", "automated_decisions", "该自动化决策未在隐私政策中声明（PIPL 24、48）", fid)

    r: Recipient | None = None
    if req.action in (Action.PROVIDE, Action.ENTRUST, Action.DISCLOSE, Action.TRANSFER_ABROAD):
        if req.recipient is None:
            return _refuse(decl, "V1", "recipients", f"{ACTION_ZH[req.action]}须指明接收方", fid)
        r = decl.recipient(req.recipient)
        if r is None:
            return _refuse(decl, "V1", "recipients", f"接收方「{req.recipient}」未在隐私政策中声明，不得向其提供", fid)
        allowed_actions = {Action.PROVIDE: ("provide", "transfer"), Action.ENTRUST: ("entrust",),
                           Action.DISCLOSE: ("disclose",), Action.TRANSFER_ABROAD: ("transfer_abroad", "provide")}
        if r.action not in allowed_actions[req.action]:
            return _refuse(decl, "V1", f"recipients[{r.id}].action",
                           f"声明中对「{r.name}」的处理方式不是{ACTION_ZH[req.action]}", fid)
        if req.action is Action.TRANSFER_ABROAD:
            if decl.storage.cross_border in ("none", "unstated") and not r.abroad:
                return _refuse(decl, "X1", "storage.cross_border", "隐私政策未声明向境外提供个人信息", fid)
            if req.destination is not None and req.destination != r.id and req.destination not in r.name:
                return _refuse(decl, "X1", f"recipients[{r.id}]", f"境外目的地「{req.destination}」未声明", fid)
        undeclared = [i for i in req.items if i not in r.items]
        if undeclared:
            return _refuse(decl, "V1", f"recipients[{r.id}].items",
                           f"未声明向「{r.name}」提供：{'、'.join(tax.item(i).name for i in undeclared)}", fid)
    elif f is not None:
        undeclared = [i for i in req.items if i not in f.item_ids()]
        if undeclared:
            return _refuse(decl, "N1", f"features[{f.id}].collections",
                           f"功能「{f.name}」未声明收集：{'、'.join(tax.item(i).name for i in undeclared)}", fid)

    basis = r.legal_basis if (r is not None and req.action is not Action.ENTRUST) else (
        f.legal_basis if f else LegalBasis.CONSENT)
    basis_elem = f"recipients[{r.id}].legal_basis" if (r is not None and req.action is not Action.ENTRUST) else (
        f"{felem}.legal_basis")
    if req.exception is not None:
        return _exception_plan(decl, req, f, basis, basis_elem)
    grounds = [Reason("C1", basis_elem, f"法律依据：{LEGAL_BASIS_ZH[basis]}")]
    if basis is not LegalBasis.CONSENT:
        allowed = Decision(True, basis, (), tuple(grounds), fid, label)
        return Plan(refusal=None, basis=basis, feature=fid, grounds=allowed.reasons, items=req.items)

    reqs: list[Requirement] = []
    policy_keys = frozenset({POLICY} | ({feature_scope(fid)} if fid else set()))
    reqs.append(Requirement(POLICY, ConsentKind.GENERAL, "C2", "policy",
                            f"尚未同意隐私政策（{label}）；以同意为依据的处理须先取得同意", policy_keys))
    if f is not None:
        c9 = bool(f.purposes) and all(_C9.search(p) for p in f.purposes)
        if f.kind is FeatureKind.EXTENDED or c9:
            rule = "C9" if c9 and f.kind is FeatureKind.BASIC else "C7"
            why = ("其目的仅为改善体验、研发或推送，不得以同意隐私政策代替" if rule == "C9"
                   else "拒绝扩展功能不影响基本功能")
            reqs.append(Requirement(feature_scope(f.id), ConsentKind.GENERAL, rule, f"features[{f.id}]",
                                    f"扩展功能「{f.name}」尚未取得同意（{why}）", frozenset({feature_scope(f.id)})))
    minor_items: list[Requirement] = []
    if f is not None and req.action in (Action.COLLECT, Action.USE, Action.AUTOMATED_DECISION):
        for i in req.items:
            s = item_scope(f.id, i)
            req_i = Requirement(s, ConsentKind.SEPARATE, "C4", f"features[{f.id}].collections[{i}]",
                                f"处理敏感个人信息「{tax.item(i).name}」须取得单独同意（PIPL 29）", frozenset({s}))
            (reqs if tax.is_sensitive(i) else minor_items).append(req_i)
    if r is not None and req.action in (Action.PROVIDE, Action.DISCLOSE, Action.TRANSFER_ABROAD):
        s = recipient_scope(r.id)
        rule_text = "公开披露" if req.action is Action.DISCLOSE else f"向「{r.name}」提供个人信息"
        reqs.append(Requirement(s, ConsentKind.SEPARATE, "V1", f"recipients[{r.id}]",
                                f"{rule_text}须取得单独同意（PIPL 23、25）", frozenset({s})))
        if req.action is Action.TRANSFER_ABROAD:
            s2 = cross_border_scope(r.id)
            reqs.append(Requirement(s2, ConsentKind.SEPARATE, "X1", f"recipients[{r.id}]",
                                    "向境外提供个人信息须取得单独同意（PIPL 39）", frozenset({s2, "cross_border:*"})))
    perms: list[tuple[frozenset[str], str, str]] = []
    if f is not None and req.action is Action.COLLECT:
        methods = {c.item: c.method for c in f.collections}
        declared = {p.permission for p in f.permissions}
        for i in req.items:
            if methods.get(i) != "device_permission":
                continue
            any_of = frozenset(p for p in declared if i in PERMISSION_ITEMS.get(p, frozenset()))
            if any_of:
                names = "或".join(tax.permission(p).name for p in sorted(any_of))
                perms.append((any_of, f"features[{f.id}].permissions",
                              f"收集「{tax.item(i).name}」需要{names}权限，当前未授予"))
    return Plan(refusal=None, basis=basis, feature=fid, consents=tuple(reqs), permissions=tuple(perms),
                items=req.items, minor_items=tuple(minor_items), grounds=tuple(grounds))


def _declared_purposes(decl: Declaration, f: Feature, req: Request) -> set[str]:
    """The purposes a processing named with feature ``f`` may state: the feature's own (PIPL 6, N1), and for
    an automated decision or a provision to a recipient, the purpose the declaration gives those."""
    out = {p.strip() for p in f.purposes}
    if req.action is Action.AUTOMATED_DECISION:
        out |= {a.purpose.strip() for a in decl.automated_decisions}
    if req.recipient is not None:
        r = decl.recipient(req.recipient)
        if r is not None and r.purpose:
            out.add(r.purpose.strip())
    return out


#: The PIPL 13 (3)–(7) bases on which PI is processed without consent (``Request.exception``).
EXCEPTION_BASES: tuple[LegalBasis, ...] = (LegalBasis.STATUTORY_DUTY, LegalBasis.EMERGENCY, LegalBasis.NEWS_REPORTING,
                                           LegalBasis.PUBLIC_INFO, LegalBasis.OTHER_LAW)
_SHARING_ACTIONS = frozenset({Action.PROVIDE, Action.ENTRUST, Action.DISCLOSE, Action.TRANSFER_ABROAD})


def declared_exceptions(decl: Declaration, action: Action) -> dict[LegalBasis, tuple[str, str]]:
    """The exception bases the declaration states for ``action`` (collection and use, or provision to
    others): basis → (element, the case as the policy words it). From ``consent_exceptions`` (each case's
    ``basis``, given or read from its text)."""
    which = "sharing" if action in _SHARING_ACTIONS else "collection"
    cases = getattr(decl.consent_exceptions, which)
    out: dict[LegalBasis, tuple[str, str]] = {}
    for k, case in enumerate(cases):
        b = case.exception_basis()
        if b is not None and b not in out:
            out[b] = (f"consent_exceptions.{which}[{k}]", case.text)
    return out


def _exception_plan(decl: Declaration, req: Request, f: Feature | None,
                    basis: LegalBasis, basis_elem: str) -> Plan:
    """A processing without consent on a PIPL 13 (3)–(7) exception: the code must be one of them and declared
    (by the function's or recipient's own basis, or among the policy's cases processed without consent, C1);
    the decision's basis is the exception, so the processing record keeps it."""
    fid = f.id if f else None
    codes = "、".join(b.value for b in EXCEPTION_BASES)
    try:
        code = LegalBasis(str(req.exception))
    except ValueError:
        code = None
    if code is None or code not in EXCEPTION_BASES:
        return _refuse(decl, "C1", "consent_exceptions", f"无需同意的情形代码「{req.exception}」无效（可选：{codes}）", fid)
    if basis is code:
        element, case = basis_elem, "声明的法律依据"
    else:
        found = declared_exceptions(decl, req.action).get(code)
        if found is None:
            what = "提供、委托处理或公开" if req.action in _SHARING_ACTIONS else "收集、使用"
            return _refuse(decl, "C1", "consent_exceptions",
                           f"隐私政策未声明以「{LEGAL_BASIS_ZH[code]}」为由不经同意{what}个人信息，不得援引该情形", fid)
        element, case = found
    grounds = (Reason("C1", element, f"无需取得同意：{LEGAL_BASIS_ZH[code]}；隐私政策所列情形：{case}"),)
    return Plan(refusal=None, basis=code, feature=fid, grounds=grounds, items=req.items)


# --- decide -------------------------------------------------------------------------------------------

_BEIJING = timezone(timedelta(hours=8), "北京时间")  # China has no daylight saving time


def _beijing(moment: datetime) -> str:
    """A moment as people read it: Beijing time (a naive moment is taken as UTC, as stored)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return f"{aware.astimezone(_BEIJING):%Y-%m-%d %H:%M}（北京时间）"


#: Bases a person's restriction (PIPL 44) does not stop: "法律、行政法规另有规定的除外".
UNRESTRICTABLE = frozenset({LegalBasis.STATUTORY_DUTY, LegalBasis.EMERGENCY, LegalBasis.OTHER_LAW})


def _restriction_refusal(policy: CompiledPolicy, plan: Plan, scope: str, since: datetime) -> Decision:
    decl = policy.decl
    f = decl.feature(plan.feature) if plan.feature else None
    what = "全部个人信息处理" if scope == "all" else f"功能「{f.name if f else plan.feature}」的个人信息处理"
    reason = Reason("N4", f"features[{plan.feature}]" if plan.feature else "rights",
                    f"本人已于{_beijing(since)}要求限制{what}（PIPL 44）：在解除限制前不得处理，"
                    "法律、行政法规规定必须处理的除外")
    return Decision(False, plan.basis, (), (reason,), plan.feature, policy.label)


def beijing_date(moment: datetime) -> date:
    """The calendar day in Beijing (ages change at midnight Beijing time); a naive moment is UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(_BEIJING).date()


def _objection_refusal(policy: CompiledPolicy, plan: Plan, state: SubjectState, since: datetime,
                       now: datetime) -> Decision:
    """A guardian objected: the minor's processing is suspended (M1 under 14, else M2)."""
    child = state.birth_date is None or age_on(state.birth_date, beijing_date(now)) < 14
    reason = Reason("M1" if child else "M2", "minors",
                    f"监护人已于{_beijing(since)}对处理该未成年人的个人信息提出异议：账户已暂停，"
                    "在监护人重新同意前不得处理，法律、行政法规规定必须处理的除外（PIPL 31）")
    return Decision(False, plan.basis, (), (reason,), plan.feature, policy.label)


def decide(policy: CompiledPolicy, state: SubjectState, req: Request, now: datetime) -> Decision:
    """The gate's decision for one request against one subject's state at ``now``."""
    plan = policy.plan(req)
    if plan.refusal is not None:
        return plan.refusal
    label = policy.label
    if state.restrictions and plan.basis not in UNRESTRICTABLE:
        objected = state.restrictions.get(OBJECTION)
        if objected is not None:
            return _objection_refusal(policy, plan, state, objected, now)
        hit = state.restricted_since(plan.feature)
        if hit is not None:
            return _restriction_refusal(policy, plan, *hit)
    if plan.basis is not LegalBasis.CONSENT:
        return Decision(True, plan.basis, (), plan.grounds, plan.feature, label)
    decl = policy.decl
    missing: list[Missing] = []
    reasons: list[Reason] = []
    requirements: tuple[Requirement, ...] = plan.consents
    if state.birth_date is not None:
        status = classify(state.birth_date, beijing_date(now), decl.minors, SELF_SUPPORTING in state.restrictions)
        if status.guardian_needed and status.rule is not None:
            why = ("不满十四周岁未成年人的个人信息均为敏感个人信息，处理须取得其父母或其他监护人的同意（PIPL 28、31）"
                   if status.child else f"隐私政策规定未满{decl.minors.guardian_consent_under}周岁须取得监护人同意")
            requirements = (Requirement(GUARDIAN, ConsentKind.GUARDIAN, status.rule, "minors", why,
                                        frozenset({GUARDIAN, POLICY})), *requirements)
            if status.child:
                requirements = (*requirements, *plan.minor_items)
    consents = state.consents
    outdated = policy.outdated
    for rq in requirements:
        st = consents.get(rq.scope)
        if st is None and scope_kind(rq.scope) == "feature":
            # a separate consent given in the function's own dialog also opts into the function
            st = _opted_in_by_item(consents, rq.scope)
        if st is None:
            missing.append(Missing("guardian" if rq.scope == GUARDIAN else "consent", rq.scope,
                                   rq.consent_kind, rq.rule, rq.message))
            continue
        if st.status is not Status.ACTIVE:
            if st.status is Status.WITHDRAWN:
                reasons.append(Reason("C6", rq.element, f"「{_scope_zh(decl, rq.scope)}」的同意已于"
                                      f"{_beijing(st.event_time)} 撤回：自撤回时起停止处理，撤回前的处理不受影响"))
            elif st.status is Status.REFUSED and scope_kind(rq.scope) == "feature":
                reasons.append(Reason("C7", rq.element, f"您已拒绝扩展功能「{_scope_zh(decl, rq.scope)}」；"
                                      "基本功能不受影响"))
            elif st.status is Status.INVALIDATED:
                reasons.append(Reason("C5", rq.element, f"「{_scope_zh(decl, rq.scope)}」的同意因隐私政策变更已失效"))
            else:
                reasons.append(Reason(rq.rule, rq.element,
                                      f"「{_scope_zh(decl, rq.scope)}」的同意状态为{STATUS_ZH[st.status]}"))
            missing.append(Missing("consent" if rq.scope != GUARDIAN else "guardian", rq.scope, rq.consent_kind,
                                   rq.rule, rq.message))
            continue
        if st.policy_label != label:
            lost = outdated.get(st.policy_label)
            if lost is None or not lost.isdisjoint(rq.outdated_keys):
                missing.append(Missing("reconsent", rq.scope, rq.consent_kind, "C5",
                                       f"您同意的是 {st.policy_label} 版隐私政策；{label} 版变更了与此相关的处理，"
                                       "须就变更部分重新取得同意（PIPL 14）"))
                continue
        if rq.consent_kind is ConsentKind.SEPARATE and st.kind not in (
                ConsentKind.SEPARATE, ConsentKind.WRITTEN, ConsentKind.GUARDIAN):
            missing.append(Missing("consent", rq.scope, rq.consent_kind, "C4",
                                   f"{rq.message}；已有的是{st.kind.value}同意，不构成单独同意"))
    for any_of, _element, message in plan.permissions:
        if not any(state.permission_granted(p, req.device) for p in any_of):
            missing.append(Missing("permission", "|".join(sorted(any_of)), None, "P1", message))
    if missing:
        return Decision(False, plan.basis, tuple(missing), tuple(reasons), plan.feature, label)
    return Decision(True, plan.basis, (), (*plan.grounds, *reasons), plan.feature, label)


def _opted_in_by_item(consents: Mapping[str, ScopeState], feature_scope_: str) -> ScopeState | None:
    prefix = "item:" + feature_scope_.split(":", 1)[1] + ":"
    for scope, st in consents.items():
        if scope.startswith(prefix) and st.status is Status.ACTIVE:
            return st
    return None


def _scope_zh(decl: Declaration, scope: str) -> str:
    tax = taxonomy()
    kind = scope_kind(scope)
    parts = scope.split(":")
    if scope == POLICY:
        return "隐私政策"
    if scope == GUARDIAN:
        return "监护人同意"
    if kind == "feature":
        f = decl.feature(parts[1])
        return f.name if f else parts[1]
    if kind == "item":
        f = decl.feature(parts[1])
        name = tax.items[parts[2]].name if parts[2] in tax.items else parts[2]
        return f"{f.name if f else parts[1]}：{name}"
    if kind in ("recipient", "cross_border"):
        r = decl.recipient(parts[1])
        return (r.name if r else parts[1]) + ("（出境）" if kind == "cross_border" else "")
    return scope


# --- permission prompts (C8) ---------------------------------------------------------------------------

QUIET_PERIOD_HOURS = 48


@dataclass(frozen=True, slots=True)
class PromptDecision:
    """May the app ask for a permission now?"""

    allowed: bool
    rule: str | None
    message: str


def may_ask_permission(state: SubjectState, device: str, permission: str, now: datetime,
                       quiet_hours: float = QUIET_PERIOD_HOURS) -> PromptDecision:
    """A refusal starts a quiet period during which asking again is refused (C8)."""
    st = state.permissions.get((device, permission))
    if st is not None and st.status is PermissionEventType.GRANTED:
        return PromptDecision(False, None, "权限已授予，无需再次申请")
    if st is not None and st.last_denied_at is not None:
        elapsed = (now - st.last_denied_at).total_seconds() / 3600
        if elapsed < quiet_hours:
            return PromptDecision(False, "C8", f"用户已于{_beijing(st.last_denied_at)}拒绝该权限，"
                                  f"{quiet_hours:g}小时内不得再次申请（还需等待{quiet_hours - elapsed:.1f}小时）")
    return PromptDecision(True, None, "可以申请该权限（须在使用相应功能时申请，P1）")
