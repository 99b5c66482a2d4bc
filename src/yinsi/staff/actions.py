"""Staff use cases as an authenticated member of staff does them (工作人员操作), for the CLI and the HTTP API.

Every function takes the :class:`~yinsi.auth.principals.StaffPrincipal` that authentication produced, acts
on that principal's tenant only, checks the role rules (S3 least privilege, S4 masking, S6 minors) with
:func:`yinsi.staff.roles.authorize` against the account as it is *now* in the database (a role revoked or
an account deactivated after login counts at once), requires a second factor for every action that
touches PI, audits refusals, and then calls the service with ``actor = principal.staff_id``. Entry points
parse, authenticate and call these functions; they hold no rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yinsi.audit import AuditAction
from yinsi.auth.principals import StaffPrincipal
from yinsi.staff.errors import AccessDenied
from yinsi.staff.roles import (
    SECOND_FACTOR_ACTIONS,
    Authorization,
    Role,
    StaffAction,
    StaffMember,
    SubjectContext,
    authorize,
)
from yinsi.staff.service import AccessRequest, ExportResult, StaffService, SubjectView, UnmaskResult

if TYPE_CHECKING:
    from yinsi.audit import AuditEntry, AuditLog
    from yinsi.auth.staff import StaffAuthService
    from yinsi.rights.service import HoldView, RequestView, RightsService
    from yinsi.staff.anomaly import ActivityMonitor, Alert

__all__ = [
    "ack_alert",
    "add_staff",
    "approve",
    "check",
    "complete_manual_step",
    "confirm_cancellation",
    "deactivate",
    "export_approved",
    "export_package",
    "grant",
    "legal_holds",
    "lift_restriction",
    "list_alerts",
    "list_requests",
    "list_staff",
    "overdue_requests",
    "record_audit_entry",
    "refuse_request",
    "reject",
    "request_export",
    "request_identifiers",
    "request_minor_access",
    "revoke",
    "rights_requests",
    "show_request",
    "submit_request",
    "unmask",
    "verify_in_person",
    "view_audit_log",
    "view_subject",
    "withdraw_request",
]


def _second_factor(principal: StaffPrincipal, action: StaffAction) -> None:
    if action in SECOND_FACTOR_ACTIONS and not principal.mfa:
        raise AccessDenied(Authorization(
            False, f"{action.label}须在登录时验证动态验证码（第二因素）：请用 --totp 重新登录", "S3", action,
            principal.staff_id))


def check(principal: StaffPrincipal, staff: StaffService, action: StaffAction, *,
          audit_action: AuditAction = AuditAction.RIGHTS_REQUEST_STEP, ctx: SubjectContext | None = None,
          details: str | None = None) -> Authorization:
    """May the principal do ``action`` in its tenant? Refusals are audited and raise :class:`AccessDenied`."""
    _second_factor(principal, action)
    member = staff.get_staff(principal.tenant, principal.staff_id)
    auth = authorize(member, action, ctx or SubjectContext(principal.tenant))
    if not auth:
        staff.audit_denied(principal.tenant, principal.staff_id, audit_action, None, (), details, auth)
        raise AccessDenied(auth)
    return auth


def _member_of_tenant(principal: StaffPrincipal, staff: StaffService) -> StaffMember:
    member = staff.get_staff(principal.tenant, principal.staff_id)
    if member is None or not member.active:
        raise AccessDenied(authorize(member, StaffAction.VIEW_MASKED, SubjectContext(principal.tenant)))
    return member


# --- staff and roles -------------------------------------------------------------------------------


def add_staff(principal: StaffPrincipal, auth: StaffAuthService, staff_id: str, name: str, roles: Sequence[str],
              password: str, *, person_id: str | None = None, contact: str | None = None) -> tuple[StaffMember, str]:
    """An administrator creates an account; returns it and its TOTP secret (shown once)."""
    _second_factor(principal, StaffAction.MANAGE_STAFF)
    secret = auth.create_account(principal, staff_id, name, roles, password, person_id=person_id, contact=contact)
    member = auth.staff.get_staff(principal.tenant, staff_id)
    assert member is not None
    return member, secret


def list_staff(principal: StaffPrincipal, staff: StaffService) -> list[StaffMember]:
    """The tenant's staff and roles: any active member of its staff may see them (to know who approves)."""
    _member_of_tenant(principal, staff)
    return staff.list_staff(principal.tenant)


def grant(principal: StaffPrincipal, staff: StaffService, staff_id: str, role: Role | str) -> StaffMember:
    _second_factor(principal, StaffAction.MANAGE_STAFF)
    return staff.grant(principal.tenant, staff_id, role, actor=principal.staff_id)


def revoke(principal: StaffPrincipal, staff: StaffService, staff_id: str, role: Role | str) -> StaffMember:
    _second_factor(principal, StaffAction.MANAGE_STAFF)
    return staff.revoke(principal.tenant, staff_id, role, actor=principal.staff_id)


def deactivate(principal: StaffPrincipal, staff: StaffService, staff_id: str) -> StaffMember:
    _second_factor(principal, StaffAction.MANAGE_STAFF)
    return staff.deactivate(principal.tenant, staff_id, actor=principal.staff_id)


# --- access to PI ----------------------------------------------------------------------------------


def view_subject(principal: StaffPrincipal, staff: StaffService, subject_id: str, *,
                 reason: str | None = None) -> SubjectView:
    _second_factor(principal, StaffAction.VIEW_MASKED)
    return staff.view_subject(principal.tenant, principal.staff_id, subject_id, reason=reason)


def unmask(principal: StaffPrincipal, staff: StaffService, subject_id: str, item: str, reason: str) -> UnmaskResult:
    _second_factor(principal, StaffAction.UNMASK)
    return staff.unmask(principal.tenant, principal.staff_id, subject_id, item, reason)


def request_export(principal: StaffPrincipal, staff: StaffService, subject_ids: Sequence[str] | None, *,
                   reason: str, items: Sequence[str] | None = None, unmasked: bool = False) -> AccessRequest:
    _second_factor(principal, StaffAction.REQUEST_EXPORT)
    return staff.request_export(principal.tenant, principal.staff_id, subject_ids, reason=reason, items=items,
                                unmasked=unmasked)


def request_minor_access(principal: StaffPrincipal, staff: StaffService, subject_id: str, *,
                         reason: str) -> AccessRequest:
    _second_factor(principal, StaffAction.REQUEST_MINOR_ACCESS)
    return staff.request_minor_access(principal.tenant, principal.staff_id, subject_id, reason=reason)


def list_requests(principal: StaffPrincipal, staff: StaffService, *, status: str | None = None) -> list[AccessRequest]:
    return staff.list_requests(principal.tenant, principal.staff_id, status=status)


def approve(principal: StaffPrincipal, staff: StaffService, request_id: str, *, note: str | None = None,
            masked_only: bool = False) -> AccessRequest:
    """Approve: a privacy officer who is neither the requester nor the same person (four-eyes, S3/S6)."""
    _second_factor(principal, StaffAction.APPROVE_EXPORT)
    return staff.approve(request_id, principal.staff_id, note=note, masked_only=masked_only, tenant=principal.tenant)


def reject(principal: StaffPrincipal, staff: StaffService, request_id: str, *, note: str | None = None) -> AccessRequest:
    _second_factor(principal, StaffAction.APPROVE_EXPORT)
    return staff.reject(request_id, principal.staff_id, note=note, tenant=principal.tenant)


def export_approved(principal: StaffPrincipal, staff: StaffService, request_id: str, output: Path, *,
                    fmt: str | None = None, overwrite: bool = False) -> ExportResult:
    _second_factor(principal, StaffAction.EXPORT)
    return staff.export(request_id, principal.staff_id, output, fmt=fmt, overwrite=overwrite, tenant=principal.tenant)


# --- alerts ----------------------------------------------------------------------------------------


def list_alerts(principal: StaffPrincipal, monitor: ActivityMonitor, *, status: str | None = "open",
                limit: int = 100) -> list[Alert]:
    _second_factor(principal, StaffAction.VIEW_ALERTS)
    return monitor.alerts(principal.tenant, principal.staff_id, status=status, limit=limit)


def ack_alert(principal: StaffPrincipal, monitor: ActivityMonitor, alert_id: int, *, note: str | None = None) -> Alert:
    _second_factor(principal, StaffAction.ACK_ALERT)
    return monitor.ack(alert_id, principal.staff_id, note=note, tenant=principal.tenant)


# --- rights requests -------------------------------------------------------------------------------


def submit_request(principal: StaffPrincipal, staff: StaffService, rights: RightsService, subject: str,
                   type_: Any, *, subject_kind: str | None = None, channel: str = "app", requester: str | None = None,
                   details: Mapping[str, Any] | None = None, received_at: datetime | None = None) -> str:
    """Accept a request on a person's behalf (at the desk, by phone or letter): privacy officers and customer
    service (受理个人权利请求); the intake is audited with the principal's id. Returns the request id."""
    check(principal, staff, StaffAction.START_RIGHTS_REQUEST)
    rid = rights.submit(principal.tenant, subject, type_, subject_kind=subject_kind, channel=channel,
                        requester=requester, details=details, received_at=received_at)
    with rights.sessions() as s:  # the intake itself records "requester": who took it is recorded here
        rights.audit.record_in(s, principal.tenant, principal.staff_id, AuditAction.RIGHTS_REQUEST_STEP,
                               subject=subject, details={"request": rid, "step": "intake", "channel": channel})
        s.commit()
    return rid


def show_request(principal: StaffPrincipal, staff: StaffService, rights: RightsService,
                 request_id: str) -> RequestView:
    """A request's state, deadline, steps and history (it names the subject): the staff who take requests
    (受理) — privacy officers and customer service, as in the request queue."""
    check(principal, staff, StaffAction.START_RIGHTS_REQUEST)
    return rights.show(principal.tenant, request_id)


def rights_requests(principal: StaffPrincipal, staff: StaffService, rights: RightsService, *,
                    open_only: bool = False, subject: str | None = None, limit: int = 1000) -> list[RequestView]:
    """The tenant's rights requests (each names its subject): privacy officers and customer service."""
    check(principal, staff, StaffAction.START_RIGHTS_REQUEST)
    return rights.requests(principal.tenant, open_only=open_only, subject=subject, limit=limit)


def overdue_requests(principal: StaffPrincipal, staff: StaffService, rights: RightsService,
                     today: date | None = None, *, soon_days: int = 3) -> list[tuple[RequestView, str]]:
    """Open requests overdue or due within ``soon_days`` working days: privacy officers and customer service."""
    check(principal, staff, StaffAction.START_RIGHTS_REQUEST)
    return rights.overdue(principal.tenant, today, soon_days=soon_days)


def confirm_cancellation(principal: StaffPrincipal, staff: StaffService, rights: RightsService,
                         request_id: str) -> list[str]:
    """Record the person's confirmation of their cancellation, taken by a privacy officer on their behalf
    (irreversible); returns the prerequisites a person still has to confirm."""
    check(principal, staff, StaffAction.HANDLE_RIGHTS_REQUEST)
    return rights.confirm(principal.tenant, request_id, principal.staff_id)


def withdraw_request(principal: StaffPrincipal, staff: StaffService, rights: RightsService, request_id: str) -> None:
    """Record the person's withdrawal of their request, on their behalf: a privacy officer."""
    check(principal, staff, StaffAction.HANDLE_RIGHTS_REQUEST)
    rights.withdraw(principal.tenant, request_id, principal.staff_id)


def verify_in_person(principal: StaffPrincipal, staff: StaffService, rights: RightsService, request_id: str,
                     how: str) -> None:
    """Record that the principal verified the requester's identity in person or from documents: privacy
    officers and customer service (受理个人权利请求)."""
    check(principal, staff, StaffAction.START_RIGHTS_REQUEST)
    rights.mark_verified(principal.tenant, request_id, principal.staff_id, how)


def complete_manual_step(principal: StaffPrincipal, staff: StaffService, rights: RightsService, request_id: str,
                         note: str, *, step: str | None = None) -> Any:
    """Confirm manual steps of a request (a privacy officer); returns the request's new state."""
    check(principal, staff, StaffAction.HANDLE_RIGHTS_REQUEST)
    state = rights.complete_manual(principal.tenant, request_id, principal.staff_id, note, step=step)
    from yinsi.services.cancellation import end_sessions_if_cancelled

    end_sessions_if_cancelled(rights, principal.tenant, request_id, state)
    return state


def refuse_request(principal: StaffPrincipal, staff: StaffService, rights: RightsService, request_id: str,
                   ground: Any, detail: str) -> None:
    """Refuse a request with its ground and reason (R7): a privacy officer."""
    check(principal, staff, StaffAction.HANDLE_RIGHTS_REQUEST)
    rights.refuse(principal.tenant, request_id, ground, detail, principal.staff_id)


def export_package(principal: StaffPrincipal, staff: StaffService, rights: RightsService, request_id: str,
                   output: Path) -> Path:
    """Decrypt a request's package for delivery to the person: a privacy officer; audited with their id."""
    check(principal, staff, StaffAction.HANDLE_RIGHTS_REQUEST, audit_action=AuditAction.EXPORT)
    return rights.export(principal.tenant, request_id, output, principal.staff_id)


def request_identifiers(principal: StaffPrincipal, staff: StaffService, rights: RightsService, request_id: str,
                        reason: str) -> dict[str, str]:
    """The subject's identifiers for a manual step: a privacy officer with a reason (S3, S4; S6 for minors),
    checked and audited as ``unmask`` by the rights service."""
    _second_factor(principal, StaffAction.UNMASK)
    return rights.identifiers(principal.tenant, request_id, principal.staff_id, reason)


def lift_restriction(principal: StaffPrincipal, staff: StaffService, rights: RightsService, request_id: str,
                     note: str) -> list[str]:
    """Lift the restrictions a completed restriction request placed: a privacy officer."""
    check(principal, staff, StaffAction.HANDLE_RIGHTS_REQUEST, audit_action=AuditAction.PROCESSING_RESTRICTION)
    return rights.lift_restriction(principal.tenant, request_id, principal.staff_id, note)


def legal_holds(principal: StaffPrincipal, staff: StaffService, rights: RightsService,
                request_id: str | None = None) -> list[HoldView]:
    """The legal-hold vault's rows (metadata; their source keys can name a person): a privacy officer."""
    check(principal, staff, StaffAction.HANDLE_RIGHTS_REQUEST)
    return rights.holds(principal.tenant, request_id)


# --- the audit log ---------------------------------------------------------------------------------


def view_audit_log(principal: StaffPrincipal, staff: StaffService, audit: AuditLog, *,
                   limit: int = 20) -> list[AuditEntry]:
    """The newest ``limit`` entries of the principal's tenant's audit log: the roles allowed to read it
    (auditor, security officer; S3). A refusal is itself audited."""
    check(principal, staff, StaffAction.VIEW_AUDIT_LOG, audit_action=AuditAction.OTHER, details="查阅审计日志")
    return audit.tail(principal.tenant, limit)


def record_audit_entry(principal: StaffPrincipal, staff: StaffService, audit: AuditLog, action: AuditAction, *,
                       subject: str | None = None, items: Sequence[str] = (), reason: str | None = None,
                       details: dict[str, Any] | None = None) -> AuditEntry:
    """Record an entry by hand (a configuration change done outside Yinsi, …): any active member of the
    tenant's staff, always as themselves (the actor is the principal's staff id, never a typed name)."""
    _member_of_tenant(principal, staff)
    return audit.append(principal.tenant, principal.staff_id, action, target_subject=subject, items=list(items),
                        reason=reason, details=details)
