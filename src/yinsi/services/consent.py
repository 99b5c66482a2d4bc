"""Use cases of the consent ledger and the gate: record consents and permissions, decide, report.

The gate's decisions are fast because each subject's state is cached in process and invalidated on every
new event for that subject; within a cached state, decisions for the same request are memoised. Events
recorded by another process (another app worker, ``yinsi request run``) are seen within ``state_ttl``
seconds (``YINSI_GATE_STATE_TTL``, default 1): that bounds how long a withdrawal or a restriction made
elsewhere can go unnoticed. The cache is revalidated per tenant, in bulk, at most once per ``state_ttl``:
the append-only event tables are asked which of the tenant's subjects have an event after the last cursor
(their ids), only those subjects' states are read again (in bulk, through Core), and a state read again
that has not changed keeps its memoised decisions. Birth dates (``subjects``, updated in place) are
compared in bulk for the subjects decided since the previous revalidation; a subject not decided since
then has its birth date compared on its next decision. A newer published policy version is looked for
every ``policy_ttl`` seconds (``YINSI_GATE_POLICY_TTL``, default 10).

Subjects are pseudonymous in the database (:mod:`yinsi.protect.subjects`): the service takes the app's
subject ids, and the ledger, its projections and the processing records hold the tenant's keyed pseudonym
of each (computed once per subject and process), ``subjects`` the id and the birth date encrypted. The
cache and the warm path work on the app's ids; pseudonyms are computed on the cold path and by the record
writer, off the request path.

Every decision is appended to a processing record. Records are written off the request path by a
background writer thread (``RecordWriter``): see its documentation for the buffer bound, the flush
interval, what happens when the buffer is full and what a crash can lose.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from yinsi.audit import AuditAction, AuditRecord
from yinsi.config import database_url, is_default_database
from yinsi.declarations import parse_declaration
from yinsi.domain.changes import diff_declarations
from yinsi.domain.consent import (
    POLICY,
    ConsentEvent,
    ConsentRejected,
    EventType,
    PermissionEvent,
    PermissionEventType,
    RestrictionEvent,
    RestrictionEventType,
    SubjectState,
    apply_consent,
    apply_permission,
    apply_restriction,
    birth_date_from_id_number,
    check_restriction_scope,
    declared_disclosures,
    disclosures_hash,
    replay,
    required_consent_kind,
    scope_kind,
    validate_event,
)
from yinsi.domain.gate import (
    CompiledPolicy,
    Decision,
    PromptDecision,
    Request,
    beijing_date,
    decide,
    may_ask_permission,
    outdated_scopes,
)
from yinsi.domain.minors import MINOR_MARKERS
from yinsi.domain.policy import Declaration
from yinsi.domain.taxonomy import Action, ConsentKind, taxonomy
from yinsi.protect.keys import KeyRing
from yinsi.protect.subjects import SubjectDirectory
from yinsi.services.audit_trail import AuditTrail, master_key
from yinsi.services.records import RecordWriter
from yinsi.storage.engine import make_engine, make_session_factory
from yinsi.storage.ledger import (
    LedgerRepository,
    birth_dates_of,
    changed_subjects,
    load_states,
    max_event_ids,
    write_processing_records,
)
from yinsi.storage.migrate import ensure_current
from yinsi.storage.repository import PolicyVersionRepository

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class NoPublishedPolicy(LookupError):
    """The tenant has published no policy version yet."""

    def __init__(self, tenant: str) -> None:
        super().__init__(f"租户 {tenant} 尚未发布隐私政策；请先运行：yinsi policy publish 声明文件")


#: Action by value and by member (a StrEnum member hashes and compares as its value).
_ACTIONS: dict[Action | str, Action] = {a.value: a for a in Action}
_ACTION_VALUES: dict[Action, str] = {a: a.value for a in Action}

#: A buffered processing record: tenant, subject, action, purpose, items, recipient, destination, decision,
#: actor, decided_at.
_Record = tuple[str, str, Action, str | None, tuple[str, ...], str | None, str | None, Decision, str | None, datetime]


DEFAULT_STATE_TTL = 1.0
STATE_TTL_ENV = "YINSI_GATE_STATE_TTL"
DEFAULT_POLICY_TTL = 10.0
POLICY_TTL_ENV = "YINSI_GATE_POLICY_TTL"


def _seconds_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        ttl = float(raw)
    except ValueError:
        raise ValueError(f"{name} 应为秒数（例如 1 或 0.5），而不是 {raw!r}") from None
    if not ttl >= 0:
        raise ValueError(f"{name} 不能为负数：{raw!r}")
    return ttl


#: How long (seconds) an event may take between getting its id and being committed and still be seen by
#: the revalidation: each "what changed since" query starts from the cursor of a revalidation at least this
#: long ago, so an event whose id was taken before a newer one but committed after it is not skipped.
CHANGE_GRACE = 10.0


@dataclass(slots=True)
class _Watch:
    """What the gate knows of one tenant's changes: its cursors and when it last looked."""

    checked: float  # the ticker's reading when the tenant was last revalidated
    cursors: deque[tuple[float, tuple[int, ...]]]  # (ticker reading, highest event ids seen then)
    gen: int = 0  # incremented by each revalidation
    current: set[str] = field(default_factory=set)  # subjects whose birth date is known as of ``gen``


@dataclass(slots=True)
class _Cached:
    state: SubjectState
    ref: str  # the subject's pseudonym (its key in the database)
    watch: _Watch
    gen: int  # the tenant's generation at which the birth date was last known current
    memo: dict[tuple[Any, ...], Decision] = field(default_factory=dict)
    used: bool = True  # decided since the last revalidation (its birth date is compared in bulk then)


@dataclass
class GateStats:
    """Counters of the gate's cache (for tests and benchmarks; never PI)."""

    cold_loads: int = 0  # subjects read because they were not cached
    revalidations: int = 0  # bulk "what changed since" rounds (per tenant)
    changed_seen: int = 0  # cached subjects reported changed by the event tables
    reloaded: int = 0  # of those, re-read in bulk (decided since the previous round)
    dropped: int = 0  # of those, dropped from the cache (not decided since the previous round)
    memo_kept: int = 0  # re-read or re-checked states found unchanged: memoised decisions kept
    memo_cleared: int = 0  # re-read or re-checked states that had changed
    birth_date_checks: int = 0  # subjects whose birth date was compared with the database


class ConsentService:
    """The ledger and the gate over one database (default: Yinsi's configured database)."""

    def __init__(self, url: str | None = None, *, clock: Clock = utcnow, cache_size: int = 100_000,
                 record_batch: int = 1000, audit: bool = True, state_ttl: float | None = None,
                 policy_ttl: float | None = None, ticker: Callable[[], float] = time.monotonic,
                 record_buffer: int | None = None, record_interval: float | None = None,
                 record_full_wait: float | None = None) -> None:
        #: seconds a cached subject state is trusted before it is read again (events of other processes)
        self.state_ttl = _seconds_from_env(STATE_TTL_ENV, DEFAULT_STATE_TTL) if state_ttl is None else float(state_ttl)
        #: seconds between checks for a newer published policy version (published by another process)
        self.policy_ttl = (_seconds_from_env(POLICY_TTL_ENV, DEFAULT_POLICY_TTL) if policy_ttl is None
                           else float(policy_ttl))
        self.ticker = ticker
        self.url = url or database_url()
        ensure_current(self.url, auto_upgrade=is_default_database(self.url))
        self.engine = make_engine(self.url)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        #: Consent and permission changes go to the audit log in the same transaction (issue 5).
        self.audit: AuditTrail | None = AuditTrail(self.sessions) if audit else None
        self._ring: KeyRing | None = None
        #: the app's subject ids ↔ their pseudonyms and encrypted forms in the database
        self.subjects = SubjectDirectory(self._key_ring, provision=lambda t: self._key_ring().provision(t))
        #: (tenant, pseudonym) → the app's id, for the subjects in the cache (stale entries are harmless)
        self._ref_subject: dict[tuple[str, str], str] = {}
        self.clock = clock
        self.cache_size = cache_size
        self.record_batch = record_batch
        self._policies: dict[str, CompiledPolicy] = {}
        self._policy_checked: dict[str, float] = {}  # tenant → ticker reading of the last version check
        #: cached states, oldest first (evicted first); changed only under ``_lock``
        self._states: dict[tuple[str, str], _Cached] = {}
        self._watches: dict[str, _Watch] = {}
        #: held while the cache is read from the database or changed (revalidation, cold loads, eviction);
        #: the warm path (a cached, current state and a memoised decision) takes no lock
        self._lock = threading.RLock()
        self.stats = GateStats()
        #: processing records: buffered by the deciding thread, written by a background thread
        self.records = RecordWriter(self._write_records, capacity=record_buffer, batch=record_batch,
                                    interval=record_interval, full_wait=record_full_wait)
        self._records: deque[_Record] = self.records.buffer
        self._record_capacity = self.records.capacity
        self._policy_hashes: dict[tuple[str, str], str] = {}

    def _key_ring(self) -> KeyRing:
        if self.audit is not None:
            return self.audit.ring
        if self._ring is None:
            self._ring = KeyRing(self.sessions, master_key(self.sessions))
        return self._ring

    def _ensure_directory(self, repo: LedgerRepository, refs: Mapping[tuple[str, str], str], now: datetime
                          ) -> list[tuple[str, str]]:
        """Create the missing directory rows of these subjects (inside the caller's transaction); returns
        the (tenant, pseudonym) pairs to mark known once it commits."""
        todo: dict[str, dict[str, str]] = {}
        for (tenant, subject), ref in refs.items():
            if not self.subjects.known(tenant, ref):
                todo.setdefault(tenant, {})[ref] = subject
        done: list[tuple[str, str]] = []
        for tenant, wanted in todo.items():
            missing = repo.missing_subjects(tenant, wanted)
            repo.add_subjects(tenant, {r: self.subjects.encrypt_subject(tenant, wanted[r]) for r in sorted(missing)},
                              now)
            done.extend((tenant, r) for r in wanted)
        return done

    def _mark_known(self, pairs: Iterable[tuple[str, str]]) -> None:
        by_tenant: dict[str, list[str]] = {}
        for tenant, ref in pairs:
            by_tenant.setdefault(tenant, []).append(ref)
        for tenant, refs in by_tenant.items():
            self.subjects.mark_known(tenant, refs)

    # --- lifecycle ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Write every buffered processing record (raises ``RecordWriteError`` if that fails), then release
        the database connections."""
        try:
            self.records.close()
        finally:
            self.engine.dispose()

    def __enter__(self) -> ConsentService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- policies -------------------------------------------------------------------------------------
    def policy(self, tenant: str) -> CompiledPolicy:
        """The tenant's current policy (latest published version), with what older consents lost."""
        p = self._policies.get(tenant)
        if p is not None and self.ticker() - self._policy_checked.get(tenant, 0.0) >= self.policy_ttl:
            with self.sessions() as s:
                label = PolicyVersionRepository(s).latest_label(tenant)
            self._policy_checked[tenant] = self.ticker()
            if label != p.label:  # a newer version was published elsewhere: decide under it from now on
                del self._policies[tenant]
                self._forget_tenant(tenant)
                p = None
        if p is None:
            p = self._load_policy(tenant)
            self._policies[tenant] = p
            self._policy_checked[tenant] = self.ticker()
        return p

    def reload_policies(self) -> None:
        """Forget compiled policies and cached states (after a new version is published)."""
        with self._lock:
            self._policies.clear()
            self._states.clear()
            self._watches.clear()
            self._ref_subject.clear()

    def _forget_tenant(self, tenant: str) -> None:
        with self._lock:
            for key in [k for k in self._states if k[0] == tenant]:
                del self._states[key]
            self._watches.pop(tenant, None)

    def _load_policy(self, tenant: str) -> CompiledPolicy:
        with self.sessions() as s:
            versions = PolicyVersionRepository(s).list_for_tenant(tenant)
            if not versions:
                raise NoPublishedPolicy(tenant)
            texts = [(v.label, v.declaration_yaml) for v in versions]
        decls = [parse_declaration(text, f"{tenant}@{label}") for label, text in texts]
        current = decls[-1]
        outdated = {d.version.label: outdated_scopes(diff_declarations(d, current).reconsent) for d in decls[:-1]}
        return CompiledPolicy(current, outdated)

    def _policy_hash(self, decl: Declaration) -> str:
        """The hash of the policy text shown: the rendered Markdown of this version (computed once)."""
        key = (decl.tenant, decl.version.label)
        h = self._policy_hashes.get(key)
        if h is None:
            from yinsi.declarations import text_hash
            from yinsi.render import render_markdown

            h = self._policy_hashes[key] = text_hash(render_markdown(decl))
        return h

    # --- subjects -------------------------------------------------------------------------------------
    def register_subject(self, tenant: str, subject: str, *, birth_date: date | None = None,
                         id_number: str | None = None) -> date | None:
        """Record what the gate needs of a person; from an ID number only the birth date is kept."""
        if id_number is not None:
            birth_date = birth_date_from_id_number(id_number)
        self.policy(tenant)  # the tenant must exist (a published policy)
        ref = self.subjects.ref(tenant, subject)
        token = self.subjects.encrypt_subject(tenant, subject)
        birth_token = self.subjects.encrypt_birth(tenant, birth_date) if birth_date is not None else None
        with self.sessions() as s:
            LedgerRepository(s).put_subject(tenant, ref, token, birth_token, self.clock())
            s.commit()
        self._mark_known([(tenant, ref)])
        self._forget(tenant, subject)
        return birth_date

    # --- consent events ---------------------------------------------------------------------------------
    def make_event(self, tenant: str, subject: str, scope: str, event: EventType | str = EventType.GIVEN, *,
                   kind: ConsentKind | str | None = None, channel: str = "app",
                   disclosures: Mapping[str, str] | None = None, at: datetime | None = None,
                   actor: str | None = None, collection_method: str = "click",
                   shown_hash: str | None = None) -> ConsentEvent:
        """A validated consent event for the tenant's current policy version (27560 fields filled from the
        declaration; disclosures the declaration states are added to those the dialog showed)."""
        policy = self.policy(tenant)
        decl = policy.decl
        ev_type = EventType(event)
        ck = ConsentKind(kind) if kind is not None else required_consent_kind(scope)
        shown = {**declared_disclosures(decl, scope), **(disclosures or {})}
        purposes, items, recipients = _scope_contents(decl, scope)
        ev = ConsentEvent(
            record_id=str(uuid.uuid4()), tenant=tenant, subject=subject, scope=scope, kind=ck, event=ev_type,
            policy_label=policy.label,
            shown_hash=shown_hash or (disclosures_hash(shown) if scope != POLICY else self._policy_hash(decl)),
            event_time=at or self.clock(), purposes=purposes, items=items, recipients=recipients,
            disclosures=shown, controller=decl.controller.legal_name.value or "",
            storage_location=decl.storage.location, retention=_retention_text(decl),
            withdrawal_method=_withdrawal_text(decl), channel=channel, collection_method=collection_method,
            actor=actor,
        )
        validate_event(decl, ev)
        return ev

    def record_consent(self, tenant: str, subject: str, scope: str, event: EventType | str = EventType.GIVEN,
                       **kwargs: Any) -> ConsentEvent:
        """Validate and append one consent event; the projection and the cache follow."""
        ev = self.make_event(tenant, subject, scope, event, **kwargs)
        self.append_consents([ev])
        return ev

    def append_consents(self, events: Sequence[ConsentEvent]) -> list[int]:
        """Append already validated events in one transaction (batched ingest), updating the projection."""
        if not events:
            return []
        now = self.clock()
        by_tenant: dict[str, list[tuple[int, ConsentEvent]]] = {}
        if self.audit is not None:
            self.audit.prepare((ev.tenant, ev.subject) for ev in events)
        refs = self.subjects.refs((ev.tenant, ev.subject) for ev in events)
        with self.sessions() as s:
            repo = LedgerRepository(s)
            known = self._ensure_directory(repo, refs, now)
            ids = repo.add_consent_events(events, now, refs)
            for event_id, ev in zip(ids, events, strict=True):
                by_tenant.setdefault(ev.tenant, []).append((event_id, ev))
            for tenant, evs in by_tenant.items():
                touched: dict[str, SubjectState] = {}
                for event_id, ev in evs:
                    st = touched.setdefault(refs[(tenant, ev.subject)], SubjectState())
                    apply_consent(st, ev, event_id)
                repo.save_consent_states(tenant, {subj: st.consents for subj, st in touched.items()})
                if self.audit is not None:
                    self.audit.record_many_in(s, tenant, [AuditRecord(
                        ev.actor or f"subject:{ev.channel}", AuditAction.CONSENT_CHANGE,
                        self.audit.pseudonym(tenant, ev.subject), ev.items,
                        None, {"scope": _audit_scope(ev.scope), "event": ev.event.value, "kind": ev.kind.value,
                               "policy": ev.policy_label, "record_id": ev.record_id}) for _, ev in evs])
            s.commit()
        self._mark_known(known)
        for ev in events:
            self._forget(ev.tenant, ev.subject)
        return ids

    # --- permissions ------------------------------------------------------------------------------------
    def record_permission(self, tenant: str, subject: str, device: str, permission: str,
                          event: PermissionEventType | str, *, at: datetime | None = None,
                          feature: str | None = None) -> PermissionEvent:
        """Append a device-permission event (granted, denied, revoked); the permission must be one the
        declaration asks for (P1)."""
        decl = self.policy(tenant).decl
        taxonomy().permission(permission)
        declared = {p.permission: f.id for f in decl.features for p in f.permissions}
        if permission not in declared:
            raise ConsentRejected(f"隐私政策未声明申请{taxonomy().permission(permission).name}权限（P1）")
        if feature is not None and (decl.feature(feature) is None or permission not in {
                p.permission for p in decl.feature(feature).permissions}):  # type: ignore[union-attr]
            raise ConsentRejected(f"功能「{feature}」未声明申请该权限（P1）")
        ev = PermissionEvent(tenant, subject, device, permission, PermissionEventType(event), at or self.clock(),
                             feature)
        if self.audit is not None:
            self.audit.prepare([(tenant, subject)])
        refs = self.subjects.refs([(tenant, subject)])
        ref = refs[(tenant, subject)]
        with self.sessions() as s:
            repo = LedgerRepository(s)
            known = self._ensure_directory(repo, refs, self.clock())
            event_id = repo.add_permission_event(ev, ref, self.clock())
            state = repo.load_state(tenant, ref, self.subjects.birth_decoder(tenant))
            apply_permission(state, ev, event_id)
            repo.save_permission_state(tenant, ref, device, permission, state.permissions[(device, permission)])
            if self.audit is not None:
                self.audit.record_in(s, tenant, "subject:app", AuditAction.PERMISSION_CHANGE, subject=subject,
                                     details={"permission": permission, "event": ev.event.value,
                                              "feature": feature})
            s.commit()
        self._mark_known(known)
        self._forget(tenant, subject)
        return ev

    # --- restriction of processing (限制处理, PIPL 44) ------------------------------------------------------
    def restrict(self, tenant: str, subject: str, scopes: Sequence[str] = ("all",), *, request_ref: str | None = None,
                 actor: str | None = None, reason: str = "", at: datetime | None = None) -> list[str]:
        """Place restrictions (``all`` or ``feature:<id>``): from now on the gate refuses that processing
        unless a law requires it (N4, PIPL 44). Returns the scopes newly placed."""
        return self._restriction(tenant, subject, scopes, RestrictionEventType.PLACED, request_ref, actor, reason, at)

    def lift_restriction(self, tenant: str, subject: str, scopes: Sequence[str] = ("all",), *,
                         request_ref: str | None = None, actor: str | None = None, reason: str = "",
                         at: datetime | None = None) -> list[str]:
        """Lift restrictions; returns the scopes that were in force and are now lifted."""
        return self._restriction(tenant, subject, scopes, RestrictionEventType.LIFTED, request_ref, actor, reason, at)

    def set_minor_marker(self, tenant: str, subject: str, marker: str, on: bool, *, actor: str, reason: str,
                         at: datetime | None = None) -> bool:
        """Place or lift a minors marker (a guardian's objection, self-supporting status; see
        :mod:`yinsi.domain.minors`) in the subject's restriction projection; True when it changed."""
        if marker not in MINOR_MARKERS:
            raise ConsentRejected(f"未知的未成年人标记「{marker}」")
        event = RestrictionEventType.PLACED if on else RestrictionEventType.LIFTED
        return bool(self._restriction(tenant, subject, [marker], event, None, actor, reason, at, check=False))

    def _restriction(self, tenant: str, subject: str, scopes: Sequence[str], event: RestrictionEventType,
                     request_ref: str | None, actor: str | None, reason: str, at: datetime | None,
                     check: bool = True) -> list[str]:
        decl = self.policy(tenant).decl
        wanted = list(dict.fromkeys(scopes))
        if not wanted:
            raise ConsentRejected("请指明限制处理的范围（all 或 feature:<功能>）")
        if check and MINOR_MARKERS.intersection(wanted):
            raise ConsentRejected("监护人异议与自立状态只能通过未成年人管理（yinsi minors）设置或解除")
        if check and event is RestrictionEventType.PLACED:  # lifting works for a function a later version dropped
            for scope in wanted:
                check_restriction_scope(decl, scope)
        now = self.clock()
        when = at or now
        changed: list[str] = []
        if self.audit is not None:
            self.audit.prepare([(tenant, subject)])
        refs = self.subjects.refs([(tenant, subject)])
        ref = refs[(tenant, subject)]
        with self.sessions() as s:
            repo = LedgerRepository(s)
            known = self._ensure_directory(repo, refs, now)
            current = dict(repo.load_state(tenant, ref, self.subjects.birth_decoder(tenant)).restrictions)
            for scope in wanted:
                if (scope in current) == (event is RestrictionEventType.PLACED):
                    continue  # already placed / not in force: no event, nothing changes
                ev = RestrictionEvent(tenant, subject, scope, event, when, request_ref, actor, reason)
                repo.add_restriction_event(ev, ref, now)
                apply_restriction(current, ev)
                changed.append(scope)
                if self.audit is not None:
                    self.audit.record_in(s, tenant, actor or "subject:app", AuditAction.PROCESSING_RESTRICTION,
                                         subject=subject, details={"scope": scope, "event": event.value,
                                                                   "request": request_ref})
            if changed:
                repo.save_restrictions(tenant, ref, current, now)
            s.commit()
        self._mark_known(known)
        self._forget(tenant, subject)
        return changed

    def may_ask(self, tenant: str, subject: str, device: str, permission: str, *, at: datetime | None = None,
                quiet_hours: float = 48) -> PromptDecision:
        """C8: may the app ask for this permission now?"""
        return may_ask_permission(self.state(tenant, subject), device, permission, at or self.clock(), quiet_hours)

    # --- the gate ----------------------------------------------------------------------------------------
    def _forget(self, tenant: str, subject: str) -> None:
        """Drop a subject's cached state after this process changed it."""
        with self._lock:
            self._states.pop((tenant, subject), None)

    def state(self, tenant: str, subject: str) -> SubjectState:
        return self._cached(tenant, subject).state

    def _cached(self, tenant: str, subject: str) -> _Cached:
        """The subject's cached state, current within ``state_ttl`` (revalidating the tenant when due)."""
        key = (tenant, subject)
        c = self._states.get(key)
        if c is not None and c.gen == c.watch.gen and self.ticker() - c.watch.checked < self.state_ttl:
            c.used = True
            return c
        with self._lock:
            watch = self._watch(tenant)
            if self.ticker() - watch.checked >= self.state_ttl:
                self._revalidate(tenant, watch)
            c = self._states.get(key)
            if c is None:  # not cached (or dropped as changed): read it
                ref = self.subjects.ref(tenant, subject)
                with self.engine.connect() as conn:
                    state = load_states(conn, tenant, [ref], self.subjects.birth_decoder(tenant))[ref]
                self.stats.cold_loads += 1
                c = self._states[key] = _Cached(state, ref, watch, watch.gen)
                self._remember_ref(tenant, ref, subject)
                watch.current.add(subject)
                if len(self._states) > self.cache_size:
                    del self._states[next(iter(self._states))]
            elif c.gen != watch.gen:
                # not decided during the last period: its events are current (changed subjects are re-read or
                # dropped by every revalidation), its birth date (updated in place) is compared now
                with self.engine.connect() as conn:
                    found = birth_dates_of(conn, tenant, [c.ref], self.subjects.birth_decoder(tenant))
                self._check_birth_date(c, found.get(c.ref))
                c.gen = watch.gen
                watch.current.add(subject)
            c.used = True
            self._start_writer()
            return c

    def prefetch(self, tenant: str, subjects: Iterable[str]) -> int:
        """Read the states of subjects not cached yet in bulk (three queries per 500 subjects), e.g. before
        a batch of decisions or when a server starts; returns how many were read."""
        with self._lock:
            watch = self._watch(tenant)
            if self.ticker() - watch.checked >= self.state_ttl:
                self._revalidate(tenant, watch)
            todo = [s for s in dict.fromkeys(subjects) if (tenant, s) not in self._states]
            birth = self.subjects.birth_decoder(tenant)
            for start in range(0, len(todo), 5000):
                refs = {self.subjects.ref(tenant, subject): subject for subject in todo[start:start + 5000]}
                with self.engine.connect() as conn:
                    states = load_states(conn, tenant, list(refs), birth)
                for ref, state in states.items():
                    subject = refs[ref]
                    self._states[(tenant, subject)] = _Cached(state, ref, watch, watch.gen)
                    self._remember_ref(tenant, ref, subject)
                    watch.current.add(subject)
                self.stats.cold_loads += len(states)
            while len(self._states) > self.cache_size:
                del self._states[next(iter(self._states))]
            self._start_writer()
            return len(todo)

    def _remember_ref(self, tenant: str, ref: str, subject: str) -> None:
        if len(self._ref_subject) > 2 * self.cache_size:  # drop the entries of subjects no longer cached
            self._ref_subject = {(t, c.ref): subj for (t, subj), c in self._states.items()}
        self._ref_subject[(tenant, ref)] = subject

    def _start_writer(self) -> None:
        if not self.records.running:
            self.records.start()

    def _watch(self, tenant: str) -> _Watch:
        """The tenant's change watch, created (cursors at the event tables' current ends) on first use."""
        w = self._watches.get(tenant)
        if w is None:
            now = self.ticker()
            with self.engine.connect() as conn:
                cursors = max_event_ids(conn)
            w = self._watches[tenant] = _Watch(now, deque([(now, cursors)]))
        return w

    def _revalidate(self, tenant: str, watch: _Watch) -> None:
        """One bulk round for a tenant (under ``_lock``): which subjects changed since the cursors, re-read
        those decided since the previous round and drop the others; compare the birth dates of the other
        subjects decided since then. States found unchanged keep their memoised decisions."""
        now = self.ticker()
        history = watch.cursors
        # the newest cursor at least CHANGE_GRACE old (or the oldest one kept): late commits are not skipped
        while len(history) > 1 and now - history[1][0] >= CHANGE_GRACE:
            history.popleft()
        cursors = history[0][1]
        states = self._states
        used = [subj for subj in watch.current
                if (c := states.get((tenant, subj))) is not None and c.gen == watch.gen and c.used]
        by_ref = self._ref_subject
        birth = self.subjects.birth_decoder(tenant)
        with self.engine.connect() as conn:
            changed_refs, newest = changed_subjects(conn, tenant, cursors)
            changed = {subj for ref in changed_refs if (subj := by_ref.get((tenant, ref))) is not None}
            reread: list[str] = []
            for subj in changed:
                c = states.get((tenant, subj))
                if c is None:
                    continue
                self.stats.changed_seen += 1
                if c.gen == watch.gen and c.used:
                    reread.append(subj)
                else:
                    del states[(tenant, subj)]
                    self.stats.dropped += 1
            reread_refs = {states[(tenant, subj)].ref: subj for subj in reread}
            fresh = ({reread_refs[ref]: st for ref, st in load_states(conn, tenant, list(reread_refs), birth).items()}
                     if reread else {})
            to_compare = [subj for subj in used if subj not in changed]
            compare_refs = {states[(tenant, subj)].ref: subj for subj in to_compare}
            births = ({compare_refs[ref]: b for ref, b in birth_dates_of(conn, tenant, list(compare_refs),
                                                                         birth).items()}
                      if to_compare else {})
        gen = watch.gen + 1
        current: set[str] = set()
        for subj, state in fresh.items():
            c = states[(tenant, subj)]
            self.stats.reloaded += 1
            if state == c.state:
                self.stats.memo_kept += 1
            else:
                c.state, c.memo = state, {}
                self.stats.memo_cleared += 1
            c.gen, c.used = gen, False
            current.add(subj)
        for subj in to_compare:
            c = states[(tenant, subj)]
            self._check_birth_date(c, births.get(subj))
            c.gen, c.used = gen, False
            current.add(subj)
        if newest != history[-1][1]:
            history.append((now, newest))
        watch.current = current
        watch.gen = gen
        watch.checked = now
        self.stats.revalidations += 1

    def _check_birth_date(self, c: _Cached, birth_date: date | None) -> None:
        self.stats.birth_date_checks += 1
        if birth_date == c.state.birth_date:
            self.stats.memo_kept += 1
        else:  # a new state object: a thread deciding right now keeps a consistent (old) one
            c.state, c.memo = replace(c.state, birth_date=birth_date), {}
            self.stats.memo_cleared += 1

    def check(self, tenant: str, subject: str, action: Action | str, *, feature: str | None = None,
              purpose: str | None = None, items: Iterable[str] = (), recipient: str | None = None,
              destination: str | None = None, device: str | None = None, actor: str | None = None,
              at: datetime | None = None, record: bool = True, exception: str | None = None) -> Decision:
        """Decide, and append the decision to the processing record. ``exception``: processing without
        consent on a declared PIPL 13 (3)–(7) basis, named by its code (recorded as the decision's basis)."""
        act = (_ACTIONS.get(action) if isinstance(action, str) else None) or Action(action)
        items = tuple(items)
        if at is not None:
            _aware(at)
        now = at or self.clock()
        cached = self._states.get((tenant, subject))
        if cached is not None and cached.gen == (w := cached.watch).gen and tenant in self._policies \
                and self.ticker() - w.checked < self.state_ttl:
            # warm path: the memoised decision, without building a Request (same key as ``decide``)
            shape = (act, feature, purpose, items, recipient, destination) if exception is None else (
                act, feature, purpose, items, recipient, destination, exception)  # = Request.key()
            decision = cached.memo.get((shape, device, beijing_date(now)))  # = decide()'s key
            if decision is not None:
                cached.used = True
                if record:
                    buf = self._records
                    if len(buf) >= self._record_capacity:
                        self.records.wait_for_space()
                    buf.append((tenant, subject, act, purpose, items, recipient, destination, decision, actor, now))
                    if len(buf) >= self.record_batch:
                        self.records.wake()
                return decision
        req = Request(tenant, subject, act, feature, purpose, items, recipient, destination, device, exception)
        return self.decide(req, actor=actor, at=now, record=record)

    def decide(self, req: Request, *, actor: str | None = None, at: datetime | None = None,
               record: bool = True) -> Decision:
        if at is not None:
            _aware(at)
        now = at or self.clock()
        policy = self.policy(req.tenant)
        cached = self._cached(req.tenant, req.subject)
        key = (req.key(), req.device, beijing_date(now))  # ages change at midnight Beijing time
        decision = cached.memo.get(key)
        if decision is None:
            decision = decide(policy, cached.state, req, now)
            cached.memo[key] = decision
        if record:
            self.records.put((req.tenant, req.subject, req.action, req.purpose, req.items, req.recipient,
                              req.destination, decision, actor, now))
        return decision

    def flush(self) -> int:
        """Write the buffered processing records now (in this thread); returns how many. The background
        writer does this on its own; ``report`` and ``close`` call it."""
        return self.records.flush()

    def _write_records(self, records: list[_Record]) -> None:
        """Write a batch of processing records in one transaction (called by the ``RecordWriter``)."""
        # Memoised decisions repeat within a batch: serialise each decision object and each item list once
        # (the batch keeps the decisions alive, so their ids are unique while it is written).
        decided: dict[int, tuple[str | None, bool, str | None, str, str]] = {}
        items_json: dict[tuple[str, ...], str] = {}
        rows: list[tuple[Any, ...]] = []
        ref_of = self.subjects.ref
        refs: dict[tuple[str, str], str] = {}
        for tenant, subject, action, purpose, items, recipient, destination, d, actor, decided_at in records:
            ref = refs.get((tenant, subject))
            if ref is None:
                ref = refs[(tenant, subject)] = ref_of(tenant, subject)
            dj = decided.get(id(d))
            if dj is None:
                j = d.to_json()
                dj = decided[id(d)] = (d.feature, d.allowed, j["basis"], d.policy_label,
                                       json.dumps(j["reasons"] + j["missing"], ensure_ascii=False))
            items_text = items_json.get(items)
            if items_text is None:
                items_text = json.dumps(list(items), ensure_ascii=False)
                if all(type(i) is str for i in items):  # equal keys must mean equal text (1 == True)
                    items_json[items] = items_text
            rows.append((tenant, ref, _ACTION_VALUES[action], dj[0], purpose, items_text, recipient, destination,
                         dj[1], dj[2], dj[3], actor, decided_at, dj[4]))
        unknown = {pair: ref for pair, ref in refs.items() if not self.subjects.known(pair[0], ref)}
        if not unknown:
            with self.engine.begin() as conn:
                write_processing_records(conn, rows)
            return
        with self.sessions() as s:  # a subject decided on before any event of it: its directory row first
            known = self._ensure_directory(LedgerRepository(s), unknown, self.clock())
            write_processing_records(s.connection(), rows)
            s.commit()
        self._mark_known(known)

    # --- projection rebuild ------------------------------------------------------------------------------
    def rebuild(self, tenant: str) -> int:
        """Rebuild the tenant's projections from its events; returns the number of subjects."""
        with self.sessions() as s:
            repo = LedgerRepository(s)
            consents = repo.consent_events(tenant)
            permissions = repo.permission_events(tenant)
            restrictions = repo.restriction_events(tenant)
            repo.clear_projections(tenant)
            by_subject: dict[str, tuple[list[tuple[int, ConsentEvent]], list[tuple[int, PermissionEvent]],
                                        list[tuple[int, RestrictionEvent]]]] = {}
            for eid, ev in consents:
                by_subject.setdefault(ev.subject, ([], [], []))[0].append((eid, ev))
            for eid, pev in permissions:
                by_subject.setdefault(pev.subject, ([], [], []))[1].append((eid, pev))
            for eid, rev in restrictions:
                by_subject.setdefault(rev.subject, ([], [], []))[2].append((eid, rev))
            states = {subj: replay(c, p, restrictions=r) for subj, (c, p, r) in by_subject.items()}
            repo.save_consent_states(tenant, {subj: st.consents for subj, st in states.items()})
            now = self.clock()
            for subj, st in states.items():
                for (device, perm), pst in st.permissions.items():
                    repo.save_permission_state(tenant, subj, device, perm, pst)
                if st.restrictions:
                    repo.save_restrictions(tenant, subj, st.restrictions, now)
            s.commit()
        with self._lock:
            self._states.clear()
            self._watches.clear()
            self._ref_subject.clear()
        return len(states)

    def projection(self, tenant: str) -> list[tuple[Any, ...]]:
        """The tenant's whole projection, sorted, with the app's subject ids (decrypted from the directory)."""
        with self.sessions() as s:
            repo = LedgerRepository(s)
            rows = repo.projection_rows(tenant)
            tokens = repo.subject_tokens(tenant, {r[1] for r in rows})
        ids = self.subjects.subjects_of(tenant, tokens)
        return sorted((r[0], ids.get(r[1], r[1]), *r[2:]) for r in rows)

    # --- the person's own lists (双清单) -----------------------------------------------------------------
    def report(self, tenant: str, subject: str) -> dict[str, Any]:
        """What was actually collected and shared about this person, by whom and for what, from the
        processing records of allowed decisions."""
        self.flush()
        decl = self.policy(tenant).decl
        tax = taxonomy()
        ref = self.subjects.ref(tenant, subject)
        with self.sessions() as s:
            records = LedgerRepository(s).processing_records(tenant, ref)
            consent_events = LedgerRepository(s).consent_events(tenant, ref)
        collected: dict[str, dict[str, Any]] = {}
        shared: dict[tuple[str, str], dict[str, Any]] = {}
        refused = 0
        for r in records:
            if not r.allowed:
                refused += 1
                continue
            items = json.loads(r.items)
            f = decl.feature(r.feature) if r.feature else None
            purpose = r.purpose or ("；".join(f.purposes) if f else "")
            when = r.decided_at.isoformat()
            if r.action in (Action.COLLECT.value, Action.USE.value, Action.AUTOMATED_DECISION.value):
                for i in items:
                    e = collected.setdefault(i, {"item": i, "name": tax.item(i).name, "sensitive": tax.is_sensitive(i),
                                                 "features": [], "purposes": [], "actions": [], "times": 0,
                                                 "first": when, "last": when, "basis": []})
                    _add(e["features"], f.name if f else r.feature)
                    _add(e["purposes"], purpose)
                    _add(e["actions"], r.action)
                    _add(e["basis"], r.basis)
                    e["times"] += 1
                    e["last"] = when
            elif r.recipient:
                rec = decl.recipient(r.recipient)
                for i in items:
                    e = shared.setdefault((r.recipient, i), {
                        "recipient": r.recipient, "recipient_name": rec.name if rec else r.recipient,
                        "item": i, "name": tax.item(i).name, "action": r.action,
                        "purpose": (rec.purpose if rec and rec.purpose else purpose), "times": 0,
                        "first": when, "last": when})
                    e["times"] += 1
                    e["last"] = when
        consents = {}
        for _, ev in consent_events:
            consents[ev.scope] = {"scope": ev.scope, "event": ev.event.value, "kind": ev.kind.value,
                                  "policy": ev.policy_label, "time": ev.event_time.isoformat()}
        restricted = [{"scope": scope, "since": since.isoformat()}
                      for scope, since in sorted(self.state(tenant, subject).restrictions.items())]
        return {"tenant": tenant, "subject": subject, "policy": decl.version.label,
                "collected": list(collected.values()), "shared": list(shared.values()),
                "consents": list(consents.values()), "restrictions": restricted, "refused_requests": refused}


def _aware(at: datetime) -> None:
    """A decision's time must carry its zone (its record is written later, by another thread: refuse now)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("判断时间 at 须带时区（例如 datetime.now(UTC)）")


def _audit_scope(scope: str) -> str:
    """The scope as the audit log may hold it (ids of features, items and recipients; never PI values)."""
    return scope


def _add(values: list[Any], value: Any) -> None:
    if value and value not in values:
        values.append(value)


def _scope_contents(decl: Declaration, scope: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Purposes, PI items and recipients a consent of this scope covers, from the declaration."""
    kind = scope_kind(scope)
    parts = scope.split(":")
    if kind == "feature":
        f = decl.feature(parts[1])
        return (tuple(f.purposes), tuple(f.item_ids()), ()) if f else ((), (), ())
    if kind == "item":
        f = decl.feature(parts[1])
        return (tuple(f.purposes) if f else (), (parts[2],), ())
    if kind in ("recipient", "cross_border"):
        r = decl.recipient(parts[1])
        return ((r.purpose,) if r and r.purpose else (), tuple(r.items) if r else (), (parts[1],))
    purposes = tuple(p for f in decl.features for p in f.purposes)
    return (purposes, tuple(decl.collected_items()), tuple(r.id for r in decl.recipients))


def _retention_text(decl: Declaration) -> str | None:
    parts = [r.determination or (f"{r.period_days}天" if r.period_days else "") for r in decl.retention]
    text = "；".join(p for p in parts if p)
    return text or None


def _withdrawal_text(decl: Declaration) -> str | None:
    from yinsi.domain.policy import RightKind

    r = decl.right(RightKind.WITHDRAW_CONSENT)
    if r is None:
        return None
    return "；".join(c.value for c in r.channels if c.value) or None
