"""Rights requests executed against the app's real databases (个人信息权利请求的执行).

Intake → identity verification (a one-time code to an address the operator already holds, R8; or staff
in person) → deadline from the tenant's promise and the holiday calendar (D1, D2, R9, R10) → for a
cancellation, the person's confirmation (irreversible from then on) → a plan over the data map → steps
run through the store connectors, each recorded as done only after its store committed, so a killed run
resumes with nothing missed and nothing done twice → read-back verification of every location → consents
end, recipients are told to delete (R13) → close. A request is "completed" only when the read-back found
nothing left (R11); a refusal always carries a ground (R7). See docs/rights.md.

Every method takes the tenant: a request of another tenant is "not found", never shown.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from yinsi.audit import AuditAction
from yinsi.config import data_dir, database_url, is_default_database
from yinsi.declarations import parse_declaration
from yinsi.domain.consent import RESTRICT_ALL, EventType, Status
from yinsi.domain.datamap import DataMap, Location, StoreKind, Subject
from yinsi.domain.deadlines import (
    CalendarNotCovered,
    ChineseCalendar,
    deadline_for,
    due_date,
    format_date,
    promised_reply_time,
    status,
    statutory_ceiling,
)
from yinsi.domain.policy import Declaration
from yinsi.domain.rights import (
    DELETION_GROUND_ZH,
    NEEDS_CONFIRMATION,
    OPEN_STATES,
    REQUEST_ZH,
    RIGHT_OF,
    STATE_ZH,
    DeletionGround,
    Refusal,
    RefusalGround,
    RequestType,
    State,
    check_transition,
    may_start,
)
from yinsi.domain.taxonomy import LegalBasis, taxonomy
from yinsi.protect.errors import InvalidIdentifier, KeyNotFound
from yinsi.rights.export import EXPORT_FIELD, build_package, write_private
from yinsi.rights.plan import ACTION_ZH, Operation, erasure_operations, layers
from yinsi.services.audit_trail import AuditTrail
from yinsi.storage.engine import make_engine, make_session_factory
from yinsi.storage.migrate import ensure_current
from yinsi.storage.notify_tables import VerificationCodeRow
from yinsi.storage.repository import PolicyVersionRepository
from yinsi.storage.rights_tables import (
    DETAILS_FIELD,
    HOLD_FIELD,
    IDENTITY_FIELD,
    PLAN_FIELD,
    LegalHoldRecord,
    RequestStep,
    RequestTransition,
    RightsRequest,
)

BEIJING = ZoneInfo("Asia/Shanghai")
Clock = Callable[[], datetime]

ERASING = frozenset({RequestType.DELETION, RequestType.CANCEL_ACCOUNT})
COPYING = frozenset({RequestType.ACCESS, RequestType.COPY, RequestType.PORTABILITY})
CORRECTING = frozenset({RequestType.CORRECTION, RequestType.SUPPLEMENT})
DECEASED_ACTIONS = {"access": RequestType.ACCESS, "copy": RequestType.COPY, "correction": RequestType.CORRECTION,
                    "deletion": RequestType.DELETION}
PORTABLE_BASES = frozenset({LegalBasis.CONSENT, LegalBasis.CONTRACT})
DONE, PENDING, MANUAL_PENDING = "done", "pending", "manual_pending"
#: Seconds to sleep after each executed step (tests: makes a run killable mid-way). Never set in production.
STEP_DELAY_ENV = "YINSI_STEP_DELAY"
#: How long a run's claim on a request holds without being renewed (each layer of steps renews it).
LEASE = timedelta(minutes=5)


def _lease_owner() -> str:
    """This process, as ``host:pid`` (read each time: a forked worker is another process)."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}"


def _alive(owner: str) -> bool:
    """Whether the process named ``host:pid`` may still run (always true for another host)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname()[:100] or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: How many store operations of one request may run at once on server databases (default 4).
PARALLEL_ENV = "YINSI_RIGHTS_PARALLEL"


class RequestError(ValueError):
    """A request operation a person can act on (Chinese message)."""


class ErasureIncomplete(RuntimeError):
    """The read-back after erasure found data left: the exact locations are named."""


@dataclass(frozen=True)
class RequestView:
    """What ``show`` and ``list`` return (no PI: details and plan stay encrypted)."""

    id: str
    tenant: str
    subject_kind: str
    subject: str
    type: RequestType
    state: State
    received_at: datetime
    due_date: date
    deadline: str
    deadline_provisional: bool
    refusal: str | None
    result: dict[str, Any] | None
    steps: list[dict[str, Any]]
    history: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "tenant": self.tenant, "subject_kind": self.subject_kind, "subject": self.subject,
                "type": self.type.value, "type_zh": REQUEST_ZH[self.type], "state": self.state.value,
                "state_zh": STATE_ZH[self.state], "received_at": self.received_at.isoformat(),
                "due_date": self.due_date.isoformat(), "deadline": self.deadline,
                "deadline_provisional": self.deadline_provisional, "refusal": self.refusal, "result": self.result,
                "steps": self.steps, "history": self.history}


@dataclass(frozen=True)
class HoldView:
    """One row in the legal-hold vault (metadata only)."""

    id: int
    request_id: str
    location: str
    source_key: str
    basis: str
    hold_until: date


def utcnow() -> datetime:
    return datetime.now(UTC)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class RightsService:
    """Rights requests for the tenants whose data maps are registered.

    ``datamaps``: tenant → its data map; ``store_urls``: store id → address (else the map's
    ``connection``); ``channels``: outbox channel adapters (default: from the environment, see
    docs/notify.md); ``exports_dir``: where encrypted packages are kept (default ``<data dir>/exports``).
    """

    def __init__(self, url: str | None = None, *, datamaps: Mapping[str, DataMap] | None = None,
                 store_urls: Mapping[str, str] | None = None, clock: Clock = utcnow,
                 exports_dir: Path | None = None, channels: Mapping[str, Any] | None = None) -> None:
        self.url = url or database_url()
        ensure_current(self.url, auto_upgrade=is_default_database(self.url))
        self.engine = make_engine(self.url, pool_pre_ping=False, pool_recycle=300)  # see yinsi.stores.sql._engine
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.datamaps = dict(datamaps or {})
        self.store_urls = dict(store_urls or {})
        self.clock = clock
        self.calendar = ChineseCalendar()
        self.exports_dir = exports_dir or (data_dir() / "exports")
        self.audit = AuditTrail(self.sessions)
        self._channels = channels
        self._outbox: Any = None
        self._consents: Any = None
        self._declarations: dict[tuple[str, str], Declaration] = {}

    def close(self) -> None:
        if self._consents is not None:
            self._consents.close()
        self.engine.dispose()

    def __enter__(self) -> RightsService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- wiring ------------------------------------------------------------------------------------------
    @property
    def outbox(self) -> Any:
        """The notification outbox (channels from the environment unless given)."""
        if self._outbox is None:
            from yinsi.notify.outbox import Outbox
            from yinsi.notify.settings import NotifySettings

            channels = self._channels if self._channels is not None else NotifySettings.from_env().channels()
            self._outbox = Outbox(self.sessions, self.audit.ring, channels, clock=self.clock)
        return self._outbox

    @property
    def consents(self) -> Any:
        if self._consents is None:
            from yinsi.services.consent import ConsentService

            self._consents = ConsentService(self.url, clock=self.clock)
        return self._consents

    def deliver(self, tenant: str | None = None) -> Any:
        """Send the due outbox messages now (verification codes, R13 notices); returns the report."""
        return self.outbox.deliver(tenant=tenant)

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self.sessions() as s:
            yield s
            s.commit()

    def _declaration(self, tenant: str, label: str | None = None) -> Declaration:
        """The tenant's latest published declaration (or the version ``label``), parsed once per version."""
        with self.sessions() as s:
            repo = PolicyVersionRepository(s)
            name = repo.latest_label(tenant) if label is None else label
            cached = self._declarations.get((tenant, name or ""))
            if cached is not None:
                return cached
            v = repo.get(tenant, name) if name is not None else None
            if v is None:
                raise RequestError(f"租户 {tenant} 尚未发布隐私政策；请先运行：yinsi policy publish 声明文件")
            decl = self._declarations[(tenant, v.label)] = parse_declaration(v.declaration_yaml, f"{tenant}@{v.label}")
            return decl

    def _datamap(self, tenant: str) -> DataMap:
        dm = self.datamaps.get(tenant)
        if dm is None:
            raise RequestError(f"租户 {tenant} 没有数据地图；请用 --datamap 指定（见 docs/datamap.md）")
        return dm

    def _subject(self, dm: DataMap, kind: str) -> Subject:
        subj = dm.subject(kind)
        if subj is None:
            raise RequestError(f"数据地图中没有主体类型 {kind}（可选：{'、'.join(dm.subject_ids())}）")
        return subj

    def _claim(self, row: RightsRequest, state: State) -> None:
        """Take the request for this process, or refuse while another live run holds it: two runs of one
        request at once would race on its steps. A claim ends with the run; a run that died leaves one
        that expires after ``LEASE`` (at once on the same host, where the process can be seen gone)."""
        now = self.clock()
        owner = row.lease_owner
        if state is State.IN_PROGRESS and owner and owner != _lease_owner() and row.lease_until and row.lease_until > now \
                and _alive(owner):
            raise RequestError(f"该请求正在由另一进程（{owner}）执行，请稍后再查看进度（yinsi request show）")
        row.lease_owner, row.lease_until = _lease_owner(), now + LEASE

    def _get(self, s: Session, tenant: str, request_id: str, *, lock: bool = False) -> RightsRequest:
        if lock and len(request_id) == 36:
            row = s.scalars(select(RightsRequest).where(RightsRequest.id == request_id).with_for_update()).one_or_none()
            if row is None or row.tenant_id != tenant:
                raise RequestError(f"租户 {tenant} 没有编号为 {request_id} 的请求")
            return row
        row = s.get(RightsRequest, request_id) if len(request_id) == 36 else None
        if row is None and 8 <= len(request_id) < 36:
            found = s.scalars(select(RightsRequest).where(RightsRequest.tenant_id == tenant,
                                                          RightsRequest.id.startswith(request_id, autoescape=True))
                              .limit(2)).all()
            row = found[0] if len(found) == 1 else None
        if row is None or row.tenant_id != tenant:
            raise RequestError(f"租户 {tenant} 没有编号为 {request_id} 的请求")
        return row

    def _cipher(self, tenant: str) -> Any:
        try:
            return self.audit.ring.cipher(tenant)
        except KeyNotFound:
            self.audit.ensure_tenant_keys(tenant)
            return self.audit.ring.cipher(tenant)

    def _encrypt(self, tenant: str, field: str, value: Any) -> str:
        return str(self._cipher(tenant).encrypt_text(field, _dumps(value)))

    def _decrypt(self, tenant: str, field: str, token: str | None) -> Any:
        if not token:
            return None
        return json.loads(self._cipher(tenant).decrypt_text(field, token))

    def _blind(self, tenant: str, value: str) -> str:
        try:
            return str(self.audit.ring.blind_index(tenant, "text", value))
        except KeyNotFound:
            self.audit.ensure_tenant_keys(tenant)
            return str(self.audit.ring.blind_index(tenant, "text", value))

    def _subject_ref(self, tenant: str, kind: str | None, subject: str) -> str:
        """What ``rights_requests.subject_id`` holds: the key itself, or for a subject kind keyed by PI
        (a visitor's IP) ``bi:`` and its blind index, so that no PI is stored in clear."""
        dm = self.datamaps.get(tenant)
        if dm is not None and kind is not None and dm.key_item(kind) is not None:
            return "bi:" + self._blind(tenant, subject)
        return subject

    def _identity(self, row: RightsRequest) -> dict[str, Any]:
        return dict(self._decrypt(row.tenant_id, IDENTITY_FIELD, row.identity_encrypted) or {})

    def _subject_of(self, row: RightsRequest) -> str:
        """The subject's key (decrypted for a PI-keyed subject kind)."""
        if row.identity_encrypted is None:
            return row.subject_id
        return str(self._identity(row).get("subject") or row.subject_id)

    def _shown_subject(self, row: RightsRequest) -> str:
        """The subject as ``show`` and ``list`` give it: a PI-keyed one only masked."""
        if not row.subject_id.startswith("bi:"):
            return row.subject_id
        from yinsi.protect.masking import mask_value

        dm = self.datamaps.get(row.tenant_id)
        item = dm.key_item(row.subject_kind) if dm is not None else None
        return mask_value((item or "").rsplit(".", 1)[-1], self._subject_of(row))

    def _details(self, row: RightsRequest) -> dict[str, Any]:
        return dict(self._decrypt(row.tenant_id, DETAILS_FIELD, row.details_encrypted) or {})

    def _move(self, s: Session, row: RightsRequest, to: State, actor: str, note: str,
              refusal: Refusal | None = None) -> None:
        """The one place a request changes state: checked, recorded, audited, in the caller's transaction."""
        now = self.clock()
        check_transition(State(row.state), to, refusal)
        s.add(RequestTransition(request_id=row.id, tenant_id=row.tenant_id, from_state=row.state, to_state=to.value,
                                actor=actor, note=note, refusal_ground=refusal.ground.value if refusal else None,
                                at=now))
        row.state = to.value
        row.updated_at = now
        if to is not State.IN_PROGRESS:  # the run that held the request lets go of it
            row.lease_owner = row.lease_until = None
        if refusal is not None:
            row.refusal_ground = refusal.ground.value
            row.refusal_detail = refusal.message()
        self.audit.record_in(s, row.tenant_id, actor, AuditAction.RIGHTS_REQUEST_STEP, subject=self._subject_of(row),
                             details={"request": row.id, "type": row.type, "state": to.value})

    # --- intake ------------------------------------------------------------------------------------------
    def submit(self, tenant: str, subject: str, type_: RequestType | str, *, subject_kind: str | None = None,
               channel: str = "app", requester: str | None = None, details: Mapping[str, Any] | None = None,
               received_at: datetime | None = None) -> str:
        """Accept a request; its deadline runs from ``received_at`` (default now). Returns the request id.

        ``details`` by type: correction/supplement ``{"changes": {item or table.column: value}}``; deletion
        ``{"ground": DeletionGround, "items": [...]}``; withdrawal/restriction ``{"scopes": [...]}``;
        deceased ``{"action": access|copy|correction|deletion, "relation": "配偶", ...}``; explanation
        ``{"about": "rules"|"automated_decision", "question": ...}``; complaint ``{"text": ...}``.
        """
        try:
            rtype = RequestType(type_)
        except ValueError:
            raise RequestError(f"未知的请求类型 {type_!r}（可选：{'、'.join(t.value for t in RequestType)}）") from None
        if not subject.strip():
            raise RequestError("请给出个人信息主体的编号")
        decl = self._declaration(tenant)
        dm = self.datamaps.get(tenant)
        kind = subject_kind or (dm.subjects[0].id if dm is not None and dm.subjects else "account")
        if dm is not None:
            self._subject(dm, kind)
        clean = _check_details(rtype, dict(details or {}))
        if rtype is RequestType.RESTRICTION:
            unknown = [f for f in clean.get("features") or [] if decl.feature(f) is None]
            if unknown:
                raise RequestError(f"功能 {'、'.join(unknown)} 未在隐私政策中声明"
                                   f"（可选：{'、'.join(f.id for f in decl.features)}）")
        received = received_at or self.clock()
        if received.tzinfo is None:
            raise RequestError("受理时间须带时区（例如 2026-02-13T10:00+08:00）")
        day = received.astimezone(BEIJING).date()
        provisional = False
        try:
            dl = deadline_for(decl, RIGHT_OF[rtype], day, self.calendar)
            due, rule, explanation = dl.due, dl.rule_id, dl.explanation
        except CalendarNotCovered as exc:
            due, rule, explanation, provisional = self._uncovered_deadline(decl, rtype, day, exc)
        rid = str(uuid.uuid4())
        ref = self._subject_ref(tenant, kind, subject)
        other = (requester or "").strip() or None
        identity = {k: v for k, v in (("subject", subject if ref != subject else None), ("requester", other)) if v}
        with self._tx() as s:
            row = RightsRequest(
                id=rid, tenant_id=tenant, subject_kind=kind, subject_id=ref, type=rtype.value,
                state=State.UNVERIFIED.value, channel=channel, requester="other" if other else "self",
                identity_encrypted=self._encrypt(tenant, IDENTITY_FIELD, identity) if identity else None,
                policy_label=decl.version.label,
                received_at=received, due_date=due, deadline_rule=rule, deadline_explanation=explanation,
                deadline_provisional=provisional,
                details_encrypted=self._encrypt(tenant, DETAILS_FIELD, clean) if clean else None,
                plan_encrypted=None, confirmed_at=None, lease_owner=None, lease_until=None, refusal_ground=None,
                refusal_detail=None, result=None,
                updated_at=received)
            s.add(row)
            s.flush()  # the request row first: the transition references it
            s.add(RequestTransition(request_id=rid, tenant_id=tenant, from_state=None, to_state=State.UNVERIFIED.value,
                                    actor="requester", note=f"受理{REQUEST_ZH[rtype]}请求", refusal_ground=None,
                                    at=received))
            s.flush()
            self.audit.record_in(s, tenant, "requester", AuditAction.RIGHTS_REQUEST_STEP, subject=subject,
                                 details={"request": rid, "type": rtype.value, "state": State.UNVERIFIED.value})
        return rid

    def _uncovered_deadline(self, decl: Declaration, rtype: RequestType, day: date,
                            exc: CalendarNotCovered) -> tuple[date, str, str, bool]:
        """(due, rule, explanation, provisional) when the holiday data does not cover a year the count needs.

        The statutory ceiling is never earlier than its number of natural days (working days and D1 only
        move it later). So when the promise can still be counted and ends by then, the promise is the exact
        deadline. Otherwise fail closed: never guess working days; a provisional date of N natural days is
        never later than the true deadline, and staff must confirm it once the calendar is updated.
        """
        right = RIGHT_OF[rtype]
        cap = statutory_ceiling(right)
        promise = promised_reply_time(decl, right)
        if promise is not None and promise.days is not None:
            try:
                p_due = due_date(day, promise.days, promise.unit, promise.holidays_extended, self.calendar)
            except CalendarNotCovered:
                p_due = None
            if p_due is not None and p_due <= day + timedelta(days=cap.days):
                text = (f"依据隐私政策承诺：{promise.describe()}，截止{format_date(p_due)}；法定上限{cap.describe()}"
                        f"（{cap.rule_id}）不早于{format_date(day + timedelta(days=cap.days))}，以承诺为准。")
                return p_due, cap.rule_id, text, False
        days = min(promise.days if promise is not None and promise.days else cap.days, cap.days)
        due = day + timedelta(days=days)
        return due, "D2", (f"{exc} 暂按不晚于法定期限的 {days} 个自然日定截止日为{format_date(due)}，"
                           "须在节假日数据更新后人工复核。"), True

    # --- identity verification ---------------------------------------------------------------------------
    def send_code(self, tenant: str, request_id: str, channel: str = "sms", *, claimed: str | None = None,
                  deliver: bool = True) -> Any:
        """Send a one-time code to the address the app already holds for the subject (R8) and return the
        challenge (masked address, expiry). ``claimed``: what the person typed, which must match."""
        from yinsi.rights.verification import VerificationError, start_verification
        from yinsi.stores.base import resolve_attributes

        with self.sessions() as s:
            row = self._get(s, tenant, request_id)
            if State(row.state) is not State.UNVERIFIED:
                raise RequestError(f"请求处于「{STATE_ZH[State(row.state)]}」状态，无需再核验身份")
            if RequestType(row.type) is RequestType.DECEASED:
                raise RequestError("近亲属请求须由员工核验死亡证明与亲属关系：yinsi request verify --in-person --as 员工")
            kind, subject, rid = row.subject_kind, self._subject_of(row), row.id
        dm = self._datamap(tenant)
        subj = self._subject(dm, kind)
        attribute = subj.verify_by.get(channel)  # type: ignore[call-overload]
        if attribute is None:
            raise RequestError(f"数据地图没有为主体 {kind} 配置{'手机号' if channel == 'sms' else '电子邮箱'}核验"
                               f"（subjects.verify_by.{channel}）；请由员工当面核验")
        address = resolve_attributes(dm, subject, self.store_urls, kind=kind).get(attribute)
        if not address:
            raise RequestError("账号中没有可用于接收验证码的联系方式；请由员工当面核验身份")
        decl = self._declaration(tenant)
        try:
            with self._tx() as s:
                challenge = start_verification(s, self.outbox, tenant, rid, channel, address,  # type: ignore[arg-type]
                                               claimed=claimed, now=self.clock(), app_name=decl.app.name)
        except VerificationError as exc:
            raise RequestError(str(exc)) from None
        if deliver:
            self.deliver(tenant)
        return challenge

    def check_code(self, tenant: str, request_id: str, code: str) -> Any:
        """Check the code of the request's latest challenge; on success the request is verified."""
        from yinsi.rights.verification import check_code

        with self._tx() as s:
            row = self._get(s, tenant, request_id)
            if State(row.state) is not State.UNVERIFIED:
                raise RequestError(f"请求处于「{STATE_ZH[State(row.state)]}」状态，无需再核验身份")
            challenge = s.scalar(select(VerificationCodeRow.id).where(
                VerificationCodeRow.tenant_id == tenant, VerificationCodeRow.request_ref == row.id)
                .order_by(VerificationCodeRow.created_at.desc()).limit(1))
            if challenge is None:
                raise RequestError("尚未发送验证码：请先运行 yinsi request verify 请求编号 --send sms")
            result = check_code(s, challenge, code, self.clock(), tenant=tenant)
            if result.ok:
                self._move(s, row, State.VERIFIED, "requester", "身份已核验：一次性验证码")
        return result

    def mark_verified(self, tenant: str, request_id: str, actor: str, how: str) -> None:
        """Record an identity verification by staff (in person, documents for a relative's request)."""
        if not actor.strip() or not how.strip():
            raise RequestError("请写明核验的员工与核验方式")
        with self._tx() as s:
            row = self._get(s, tenant, request_id)
            self._move(s, row, State.VERIFIED, actor, f"身份已核验：{how}")

    # --- decisions by people -----------------------------------------------------------------------------
    def confirm(self, tenant: str, request_id: str, actor: str = "requester") -> list[str]:
        """The person confirms their cancellation: checked prerequisites must hold; from now on it cannot be
        withdrawn. Returns the prerequisites a person still has to confirm (shown to the person)."""
        with self.sessions() as s:
            row = self._get(s, tenant, request_id)
            rtype, kind, subject = RequestType(row.type), row.subject_kind, self._subject_of(row)
            state = State(row.state)
        if rtype not in NEEDS_CONFIRMATION:
            raise RequestError(f"{REQUEST_ZH[rtype]}请求无需确认")
        if state is not State.VERIFIED:
            raise RequestError(f"请求处于「{STATE_ZH[state]}」状态，须先核验身份再确认注销")
        unmet, unchecked = self._prerequisites(tenant, kind, subject)
        if unmet:
            raise RequestError("暂不能注销：" + "；".join(unmet))
        with self._tx() as s:
            row = self._get(s, tenant, request_id)
            row.confirmed_at = self.clock()
            self._move(s, row, State.CONFIRMED, actor, "本人确认注销账号；确认后不可撤回")
        return unchecked

    def withdraw(self, tenant: str, request_id: str, actor: str = "requester") -> None:
        """The person withdraws the request (not possible once a cancellation is confirmed)."""
        with self._tx() as s:
            row = self._get(s, tenant, request_id)
            if State(row.state) is State.CONFIRMED:
                raise RequestError("注销已确认，不可撤回")
            self._move(s, row, State.WITHDRAWN, actor, "申请人撤回请求")

    def refuse(self, tenant: str, request_id: str, ground: RefusalGround | str, detail: str, actor: str) -> None:
        """Refuse with a ground and a detail (a refusal without a reason is impossible, R7)."""
        try:
            g = RefusalGround(ground)
        except ValueError:
            raise RequestError(f"未知的拒绝依据 {ground!r}") from None
        with self._tx() as s:
            row = self._get(s, tenant, request_id)
            self._move(s, row, State.REFUSED, actor, "拒绝请求", Refusal(g, detail))

    # --- execution ---------------------------------------------------------------------------------------
    def run(self, tenant: str, request_id: str, actor: str = "system", *,
            step_hook: Callable[[int], None] | None = None) -> State:
        """Create the plan if needed, run every pending step, verify, and close. Safe to run again."""
        with self._tx() as s:
            row = self._get(s, tenant, request_id, lock=True)
            request_id = row.id
            state, rtype = State(row.state), RequestType(row.type)
            self._claim(row, state)
            if not may_start(rtype, state):
                if state is State.VERIFIED and rtype in NEEDS_CONFIRMATION:
                    raise RequestError("注销须先由本人确认（yinsi request confirm 请求编号）；确认后不可撤回")
                if state is State.UNVERIFIED:
                    raise RequestError("请求尚未核验身份，不能执行（yinsi request verify）")
                raise RequestError(f"请求处于「{STATE_ZH[state]}」状态，不能执行")
            if state is not State.IN_PROGRESS:
                self._move(s, row, State.IN_PROGRESS, actor, "开始执行" if state is not State.ERROR else "重试执行")
            details = self._details(row)
            job = _Job(tenant, row.id, row.subject_kind, self._subject_of(row), rtype, details, actor, row.policy_label)
        job.decl = self._declaration(tenant)
        try:
            if rtype is RequestType.DECEASED:
                job = job.acting_as(DECEASED_ACTIONS[str(details["action"])])
            if job.type in ERASING:
                return self._run_erasure(job, step_hook)
            if job.type in COPYING:
                return self._run_copy(job)
            if job.type in CORRECTING:
                return self._run_correction(job)
            if job.type in (RequestType.WITHDRAW_CONSENT, RequestType.RESTRICTION):
                return self._run_withdrawal(job)
            if job.type is RequestType.EXPLANATION:
                return self._run_explanation(job)
            if not self._open_manual(job, ["answer"]):
                return self._finish(job, {"answered": True}, "已答复")
            return self._wait_manual(job, [("answer", "答复投诉" if job.type is RequestType.COMPLAINT else "答复请求",
                                            "个人信息保护负责人")], "须由个人信息保护负责人答复（R10：15 个工作日内）")
        except ErasureIncomplete as exc:
            self._error(tenant, request_id, actor, str(exc))
            raise
        except RequestError as exc:
            self._error(tenant, request_id, actor, str(exc))
            raise
        except Exception as exc:
            note = f"执行出错（可重试）：{type(exc).__name__}: {exc}"
            self._error(tenant, request_id, actor, note)
            raise RequestError(note) from exc

    def _error(self, tenant: str, request_id: str, actor: str, note: str) -> None:
        with self._tx() as s:
            row = self._get(s, tenant, request_id)
            if State(row.state) is State.IN_PROGRESS:
                self._move(s, row, State.ERROR, actor, note[:2000])
                row.result = _dumps({"error": note[:2000]})

    def _finish(self, job: _Job, result: Mapping[str, Any], note: str,
                extra: Callable[[Session], None] | None = None) -> State:
        with self._tx() as s:
            if extra is not None:
                extra(s)
            row = self._get(s, job.tenant, job.request_id)
            row.result = _dumps(result)
            self._move(s, row, State.COMPLETED, job.actor, note)
        return State.COMPLETED

    def _wait_manual(self, job: _Job, steps: Sequence[tuple[str, str, str]], note: str,
                     result: Mapping[str, Any] | None = None) -> State:
        """Record manual steps (key, what, who) as waiting for a person and move to waiting_manual."""
        with self._tx() as s:
            have: set[str] = set()
            seq = 0
            if steps:
                have = set(s.scalars(select(RequestStep.location_id).where(RequestStep.request_id == job.request_id)))
                seq = len(have)
            for key, what, who in steps:
                if key not in have:
                    s.add(RequestStep(request_id=job.request_id, tenant_id=job.tenant, seq=seq, location_id=key,
                                      action="manual", status=MANUAL_PENDING, attempts=0,
                                      detail=_dumps({"what": what, "who": who}), updated_at=self.clock()))
                    seq += 1
            row = self._get(s, job.tenant, job.request_id)
            if result is not None:
                row.result = _dumps(result)
            if State(row.state) is not State.WAITING_MANUAL:
                self._move(s, row, State.WAITING_MANUAL, job.actor, note)
        return State.WAITING_MANUAL

    def complete_manual(self, tenant: str, request_id: str, actor: str, note: str, *,
                        step: str | None = None) -> State:
        """A person confirms manual steps (all, or the one whose key starts with ``step``); once none is
        left the request continues: an erasure is verified and closed, other requests close."""
        if not note.strip():
            raise RequestError("请说明人工处理的结果（例如工单回执编号）")
        with self._tx() as s:
            row = self._get(s, tenant, request_id)
            if State(row.state) is not State.WAITING_MANUAL:
                raise RequestError(f"请求处于「{STATE_ZH[State(row.state)]}」状态，没有等待人工处理的步骤")
            pending = [st for st in s.scalars(select(RequestStep).where(
                RequestStep.request_id == row.id, RequestStep.status == MANUAL_PENDING).order_by(RequestStep.seq))
                if step is None or st.location_id.startswith(step)]
            if not pending:
                raise RequestError(f"没有匹配 {step} 的待人工处理步骤")
            for st in pending:
                detail = json.loads(st.detail) if st.detail else {}
                st.status = DONE
                st.attempts += 1
                st.detail = _dumps({**detail, "confirmed_by": actor, "note": note})
                st.updated_at = self.clock()
            left = s.scalar(select(func.count()).select_from(RequestStep).where(
                RequestStep.request_id == row.id, RequestStep.status == MANUAL_PENDING))
            self.audit.record_in(s, tenant, actor, AuditAction.RIGHTS_REQUEST_STEP, subject=self._subject_of(row),
                                 details={"request": row.id, "manual_steps_confirmed": [p.location_id for p in pending]})
            if left:
                return State.WAITING_MANUAL
            self._move(s, row, State.IN_PROGRESS, actor, f"人工步骤已确认：{note}")
            rid = row.id
        return self.run(tenant, rid, actor)

    # --- erasure -----------------------------------------------------------------------------------------
    def _prerequisites(self, tenant: str, kind: str, subject: str,
                       decl: Declaration | None = None) -> tuple[list[str], list[str]]:
        """(unmet, unchecked): the declaration's cancellation prerequisites that the app's data shows are not
        met (with the Chinese message of the data map's check), and those no check covers (a person
        confirms them). A check whose prerequisite the policy does not state is never applied (R9)."""
        c = (decl or self._declaration(tenant)).account_cancellation
        if c is None or not c.prerequisites:
            return [], []
        dm = self._datamap(tenant)
        unmet: list[str] = []
        unchecked: list[str] = []
        for p in c.prerequisites:
            checks = [k for k in dm.prerequisites if k.match in p.description and k.subject == kind]
            if not checks:
                unchecked.append(p.description)
                continue
            for check in checks:
                loc = next((loc for loc in dm.locations(kind) if loc.store == check.store and loc.table == check.table),
                           None)
                if loc is None:
                    unchecked.append(p.description)
                    continue
                conn = self._connectors(dm, tenant)[loc.store]
                if conn.read(loc, subject, whole=True):
                    unmet.append(check.message)
        return unmet, unchecked

    def _connectors(self, dm: DataMap, tenant: str) -> dict[str, Any]:
        from yinsi.stores.base import connector_for

        def pseudonymise(value: str) -> str:
            return self.audit.pseudonym(tenant, value)

        return {store.id: connector_for(dm, store.id, urls=self.store_urls, pseudonymise=pseudonymise)
                for store in dm.stores}

    def _plan(self, job: _Job, dm: DataMap, locations: Sequence[Location]) -> dict[str, Any]:
        """The plan snapshot, made once before anything is erased and kept encrypted with the request: the
        subject's attributes (a Redis key such as ``sms:code:{phone}`` must still be found after the SQL
        side cleared the phone) and the recipients to notify (R13)."""
        from yinsi.stores.base import resolve_attributes

        with self.sessions() as s:
            token = self._get(s, job.tenant, job.request_id).plan_encrypted
        plan = self._decrypt(job.tenant, PLAN_FIELD, token)
        if plan is not None:
            return dict(plan)
        # Redis keys need them, and so do the people doing manual steps after the app's rows are gone
        needs_attributes = any(loc.attributes or loc.store_kind is StoreKind.MANUAL for loc in locations)
        attributes = resolve_attributes(dm, job.subject, self.store_urls, kind=job.kind) if needs_attributes else {}
        recipients: list[str] = []
        if job.type is RequestType.CANCEL_ACCOUNT or not job.details.get("items"):
            recipients = self._recipients_of(job.tenant, job.subject)
        plan = {"attributes": attributes, "recipients": recipients, "made_at": self.clock().isoformat()}
        with self._tx() as s:
            row = self._get(s, job.tenant, job.request_id)
            if row.plan_encrypted is None:
                row.plan_encrypted = self._encrypt(job.tenant, PLAN_FIELD, plan)
            else:  # a concurrent run made it first: use theirs
                plan = dict(self._decrypt(job.tenant, PLAN_FIELD, row.plan_encrypted))
        return plan

    def _recipients_of(self, tenant: str, subject: str) -> list[str]:
        """The recipients the person's data was actually provided to: allowed gate decisions with a
        recipient in the processing records (the same records as the person's 双清单)."""
        from yinsi.storage.consent_tables import ProcessingRecord

        if self._consents is not None:
            self._consents.flush()  # records still buffered in this process
        with self.sessions() as s:
            return sorted(str(r) for r in s.scalars(select(ProcessingRecord.recipient).distinct().where(
                ProcessingRecord.tenant_id == tenant, ProcessingRecord.subject_id == subject,
                ProcessingRecord.allowed.is_(True), ProcessingRecord.recipient.is_not(None))))

    def _erasure_locations(self, job: _Job, dm: DataMap) -> list[Location]:
        locations = dm.locations(job.kind)
        items = job.details.get("items")
        if items:
            locations = [loc for loc in locations if loc.item in set(items)]
            if not locations:
                raise RequestError(f"数据地图中该主体没有这些个人信息项：{'、'.join(items)}")
        return locations

    def _run_erasure(self, job: _Job, step_hook: Callable[[int], None] | None) -> State:
        from yinsi.stores.plan import erasure_order

        dm = self._datamap(job.tenant)
        subj = self._subject(dm, job.kind)
        cancel = job.type is RequestType.CANCEL_ACCOUNT
        if cancel:
            unmet, unchecked = self._prerequisites(job.tenant, job.kind, job.subject, job.decl)
            if unmet:
                with self._tx() as s:
                    row = self._get(s, job.tenant, job.request_id)
                    self._move(s, row, State.REFUSED, job.actor, "注销前提未满足",
                               Refusal(RefusalGround.PREREQUISITE_UNMET, "；".join(unmet)))
                return State.REFUSED
            open_prereqs = self._open_manual(job, [f"prerequisite:{k}" for k in range(len(unchecked))])
            if unchecked and open_prereqs:
                return self._wait_manual(job, [(f"prerequisite:{k}", f"确认注销前提：{p}", "客服")
                                               for k, p in enumerate(unchecked)], "注销前提须人工确认，确认前不删除任何数据")
        locations = self._erasure_locations(job, dm)
        plan = self._plan(job, dm, locations)
        connectors = self._connectors(dm, job.tenant)
        for conn in connectors.values():
            if hasattr(conn, "bind"):
                conn.bind(plan["attributes"], job.subject)
        ops = erasure_operations(erasure_order(locations, connectors), subj, cancel=cancel)
        decl = job.decl or self._declaration(job.tenant)
        notices, manual_notices = self._recipient_notices(dm, decl, plan["recipients"])
        status_of = self._ensure_steps(job, [(op.key, op.action) for op in ops]
                                       + [(f"notify:{rid}", "manual") for rid, _ in manual_notices])
        delay = float(os.environ.get(STEP_DELAY_ENV, "0") or 0)
        index = {op.key: n for n, op in enumerate(ops)}

        def step(op: Operation) -> tuple[str, str, dict[str, Any]]:
            if op.action == "manual":
                return op.key, MANUAL_PENDING, {"what": op.first.description, "who": op.first.who,
                                                "items": [loc.item_name for loc in op.locations]}
            detail = self._execute(job, op, connectors[op.store], subj)
            if step_hook is not None:
                step_hook(index[op.key])
            if delay:
                time.sleep(delay)
            return op.key, DONE, detail

        todo = [op for op in ops if status_of.get(op.key) not in (DONE, MANUAL_PENDING)]
        self._in_layers(job, todo, connectors, step)
        for rid, who in manual_notices:
            if status_of.get(f"notify:{rid}") != DONE:
                self._mark_step(job, f"notify:{rid}", MANUAL_PENDING,
                                {"what": f"通知接收方 {rid} 删除该用户的个人信息（R13）", "who": who})
        verified = self._verify(job, ops, connectors)  # before waiting for people: a failure shows at once
        manual_keys = [op.key for op in ops if op.action == "manual"] + [f"notify:{rid}" for rid, _ in manual_notices]
        if any(status_of.get(k) != DONE for k in manual_keys):
            return self._wait_manual(job, [], f"{verified} 个位置已删除并回读核实；有无法自动处理的系统，"
                                              "等待人工确认（期限照常计算）")
        ended = self._end_consents(job) if cancel or job.details.get("ground") == DeletionGround.CONSENT_WITHDRAWN else 0
        held = self._hold_count(job)
        result = {"locations": len(locations), "operations": len(ops), "verified_locations": verified,
                  "legal_hold_rows": held, "consents_ended": ended,
                  "recipients_notified": [rid for rid, _ in notices], "recipients_notified_manually":
                  [rid for rid, _ in manual_notices], "ground": job.details.get("ground")}
        what = "注销账号" if cancel else "删除"

        def enqueue(s: Session) -> None:
            self._enqueue_notices(s, job, decl, dm, notices)

        return self._finish(job, result, f"{what}完成：{verified} 个位置已删除或匿名化并回读核实；{held} 条依法保存的记录已隔离；"
                                         f"已通知 {len(notices) + len(manual_notices)} 个接收方删除", enqueue)

    def _parallelism(self, connectors: Mapping[str, Any]) -> int:
        """How many store operations may run at once: ``YINSI_RIGHTS_PARALLEL`` (default 4); 1 when Yinsi's
        database or a SQL store is SQLite (one writer at a time)."""
        engines = [self.engine, *(c.engine for c in connectors.values() if hasattr(c, "engine"))]
        if any(e.dialect.name == "sqlite" for e in engines):
            return 1
        return max(1, int(os.environ.get(PARALLEL_ENV, "4") or 4))

    def _in_layers(self, job: _Job, ops: Sequence[Operation], connectors: Mapping[str, Any],
                   step: Callable[[Operation], tuple[str, str, dict[str, Any]]]) -> None:
        """Run ``step`` for every operation, layer by layer (``rights.plan.layers``), and record each
        layer's steps in one transaction once all its stores committed. The operations of a concurrent
        layer touch unrelated tables and run at once. A failure still records what its layer finished,
        then raises. A run killed inside a layer repeats that layer: every operation is idempotent."""
        from concurrent.futures import ThreadPoolExecutor

        width = self._parallelism(connectors)
        deps = {sid: c.dependencies() for sid, c in connectors.items() if hasattr(c, "dependencies")} if width > 1 else {}
        with ThreadPoolExecutor(max_workers=width) as pool:
            for concurrent, group in layers(ops, deps):
                if concurrent and width > 1 and len(group) > 1:
                    futures = [pool.submit(step, op) for op in group]
                    outcomes = [(f.result() if f.exception() is None else f.exception()) for f in futures]
                else:
                    outcomes = []
                    for op in group:
                        try:
                            outcomes.append(step(op))
                        except Exception as exc:
                            outcomes.append(exc)
                            break
                done = [o for o in outcomes if isinstance(o, tuple)]
                if done:
                    self._mark_steps(job, done)
                failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
                if failure is not None:
                    raise failure

    def _map_parallel(self, fn: Callable[[Any], Any], items: Sequence[Any], connectors: Mapping[str, Any]) -> list[Any]:
        """``[fn(x) for x in items]``, concurrently for server databases (read-only work)."""
        from concurrent.futures import ThreadPoolExecutor

        width = self._parallelism(connectors)
        if width == 1 or len(items) < 2:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=width) as pool:
            return list(pool.map(fn, items))

    def _execute(self, job: _Job, op: Operation, conn: Any, subj: Subject) -> dict[str, Any]:
        loc = op.first
        if op.action == "mark":
            n = conn.mark(loc, job.subject, dict(subj.cancelled_marker or {}))
            return {"affected": n, "detail": f"已标记 {n} 行为已注销"}
        if op.action == "null":
            res = conn.null_columns(op.locations, job.subject)
            return {"affected": res.affected, "detail": res.detail}
        if op.action == "hold" and hasattr(conn, "erase_captured"):
            # the rows go to the vault (committed) before their deletion commits, in one statement
            res = conn.erase_captured(loc, job.subject, lambda rows: self._hold(job, op, rows))
            return {"affected": res.affected, "detail": res.detail, "captured": res.affected}
        captured = 0
        if op.holds:
            rows = conn.read(loc, job.subject, whole=op.action == "hold")
            captured = self._hold(job, op, rows)
        result = conn.erase(loc, job.subject)
        out: dict[str, Any] = {"affected": result.affected, "detail": result.detail}
        if op.holds:
            out["captured"] = captured
        return out

    def _verify(self, job: _Job, ops: Sequence[Operation], connectors: Mapping[str, Any]) -> int:
        """Read every location back; raise ErasureIncomplete naming each location that still holds data."""
        left: list[str] = []
        failed: dict[str, list[str]] = {}
        # what to read back: for a table whose rows are deleted, the rows reaching the subject (every column
        # of the table at once); otherwise each location
        checks: list[tuple[Operation, Location, tuple[Location, ...]]] = []
        for op in ops:
            if op.action in ("manual", "mark"):
                continue
            if op.action in ("delete", "hold"):
                checks.append((op, op.first, op.locations))
            elif op.action == "null" and hasattr(connectors[op.store], "remaining_null"):
                checks.append((op, op.first, op.locations))  # every nulled column of the table in one query
            else:
                checks.extend((op, loc, (loc,)) for loc in op.locations)

        def read_back(check: tuple[Operation, Location, tuple[Location, ...]]) -> list[Any]:
            op, loc, covered = check
            conn = connectors[op.store]
            if op.action == "null" and len(covered) > 1 and hasattr(conn, "remaining_null"):
                return list(conn.remaining_null(covered, job.subject))
            return list(conn.remaining(loc, job.subject))

        verified = sum(len(c[2]) for c in checks)
        for (op, _, covered), rows in zip(checks, self._map_parallel(read_back, checks, connectors), strict=True):
            if rows:
                unit = "行" if op.action in ("delete", "hold") else "处"
                by_column = op.action == "null" and len(covered) > 1  # name only the columns still holding a value
                for loc in covered:
                    hits = [r for r in rows if loc.column in r.values] if by_column else rows
                    if hits:
                        failed.setdefault(op.key, []).append(f"{loc.id}（{len(hits)} {unit}，例如 {hits[0].key}）")
        if failed:
            # the steps that claimed success are reopened, so a retry runs them again
            for key, where in failed.items():
                self._mark_step(job, key, PENDING, {"read_back_left": where})
                left.extend(where)
            raise ErasureIncomplete("删除后回读发现仍有数据，请求未完成（相应步骤已重新打开，可重试）：" + "；".join(left))
        return verified

    def _hold(self, job: _Job, op: Operation, rows: Sequence[Any]) -> int:
        """Move held rows into the encrypted legal-hold vault (T3) before they leave the live store;
        idempotent per row. Returns how many rows the vault holds for this operation."""
        loc = op.first
        hold = loc.legal_hold
        days = hold.min_days if hold is not None and hold.min_days else 3 * 365
        until = self.clock().astimezone(BEIJING).date() + timedelta(days=days)
        basis = (hold.basis if hold is not None and hold.basis else "法律法规要求保存")[:500]
        cipher = self._cipher(job.tenant)
        with self._tx() as s:
            have = set(s.scalars(select(LegalHoldRecord.source_key).where(
                LegalHoldRecord.tenant_id == job.tenant, LegalHoldRecord.request_id == job.request_id,
                LegalHoldRecord.location_id == op.key)))
            for r in rows:
                if r.key in have:
                    continue
                s.add(LegalHoldRecord(
                    tenant_id=job.tenant, request_id=job.request_id, location_id=op.key, source_key=r.key[:500],
                    basis=basis, payload_encrypted=cipher.encrypt_text(HOLD_FIELD, _dumps(r.values)),
                    hold_until=until, created_at=self.clock()))
                have.add(r.key)
        return len(have)

    def _hold_count(self, job: _Job) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(LegalHoldRecord).where(
                LegalHoldRecord.tenant_id == job.tenant, LegalHoldRecord.request_id == job.request_id)) or 0)

    def _recipient_notices(self, dm: DataMap, decl: Declaration, recipients: Sequence[str]
                           ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(by e-mail: (recipient, address)), (by a person: (recipient, who)) for the recipients that received
        the person's data. Authorities that received it under a statutory duty are not asked to delete."""
        emails: list[tuple[str, str]] = []
        manual: list[tuple[str, str]] = []
        for rid in recipients:
            r = decl.recipient(rid)
            if r is not None and r.legal_basis is LegalBasis.STATUTORY_DUTY:
                continue
            contact = dm.recipients.get(rid)
            if contact is not None and contact.email:
                emails.append((rid, contact.email))
            else:
                manual.append((rid, (contact.who if contact is not None and contact.who else "个人信息保护负责人")))
        return emails, manual

    def _enqueue_notices(self, s: Session, job: _Job, decl: Declaration, dm: DataMap,
                         notices: Sequence[tuple[str, str]]) -> None:
        """R13: one e-mail per recipient, in the transaction that completes the request (exactly once)."""
        from yinsi.notify.messages import recipient_deletion_notice

        if not notices:
            return
        tax = taxonomy()
        ref = self.audit.pseudonym(job.tenant, job.subject)
        for rid, address in notices:
            r = decl.recipient(rid)
            items = [tax.items[i].name for i in (r.items if r is not None else []) if i in tax.items]
            text = recipient_deletion_notice(recipient_name=r.name if r is not None else rid,
                                             controller_name=decl.controller.legal_name.value or decl.app.name,
                                             app_name=decl.app.name, subject_ref=ref, items=items,
                                             request_ref=job.request_id)
            self.outbox.enqueue_in(s, job.tenant, "email", address, text.subject, text.body, "deletion_notice",
                                   job.request_id, now=self.clock(), template=text.template, params=text.params)

    def _end_consents(self, job: _Job, scopes: Sequence[str] | None = None) -> int:
        """Withdraw the subject's active consents (all, or ``scopes``); idempotent: only active ones change."""
        cs = self.consents
        n = 0
        for scope, st in cs.state(job.tenant, job.subject).consents.items():
            if st.status is Status.ACTIVE and (scopes is None or scope in scopes):
                cs.record_consent(job.tenant, job.subject, scope, EventType.WITHDRAWN, kind=st.kind, channel="staff",
                                  actor=f"rights-request:{job.request_id[:8]}")
                n += 1
        return n

    # --- steps -------------------------------------------------------------------------------------------
    def _ensure_steps(self, job: _Job, steps: Sequence[tuple[str, str]]) -> dict[str, str]:
        """Record the plan's steps not recorded yet (pending); returns every step's status."""
        with self._tx() as s:
            have = {str(k): str(v) for k, v in s.execute(select(RequestStep.location_id, RequestStep.status)
                                                         .where(RequestStep.request_id == job.request_id)).all()}
            seq = len(have)
            for key, action in steps:
                if key not in have:
                    s.add(RequestStep(request_id=job.request_id, tenant_id=job.tenant, seq=seq, location_id=key,
                                      action=action, status=PENDING, attempts=0, detail=None, updated_at=self.clock()))
                    have[key] = PENDING
                    seq += 1
        return have

    def _step_status(self, request_id: str) -> dict[str, str]:
        with self.sessions() as s:
            rows = s.execute(select(RequestStep.location_id, RequestStep.status)
                             .where(RequestStep.request_id == request_id)).all()
            return {str(key): str(value) for key, value in rows}

    def _open_manual(self, job: _Job, keys: Sequence[str] | None) -> bool:
        """Whether manual steps are still pending (only those in ``keys``; any, with None). Keys of steps
        not yet recorded count as open."""
        status_of = self._step_status(job.request_id)
        if keys is None:
            return any(v == MANUAL_PENDING for v in status_of.values())
        return any(status_of.get(k) != DONE for k in keys)

    def _mark_step(self, job: _Job, key: str, status_: str, detail: Mapping[str, Any]) -> None:
        """Record one step (committed): its status, one more attempt, what it did."""
        self._mark_steps(job, [(key, status_, dict(detail))])

    def _mark_steps(self, job: _Job, steps: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        """Record several steps in one transaction."""
        now = self.clock()
        t = cast(Table, RequestStep.__table__)
        stmt = (update(t).where(t.c.request_id == job.request_id, t.c.location_id == bindparam("b_key"))
                .values(status=bindparam("b_status"), attempts=t.c.attempts + 1, detail=bindparam("b_detail"),
                        updated_at=now))
        params = [{"b_key": key, "b_status": status_, "b_detail": _dumps(dict(detail))} for key, status_, detail in steps]
        with self.engine.begin() as conn:
            n = conn.execute(stmt, params).rowcount  # one batch (executemany)
            conn.execute(update(RightsRequest).where(RightsRequest.id == job.request_id,  # still ours: renew
                                                     RightsRequest.lease_owner == _lease_owner())
                         .values(lease_until=now + LEASE))
        if n not in (-1, len(params)):
            raise RuntimeError(f"request {job.request_id}: {len(params)} steps to record, {n} found")

    # --- copy, correction, withdrawal, explanation -------------------------------------------------------
    def _read_all(self, job: _Job, dm: DataMap, locations: Sequence[Location]) -> list[dict[str, Any]]:
        """Every value the subject has at the locations: one query per SQL table, one read per Redis key."""
        from yinsi.stores.plan import access_order

        connectors = self._connectors(dm, job.tenant)
        ordered = [loc for loc in access_order(locations) if loc.store_kind is not StoreKind.MANUAL]
        reads: dict[tuple[str, str], Location] = {}  # one read per SQL table (whole rows), one per Redis key
        for loc in ordered:
            key = (loc.store, loc.table or "") if loc.store_kind is StoreKind.SQL else (loc.store, loc.id)
            reads.setdefault(key, loc)

        def read(loc: Location) -> list[Any]:
            return list(connectors[loc.store].read(loc, job.subject, whole=loc.store_kind is StoreKind.SQL))

        got = dict(zip(reads, self._map_parallel(read, list(reads.values()), connectors), strict=True))
        found: list[dict[str, Any]] = []
        for loc in ordered:
            if loc.store_kind is StoreKind.SQL:
                rows = [(r.key, r.values.get(loc.column)) for r in got[(loc.store, loc.table or "")]]
            else:
                rows = [(r.key, r.values.get("value")) for r in got[(loc.store, loc.id)]]
            for source, value in rows:
                if value is None or value == "":
                    continue
                found.append({"item": loc.item, "name": loc.item_name, "sensitive": loc.sensitive,
                              "location": loc.id.rsplit("@", 1)[0], "source": source, "value": value})
        return found

    def _manual_sources(self, dm: DataMap, locations: Sequence[Location]) -> list[tuple[str, str, str]]:
        seen: dict[str, tuple[str, str, str]] = {}
        for loc in locations:
            if loc.store_kind is StoreKind.MANUAL:
                step = loc.id.split("/")[1]
                store = dm.store(loc.store)
                name = store.name if store is not None else loc.store
                items = "、".join(sorted({x.item_name for x in locations if x.id.split("/")[:2] == loc.id.split("/")[:2]}))
                how = loc.access or f"调取该用户的{items}，交付本人；不要删除或更改"
                seen.setdefault(step, (f"manual:{loc.store}/{step}", f"从“{name}”提供副本：{how}", loc.who or "客服"))
        return list(seen.values())

    def _run_copy(self, job: _Job) -> State:
        decl = job.decl or self._declaration(job.tenant)
        dm = self._datamap(job.tenant)
        locations = dm.locations(job.kind)
        found = self._read_all(job, dm, locations)
        excluded: list[dict[str, Any]] = []
        if job.type is RequestType.PORTABILITY:
            portable = _portable_items(decl)
            keep = [f for f in found if f["item"] in portable]
            for item in sorted({f["item"] for f in found} - portable):
                name = next(f["name"] for f in found if f["item"] == item)
                excluded.append({"item": item, "name": name,
                                 "reason": "该项个人信息不是基于同意或订立、履行合同所必需而处理，不属于转移范围（R2，NDSR 25）"})
            found = keep
        manual = self._manual_sources(dm, locations)
        for _key, what, who in manual:
            excluded.append({"item": "", "name": what, "reason": f"Yinsi 无法直接读取，由{who}另行提供"})
        meta = {"tenant": job.tenant, "app": decl.app.name, "controller": decl.controller.legal_name.value,
                "policy": decl.version.label, "request": job.request_id, "type": job.type.value,
                "generated_at": self.clock().isoformat(),
                "format": "yinsi.portability/1" if job.type is RequestType.PORTABILITY else "yinsi.copy/1"}
        package = build_package(meta, found, excluded=excluded)
        path = self.exports_dir / job.tenant / f"{job.request_id}.zip.enc"
        write_private(path, self._cipher(job.tenant).encrypt_bytes(EXPORT_FIELD, package))
        items = sorted({f["item"] for f in found})
        result = {"package": str(path), "values": len(found), "items": items, "excluded": [e["name"] for e in excluded]}
        with self._tx() as s:
            self.audit.record_in(s, job.tenant, job.actor, AuditAction.EXPORT, subject=job.subject, items=items,
                                 reason=f"{REQUEST_ZH[job.type]}请求 {job.request_id}")
        note = f"已生成{REQUEST_ZH[job.type]}包（{len(found)} 项数据，{len(items)} 类个人信息），加密保存待交付"
        if manual and self._open_manual(job, [k for k, _, _ in manual]):
            return self._wait_manual(job, manual, note + "；另有系统须人工调取", result)
        return self._finish(job, result, note)

    def export(self, tenant: str, request_id: str, output: Path, actor: str = "staff") -> Path:
        """Decrypt the package of an access/copy/portability request to ``output`` (mode 0600), audited."""
        with self.sessions() as s:
            row = self._get(s, tenant, request_id)
            result = json.loads(row.result) if row.result else {}
        token_path = result.get("package")
        if not token_path or not Path(token_path).exists():
            raise RequestError("该请求没有可交付的个人信息包（先运行 yinsi request run）")
        data = self._cipher(tenant).decrypt_bytes(EXPORT_FIELD, Path(token_path).read_bytes())
        write_private(output, data)
        with self._tx() as s:
            self.audit.record_in(s, tenant, actor, AuditAction.EXPORT, subject=self._subject_of(row),
                                 reason=f"交付请求 {row.id} 的个人信息包")
        return output

    def _run_correction(self, job: _Job) -> State:
        changes: dict[str, Any] = dict(job.details.get("changes", {}))
        dm = self._datamap(job.tenant)
        locations = dm.locations(job.kind)
        connectors = self._connectors(dm, job.tenant)
        supplement = job.type is RequestType.SUPPLEMENT
        done: list[str] = []
        manual: list[tuple[str, str, str]] = []
        for key, raw in changes.items():
            targets = [loc for loc in locations if loc.item == key or f"{loc.table}.{loc.column}" == key]
            if not targets:
                raise RequestError(f"数据地图中该主体没有个人信息项或列「{key}」")
            for loc in targets:
                if loc.store_kind is StoreKind.MANUAL:
                    step = f"manual:{loc.id}"
                    manual.append((step, f"在“{loc.description}”所述系统中{'补充' if supplement else '更正'}{loc.item_name}",
                                   loc.who or "客服"))
                    continue
                if loc.store_kind is not StoreKind.SQL:
                    continue  # caches (sessions, codes) are not corrected; they expire
                value = _checked_value(loc.item, raw)
                conn = connectors[loc.store]
                conn.correct(loc, job.subject, value, only_null=supplement)
                back = [r.values.get(loc.column) for r in conn.read(loc, job.subject)]
                if not supplement and any(v != value and str(v) != str(value) for v in back):
                    raise ErasureIncomplete(f"更正后回读不一致：{loc.id}")
                if supplement and not any(str(v) == str(value) for v in back):
                    raise RequestError(f"{loc.item_name}已有内容，不能补充；如需修改请提出更正请求")
                done.append(loc.id)
        with self._tx() as s:
            self.audit.record_in(s, job.tenant, job.actor, AuditAction.RIGHTS_REQUEST_STEP, subject=job.subject,
                                 items=sorted({loc.split("@")[0] for loc in done}),
                                 reason=f"{REQUEST_ZH[job.type]}请求 {job.request_id}")
        result = {"corrected_locations": done, "keys": sorted(changes)}
        note = f"已{REQUEST_ZH[job.type]} {len(done)} 处并回读核实"
        if manual and self._open_manual(job, [k for k, _, _ in manual]):
            return self._wait_manual(job, manual, note + "；另有系统须人工处理", result)
        return self._finish(job, result, note)

    def _run_withdrawal(self, job: _Job) -> State:
        scopes = job.details.get("scopes") or None
        if job.type is RequestType.RESTRICTION:
            return self._run_restriction(job, scopes)
        n = self._end_consents(job, scopes)
        result = {"consents_ended": n, "scopes": scopes or "all"}
        return self._finish(job, result, f"已撤回 {n} 项同意，自撤回时起停止相关处理（此前基于同意的处理不受影响，C6）")

    def _run_restriction(self, job: _Job, consent_scopes: list[str] | None) -> State:
        """PIPL 44: restrict the processing of the named functions (default: all) in the ledger, so that the
        gate refuses it (N4) unless a law requires it; consents named with ``scopes`` are withdrawn too.
        Idempotent: a rerun places nothing twice."""
        decl = job.decl or self._declaration(job.tenant)
        features = list(job.details.get("features") or [])
        restricted = [f"feature:{f}" for f in features] or [RESTRICT_ALL]
        n = self._end_consents(job, consent_scopes) if consent_scopes else 0
        self.consents.restrict(job.tenant, job.subject, restricted, request_ref=job.request_id, actor=job.actor,
                               reason=f"权利请求 {job.request_id}：本人要求限制处理（PIPL 44）")
        names = "、".join(f.name for f in decl.features if f.id in features) or "全部个人信息处理"
        result = {"restricted": restricted, "consents_ended": n, "scopes": consent_scopes or []}
        return self._finish(job, result, f"已限制处理：{names}；处理闸门将拒绝相关处理（N4，PIPL 44），"
                                         "法律、行政法规规定必须处理的除外" + (f"；已撤回 {n} 项同意" if n else ""))

    def lift_restriction(self, tenant: str, request_id: str, actor: str, note: str) -> list[str]:
        """Lift the restrictions a completed restriction request placed (the person asked, or the reason
        for the restriction ended); recorded in the ledger, on the request and in the audit log."""
        if not actor.strip() or not note.strip():
            raise RequestError("请写明解除限制的员工与原因（例如：本人申请解除，工单编号）")
        with self.sessions() as s:
            row = self._get(s, tenant, request_id)
            if RequestType(row.type) is not RequestType.RESTRICTION or State(row.state) is not State.COMPLETED:
                raise RequestError("只有已完成的限制处理请求才能解除限制")
            result = json.loads(row.result) if row.result else {}
            subject = self._subject_of(row)
        if result.get("lifted"):
            raise RequestError(f"该请求的限制已于 {result['lifted']['at']} 解除")
        lifted = self.consents.lift_restriction(tenant, subject, list(result.get("restricted") or []),
                                                request_ref=row.id, actor=actor, reason=note)
        with self._tx() as s:
            row = self._get(s, tenant, request_id)
            result["lifted"] = {"at": self.clock().isoformat(), "by": actor, "scopes": lifted}
            row.result = _dumps(result)
            row.updated_at = self.clock()
            self.audit.record_in(s, tenant, actor, AuditAction.PROCESSING_RESTRICTION, subject=subject,
                                 details={"request": row.id, "event": "lifted", "scopes": lifted})
        return list(lifted)

    def _run_explanation(self, job: _Job) -> State:
        """R5: the processing rules as they apply to this person, from the declaration and the processing
        records; a staff member adds the answer to the person's question, or explains an automated decision."""
        decl = job.decl or self._declaration(job.tenant)
        report = self.consents.report(job.tenant, job.subject)
        lines = [f"{f.name}（{'基本' if f.kind.value == 'basic' else '扩展'}业务功能）：目的 {'；'.join(f.purposes)}；"
                 f"合法性基础 {f.legal_basis.value}" for f in decl.features]
        result = {"features": len(decl.features), "collected_records": len(report.get("collected", [])),
                  "shared_records": len(report.get("shared", [])), "rules": lines}
        about = job.details.get("about", "rules")
        key = "explanation:answer"
        if self._open_manual(job, [key]):
            what = ("解释自动化决策的依据与影响，并告知拒绝的方式（PIPL 24）" if about == "automated_decision"
                    else "答复本人的具体问题")
            return self._wait_manual(job, [(key, what, "个人信息保护负责人")], "处理规则说明已生成，待人工答复", result)
        return self._finish(job, result, "已解释说明处理规则")

    def identifiers(self, tenant: str, request_id: str, staff_id: str, reason: str) -> dict[str, str]:
        """What a person doing a manual step needs to find the subject in a system Yinsi cannot reach: the
        subject's key and attributes (e.g. the phone number), from the request's encrypted plan (so they
        survive the erasure) or, before any plan, from the app's data. Only a privacy officer, with a
        reason (S3, S4; a minor's only with an approval, S6); logged as ``unmask`` with the items."""
        from yinsi.staff.errors import StaffError
        from yinsi.staff.service import StaffService
        from yinsi.stores.base import resolve_attributes

        with self.sessions() as s:
            row = self._get(s, tenant, request_id)
            kind, subject, token = row.subject_kind, self._subject_of(row), row.plan_encrypted
        dm = self._datamap(tenant)
        subj = self._subject(dm, kind)
        items = self._attribute_items(dm, subj)
        staff = StaffService(self.sessions, self.audit.log, self.audit.ring, clock=self.clock)
        try:
            pseudonym, details = staff.authorize_unmask(tenant, staff_id, subject, sorted(set(items.values())), reason)
        except StaffError as exc:
            raise RequestError(f"不能查看该请求主体的身份信息：{exc}") from None
        plan = self._decrypt(tenant, PLAN_FIELD, token) or {}
        attributes = dict(plan.get("attributes") or {})
        source = "plan"
        if not attributes:
            attributes, source = resolve_attributes(dm, subject, self.store_urls, kind=kind), "app"
        values = {f"{subj.table}.{subj.key}": subject}
        values.update({f"{subj.table}.{column}": str(attributes[name]) for name, column in subj.attributes.items()
                       if attributes.get(name) is not None})
        shown = sorted({items[n] for n in subj.attributes if attributes.get(n) is not None and n in items})
        self.audit.log.append(tenant, staff_id, AuditAction.UNMASK, pseudonym, shown, reason.strip(),
                              {**details, "request": row.id, "source": source, "purpose": "manual_step"})
        return values

    @staticmethod
    def _attribute_items(dm: DataMap, subj: Subject) -> dict[str, str]:
        """Attribute name → the PI item its column is mapped to."""
        items = {name: dm.subject_column_item(subj.id, column) for name, column in subj.attributes.items()}
        return {name: item for name, item in items.items() if item}

    # --- reading -----------------------------------------------------------------------------------------
    def show(self, tenant: str, request_id: str) -> RequestView:
        with self.sessions() as s:
            row = self._get(s, tenant, request_id)
            steps = [{"seq": st.seq, "key": st.location_id, "action": st.action, "action_zh": ACTION_ZH.get(st.action, ""),
                      "status": st.status, "attempts": st.attempts, "detail": json.loads(st.detail) if st.detail else None}
                     for st in s.scalars(select(RequestStep).where(RequestStep.request_id == row.id)
                                         .order_by(RequestStep.seq))]
            hist = [{"from": t.from_state, "to": t.to_state, "actor": t.actor, "note": t.note, "at": t.at.isoformat()}
                    for t in s.scalars(select(RequestTransition).where(RequestTransition.request_id == row.id)
                                       .order_by(RequestTransition.id))]
            return _view(row, self._shown_subject(row), steps, hist)

    def requests(self, tenant: str, *, open_only: bool = False, subject: str | None = None,
                 due_by: date | None = None, limit: int | None = None) -> list[RequestView]:
        """The tenant's requests, oldest first: only open ones, one subject's, those due by a date."""
        with self.sessions() as s:
            q = select(RightsRequest).where(RightsRequest.tenant_id == tenant)
            if open_only:
                q = q.where(RightsRequest.state.in_([st.value for st in OPEN_STATES]))
            if subject is not None:
                q = q.where(RightsRequest.subject_id.in_({subject, "bi:" + self._blind(tenant, subject)}))
            if due_by is not None:
                q = q.where(RightsRequest.due_date <= due_by)
            q = q.order_by(RightsRequest.received_at, RightsRequest.id)
            if limit is not None:
                q = q.limit(limit)
            return [_view(r, self._shown_subject(r), [], []) for r in s.scalars(q)]

    def overdue(self, tenant: str, today: date | None = None, *, soon_days: int = 3) -> list[tuple[RequestView, str]]:
        """Open requests that are overdue or due within ``soon_days`` working days (provisional deadlines
        outside the calendar's years count as due soon: they need a person)."""
        day = today or self.clock().astimezone(BEIJING).date()
        out = []
        # N working days never span more than 2N + 14 natural days (weekends, the longest holiday block)
        for v in self.requests(tenant, open_only=True, due_by=day + timedelta(days=2 * soon_days + 14)):
            try:
                st: str = status(v.due_date, day, self.calendar, soon=soon_days)
            except CalendarNotCovered:
                st = "overdue" if v.due_date < day else "due_soon"
            if st != "on_track":
                out.append((v, st))
        return out

    def holds(self, tenant: str, request_id: str | None = None) -> list[HoldView]:
        """The legal-hold vault's rows of the tenant (metadata only; payloads stay encrypted)."""
        with self.sessions() as s:
            q = select(LegalHoldRecord).where(LegalHoldRecord.tenant_id == tenant)
            if request_id is not None:
                q = q.where(LegalHoldRecord.request_id == self._get(s, tenant, request_id).id)
            return [HoldView(h.id, h.request_id, h.location_id, h.source_key, h.basis, h.hold_until)
                    for h in s.scalars(q.order_by(LegalHoldRecord.id))]

    def release_holds(self, tenant: str, today: date | None = None) -> int:
        """The retention sweep of the vault: delete the rows whose hold ended before ``today`` (T1), audited."""
        day = today or self.clock().astimezone(BEIJING).date()
        with self._tx() as s:
            res = s.execute(delete(LegalHoldRecord).where(LegalHoldRecord.tenant_id == tenant,
                                                          LegalHoldRecord.hold_until < day)
                            .execution_options(synchronize_session=False))
            n = getattr(res, "rowcount", 0)
            self.audit.record_in(s, tenant, "retention-sweep", AuditAction.RIGHTS_REQUEST_STEP,
                                 details={"legal_holds_released": int(n or 0), "before": day.isoformat()})
        return int(n or 0)


@dataclass
class _Job:
    """What a run needs of its request (read once, in the transaction that started the run)."""

    tenant: str
    request_id: str
    kind: str
    subject: str
    type: RequestType
    details: dict[str, Any]
    actor: str
    policy_label: str
    decl: Declaration | None = None  # the tenant's current declaration, read once per run

    def acting_as(self, rtype: RequestType) -> _Job:
        return _Job(self.tenant, self.request_id, self.kind, self.subject, rtype, self.details, self.actor,
                    self.policy_label, self.decl)


def _check_details(rtype: RequestType, details: dict[str, Any]) -> dict[str, Any]:
    """Validate what a request of ``rtype`` carries (Chinese errors); returns the details to keep."""
    if rtype in CORRECTING or (rtype is RequestType.DECEASED and details.get("action") == "correction"):
        changes = details.get("changes")
        if not isinstance(changes, dict) or not changes:
            raise RequestError("更正或补充请求须给出要修改的个人信息项与新值（--change 项=新值）")
    if rtype is RequestType.DELETION or (rtype is RequestType.DECEASED and details.get("action") == "deletion"):
        ground = details.setdefault("ground", DeletionGround.CONSENT_WITHDRAWN.value)
        if ground not in {g.value for g in DeletionGround}:
            raise RequestError(f"删除请求的理由应为 PIPL 47 的情形之一：{'、'.join(DELETION_GROUND_ZH.values())}")
        items = details.get("items") or []
        unknown = [i for i in items if i not in taxonomy().items]
        if unknown:
            raise RequestError(f"未知的个人信息项：{'、'.join(unknown)}")
    if rtype is RequestType.DECEASED:
        if details.get("action") not in DECEASED_ACTIONS:
            raise RequestError("近亲属请求须说明要行使的权利：access（查阅）、copy（复制）、correction（更正）"
                               "或 deletion（删除）（PIPL 49）")
        if not str(details.get("relation", "")).strip():
            raise RequestError("近亲属请求须说明与死者的关系（配偶、父母、子女等）")
    if rtype is RequestType.EXPLANATION and details.get("about", "rules") not in ("rules", "automated_decision"):
        raise RequestError("解释说明请求的 about 应为 rules（处理规则）或 automated_decision（自动化决策）")
    return details


def _checked_value(item: str, value: Any) -> Any:
    """A corrected value in its canonical form; a mobile number or ID number that is not one is refused."""
    from yinsi.protect.blind_index import normalise

    kinds = {"contact.mobile": "mobile_phone", "property.bank_reserved_phone": "mobile_phone",
             "contact.consignee_phone": "mobile_phone", "identity.id_document": "id_card"}
    if item in kinds and isinstance(value, str):
        try:
            return normalise(kinds[item], value)
        except InvalidIdentifier as exc:
            raise RequestError(f"新值无效：{exc}") from None
    return value


def _portable_items(decl: Declaration) -> set[str]:
    """R2: items processed on consent or contract by at least one feature."""
    return {c.item for f in decl.features if f.legal_basis in PORTABLE_BASES for c in f.collections}


def _view(row: RightsRequest, subject: str, steps: list[dict[str, Any]], hist: list[dict[str, Any]]) -> RequestView:
    return RequestView(row.id, row.tenant_id, row.subject_kind, subject, RequestType(row.type), State(row.state),
                       row.received_at, row.due_date, row.deadline_explanation, bool(row.deadline_provisional),
                       row.refusal_detail, json.loads(row.result) if row.result else None, steps, hist)
