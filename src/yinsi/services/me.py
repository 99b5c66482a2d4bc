"""The person's own use cases (个人信息主体本人): what the privacy center and ``/api/v1/me/`` call.

Every method takes the :class:`~yinsi.auth.principals.PersonPrincipal` that authentication yielded and acts
on that principal's tenant and subject only: a person never names the subject whose data is read or
changed, and a request id of another subject (or tenant) is "not found" (``PersonError`` with status 404),
never "forbidden", so that ids of other people's requests cannot be probed.

- consents: each with its purpose, PI items, time, channel and kind; withdraw one; withdraw all
  (撤回隐私政策), with a statement of what stops and what continues on other legal bases derived from the
  declaration (:mod:`yinsi.domain.withdrawal`); give or renew a consent after a policy change;
- device permissions per device, for every permission the policy declares (never-asked ones too);
- the person's 双清单 from the processing records;
- rights requests: submit (identity verified through the session, see :meth:`MeService.submit`), confirm a
  cancellation after its prerequisites, withdraw, status with the working-day deadline, list, download
  the package of a completed copy or portability request (decrypted in memory for its own subject only);
- policy versions and what changed between two of them, in plain Chinese, major changes first.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from yinsi.audit import AuditAction
from yinsi.auth.principals import PersonPrincipal
from yinsi.declarations import parse_declaration
from yinsi.domain.changes import diff_declarations
from yinsi.domain.consent import (
    POLICY,
    STATUS_ZH,
    ConsentEvent,
    ConsentRejected,
    EventType,
    PermissionEventType,
    Status,
    replay,
    scope_kind,
)
from yinsi.domain.deadlines import CalendarNotCovered, status, working_days_left
from yinsi.domain.gate import _scope_zh, may_ask_permission
from yinsi.domain.policy import Declaration
from yinsi.domain.rights import OPEN_STATES, REQUEST_ZH, STATE_ZH, RequestType, State
from yinsi.domain.taxonomy import CONSENT_KIND_ZH, taxonomy
from yinsi.domain.withdrawal import withdrawal_effects
from yinsi.render.changes import describe_changes, summary
from yinsi.services.consent import ConsentService, NoPublishedPolicy
from yinsi.services.publishing import VersionNotFound, get_version, history
from yinsi.storage.ledger import LedgerRepository

Clock = Callable[[], datetime]

#: How a person's session was started → how the request records the identity verification (R8).
SESSION_METHOD_ZH: dict[str, str] = {
    "sms": "短信验证码发送至账号已登记的手机号",
    "email": "验证码发送至账号已登记的电子邮箱",
    "app_token": "App 已登录账号签发的短期令牌",
}
CHANNEL_ZH: dict[str, str] = {"app": "App", "web": "网页（个人信息保护中心）", "phone": "电话", "staff": "工作人员代为记录"}
PERMISSION_STATUS_ZH: dict[str, str] = {"granted": "已授权", "denied": "已拒绝", "revoked": "已关闭",
                                        "never_asked": "从未申请"}
DEADLINE_STATUS_ZH: dict[str, str] = {"on_track": "按期处理中", "due_soon": "即将到期", "overdue": "已逾期"}
#: The privacy center is a web page (in a browser or the app's WebView).
CENTER_CHANNEL = "web"
REQUEST_CHANNEL = "privacy_center"
#: The national complaint site every closed request points to (R10), when the policy does not name it.
CAC_REPORTING = "中央网信办违法和不良信息举报中心 https://www.12377.cn"
COPYING = frozenset({RequestType.ACCESS, RequestType.COPY, RequestType.PORTABILITY})
CLOSED = frozenset({State.COMPLETED, State.REFUSED, State.WITHDRAWN})

_BEIJING = timezone(timedelta(hours=8))


def utcnow() -> datetime:
    return datetime.now(UTC)


def beijing(moment: datetime) -> str:
    """A moment as people read it (a naive moment is taken as UTC, as stored)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return f"{aware.astimezone(_BEIJING):%Y-%m-%d %H:%M}（北京时间）"


class PersonError(Exception):
    """Something the person must act on: ``code`` is stable, ``detail`` Chinese and free of PI, ``status`` the
    HTTP status (400 bad input, 404 not found — also for another person's request, 409 wrong state),
    ``rule`` a RULES.md id where a rule is the reason."""

    def __init__(self, code: str, detail: str, *, status: int = 400, rule: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status
        self.rule = rule


def _not_found() -> PersonError:
    return PersonError("request_not_found", "没有找到该请求", status=404)


class MeService:
    """A person's own data and requests, over the consent ledger and the rights service.

    Pass the server's ``consents`` (the gate's own :class:`ConsentService`) so that a withdrawal is enforced
    by the gate of this process at once, with the ``lock`` every user of that shared service holds (its
    caches and record buffer are not thread-safe; it is held only around the ledger calls, never around a
    rights request's work), and the server's ``rights`` (:class:`~yinsi.rights.service.RightsService` with
    the tenants' data maps), so that requests run against the app's stores.
    """

    def __init__(self, url: str | None = None, *, consents: ConsentService | None = None, rights: Any = None,
                 clock: Clock | None = None, lock: AbstractContextManager[Any] | None = None) -> None:
        from yinsi.config import database_url

        self.url = url or (consents.url if consents is not None else database_url())
        self.clock: Clock = clock or (consents.clock if consents is not None else utcnow)
        self._own_consents = consents is None
        self.consents = consents if consents is not None else ConsentService(self.url, clock=self.clock)
        self._own_rights = rights is None
        if rights is None:
            from yinsi.rights.service import RightsService

            rights = RightsService(self.url, clock=self.clock)
        self.rights = rights
        self.ledger: AbstractContextManager[Any] = lock if lock is not None else threading.RLock()
        self._archived: dict[tuple[str, str], Declaration] = {}  # archived versions never change
        self._lists: dict[tuple[str, str], dict[str, Any]] = {}  # nor do their published lists
        self._grouped: dict[tuple[str, str], tuple[Any, int, dict[tuple[Any, ...], list[Any]]]] = {}  # see _grouped_lists

    def close(self) -> None:
        if self._own_consents:
            self.consents.close()
        if self._own_rights:
            self.rights.close()

    def __enter__(self) -> MeService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- policy ----------------------------------------------------------------------------------------
    def _decl(self, who: PersonPrincipal) -> Declaration:
        try:
            with self.ledger:
                return self.consents.policy(who.tenant).decl
        except NoPublishedPolicy:
            raise PersonError("no_policy", "该应用尚未发布隐私政策", status=404) from None

    # --- consents ---------------------------------------------------------------------------------------
    def _events(self, who: PersonPrincipal) -> list[tuple[int, ConsentEvent]]:
        ref = self.consents.subjects.ref(who.tenant, who.subject)
        with self.consents.sessions() as s:
            return LedgerRepository(s).consent_events(who.tenant, ref)

    def consents_of(self, who: PersonPrincipal) -> list[dict[str, Any]]:
        """Every consent scope the person ever answered, with its current status, from the ledger (not the
        gate's cache): purposes, PI items, recipients, kind, channel and time of the latest event, and
        whether it needs renewing after a policy change (C5)."""
        with self.ledger:
            policy = self.consents.policy(who.tenant) if self._has_policy(who) else None
        decl = policy.decl if policy is not None else None
        events = self._events(who)
        state = replay(events)
        latest: dict[str, ConsentEvent] = {}
        for _, ev in events:
            latest[ev.scope] = ev
        tax = taxonomy()
        out = []
        for scope, st in state.consents.items():
            ev = latest[scope]
            outdated = False
            if policy is not None and st.status is Status.ACTIVE and st.policy_label != policy.label:
                outdated = _outdated(scope, policy.outdated.get(st.policy_label))
            out.append({
                "scope": scope,
                "name": _scope_zh(decl, scope) if decl is not None else scope,
                "status": st.status.value, "status_zh": STATUS_ZH[st.status],
                "kind": st.kind.value, "kind_zh": CONSENT_KIND_ZH[st.kind],
                "policy": st.policy_label,
                "time": st.event_time.isoformat(), "time_zh": beijing(st.event_time),
                "channel": ev.channel, "channel_zh": CHANNEL_ZH.get(ev.channel, ev.channel),
                "purposes": list(ev.purposes),
                "items": [{"item": i, "name": tax.item(i).name if i in tax.items else i,
                           "sensitive": i in tax.items and tax.is_sensitive(i)} for i in ev.items],
                "recipients": [{"id": r, "name": _recipient_name(decl, r)} for r in ev.recipients],
                "withdrawable": st.status is Status.ACTIVE,
                "needs_renewal": outdated,
            })
        return out

    def renewals(self, who: PersonPrincipal) -> dict[str, Any]:
        """After a policy change: the consents in force that the gate no longer accepts for (part of) what
        they covered (C5, PIPL 14), each with why, from the diff between the version it was given under and
        the current one. Giving it again (:meth:`give`) renews it."""
        decl = self._decl(who)
        out = []
        for c in self.consents_of(who):
            if not c["needs_renewal"]:
                continue
            old = self._archived_decl(who.tenant, c["policy"])
            reasons = [r for r in diff_declarations(old, decl).reconsent if r.scope == c["scope"]
                       or (c["scope"] == POLICY and r.consent == "policy")
                       or (scope_kind(c["scope"]) == "cross_border" and r.scope == "cross_border")]
            out.append({"scope": c["scope"], "name": c["name"], "given_under": c["policy"],
                        "reasons": [{"rule": r.rule, "reason": r.reason} for r in reasons]})
        return {"policy": decl.version.label, "renewals": out}

    def _archived_decl(self, tenant: str, label: str) -> Declaration:
        key = (tenant, label)
        found = self._archived.get(key)
        if found is None:
            v = get_version(tenant, label, self.url)
            found = self._archived[key] = parse_declaration(v.declaration_yaml, f"{tenant}@{label}")
        return found

    def _has_policy(self, who: PersonPrincipal) -> bool:
        try:
            self.consents.policy(who.tenant)
        except NoPublishedPolicy:
            return False
        return True

    def _active_scopes(self, who: PersonPrincipal) -> list[str]:
        state = replay(self._events(who))
        return [scope for scope, st in state.consents.items() if st.status is Status.ACTIVE]

    def withdraw(self, who: PersonPrincipal, scope: str) -> dict[str, Any]:
        """Withdraw one consent (C6, PIPL 15): from now on the gate refuses what rested on it. Withdrawing
        ``policy`` is withdrawing everything (:meth:`withdraw_all`)."""
        if scope == POLICY:
            return self.withdraw_all(who)
        decl = self._decl(who)
        if scope not in self._active_scopes(who):
            raise PersonError("consent_not_active", "该项同意当前不是有效状态，无需撤回", status=409)
        try:
            with self.ledger:
                ev = self.consents.record_consent(who.tenant, who.subject, scope, EventType.WITHDRAWN,
                                                  channel=CENTER_CHANNEL)
        except ConsentRejected as exc:
            raise PersonError("consent_rejected", str(exc)) from None
        effects = withdrawal_effects(decl, [scope])
        return {"withdrawn": [scope], "time": ev.event_time.isoformat(), "effects": effects.to_json(),
                "statement": effects.statement(beijing(ev.event_time))}

    def withdraw_all(self, who: PersonPrincipal) -> dict[str, Any]:
        """撤回隐私政策: withdraw every consent in force, in one transaction, and say what stops and what
        continues on other legal bases (derived from the declaration, :mod:`yinsi.domain.withdrawal`).
        A consent to something the current policy no longer declares cannot be processed on anyway (the
        gate refuses anything undeclared, N1); it is listed under ``obsolete``."""
        decl = self._decl(who)
        now = self.clock()
        events: list[ConsentEvent] = []
        obsolete: list[str] = []
        with self.ledger:
            for scope in self._active_scopes(who):
                try:
                    events.append(self.consents.make_event(who.tenant, who.subject, scope, EventType.WITHDRAWN,
                                                           channel=CENTER_CHANNEL, at=now))
                except ConsentRejected:
                    obsolete.append(scope)
            self.consents.append_consents(events)
        effects = withdrawal_effects(decl, [POLICY])
        return {"withdrawn": [ev.scope for ev in events], "obsolete": obsolete, "time": now.isoformat(),
                "effects": effects.to_json(), "statement": effects.statement(beijing(now))}

    def give(self, who: PersonPrincipal, scope: str) -> dict[str, Any]:
        """Give (or renew after a policy change, C5) a consent in the privacy center, with the disclosures the
        current declaration states for it; a separate consent whose legally required disclosures the
        declaration lacks is refused (C4, V1, X1), as in the app."""
        self._decl(who)
        try:
            with self.ledger:
                ev = self.consents.record_consent(who.tenant, who.subject, scope, EventType.GIVEN,
                                                  channel=CENTER_CHANNEL)
        except ConsentRejected as exc:
            raise PersonError("consent_rejected", str(exc), rule=_rule_in(str(exc))) from None
        return {"scope": scope, "policy": ev.policy_label, "kind": ev.kind.value, "time": ev.event_time.isoformat()}

    # --- permissions ------------------------------------------------------------------------------------
    def permissions(self, who: PersonPrincipal) -> dict[str, Any]:
        """Per device, every permission the policy declares, with its state (``never_asked`` when the app
        never recorded an answer) and whether the app may ask now (C8: not within 48 h of a refusal)."""
        decl = self._decl(who)
        tax = taxonomy()
        declared: dict[str, list[dict[str, Any]]] = {}
        for f in decl.features:
            for p in f.permissions:
                declared.setdefault(p.permission, []).append({"feature": f.id, "name": f.name, "purpose": p.purpose})
        ref = self.consents.subjects.ref(who.tenant, who.subject)
        with self.consents.sessions() as s:
            state = LedgerRepository(s).load_state(who.tenant, ref, self.consents.subjects.birth_decoder(who.tenant))
        now = self.clock()

        def name(pid: str) -> str:
            return tax.permission(pid).name if pid in tax.permissions else pid

        devices = sorted({device for device, _ in state.permissions})
        out_devices = []
        for device in devices:
            rows = []
            for pid, uses in declared.items():
                st = state.permissions.get((device, pid))
                value = st.status.value if st is not None else "never_asked"
                rows.append({"permission": pid, "name": name(pid), "status": value,
                             "status_zh": PERMISSION_STATUS_ZH[value],
                             "changed_at": st.changed_at.isoformat() if st is not None else None,
                             "may_ask_now": may_ask_permission(state, device, pid, now).allowed
                             if st is None or st.status is not PermissionEventType.GRANTED else False,
                             "features": uses})
            out_devices.append({"device": device, "permissions": rows})
        return {"policy": decl.version.label,
                "declared": [{"permission": pid, "name": name(pid), "features": uses} for pid, uses in declared.items()],
                "devices": out_devices}

    # --- 双清单 -------------------------------------------------------------------------------------------
    def lists(self, who: PersonPrincipal) -> dict[str, Any]:
        """What was actually collected about the person and shared, by whom and for what (the processing
        records of allowed decisions)."""
        decl = self._decl(who)
        with self.ledger:
            self.consents.flush()
            restricted = [{"scope": scope, "since": since.isoformat()}
                          for scope, since in sorted(self.consents.state(who.tenant, who.subject).restrictions.items())]
        return {"tenant": who.tenant, "subject": who.subject, "policy": decl.version.label,
                **self._grouped_lists(decl, who), "restrictions": restricted}

    def _grouped_lists(self, decl: Declaration, who: PersonPrincipal) -> dict[str, Any]:
        """:func:`_lists_of` over the person's records grouped in the database, kept between visits: records
        are only appended (ids grow) or erased (fewer of them). One indexed query (largest id, count) tells
        which: nothing new → the kept groups; only newer records → those grouped and added; else all again."""
        from sqlalchemy import func, select

        from yinsi.storage.consent_tables import ProcessingRecord as R

        key = (who.tenant, who.subject)
        ref = self.consents.subjects.ref(who.tenant, who.subject)  # the subject as the tables hold it
        with self.consents.sessions() as s:
            top, count = s.execute(select(func.max(R.id), func.count()).where(
                R.tenant_id == who.tenant, R.subject_id == ref)).one()
            events = LedgerRepository(s).consent_events(who.tenant, ref)
            kept = self._grouped.get(key)
            groups: dict[tuple[Any, ...], list[Any]] | None = None
            if kept is not None and (kept[0], kept[1]) == (top, count):
                groups = kept[2]
            elif kept is not None and kept[0] is not None and top is not None and top > kept[0]:
                newer = _group_records(s, who.tenant, ref, after=kept[0])
                if kept[1] + sum(g[0] for g in newer.values()) == count:
                    groups = _merge_groups(kept[2], newer)
            if groups is None:
                groups = _group_records(s, who.tenant, ref)
        if len(self._grouped) >= 1000 and key not in self._grouped:
            with contextlib.suppress(StopIteration, RuntimeError, KeyError):  # another thread changed it meanwhile
                self._grouped.pop(next(iter(self._grouped)), None)
        self._grouped[key] = (top, int(count), groups)
        return _lists_of(decl, groups, events)

    # --- rights requests ----------------------------------------------------------------------------------
    def rights_offered(self, who: PersonPrincipal) -> dict[str, Any]:
        """The rights a person can exercise here, each with the policy's own channels and conditions and the
        reply time that applies (the policy's promise, capped by the statutory ceiling: R9, R10), plus the
        deletion grounds of PIPL 47 (R4) a deletion request names."""
        from yinsi.domain.deadlines import promised_reply_time, statutory_ceiling
        from yinsi.domain.rights import DELETION_GROUND_ZH, RIGHT_OF

        decl = self._decl(who)
        out = []
        for t in RequestType:
            kind = RIGHT_OF[t]
            declared = decl.right(kind)
            promise = promised_reply_time(decl, kind)
            ceiling = statutory_ceiling(kind)
            out.append({
                "type": t.value, "name": REQUEST_ZH[t], "declared": declared is not None,
                "channels": [c.value for c in (declared.channels if declared is not None else []) if c.value],
                "conditions": declared.conditions if declared is not None else None,
                "reply": (f"承诺{promise.describe()}；法定上限{ceiling.describe()}（{ceiling.rule_id}）"
                          if promise is not None else f"法定上限{ceiling.describe()}（{ceiling.rule_id}）"),
                "here": t is not RequestType.DECEASED,
            })
        return {"rights": out,
                "deletion_grounds": [{"ground": g.value, "name": zh} for g, zh in DELETION_GROUND_ZH.items()]}

    def submit(self, who: PersonPrincipal, type_: RequestType | str, *,
               details: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Submit a request for the principal's own subject; it is identity-verified through the session.

        Why this is sound under R8 (identity verification may not ask for more PI than the processor
        already holds): the session itself was started by a verification that meets R8 — a one-time code
        sent to a phone number or e-mail address already on record for this subject, or a short-lived token
        signed by the tenant's own app for an account it had already authenticated. Asking for another code
        would verify the same thing again with the same data; asking for anything else would ask for more.
        So the request is recorded as verified, by the requester, naming the session's method. A request
        about a deceased person (PIPL 49) is about another subject and needs documents a member of staff
        checks: it cannot be made here.
        """
        from yinsi.rights.service import RequestError

        try:
            rtype = RequestType(type_)
        except ValueError:
            choices = "、".join(f"{t.value}（{REQUEST_ZH[t]}）" for t in RequestType if t is not RequestType.DECEASED)
            raise PersonError("unknown_request_type", f"未知的请求类型（可选：{choices}）") from None
        if rtype is RequestType.DECEASED:
            raise PersonError("relative_request_needs_staff",
                              "近亲属对死者个人信息行使权利，须提交死亡证明与亲属关系证明，由工作人员核验后受理（PIPL 49）",
                              rule="R6")
        self._decl(who)
        try:
            rid = self.rights.submit(who.tenant, who.subject, rtype, subject_kind=who.subject_kind,
                                     channel=REQUEST_CHANNEL, details=dict(details or {}))
            how = SESSION_METHOD_ZH.get(who.method)
            if how is not None:
                self.rights.mark_verified(who.tenant, rid, "requester", f"本人已登录的会话（{how}）")
        except RequestError as exc:
            raise PersonError("request_rejected", str(exc)) from None
        return self.request(who, rid)

    def verify(self, who: PersonPrincipal, request_id: str) -> dict[str, Any]:
        """Verify the identity of one's own request taken in elsewhere (e.g. through the app's intake) with
        the session itself, for the reasons given in :meth:`submit` (R8)."""
        from yinsi.rights.service import RequestError

        v = self._own(who, request_id)
        if State(v.state) is not State.UNVERIFIED:
            raise PersonError("already_verified", f"请求处于「{STATE_ZH[State(v.state)]}」状态，无需再核验身份", status=409)
        how = SESSION_METHOD_ZH.get(who.method)
        if how is None:
            raise PersonError("session_not_verifying", "本次登录方式不能用于核验身份，请通过验证码登录后再试", status=409,
                              rule="R8")
        if RequestType(v.type) is RequestType.DECEASED:
            raise PersonError("relative_request_needs_staff", "近亲属请求须由工作人员核验证明材料（PIPL 49）",
                              status=409, rule="R6")
        try:
            self.rights.mark_verified(who.tenant, request_id, "requester", f"本人已登录的会话（{how}）")
        except RequestError as exc:
            raise PersonError("request_rejected", str(exc), status=409) from None
        return self.request(who, request_id)

    def _own(self, who: PersonPrincipal, request_id: str) -> Any:
        """The request view if it is one of the principal's own requests, else "not found" (404)."""
        if not request_id or len(request_id) != 36:
            raise _not_found()
        for v in self.rights.requests(who.tenant, subject=who.subject):
            if v.id == request_id and (who.subject_kind is None or v.subject_kind == who.subject_kind):
                return v
        raise _not_found()

    def requests(self, who: PersonPrincipal) -> list[dict[str, Any]]:
        """The person's requests, newest first, each with its state and deadline."""
        views = [v for v in self.rights.requests(who.tenant, subject=who.subject)
                 if who.subject_kind is None or v.subject_kind == who.subject_kind]
        return [self._summary(v) for v in sorted(views, key=lambda v: v.received_at, reverse=True)]

    def _deadline(self, v: Any) -> dict[str, Any]:
        today = self.clock().astimezone(_BEIJING).date()
        state = State(v.state)
        out: dict[str, Any] = {"due_date": v.due_date.isoformat(), "explanation": v.deadline,
                               "provisional": v.deadline_provisional}
        if state in OPEN_STATES:
            cal = self.rights.calendar
            try:
                st = status(v.due_date, today, cal).value
                left = working_days_left(v.due_date, today, cal) if today <= v.due_date else 0
            except CalendarNotCovered:
                st, left = ("overdue" if v.due_date < today else "due_soon"), None
            out.update({"status": st, "status_zh": DEADLINE_STATUS_ZH[st], "working_days_left": left})
        return out

    def _summary(self, v: Any) -> dict[str, Any]:
        rtype, state = RequestType(v.type), State(v.state)
        result = v.result or {}
        return {"id": v.id, "type": rtype.value, "type_zh": REQUEST_ZH[rtype], "state": state.value,
                "state_zh": STATE_ZH[state], "received_at": v.received_at.isoformat(),
                "deadline": self._deadline(v), "refusal": v.refusal,
                "package_ready": rtype in COPYING and state is State.COMPLETED and bool(result.get("package"))}

    def request(self, who: PersonPrincipal, request_id: str) -> dict[str, Any]:
        """One of the person's requests: state, working-day deadline and its explanation, the steps still
        waiting for a person, the history (staff shown as 工作人员), the reply, and once it is closed the routes
        to complain further (R10)."""
        self._own(who, request_id)
        v = self.rights.show(who.tenant, request_id)
        out = self._summary(v)
        out["steps"] = [{"what": (s.get("detail") or {}).get("what") or s.get("action_zh") or s["key"],
                         "status": s["status"], "done": s["status"] == "done"} for s in v.steps]
        out["history"] = [{"to": h["to"], "to_zh": STATE_ZH[State(h["to"])], "at": h["at"],
                           "by": _actor_zh(h["actor"]), "note": h["note"]} for h in v.history]
        out["result"] = _public_result(v.result)
        state = State(v.state)
        out["can_confirm"] = RequestType(v.type) is RequestType.CANCEL_ACCOUNT and state is State.VERIFIED
        out["can_withdraw"] = state in (State.UNVERIFIED, State.VERIFIED)
        out["can_verify"] = (state is State.UNVERIFIED and RequestType(v.type) is not RequestType.DECEASED
                             and who.method in SESSION_METHOD_ZH)
        if State(v.state) in CLOSED:
            out["escalation"] = self._escalation(who)
        return out

    def _escalation(self, who: PersonPrincipal) -> list[str]:
        from yinsi.render.labels import DISPUTE_KIND_ZH

        decl = self._decl(who)
        routes = [f"{DISPUTE_KIND_ZH.get(d.kind, d.kind)}：{d.value}" for d in decl.disputes]
        if not any("12377.cn" in r for r in routes):
            routes.append(f"向网信部门举报：{CAC_REPORTING}")
        return routes

    def cancellation(self, who: PersonPrincipal) -> dict[str, Any]:
        """What a person sees before cancelling the account: the declared prerequisites (which the app's
        data shows unmet, which a person still confirms), what will be kept and why (legal holds of the data
        map, else the declaration's retention rules), the declared effects, and that it cannot be undone."""
        decl = self._decl(who)
        c = decl.account_cancellation
        unmet: list[str] = []
        unchecked: list[str] = []
        dm = self.rights.datamaps.get(who.tenant)
        if c is not None and c.prerequisites and dm is not None:
            kind = who.subject_kind or (dm.subjects[0].id if dm.subjects else "account")
            unmet, unchecked = self.rights._prerequisites(who.tenant, kind, who.subject, decl)
        kept: dict[tuple[str, int | None], list[str]] = {}
        if dm is not None:
            kind = who.subject_kind or (dm.subjects[0].id if dm.subjects else "account")
            for loc in dm.locations(kind):
                if loc.legal_hold is not None:
                    names = kept.setdefault((loc.legal_hold.basis, loc.legal_hold.min_days), [])
                    if loc.item_name not in names:
                        names.append(loc.item_name)
        if not kept:
            tax = taxonomy()
            for r in decl.retention:
                if r.legal_hold is not None:
                    kept.setdefault((r.legal_hold.basis, r.legal_hold.min_days), []).extend(
                        tax.item(i).name for i in r.items if i in tax.items)
        return {
            "prerequisites": [p.description for p in (c.prerequisites if c is not None else [])],
            "unmet": unmet, "to_confirm": unchecked,
            "kept": [{"items": names, "basis": basis, "min_days": days} for (basis, days), names in kept.items()],
            "effects": c.effects if c is not None else None,
            "irreversible": ("确认注销后不可撤回：账号将停止服务，个人信息将被删除或匿名化，"
                             "法律、行政法规规定须保存的除外（R9）。"),
        }

    def confirm(self, who: PersonPrincipal, request_id: str) -> dict[str, Any]:
        """Confirm one's own cancellation (irreversible from now on) once the checked prerequisites hold;
        returns the request and the prerequisites a member of staff still confirms."""
        from yinsi.rights.service import RequestError

        self._own(who, request_id)
        try:
            unchecked = self.rights.confirm(who.tenant, request_id, "requester")
        except RequestError as exc:
            raise PersonError("cannot_confirm", str(exc), status=409, rule="R9") from None
        return {**self.request(who, request_id), "to_confirm": list(unchecked)}

    def withdraw_request(self, who: PersonPrincipal, request_id: str) -> dict[str, Any]:
        """Withdraw one's own request (not a confirmed cancellation)."""
        from yinsi.domain.rights import InvalidTransition
        from yinsi.rights.service import RequestError

        self._own(who, request_id)
        try:
            self.rights.withdraw(who.tenant, request_id, "requester")
        except (RequestError, InvalidTransition) as exc:
            raise PersonError("cannot_withdraw", str(exc), status=409) from None
        return self.request(who, request_id)

    def package(self, who: PersonPrincipal, request_id: str) -> tuple[str, bytes]:
        """The zip of one's own completed access, copy or portability request, decrypted in memory (never
        written anywhere in clear) and audited as an export to its subject; ``(file name, bytes)``."""
        from pathlib import Path

        from yinsi.rights.export import EXPORT_FIELD

        v = self._own(who, request_id)
        rtype, state = RequestType(v.type), State(v.state)
        if rtype not in COPYING:
            raise PersonError("no_package", f"{REQUEST_ZH[rtype]}请求没有可下载的个人信息包", status=409)
        if state is not State.COMPLETED:
            raise PersonError("package_not_ready", f"请求处于「{STATE_ZH[state]}」状态，个人信息包尚未就绪（R11）",
                              status=409, rule="R11")
        stored = (v.result or {}).get("package")
        if not stored or not Path(stored).exists():
            raise PersonError("package_missing", "个人信息包已不可用，请联系我们重新生成", status=410)
        data = bytes(self.rights.audit.ring.cipher(who.tenant).decrypt_bytes(EXPORT_FIELD, Path(stored).read_bytes()))
        with self.rights.sessions() as s:
            self.rights.audit.record_in(s, who.tenant, "requester", AuditAction.EXPORT, subject=who.subject,
                                        reason=f"本人下载请求 {v.id} 的个人信息包",
                                        details={"request": v.id, "session_method": who.method})
            s.commit()
        kind = "portability" if rtype is RequestType.PORTABILITY else "copy"
        return f"{who.tenant}-{kind}-{v.id[:8]}.zip", data

    def start_cancellation(self, who: PersonPrincipal) -> dict[str, Any]:
        """Ask to cancel the account, once the prerequisites the app's data can check are met (R9): the
        request is verified through the session; the person then confirms it (:meth:`confirm_cancellation`)."""
        terms = self.cancellation(who)
        if terms["unmet"]:
            raise PersonError("prerequisites_unmet", "暂不能注销：" + "；".join(terms["unmet"]), status=409, rule="R9")
        open_ = [r for r in self.requests(who)
                 if r["type"] == RequestType.CANCEL_ACCOUNT.value and State(r["state"]) in OPEN_STATES]
        if open_:
            return self.request(who, open_[0]["id"])
        return self.submit(who, RequestType.CANCEL_ACCOUNT)

    def confirm_cancellation(self, who: PersonPrincipal, request_id: str, *, acknowledged: bool) -> dict[str, Any]:
        """Confirm one's cancellation: only with the explicit acknowledgement that it cannot be undone (R9)."""
        if not acknowledged:
            raise PersonError("not_acknowledged", "请先勾选确认：注销后不可撤回", rule="R9")
        return self.confirm(who, request_id)

    def withdrawal_preview(self, who: PersonPrincipal, scope: str) -> dict[str, Any]:
        """Before withdrawing ``scope`` (``policy``: everything, 撤回隐私政策): what would stop and what would
        continue on other legal bases, as the withdrawal itself will state it."""
        decl = self._decl(who)
        effects = withdrawal_effects(decl, [scope])
        name = "全部同意（撤回隐私政策）" if scope == POLICY else _scope_zh(decl, scope)
        return {"scope": scope, "name": name, "effects": effects.to_json(), "statement": effects.statement()}

    def policy(self, who: PersonPrincipal) -> dict[str, Any]:
        """The current policy as a person reads it: version and dates, its SDK list and its 双清单 (collected
        and shared PI), the permissions it declares (:func:`yinsi.render.lists.render_lists`)."""
        from yinsi.render.lists import render_lists

        decl = self._decl(who)
        key = (who.tenant, "lists:" + decl.version.label)
        cached = self._lists.get(key)
        if cached is None:
            cached = render_lists(decl)
            cached["features"] = [{"id": f.id, "name": f.name, "kind": f.kind.value} for f in decl.features]
            self._lists[key] = cached
        return cached

    # --- policy versions ----------------------------------------------------------------------------------
    def versions(self, who: PersonPrincipal) -> list[dict[str, Any]]:
        return policy_versions(who.tenant, self.url)

    def version(self, who: PersonPrincipal, label: str) -> dict[str, Any]:
        return policy_version(who.tenant, label, self.url)

    def changes(self, who: PersonPrincipal, old: str, new: str) -> dict[str, Any]:
        """What changed between two published versions (both archived: the answer never changes, so it is
        kept per pair)."""
        key = (who.tenant, f"changes:{old}\n{new}")
        found = self._lists.get(key)
        if found is None:
            found = policy_changes(who.tenant, old, new, self.url)
            if len(self._lists) < 1000:
                self._lists[key] = found
        return found


# --- policy versions (public too: the same functions serve the public policy pages) --------------------

def policy_versions(tenant: str, url: str | None = None) -> list[dict[str, Any]]:
    """The tenant's published versions, oldest first, with dates."""
    return [{"label": v.label, "app_name": v.app_name,
             "effective_date": v.effective_date.isoformat() if v.effective_date else None,
             "updated_date": v.updated_date.isoformat() if v.updated_date else None,
             "published_at": v.published_at.isoformat()} for v in history(tenant, url)]


def policy_version(tenant: str, label: str, url: str | None = None) -> dict[str, Any]:
    """One archived version: its metadata and the rendered policy text (Markdown) as published."""
    try:
        v = get_version(tenant, label, url)
    except VersionNotFound:
        raise PersonError("version_not_found", "没有该版本的隐私政策", status=404) from None
    return {"label": v.version.label, "effective_date": _iso(v.version.effective_date),
            "updated_date": _iso(v.version.updated_date), "markdown": v.rendered_markdown,
            "rendered_hash": v.version.rendered_hash}


def policy_changes(tenant: str, old: str, new: str, url: str | None = None) -> dict[str, Any]:
    """What changed from version ``old`` to ``new``: a summary, groups of plain Chinese sentences with major
    changes first, and the consents to renew (PIPL 14)."""
    decls = []
    for label in (old, new):
        try:
            v = get_version(tenant, label, url)
        except VersionNotFound:
            raise PersonError("version_not_found", "没有该版本的隐私政策", status=404) from None
        decls.append(parse_declaration(v.declaration_yaml, f"{tenant}@{label}"))
    diff = diff_declarations(decls[0], decls[1])
    groups = describe_changes(diff, decls[0], decls[1])
    return {"old": old, "new": new, "major": diff.major, "criteria": diff.criteria_met(),
            "summary": summary(diff, groups), "groups": [g.to_json() for g in groups],
            "reconsent": [{"consent": r.consent, "scope": r.scope, "rule": r.rule, "reason": r.reason}
                          for r in diff.reconsent]}


_GROUP_COLUMNS = ("action", "feature", "purpose", "items", "recipient", "basis", "allowed")


def _group_records(s: Any, tenant: str, subject: str, *, after: int | None = None) -> dict[tuple[Any, ...], list[Any]]:
    """The person's processing records (those after id ``after``) grouped in the database by what was decided:
    ``{(action, feature, purpose, items, recipient, basis, allowed): [n, first, last]}``."""
    from sqlalchemy import func, select

    from yinsi.storage.consent_tables import ProcessingRecord as R

    cols = [getattr(R, c) for c in _GROUP_COLUMNS]
    stmt = (select(*cols, func.count(), func.min(R.decided_at), func.max(R.decided_at))
            .where(R.tenant_id == tenant, R.subject_id == subject).group_by(*cols))
    if after is not None:
        stmt = stmt.where(R.id > after)
    return {tuple(row[:7]): [int(row[7]), row[8], row[9]] for row in s.execute(stmt)}


def _merge_groups(old: dict[tuple[Any, ...], list[Any]],
                  new: dict[tuple[Any, ...], list[Any]]) -> dict[tuple[Any, ...], list[Any]]:
    out = {k: list(v) for k, v in old.items()}
    for k, (n, first, last) in new.items():
        if k in out:
            out[k] = [out[k][0] + n, min(out[k][1], first), max(out[k][2], last)]
        else:
            out[k] = [n, first, last]
    return out


def _lists_of(decl: Declaration, groups: Mapping[tuple[Any, ...], list[Any]],
              events: list[tuple[int, ConsentEvent]]) -> dict[str, Any]:
    """The 双清单 from the grouped processing records (:func:`_group_records`), in the shape of
    :meth:`ConsentService.report`: collected items, shared items per recipient, the latest answer per consent
    scope, and how many requests the gate refused."""
    from yinsi.domain.taxonomy import Action

    tax = taxonomy()
    collected: dict[str, dict[str, Any]] = {}
    shared: dict[tuple[str, str], dict[str, Any]] = {}
    refused = 0
    using = (Action.COLLECT.value, Action.USE.value, Action.AUTOMATED_DECISION.value)
    for (action, feature, purpose_, items_, recipient, basis, allowed), (n, first_at, last_at) in sorted(
            groups.items(), key=lambda kv: kv[1][1]):
        if not allowed:
            refused += n
            continue
        items = json.loads(items_)
        f = decl.feature(feature) if feature else None
        purpose = purpose_ or ("；".join(f.purposes) if f else "")
        first, last = first_at.isoformat(), last_at.isoformat()
        if action in using:
            for i in items:
                e = collected.setdefault(i, {"item": i, "name": tax.item(i).name, "sensitive": tax.is_sensitive(i),
                                             "features": [], "purposes": [], "actions": [], "times": 0,
                                             "first": first, "last": last, "basis": []})
                for key, value in (("features", f.name if f else feature), ("purposes", purpose),
                                   ("actions", action), ("basis", basis)):
                    if value and value not in e[key]:
                        e[key].append(value)
                e["times"] += n
                e["last"] = max(e["last"], last)
        elif recipient:
            rec = decl.recipient(recipient)
            for i in items:
                e = shared.setdefault((recipient, i), {
                    "recipient": recipient, "recipient_name": rec.name if rec else recipient, "item": i,
                    "name": tax.item(i).name, "action": action,
                    "purpose": rec.purpose if rec and rec.purpose else purpose, "times": 0, "first": first, "last": last})
                e["times"] += n
                e["last"] = max(e["last"], last)
    latest: dict[str, dict[str, Any]] = {}
    for _, ev in events:
        latest[ev.scope] = {"scope": ev.scope, "event": ev.event.value, "kind": ev.kind.value,
                            "policy": ev.policy_label, "time": ev.event_time.isoformat()}
    return {"collected": list(collected.values()), "shared": list(shared.values()),
            "consents": list(latest.values()), "refused_requests": refused}


def _outdated(scope: str, lost: frozenset[str] | None) -> bool:
    """Whether a consent to ``scope`` given under an older version still covers what it did, as the gate
    sees it (:func:`yinsi.domain.gate.decide`): the policy consent stops covering every function whose scope
    the change touched; any other consent, its own scope."""
    if lost is None:
        return True
    if scope == POLICY:
        return bool(lost)
    return scope in lost or (scope_kind(scope) == "cross_border" and "cross_border:*" in lost)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _recipient_name(decl: Declaration | None, rid: str) -> str:
    r = decl.recipient(rid) if decl is not None else None
    return r.name if r is not None else rid


def _rule_in(message: str) -> str | None:
    import re

    m = re.search(r"（([A-Z]\d+)", message)
    return m.group(1) if m else None


def _actor_zh(actor: str) -> str:
    if actor == "requester":
        return "您本人"
    if actor in ("system", "retention-sweep"):
        return "系统"
    return "工作人员"


def _public_result(result: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What a request's result tells the person (no server paths, no other people's data)."""
    if not result:
        return None
    hidden = {"package", "error"}
    out = {k: v for k, v in result.items() if k not in hidden}
    if "lifted" in out and isinstance(out["lifted"], dict):
        out["lifted"] = {k: v for k, v in out["lifted"].items() if k != "by"}
    return dict(json.loads(json.dumps(out, ensure_ascii=False, default=str)))
