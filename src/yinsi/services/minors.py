"""Minors (未成年人) as a use case: age from an ID number, guardian consent with the guardian's identity kept
protected, a guardian's objection suspending the minor's processing and account, self-supporting 16- and
17-year-olds (M2), and the deletion opened automatically for a minor without verifiable guardian consent
(M3). Rules live in :mod:`yinsi.domain.minors` and the gate; this module records and looks up.

The guardian's identity (an ID number or a phone) is stored as a blind index (to recognise the same
guardian later, e.g. when they object) and encrypted (field ``guardians.identity``); the consent event's
``actor`` names the guardian record (``guardian:<id>``), never the identity.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from yinsi.domain.consent import GUARDIAN, ConsentRejected, EventType, Status, age_on, birth_date_from_id_number
from yinsi.domain.gate import beijing_date
from yinsi.domain.minors import (
    ADULT_AGE,
    OBJECTION,
    RELATION_ZH,
    SELF_SUPPORTING,
    VERIFICATION_ZH,
    AgeStatus,
    Relation,
    Verification,
    classify,
    self_supporting_refusal,
)
from yinsi.domain.rights import DeletionGround, RequestType
from yinsi.domain.taxonomy import ConsentKind
from yinsi.rights.context import RequestError
from yinsi.services.consent import ConsentService
from yinsi.storage.consent_tables import Subject
from yinsi.storage.minors_tables import GUARDIAN_FIELD, GuardianRow, MinorAccount

#: how long a registered minor may wait for a verifiable guardian consent before the deletion is opened (M3)
DEFAULT_GRACE = timedelta(days=7)

ACTIVE = "active"
OBJECTED = "objected"


class MinorsError(ValueError):
    """A request the minors rules refuse (Chinese message, no personal information)."""


class RightsIntake(Protocol):
    """The rights intake use case (:meth:`yinsi.rights.service.RightsService.submit`)."""

    def submit(self, tenant: str, subject: str, type_: RequestType | str, *, subject_kind: str | None = ...,
               channel: str = ..., requester: str | None = ..., details: Any = ...,
               received_at: datetime | None = ...) -> str: ...

    def mark_verified(self, tenant: str, request_id: str, actor: str, how: str) -> None: ...


@dataclass(frozen=True, slots=True)
class MinorStatus:
    """What the app sees of a person's minor status (no identity of anyone)."""

    age: int | None
    adult: bool | None
    guardian_needed: bool
    guardian_consent: bool
    guardians: tuple[dict[str, Any], ...]
    self_supporting: bool
    suspended_at: datetime | None
    suspension_rule: str | None
    deletion_request: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"age": self.age, "adult": self.adult, "guardian_needed": self.guardian_needed,
                "guardian_consent": self.guardian_consent, "guardians": list(self.guardians),
                "self_supporting": self.self_supporting, "suspended": self.suspended_at is not None,
                "suspended_at": self.suspended_at.isoformat() if self.suspended_at else None,
                "suspension_rule": self.suspension_rule, "deletion_request": self.deletion_request,
                "message": self.message}


def _normal_identity(value: str) -> str:
    v = "".join(value.split()).upper()
    if not v:
        raise MinorsError("请给出监护人的身份证号码或手机号码")
    return v


def _index_kind(ident: str) -> str:
    """The blind-index kind of a guardian's identifier (an ID number, a phone, else text)."""
    if len(ident) == 18 and ident[:17].isdigit():
        return "id_card"
    if ident.lstrip("+").isdigit():
        return "mobile_phone"
    return "text"


class MinorsService:
    """Minors' rules over the consent ledger of ``consents``."""

    def __init__(self, consents: ConsentService, *, clock: Callable[[], datetime] | None = None) -> None:
        self.consents = consents
        self.clock = clock or consents.clock

    # --- helpers --------------------------------------------------------------------------------------
    def _ref(self, tenant: str, subject: str) -> str:
        return self.consents.subjects.ref(tenant, subject)

    def _birth(self, tenant: str, subject: str) -> date | None:
        return self.consents.state(tenant, subject).birth_date

    def _account(self, s: Session, tenant: str, ref: str, now: datetime) -> MinorAccount:
        row = s.get(MinorAccount, (tenant, ref))
        if row is None:
            row = MinorAccount(tenant_id=tenant, subject_id=ref, self_supporting=False, updated_at=now)
            s.add(row)
        return row

    # --- age ------------------------------------------------------------------------------------------
    def register(self, tenant: str, subject: str, *, id_number: str | None = None,
                 birth_date: date | None = None) -> AgeStatus | None:
        """Record the person's birth date (from an 18-digit ID number when one is collected: checksum
        verified, only the birth date kept) and return the age status now."""
        if id_number is None and birth_date is None:
            raise MinorsError("请给出身份证号码或出生日期")
        birth = self.consents.register_subject(tenant, subject, birth_date=birth_date, id_number=id_number)
        if birth is None:
            return None
        decl = self.consents.policy(tenant).decl
        return classify(birth, beijing_date(self.clock()), decl.minors,
                        SELF_SUPPORTING in self.consents.state(tenant, subject).restrictions)

    # --- guardians ------------------------------------------------------------------------------------
    def record_guardian_consent(self, tenant: str, subject: str, *, guardian: str, relation: Relation | str,
                                verification: Verification | str, channel: str = "app",
                                at: datetime | None = None) -> str:
        """A verified guardian consents for the minor: the guardian record (identity protected, relation,
        verification) and a guardian consent in the ledger; lifts a suspension this guardian's objection put
        in place. Returns the guardian record id."""
        try:
            rel, how = Relation(relation), Verification(verification)
        except ValueError:
            raise MinorsError("监护关系可选：" + "、".join(f"{r.value}（{z}）" for r, z in RELATION_ZH.items())
                              + "；核验方式可选：" + "、".join(f"{v.value}（{z}）" for v, z in VERIFICATION_ZH.items())
                              ) from None
        ident = _normal_identity(guardian)
        now = self.clock()
        when = at or now
        if len(ident) == 18 and ident[:17].isdigit():
            try:
                gbirth = birth_date_from_id_number(ident)
            except ValueError as exc:
                raise MinorsError(f"监护人身份证号码无效：{exc}") from None
            if age_on(gbirth, beijing_date(when)) < ADULT_AGE:
                raise MinorsError("监护人须为成年人（M2）")
        ring = self.consents.subjects.ring
        ref = self._ref(tenant, subject)
        index = ring.blind_index(tenant, _index_kind(ident), ident)
        token = ring.cipher(tenant).encrypt_text(GUARDIAN_FIELD, ident)
        gid = str(uuid.uuid4())
        # the ledger event first: it validates the scope and the tenant's policy
        self.consents.record_consent(tenant, subject, GUARDIAN, EventType.GIVEN, kind=ConsentKind.GUARDIAN,
                                     channel=channel, actor=f"guardian:{gid}", at=when,
                                     disclosures={"guardian": f"{RELATION_ZH[rel]}，{VERIFICATION_ZH[how]}"})
        with self.consents.sessions() as s:
            s.add(GuardianRow(id=gid, tenant_id=tenant, subject_id=ref, guardian_index=index,
                              guardian_encrypted=token, relation=rel.value, verification=how.value, state=ACTIVE,
                              verified_at=when, objected_at=None, created_at=now))
            acct = self._account(s, tenant, ref, now)
            resumed = acct.suspended_at is not None
            acct.suspended_at, acct.suspension_rule, acct.updated_at = None, None, now
            s.commit()
        if resumed:
            self.consents.set_minor_marker(tenant, subject, OBJECTION, False, actor=f"guardian:{gid}",
                                           reason="监护人重新同意", at=when)
        return gid

    def object(self, tenant: str, subject: str, *, guardian: str, at: datetime | None = None) -> str:
        """The minor's guardian objects: their consent is withdrawn, the minor's processing and account are
        suspended (the gate refuses, citing M1 or M2). Returns the rule cited."""
        ident = _normal_identity(guardian)
        ref = self._ref(tenant, subject)
        index = self.consents.subjects.ring.blind_index(tenant, _index_kind(ident), ident)
        now = self.clock()
        when = at or now
        with self.consents.sessions() as s:
            rows = s.scalars(select(GuardianRow).where(GuardianRow.tenant_id == tenant, GuardianRow.subject_id == ref,
                                                       GuardianRow.guardian_index == index)).all()
            if not rows:
                raise MinorsError("未找到该监护人为此未成年人作出的同意记录；异议须由已登记的监护人提出")
            gid = rows[-1].id
            for row in rows:
                row.state, row.objected_at = OBJECTED, when
            birth = self._birth(tenant, subject)
            rule = "M1" if birth is None or age_on(birth, beijing_date(when)) < 14 else "M2"
            acct = self._account(s, tenant, ref, now)
            acct.suspended_at, acct.suspension_rule, acct.updated_at = when, rule, now
            s.commit()
        st = self.consents.state(tenant, subject).consents.get(GUARDIAN)
        if st is not None and st.status is Status.ACTIVE:
            self.consents.record_consent(tenant, subject, GUARDIAN, EventType.WITHDRAWN, kind=ConsentKind.GUARDIAN,
                                         actor=f"guardian:{gid}", at=when)
        self.consents.set_minor_marker(tenant, subject, OBJECTION, True, actor=f"guardian:{gid}",
                                       reason="监护人提出异议", at=when)
        return rule

    # --- self-supporting (M2) ---------------------------------------------------------------------------
    def set_self_supporting(self, tenant: str, subject: str, *, evidence: str, actor: str, on: bool = True,
                            at: datetime | None = None) -> None:
        """Record (or withdraw) that a 16- or 17-year-old lives mainly on their own labour income (民法典 18);
        refused unless the declaration accepts it and the person is 16 or over."""
        now = self.clock()
        when = at or now
        if on:
            why = self_supporting_refusal(self._birth(tenant, subject), beijing_date(when),
                                          self.consents.policy(tenant).decl.minors)
            if why is not None:
                raise MinorsError(why)
            if not evidence.strip():
                raise MinorsError("请说明认定依据（如 labour_contract、income_proof）")
        ref = self._ref(tenant, subject)
        with self.consents.sessions() as s:
            acct = self._account(s, tenant, ref, now)
            acct.self_supporting, acct.self_supporting_evidence = on, (evidence.strip()[:32] if on else None)
            acct.updated_at = now
            s.commit()
        self.consents.set_minor_marker(tenant, subject, SELF_SUPPORTING, on, actor=actor,
                                       reason="认定为以自己劳动收入为主要生活来源" if on else "撤销自立认定", at=when)

    # --- status ---------------------------------------------------------------------------------------
    def status(self, tenant: str, subject: str, *, at: datetime | None = None) -> MinorStatus:
        """The person's minor status as the app needs it (suspension, guardian consent, deletion opened)."""
        when = at or self.clock()
        state = self.consents.state(tenant, subject)
        decl = self.consents.policy(tenant).decl
        ref = self._ref(tenant, subject)
        with self.consents.sessions() as s:
            acct = s.get(MinorAccount, (tenant, ref))
            rows = s.scalars(select(GuardianRow).where(GuardianRow.tenant_id == tenant, GuardianRow.subject_id == ref)
                             .order_by(GuardianRow.created_at)).all()
            guardians = tuple({"id": r.id, "relation": r.relation, "verification": r.verification, "state": r.state,
                               "verified_at": r.verified_at.isoformat(),
                               "objected_at": r.objected_at.isoformat() if r.objected_at else None} for r in rows)
        g = state.consents.get(GUARDIAN)
        has_guardian = g is not None and g.status is Status.ACTIVE and g.kind is ConsentKind.GUARDIAN
        selfsup = SELF_SUPPORTING in state.restrictions
        age_status = (None if state.birth_date is None
                      else classify(state.birth_date, beijing_date(when), decl.minors, selfsup))
        suspended = acct.suspended_at if acct is not None else None
        msg = age_status.message if age_status else "未登记出生日期"
        if suspended is not None:
            msg = "监护人已提出异议，账户已暂停；" + msg
        return MinorStatus(age_status.age if age_status else None, age_status.adult if age_status else None,
                           bool(age_status and age_status.guardian_needed), has_guardian, guardians, selfsup,
                           suspended, acct.suspension_rule if acct else None,
                           acct.deletion_request if acct else None, msg)

    # --- M3: minors without verifiable guardian consent --------------------------------------------------
    def sweep(self, tenant: str, rights: RightsIntake, *, now: datetime | None = None,
              grace: timedelta = DEFAULT_GRACE) -> list[str]:
        """Open a deletion request (through the rights intake) for every minor who needs a guardian's consent,
        has none active and was registered more than ``grace`` ago; once per person. Returns the request ids."""
        when = now or self.clock()
        decl = self.consents.policy(tenant).decl
        ring = self.consents.subjects.ring
        cipher = ring.cipher(tenant)
        today = beijing_date(when)
        opened: list[str] = []
        with self.consents.sessions() as s:
            rows = s.execute(select(Subject.subject_id, Subject.subject_encrypted, Subject.birth_date_encrypted,
                                    Subject.created_at).where(Subject.tenant_id == tenant,
                                                              Subject.birth_date_encrypted.is_not(None))).all()
            done = set(s.scalars(select(MinorAccount.subject_id).where(
                MinorAccount.tenant_id == tenant, MinorAccount.deletion_request.is_not(None))))
        decode = self.consents.subjects.birth_decoder(tenant)
        for ref, sub_token, birth_token, created in rows:
            if ref in done or sub_token is None or created is None or when - created < grace:
                continue
            if birth_token is None:
                continue
            birth = decode(birth_token)
            if age_on(birth, today) >= ADULT_AGE:
                continue
            subject = cipher.decrypt_text("subjects.subject", sub_token)
            state = self.consents.state(tenant, subject)
            st = classify(birth, today, decl.minors, SELF_SUPPORTING in state.restrictions)
            g = state.consents.get(GUARDIAN)
            if not st.guardian_needed or (g is not None and g.status is Status.ACTIVE):
                continue
            try:
                rid = rights.submit(tenant, subject, RequestType.DELETION, channel="staff", received_at=when, details={
                    "ground": DeletionGround.UNLAWFUL.value, "rule": "M3",
                    "reason": f"未成年人（{st.age}周岁）未取得可验证的监护人同意，所收集的个人信息应予删除"
                              f"（未成年人保护法 72；{st.rule}）"})
            except RequestError:  # e.g. the app holds no record of this person: nothing to delete there
                continue
            # opened by the processor under M3, not asked by the person: no identity check of a requester
            rights.mark_verified(tenant, rid, "system", "未成年人未经监护人同意的依法删除（M3），无须本人核验")
            with self.consents.sessions() as s:
                acct = self._account(s, tenant, ref, when)
                acct.deletion_request, acct.deletion_opened_at, acct.updated_at = rid, when, when
                s.commit()
            opened.append(rid)
        return opened


__all__ = ["DEFAULT_GRACE", "ConsentRejected", "MinorStatus", "MinorsError", "MinorsService", "RightsIntake"]
