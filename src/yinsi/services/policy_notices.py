"""Notices of policy changes and of the end of the service (变更告知、停止运营), and re-consent progress.

Use cases (each commits its own transaction and writes an audit entry):

- :meth:`PolicyNotices.prepare_change` / :meth:`schedule_change`: for a newly published version, the people
  it affects (everyone with a consent given under an older version), the Chinese summary of the diff, and one
  notice per person and declared channel, due at once and checked to arrive before the effective date (at
  least ``policy_changes.notice_days`` days before). ``publish(..., notify=True)`` refuses the version when
  they would arrive late (``NoticeRefused``), before anything is archived.
- :meth:`run_due` (time passed in; the scheduler calls it): sends the due notices — e-mail and SMS through
  the outbox to the address kept encrypted in ``subject_identifiers``, in-app channels posted for the app to
  show (:meth:`posted_for`) — and for an announced termination whose stop date has come, opens the full sweep
  (one deletion request per person, through ``sweeper``) and later verifies that every request completed.
- :meth:`progress`: per tenant and version, how many people were notified and how many accepted again.
- :meth:`announce_termination`: the service stops on a date at least 30 days after the notices arrive.

Continued use never counts as consent (C5): nothing here records a consent; the gate refuses processing that
rests on an outdated consent until the person gives it again (see docs/policy-changes.md).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from yinsi.audit import SYSTEM_ACTOR, AuditAction
from yinsi.declarations import parse_declaration
from yinsi.domain.changes import diff_declarations
from yinsi.domain.consent import POLICY, Status
from yinsi.domain.notices import (
    BEIJING,
    OUTBOX_CHANNELS,
    POSTED_CHANNELS,
    ChangeSummary,
    NoticeRefused,
    NoticeTiming,
    change_notice_text,
    change_summary,
    plan_change_notice,
    plan_termination,
    termination_notice_text,
)
from yinsi.domain.policy import Declaration
from yinsi.services.outbox_service import OutboxService
from yinsi.services.subjects import resolve, stored_id
from yinsi.storage.consent_tables import ConsentStateRow
from yinsi.storage.notice_tables import PolicyNotice, PolicyNoticePlan
from yinsi.storage.repository import PolicyVersionRepository
from yinsi.storage.rights_tables import RightsRequest

__all__ = ["NoticeRefused", "PlanView", "PolicyNotices", "PreparedChange", "RunReport"]

CHANGE = "change"
TERMINATION = "termination"
PUBLIC = "*"


def utcnow() -> datetime:
    return datetime.now(UTC)


class NoticeError(Exception):
    """A problem a person can act on (Chinese)."""


@dataclass(frozen=True)
class PreparedChange:
    """What :meth:`PolicyNotices.prepare_change` found, before the version is archived."""

    tenant: str
    label: str
    old_label: str
    effective: date
    summary: ChangeSummary
    timing: NoticeTiming
    people: list[str]
    subject: str
    body: str


@dataclass(frozen=True)
class PlanView:
    tenant: str
    kind: str
    label: str
    old_label: str | None
    effective_date: str
    send_at: str
    arrive_by: str
    major: bool
    rights_reducing: bool
    summary: str
    channels: list[str]
    people: int
    status: str
    notices: dict[str, int] = field(default_factory=dict)
    sweep_status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunReport:
    queued: int = 0
    posted: int = 0
    no_address: int = 0
    late: int = 0
    sweeps_opened: int = 0
    sweeps_verified: int = 0
    sweeps_waiting: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _iso(moment: datetime) -> str:
    return moment.astimezone(BEIJING).isoformat(timespec="minutes")


def _view(row: PolicyNoticePlan, counts: Mapping[str, int] | None = None) -> PlanView:
    return PlanView(row.tenant_id, row.kind, row.label, row.old_label, row.effective_date.isoformat(),
                    _iso(row.send_at), _iso(row.arrive_by), row.major, row.rights_reducing, row.summary,
                    [c for c in row.channels.split(",") if c], row.people, row.status, dict(counts or {}),
                    row.sweep_status)


class PolicyNotices(OutboxService):
    """The notice use cases on one database (see the module docstring)."""

    # --- who is affected ----------------------------------------------------------------------------
    def _people(self, s: Session, tenant: str, label: str) -> list[str]:
        """Everyone with a consent (any scope, any state but refused) given under another version: their
        pseudonyms as the ledger holds them (``policy_notices`` stores these too; the app's id is decrypted
        from the subject directory only when a notice is sent or a sweep opens a request)."""
        return sorted(set(s.scalars(select(ConsentStateRow.subject_id).where(
            ConsentStateRow.tenant_id == tenant, ConsentStateRow.policy_label != label,
            ConsentStateRow.status != Status.REFUSED.value).distinct())))

    # --- a change -----------------------------------------------------------------------------------
    def prepare_change(self, new: Declaration, *, now: datetime | None = None) -> PreparedChange | None:
        """The notices a new version needs (``None`` for a tenant's first version), or :class:`NoticeRefused`."""
        at = now or self.clock()
        with self.sessions() as s:
            all_versions = PolicyVersionRepository(s).list_for_tenant(new.tenant)
            versions = [v for v in all_versions if v.label != new.version.label]
            if not versions or len(versions) != len(all_versions):  # first version, or already published
                return None
            previous = versions[-1]
            old_label, old_text = previous.label, previous.declaration_yaml
            people = self._people(s, new.tenant, new.version.label)
        old = parse_declaration(old_text, f"{new.tenant}@{old_label}")
        diff = diff_declarations(old, new)
        summary = change_summary(diff, old, new)
        timing = plan_change_notice(new, at, people=len(people))
        effective = new.version.effective_date.value
        assert effective is not None  # plan_change_notice refuses a version without one
        subject, body = change_notice_text(new.app.name, new.controller.legal_name.value or new.app.name,
                                           new.version.label, effective, summary,
                                           explicit_consent=bool(diff.reconsent))
        return PreparedChange(new.tenant, new.version.label, old_label, effective, summary, timing, people,
                              subject, body)

    def schedule_change(self, prepared: PreparedChange, *, by: str | None = None) -> PlanView:
        """Store the plan and one notice per person and channel (idempotent per tenant and version)."""
        p = prepared
        actor = by or SYSTEM_ACTOR
        with self.sessions() as s, s.begin():
            existing = s.scalars(select(PolicyNoticePlan).where(
                PolicyNoticePlan.tenant_id == p.tenant, PolicyNoticePlan.kind == CHANGE,
                PolicyNoticePlan.label == p.label)).first()
            if existing is not None:
                return _view(existing)
            row = PolicyNoticePlan(
                tenant_id=p.tenant, kind=CHANGE, label=p.label, old_label=p.old_label, effective_date=p.effective,
                send_at=p.timing.send_at, arrive_by=p.timing.arrive_by, major=p.summary.major,
                rights_reducing=p.summary.rights_reducing, summary=p.summary.text(),
                details=json.dumps({"subject": p.subject, "body": p.body, "summary": p.summary.to_json(),
                                    "warnings": p.timing.warnings}, ensure_ascii=False),
                channels=",".join(p.timing.channels), people=len(p.people), status="scheduled",
                created_at=p.timing.send_at, created_by=actor)
            s.add(row)
            s.flush()
            self._add_notices(s, row, p.people, p.timing.channels, p.timing.send_at)
            self.audit.record_in(s, p.tenant, actor, AuditAction.POLICY_PUBLISH, details={
                "step": "change_notices_scheduled", "label": p.label, "old_label": p.old_label,
                "people": len(p.people), "channels": p.timing.channels, "major": p.summary.major,
                "rights_reducing": p.summary.rights_reducing, "arrive_by": p.timing.arrive_by.isoformat()})
            return _view(row)

    @staticmethod
    def _add_notices(s: Session, plan: PolicyNoticePlan, people: list[str], channels: list[str],
                     due: datetime) -> None:
        for channel in channels:
            if channel == "announcement":
                s.add(PolicyNotice(tenant_id=plan.tenant_id, plan_id=plan.id, subject_id=PUBLIC, channel=channel,
                                   status="scheduled", due_at=due))
                continue
            manual = channel not in OUTBOX_CHANNELS and channel not in POSTED_CHANNELS
            for subject in people:
                s.add(PolicyNotice(tenant_id=plan.tenant_id, plan_id=plan.id, subject_id=subject, channel=channel,
                                   status="manual" if manual else "scheduled", due_at=due,
                                   note="须人工告知（电话、信函等）" if manual else None))

    # --- termination --------------------------------------------------------------------------------
    def announce_termination(self, tenant: str, stop_date: date, channels: list[str], *, reason: str | None = None,
                             by: str | None = None, now: datetime | None = None) -> PlanView:
        """Announce that the service stops on ``stop_date`` (≥ 30 days after the notices arrive)."""
        at = now or self.clock()
        actor = by or SYSTEM_ACTOR
        with self.sessions() as s:
            latest = PolicyVersionRepository(s).latest(tenant)
            if latest is None:
                raise NoticeError(f"租户 {tenant} 没有已发布的隐私政策")
            decl = parse_declaration(latest.declaration_yaml, f"{tenant}@{latest.label}")
            people = self._people(s, tenant, "")
        chosen = list(dict.fromkeys(channels or [str(c) for c in decl.policy_changes.notice_channels]))
        timing = plan_termination(stop_date, at, chosen, people=len(people))
        subject, body = termination_notice_text(decl.app.name, decl.controller.legal_name.value or decl.app.name,
                                                stop_date, reason)
        label = stop_date.isoformat()
        with self.sessions() as s, s.begin():
            if s.scalars(select(PolicyNoticePlan).where(
                    PolicyNoticePlan.tenant_id == tenant, PolicyNoticePlan.kind == TERMINATION)).first() is not None:
                raise NoticeError(f"租户 {tenant} 已宣布停止运营；如需更改请联系管理员")
            row = PolicyNoticePlan(
                tenant_id=tenant, kind=TERMINATION, label=label, old_label=latest.label, effective_date=stop_date,
                send_at=at, arrive_by=timing.arrive_by, major=True, rights_reducing=False,
                summary=body, details=json.dumps({"subject": subject, "body": body, "reason": reason},
                                                 ensure_ascii=False),
                channels=",".join(chosen), people=len(people), status="scheduled", created_at=at,
                created_by=actor, sweep_status="scheduled")
            s.add(row)
            s.flush()
            self._add_notices(s, row, people, chosen, at)
            self.audit.record_in(s, tenant, actor, AuditAction.CONFIG_CHANGE, reason=reason, details={
                "step": "termination_announced", "stop_date": label, "people": len(people), "channels": chosen})
            return _view(row)

    # --- the scheduler's work -------------------------------------------------------------------------
    def run_due(self, tenant: str, *, now: datetime | None = None,
                sweeper: Callable[[str], str] | None = None) -> RunReport:
        """Send the notices due at ``now``; open or verify a termination's sweep whose date has come."""
        from yinsi.protect.identifiers import reveal_identifier

        at = now or self.clock()
        report = RunReport()
        with self.sessions() as s:
            due = s.execute(select(PolicyNotice.id, PolicyNotice.subject_id, PolicyNotice.channel,
                                   PolicyNotice.plan_id).where(
                PolicyNotice.tenant_id == tenant, PolicyNotice.status == "scheduled",
                PolicyNotice.due_at <= at).order_by(PolicyNotice.id)).all()
            plans = {p.id: p for p in s.scalars(select(PolicyNoticePlan).where(
                PolicyNoticePlan.tenant_id == tenant))}
            texts = {pid: json.loads(p.details) for pid, p in plans.items()}
            arrive_by = {pid: p.arrive_by for pid, p in plans.items()}
        addresses: dict[int, str | None] = {}
        with self.sessions() as s:
            app_ids = resolve(s, self.audit.ring, tenant, [d[1] for d in due if d[1] != PUBLIC])
        for nid, subject, channel, _pid in due:
            kind = OUTBOX_CHANNELS.get(channel)
            if kind is not None:
                addresses[nid] = reveal_identifier(self.audit.ring, tenant, app_ids[subject][0], kind)
        if due:
            with self.sessions() as s, s.begin():
                for nid, _subject, channel, pid in due:
                    # claim it (compare-and-set): a concurrent run that got here first makes this one skip it
                    claimed = s.execute(update(PolicyNotice).where(
                        PolicyNotice.id == nid, PolicyNotice.status == "scheduled").values(status="sending")
                        .execution_options(synchronize_session=False))
                    row = s.get(PolicyNotice, nid)
                    if row is None or int(getattr(claimed, "rowcount", 0) or 0) != 1:
                        continue
                    late = at > arrive_by[pid]
                    report.late += int(late)
                    if channel in OUTBOX_CHANNELS:
                        to = addresses.get(nid)
                        if to is None:
                            row.status, row.note = "no_address", "未登记该渠道的联系方式"
                            report.no_address += 1
                            continue
                        text = texts[pid]
                        row.outbox_id = self.outbox.enqueue_in(
                            s, tenant, channel, to, text["subject"], text["body"], "policy_notice",
                            f"policy:{plans[pid].label}", now=at)
                        row.status = "queued"
                        report.queued += 1
                    else:
                        row.status = "posted"
                        report.posted += 1
                    row.sent_at = at
                    if late:
                        row.note = "晚于承诺的送达时间发出"
                for plan in plans.values():
                    left = s.scalar(select(func.count()).select_from(PolicyNotice).where(
                        PolicyNotice.plan_id == plan.id, PolicyNotice.status == "scheduled"))
                    if not left and plan.status == "scheduled":
                        fresh = s.get(PolicyNoticePlan, plan.id)
                        assert fresh is not None
                        fresh.status = "sent"
                self.audit.record_in(s, tenant, SYSTEM_ACTOR, AuditAction.OTHER, details={
                    "step": "policy_notices_sent", "queued": report.queued, "posted": report.posted,
                    "no_address": report.no_address, "late": report.late})
        self._sweeps(tenant, at, sweeper, report)
        return report

    def _sweeps(self, tenant: str, at: datetime, sweeper: Callable[[str], str] | None, report: RunReport) -> None:
        today = at.astimezone(BEIJING).date()
        with self.sessions() as s:
            plans = list(s.scalars(select(PolicyNoticePlan).where(
                PolicyNoticePlan.tenant_id == tenant, PolicyNoticePlan.kind == TERMINATION,
                PolicyNoticePlan.effective_date <= today,
                PolicyNoticePlan.sweep_status.in_(("scheduled", "opened")))))
            people = self._people(s, tenant, "")
        for plan in plans:
            if plan.sweep_status == "scheduled":
                if sweeper is None:
                    report.sweeps_waiting += 1
                    continue
                with self.sessions() as s:
                    app_ids = resolve(s, self.audit.ring, tenant, people)
                opened = {subject: sweeper(app_ids[subject][0]) for subject in people}
                with self.sessions() as s, s.begin():
                    row = s.get(PolicyNoticePlan, plan.id)
                    assert row is not None
                    row.sweep_status, row.sweep_result = "opened", json.dumps({"requests": opened})
                    self.audit.record_in(s, tenant, SYSTEM_ACTOR, AuditAction.RIGHTS_REQUEST_STEP, details={
                        "step": "termination_sweep_opened", "requests": len(opened)})
                report.sweeps_opened += 1
                continue
            requests = json.loads(plan.sweep_result or "{}").get("requests", {})
            with self.sessions() as s:
                states = Counter(s.scalars(select(RightsRequest.state).where(
                    RightsRequest.tenant_id == tenant, RightsRequest.id.in_(list(requests.values())))))
            if states.get("completed", 0) == len(requests):
                with self.sessions() as s, s.begin():
                    row = s.get(PolicyNoticePlan, plan.id)
                    assert row is not None
                    row.sweep_status, row.swept_at = "verified", at
                    self.audit.record_in(s, tenant, SYSTEM_ACTOR, AuditAction.RIGHTS_REQUEST_STEP, details={
                        "step": "termination_sweep_verified", "requests": len(requests)})
                report.sweeps_verified += 1
            else:
                report.sweeps_waiting += 1

    # --- reading ------------------------------------------------------------------------------------
    def plans(self, tenant: str) -> list[PlanView]:
        with self.sessions() as s:
            rows = list(s.scalars(select(PolicyNoticePlan).where(PolicyNoticePlan.tenant_id == tenant)
                                  .order_by(PolicyNoticePlan.id)))
            out = []
            for row in rows:
                counts = {str(k): int(v) for k, v in s.execute(select(PolicyNotice.status, func.count()).where(
                    PolicyNotice.plan_id == row.id).group_by(PolicyNotice.status)).all()}
                out.append(_view(row, counts))
            return out

    def progress(self, tenant: str) -> dict[str, Any]:
        """Re-consent progress: per version with a change plan, how many of the people affected have
        accepted the new version again (an active ``policy`` consent under that label)."""
        out: dict[str, Any] = {"tenant": tenant, "versions": []}
        with self.sessions() as s:
            current = PolicyVersionRepository(s).latest_label(tenant)
            out["current"] = current
            for plan in s.scalars(select(PolicyNoticePlan).where(
                    PolicyNoticePlan.tenant_id == tenant, PolicyNoticePlan.kind == CHANGE).order_by(PolicyNoticePlan.id)):
                accepted = s.scalar(select(func.count()).select_from(ConsentStateRow).where(
                    ConsentStateRow.tenant_id == tenant, ConsentStateRow.scope == POLICY,
                    ConsentStateRow.policy_label == plan.label, ConsentStateRow.status == Status.ACTIVE.value)) or 0
                counts = {str(k): int(v) for k, v in s.execute(select(PolicyNotice.status, func.count()).where(
                    PolicyNotice.plan_id == plan.id).group_by(PolicyNotice.status)).all()}
                needs = json.loads(plan.details).get("summary", {}).get("reconsent", [])
                out["versions"].append({
                    "label": plan.label, "effective_date": plan.effective_date.isoformat(), "people": plan.people,
                    "reconsent_needed": bool(needs), "accepted": accepted,
                    "pending": max(plan.people - accepted, 0) if needs else 0,
                    "percent": round(100 * accepted / plan.people, 1) if plan.people else 100.0,
                    "notices": counts})
        return out

    def posted_for(self, tenant: str, subject: str) -> list[dict[str, Any]]:
        """The in-app notices posted for a person (what the app or privacy center shows)."""
        stored = stored_id(self.audit.ring, tenant, subject)
        with self.sessions() as s:
            rows = s.execute(select(PolicyNotice, PolicyNoticePlan).join(
                PolicyNoticePlan, PolicyNoticePlan.id == PolicyNotice.plan_id).where(
                PolicyNotice.tenant_id == tenant, PolicyNotice.subject_id.in_((stored, PUBLIC)),
                PolicyNotice.status == "posted").order_by(PolicyNotice.id)).all()
            seen: set[int] = set()
            out = []
            for notice, plan in rows:
                if plan.id in seen:
                    continue
                seen.add(plan.id)
                text = json.loads(plan.details)
                posted = _iso(notice.sent_at) if notice.sent_at else None
                out.append({"kind": plan.kind, "label": plan.label, "effective_date": plan.effective_date.isoformat(),
                            "subject": text["subject"], "body": text["body"], "posted_at": posted})
            return out
