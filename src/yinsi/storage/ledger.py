"""Repository of the consent and permission ledger: events, projections, subjects, processing records.

Every method takes the tenant and filters by it. Events are only ever inserted; projections are upserted
from the same events, in the same transaction, and can be rebuilt from scratch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from yinsi.domain.consent import (
    ConsentEvent,
    EventType,
    PermissionEvent,
    PermissionEventType,
    PermissionState,
    ScopeState,
    Status,
    SubjectState,
)
from yinsi.domain.taxonomy import ConsentKind
from yinsi.storage.consent_tables import (
    ConsentEvent as ConsentEventRow,
)
from yinsi.storage.consent_tables import (
    ConsentStateRow,
    PermissionStateRow,
    ProcessingRecord,
    Subject,
)
from yinsi.storage.consent_tables import (
    PermissionEvent as PermissionEventRow,
)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def consent_row(ev: ConsentEvent, recorded_at: datetime) -> dict[str, Any]:
    return {
        "record_id": ev.record_id, "tenant_id": ev.tenant, "subject_id": ev.subject, "scope": ev.scope,
        "kind": ev.kind.value, "event": ev.event.value, "policy_label": ev.policy_label,
        "shown_hash": ev.shown_hash, "purposes": _dumps(list(ev.purposes)), "items": _dumps(list(ev.items)),
        "recipients": _dumps(list(ev.recipients)), "disclosures": _dumps(dict(ev.disclosures)),
        "controller": ev.controller, "storage_location": ev.storage_location, "retention": ev.retention,
        "jurisdiction": ev.jurisdiction, "withdrawal_method": ev.withdrawal_method, "channel": ev.channel,
        "collection_method": ev.collection_method, "language": ev.language, "actor": ev.actor,
        "event_time": ev.event_time, "recorded_at": recorded_at,
    }


def consent_from_row(r: ConsentEventRow) -> ConsentEvent:
    return ConsentEvent(
        record_id=r.record_id, tenant=r.tenant_id, subject=r.subject_id, scope=r.scope,
        kind=ConsentKind(r.kind), event=EventType(r.event), policy_label=r.policy_label,
        shown_hash=r.shown_hash, event_time=r.event_time, purposes=tuple(json.loads(r.purposes)),
        items=tuple(json.loads(r.items)), recipients=tuple(json.loads(r.recipients)),
        disclosures=json.loads(r.disclosures), controller=r.controller, storage_location=r.storage_location,
        retention=r.retention, jurisdiction=r.jurisdiction, withdrawal_method=r.withdrawal_method,
        channel=r.channel, collection_method=r.collection_method, language=r.language, actor=r.actor,
    )


def permission_from_row(r: PermissionEventRow) -> PermissionEvent:
    return PermissionEvent(r.tenant_id, r.subject_id, r.device_id, r.permission, PermissionEventType(r.event),
                           r.event_time, r.feature)


class LedgerRepository:
    """The ledger of one database session; it never commits."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # subjects
    def subject(self, tenant: str, subject: str) -> Subject | None:
        return self.session.get(Subject, (tenant, subject))

    def put_subject(self, tenant: str, subject: str, birth_date: date | None, now: datetime) -> None:
        row = self.subject(tenant, subject)
        if row is None:
            self.session.add(Subject(tenant_id=tenant, subject_id=subject, birth_date=birth_date, created_at=now))
        elif birth_date is not None:
            row.birth_date = birth_date

    # events
    def add_consent_events(self, events: Sequence[ConsentEvent], recorded_at: datetime) -> list[int]:
        """Insert events in order; returns their ids (in the same order)."""
        if not events:
            return []
        rows = [consent_row(e, recorded_at) for e in events]
        if len(rows) == 1:
            return [self.session.execute(insert(ConsentEventRow).returning(ConsentEventRow.id), rows[0]).scalar_one()]
        result = self.session.execute(
            insert(ConsentEventRow).returning(ConsentEventRow.id, sort_by_parameter_order=True), rows)
        return list(result.scalars())

    def add_permission_event(self, ev: PermissionEvent, recorded_at: datetime) -> int:
        row = {"tenant_id": ev.tenant, "subject_id": ev.subject, "device_id": ev.device,
               "permission": ev.permission, "event": ev.event.value, "feature": ev.feature,
               "event_time": ev.event_time, "recorded_at": recorded_at}
        return int(self.session.execute(insert(PermissionEventRow).returning(PermissionEventRow.id), row)
                   .scalar_one())

    def consent_events(self, tenant: str, subject: str | None = None) -> list[tuple[int, ConsentEvent]]:
        stmt = select(ConsentEventRow).where(ConsentEventRow.tenant_id == tenant)
        if subject is not None:
            stmt = stmt.where(ConsentEventRow.subject_id == subject)
        return [(r.id, consent_from_row(r)) for r in self.session.scalars(stmt.order_by(ConsentEventRow.id))]

    def permission_events(self, tenant: str, subject: str | None = None) -> list[tuple[int, PermissionEvent]]:
        stmt = select(PermissionEventRow).where(PermissionEventRow.tenant_id == tenant)
        if subject is not None:
            stmt = stmt.where(PermissionEventRow.subject_id == subject)
        return [(r.id, permission_from_row(r)) for r in self.session.scalars(stmt.order_by(PermissionEventRow.id))]

    # projections
    def load_state(self, tenant: str, subject: str) -> SubjectState:
        """The projected state (fast read)."""
        state = SubjectState()
        row = self.subject(tenant, subject)
        state.birth_date = row.birth_date if row is not None else None
        for c in self.session.scalars(select(ConsentStateRow).where(
                ConsentStateRow.tenant_id == tenant, ConsentStateRow.subject_id == subject)):
            state.consents[c.scope] = ScopeState(Status(c.status), ConsentKind(c.kind), c.policy_label,
                                                 c.event_time, c.last_event_id)
        for p in self.session.scalars(select(PermissionStateRow).where(
                PermissionStateRow.tenant_id == tenant, PermissionStateRow.subject_id == subject)):
            state.permissions[(p.device_id, p.permission)] = PermissionState(
                PermissionEventType(p.status), p.changed_at, p.last_denied_at, p.last_event_id)
        return state

    def save_consent_states(self, tenant: str, subject_states: dict[str, dict[str, ScopeState]]) -> None:
        """Upsert projection rows for the given subjects' scopes (one SELECT, then bulk insert/update)."""
        if not subject_states:
            return
        existing: set[tuple[str, str]] = set()
        subjects = list(subject_states)
        for chunk_start in range(0, len(subjects), 500):
            chunk = subjects[chunk_start:chunk_start + 500]
            existing.update((r[0], r[1]) for r in self.session.execute(
                select(ConsentStateRow.subject_id, ConsentStateRow.scope).where(
                    ConsentStateRow.tenant_id == tenant, ConsentStateRow.subject_id.in_(chunk))))
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for subject, scopes in subject_states.items():
            for scope, st in scopes.items():
                row = {"tenant_id": tenant, "subject_id": subject, "scope": scope, "status": st.status.value,
                       "kind": st.kind.value, "policy_label": st.policy_label, "event_time": st.event_time,
                       "last_event_id": st.last_event_id}
                (updates if (subject, scope) in existing else inserts).append(row)
        if inserts:
            self.session.execute(insert(ConsentStateRow), inserts)
        if updates:
            self.session.execute(update(ConsentStateRow), updates)

    def save_permission_state(self, tenant: str, subject: str, device: str, permission: str,
                              st: PermissionState) -> None:
        row = self.session.get(PermissionStateRow, (tenant, subject, device, permission))
        if row is None:
            self.session.add(PermissionStateRow(
                tenant_id=tenant, subject_id=subject, device_id=device, permission=permission,
                status=st.status.value, changed_at=st.changed_at, last_denied_at=st.last_denied_at,
                last_event_id=st.last_event_id))
        else:
            row.status = st.status.value
            row.changed_at = st.changed_at
            row.last_denied_at = st.last_denied_at
            row.last_event_id = st.last_event_id

    def clear_projections(self, tenant: str) -> None:
        self.session.execute(delete(ConsentStateRow).where(ConsentStateRow.tenant_id == tenant))
        self.session.execute(delete(PermissionStateRow).where(PermissionStateRow.tenant_id == tenant))

    def projection_rows(self, tenant: str) -> list[tuple[Any, ...]]:
        """The whole projection of a tenant, sorted, for comparisons (rebuild == incremental)."""
        c = self.session.execute(select(
            ConsentStateRow.subject_id, ConsentStateRow.scope, ConsentStateRow.status, ConsentStateRow.kind,
            ConsentStateRow.policy_label, ConsentStateRow.last_event_id).where(
            ConsentStateRow.tenant_id == tenant)).all()
        p = self.session.execute(select(
            PermissionStateRow.subject_id, PermissionStateRow.device_id, PermissionStateRow.permission,
            PermissionStateRow.status, PermissionStateRow.last_event_id).where(
            PermissionStateRow.tenant_id == tenant)).all()
        return sorted(("c", *t) for t in c) + sorted(("p", *t) for t in p)

    def subjects_with_events(self, tenant: str) -> list[str]:
        s1 = select(ConsentEventRow.subject_id).where(ConsentEventRow.tenant_id == tenant)
        s2 = select(PermissionEventRow.subject_id).where(PermissionEventRow.tenant_id == tenant)
        return sorted(set(self.session.scalars(s1)) | set(self.session.scalars(s2)))

    def birth_dates(self, tenant: str) -> dict[str, date | None]:
        return {r[0]: r[1] for r in self.session.execute(select(Subject.subject_id, Subject.birth_date).where(
            Subject.tenant_id == tenant))}

    # processing records
    def add_processing_records(self, rows: Iterable[dict[str, Any]]) -> None:
        batch = list(rows)
        if batch:
            self.session.execute(insert(ProcessingRecord), batch)

    def processing_records(self, tenant: str, subject: str) -> list[ProcessingRecord]:
        stmt = select(ProcessingRecord).where(ProcessingRecord.tenant_id == tenant,
                                              ProcessingRecord.subject_id == subject).order_by(ProcessingRecord.id)
        return list(self.session.scalars(stmt))
