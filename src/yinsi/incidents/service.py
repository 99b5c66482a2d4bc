"""Incident use cases (个人信息安全事件处置): open, assess, affected, notify, report, close, and the clock.

Every use case takes the acting member of staff's tenant and id, checks the role rules against the account
as it is now (``manage_incident``: security officer, privacy officer; refusals audited) and writes one audit
entry per step. Time is an argument (``now``); :meth:`IncidentService.check_overdue` is the function the
scheduler calls: an incident past its regulator-report deadline raises an alert in the existing alerts list
(``yinsi alerts list``; rule ``incident_report_overdue``).

The people affected come from the processing records (the gate's decisions that allowed processing of the
incident's PI items within its time window) and, when a data map is given, from the rows of the app's SQL
tables that hold those items (every subject with a non-empty value). Notices go through the declaration's
incident channels: e-mail and SMS through the outbox to the address kept encrypted in ``subject_identifiers``;
a minor's notice goes to the guardian (identifiers stored under the subject id ``guardian:<subject>``);
other channels (phone, letter, push …) are listed as manual tasks. A public announcement needs a recorded
reason (I2).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yinsi.audit import AuditAction
from yinsi.declarations import parse_declaration
from yinsi.domain.datamap import DataMap, StoreKind
from yinsi.domain.incidents import (
    SEVERITY_ZH,
    Severity,
    clean_record,
    is_minor,
    missing_fields,
    notice_text,
    parse_severity,
    report_clock_zh,
    report_due,
)
from yinsi.domain.notices import BEIJING, OUTBOX_CHANNELS, POSTED_CHANNELS
from yinsi.domain.taxonomy import taxonomy
from yinsi.services.outbox_service import OutboxService
from yinsi.services.subjects import pseudonymised, resolve, stored_id
from yinsi.staff.errors import AccessDenied, InvalidInput, NotFound, StaffError
from yinsi.staff.roles import StaffAction, SubjectContext, authorize
from yinsi.staff.service import STAFF_ID_RE, load_staff
from yinsi.storage.consent_tables import SUBJECT_FIELD, ProcessingRecord
from yinsi.storage.ledger import LedgerRepository
from yinsi.storage.notice_tables import IncidentNotice, IncidentRow, IncidentSubject
from yinsi.storage.repository import PolicyVersionRepository
from yinsi.storage.staff_tables import ActivityAlertRow
from yinsi.storage.tables import Tenant

__all__ = ["OVERDUE_RULE", "IncidentError", "IncidentService", "IncidentView"]

OVERDUE_RULE = "incident_report_overdue"
STATUS_ZH = {"open": "已登记", "assessed": "已评估", "notified": "已通知", "reported": "已报告", "closed": "已关闭"}


def utcnow() -> datetime:
    return datetime.now(UTC)


class IncidentError(StaffError):
    """An incident problem a person can act on (Chinese)."""


def _t(v: datetime | None) -> str | None:
    return None if v is None else v.astimezone(BEIJING).isoformat(timespec="minutes")


@dataclass(frozen=True)
class IncidentView:
    id: str
    tenant: str
    title: str
    status: str
    status_zh: str
    severity: str | None
    severity_zh: str | None
    critical_infrastructure: bool
    discovered_at: str | None
    report_due_at: str | None
    report_clock: str | None
    reported_at: str | None
    overdue: bool
    record: dict[str, str]
    missing: list[str]
    items: list[str]
    window: list[str | None]
    affected: int | None
    announcement_reason: str | None
    notices: dict[str, int]
    closed_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class IncidentService(OutboxService):
    """Incident handling on one database (see the module docstring)."""

    # --- authorisation and loading --------------------------------------------------------------------
    def _authorize(self, tenant: str, staff_id: str, step: str) -> None:
        with self.sessions() as s:
            auth = authorize(load_staff(s, tenant, staff_id), StaffAction.MANAGE_INCIDENT, SubjectContext(tenant))
            known = s.get(Tenant, tenant) is not None
        if not auth:
            if known:
                actor = staff_id if STAFF_ID_RE.match(staff_id or "") else "unknown"
                with self.sessions() as s, s.begin():
                    self.audit.record_in(s, tenant, actor, AuditAction.OTHER, details={
                        "outcome": "denied", "rule": auth.rule, "attempted": auth.action.value, "step": step,
                        "why": auth.reason_zh})
            raise AccessDenied(auth)

    @staticmethod
    def _get(s: Session, tenant: str, incident_id: str) -> IncidentRow:
        row = s.get(IncidentRow, incident_id)
        if row is None or row.tenant_id != tenant:
            raise NotFound(f"没有安全事件 {incident_id}")
        return row

    def _view(self, s: Session, row: IncidentRow, now: datetime) -> IncidentView:
        record = json.loads(row.record)
        counts: dict[str, int] = {}
        for status in s.scalars(select(IncidentNotice.status).where(
                IncidentNotice.tenant_id == row.tenant_id, IncidentNotice.incident_id == row.id)):
            counts[status] = counts.get(status, 0) + 1
        sev = Severity(row.severity) if row.severity else None
        overdue = bool(row.report_due_at and row.reported_at is None and now > row.report_due_at)
        return IncidentView(
            row.id, row.tenant_id, row.title, row.status, STATUS_ZH.get(row.status, row.status),
            row.severity, SEVERITY_ZH[sev] if sev else None, row.critical_infrastructure, _t(row.discovered_at),
            _t(row.report_due_at), report_clock_zh(sev, row.critical_infrastructure) if sev else None,
            _t(row.reported_at), overdue, record, missing_fields(record), json.loads(row.items or "[]"),
            [_t(row.window_start), _t(row.window_end)], row.affected_count, row.announcement_reason, counts,
            _t(row.closed_at))

    def _record_step(self, s: Session, row: IncidentRow, actor: str, step: str, **details: Any) -> None:
        self.audit.record_in(s, row.tenant_id, actor, AuditAction.OTHER, details={
            "step": f"incident_{step}", "incident": row.id, **details})

    # --- use cases --------------------------------------------------------------------------------------
    def open(self, tenant: str, staff_id: str, title: str, *, discovered_at: datetime | None = None,
             record: Mapping[str, Any] | None = None, now: datetime | None = None) -> IncidentView:
        """Register an incident with what is known of its PIPL 57 record."""
        self._authorize(tenant, staff_id, "open")
        at = now or self.clock()
        name = (title or "").strip()
        if not name or len(name) > 200:
            raise InvalidInput("事件标题不能为空，最多 200 个字符")
        found = discovered_at or at
        if found.utcoffset() is None:
            raise InvalidInput("发现时间须带时区")
        if found > at:
            raise InvalidInput("发现时间不能晚于现在")
        fields = self._clean(record or {})
        incident_id = f"INC-{at.astimezone(BEIJING):%Y%m%d}-{secrets.token_hex(3).upper()}"
        with self.sessions() as s, s.begin():
            if s.get(Tenant, tenant) is None:
                raise NotFound(f"没有租户 {tenant}")
            row = IncidentRow(id=incident_id, tenant_id=tenant, title=name, status="open",
                              record=json.dumps(fields, ensure_ascii=False), critical_infrastructure=False,
                              discovered_at=found, opened_at=at, opened_by=staff_id)
            s.add(row)
            s.flush()
            self._record_step(s, row, staff_id, "open", discovered_at=found.isoformat(), fields=sorted(fields))
            return self._view(s, row, at)

    @staticmethod
    def _clean(values: Mapping[str, Any]) -> dict[str, str]:
        try:
            return clean_record(dict(values))
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None

    def assess(self, tenant: str, staff_id: str, incident_id: str, *, severity: str | None = None,
               critical_infrastructure: bool | None = None, record: Mapping[str, Any] | None = None,
               now: datetime | None = None) -> IncidentView:
        """Set the severity (and with it the report clock, I3) and complete the record."""
        self._authorize(tenant, staff_id, "assess")
        at = now or self.clock()
        try:
            sev = parse_severity(severity) if severity else None
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        fields = self._clean(record or {})
        with self.sessions() as s, s.begin():
            row = self._get(s, tenant, incident_id)
            if row.status == "closed":
                raise IncidentError(f"事件 {incident_id} 已关闭")
            merged = {**json.loads(row.record), **fields}
            row.record = json.dumps(merged, ensure_ascii=False)
            if critical_infrastructure is not None:
                row.critical_infrastructure = critical_infrastructure
            if sev is not None:
                row.severity = sev.value
            if row.severity:
                row.report_due_at = report_due(row.discovered_at, Severity(row.severity), row.critical_infrastructure)
            if row.status == "open" and row.severity:
                row.status = "assessed"
            self._record_step(s, row, staff_id, "assess", severity=row.severity,
                              critical_infrastructure=row.critical_infrastructure,
                              report_due_at=row.report_due_at.isoformat() if row.report_due_at else None,
                              fields=sorted(fields))
            return self._view(s, row, at)

    def affected(self, tenant: str, staff_id: str, incident_id: str, items: Iterable[str], start: datetime,
                 end: datetime, *, datamap: DataMap | None = None, store_urls: Mapping[str, str] | None = None,
                 now: datetime | None = None) -> IncidentView:
        """Compute (again) the people affected: processing records of ``items`` in ``[start, end]`` and,
        with a data map, the app's rows holding those items."""
        self._authorize(tenant, staff_id, "affected")
        at = now or self.clock()
        chosen = sorted(set(items))
        tax = taxonomy()
        unknown = [i for i in chosen if i not in tax.items]
        if not chosen or unknown:
            raise InvalidInput(f"请指定个人信息项（未知：{'、'.join(unknown) or '未指定'}）")
        if start.utcoffset() is None or end.utcoffset() is None or start > end:
            raise InvalidInput("时间范围须带时区，且开始不晚于结束")
        found: dict[str, tuple[str, set[str]]] = {}
        with self.sessions() as s:
            self._get(s, tenant, incident_id)
            rows = s.execute(select(ProcessingRecord.subject_id, ProcessingRecord.items).where(
                ProcessingRecord.tenant_id == tenant, ProcessingRecord.allowed.is_(True),
                ProcessingRecord.decided_at >= start, ProcessingRecord.decided_at <= end))
            wanted = set(chosen)
            for subject, raw in rows:
                hit = wanted & set(json.loads(raw or "[]"))
                if hit:
                    src, have = found.setdefault(subject, ("records", set()))
                    have |= hit
        directory: dict[str, str] = {}  # pseudonym → encrypted app id, for people found in the app's rows
        if datamap is not None:
            cipher = self.audit.ring.cipher(tenant)
            for app_id, hit in _from_datamap(datamap, chosen, store_urls or {}).items():
                subject = stored_id(self.audit.ring, tenant, app_id)
                if pseudonymised():
                    directory[subject] = cipher.encrypt_text(SUBJECT_FIELD, app_id)
                src, have = found.setdefault(subject, ("datamap", set()))
                if src == "records" and not have & hit:
                    found[subject] = ("both", have)
                have |= hit
        with self.sessions() as s, s.begin():
            row = self._get(s, tenant, incident_id)
            ids = sorted(found)
            if directory:  # so that notices and the staff's list can find the app's id of everyone stored
                repo = LedgerRepository(s)
                missing = repo.missing_subjects(tenant, directory)
                repo.add_subjects(tenant, {ref: directory[ref] for ref in missing}, at)
            births = {sid: birth for sid, (_app, birth) in resolve(s, self.audit.ring, tenant, ids).items()}
            for old in s.scalars(select(IncidentSubject).where(IncidentSubject.tenant_id == tenant,
                                                               IncidentSubject.incident_id == incident_id)):
                s.delete(old)
            s.flush()
            today = at.astimezone(BEIJING).date()
            minors = 0
            for sid in ids:
                src, have = found[sid]
                minor = is_minor(births.get(sid), today)
                minors += int(minor)
                s.add(IncidentSubject(incident_id=incident_id, subject_id=sid, tenant_id=tenant, minor=minor,
                                      source=src, items=json.dumps(sorted(have))))
            row.items = json.dumps(chosen)
            row.window_start, row.window_end, row.affected_count = start, end, len(ids)
            self._record_step(s, row, staff_id, "affected", items=chosen, start=start.isoformat(),
                              end=end.isoformat(), people=len(ids), minors=minors,
                              datamap=datamap is not None)
            return self._view(s, row, at)

    def affected_people(self, tenant: str, staff_id: str, incident_id: str) -> list[dict[str, Any]]:
        """The people found (subject ids as the app knows them), whether minors, and the items. The table holds
        pseudonyms; the app's ids are decrypted from the subject directory for the authorised staff member."""
        self._authorize(tenant, staff_id, "affected_list")
        with self.sessions() as s:
            self._get(s, tenant, incident_id)
            rows = list(s.scalars(select(IncidentSubject).where(
                IncidentSubject.tenant_id == tenant, IncidentSubject.incident_id == incident_id)))
            app_ids = resolve(s, self.audit.ring, tenant, [r.subject_id for r in rows])
        out = [{"subject": app_ids[r.subject_id][0], "minor": r.minor, "source": r.source,
                "items": json.loads(r.items)} for r in rows]
        return sorted(out, key=lambda p: str(p["subject"]))

    def notify(self, tenant: str, staff_id: str, incident_id: str, *, announce_reason: str | None = None,
               announce: bool = False, now: datetime | None = None) -> IncidentView:
        """Notify every affected person (a minor's guardian) through the declared incident channels, and
        publish an announcement when asked — only with a recorded reason (I2)."""
        from yinsi.protect.identifiers import reveal_identifier

        self._authorize(tenant, staff_id, "notify")
        at = now or self.clock()
        reason = (announce_reason or "").strip() or None
        if announce and not reason:
            raise InvalidInput("发布公告须记录理由（例如难以逐一告知）（I2，PIPL 57）")
        with self.sessions() as s:
            row = self._get(s, tenant, incident_id)
            record = json.loads(row.record)
            if row.status == "closed":
                raise IncidentError(f"事件 {incident_id} 已关闭")
            if row.affected_count is None:
                raise IncidentError("请先确定受影响的人（yinsi incident affected）")
            latest = PolicyVersionRepository(s).latest(tenant)
            if latest is None:
                raise IncidentError(f"租户 {tenant} 没有已发布的隐私政策：不知道告知渠道")
            decl = parse_declaration(latest.declaration_yaml, f"{tenant}@{latest.label}")
            people = [(r.subject_id, r.minor) for r in s.scalars(select(IncidentSubject).where(
                IncidentSubject.tenant_id == tenant, IncidentSubject.incident_id == incident_id))]
            done: set[tuple[str | None, str]] = {(n.subject_id, n.channel) for n in s.scalars(select(IncidentNotice).where(
                IncidentNotice.tenant_id == tenant, IncidentNotice.incident_id == incident_id))}
            discovered = row.discovered_at
            app_ids = resolve(s, self.audit.ring, tenant, [p[0] for p in people])
        missing = missing_fields(record)
        if missing:
            raise IncidentError(f"事件记录不完整，不能发出通知：缺少{'、'.join(missing)}（I1，PIPL 57）")
        controller = decl.controller.legal_name.value or decl.app.name
        texts = {a: notice_text(decl.app.name, controller, record, discovered, audience=a)
                 for a in ("person", "guardian", "public")}
        channels = [str(c) for c in decl.incident_notice.channels] or ["email"]
        plan: list[tuple[str, str, str, str | None]] = []  # subject, audience, channel, address
        for subject, minor in people:
            audience = "guardian" if minor else "person"
            app_id = app_ids[subject][0]
            holder = f"guardian:{app_id}" if minor else app_id
            for channel in channels:
                if (subject, channel) in done:
                    continue
                kind = OUTBOX_CHANNELS.get(channel)
                address = reveal_identifier(self.audit.ring, tenant, holder, kind) if kind else None
                plan.append((subject, audience, channel, address))
        counts = {"queued": 0, "no_address": 0, "manual": 0, "posted": 0}
        with self.sessions() as s, s.begin():
            # the incident row locked: a second notify at the same time waits, then sees what this one sent
            row = s.scalars(select(IncidentRow).where(IncidentRow.id == incident_id, IncidentRow.tenant_id == tenant)
                            .with_for_update()).one()
            done = {(n.subject_id, n.channel) for n in s.scalars(select(IncidentNotice).where(
                IncidentNotice.tenant_id == tenant, IncidentNotice.incident_id == incident_id))}
            for subject, audience, channel, address in plan:
                if (subject, channel) in done:
                    continue
                status, outbox_id = "manual", None
                note: str | None = "须人工告知（电话、信函等）"
                if channel in OUTBOX_CHANNELS:
                    if address is None:
                        status, note = "no_address", ("未登记监护人的联系方式" if audience == "guardian"
                                                      else "未登记该渠道的联系方式")
                    else:
                        text = texts[audience]
                        outbox_id = self.outbox.enqueue_in(s, tenant, channel, address, text.subject, text.body,
                                                           "incident_notice", f"incident:{incident_id}", now=at)
                        status, note = "queued", None
                elif channel in POSTED_CHANNELS:
                    status, note = "posted", None
                counts[status] += 1
                s.add(IncidentNotice(tenant_id=tenant, incident_id=incident_id, subject_id=subject,
                                     audience=audience, channel=channel, status=status, outbox_id=outbox_id,
                                     created_at=at, note=note))
            if reason and (None, "announcement") not in done:
                row.announcement_reason = reason
                s.add(IncidentNotice(tenant_id=tenant, incident_id=incident_id, subject_id=None, audience="public",
                                     channel="announcement", status="posted", created_at=at,
                                     note=texts["public"].body[:500]))
                counts["posted"] += 1
            row.notified_at = row.notified_at or at
            if row.status in ("open", "assessed"):
                row.status = "notified"
            self._record_step(s, row, staff_id, "notify", announcement=bool(reason), reason=reason,
                              guardians=sum(1 for p in plan if p[1] == "guardian"), **counts)
            return self._view(s, row, at)

    def report(self, tenant: str, staff_id: str, incident_id: str, note: str, *,
               now: datetime | None = None) -> IncidentView:
        """Record the report to the regulator (to whom, reference)."""
        self._authorize(tenant, staff_id, "report")
        at = now or self.clock()
        text = (note or "").strip()
        if not text or len(text) > 500:
            raise InvalidInput("请写明报告情况（报告对象、方式、受理编号），最多 500 个字符")
        with self.sessions() as s, s.begin():
            row = self._get(s, tenant, incident_id)
            if row.status == "closed":
                raise IncidentError(f"事件 {incident_id} 已关闭")
            if row.reported_at is None:
                row.reported_at, row.report_note = at, text
                if row.status != "closed":
                    row.status = "reported"
            late = bool(row.report_due_at and at > row.report_due_at)
            self._record_step(s, row, staff_id, "report", late=late,
                              due=row.report_due_at.isoformat() if row.report_due_at else None)
            return self._view(s, row, at)

    def close_incident(self, tenant: str, staff_id: str, incident_id: str, note: str, *,
                       now: datetime | None = None) -> IncidentView:
        """Close: refused while a report that is due has not been made, or before anyone was notified
        unless the note records why notice was not needed (harm effectively avoided, PIPL 57)."""
        self._authorize(tenant, staff_id, "close")
        at = now or self.clock()
        text = (note or "").strip()
        if not text or len(text) > 500:
            raise InvalidInput("请写明关闭说明（处置结果），最多 500 个字符")
        with self.sessions() as s, s.begin():
            row = self._get(s, tenant, incident_id)
            if row.status == "closed":
                return self._view(s, row, at)
            if row.severity is None:
                raise IncidentError("请先评估事件级别（yinsi incident assess）")
            if row.report_due_at is not None and row.reported_at is None:
                raise IncidentError("较大及以上事件须先向网信部门报告（yinsi incident report），才能关闭（I3）")
            row.status, row.closed_at, row.closed_by, row.close_note = "closed", at, staff_id, text
            self._record_step(s, row, staff_id, "close", notified=row.notified_at is not None)
            return self._view(s, row, at)

    def show(self, tenant: str, staff_id: str, incident_id: str, *, now: datetime | None = None) -> IncidentView:
        self._authorize(tenant, staff_id, "show")
        with self.sessions() as s:
            return self._view(s, self._get(s, tenant, incident_id), now or self.clock())

    def list_incidents(self, tenant: str, staff_id: str, *, now: datetime | None = None) -> list[IncidentView]:
        self._authorize(tenant, staff_id, "list")
        at = now or self.clock()
        with self.sessions() as s:
            return [self._view(s, r, at) for r in s.scalars(select(IncidentRow).where(
                IncidentRow.tenant_id == tenant).order_by(IncidentRow.opened_at.desc()))]

    # --- the clock (the scheduler calls this) -----------------------------------------------------------
    def check_overdue(self, tenant: str, *, now: datetime | None = None) -> list[str]:
        """Raise one alert per incident whose regulator report is overdue; returns their ids."""
        at = now or self.clock()
        raised: list[str] = []
        with self.sessions() as s, s.begin():
            rows = list(s.scalars(select(IncidentRow).where(
                IncidentRow.tenant_id == tenant, IncidentRow.reported_at.is_(None),
                IncidentRow.report_due_at.is_not(None), IncidentRow.report_due_at < at,
                IncidentRow.overdue_alert_id.is_(None), IncidentRow.status != "closed")))
            for row in rows:
                assert row.report_due_at is not None
                alert = ActivityAlertRow(
                    tenant_id=tenant, rule=OVERDUE_RULE, key_kind="incident", key_hash=row.id, count=1, threshold=1,
                    window_seconds=int((row.report_due_at - row.discovered_at).total_seconds()),
                    first_at=row.report_due_at, last_at=at, status="open", created_at=at)
                s.add(alert)
                s.flush()
                row.overdue_alert_id = alert.id
                self.audit.record_in(s, tenant, "system", AuditAction.OTHER, details={
                    "step": "incident_report_overdue", "incident": row.id, "alert": alert.id,
                    "due": row.report_due_at.isoformat()})
                raised.append(row.id)
        return raised


def _store_url(dm: DataMap, store_id: str, store_urls: Mapping[str, str]) -> str | None:
    if store_id in store_urls:
        return store_urls[store_id]
    store = dm.store(store_id)
    conn = getattr(store, "connection", None)
    if conn is None:
        return None
    if conn.env and os.environ.get(conn.env):
        return os.environ[conn.env]
    return str(conn.url) if conn.url else None


def _from_datamap(dm: DataMap, items: list[str], store_urls: Mapping[str, str]) -> dict[str, set[str]]:
    """Subjects with a non-empty value of one of ``items`` in a mapped SQL table reached by its key."""
    import sqlalchemy as sa

    from yinsi.stores.sql import _engine as store_engine  # the connectors' engine cache

    wanted = set(items)
    out: dict[str, set[str]] = {}
    for loc in dm.locations():
        if loc.store_kind is not StoreKind.SQL or loc.item not in wanted or not loc.key_column:
            continue
        if loc.table is None or loc.column is None:
            continue
        url = _store_url(dm, loc.store, store_urls)
        if url is None:
            raise IncidentError(f"数据地图中的存储 {loc.store} 没有地址：请用 --store {loc.store}=URL 指定")
        table = sa.table(loc.table, sa.column(loc.key_column), sa.column(loc.column))
        stmt = sa.select(table.c[loc.key_column]).where(table.c[loc.column].is_not(None)).distinct()
        with store_engine(url).connect() as conn:
            for (key,) in conn.execute(stmt):
                out.setdefault(str(key), set()).add(loc.item)
    return out
