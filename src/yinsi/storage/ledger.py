"""Repository of the consent and permission ledger: events, projections, subjects, processing records.

Every method takes the tenant and filters by it. Events are only ever inserted; projections are upserted
from the same events, in the same transaction, and can be rebuilt from scratch.

Subjects are pseudonymous at this level: every ``subject`` a function here takes or returns is the tenant's
pseudonym of the app's subject id (``SubjectDirectory.ref``), events are written under ``refs[subject]``,
and birth dates come and go as encrypted tokens, decoded by the caller's ``birth`` function. The app's ids
are turned into pseudonyms, and back through ``subjects.subject_encrypted``, by the services.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Connection,
    Executable,
    String,
    Table,
    any_,
    bindparam,
    column,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session

from yinsi.domain.consent import (
    ConsentEvent,
    EventType,
    PermissionEvent,
    PermissionEventType,
    PermissionState,
    RestrictionEvent,
    RestrictionEventType,
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
from yinsi.storage.consent_tables import (
    RestrictionEvent as RestrictionEventRow,
)

#: Ids looked up per ``IN (...)`` (well under every backend's limit on bound parameters).
_IN_CHUNK = 500
#: The tables, for Core statements (executemany without the ORM's per-row bookkeeping).
_EVENTS = cast(Table, ConsentEventRow.__table__)
_CONSENT_STATE = cast(Table, ConsentStateRow.__table__)
_PROCESSING = cast(Table, ProcessingRecord.__table__)
_SUBJECTS = cast(Table, Subject.__table__)
_PERMISSION_STATE = cast(Table, PermissionStateRow.__table__)
_PERMISSION_EVENTS = cast(Table, PermissionEventRow.__table__)
_RESTRICTION_EVENTS = cast(Table, RestrictionEventRow.__table__)

_STATE_KEY = ("tenant_id", "subject_id", "scope")
_STATE_VALUES = ("status", "kind", "policy_label", "event_time", "last_event_id")
_STATE_UPSERTS: dict[str, Executable | None] = {}


def _state_upsert(dialect: str) -> Executable | None:
    """INSERT ... ON CONFLICT (key) DO UPDATE for the consent-state projection, per dialect (None: no upsert)."""
    if dialect not in _STATE_UPSERTS:
        stmt: Executable | None = None
        if dialect in ("postgresql", "sqlite"):
            ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_CONSENT_STATE)
            stmt = ins.on_conflict_do_update(index_elements=[_CONSENT_STATE.c[k] for k in _STATE_KEY],
                                             set_={k: ins.excluded[k] for k in _STATE_VALUES})
        elif dialect in ("mysql", "mariadb"):
            my = mysql.insert(_CONSENT_STATE)
            stmt = my.on_duplicate_key_update({k: my.inserted[k] for k in _STATE_VALUES})
        _STATE_UPSERTS[dialect] = stmt
    return _STATE_UPSERTS[dialect]


#: Decodes a ``subjects.birth_date_encrypted`` token.
BirthDecoder = Callable[[str], date]

# The projection of one subject (``load_state``), built once.
_SUBJECT_ROW = select(Subject.birth_date_encrypted, Subject.restrictions).where(
    Subject.tenant_id == bindparam("tenant"), Subject.subject_id == bindparam("subject"))
_CONSENT_STATES = select(
    ConsentStateRow.scope, ConsentStateRow.status, ConsentStateRow.kind, ConsentStateRow.policy_label,
    ConsentStateRow.event_time, ConsentStateRow.last_event_id,
).where(ConsentStateRow.tenant_id == bindparam("tenant"), ConsentStateRow.subject_id == bindparam("subject"))
_PERMISSION_STATES = select(
    PermissionStateRow.device_id, PermissionStateRow.permission, PermissionStateRow.status,
    PermissionStateRow.changed_at, PermissionStateRow.last_denied_at, PermissionStateRow.last_event_id,
).where(PermissionStateRow.tenant_id == bindparam("tenant"), PermissionStateRow.subject_id == bindparam("subject"))


# --- bulk reads of the gate's cache (Core, on a Connection: no ORM entities, no Session) ----------------------
#: The append-only event tables whose ids are the gate's "what changed since" cursors, in this order.
CHANGE_TABLES: tuple[Table, ...] = (_EVENTS, _PERMISSION_EVENTS, _RESTRICTION_EVENTS)
_SUBJECTS_IN: BindParameter[Any] = bindparam("subjects", expanding=True)
_BULK_SUBJECT_ROWS = select(_SUBJECTS.c.subject_id, _SUBJECTS.c.birth_date_encrypted, _SUBJECTS.c.restrictions).where(
    _SUBJECTS.c.tenant_id == bindparam("tenant"), _SUBJECTS.c.subject_id.in_(_SUBJECTS_IN))
_BULK_BIRTH_DATES = select(_SUBJECTS.c.subject_id, _SUBJECTS.c.birth_date_encrypted).where(
    _SUBJECTS.c.tenant_id == bindparam("tenant"), _SUBJECTS.c.subject_id.in_(_SUBJECTS_IN))
_BULK_CONSENT_STATES = select(
    _CONSENT_STATE.c.subject_id, _CONSENT_STATE.c.scope, _CONSENT_STATE.c.status, _CONSENT_STATE.c.kind,
    _CONSENT_STATE.c.policy_label, _CONSENT_STATE.c.event_time, _CONSENT_STATE.c.last_event_id,
).where(_CONSENT_STATE.c.tenant_id == bindparam("tenant"), _CONSENT_STATE.c.subject_id.in_(_SUBJECTS_IN))
_BULK_PERMISSION_STATES = select(
    _PERMISSION_STATE.c.subject_id, _PERMISSION_STATE.c.device_id, _PERMISSION_STATE.c.permission,
    _PERMISSION_STATE.c.status, _PERMISSION_STATE.c.changed_at, _PERMISSION_STATE.c.last_denied_at,
    _PERMISSION_STATE.c.last_event_id,
).where(_PERMISSION_STATE.c.tenant_id == bindparam("tenant"), _PERMISSION_STATE.c.subject_id.in_(_SUBJECTS_IN))
#: Subjects of a tenant with an event after the cursor, and the highest such id (one statement per table;
#: the primary key's range ``id > cursor`` is the selective part).
_CHANGED = tuple(
    select(t.c.subject_id, func.max(t.c.id)).where(t.c.tenant_id == bindparam("tenant"),
                                                    t.c.id > bindparam("cursor")).group_by(t.c.subject_id)
    for t in CHANGE_TABLES)
_MAX_IDS = tuple(select(func.max(t.c.id)) for t in CHANGE_TABLES)


def _chunks(values: Sequence[str], size: int = _IN_CHUNK) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start:start + size])


def load_states(conn: Connection, tenant: str, subjects: Sequence[str], birth: BirthDecoder
                ) -> dict[str, SubjectState]:
    """The projected states of many subjects (pseudonyms) of one tenant: three Core selects per ``IN`` chunk
    of 500.

    Every subject asked for is in the result (a subject without any row has an empty state)."""
    states = {subject: SubjectState() for subject in subjects}
    for chunk in _chunks(list(states)):
        params = {"tenant": tenant, "subjects": chunk}
        for subject, birth_token, restrictions in conn.execute(_BULK_SUBJECT_ROWS, params):
            st = states[subject]
            st.birth_date = birth(birth_token) if birth_token else None
            if restrictions:
                st.restrictions = restrictions_from_text(restrictions)
        for subject, scope, status, kind, label, event_time, event_id in conn.execute(_BULK_CONSENT_STATES, params):
            states[subject].consents[scope] = ScopeState(Status(status), ConsentKind(kind), label, event_time,
                                                         event_id)
        for subject, device, permission, status, changed_at, denied_at, event_id in conn.execute(
                _BULK_PERMISSION_STATES, params):
            states[subject].permissions[(device, permission)] = PermissionState(
                PermissionEventType(status), changed_at, denied_at, event_id)
    return states


#: The same as ``_BULK_BIRTH_DATES`` with the subject ids as one parameter: a JSON array on SQLite
#: (``json_each``), an array on PostgreSQL (``= ANY``); no statement with thousands of placeholders to render.
_BIRTH_DATES_JSON = select(_SUBJECTS.c.subject_id, _SUBJECTS.c.birth_date_encrypted).where(
    _SUBJECTS.c.tenant_id == bindparam("tenant"),
    _SUBJECTS.c.subject_id.in_(select(column("value", String)).select_from(
        func.json_each(bindparam("subjects", type_=String)).table_valued("value"))))
_BIRTH_DATES_ARRAY = select(_SUBJECTS.c.subject_id, _SUBJECTS.c.birth_date_encrypted).where(
    _SUBJECTS.c.tenant_id == bindparam("tenant"),
    _SUBJECTS.c.subject_id == any_(bindparam("subjects", type_=postgresql.ARRAY(String))))
_BIG_CHUNK = 10_000


def birth_dates_of(conn: Connection, tenant: str, subjects: Sequence[str], birth: BirthDecoder
                   ) -> dict[str, date | None]:
    """The registered birth date of each subject (pseudonym) that has a ``subjects`` row: one select per
    10,000 subjects on SQLite and PostgreSQL, per 500 elsewhere."""
    found: dict[str, date | None] = {}
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        stmt = _BIRTH_DATES_JSON if dialect == "sqlite" else _BIRTH_DATES_ARRAY
        for chunk in _chunks(subjects, _BIG_CHUNK):
            param: Any = json.dumps(chunk) if dialect == "sqlite" else chunk
            for subject, token in conn.execute(stmt, {"tenant": tenant, "subjects": param}):
                found[subject] = birth(token) if token else None
        return found
    for chunk in _chunks(subjects):
        for subject, token in conn.execute(_BULK_BIRTH_DATES, {"tenant": tenant, "subjects": chunk}):
            found[subject] = birth(token) if token else None
    return found


def max_event_ids(conn: Connection) -> tuple[int, ...]:
    """The highest id of each change table (``CHANGE_TABLES``), 0 when empty: where a gate starts watching.

    Ids are global, not per tenant; no row is read, only the primary key's maximum."""
    return tuple(int(conn.execute(stmt).scalar() or 0) for stmt in _MAX_IDS)


def changed_subjects(conn: Connection, tenant: str, cursors: Sequence[int]) -> tuple[set[str], tuple[int, ...]]:
    """Subjects of ``tenant`` with a consent, permission or restriction event whose id is above the cursor of
    its table, and the new cursors (the highest ids seen; unchanged when nothing is new)."""
    changed: set[str] = set()
    new: list[int] = []
    for stmt, cursor in zip(_CHANGED, cursors, strict=True):
        top = cursor
        for subject, max_id in conn.execute(stmt, {"tenant": tenant, "cursor": cursor}):
            changed.add(subject)
            top = max(top, int(max_id))
        new.append(top)
    return changed, tuple(new)


#: Columns of a processing record in the order of the tuples ``write_processing_records`` takes.
RECORD_COLUMNS = ("tenant_id", "subject_id", "action", "feature", "purpose", "items", "recipient", "destination",
                  "allowed", "basis", "policy_label", "actor", "decided_at", "reasons")
_DECIDED_AT = RECORD_COLUMNS.index("decided_at")
_ALLOWED = RECORD_COLUMNS.index("allowed")
#: SQLite: rows per multi-row INSERT (14 parameters each, well under its limit of 32,766)
_SQLITE_ROWS_PER_INSERT = 500
_SQLITE_TIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"  # SQLAlchemy's storage format of DATETIME on SQLite


def write_processing_records(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert processing records (tuples in ``RECORD_COLUMNS`` order; ``decided_at`` timezone-aware) with the
    driver directly: no per-row parameter processing by SQLAlchemy. On SQLite a few multi-row INSERTs (one
    statement step each: the writer thread gives up the interpreter lock a few times per batch instead of once
    per row); elsewhere one executemany (psycopg pipelines it, PyMySQL rewrites it into multi-row INSERTs)."""
    if not rows:
        return
    dialect = conn.dialect.name
    table = _PROCESSING.name
    columns = ", ".join(RECORD_COLUMNS)
    if dialect == "sqlite":
        converted = []
        for r in rows:
            t = r[_DECIDED_AT].astimezone(UTC)
            values = list(r)
            values[_DECIDED_AT] = _SQLITE_TIME % (t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond)
            values[_ALLOWED] = 1 if r[_ALLOWED] else 0
            converted.append(values)
        one = "(" + ", ".join("?" * len(RECORD_COLUMNS)) + ")"
        for start in range(0, len(converted), _SQLITE_ROWS_PER_INSERT):
            chunk = converted[start:start + _SQLITE_ROWS_PER_INSERT]
            sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([one] * len(chunk))
            conn.exec_driver_sql(sql, tuple(v for values in chunk for v in values))
        return
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({columns}) VALUES (" + ", ".join([marker] * len(RECORD_COLUMNS)) + ")"
    if dialect == "postgresql":
        params = [tuple(r) for r in rows]
    else:  # no time zones (MariaDB/MySQL DATETIME(6)): naive UTC, as UTCDateTime stores it
        params = []
        for r in rows:
            values = list(r)
            values[_DECIDED_AT] = r[_DECIDED_AT].astimezone(UTC).replace(tzinfo=None)
            params.append(tuple(values))
    conn.exec_driver_sql(sql, params)


def restrictions_to_text(restrictions: Mapping[str, datetime]) -> str | None:
    """The ``subjects.restrictions`` projection text (``None`` when nothing is restricted)."""
    if not restrictions:
        return None
    return json.dumps({k: v.isoformat() for k, v in sorted(restrictions.items())}, separators=(",", ":"))


def restrictions_from_text(text: str | None) -> dict[str, datetime]:
    return {k: datetime.fromisoformat(v) for k, v in json.loads(text).items()} if text else {}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _JsonTexts:
    """The JSON text of each distinct list or mapping of strings, computed once per batch: the events of one
    scope carry the same declared purposes, items, recipients and disclosures."""

    def __init__(self) -> None:
        self._lists: dict[tuple[str, ...], str] = {}
        self._maps: dict[tuple[tuple[str, str], ...], str] = {}

    def list_(self, value: Iterable[str]) -> str:
        key = tuple(value)
        text = self._lists.get(key)
        if text is None:
            text = _dumps(list(key))
            if all(type(v) is str for v in key):  # equal keys must mean equal text (1 == True, "1" != 1)
                self._lists[key] = text
        return text

    def mapping(self, value: Mapping[str, str]) -> str:
        key = tuple(value.items())
        text = self._maps.get(key)
        if text is None:
            text = _dumps(dict(key))
            if all(type(k) is str and type(v) is str for k, v in key):
                self._maps[key] = text
        return text


def consent_row(ev: ConsentEvent, ref: str, recorded_at: datetime, texts: _JsonTexts | None = None
                ) -> dict[str, Any]:
    """The row of an event whose subject's pseudonym is ``ref``."""
    j = texts or _JsonTexts()
    return {
        "record_id": ev.record_id, "tenant_id": ev.tenant, "subject_id": ref, "scope": ev.scope,
        "kind": ev.kind.value, "event": ev.event.value, "policy_label": ev.policy_label,
        "shown_hash": ev.shown_hash, "purposes": j.list_(ev.purposes), "items": j.list_(ev.items),
        "recipients": j.list_(ev.recipients), "disclosures": j.mapping(ev.disclosures),
        "controller": ev.controller, "storage_location": ev.storage_location, "retention": ev.retention,
        "jurisdiction": ev.jurisdiction, "withdrawal_method": ev.withdrawal_method, "channel": ev.channel,
        "collection_method": ev.collection_method, "language": ev.language, "actor": ev.actor,
        "event_time": ev.event_time, "recorded_at": recorded_at,
    }


def consent_from_row(r: ConsentEventRow) -> ConsentEvent:
    """The event of a row; its ``subject`` is the pseudonym."""
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

    # subjects (the directory: pseudonym → the app's id and birth date, encrypted)
    def subject(self, tenant: str, subject: str) -> Subject | None:
        return self.session.get(Subject, (tenant, subject))

    def put_subject(self, tenant: str, subject: str, subject_token: str, birth_token: str | None,
                    now: datetime) -> None:
        """Create the directory row of a pseudonym (``subject_token``: the app's id encrypted), or set its
        birth date (``birth_token``: encrypted; ``None`` leaves it)."""
        row = self.subject(tenant, subject)
        if row is None:
            self.session.add(Subject(tenant_id=tenant, subject_id=subject, subject_encrypted=subject_token,
                                     birth_date_encrypted=birth_token, created_at=now))
        else:
            if row.subject_encrypted is None:
                row.subject_encrypted = subject_token
            if birth_token is not None:
                row.birth_date_encrypted = birth_token

    def missing_subjects(self, tenant: str, subjects: Iterable[str]) -> set[str]:
        """The pseudonyms among ``subjects`` without a directory row."""
        wanted = list(dict.fromkeys(subjects))
        found: set[str] = set()
        for chunk in _chunks(wanted):
            found.update(self.session.scalars(select(Subject.subject_id).where(
                Subject.tenant_id == tenant, Subject.subject_id.in_(chunk))))
        return set(wanted) - found

    def add_subjects(self, tenant: str, tokens: Mapping[str, str], now: datetime) -> None:
        """Insert directory rows (pseudonym → encrypted id) found missing; a row another transaction (the
        record writer, another process) inserted meanwhile is left as it is."""
        if not tokens:
            return
        dialect = self.session.get_bind().dialect.name
        stmt: Any = insert(_SUBJECTS)
        if dialect in ("postgresql", "sqlite"):
            stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_SUBJECTS).on_conflict_do_nothing()
        elif dialect in ("mysql", "mariadb"):
            stmt = insert(_SUBJECTS).prefix_with("IGNORE")
        self.session.execute(stmt, [
            {"tenant_id": tenant, "subject_id": ref, "subject_encrypted": token, "birth_date_encrypted": None,
             "created_at": now, "restrictions": None} for ref, token in tokens.items()])

    def subject_tokens(self, tenant: str, subjects: Iterable[str]) -> dict[str, str]:
        """The encrypted app ids of pseudonyms (those with a directory row)."""
        out: dict[str, str] = {}
        for chunk in _chunks(list(dict.fromkeys(subjects))):
            for ref, token in self.session.execute(select(Subject.subject_id, Subject.subject_encrypted).where(
                    Subject.tenant_id == tenant, Subject.subject_id.in_(chunk))):
                if token:
                    out[ref] = token
        return out

    # events
    def add_consent_events(self, events: Sequence[ConsentEvent], recorded_at: datetime,
                           refs: Mapping[tuple[str, str], str]) -> list[int]:
        """Insert events in order, each under ``refs[(tenant, subject)]``; returns their ids (same order)."""
        if not events:
            return []
        texts = _JsonTexts()
        rows = [consent_row(e, refs[(e.tenant, e.subject)], recorded_at, texts) for e in events]
        if len(rows) == 1:
            return [self.session.execute(insert(ConsentEventRow).returning(ConsentEventRow.id), rows[0]).scalar_one()]
        # One Core executemany, then the ids by the unique record id. (An ordered INSERT ... RETURNING costs
        # one statement per row on SQLite and one huge multi-VALUES statement on PostgreSQL: 4-5x slower.)
        # Rows are inserted in order, so the ids ascend in the order of ``events``.
        table = _EVENTS
        self.session.execute(insert(table), rows)
        record_ids = [r["record_id"] for r in rows]
        ids: dict[str, int] = {}
        for start in range(0, len(record_ids), _IN_CHUNK):
            chunk = record_ids[start:start + _IN_CHUNK]
            for record_id, event_id in self.session.execute(
                    select(table.c.record_id, table.c.id).where(table.c.record_id.in_(chunk))):
                ids[record_id] = event_id
        return [ids[r] for r in record_ids]

    def add_permission_event(self, ev: PermissionEvent, ref: str, recorded_at: datetime) -> int:
        row = {"tenant_id": ev.tenant, "subject_id": ref, "device_id": ev.device,
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

    def add_restriction_event(self, ev: RestrictionEvent, ref: str, recorded_at: datetime) -> int:
        row = {"tenant_id": ev.tenant, "subject_id": ref, "scope": ev.scope, "event": ev.event.value,
               "request_ref": ev.request_ref, "actor": ev.actor, "reason": ev.reason, "event_time": ev.event_time,
               "recorded_at": recorded_at}
        return int(self.session.execute(insert(RestrictionEventRow).returning(RestrictionEventRow.id), row)
                   .scalar_one())

    def restriction_events(self, tenant: str, subject: str | None = None) -> list[tuple[int, RestrictionEvent]]:
        stmt = select(RestrictionEventRow).where(RestrictionEventRow.tenant_id == tenant)
        if subject is not None:
            stmt = stmt.where(RestrictionEventRow.subject_id == subject)
        return [(r.id, RestrictionEvent(r.tenant_id, r.subject_id, r.scope, RestrictionEventType(r.event),
                                        r.event_time, r.request_ref, r.actor, r.reason))
                for r in self.session.scalars(stmt.order_by(RestrictionEventRow.id))]

    def save_restrictions(self, tenant: str, subject: str, restrictions: Mapping[str, datetime],
                          now: datetime) -> None:
        """The projection of a subject's restrictions (its ``subjects`` row must exist: every pseudonym
        with an event has one)."""
        self.session.flush()
        self.session.execute(update(Subject).where(Subject.tenant_id == tenant, Subject.subject_id == subject)
                             .values(restrictions=restrictions_to_text(restrictions)))

    # projections
    def load_state(self, tenant: str, subject: str, birth: BirthDecoder) -> SubjectState:
        """The projected state (fast read)."""
        # prepared statements of columns (no ORM objects): this is the first read of every uncached subject
        state = SubjectState()
        params = {"tenant": tenant, "subject": subject}
        subject_row = self.session.execute(_SUBJECT_ROW, params).one_or_none()
        if subject_row is not None:
            state.birth_date = birth(subject_row[0]) if subject_row[0] else None
            if subject_row[1]:
                state.restrictions = restrictions_from_text(subject_row[1])
        for scope, status, kind, label, event_time, event_id in self.session.execute(_CONSENT_STATES, params):
            state.consents[scope] = ScopeState(Status(status), ConsentKind(kind), label, event_time, event_id)
        for device, permission, status, changed_at, denied_at, event_id in self.session.execute(
                _PERMISSION_STATES, params):
            state.permissions[(device, permission)] = PermissionState(
                PermissionEventType(status), changed_at, denied_at, event_id)
        return state

    def save_consent_states(self, tenant: str, subject_states: dict[str, dict[str, ScopeState]]) -> None:
        """Upsert projection rows for the given subjects' scopes.

        SQLite, PostgreSQL and MariaDB/MySQL: one executemany of INSERT ... ON CONFLICT / ON DUPLICATE KEY
        UPDATE, each row found through the primary key. (A SELECT of the existing rows with a long ``IN``
        list is planned, before the table has statistics, as a scan of the tenant's whole projection: batched
        ingest then slows down as the projection grows.) Other databases: one SELECT, then insert/update.
        """
        if not subject_states:
            return
        upsert = _state_upsert(self.session.get_bind().dialect.name)
        if upsert is not None:
            self.session.execute(upsert, [
                {"tenant_id": tenant, "subject_id": subject, "scope": scope, "status": st.status.value,
                 "kind": st.kind.value, "policy_label": st.policy_label, "event_time": st.event_time,
                 "last_event_id": st.last_event_id}
                for subject, scopes in subject_states.items() for scope, st in scopes.items()])
            return
        existing: set[tuple[str, str]] = set()
        subjects = list(subject_states)
        for chunk_start in range(0, len(subjects), _IN_CHUNK):
            chunk = subjects[chunk_start:chunk_start + _IN_CHUNK]
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
            self.session.execute(insert(_CONSENT_STATE), inserts)  # Core executemany
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
        self.session.execute(update(Subject).where(Subject.tenant_id == tenant, Subject.restrictions.is_not(None))
                             .values(restrictions=None))

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
        r = [(subject, scope) for subject, text in self.session.execute(
            select(Subject.subject_id, Subject.restrictions).where(
                Subject.tenant_id == tenant, Subject.restrictions.is_not(None)))
             for scope in restrictions_from_text(text)]
        return sorted(("c", *t) for t in c) + sorted(("p", *t) for t in p) + sorted(("r", *t) for t in r)

    def subjects_with_events(self, tenant: str) -> list[str]:
        s1 = select(ConsentEventRow.subject_id).where(ConsentEventRow.tenant_id == tenant)
        s2 = select(PermissionEventRow.subject_id).where(PermissionEventRow.tenant_id == tenant)
        s3 = select(RestrictionEventRow.subject_id).where(RestrictionEventRow.tenant_id == tenant)
        return sorted(set(self.session.scalars(s1)) | set(self.session.scalars(s2)) | set(self.session.scalars(s3)))

    def birth_dates(self, tenant: str, birth: BirthDecoder) -> dict[str, date | None]:
        return {r[0]: birth(r[1]) if r[1] else None for r in self.session.execute(
            select(Subject.subject_id, Subject.birth_date_encrypted).where(Subject.tenant_id == tenant))}

    # processing records
    def add_processing_records(self, rows: Iterable[dict[str, Any]]) -> None:
        batch = list(rows)
        if batch:
            # Core executemany: the ORM bulk insert groups rows by their non-NULL columns, which for a mix of
            # decisions (feature, purpose, recipient or basis NULL or not) means one statement per few rows.
            self.session.execute(insert(_PROCESSING), batch)

    def processing_records(self, tenant: str, subject: str) -> list[ProcessingRecord]:
        stmt = select(ProcessingRecord).where(ProcessingRecord.tenant_id == tenant,
                                              ProcessingRecord.subject_id == subject).order_by(ProcessingRecord.id)
        return list(self.session.scalars(stmt))
