"""The staff desk (工作台): the reading use cases of the console and ``/api/v1/staff/`` — the rights-request
queue on the working-day calendar, a request's full story, the audit log — and running a request.

Like :mod:`yinsi.staff.actions` (whose role checks these reuse), every function takes the authenticated
:class:`~yinsi.auth.principals.StaffPrincipal`, acts on its tenant only and checks the account's roles as
they are now (S3); refusals are audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta, timezone
from pathlib import Path
from typing import Any

from yinsi.audit import AuditAction
from yinsi.auth.principals import StaffPrincipal
from yinsi.domain.deadlines import CalendarNotCovered, status, working_days_left
from yinsi.domain.rights import REQUEST_ZH, STATE_ZH, RequestType, State
from yinsi.staff import actions
from yinsi.staff.errors import InvalidInput, NotFound, RequestStateError
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
    from yinsi.services.cancellation import end_sessions_if_cancelled

    end_sessions_if_cancelled(rights, principal.tenant, request_id, state)
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


# --- the console (/console/) -----------------------------------------------------------------------------------------
#: The evidence file a member of staff may attach to a manual step (a scan of a receipt, a screenshot).
EVIDENCE_MAX_BYTES = 2 * 1024 * 1024
EVIDENCE_FIELD = "rights.evidence"


def allowed_actions(principal: StaffPrincipal, staff: StaffService) -> frozenset[StaffAction]:
    """What the principal may do now: the account's roles as they are in the database (a role revoked after
    login counts at once), and only with a second factor what needs one. The console shows what this allows;
    every action is still checked again when it is done."""
    from yinsi.staff.roles import SECOND_FACTOR_ACTIONS, SubjectContext, authorize

    member = staff.get_staff(principal.tenant, principal.staff_id)
    ctx = SubjectContext(principal.tenant, reason="-")
    return frozenset(a for a in StaffAction if authorize(member, a, ctx)
                     and (principal.mfa or a not in SECOND_FACTOR_ACTIONS))


def complete_with_evidence(principal: StaffPrincipal, staff: StaffService, rights: Any, request_id: str, note: str, *,
                           step: str | None = None, reference: str | None = None,
                           evidence: bytes | None = None) -> State:
    """Confirm manual steps with their evidence (a privacy officer): the note, and a reference (a ticket or
    receipt number) or an uploaded file. The file may show the person's data, so it is kept encrypted with the
    tenant's data key beside the request's packages (``<exports>/evidence/<tenant>/<request>/<sha256>.bin``,
    mode 0600) and the confirmation names it by size and SHA-256 — the step's note is what the person and the
    audit log see, never the file's name or content."""
    import hashlib

    from yinsi.rights.export import write_private

    actions.check(principal, staff, StaffAction.HANDLE_RIGHTS_REQUEST)
    text = " ".join(note.split())
    if not text:
        raise InvalidInput("请说明人工处理的结果")
    parts = [text]
    ref = " ".join((reference or "").split())
    if ref:
        parts.append(f"凭证编号：{ref}")
    if evidence:
        if len(evidence) > EVIDENCE_MAX_BYTES:
            raise InvalidInput(f"凭证文件过大（上限 {EVIDENCE_MAX_BYTES // (1024 * 1024)} MB）")
        digest = hashlib.sha256(evidence).hexdigest()
        v = rights.show(principal.tenant, request_id)  # the request must exist in the principal's tenant
        if State(v.state) is not State.WAITING_MANUAL:
            raise RequestStateError(f"请求处于「{STATE_ZH[State(v.state)]}」状态，没有等待人工处理的步骤")
        token = rights.audit.ring.cipher(principal.tenant).encrypt_bytes(EVIDENCE_FIELD, evidence)
        write_private(Path(rights.exports_dir) / "evidence" / principal.tenant / v.id / f"{digest}.bin", token)
        parts.append(f"凭证文件已加密存档（{len(evidence)} 字节，SHA-256 {digest[:16]}）")
    state: State = actions.complete_manual_step(principal, staff, rights, request_id, "；".join(parts), step=step)
    return state


# --- policy versions ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyPreview:
    """A declaration checked before publishing: its label, lint findings, and the diff against the latest
    published version (``None`` for a tenant's first version). ``error``: why it cannot be published."""

    tenant: str | None
    label: str | None
    findings: list[Any]
    diff: dict[str, Any] | None
    previous: str | None
    exists: bool
    error: str | None = None

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def publishable(self) -> bool:
        return self.error is None and not self.exists


def _member(principal: StaffPrincipal, staff: StaffService) -> None:
    """Any active member of the tenant's staff (policies are public; the console shows them to all staff)."""
    actions.list_staff(principal, staff)


def policy_versions(principal: StaffPrincipal, staff: StaffService, url: str | None) -> list[Any]:
    """The tenant's published versions, newest last."""
    from yinsi.services.publishing import history

    _member(principal, staff)
    return history(principal.tenant, url)


def policy_version(principal: StaffPrincipal, staff: StaffService, url: str | None,
                   label: str) -> tuple[Any, list[Any]]:
    """One archived version and the lint findings of its declaration as the linter sees it today."""
    from yinsi.declarations import parse_declaration
    from yinsi.domain.lint import lint_declaration
    from yinsi.services.publishing import PublishError, get_version

    _member(principal, staff)
    try:
        archived = get_version(principal.tenant, label, url)
    except PublishError as exc:
        raise NotFound(str(exc)) from None
    decl = parse_declaration(archived.declaration_yaml, f"{label}.yaml")
    return archived, lint_declaration(decl)


def _diff_view(old: Any, new: Any) -> dict[str, Any]:
    """Two declarations' differences for staff: the plain Chinese groups people see (major changes first), the
    consents to renew (PIPL 14), and every changed element path with its criteria."""
    from yinsi.domain.changes import diff_declarations
    from yinsi.render.changes import describe_changes, summary

    diff = diff_declarations(old, new)
    groups = describe_changes(diff, old, new)
    return {"old": old.version.label, "new": new.version.label, "major": diff.major, "criteria": diff.criteria_met(),
            "summary": summary(diff, groups), "groups": [g.to_json() for g in groups],
            "reconsent": [r.to_json() for r in diff.reconsent], "changes": [c.to_json() for c in diff.changes]}


def policy_diff(principal: StaffPrincipal, staff: StaffService, url: str | None, old: str, new: str) -> dict[str, Any]:
    """What changed between two published versions of the tenant (major changes and consents to renew)."""
    from yinsi.declarations import parse_declaration
    from yinsi.services.publishing import PublishError, get_version

    _member(principal, staff)
    try:
        a, b = get_version(principal.tenant, old, url), get_version(principal.tenant, new, url)
    except PublishError as exc:
        raise NotFound(str(exc)) from None
    return _diff_view(parse_declaration(a.declaration_yaml, f"{old}.yaml"),
                      parse_declaration(b.declaration_yaml, f"{new}.yaml"))


def preview_policy(principal: StaffPrincipal, staff: StaffService, url: str | None, text: str) -> PolicyPreview:
    """Check an uploaded declaration before publishing (an administrator, CONFIGURE): parse, lint, and diff it
    against the tenant's latest version. A declaration of another tenant is refused (tenant isolation)."""
    from yinsi.declarations import DeclarationError, parse_declaration
    from yinsi.domain.lint import lint_declaration
    from yinsi.services.publishing import get_version, history

    actions.check(principal, staff, StaffAction.CONFIGURE, audit_action=AuditAction.OTHER)
    try:
        decl = parse_declaration(text, "upload.yaml")
    except DeclarationError as exc:
        return PolicyPreview(None, None, [], None, None, False, error=_declaration_error(exc))
    if decl.tenant != principal.tenant:
        return PolicyPreview(decl.tenant, decl.version.label, [], None, None, False,
                             error=f"该声明属于租户 {decl.tenant}，不能发布到本租户 {principal.tenant}")
    versions = history(principal.tenant, url)
    label = decl.version.label
    exists = any(v.label == label for v in versions)
    previous = next((v.label for v in reversed(versions) if v.label != label), None)
    diff = None
    if previous is not None:
        old = get_version(principal.tenant, previous, url)
        diff = _diff_view(parse_declaration(old.declaration_yaml, f"{previous}.yaml"), decl)
    error = f"版本 {label} 已发布；请在声明中使用新的版本标签" if exists else None
    return PolicyPreview(decl.tenant, label, lint_declaration(decl), diff, previous, exists, error=error)


def publish_policy(principal: StaffPrincipal, staff: StaffService, url: str | None, text: str) -> Any:
    """Publish an uploaded declaration as the principal (an administrator): the same checks as the preview,
    then :func:`yinsi.services.publishing.publish` (lint, render, archive, audit as the member)."""
    import tempfile

    from yinsi.declarations import DeclarationError
    from yinsi.services.publishing import PublishError, publish

    preview = preview_policy(principal, staff, url, text)
    if preview.error is not None:
        raise InvalidInput(preview.error)
    with tempfile.TemporaryDirectory(prefix="yinsi-publish-") as tmp:
        path = Path(tmp) / "declaration.yaml"
        path.write_text(text, encoding="utf-8", newline="")
        try:
            return publish(path, url=url, by=principal.staff_id)
        except DeclarationError as exc:
            raise InvalidInput(_declaration_error(exc)) from None
        except PublishError as exc:
            raise InvalidInput(str(exc)) from None


def _declaration_error(exc: Exception) -> str:
    problems = getattr(exc, "problems", None)
    if problems:
        return "声明文件无效：" + "；".join(
            (f"第 {p.line} 行 " if getattr(p, "line", None) else "") + f"{getattr(p, 'path', '') or '<根>'}："
            f"{getattr(p, 'message', p)}" for p in list(problems)[:5])
    return f"声明文件无效：{exc}"
