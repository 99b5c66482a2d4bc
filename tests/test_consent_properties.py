"""Property-based tests of the ledger and the gate over random event sequences (hypothesis).

The pure properties run many examples in memory; projection == replay and tenant isolation also run
through the service against real databases (SQLite and PostgreSQL).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import scratch_database
from tests.helpers import POLICIES
from yinsi.declarations import load_declaration
from yinsi.domain.consent import (
    POLICY,
    ConsentEvent,
    EventType,
    PermissionEvent,
    PermissionEventType,
    Status,
    SubjectState,
    apply_consent,
    apply_permission,
    declared_disclosures,
    replay,
    required_consent_kind,
    scope_kind,
)
from yinsi.domain.gate import CompiledPolicy, Request, decide
from yinsi.domain.policy import Declaration, FeatureKind
from yinsi.domain.taxonomy import Action, LegalBasis, taxonomy
from yinsi.services.consent import ConsentService
from yinsi.services.publishing import publish

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DIALOG = {"necessity": "必要", "impact": "影响", "recipient_name": "接收方", "recipient_contact": "400-000-0000",
          "purpose": "目的", "method": "方式", "items": "信息"}

DECLS: dict[str, Declaration] = {n: load_declaration(POLICIES / f"{n}.yaml") for n in ("weiliaoke-2022", "kehutong-2021")}


def scopes_of(d: Declaration) -> list[str]:
    """Every consent scope the declaration makes possible."""
    out = [POLICY]
    for f in d.features:
        out.append(f"feature:{f.id}")
        out += [f"item:{f.id}:{c.item}" for c in f.collections]
    out += [f"recipient:{r.id}" for r in d.recipients if r.legal_basis is LegalBasis.CONSENT]
    return out


def requests_of(d: Declaration) -> list[Request]:
    """A request per (consent-based feature, collected item), plus provisions to recipients."""
    reqs = [Request(d.tenant, "s", Action.COLLECT, f.id, items=(c.item,), device="d1")
            for f in d.features for c in f.collections]
    reqs += [Request(d.tenant, "s", Action.PROVIDE, None, items=(r.items[0],), recipient=r.id)
             for r in d.recipients if r.items and r.action in ("provide", "transfer")]
    return reqs


SCOPES = {n: scopes_of(d) for n, d in DECLS.items()}
PERMS = {n: sorted({p.permission for f in d.features for p in f.permissions}) for n, d in DECLS.items()}
CONSENT_EVENTS = [EventType.GIVEN, EventType.REFUSED, EventType.WITHDRAWN, EventType.RENEWED, EventType.EXPIRED]


@st.composite
def histories(draw: st.DrawFn, tenant: str = "weiliaoke-2022", max_size: int = 30) -> list[tuple[str, object]]:
    """A random history of consent and permission events for a few subjects."""
    scopes, perms = SCOPES[tenant], PERMS[tenant]
    consent_op = st.tuples(st.just("consent"), st.tuples(st.sampled_from(["s1", "s2"]), st.sampled_from(scopes),
                                                         st.sampled_from(CONSENT_EVENTS)))
    if not perms:  # a policy that declares no device permission: none can be recorded
        return draw(st.lists(consent_op, max_size=max_size))
    permission_op = st.tuples(st.just("permission"), st.tuples(
        st.sampled_from(["s1", "s2"]), st.sampled_from(perms), st.sampled_from(list(PermissionEventType))))
    return draw(st.lists(st.one_of(consent_op, permission_op), max_size=max_size))


def consent_event(d: Declaration, subject: str, scope: str, ev: EventType, t: datetime) -> ConsentEvent:
    kind = required_consent_kind(scope)
    return ConsentEvent(str(uuid.uuid4()), d.tenant, subject, scope, kind, ev, d.version.label, "0" * 64, t,
                        disclosures={**DIALOG, **declared_disclosures(d, scope)},
                        actor="guardian-1" if scope == "guardian" else None)


def build(d: Declaration, ops: list[tuple[str, object]]) -> tuple[dict[str, SubjectState], list, list]:  # type: ignore[type-arg]
    states: dict[str, SubjectState] = {}
    consents, permissions = [], []
    ids = itertools.count(1)
    for k, (what, args) in enumerate(ops):
        t = T0 + timedelta(minutes=k)
        if what == "consent":
            subject, scope, ev = args  # type: ignore[misc]
            e = consent_event(d, subject, scope, ev, t)
            i = next(ids)
            apply_consent(states.setdefault(subject, SubjectState()), e, i)
            consents.append((i, e))
        else:
            subject, perm, pev = args  # type: ignore[misc]
            p = PermissionEvent(d.tenant, subject, "d1", perm, pev, t)
            i = next(ids)
            apply_permission(states.setdefault(subject, SubjectState()), p, i)
            permissions.append((i, p))
    return states, consents, permissions


# --- pure properties ----------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(histories())
def test_projection_equals_replay(ops: list[tuple[str, object]]) -> None:
    d = DECLS["weiliaoke-2022"]
    states, consents, permissions = build(d, ops)
    for subject, incremental in states.items():
        mine = [(i, e) for i, e in consents if e.subject == subject]
        perms = [(i, p) for i, p in permissions if p.subject == subject]
        assert replay(reversed(mine), reversed(perms)) == incremental  # replay orders by event id


@settings(max_examples=150, deadline=None)
@given(histories())
def test_nothing_that_depends_on_a_withdrawn_consent_is_allowed(ops: list[tuple[str, object]]) -> None:
    d = DECLS["weiliaoke-2022"]
    policy = CompiledPolicy(d)
    states, _, _ = build(d, ops)
    for state in states.values():
        withdrawn = {s for s, v in state.consents.items() if v.status is Status.WITHDRAWN}
        for req in requests_of(d):
            plan = policy.plan(req)
            needed = {r.scope for r in plan.consents}
            if needed & withdrawn:
                assert not decide(policy, state, req, T0 + timedelta(days=1)).allowed


@settings(max_examples=150, deadline=None)
@given(histories())
def test_no_sensitive_item_is_allowed_without_its_separate_consent(ops: list[tuple[str, object]]) -> None:
    d = DECLS["weiliaoke-2022"]
    policy, tax = CompiledPolicy(d), taxonomy()
    states, _, _ = build(d, ops)
    for state in states.values():
        for req in requests_of(d):
            dec = decide(policy, state, req, T0 + timedelta(days=1))
            if not dec.allowed or dec.basis is not LegalBasis.CONSENT or req.action is not Action.COLLECT:
                continue
            for item in req.items:
                if tax.is_sensitive(item):
                    st_ = state.consents.get(f"item:{req.feature}:{item}")
                    assert st_ is not None and st_.status is Status.ACTIVE


@settings(max_examples=150, deadline=None)
@given(histories(), st.data())
def test_extended_function_refusals_never_change_basic_decisions(ops: list[tuple[str, object]], data: st.DataObject) -> None:
    d = DECLS["weiliaoke-2022"]
    policy = CompiledPolicy(d)
    states, _, _ = build(d, ops)
    extended = [f.id for f in d.features if f.kind is FeatureKind.EXTENDED]
    basic_reqs = [r for r in requests_of(d) if r.feature and d.feature(r.feature).kind is FeatureKind.BASIC]  # type: ignore[union-attr]
    for state in states.values():
        refused = SubjectState(dict(state.consents), dict(state.permissions), state.birth_date)
        for fid in data.draw(st.lists(st.sampled_from(extended), unique=True)):
            refused.consents[f"feature:{fid}"] = consent_state(d, f"feature:{fid}", EventType.REFUSED)
            for scope in [s for s in refused.consents if s.startswith(f"item:{fid}:")]:
                refused.consents[scope] = consent_state(d, scope, EventType.WITHDRAWN)
        for req in basic_reqs:
            at = T0 + timedelta(days=1)
            assert decide(policy, state, req, at) == decide(policy, refused, req, at)


def consent_state(d: Declaration, scope: str, ev: EventType):  # type: ignore[no-untyped-def]
    s = SubjectState()
    apply_consent(s, consent_event(d, "x", scope, ev, T0), 10**9)
    return s.consents[scope]


# --- through the service, on real databases -------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], scope="module")
def service_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from yinsi.storage import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{(tmp_path_factory.mktemp('prop') / 'y.db').as_posix()}"
        upgrade(url)
        for n in DECLS:
            publish(POLICIES / f"{n}.yaml", url=url)
        yield url
        return
    with scratch_database("postgresql") as url:
        upgrade(url)
        for n in DECLS:
            publish(POLICIES / f"{n}.yaml", url=url)
        yield url


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(histories(max_size=15), histories("kehutong-2021", max_size=15))
def test_service_projection_equals_rebuild_and_tenants_stay_apart(
        service_url: str, ops_a: list[tuple[str, object]], ops_b: list[tuple[str, object]]) -> None:
    run = uuid.uuid4().hex[:8]  # fresh subject ids per example; the same ids are used in both tenants
    with ConsentService(service_url) as svc:
        expected: dict[tuple[str, str], SubjectState] = {}
        for name, ops in (("weiliaoke-2022", ops_a), ("kehutong-2021", ops_b)):
            d = DECLS[name]
            events = []
            for k, (what, args) in enumerate(ops):
                t = T0 + timedelta(minutes=k)
                if what == "consent":
                    subject, scope, ev = args  # type: ignore[misc]
                    e = consent_event(d, f"{run}-{subject}", scope, ev, t)
                    events.append(e)
                    svc.append_consents([e])
                else:
                    subject, perm, pev = args  # type: ignore[misc]
                    svc.record_permission(d.tenant, f"{run}-{subject}", "d1", perm, pev, at=t)
            states, _, _ = build(d, [(w, (f"{run}-{a[0]}", *a[1:])) for w, a in ops])  # type: ignore[index]
            for subject, st_ in states.items():
                expected[(d.tenant, subject)] = st_
        for (tenant, subject), st_ in expected.items():
            got = svc.state(tenant, subject)
            assert {k: v.status for k, v in got.consents.items()} == {k: v.status for k, v in st_.consents.items()}
            assert {k: v.status for k, v in got.permissions.items()} == {
                k: v.status for k, v in st_.permissions.items()}
        for tenant in ("weiliaoke", "kehutong"):
            before = [r for r in svc.projection(tenant) if str(r[1]).startswith(run)]
            svc.rebuild(tenant)
            after = [r for r in svc.projection(tenant) if str(r[1]).startswith(run)]
            assert before == after


def test_scope_kinds_cover_every_generated_scope() -> None:
    kinds = {scope_kind(s) for scopes in SCOPES.values() for s in scopes}
    assert kinds <= {"policy", "feature", "item", "recipient"}


