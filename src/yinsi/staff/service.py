"""Staff access to personal information (工作人员访问个人信息): staff and roles, masked views, unmasking
with a reason, bulk export with a second person's approval, and approved access to minors' PI.

Every decision, allowed or refused, is written to the audit log: who (staff ID), what (PI item IDs), why
(the stated reason), about whom (the subject's keyed pseudonym, never a phone number or ID number) and
under which rule (S3 least privilege, S4 masking, S6 minors). Refusals raise :class:`AccessDenied`.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from yinsi.audit import AuditAction, AuditLog, PIInAuditEntry, find_pi
from yinsi.audit.model import AuditEntry
from yinsi.csv_safe import safe_row
from yinsi.protect.blind_index import canonical_kind
from yinsi.protect.identifiers import FIELD as IDENTIFIER_FIELD
from yinsi.protect.keys import KeyRing
from yinsi.protect.masking import mask_value
from yinsi.staff.errors import AccessDenied, InvalidInput, NotFound, RequestStateError, SeparationOfDuties, StaffError
from yinsi.staff.roles import (
    Authorization,
    Role,
    StaffAction,
    StaffMember,
    SubjectContext,
    authorize,
    parse_role,
    role_conflicts,
)
from yinsi.storage.consent_tables import BIRTH_DATE_FIELD, SUBJECT_FIELD, Subject
from yinsi.storage.keys_tables import SubjectIdentifierRow
from yinsi.storage.repository import PolicyVersionRepository
from yinsi.storage.staff_tables import REASON_LEN, AccessRequestRow, StaffPersonRow, StaffRoleRow, StaffRow
from yinsi.storage.tables import Tenant

__all__ = [
    "ITEMS",
    "AccessRequest",
    "ConsentReporter",
    "ExportResult",
    "PIItem",
    "RequestKind",
    "RequestStatus",
    "StaffService",
    "SubjectView",
    "UnmaskResult",
    "ViewItem",
    "load_staff",
    "resolve_item",
]

BEIJING = timezone(timedelta(hours=8), "北京时间")
#: Under this age a person's PI is always a minor's for staff access (PIPL 28, 31; RULES M1, S6).
MINOR_AGE = 14
STAFF_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
DEFAULT_PENDING_TTL = timedelta(days=7)
DEFAULT_EXPORT_TTL = timedelta(hours=24)
DEFAULT_MINOR_ACCESS_TTL = timedelta(hours=24)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RequestKind(StrEnum):
    """Kinds of approval (审批类型)."""

    EXPORT = "export"  # bulk export, masked
    UNMASK_BULK = "unmask_bulk"  # bulk export in clear
    MINOR_ACCESS = "minor_access"  # one minor's PI (S6)


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    USED = "used"
    EXPIRED = "expired"


KIND_LABELS: dict[str, str] = {RequestKind.EXPORT: "批量导出（掩码）", RequestKind.UNMASK_BULK: "批量导出（不掩码）",
                               RequestKind.MINOR_ACCESS: "访问未成年人个人信息"}
STATUS_LABELS: dict[str, str] = {RequestStatus.PENDING: "待审批", RequestStatus.APPROVED: "已批准",
                                 RequestStatus.REJECTED: "已驳回", RequestStatus.USED: "已使用",
                                 RequestStatus.EXPIRED: "已过期"}


@dataclass(frozen=True)
class PIItem:
    """A PI item Yinsi itself holds about a subject: an encrypted identifier kind, or the birth date."""

    key: str  # identifier kind (subject_identifiers.kind) or "birth_date"
    item_id: str  # the taxonomy ID used in audit entries
    label: str
    mask_type: str


ITEMS: dict[str, PIItem] = {p.key: p for p in (
    PIItem("mobile_phone", "contact.mobile", "手机号码", "mobile_phone"),
    PIItem("id_card", "identity.id_card_number", "身份证号码", "id_card"),
    PIItem("email", "contact.email", "电子邮箱地址", "email"),
    PIItem("bank_card", "property.bank_card", "银行卡号", "bank_card"),
    PIItem("passport", "identity.passport_number", "护照号码", "passport"),
    PIItem("text", "other.identifier", "其他标识", "text"),
    PIItem("birth_date", "basic.birth_date", "出生日期", "birth_date"),
)}


def resolve_item(name: str) -> PIItem:
    """An item by identifier kind (``mobile_phone``, alias ``phone``), item ID (``contact.mobile``) or
    Chinese label (``手机号码``); :class:`InvalidInput` listing the choices otherwise."""
    text = name.strip()
    for item in ITEMS.values():
        if text in (item.key, item.item_id, item.label):
            return item
    with contextlib.suppress(ValueError):
        return ITEMS[canonical_kind(text)]
    choices = "、".join(f"{i.key}（{i.label}）" for i in ITEMS.values())
    raise InvalidInput(f"未知的个人信息项 {name!r}；可选：{choices}")


def _mask_birth(value: date) -> str:
    return f"{value.year:04d}-**-**"


def age_on(birth: date, today: date) -> int:
    """Full years of age (周岁) on ``today``."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


class ConsentReporter(Protocol):
    """What the masked view asks of the consent service (``ConsentService`` fits)."""

    def report(self, tenant: str, subject: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ViewItem:
    item: str  # the item ID
    key: str
    label: str
    value: str
    masked: bool

    def to_dict(self) -> dict[str, Any]:
        return {"item": self.item, "key": self.key, "label": self.label, "value": self.value, "masked": self.masked}


@dataclass(frozen=True)
class SubjectView:
    """What a member of staff sees of a person: masked values, consents and the 双清单 (when available)."""

    tenant: str
    subject_id: str
    pseudonym: str
    minor: bool
    age: int | None
    items: tuple[ViewItem, ...]
    report: dict[str, Any] | None
    audit_seq: int
    authorization: Authorization

    def to_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "subject": self.subject_id, "pseudonym": self.pseudonym, "minor": self.minor,
                "age": self.age, "items": [i.to_dict() for i in self.items], "report": self.report,
                "audit_seq": self.audit_seq, "rule": self.authorization.rule}


@dataclass(frozen=True)
class UnmaskResult:
    tenant: str
    subject_id: str
    pseudonym: str
    item: PIItem
    value: str
    audit_seq: int

    def to_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "subject": self.subject_id, "pseudonym": self.pseudonym,
                "item": self.item.item_id, "key": self.item.key, "label": self.item.label, "value": self.value,
                "audit_seq": self.audit_seq}


@dataclass(frozen=True)
class AccessRequest:
    """An approval (审批) as staff see it: subjects only as pseudonyms."""

    id: str
    tenant: str
    kind: str
    requester: str
    subject: str | None
    subject_count: int
    minor_count: int
    items: tuple[str, ...]
    unmasked: bool
    reason: str
    status: str
    approver: str | None
    decision_note: str | None
    created_at: datetime
    decided_at: datetime | None
    expires_at: datetime
    used_at: datetime | None

    @classmethod
    def from_row(cls, row: AccessRequestRow) -> AccessRequest:
        return cls(row.id, row.tenant_id, row.kind, row.requester, row.subject, row.subject_count, row.minor_count,
                   tuple(json.loads(row.items)), row.unmasked, row.reason, row.status, row.approver, row.decision_note,
                   row.created_at, row.decided_at, row.expires_at, row.used_at)

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    def to_dict(self) -> dict[str, Any]:
        def t(v: datetime | None) -> str | None:
            return None if v is None else v.astimezone(UTC).isoformat()

        return {"id": self.id, "tenant": self.tenant, "kind": self.kind, "requester": self.requester,
                "subject": self.subject, "subject_count": self.subject_count, "minor_count": self.minor_count,
                "items": list(self.items), "unmasked": self.unmasked, "reason": self.reason, "status": self.status,
                "approver": self.approver, "decision_note": self.decision_note, "created_at": t(self.created_at),
                "decided_at": t(self.decided_at), "expires_at": t(self.expires_at), "used_at": t(self.used_at)}


@dataclass(frozen=True)
class ExportResult:
    request_id: str
    path: Path
    format: str
    rows: int
    masked: bool
    sha256: str
    audit_seq: int

    def to_dict(self) -> dict[str, Any]:
        return {"request": self.request_id, "path": str(self.path), "format": self.format, "rows": self.rows,
                "masked": self.masked, "sha256": self.sha256, "audit_seq": self.audit_seq}


@dataclass
class _Facts:
    """What Yinsi holds about one subject (identifiers still encrypted)."""

    exists: bool = False
    birth_date: date | None = None
    identifiers: dict[str, bytes] = field(default_factory=dict)


def _new_request_id() -> str:
    # base32 (letters and digits 2-7): never looks like a phone or ID number to the audit log's PI guard
    return "req_" + base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def _member(row: StaffRow, roles: Iterable[str]) -> StaffMember:
    return StaffMember(row.tenant_id, row.staff_id, row.name, frozenset(Role(r) for r in roles), row.active,
                       row.person_id or row.staff_id)


def new_person_id() -> str:
    """A fresh person id (base32: never looks like a phone or ID number)."""
    return "p_" + base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def person_roles(s: Session, tenant: str, person_id: str, *, without: str | None = None) -> set[Role]:
    """The roles held by the active accounts of one person (except account ``without``)."""
    q = (select(StaffRoleRow.role).join(StaffRow, (StaffRow.tenant_id == StaffRoleRow.tenant_id)
                                         & (StaffRow.staff_id == StaffRoleRow.staff_id))
         .where(StaffRow.tenant_id == tenant, StaffRow.person_id == person_id, StaffRow.active.is_(True)))
    if without is not None:
        q = q.where(StaffRow.staff_id != without)
    return {Role(r) for r in s.scalars(q)}


def load_staff(s: Session, tenant: str, staff_id: str) -> StaffMember | None:
    """The member of ``tenant``'s staff with their roles, or ``None``."""
    row = s.get(StaffRow, (tenant, staff_id))
    if row is None:
        return None
    roles = s.scalars(select(StaffRoleRow.role).where(StaffRoleRow.tenant_id == tenant,
                                                      StaffRoleRow.staff_id == staff_id))
    return _member(row, roles)


def _roles(values: Iterable[Role | str]) -> set[Role]:
    out: set[Role] = set()
    for v in values:
        try:
            out.add(v if isinstance(v, Role) else parse_role(v))
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    return out


def _clean_reason(reason: str | None, what: str = "事由") -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidInput(f"须填写{what}")
    if len(text) > REASON_LEN:
        raise InvalidInput(f"{what}过长：最多 {REASON_LEN} 个字符")
    if find_pi(text):
        raise InvalidInput(f"{what}中不得包含个人信息（如手机号码、身份证号码、电子邮箱），请改写")
    return text


class StaffService:
    """Staff, roles and staff access to PI over Yinsi's database.

    ``sessions`` is a session factory of Yinsi's database, ``audit`` the audit log on it, ``ring`` the key
    ring (needed for anything that touches a subject: pseudonyms and decryption). ``consent`` (optional,
    e.g. a ``ConsentService``) adds a person's consents and 双清单 to the masked view. ``clock`` gives the
    current time (tests pass a fixed one).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        audit: AuditLog,
        ring: KeyRing | None = None,
        *,
        consent: ConsentReporter | None = None,
        clock: Callable[[], datetime] = _utcnow,
        pending_ttl: timedelta = DEFAULT_PENDING_TTL,
        export_ttl: timedelta = DEFAULT_EXPORT_TTL,
        minor_access_ttl: timedelta = DEFAULT_MINOR_ACCESS_TTL,
    ) -> None:
        self.sessions = sessions
        self.audit = audit
        self._ring = ring
        self.consent = consent
        self.clock = clock
        self.pending_ttl = pending_ttl
        self.export_ttl = export_ttl
        self.minor_access_ttl = minor_access_ttl
        self._minor_ages: dict[str, int] = {}

    @property
    def ring(self) -> KeyRing:
        if self._ring is None:
            raise StaffError("此操作需要主密钥与租户密钥（KeyRing）；请配置 YINSI_MASTER_KEY 或主密钥文件")
        return self._ring

    def now(self) -> datetime:
        return self.clock()

    # --- staff and roles ---------------------------------------------------------------------------

    def get_staff(self, tenant: str, staff_id: str) -> StaffMember | None:
        """The member of ``tenant``'s staff, or ``None`` (a member of another tenant is ``None`` here)."""
        with self.sessions() as s:
            return self._load_staff(s, tenant, staff_id)

    @staticmethod
    def _load_staff(s: Session, tenant: str, staff_id: str) -> StaffMember | None:
        return load_staff(s, tenant, staff_id)

    def list_staff(self, tenant: str) -> list[StaffMember]:
        with self.sessions() as s:
            rows = s.scalars(select(StaffRow).where(StaffRow.tenant_id == tenant).order_by(StaffRow.staff_id)).all()
            roles: dict[str, list[str]] = {}
            for sid, role in s.execute(select(StaffRoleRow.staff_id, StaffRoleRow.role)
                                       .where(StaffRoleRow.tenant_id == tenant)):
                roles.setdefault(sid, []).append(role)
            return [_member(r, roles.get(r.staff_id, [])) for r in rows]

    def check(self, tenant: str, staff_id: str, action: StaffAction | str,
              ctx: SubjectContext | None = None) -> Authorization:
        """The permission check for a member of staff by ID (no audit entry)."""
        return authorize(self.get_staff(tenant, staff_id), action, ctx or SubjectContext(tenant))

    def _admin(self, s: Session, tenant: str, actor: str | None) -> StaffMember | None:
        """The acting administrator; ``None`` only while the tenant has no staff (bootstrap)."""
        if actor is None:
            if s.scalar(select(StaffRow.staff_id).where(StaffRow.tenant_id == tenant).limit(1)) is None:
                return None
            raise AccessDenied(Authorization(False, f"租户 {tenant} 已有工作人员：须由已登录的管理员执行（yinsi login）",
                                             "S3", StaffAction.MANAGE_STAFF))
        member = self._load_staff(s, tenant, actor)
        auth = authorize(member, StaffAction.MANAGE_STAFF, SubjectContext(tenant))
        if not auth:
            self._audit_denied(tenant, actor, AuditAction.PERMISSION_CHANGE, None, (), None, auth)
            raise AccessDenied(auth)
        return member

    def add_staff(self, tenant: str, staff_id: str, name: str, roles: Iterable[Role | str] = (), *,
                  actor: str | None = None, person_id: str | None = None, contact_index: str | None = None,
                  credentials: dict[str, Any] | None = None, bootstrap: bool = False) -> StaffMember:
        """Add a member of staff with ``roles``. The first member of a tenant (``actor=None``) must be an
        administrator and nothing else (bootstrap); afterwards an administrator adds staff.

        The account belongs to a person: ``person_id`` (an existing person of the tenant), else the person
        whose contact has the blind index ``contact_index``, else a new person. The separation of duties
        (S3) holds across all the accounts of one person. ``credentials`` (columns of ``staff``: password
        hash, encrypted TOTP secret) are written in the same transaction; ``bootstrap`` lets
        :mod:`yinsi.auth.staff` add the first administrator with credentials to a tenant whose staff
        predates logins (it checks that the tenant has no administrator who can log in)."""
        wanted = _roles(roles)
        if not STAFF_ID_RE.match(staff_id or "") or find_pi(staff_id):
            raise InvalidInput("工作人员标识须为 1 到 64 个字母、数字或 _ . @ -，且不能是手机号码等个人信息")
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise InvalidInput("须填写工作人员姓名（最多 200 个字符）")
        self._check_conflicts(staff_id, wanted)
        now = self.now()
        with self.sessions() as s, s.begin():
            # the tenant row is locked (PostgreSQL, MariaDB) so that two bootstraps cannot both pass the check
            if s.get(Tenant, tenant, with_for_update=bootstrap) is None:
                raise NotFound(f"租户 {tenant} 不存在；请先发布其隐私政策（yinsi policy publish）")
            if bootstrap and self._has_login_administrator(s, tenant):
                raise AccessDenied(Authorization(False, f"租户 {tenant} 已有可登录的管理员：首位管理员只能创建一次", "S3",
                                                 StaffAction.MANAGE_STAFF))
            admin = None if bootstrap else self._admin(s, tenant, actor)
            if admin is None and wanted != {Role.ADMINISTRATOR}:
                raise AccessDenied(Authorization(
                    False, f"租户 {tenant} 还没有工作人员：第一位须为管理员（--role administrator），再由其添加其他人员",
                    "S3", StaffAction.MANAGE_STAFF))
            if s.get(StaffRow, (tenant, staff_id)) is not None:
                raise InvalidInput(f"工作人员 {staff_id} 已存在于租户 {tenant}")
            by = admin.staff_id if admin else None
            person = self._person(s, tenant, name, person_id, contact_index, now)
            self._check_conflicts(staff_id, wanted | person_roles(s, tenant, person))
            s.add(StaffRow(tenant_id=tenant, staff_id=staff_id, name=name, active=True, created_at=now, created_by=by,
                           person_id=person, failed_logins=0, **(credentials or {})))
            s.flush()
            for role in sorted(wanted):
                s.add(StaffRoleRow(tenant_id=tenant, staff_id=staff_id, role=role.value, granted_at=now, granted_by=by))
            self.audit.append_in(s, tenant, by or "system", AuditAction.PERMISSION_CHANGE, details={
                "step": "staff_add", "staff": staff_id, "roles": sorted(r.value for r in wanted),
                "bootstrap": admin is None, "person": person})
        member = self.get_staff(tenant, staff_id)
        assert member is not None
        return member

    @staticmethod
    def _has_login_administrator(s: Session, tenant: str) -> bool:
        """Whether ``tenant`` has an active administrator who can log in (has a password)."""
        found = s.scalar(select(StaffRow.staff_id).join(
            StaffRoleRow, (StaffRoleRow.tenant_id == StaffRow.tenant_id) & (StaffRoleRow.staff_id == StaffRow.staff_id)
        ).where(StaffRow.tenant_id == tenant, StaffRoleRow.role == Role.ADMINISTRATOR.value,
                StaffRow.active.is_(True), StaffRow.password_hash.is_not(None)).limit(1))
        return found is not None

    @staticmethod
    def _person(s: Session, tenant: str, name: str, person_id: str | None, contact_index: str | None,
                now: datetime) -> str:
        """The person an account being added belongs to (see :meth:`add_staff`)."""
        if person_id is not None:
            row = s.get(StaffPersonRow, (tenant, person_id))
            if row is None:
                raise NotFound(f"租户 {tenant} 中没有人员 {person_id}")
            if contact_index is not None and row.contact_index not in (None, contact_index):
                raise InvalidInput(f"人员 {person_id} 登记的联系方式与所填不一致")
            if contact_index is not None and row.contact_index is None:
                row.contact_index = contact_index
            return person_id
        if contact_index is not None:
            found = s.scalar(select(StaffPersonRow.person_id).where(StaffPersonRow.tenant_id == tenant,
                                                                    StaffPersonRow.contact_index == contact_index))
            if found is not None:
                return found
        pid = new_person_id()
        s.add(StaffPersonRow(tenant_id=tenant, person_id=pid, name=name, contact_index=contact_index, created_at=now))
        s.flush()
        return pid

    @staticmethod
    def _check_conflicts(staff_id: str, roles: set[Role]) -> None:
        pairs = role_conflicts(roles)
        if pairs:
            a, b = pairs[0]
            raise SeparationOfDuties(
                f"职责分离（S3）：{staff_id} 不能同时担任{a.label}与{b.label}"
                "（管理员、操作员、审计员须由不同人员担任）")

    def grant(self, tenant: str, staff_id: str, role: Role | str, *, actor: str) -> StaffMember:
        """Give ``staff_id`` a role; refused if it breaks the separation of duties or if the administrator
        changes their own roles."""
        (wanted,) = _roles([role])
        with self.sessions() as s, s.begin():
            admin = self._admin(s, tenant, actor)
            member = self._load_staff(s, tenant, staff_id)
            if member is None:
                raise NotFound(f"租户 {tenant} 中没有工作人员 {staff_id}")
            if admin is not None and admin.staff_id == staff_id:
                raise AccessDenied(Authorization(False, "管理员不能更改本人的角色：须由另一名管理员操作", "S3",
                                                 StaffAction.MANAGE_STAFF, actor))
            if wanted in member.roles:
                return member
            self._check_conflicts(staff_id, {*member.roles, wanted, *person_roles(s, tenant, member.person_id or "",
                                                                                 without=staff_id)})
            s.add(StaffRoleRow(tenant_id=tenant, staff_id=staff_id, role=wanted.value, granted_at=self.now(),
                               granted_by=actor))
            self.audit.append_in(s, tenant, actor, AuditAction.PERMISSION_CHANGE, details={
                "step": "grant", "staff": staff_id, "role": wanted.value})
        out = self.get_staff(tenant, staff_id)
        assert out is not None
        return out

    def revoke(self, tenant: str, staff_id: str, role: Role | str, *, actor: str) -> StaffMember:
        """Take a role away. The last active administrator of a tenant is never removed."""
        (wanted,) = _roles([role])
        with self.sessions() as s, s.begin():
            admin = self._admin(s, tenant, actor)
            member = self._load_staff(s, tenant, staff_id)
            if member is None:
                raise NotFound(f"租户 {tenant} 中没有工作人员 {staff_id}")
            if admin is not None and admin.staff_id == staff_id:
                raise AccessDenied(Authorization(False, "管理员不能更改本人的角色：须由另一名管理员操作", "S3",
                                                 StaffAction.MANAGE_STAFF, actor))
            if wanted not in member.roles:
                return member
            s.execute(delete(StaffRoleRow).where(StaffRoleRow.tenant_id == tenant, StaffRoleRow.staff_id == staff_id,
                                                 StaffRoleRow.role == wanted.value))
            self.audit.append_in(s, tenant, actor, AuditAction.PERMISSION_CHANGE, details={
                "step": "revoke", "staff": staff_id, "role": wanted.value})
        out = self.get_staff(tenant, staff_id)
        assert out is not None
        return out

    def deactivate(self, tenant: str, staff_id: str, *, actor: str) -> StaffMember:
        """Disable a member of staff (停用): every later check refuses them. Not oneself."""
        with self.sessions() as s, s.begin():
            self._admin(s, tenant, actor)
            row = s.get(StaffRow, (tenant, staff_id))
            if row is None:
                raise NotFound(f"租户 {tenant} 中没有工作人员 {staff_id}")
            if staff_id == actor:
                raise AccessDenied(Authorization(False, "管理员不能停用本人：须由另一名管理员操作", "S3",
                                                 StaffAction.MANAGE_STAFF, actor))
            row.active = False
            self.audit.append_in(s, tenant, actor, AuditAction.PERMISSION_CHANGE, details={
                "step": "deactivate", "staff": staff_id})
        out = self.get_staff(tenant, staff_id)
        assert out is not None
        return out

    # --- subjects --------------------------------------------------------------------------------

    def minor_age(self, tenant: str) -> int:
        """Below this age the tenant's subjects are minors for staff access: 14, or the age under which the
        tenant's declaration asks for a guardian's consent when that is higher (e.g. 18)."""
        age = self._minor_ages.get(tenant)
        if age is None:
            age = MINOR_AGE
            with self.sessions() as s:
                latest = PolicyVersionRepository(s).latest(tenant)
                text = None if latest is None else latest.declaration_yaml
            if text is not None:
                try:
                    from yinsi.declarations import parse_declaration

                    decl = parse_declaration(text, f"{tenant}@latest")
                    age = max(age, decl.minors.guardian_consent_under or 0)
                except Exception:  # an unreadable archived declaration: fall back to 14
                    age = MINOR_AGE
            self._minor_ages[tenant] = age
        return age

    def _today(self) -> date:
        return self.now().astimezone(BEIJING).date()

    def _is_minor(self, tenant: str, birth: date | None) -> tuple[bool, int | None]:
        if birth is None:
            return False, None
        age = age_on(birth, self._today())
        return age < self.minor_age(tenant), age

    def _facts(self, s: Session, tenant: str, subject_id: str) -> _Facts:
        """What Yinsi holds of the app's ``subject_id`` (its tables key it by pseudonym)."""
        facts = _Facts()
        ref = self.ring.pseudonymise(tenant, subject_id)
        subj = s.get(Subject, (tenant, ref))
        if subj is not None:
            facts.exists = True
            facts.birth_date = self._birth(tenant, subj.birth_date_encrypted)
        for row in s.scalars(select(SubjectIdentifierRow).where(SubjectIdentifierRow.tenant_id == tenant,
                                                                 SubjectIdentifierRow.subject_id == ref)):
            facts.exists = True
            facts.identifiers[row.kind] = bytes(row.ciphertext)
        return facts

    def _minor_approval(self, s: Session, tenant: str, staff_id: str, pseudonym: str) -> AccessRequestRow | None:
        return s.scalars(select(AccessRequestRow).where(
            AccessRequestRow.tenant_id == tenant, AccessRequestRow.subject == pseudonym,
            AccessRequestRow.kind == RequestKind.MINOR_ACCESS, AccessRequestRow.requester == staff_id,
            AccessRequestRow.status == RequestStatus.APPROVED, AccessRequestRow.expires_at > self.now(),
        ).order_by(AccessRequestRow.expires_at.desc()).limit(1)).first()

    def audit_denied(self, tenant: str, actor: str, action: AuditAction, subject: str | None, items: Sequence[str],
                     reason: str | None, auth: Authorization) -> None:
        """Log a refused attempt (for use cases that check a permission before calling another service)."""
        self._audit_denied(tenant, actor, action, subject, items, reason, auth)

    def _audit_denied(self, tenant: str, actor: str, action: AuditAction, subject: str | None, items: Sequence[str],
                      reason: str | None, auth: Authorization) -> None:
        """Every refused attempt is logged too (S3: log every over-privilege access)."""
        details = {"outcome": "denied", "rule": auth.rule, "attempted": auth.action.value, "why": auth.reason_zh}
        actor = actor if STAFF_ID_RE.match(actor or "") and not find_pi(actor) else "unknown"
        with self.sessions() as s:
            if s.get(Tenant, tenant) is None:
                return  # no chain for a tenant that does not exist (a typing error, not an access)
        try:
            self.audit.append(tenant, actor, action, subject, list(items), reason, details)
        except PIInAuditEntry:
            self.audit.append(tenant, actor, action, subject, list(items), None, {**details, "reason_omitted": True})

    def _context(self, s: Session, tenant: str, staff_id: str, pseudonym: str, facts: _Facts,
                 reason: str | None = None) -> tuple[SubjectContext, AccessRequestRow | None]:
        minor, _ = self._is_minor(tenant, facts.birth_date)
        approval = self._minor_approval(s, tenant, staff_id, pseudonym) if minor else None
        return SubjectContext(tenant, pseudonym, minor=minor, minor_approval=approval.id if approval else None,
                              reason=reason), approval

    def _reveal(self, tenant: str, facts: _Facts, item: PIItem) -> str | None:
        if item.key == "birth_date":
            return None if facts.birth_date is None else facts.birth_date.isoformat()
        token = facts.identifiers.get(item.key)
        return None if token is None else self.ring.cipher(tenant).decrypt(IDENTIFIER_FIELD, token)

    def _masked(self, tenant: str, facts: _Facts, item: PIItem) -> str | None:
        if item.key == "birth_date":
            return None if facts.birth_date is None else _mask_birth(facts.birth_date)
        value = self._reveal(tenant, facts, item)
        return None if value is None else mask_value(item.mask_type, value)

    @staticmethod
    def _present(facts: _Facts) -> list[PIItem]:
        present = [ITEMS[k] for k in ITEMS if k in facts.identifiers]
        if facts.birth_date is not None:
            present.append(ITEMS["birth_date"])
        return present

    def view_subject(self, tenant: str, staff_id: str, subject_id: str, *, reason: str | None = None) -> SubjectView:
        """The person's PI known to Yinsi, masked (S4), with consents and 双清单 when a consent service is
        given. A ``pi_access`` entry records who, which items, why; a minor needs an approval (S6)."""
        why = _clean_reason(reason) if reason and reason.strip() else None
        pseudonym = self.ring.pseudonymise(tenant, subject_id)
        with self.sessions() as s:
            staff = self._load_staff(s, tenant, staff_id)
            facts = self._facts(s, tenant, subject_id)
            ctx, approval = self._context(s, tenant, staff_id, pseudonym, facts, why)
        auth = authorize(staff, StaffAction.VIEW_MASKED, ctx)
        if not auth:
            self._audit_denied(tenant, staff_id, AuditAction.PI_ACCESS, pseudonym, (), why, auth)
            raise AccessDenied(auth)
        if not facts.exists:
            raise NotFound(f"租户 {tenant} 中没有主体 {subject_id}")
        minor, age = self._is_minor(tenant, facts.birth_date)
        items = []
        for item in self._present(facts):
            value = self._masked(tenant, facts, item)
            if value is not None:
                items.append(ViewItem(item.item_id, item.key, item.label, value, True))
        report = None
        if self.consent is not None:
            try:
                report = self.consent.report(tenant, subject_id)
            except LookupError:  # no published policy yet: the view shows the identifiers only
                report = None
        entry = self.audit.append(tenant, staff_id, AuditAction.PI_ACCESS, pseudonym, [i.item for i in items],
                                  why or "查看掩码后的个人信息", self._access_details(auth, minor, approval, masked=True))
        return SubjectView(tenant, subject_id, pseudonym, minor, age, tuple(items), report, entry.seq, auth)

    @staticmethod
    def _access_details(auth: Authorization, minor: bool, approval: AccessRequestRow | None, *,
                        masked: bool) -> dict[str, Any]:
        details: dict[str, Any] = {"outcome": "allowed", "rule": auth.rule, "masked": masked}
        if minor:
            details.update({"minor": True, "approval": approval.id if approval else None,
                            "approved_by": approval.approver if approval else None})
        return details

    def _authorized_unmask(self, tenant: str, staff_id: str, subject_id: str, items: Sequence[str], reason: str,
                           actions: Sequence[StaffAction]) -> tuple[str, _Facts, dict[str, Any], str | None]:
        """Check ``actions`` for seeing ``subject_id``'s PI in clear (S3, S4 reason, S6 minors); a refusal is
        logged and raises :class:`AccessDenied`. Returns the pseudonym, the facts, the details of the
        caller's ``unmask`` entry and the cleaned reason."""
        why = (reason or "").strip() or None
        if why is not None:
            why = _clean_reason(why)
        pseudonym = self.ring.pseudonymise(tenant, subject_id)
        with self.sessions() as s:
            staff = self._load_staff(s, tenant, staff_id)
            facts = self._facts(s, tenant, subject_id)
            ctx, approval = self._context(s, tenant, staff_id, pseudonym, facts, why)
        for action in actions:
            auth = authorize(staff, action, ctx)
            if not auth:
                self._audit_denied(tenant, staff_id, AuditAction.UNMASK, pseudonym, list(items), why, auth)
                raise AccessDenied(auth)
        return pseudonym, facts, self._access_details(auth, ctx.minor, approval, masked=False), why

    def authorize_unmask(self, tenant: str, staff_id: str, subject_id: str, items: Sequence[str],
                         reason: str) -> tuple[str, dict[str, Any]]:
        """May ``staff_id`` see ``subject_id``'s PI in clear for a rights request they handle? A privacy
        officer, with a stated reason (S4), a minor's only with an approval (S6). A refusal is logged and
        raises :class:`AccessDenied`; on success returns the pseudonym and the details for the caller's
        own ``unmask`` entry (written once it has the values)."""
        pseudonym, _, details, _ = self._authorized_unmask(
            tenant, staff_id, subject_id, items, reason, (StaffAction.HANDLE_RIGHTS_REQUEST, StaffAction.UNMASK))
        return pseudonym, details

    def unmask(self, tenant: str, staff_id: str, subject_id: str, item: str, reason: str) -> UnmaskResult:
        """Show one PI item in clear: only a privacy officer, only with a stated reason (S4), a minor's
        only with an approval (S6); logged as ``unmask`` with the reason."""
        pi = resolve_item(item)
        pseudonym, facts, details, why = self._authorized_unmask(tenant, staff_id, subject_id, [pi.item_id], reason,
                                                                 (StaffAction.UNMASK,))
        if not facts.exists:
            raise NotFound(f"租户 {tenant} 中没有主体 {subject_id}")
        value = self._reveal(tenant, facts, pi)
        if value is None:
            raise NotFound(f"主体 {subject_id} 没有{pi.label}")
        details["key"] = pi.key
        entry = self.audit.append(tenant, staff_id, AuditAction.UNMASK, pseudonym, [pi.item_id], why, details)
        return UnmaskResult(tenant, subject_id, pseudonym, pi, value, entry.seq)

    # --- approvals -------------------------------------------------------------------------------

    def _birth(self, tenant: str, token: str | None) -> date | None:
        return date.fromisoformat(self.ring.cipher(tenant).decrypt_text(BIRTH_DATE_FIELD, token)) if token else None

    def _directory(self, s: Session, tenant: str) -> dict[str, tuple[str, date | None]]:
        """Every subject of the tenant: the app's id (decrypted from the directory) → (pseudonym, birth date).
        Every pseudonym in the ledger and in ``subject_identifiers`` has a directory row."""
        cipher = self.ring.cipher(tenant)
        out: dict[str, tuple[str, date | None]] = {}
        for ref, token, birth in s.execute(select(Subject.subject_id, Subject.subject_encrypted,
                                                  Subject.birth_date_encrypted).where(Subject.tenant_id == tenant)):
            if token:
                out[cipher.decrypt_text(SUBJECT_FIELD, token)] = (ref, self._birth(tenant, birth))
        return out

    def _all_subjects(self, s: Session, tenant: str) -> list[str]:
        return sorted(self._directory(s, tenant))

    def request_export(self, tenant: str, staff_id: str, subject_ids: Sequence[str] | None, *, reason: str,
                       items: Sequence[str] | None = None, unmasked: bool = False) -> AccessRequest:
        """Ask for a bulk export of ``subject_ids`` (``None``: every subject of the tenant now) — masked, or in
        clear with ``unmasked``. Another privacy officer must approve it before :meth:`export`."""
        why = _clean_reason(reason)
        keys = [resolve_item(i) for i in items] if items else list(ITEMS.values())
        item_ids = sorted({k.item_id for k in keys})
        kind = RequestKind.UNMASK_BULK if unmasked else RequestKind.EXPORT
        with self.sessions() as s:
            staff = self._load_staff(s, tenant, staff_id)
        auth = authorize(staff, StaffAction.REQUEST_EXPORT, SubjectContext(tenant, reason=why))
        if not auth:
            self._audit_denied(tenant, staff_id, AuditAction.EXPORT, None, item_ids, why, auth)
            raise AccessDenied(auth)
        now = self.now()
        with self.sessions() as s, s.begin():
            directory = self._directory(s, tenant)
            known = set(directory)
            wanted = sorted(known) if subject_ids is None else sorted(set(subject_ids))
            unknown = [x for x in wanted if x not in known]
            if unknown:
                raise NotFound(f"租户 {tenant} 中没有这些主体：{'、'.join(unknown[:10])}"
                               + (f" 等 {len(unknown)} 个" if len(unknown) > 10 else ""))
            if not wanted:
                raise InvalidInput("没有可导出的主体")
            pseudonyms = [self.ring.pseudonymise(tenant, x) for x in wanted]
            minors = sum(1 for x in wanted if self._is_minor(tenant, directory[x][1])[0])
            row = AccessRequestRow(
                id=_new_request_id(), tenant_id=tenant, kind=kind, requester=staff_id,
                subject=pseudonyms[0] if len(pseudonyms) == 1 else None, subjects=json.dumps(pseudonyms),
                subject_count=len(pseudonyms), minor_count=minors, items=json.dumps([k.key for k in keys]),
                unmasked=unmasked, reason=why, status=RequestStatus.PENDING, approver=None, decision_note=None,
                created_at=now, decided_at=None, expires_at=now + self.pending_ttl, used_at=None)
            s.add(row)
            s.flush()
            self.audit.append_in(s, tenant, staff_id, AuditAction.EXPORT, row.subject, item_ids, why, {
                "step": "request", "request": row.id, "kind": kind, "subjects": len(pseudonyms), "minors": minors,
                "unmasked": unmasked})
            return AccessRequest.from_row(row)

    def request_minor_access(self, tenant: str, staff_id: str, subject_id: str, *, reason: str) -> AccessRequest:
        """Ask for access to a minor's PI (S6); a privacy officer other than the requester approves it."""
        why = _clean_reason(reason)
        pseudonym = self.ring.pseudonymise(tenant, subject_id)
        with self.sessions() as s:
            staff = self._load_staff(s, tenant, staff_id)
        auth = authorize(staff, StaffAction.REQUEST_MINOR_ACCESS, SubjectContext(tenant, pseudonym, reason=why))
        if not auth:
            self._audit_denied(tenant, staff_id, AuditAction.PI_ACCESS, pseudonym, (), why, auth)
            raise AccessDenied(auth)
        now = self.now()
        with self.sessions() as s, s.begin():
            facts = self._facts(s, tenant, subject_id)
            if not facts.exists:
                raise NotFound(f"租户 {tenant} 中没有主体 {subject_id}")
            if not self._is_minor(tenant, facts.birth_date)[0]:
                raise InvalidInput(f"主体 {subject_id} 不是未成年人（或出生日期未知），访问无需此项审批")
            row = AccessRequestRow(
                id=_new_request_id(), tenant_id=tenant, kind=RequestKind.MINOR_ACCESS, requester=staff_id,
                subject=pseudonym, subjects=json.dumps([pseudonym]), subject_count=1, minor_count=1,
                items=json.dumps([]), unmasked=False, reason=why, status=RequestStatus.PENDING, approver=None,
                decision_note=None, created_at=now, decided_at=None, expires_at=now + self.pending_ttl, used_at=None)
            s.add(row)
            s.flush()
            self.audit.append_in(s, tenant, staff_id, AuditAction.PI_ACCESS, pseudonym, [], why, {
                "step": "request", "request": row.id, "kind": RequestKind.MINOR_ACCESS, "minor": True})
            return AccessRequest.from_row(row)

    def _load_request(self, s: Session, request_id: str, tenant: str | None) -> AccessRequestRow:
        row = s.get(AccessRequestRow, request_id)
        if row is None or (tenant is not None and row.tenant_id != tenant):
            raise NotFound(f"没有审批申请 {request_id}")
        return row

    def _expire(self, s: Session, row: AccessRequestRow) -> bool:
        if row.status in (RequestStatus.PENDING, RequestStatus.APPROVED) and row.expires_at <= self.now():
            row.status = RequestStatus.EXPIRED
            return True
        return False

    def get_request(self, request_id: str, *, tenant: str | None = None) -> AccessRequest:
        with self.sessions() as s:
            return AccessRequest.from_row(self._load_request(s, request_id, tenant))

    def list_requests(self, tenant: str, staff_id: str, *, status: str | None = None) -> list[AccessRequest]:
        """Approvals of the tenant: a privacy officer sees all, anyone else of its staff only their own."""
        with self.sessions() as s, s.begin():
            staff = self._load_staff(s, tenant, staff_id)
            if staff is None or not staff.active:
                raise AccessDenied(authorize(staff, StaffAction.APPROVE_EXPORT, SubjectContext(tenant)))
            q = select(AccessRequestRow).where(AccessRequestRow.tenant_id == tenant)
            if Role.PRIVACY_OFFICER not in staff.roles:
                q = q.where(AccessRequestRow.requester == staff_id)
            rows = s.scalars(q.order_by(AccessRequestRow.created_at, AccessRequestRow.id)).all()
            for row in rows:
                self._expire(s, row)
            return [AccessRequest.from_row(r) for r in rows if status is None or r.status == status]

    def approve(self, request_id: str, staff_id: str, *, note: str | None = None, masked_only: bool = False,
                tenant: str | None = None) -> AccessRequest:
        """Approve a pending request: a privacy officer who is not the requester. ``masked_only`` turns an
        export in clear into a masked one."""
        return self._decide(request_id, staff_id, approve=True, note=note, masked_only=masked_only, tenant=tenant)

    def reject(self, request_id: str, staff_id: str, *, note: str | None = None,
               tenant: str | None = None) -> AccessRequest:
        """Reject a pending request (same rights as approving)."""
        return self._decide(request_id, staff_id, approve=False, note=note, masked_only=False, tenant=tenant)

    def _decide(self, request_id: str, staff_id: str, *, approve: bool, note: str | None, masked_only: bool,
                tenant: str | None) -> AccessRequest:
        clean_note = _clean_reason(note, "审批意见") if note and note.strip() else None
        now = self.now()
        with self.sessions() as s:
            row = self._load_request(s, request_id, tenant)
            is_minor = row.kind == RequestKind.MINOR_ACCESS
            audit_action = AuditAction.PI_ACCESS if is_minor else AuditAction.EXPORT
            action = StaffAction.APPROVE_MINOR_ACCESS if is_minor else StaffAction.APPROVE_EXPORT
            staff = self._load_staff(s, row.tenant_id, staff_id)
            requester = self._load_staff(s, row.tenant_id, row.requester)
            auth = authorize(staff, action, SubjectContext(
                row.tenant_id, row.subject, requester=row.requester,
                requester_person=requester.person_id if requester else None))
            if not auth:
                self._audit_denied(row.tenant_id, staff_id, audit_action, row.subject, (), None, auth)
                raise AccessDenied(auth)
        expired = False
        with self.sessions() as s, s.begin():
            row = self._load_request(s, request_id, tenant)
            expired = self._expire(s, row)
            if not expired:
                if row.status != RequestStatus.PENDING:
                    raise RequestStateError(
                        f"审批申请 {request_id} 已处理（{STATUS_LABELS.get(row.status)}），不能再次审批")
                downgraded = approve and masked_only and row.unmasked
                if downgraded:
                    row.kind, row.unmasked = RequestKind.EXPORT, False
                row.status = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
                row.approver = staff_id
                row.decided_at = now
                row.decision_note = clean_note
                if approve:
                    row.expires_at = now + (self.minor_access_ttl if is_minor else self.export_ttl)
                details: dict[str, Any] = {
                    "step": "approve" if approve else "reject", "request": row.id, "kind": row.kind,
                    "requester": row.requester, "approved_by": staff_id if approve else None, "rule": auth.rule}
                if is_minor:
                    details["minor"] = True
                elif row.minor_count:
                    details["minors"] = row.minor_count
                if downgraded:
                    details["downgraded_to_masked"] = True
                self.audit.append_in(s, row.tenant_id, staff_id, audit_action, row.subject, [], clean_note, details)
            out = AccessRequest.from_row(row)
        if expired:
            raise RequestStateError(f"审批申请 {request_id} 已过期，请重新申请")
        return out

    # --- export ---------------------------------------------------------------------------------

    def export(self, request_id: str, staff_id: str, output: Path, *, fmt: str | None = None,
               overwrite: bool = False, tenant: str | None = None) -> ExportResult:
        """Run an approved export once: only the requester, only after another privacy officer approved it.
        Writes CSV (UTF-8 with BOM, Chinese headers) or JSON; masked unless approved in clear (then the file
        is created with permissions 0600). The request becomes ``used``; an ``export`` entry names the
        approver, the number of rows and the file's SHA-256."""
        output = Path(output)
        form = (fmt or output.suffix.lstrip(".") or "csv").lower()
        if form not in ("csv", "json"):
            raise InvalidInput(f"不支持的导出格式 {form!r}；可选：csv、json")
        if output.exists() and not overwrite:
            raise InvalidInput(f"文件 {output} 已存在；请换一个文件名")
        with self.sessions() as s, s.begin():
            row = self._load_request(s, request_id, tenant)
            staff = self._load_staff(s, row.tenant_id, staff_id)
            if row.kind == RequestKind.MINOR_ACCESS:
                raise InvalidInput(f"{request_id} 是访问未成年人信息的审批，不是导出申请")
            approver = self._load_staff(s, row.tenant_id, row.approver) if row.approver else None
            auth = authorize(staff, StaffAction.EXPORT, SubjectContext(
                row.tenant_id, requester=row.requester, approver=row.approver,
                approver_person=approver.person_id if approver else None))
            expired = bool(auth) and self._expire(s, row)
            snapshot = AccessRequest.from_row(row)
            subjects = set(json.loads(row.subjects))
        if expired:
            raise RequestStateError(f"审批申请 {request_id} 已过期，请重新申请")
        if not auth:
            self._audit_denied(snapshot.tenant, staff_id, AuditAction.EXPORT, snapshot.subject, (), None, auth)
            raise AccessDenied(auth)
        if snapshot.status != RequestStatus.APPROVED:
            why: dict[str, str] = {
                RequestStatus.USED: f"审批申请 {request_id} 已导出过一次；每个审批只能导出一次",
                RequestStatus.REJECTED: f"审批申请 {request_id} 已被驳回",
                RequestStatus.PENDING: f"审批申请 {request_id} 尚未审批",
            }
            raise RequestStateError(why.get(snapshot.status, f"审批申请 {request_id} 不可用（{snapshot.status_label}）"))
        records, minors = self._export_records(snapshot, subjects)
        data = self._render(snapshot, records, form)
        digest = hashlib.sha256(data).hexdigest()
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if snapshot.unmasked else 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            now = self.now()
            with self.sessions() as s, s.begin():
                result = s.execute(update(AccessRequestRow).where(
                    AccessRequestRow.id == request_id, AccessRequestRow.status == RequestStatus.APPROVED,
                ).values(status=RequestStatus.USED, used_at=now))
                if int(getattr(result, "rowcount", 0) or 0) != 1:
                    raise RequestStateError(f"审批申请 {request_id} 已导出过一次；每个审批只能导出一次")
                item_ids = sorted({resolve_item(k).item_id for k in snapshot.items})
                entry: AuditEntry = self.audit.append_in(
                    s, snapshot.tenant, staff_id, AuditAction.EXPORT, snapshot.subject, item_ids, snapshot.reason, {
                        "step": "export", "request": request_id, "approved_by": snapshot.approver,
                        "rows": len(records), "masked": not snapshot.unmasked, "minors": minors, "format": form,
                        "sha256": digest, "rule": "S6" if minors else "S3"})
            os.replace(tmp, output)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return ExportResult(request_id, output, form, len(records), not snapshot.unmasked, digest, entry.seq)

    def _export_records(self, req: AccessRequest, wanted: set[str]) -> tuple[list[dict[str, str]], int]:
        keys = [ITEMS[k] for k in req.items]
        records: list[dict[str, str]] = []
        minors = 0
        with self.sessions() as s:
            # pseudonyms are one-way: find the subjects by recomputing the pseudonym of each of the tenant's
            for subject_id in self._all_subjects(s, req.tenant):
                pseudonym = self.ring.pseudonymise(req.tenant, subject_id)
                if pseudonym not in wanted:
                    continue
                facts = self._facts(s, req.tenant, subject_id)
                minors += self._is_minor(req.tenant, facts.birth_date)[0]
                rec = {"subject": subject_id, "pseudonym": pseudonym}
                for k in keys:
                    value = self._reveal(req.tenant, facts, k) if req.unmasked else self._masked(req.tenant, facts, k)
                    rec[k.key] = value or ""
                records.append(rec)
        return records, minors

    def _render(self, req: AccessRequest, records: list[dict[str, str]], form: str) -> bytes:
        keys = [ITEMS[k] for k in req.items]
        if form == "json":
            doc = {"request": req.id, "tenant": req.tenant, "masked": not req.unmasked, "approved_by": req.approver,
                   "requested_by": req.requester, "generated_at": self.now().astimezone(UTC).isoformat(),
                   "fields": {"subject": "主体标识", "pseudonym": "假名", **{k.key: k.label for k in keys}},
                   "records": records}
            return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow(["主体标识", "假名", *(k.label for k in keys)])
        for rec in records:
            writer.writerow(safe_row([rec["subject"], rec["pseudonym"], *(rec[k.key] for k in keys)]))
        return buf.getvalue().encode("utf-8-sig")
