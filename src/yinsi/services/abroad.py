"""Transfers abroad (出境) as a use case: a transfer needs the gate's yes (a declared foreign recipient, the
person's separate consent, X1), a recorded assessment of that recipient (PIPL 55, X1), and room under the
mechanism the declaration relies on for the year's count of distinct people (X2).

Counting: ``abroad_people`` holds one row per (tenant, year in Beijing time, sensitive or not, pseudonym), so
a person is counted once a year however often their PI goes abroad; ``abroad_counters`` keeps the counts,
incremented in the same transaction as each new row (one indexed lookup and one update per transfer, one
row to read a count). Thresholds and mechanisms: :mod:`yinsi.domain.crossborder`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yinsi.domain import crossborder
from yinsi.domain.consent import age_on
from yinsi.domain.gate import Decision, beijing_date
from yinsi.domain.minors import CHILD_AGE
from yinsi.domain.taxonomy import Action, taxonomy
from yinsi.services.consent import ConsentService
from yinsi.storage.minors_tables import AbroadAlert, AbroadAssessment, AbroadCounter, AbroadPerson

CONCLUSIONS = ("adequate", "inadequate")
#: years of per-person rows kept (this year and the last; the counts themselves are kept)
KEEP_YEARS = 2


class AbroadError(ValueError):
    """A request the cross-border rules refuse outright (Chinese message, no personal information)."""


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    message: str


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The answer to one transfer abroad."""

    allowed: bool
    reasons: tuple[Reason, ...]
    warnings: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    decision: Decision | None = None

    def to_json(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "reasons": [{"rule": r.rule, "message": r.message} for r in self.reasons],
                "warnings": list(self.warnings), "counts": dict(self.counts),
                "gate": self.decision.to_json() if self.decision is not None else None}


class AbroadService:
    """Assessments, transfers and the year's counts over the consent ledger of ``consents``."""

    def __init__(self, consents: ConsentService, *, clock: Callable[[], datetime] | None = None) -> None:
        self.consents = consents
        self.clock = clock or consents.clock

    # --- X1: the recipient's assessment -----------------------------------------------------------------
    def _abroad_recipient(self, tenant: str, recipient: str) -> None:
        decl = self.consents.policy(tenant).decl
        r = decl.recipient(recipient)
        if r is None:
            raise AbroadError(f"接收方「{recipient}」未在隐私政策中声明（X1）")
        if not (r.abroad or r.action == "transfer_abroad"):
            raise AbroadError(f"隐私政策未声明「{r.name}」为境外接收方（X1）")

    def record_assessment(self, tenant: str, recipient: str, *, conclusion: str, summary: str, assessor: str,
                          assessed_on: date, valid_until: date | None = None) -> str:
        """Record the assessment of a foreign recipient (PIPL 55: lawfulness, necessity, the impact on people,
        the recipient's protection); returns its id."""
        self._abroad_recipient(tenant, recipient)
        if conclusion not in CONCLUSIONS:
            raise AbroadError("评估结论应为 adequate（可以提供）或 inadequate（不得提供）")
        if not summary.strip() or not assessor.strip():
            raise AbroadError("请给出评估摘要与评估人")
        if valid_until is not None and valid_until < assessed_on:
            raise AbroadError("有效期不能早于评估日期")
        aid = str(uuid.uuid4())
        with self.consents.sessions() as s:
            s.add(AbroadAssessment(id=aid, tenant_id=tenant, recipient=recipient, conclusion=conclusion,
                                   summary=summary.strip(), assessor=assessor.strip()[:190], assessed_on=assessed_on,
                                   valid_until=valid_until, recorded_at=self.clock()))
            s.commit()
        return aid

    def assessments(self, tenant: str, recipient: str | None = None) -> list[dict[str, Any]]:
        with self.consents.sessions() as s:
            q = select(AbroadAssessment).where(AbroadAssessment.tenant_id == tenant)
            if recipient is not None:
                q = q.where(AbroadAssessment.recipient == recipient)
            rows = s.scalars(q.order_by(AbroadAssessment.assessed_on, AbroadAssessment.recorded_at)).all()
            return [{"id": r.id, "recipient": r.recipient, "conclusion": r.conclusion, "summary": r.summary,
                     "assessor": r.assessor, "assessed_on": r.assessed_on.isoformat(),
                     "valid_until": r.valid_until.isoformat() if r.valid_until else None} for r in rows]

    def _assessment_reason(self, s: Session, tenant: str, recipient: str, today: date) -> Reason | None:
        latest = s.scalars(select(AbroadAssessment).where(
            AbroadAssessment.tenant_id == tenant, AbroadAssessment.recipient == recipient,
            AbroadAssessment.assessed_on <= today).order_by(AbroadAssessment.assessed_on.desc(),
                                                           AbroadAssessment.recorded_at.desc()).limit(1)).first()
        if latest is None:
            return Reason("X1", f"尚未记录对境外接收方「{recipient}」的个人信息保护影响评估，不得向其提供（PIPL 55、38）")
        if latest.conclusion != "adequate":
            return Reason("X1", f"对境外接收方「{recipient}」的最近一次评估结论为不得提供（{latest.assessed_on}）")
        if latest.valid_until is not None and latest.valid_until < today:
            return Reason("X1", f"对境外接收方「{recipient}」的评估已于{latest.valid_until}到期，须重新评估")
        return None

    # --- a transfer ---------------------------------------------------------------------------------------
    def export(self, tenant: str, subject: str, recipient: str, items: Iterable[str], *, feature: str | None = None,
               purpose: str | None = None, actor: str | None = None, at: datetime | None = None) -> ExportResult:
        """May this person's ``items`` go abroad to ``recipient`` now? When allowed, the person is counted."""
        items = tuple(items)
        now = at or self.clock()
        decision = self.consents.check(tenant, subject, Action.TRANSFER_ABROAD, feature=feature, purpose=purpose,
                                       items=items, recipient=recipient, actor=actor, at=now)
        if not decision.allowed:
            why = tuple(Reason(m.rule, m.message) for m in decision.missing) + tuple(
                Reason(r.rule, r.message) for r in decision.reasons)
            return ExportResult(False, why, decision=decision)
        today = beijing_date(now)
        tax = taxonomy()
        birth = self.consents.state(tenant, subject).birth_date
        child = birth is not None and age_on(birth, today) < CHILD_AGE  # M1: all of a child's PI is sensitive
        sensitive = child or any(tax.is_sensitive(i) for i in items)
        ref = self.consents.subjects.ref(tenant, subject)
        declared = crossborder.declared_mechanism(self.consents.policy(tenant).decl.storage.mechanism)
        year = crossborder.year_of(now)
        for attempt in range(3):
            try:
                return self._count(tenant, ref, recipient, year, sensitive, declared, today, now, decision)
            except IntegrityError:  # another transfer created the same row first: read again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _count(self, tenant: str, ref: str, recipient: str, year: int, sensitive: bool,
               declared: crossborder.Mechanism, today: date, now: datetime, decision: Decision) -> ExportResult:
        with self.consents.sessions() as s:
            why = self._assessment_reason(s, tenant, recipient, today)
            if why is not None:
                return ExportResult(False, (why,), decision=decision)
            counts = _counts(s, tenant, year)
            known = s.get(AbroadPerson, (tenant, year, sensitive, ref)) is not None
            after = dict(counts)
            key = "sensitive" if sensitive else "non_sensitive"
            if not known:
                after[key] += 1
            verdict = crossborder.check(after["non_sensitive"], after["sensitive"], declared)
            if not verdict.allowed:
                return ExportResult(False, (Reason("X2", verdict.message),), counts=counts, decision=decision)
            if not known:
                s.add(AbroadPerson(tenant_id=tenant, year=year, sensitive=sensitive, subject_id=ref,
                                   recipient=recipient, first_at=now))
                if s.get(AbroadCounter, (tenant, year, sensitive)) is None:
                    s.add(AbroadCounter(tenant_id=tenant, year=year, sensitive=sensitive, people=1, updated_at=now))
                else:
                    s.execute(update(AbroadCounter).where(
                        AbroadCounter.tenant_id == tenant, AbroadCounter.year == year,
                        AbroadCounter.sensitive == sensitive).values(people=AbroadCounter.people + 1, updated_at=now))
            _raise_alerts(s, tenant, year, verdict, after, now)
            s.commit()
        return ExportResult(True, (Reason("X1", "已取得单独同意、接收方已声明并经评估"), Reason("X2", verdict.message)),
                            warnings=tuple(w[2] for w in verdict.warnings), counts=after, decision=decision)

    # --- X2: the year's counts ------------------------------------------------------------------------------
    def counters(self, tenant: str, *, at: datetime | None = None) -> dict[str, Any]:
        """The year's distinct people (Beijing calendar year of ``at``), the mechanism they require and the one
        declared, and the warnings that apply."""
        now = at or self.clock()
        year = crossborder.year_of(now)
        declared = crossborder.declared_mechanism(self.consents.policy(tenant).decl.storage.mechanism)
        with self.consents.sessions() as s:
            counts = _counts(s, tenant, year)
        verdict = crossborder.check(counts["non_sensitive"], counts["sensitive"], declared)
        need = crossborder.required(counts["non_sensitive"], counts["sensitive"])
        return {"year": year, **counts, "required": need.name.lower(), "required_zh": crossborder.MECHANISM_ZH[need],
                "declared": declared.name.lower(), "declared_zh": crossborder.MECHANISM_ZH[declared],
                "within_declared": need <= declared, "warnings": [w[2] for w in verdict.warnings]}

    def check_thresholds(self, tenant: str, now: datetime) -> list[str]:
        """Periodic: raise the year's threshold warnings not raised yet (each once a year) and drop per-person
        rows of years before the last one (year rollover; the counts stay). Returns the new warnings."""
        year = crossborder.year_of(now)
        declared = crossborder.declared_mechanism(self.consents.policy(tenant).decl.storage.mechanism)
        with self.consents.sessions() as s:
            counts = _counts(s, tenant, year)
            verdict = crossborder.check(counts["non_sensitive"], counts["sensitive"], declared)
            out = list(_raise_alerts(s, tenant, year, verdict, counts, now))
            if counts["non_sensitive"] + counts["sensitive"] and not verdict.allowed:
                out.append(verdict.message)
            s.execute(delete(AbroadPerson).where(AbroadPerson.tenant_id == tenant,
                                                 AbroadPerson.year <= year - KEEP_YEARS))
            s.commit()
        return out

    def alerts(self, tenant: str) -> list[dict[str, Any]]:
        """Threshold warnings raised, newest first."""
        with self.consents.sessions() as s:
            rows = s.scalars(select(AbroadAlert).where(AbroadAlert.tenant_id == tenant)
                             .order_by(AbroadAlert.raised_at.desc())).all()
            return [{"year": r.year, "sensitive": r.sensitive, "level": r.level, "people": r.people,
                     "raised_at": r.raised_at.isoformat()} for r in rows]


def _counts(s: Session, tenant: str, year: int) -> dict[str, int]:
    out = {"non_sensitive": 0, "sensitive": 0}
    for sens, people in s.execute(select(AbroadCounter.sensitive, AbroadCounter.people).where(
            AbroadCounter.tenant_id == tenant, AbroadCounter.year == year)):
        out["sensitive" if sens else "non_sensitive"] = int(people)
    return out


def _raise_alerts(s: Session, tenant: str, year: int, verdict: crossborder.Volume, counts: dict[str, int],
                  now: datetime) -> tuple[str, ...]:
    """Insert the verdict's warnings not yet raised this year; return the new ones."""
    new: list[str] = []
    for sens, level, message in verdict.warnings:
        if s.get(AbroadAlert, (tenant, year, sens, level)) is None:
            s.add(AbroadAlert(tenant_id=tenant, year=year, sensitive=sens, level=level,
                              people=counts["sensitive" if sens else "non_sensitive"], raised_at=now))
            new.append(message)
    return tuple(new)
