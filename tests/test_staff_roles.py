"""Roles, rights and the permission check (pure: no database). Every role × every action, written out here
by hand rather than derived from ``RIGHTS``, so that a widened right shows up as a failing cell."""

from __future__ import annotations

import pytest

from yinsi.staff.roles import (
    CONFLICTS,
    RIGHTS,
    Role,
    StaffAction,
    StaffMember,
    SubjectContext,
    authorize,
    parse_role,
    role_conflicts,
)

PO, CS, SO, AU, AD = (Role.PRIVACY_OFFICER, Role.CUSTOMER_SERVICE, Role.SECURITY_OFFICER, Role.AUDITOR,
                      Role.ADMINISTRATOR)

#: action → the roles allowed it (everyone else is refused).
EXPECTED: dict[StaffAction, set[Role]] = {
    StaffAction.VIEW_MASKED: {PO, CS},
    StaffAction.UNMASK: {PO},
    StaffAction.REQUEST_EXPORT: {PO},
    StaffAction.APPROVE_EXPORT: {PO},
    StaffAction.EXPORT: {PO},
    StaffAction.REQUEST_MINOR_ACCESS: {PO, CS},
    StaffAction.APPROVE_MINOR_ACCESS: {PO},
    StaffAction.START_RIGHTS_REQUEST: {PO, CS},
    StaffAction.HANDLE_RIGHTS_REQUEST: {PO},
    StaffAction.VIEW_ALERTS: {SO},
    StaffAction.ACK_ALERT: {SO},
    StaffAction.MANAGE_INCIDENT: {SO, PO},
    StaffAction.VIEW_AUDIT_LOG: {SO, AU},
    StaffAction.VERIFY_AUDIT_LOG: {SO, AU},
    StaffAction.MANAGE_STAFF: {AD},
    StaffAction.CONFIGURE: {AD},
}

PI_READING = {StaffAction.VIEW_MASKED, StaffAction.UNMASK, StaffAction.EXPORT}


def member(*roles: Role, staff_id: str = "s1", tenant: str = "t1", active: bool = True) -> StaffMember:
    return StaffMember(tenant, staff_id, "某人", frozenset(roles), active)


def neutral(action: StaffAction, staff_id: str = "s1") -> SubjectContext:
    """A context in which only the role decides: a reason given, an adult, someone else's request, and for
    an export the requester is the actor and another person approved."""
    if action is StaffAction.EXPORT:
        return SubjectContext("t1", "p_x", reason="核实", requester=staff_id, approver="other")
    return SubjectContext("t1", "p_x", reason="核实", requester="other")


def test_expected_table_covers_every_action() -> None:
    assert set(EXPECTED) == set(StaffAction)


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("action", list(StaffAction), ids=lambda a: a.value)
def test_rights_matrix(role: Role, action: StaffAction) -> None:
    auth = authorize(member(role), action, neutral(action))
    assert auth.allowed is (role in EXPECTED[action]), auth.reason_zh
    assert auth.rule in ("S3", "S4", "S6")
    assert auth.reason_zh  # every decision names its reason in Chinese
    if not auth.allowed:
        assert auth.rule == "S3"


@pytest.mark.parametrize("role", [AD, AU, SO], ids=lambda r: r.value)
def test_non_operators_never_read_pi(role: Role) -> None:
    for action in PI_READING:
        auth = authorize(member(role), action, neutral(action))
        assert not auth.allowed
        assert "个人信息" in auth.reason_zh


def test_administrator_refusal_names_separation() -> None:
    auth = authorize(member(AD), StaffAction.VIEW_MASKED, neutral(StaffAction.VIEW_MASKED))
    assert not auth and "无论是否掩码" in auth.reason_zh and auth.rule == "S3"


def test_unmask_needs_a_reason() -> None:
    for reason in (None, "", "   "):
        auth = authorize(member(PO), StaffAction.UNMASK, SubjectContext("t1", "p_x", reason=reason))
        assert not auth and auth.rule == "S4" and "事由" in auth.reason_zh
    # a customer-service agent with a reason is still refused, on the role
    auth = authorize(member(CS), StaffAction.UNMASK, SubjectContext("t1", "p_x", reason="核实"))
    assert not auth and auth.rule == "S3"


def test_minor_needs_an_approval() -> None:
    for action in (StaffAction.VIEW_MASKED, StaffAction.UNMASK):
        ctx = SubjectContext("t1", "p_x", minor=True, reason="核实")
        auth = authorize(member(PO), action, ctx)
        assert not auth and auth.rule == "S6"
        ok = authorize(member(PO), action, SubjectContext("t1", "p_x", minor=True, minor_approval="req_1", reason="核实"))
        assert ok and ok.rule == "S6"
    cs = authorize(member(CS), StaffAction.VIEW_MASKED, SubjectContext("t1", "p_x", minor=True, minor_approval="req_1"))
    assert cs.allowed


def test_no_self_approval_and_export_needs_a_second_person() -> None:
    po = member(PO)
    for action in (StaffAction.APPROVE_EXPORT, StaffAction.APPROVE_MINOR_ACCESS):
        auth = authorize(po, action, SubjectContext("t1", requester="s1"))
        assert not auth and "本人" in auth.reason_zh
    assert not authorize(po, StaffAction.EXPORT, SubjectContext("t1", requester="s1", approver=None))
    assert not authorize(po, StaffAction.EXPORT, SubjectContext("t1", requester="s1", approver="s1"))
    assert not authorize(po, StaffAction.EXPORT, SubjectContext("t1", requester="other", approver="s2"))
    assert authorize(po, StaffAction.EXPORT, SubjectContext("t1", requester="s1", approver="s2"))


def test_tenant_isolation_inactive_and_unknown() -> None:
    other = member(PO, tenant="t2")
    auth = authorize(other, StaffAction.VIEW_MASKED, SubjectContext("t1", "p_x"))
    assert not auth and "t2" in auth.reason_zh and auth.rule == "S3"
    assert not authorize(member(PO, active=False), StaffAction.VIEW_MASKED, SubjectContext("t1", "p_x"))
    assert not authorize(None, StaffAction.VIEW_MASKED, SubjectContext("t1", "p_x"))
    assert not authorize(member(), StaffAction.VIEW_MASKED, SubjectContext("t1", "p_x"))  # no role at all


def test_separation_of_duties_pairs() -> None:
    assert role_conflicts([AD, PO]) == [(PO, AD)]
    assert role_conflicts([AD, CS]) and role_conflicts([AD, AU]) and role_conflicts([AU, PO]) and role_conflicts([AU, CS])
    assert not role_conflicts([PO, CS]) and not role_conflicts([SO, AU]) and not role_conflicts([AD, SO])
    assert all(len(pair) == 2 for pair in CONFLICTS)
    # no allowed combination lets the administrator read PI
    assert not any(a in RIGHTS[AD] for a in PI_READING)


def test_parse_role() -> None:
    assert parse_role("privacy_officer") is PO
    assert parse_role("审计员") is AU
    with pytest.raises(ValueError, match="未知角色"):
        parse_role("root")
