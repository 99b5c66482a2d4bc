"""Staff roles, their rights, and the permission check (权限判定). Pure: no database, no clock.

Least privilege (最小权限, RULES S3): each role holds only the actions listed in :data:`RIGHTS`. The
administrator (管理员) configures and never reads PI; operators (操作员: privacy officer, customer service)
work with PI; the auditor (审计员) only reads the audit log. One person never holds administrator together
with an operator role or with auditor, nor auditor together with an operator role (:data:`CONFLICTS`).
PI is shown masked (S4); unmasking needs a stated reason; minors' PI needs an approval (S6); approvals
need a second person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """A staff role (岗位角色)."""

    PRIVACY_OFFICER = "privacy_officer"
    CUSTOMER_SERVICE = "customer_service"
    SECURITY_OFFICER = "security_officer"
    AUDITOR = "auditor"
    ADMINISTRATOR = "administrator"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS: dict[Role, str] = {
    Role.PRIVACY_OFFICER: "个人信息保护负责人",
    Role.CUSTOMER_SERVICE: "客服",
    Role.SECURITY_OFFICER: "安全负责人",
    Role.AUDITOR: "审计员",
    Role.ADMINISTRATOR: "管理员",
}


class StaffAction(StrEnum):
    """What a member of staff may try to do (操作)."""

    VIEW_MASKED = "view_masked"
    UNMASK = "unmask"
    REQUEST_EXPORT = "request_export"
    APPROVE_EXPORT = "approve_export"
    EXPORT = "export"
    REQUEST_MINOR_ACCESS = "request_minor_access"
    APPROVE_MINOR_ACCESS = "approve_minor_access"
    START_RIGHTS_REQUEST = "start_rights_request"
    HANDLE_RIGHTS_REQUEST = "handle_rights_request"
    VIEW_ALERTS = "view_alerts"
    ACK_ALERT = "ack_alert"
    VIEW_AUDIT_LOG = "view_audit_log"
    VERIFY_AUDIT_LOG = "verify_audit_log"
    MANAGE_STAFF = "manage_staff"
    CONFIGURE = "configure"
    MANAGE_INCIDENT = "manage_incident"

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


ACTION_LABELS: dict[StaffAction, str] = {
    StaffAction.VIEW_MASKED: "查看个人信息（掩码）",
    StaffAction.UNMASK: "查看未掩码的个人信息",
    StaffAction.REQUEST_EXPORT: "申请批量导出",
    StaffAction.APPROVE_EXPORT: "审批批量导出",
    StaffAction.EXPORT: "执行批量导出",
    StaffAction.REQUEST_MINOR_ACCESS: "申请访问未成年人个人信息",
    StaffAction.APPROVE_MINOR_ACCESS: "审批访问未成年人个人信息",
    StaffAction.START_RIGHTS_REQUEST: "受理个人权利请求",
    StaffAction.HANDLE_RIGHTS_REQUEST: "处理个人权利请求",
    StaffAction.VIEW_ALERTS: "查看异常行为告警",
    StaffAction.ACK_ALERT: "确认异常行为告警",
    StaffAction.VIEW_AUDIT_LOG: "查阅审计日志",
    StaffAction.VERIFY_AUDIT_LOG: "校验审计日志",
    StaffAction.MANAGE_STAFF: "管理工作人员与角色",
    StaffAction.CONFIGURE: "修改配置（密钥、规则等）",
    StaffAction.MANAGE_INCIDENT: "处置个人信息安全事件（记录、评估、通知、报告）",
}

#: Actions that read a person's PI (masked or not); the administrator, auditor and security officer never.
PI_ACTIONS = frozenset({
    StaffAction.VIEW_MASKED, StaffAction.UNMASK, StaffAction.EXPORT, StaffAction.REQUEST_EXPORT,
    StaffAction.APPROVE_EXPORT, StaffAction.REQUEST_MINOR_ACCESS, StaffAction.APPROVE_MINOR_ACCESS,
    StaffAction.HANDLE_RIGHTS_REQUEST,
})

#: The rights of each role (least privilege). Everything not listed is refused.
RIGHTS: dict[Role, frozenset[StaffAction]] = {
    Role.PRIVACY_OFFICER: frozenset({
        StaffAction.VIEW_MASKED, StaffAction.UNMASK, StaffAction.REQUEST_EXPORT, StaffAction.APPROVE_EXPORT,
        StaffAction.EXPORT, StaffAction.REQUEST_MINOR_ACCESS, StaffAction.APPROVE_MINOR_ACCESS,
        StaffAction.START_RIGHTS_REQUEST, StaffAction.HANDLE_RIGHTS_REQUEST, StaffAction.MANAGE_INCIDENT,
    }),
    Role.CUSTOMER_SERVICE: frozenset({
        StaffAction.VIEW_MASKED, StaffAction.REQUEST_MINOR_ACCESS, StaffAction.START_RIGHTS_REQUEST,
    }),
    Role.SECURITY_OFFICER: frozenset({
        StaffAction.VIEW_ALERTS, StaffAction.ACK_ALERT, StaffAction.VIEW_AUDIT_LOG, StaffAction.VERIFY_AUDIT_LOG,
        StaffAction.MANAGE_INCIDENT,
    }),
    Role.AUDITOR: frozenset({StaffAction.VIEW_AUDIT_LOG, StaffAction.VERIFY_AUDIT_LOG}),
    Role.ADMINISTRATOR: frozenset({StaffAction.MANAGE_STAFF, StaffAction.CONFIGURE}),
}

#: Actions for which an account needs a verified second factor (TOTP): everything that reads a person's PI,
#: the alerts that name people's accounts, devices and IPs (by pseudonyms staff can link back), and managing
#: the staff accounts that can do either.
SECOND_FACTOR_ACTIONS = PI_ACTIONS | frozenset({StaffAction.VIEW_ALERTS, StaffAction.ACK_ALERT,
                                                StaffAction.MANAGE_STAFF})


def needs_second_factor(roles: Iterable[Role | str]) -> bool:
    """Whether an account holding ``roles`` must log in with a second factor: derived from :data:`RIGHTS`,
    true as soon as one role may do one of :data:`SECOND_FACTOR_ACTIONS`."""
    return any(RIGHTS[Role(r)] & SECOND_FACTOR_ACTIONS for r in roles)


#: Role kinds for the separation of duties (三权分立: 管理员、操作员、审计员).
OPERATOR_ROLES = frozenset({Role.PRIVACY_OFFICER, Role.CUSTOMER_SERVICE})

#: Pairs of roles one person may not hold together (S3).
CONFLICTS: frozenset[frozenset[Role]] = frozenset(
    {frozenset({Role.ADMINISTRATOR, r}) for r in (*OPERATOR_ROLES, Role.AUDITOR)}
    | {frozenset({Role.AUDITOR, r}) for r in OPERATOR_ROLES}
)


def parse_role(value: str) -> Role:
    """A role from its English name or its Chinese label; ``ValueError`` with the choices otherwise."""
    text = value.strip()
    for role in Role:
        if text in (role.value, role.label):
            return role
    choices = "、".join(f"{r.value}（{r.label}）" for r in Role)
    raise ValueError(f"未知角色 {value!r}；可选：{choices}")


def role_conflicts(roles: Iterable[Role]) -> list[tuple[Role, Role]]:
    """The pairs of ``roles`` that one person may not hold together, in a stable order."""
    held = sorted(set(roles), key=list(Role).index)
    return [(a, b) for i, a in enumerate(held) for b in held[i + 1:] if frozenset({a, b}) in CONFLICTS]


@dataclass(frozen=True)
class StaffMember:
    """A member of a tenant's staff, as the permission check sees them."""

    tenant: str
    staff_id: str
    name: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    active: bool = True
    person_id: str | None = None  # the person behind the account (several accounts may share one)

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def role_labels(self) -> str:
        return "、".join(r.label for r in sorted(self.roles, key=list(Role).index)) or "无角色"


@dataclass(frozen=True)
class SubjectContext:
    """What the permission check needs to know about the target of an action.

    ``tenant``: the tenant whose data is touched. ``minor``: the subject is a minor under the tenant's
    rule (always under 14). ``minor_approval``: the id of an approved, unexpired ``minor_access`` request
    of this staff member for this subject (or the approved export that covers it). ``requester``: who made
    the request being approved or used; ``approver``: who approved it; ``requester_person`` and
    ``approver_person``: the persons behind those accounts (four-eyes means two people, not two accounts).
    ``reason``: the stated reason.
    """

    tenant: str
    subject: str | None = None
    minor: bool = False
    minor_approval: str | None = None
    requester: str | None = None
    approver: str | None = None
    reason: str | None = None
    requester_person: str | None = None
    approver_person: str | None = None


@dataclass(frozen=True)
class Authorization:
    """The outcome of :func:`authorize`: ``allowed``, a reason in Chinese, and the rule it rests on."""

    allowed: bool
    reason_zh: str
    rule: str
    action: StaffAction
    staff_id: str | None = None

    def __bool__(self) -> bool:
        return self.allowed

    def to_dict(self) -> dict[str, object]:
        return {"allowed": self.allowed, "reason": self.reason_zh, "rule": self.rule, "action": self.action.value,
                "staff": self.staff_id}


_APPROVALS = {StaffAction.APPROVE_EXPORT, StaffAction.APPROVE_MINOR_ACCESS}
_MINOR_GUARDED = {StaffAction.VIEW_MASKED, StaffAction.UNMASK}


def authorize(staff: StaffMember | None, action: StaffAction | str, ctx: SubjectContext) -> Authorization:
    """May ``staff`` do ``action`` on ``ctx``? Every refusal names its reason and rule (S3, S4, S6)."""
    act = StaffAction(action)
    sid = staff.staff_id if staff else None

    def deny(reason: str, rule: str = "S3") -> Authorization:
        return Authorization(False, reason, rule, act, sid)

    if staff is None:
        return deny(f"不是租户 {ctx.tenant} 的工作人员，不能{act.label}（最小权限）")
    if staff.tenant != ctx.tenant:
        return deny(f"工作人员 {staff.staff_id} 属于租户 {staff.tenant}，不能访问租户 {ctx.tenant} 的数据（租户隔离）")
    if not staff.active:
        return deny(f"工作人员 {staff.staff_id} 已停用，不能{act.label}")
    if not any(act in RIGHTS[r] for r in staff.roles):
        if act in PI_ACTIONS and Role.ADMINISTRATOR in staff.roles:
            why = "管理员负责配置，不得查看个人信息，无论是否掩码（管理员、操作员、审计员三权分立）"
        elif act in PI_ACTIONS and staff.roles & {Role.AUDITOR, Role.SECURITY_OFFICER}:
            why = f"{staff.role_labels}不得查看个人信息（最小权限）"
        else:
            why = f"{staff.role_labels}无权{act.label}（最小权限）"
        return deny(f"{staff.staff_id}：{why}")
    if act is StaffAction.UNMASK and not (ctx.reason or "").strip():
        return deny("查看未掩码的个人信息须说明事由", "S4")
    if act in _MINOR_GUARDED and ctx.minor and not ctx.minor_approval:
        return deny("访问未成年人的个人信息须先经个人信息保护负责人审批（申请 minor_access）", "S6")
    four_eyes_rule = "S6" if act is StaffAction.APPROVE_MINOR_ACCESS else "S3"
    if act in _APPROVALS and ctx.requester == staff.staff_id:
        return deny("不得审批本人提出的申请：须由另一名个人信息保护负责人审批", four_eyes_rule)
    if act in _APPROVALS and staff.person_id is not None and ctx.requester_person == staff.person_id:
        return deny(f"不得审批本人提出的申请：审批账号 {staff.staff_id} 与申请账号 {ctx.requester} 属于同一人，"
                    f"双人审批须由另一人完成（{four_eyes_rule}）", four_eyes_rule)
    if act is StaffAction.EXPORT:
        if ctx.approver is None:
            return deny("批量导出须经另一名个人信息保护负责人审批后才能执行")
        if ctx.approver == staff.staff_id or (staff.person_id is not None and ctx.approver_person == staff.person_id):
            return deny("审批人不能执行本人审批的导出（双人审批须由两人完成，S3）")
        if ctx.requester != staff.staff_id:
            return deny("只有申请人可以执行已批准的导出")
    if ctx.minor and act in _MINOR_GUARDED:
        return Authorization(True, f"允许：已获审批（{ctx.minor_approval}）访问未成年人的个人信息", "S6", act, sid)
    rule = "S4" if act in (StaffAction.VIEW_MASKED, StaffAction.UNMASK) else "S3"
    return Authorization(True, f"允许：{staff.role_labels}可{act.label}", rule, act, sid)
