"""The staff desk (工作台): the reading use cases of the console and ``/api/v1/staff/`` — the rights-request
queue on the working-day calendar, a request's full story, the audit log — and running a request.

Like :mod:`yinsi.staff.actions` (whose role checks these reuse), every function takes the authenticated
:class:`~yinsi.auth.principals.StaffPrincipal`, acts on its tenant only and checks the account's roles as
they are now (S3); refusals are audited.
"""

from __future__ import annotations

from datetime import date, timedelta, timezone
from typing import Any

from yinsi.audit import AuditAction
from yinsi.auth.principals import StaffPrincipal
from yinsi.domain.deadlines import CalendarNotCovered, status, working_days_left
from yinsi.domain.rights import REQUEST_ZH, STATE_ZH, RequestType, State
from yinsi.staff import actions
from yinsi.staff.roles import StaffAction
from yinsi.staff.service import StaffService

_BEIJING = timezone(timedelta(hours=8))
DEADLINE_STATUS_ZH = {"on_track": "按期处理中", "due_soon": "即将到期", "overdue": "已逾期"}
QUEUE_VIEWS = ("open", "overdue", "due_soon", "waiting_manual")


def _today(rights: Any) -> date:
    today: date = rights.clock().astimezone(_BEIJING).date()
    return today


def _deadline(rights: Any, due: date, today: date, soon_days: int) -> tuple[str, int | None]:
    try:
        st = status(due, today, rights.calendar, soon=soon_days).value
        left = working_days_left(due, today, rights.calendar) if today <= due else 0
    except CalendarNotCovered:  # outside the holiday data's years: a person must look at it (D2)
        st, left = ("overdue" if due < today else "due_soon"), None
    return st, left


def _row(v: Any, deadline: str, left: int | None) -> dict[str, Any]:
    rtype, state = RequestType(v.type), State(v.state)
    return {"id": v.id, "type": rtype.value, "type_zh": REQUEST_ZH[rtype], "state": state.value,
            "state_zh": STATE_ZH[state], "subject_kind": v.subject_kind, "subject": v.subject,
            "received_at": v.received_at.isoformat(), "due_date": v.due_date.isoformat(),
            "deadline_status": deadline, "deadline_status_zh": DEADLINE_STATUS_ZH[deadline],
            "working_days_left": left, "deadline_provisional": v.deadline_provisional}


def queue(principal: StaffPrincipal, staff: StaffService, rights: Any, *, view: str = "open",
          soon_days: int = 3) -> dict[str, Any]:
    """The open requests of the principal's tenant, oldest first, each with its deadline status on the
    working-day calendar (``overdue``, ``due_soon`` within ``soon_days`` working days, ``on_track``);
    ``view`` narrows to ``overdue``, ``due_soon`` or ``waiting_manual`` (a manual step waits for a person).
    ``counts`` always covers all open requests (the dashboard)."""
    if view not in QUEUE_VIEWS:
        raise ValueError(f"未知的队列视图（可选：{'、'.join(QUEUE_VIEWS)}）")
    actions.check(principal, staff, StaffAction.START_RIGHTS_REQUEST)
    today = _today(rights)
    rows = []
    for v in rights.requests(principal.tenant, open_only=True):
        st, left = _deadline(rights, v.due_date, today, soon_days)
        rows.append(_row(v, st, left))
    counts = {"open": len(rows), "overdue": sum(r["deadline_status"] == "overdue" for r in rows),
              "due_soon": sum(r["deadline_status"] == "due_soon" for r in rows),
              "waiting_manual": sum(r["state"] == State.WAITING_MANUAL.value for r in rows)}
    if view in ("overdue", "due_soon"):
        rows = [r for r in rows if r["deadline_status"] == view]
    elif view == "waiting_manual":
        rows = [r for r in rows if r["state"] == State.WAITING_MANUAL.value]
    return {"today": today.isoformat(), "view": view, "counts": counts, "requests": rows}


def story(principal: StaffPrincipal, staff: StaffService, rights: Any, request_id: str) -> dict[str, Any]:
    """A request's full story: its state and deadline, every transition (who, when, why), every step with
    its read-back result, the manual steps still waiting, the refusal or result. Subjects keyed by PI are
    shown masked (S4); the package stays encrypted."""
    actions.check(principal, staff, StaffAction.START_RIGHTS_REQUEST)
    v = rights.show(principal.tenant, request_id)
    st, left = _deadline(rights, v.due_date, _today(rights), 3)
    out: dict[str, Any] = v.to_json()
    result = dict(out.get("result") or {})
    if "package" in result:
        result["package"] = "encrypted"
    out["result"] = result or None
    out.update({"type_zh": REQUEST_ZH[RequestType(v.type)], "deadline_status": st if State(v.state) in _OPEN else None,
                "working_days_left": left if State(v.state) in _OPEN else None,
                "manual_waiting": [s for s in v.steps if s["status"] == "manual_pending"]})
    return out


_OPEN = frozenset({State.UNVERIFIED, State.VERIFIED, State.CONFIRMED, State.IN_PROGRESS, State.WAITING_MANUAL,
                   State.ERROR})


def run_request(principal: StaffPrincipal, staff: StaffService, rights: Any, request_id: str) -> State:
    """Execute a verified (for a cancellation: confirmed) request now, as the principal: a privacy officer."""
    actions.check(principal, staff, StaffAction.HANDLE_RIGHTS_REQUEST)
    state: State = rights.run(principal.tenant, request_id, principal.staff_id)
    return state


def package_bytes(principal: StaffPrincipal, staff: StaffService, rights: Any, request_id: str) -> tuple[str, bytes]:
    """The decrypted package of a request for handing over (a privacy officer, audited with their id), read
    back from a private temporary directory that is removed at once."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="yinsi-export-") as tmp:
        out = actions.export_package(principal, staff, rights, request_id, Path(tmp) / "package.zip")
        data = out.read_bytes()
    return f"{principal.tenant}-request-{request_id[:8]}.zip", data


def audit_entries(principal: StaffPrincipal, staff: StaffService, audit: Any, *, limit: int = 50) -> list[dict[str, Any]]:
    """The newest entries of the tenant's audit log (subjects pseudonymised): auditors and security officers."""
    actions.check(principal, staff, StaffAction.VIEW_AUDIT_LOG, audit_action=AuditAction.OTHER)
    return [e.to_dict() for e in audit.tail(principal.tenant, limit)]


def audit_verify(principal: StaffPrincipal, staff: StaffService, audit: Any) -> dict[str, Any]:
    """Recompute the tenant's hash chain, Merkle roots and checkpoint signatures; the first bad entry first."""
    actions.check(principal, staff, StaffAction.VERIFY_AUDIT_LOG, audit_action=AuditAction.OTHER)
    result = audit.verify(principal.tenant)
    return {"ok": result.ok, "describe": result.describe(), **result.to_dict()}
