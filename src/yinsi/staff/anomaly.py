"""Abnormal-activity detection (异常行为监测): the app's login and registration events, rate rules per
account, device and IP, and alerts for the security officer (安全负责人).

Accounts, devices and IPs are never stored in the clear: each becomes a keyed pseudonym of the tenant
(``KeyRing.pseudonymise``; an account's pseudonym is the same as the subject pseudonym in audit entries when
the app sends its own user ID as the account). Rules count events — or distinct accounts — of one key within
a sliding window over the stored events: a rule with threshold N and window W fires when N events fall
within less than W of each other (the window ``(t − W, t]``). Time comes from the events, never a hidden
clock, so events sent out of order give the same alerts as in order.
"""

from __future__ import annotations

import ipaddress
import json
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from yinsi.audit import AuditAction, AuditLog
from yinsi.protect.keys import KeyRing
from yinsi.staff.errors import AccessDenied, InvalidInput, NotFound, StaffError
from yinsi.staff.roles import StaffAction, SubjectContext, authorize
from yinsi.staff.service import STAFF_ID_RE, _clean_reason, load_staff
from yinsi.storage.staff_tables import ActivityAlertRow, ActivityEventRow
from yinsi.storage.tables import Tenant

__all__ = [
    "DEFAULT_RULES",
    "ActivityEvent",
    "ActivityMonitor",
    "Alert",
    "AlertStatus",
    "EventKind",
    "IngestResult",
    "KeyKind",
    "RateRule",
    "apply_overrides",
    "load_rules",
    "parse_event",
    "parse_window",
]

MAX_FIELD = 256
_IN_CHUNK = 200


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EventKind(StrEnum):
    LOGIN_SUCCESS = "login_success"
    LOGIN_FAILURE = "login_failure"
    REGISTRATION = "registration"


EVENT_LABELS = {EventKind.LOGIN_SUCCESS: "登录成功", EventKind.LOGIN_FAILURE: "登录失败", EventKind.REGISTRATION: "注册"}


class KeyKind(StrEnum):
    ACCOUNT = "account"
    DEVICE = "device"
    IP = "ip"


KEY_LABELS = {KeyKind.ACCOUNT: "账号", KeyKind.DEVICE: "设备", KeyKind.IP: "IP"}
_KEY_COLUMNS = {KeyKind.ACCOUNT: ActivityEventRow.account_key, KeyKind.DEVICE: ActivityEventRow.device_key,
                KeyKind.IP: ActivityEventRow.ip_key}


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


STATUS_LABELS = {AlertStatus.OPEN: "未处理", AlertStatus.ACKNOWLEDGED: "已确认"}


def _duration_zh(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} 小时"
    if seconds % 60 == 0:
        return f"{seconds // 60} 分钟"
    return f"{seconds} 秒"


@dataclass(frozen=True)
class RateRule:
    """``threshold`` or more events of ``events`` with the same ``key`` within ``window_seconds`` (or, with
    ``distinct``, that many different values of that field, e.g. accounts per device)."""

    name: str
    events: frozenset[EventKind]
    key: KeyKind
    threshold: int
    window_seconds: int
    distinct: KeyKind | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.name):
            raise InvalidInput(f"规则名 {self.name!r} 无效：须为 1 到 64 个字母、数字或 _ . -")
        if not self.events:
            raise InvalidInput(f"规则 {self.name} 没有指定事件类型（events）")
        if self.threshold < 1:
            raise InvalidInput(f"规则 {self.name} 的阈值须为正整数")
        if self.window_seconds < 1:
            raise InvalidInput(f"规则 {self.name} 的时间窗须至少 1 秒")
        if self.distinct is not None and self.distinct == self.key:
            raise InvalidInput(f"规则 {self.name} 的 distinct 不能与 key 相同")

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_seconds)

    def describe(self) -> str:
        if self.description:
            return self.description
        what = "、".join(EVENT_LABELS[e] for e in sorted(self.events))
        counted = f"出现 ≥{self.threshold} 个不同{KEY_LABELS[self.distinct]}" if self.distinct else \
            f"{what} ≥{self.threshold} 次"
        return f"同一{KEY_LABELS[self.key]}在 {_duration_zh(self.window_seconds)}内{counted}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "events": sorted(e.value for e in self.events), "key": self.key.value,
                "threshold": self.threshold, "window_seconds": self.window_seconds,
                "distinct": self.distinct.value if self.distinct else None, "description": self.describe()}


ALL_EVENTS = frozenset(EventKind)

#: The default rules (documented in docs/staff.md).
DEFAULT_RULES: tuple[RateRule, ...] = (
    RateRule("login_failures_per_account", frozenset({EventKind.LOGIN_FAILURE}), KeyKind.ACCOUNT, 5, 600,
             description="同一账号 10 分钟内登录失败 ≥5 次（疑似暴力破解）"),
    RateRule("login_failures_per_ip", frozenset({EventKind.LOGIN_FAILURE}), KeyKind.IP, 20, 600,
             description="同一 IP 10 分钟内登录失败 ≥20 次（疑似撞库）"),
    RateRule("registrations_per_ip", frozenset({EventKind.REGISTRATION}), KeyKind.IP, 20, 3600,
             description="同一 IP 1 小时内注册 ≥20 次（疑似批量注册）"),
    RateRule("accounts_per_device", ALL_EVENTS, KeyKind.DEVICE, 3, 3600, distinct=KeyKind.ACCOUNT,
             description="同一设备 1 小时内出现 ≥3 个不同账号（疑似批量注册或盗号）"),
)

_WINDOW = re.compile(r"^\s*(\d+)\s*(s|sec|秒|m|min|分钟|h|小时|d|天)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "s": 1, "sec": 1, "秒": 1, "m": 60, "min": 60, "分钟": 60, "h": 3600, "小时": 3600, "d": 86400,
          "天": 86400}


def parse_window(value: object) -> int:
    """Seconds from ``600``, ``"600s"``, ``"10m"``, ``"1h"``, ``"1d"`` (or 秒/分钟/小时/天)."""
    if isinstance(value, bool):
        raise InvalidInput(f"时间窗 {value!r} 无效")
    if isinstance(value, int):
        seconds = value
    else:
        m = _WINDOW.match(str(value))
        if not m:
            raise InvalidInput(f"时间窗 {value!r} 无效：写作秒数或 10m、1h、1d")
        seconds = int(m.group(1)) * _UNITS[m.group(2).lower() if m.group(2) else None]
    if seconds < 1:
        raise InvalidInput("时间窗须至少 1 秒")
    return seconds


def _enum(cls: type[EventKind] | type[KeyKind], value: object, what: str) -> Any:
    try:
        return cls(str(value))
    except ValueError:
        raise InvalidInput(f"{what} {value!r} 无效；可选：{'、'.join(m.value for m in cls)}") from None


def _rule_from(data: Mapping[str, Any], base: RateRule | None) -> RateRule:
    known = {"name", "events", "key", "threshold", "window", "window_seconds", "distinct", "description"}
    extra = set(data) - known
    name = str(data.get("name", "")).strip()
    if extra:
        raise InvalidInput(f"规则 {name or '?'} 含未知字段：{'、'.join(sorted(extra))}")
    kw: dict[str, Any] = {}
    if "events" in data:
        events = data["events"]
        if isinstance(events, str):
            events = [events]
        kw["events"] = frozenset(_enum(EventKind, e, "事件类型") for e in events)
    if "key" in data:
        kw["key"] = _enum(KeyKind, data["key"], "key")
    if "threshold" in data:
        t = data["threshold"]
        if isinstance(t, bool) or not isinstance(t, int):
            raise InvalidInput(f"规则 {name} 的阈值须为正整数")
        kw["threshold"] = t
    if "window" in data or "window_seconds" in data:
        kw["window_seconds"] = parse_window(data.get("window", data.get("window_seconds")))
    if "distinct" in data:
        kw["distinct"] = None if data["distinct"] in (None, "", False) else _enum(KeyKind, data["distinct"], "distinct")
    if "description" in data:
        kw["description"] = str(data["description"] or "")
    if base is not None:
        if "description" not in kw and set(kw) & {"threshold", "window_seconds", "events", "key", "distinct"}:
            kw["description"] = ""  # the default text would no longer be true
        return replace(base, **kw)
    missing = [f for f in ("events", "key", "threshold", "window_seconds") if f not in kw]
    if missing:
        raise InvalidInput(f"新规则 {name} 缺少字段：{'、'.join(missing).replace('window_seconds', 'window')}")
    return RateRule(name=name, **kw)


def rules_from_config(config: Mapping[str, Any], base: Sequence[RateRule] = DEFAULT_RULES) -> tuple[RateRule, ...]:
    """Rules from a parsed configuration: ``{"include_defaults": true, "rules": [{...}, ...]}``. A rule named
    like a default changes only the fields given; ``enabled: false`` removes it; new names add rules."""
    if not isinstance(config, Mapping):
        raise InvalidInput("规则文件的顶层须为对象（含 rules 列表）")
    extra = set(config) - {"include_defaults", "rules"}
    if extra:
        raise InvalidInput(f"规则文件含未知字段：{'、'.join(sorted(extra))}")
    rules: dict[str, RateRule] = {r.name: r for r in base} if config.get("include_defaults", True) else {}
    entries = config.get("rules") or []
    if not isinstance(entries, list):
        raise InvalidInput("规则文件的 rules 须为列表")
    for entry in entries:
        if not isinstance(entry, Mapping) or not entry.get("name"):
            raise InvalidInput("每条规则须为对象并含 name")
        data = dict(entry)
        name = str(data["name"]).strip()
        if data.pop("enabled", True) is False:
            rules.pop(name, None)
            continue
        base_rule = rules.get(name) or next((r for r in base if r.name == name), None)
        rules[name] = _rule_from(data, base_rule)
    return tuple(rules.values())


def load_rules(path: Path, base: Sequence[RateRule] = DEFAULT_RULES) -> tuple[RateRule, ...]:
    """Rules from a YAML or JSON file (see :func:`rules_from_config`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"无法读取规则文件 {path}：{exc.strerror or exc}") from None
    try:
        if Path(path).suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # yaml.YAMLError, json.JSONDecodeError
        raise InvalidInput(f"规则文件 {path} 不是合法的 YAML/JSON：{str(exc).splitlines()[0]}") from None
    return rules_from_config(data or {}, base)


def apply_overrides(rules: Sequence[RateRule], overrides: Iterable[str]) -> tuple[RateRule, ...]:
    """Command-line overrides ``NAME=THRESHOLD/WINDOW`` (e.g. ``login_failures_per_account=3/5m``)."""
    out = {r.name: r for r in rules}
    for spec in overrides:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*=\s*(\d+)\s*(?:/\s*(\S+))?\s*", spec)
        if not m:
            raise InvalidInput(f"规则参数 {spec!r} 无效：写作 名称=阈值/时间窗，如 login_failures_per_account=3/5m")
        name = m.group(1)
        if name not in out:
            raise InvalidInput(f"没有名为 {name} 的规则；可选：{'、'.join(out)}")
        data: dict[str, Any] = {"name": name, "threshold": int(m.group(2))}
        if m.group(3):
            data["window"] = m.group(3)
        out[name] = _rule_from(data, out[name])
    return tuple(out.values())


@dataclass(frozen=True)
class ActivityEvent:
    """A login or registration event as the app reports it (account, device and IP still in the clear:
    they are pseudonymised before anything is stored)."""

    kind: EventKind
    account: str = field(repr=False)
    time: datetime
    device: str | None = field(default=None, repr=False)
    ip: str | None = field(default=None, repr=False)


def _text(data: Mapping[str, Any], name: str, required: bool) -> str | None:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(f"事件缺少 {name}")
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidInput(f"事件的 {name} 须为文本")
    text = str(value).strip()
    if len(text) > MAX_FIELD:
        raise InvalidInput(f"事件的 {name} 过长（最多 {MAX_FIELD} 个字符）")
    return text


def _time(value: object) -> datetime:
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ts = datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, str) and value.strip():
        try:
            ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"事件时间 {value!r} 无效：须为 ISO 8601（带时区）或 Unix 秒数") from None
    else:
        raise InvalidInput("事件缺少 time")
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise InvalidInput("事件时间须带时区（如 2026-03-01T08:00:00+08:00 或 …Z）")
    return ts.astimezone(UTC)


def parse_event(data: Mapping[str, Any]) -> ActivityEvent:
    """An event from JSON: ``{"kind": "login_failure", "account": "...", "device": "...", "ip": "...",
    "time": "2026-03-01T08:00:00+08:00"}``. Errors never repeat the account, device or IP."""
    if not isinstance(data, Mapping):
        raise InvalidInput("事件须为 JSON 对象")
    kind = _enum(EventKind, data.get("kind", data.get("type")), "事件类型 kind")
    account = _text(data, "account", True)
    assert account is not None
    ip = _text(data, "ip", False)
    if ip is not None:
        try:
            ip = ipaddress.ip_address(ip).compressed
        except ValueError:
            raise InvalidInput("事件的 ip 不是有效的 IPv4/IPv6 地址") from None
    return ActivityEvent(kind, account, _time(data.get("time")), _text(data, "device", False), ip)


@dataclass(frozen=True)
class Alert:
    """An alert (告警) as the security officer sees it: the key only as a pseudonym."""

    id: int
    tenant: str
    rule: str
    key_kind: str
    key_hash: str
    count: int
    threshold: int
    window_seconds: int
    first_at: datetime
    last_at: datetime
    status: str
    created_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    note: str | None

    @classmethod
    def from_row(cls, r: ActivityAlertRow) -> Alert:
        return cls(r.id, r.tenant_id, r.rule, r.key_kind, r.key_hash, r.count, r.threshold, r.window_seconds,
                   r.first_at, r.last_at, r.status, r.created_at, r.acknowledged_by, r.acknowledged_at, r.note)

    def to_dict(self) -> dict[str, Any]:
        def t(v: datetime | None) -> str | None:
            return None if v is None else v.astimezone(UTC).isoformat()

        return {"id": self.id, "tenant": self.tenant, "rule": self.rule, "key_kind": self.key_kind,
                "key": self.key_hash, "count": self.count, "threshold": self.threshold,
                "window_seconds": self.window_seconds, "first_at": t(self.first_at), "last_at": t(self.last_at),
                "status": self.status, "created_at": t(self.created_at), "acknowledged_by": self.acknowledged_by,
                "acknowledged_at": t(self.acknowledged_at), "note": self.note}


@dataclass
class IngestResult:
    events: int = 0
    raised: list[Alert] = field(default_factory=list)
    updated: list[Alert] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"events": self.events, "raised": [a.to_dict() for a in self.raised],
                "updated": [a.to_dict() for a in self.updated]}


@dataclass(frozen=True)
class _Point:
    time: datetime
    value: str | None  # the distinct field's pseudonym
    new: bool


def firing_windows(points: Sequence[_Point], rule: RateRule) -> list[tuple[datetime, datetime, int]]:
    """Episodes ``(first, last, peak count)`` where ``rule`` fires over windows ``(s − W, s]`` that contain
    at least one new point; overlapping windows merge into one episode. ``points`` are sorted by time."""
    times = [p.time for p in points]
    new_prefix = [0]
    for p in points:
        new_prefix.append(new_prefix[-1] + p.new)
    window = rule.window
    episodes: list[tuple[datetime, datetime, int]] = []
    counter: Counter[str] = Counter()
    lo = hi = 0
    for end in sorted(set(times)):
        new_hi = bisect_right(times, end)
        new_lo = bisect_right(times, end - window)
        if rule.distinct is not None:
            for p in points[hi:new_hi]:
                if p.value is not None:
                    counter[p.value] += 1
            for p in points[lo:new_lo]:
                if p.value is not None:
                    counter[p.value] -= 1
                    if counter[p.value] == 0:
                        del counter[p.value]
        lo, hi = new_lo, new_hi
        count = len(counter) if rule.distinct is not None else hi - lo
        if count < rule.threshold or new_prefix[hi] - new_prefix[lo] == 0:
            continue
        first = times[lo]
        if episodes and first <= episodes[-1][1]:
            f, _, peak = episodes[-1]
            episodes[-1] = (f, end, max(peak, count))
        else:
            episodes.append((first, end, count))
    return episodes


class ActivityMonitor:
    """Ingests the app's login and registration events and raises alerts on rate rules.

    ``ActivityMonitor(sessions, ring, audit, rules=DEFAULT_RULES)``; ``clock`` only stamps when rows were
    recorded — detection uses the events' own times. ``ring`` may be ``None`` for listing and acknowledging.
    """

    def __init__(self, sessions: sessionmaker[Session], ring: KeyRing | None, audit: AuditLog | None = None, *,
                 rules: Sequence[RateRule] = DEFAULT_RULES, clock: Callable[[], datetime] = _utcnow) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise InvalidInput("规则名重复")
        self.sessions = sessions
        self._ring = ring
        self.audit = audit
        self.rules = tuple(rules)
        self.clock = clock

    @property
    def ring(self) -> KeyRing:
        if self._ring is None:
            raise StaffError("导入事件需要主密钥与租户密钥（KeyRing），以便将账号、设备、IP 假名化")
        return self._ring

    def key_of(self, tenant: str, kind: KeyKind | str, value: str) -> str:
        """The stored pseudonym of an account, device or IP (to look up alerts about a known value)."""
        k = KeyKind(kind)
        if k is KeyKind.ACCOUNT:
            return self.ring.pseudonymise(tenant, value)
        if k is KeyKind.IP:
            value = ipaddress.ip_address(value.strip()).compressed
        return self.ring.pseudonymise(tenant, f"{k.value}\x00{value}")

    def ingest(self, tenant: str, event: ActivityEvent | Mapping[str, Any]) -> IngestResult:
        return self.ingest_many(tenant, [event])

    def ingest_many(self, tenant: str, events: Iterable[ActivityEvent | Mapping[str, Any]]) -> IngestResult:
        """Store the events (pseudonymised) and evaluate every rule over the windows they fall in."""
        parsed = [e if isinstance(e, ActivityEvent) else parse_event(e) for e in events]
        result = IngestResult(events=len(parsed))
        if not parsed:
            return result
        now = self.clock()
        rows = [ActivityEventRow(
            tenant_id=tenant, kind=e.kind.value, account_key=self.key_of(tenant, KeyKind.ACCOUNT, e.account),
            device_key=None if e.device is None else self.key_of(tenant, KeyKind.DEVICE, e.device),
            ip_key=None if e.ip is None else self.key_of(tenant, KeyKind.IP, e.ip),
            event_time=e.time, recorded_at=now) for e in parsed]
        with self.sessions() as s, s.begin():
            s.add_all(rows)
            s.flush()
            new_ids = {r.id for r in rows}
            for rule in self.rules:
                self._evaluate(s, tenant, rule, rows, new_ids, now, result)
        return result

    def _evaluate(self, s: Session, tenant: str, rule: RateRule, rows: Sequence[ActivityEventRow], new_ids: set[int],
                  now: datetime, result: IngestResult) -> None:
        key_col = _KEY_COLUMNS[rule.key]
        relevant = [r for r in rows if r.kind in rule.events and getattr(r, key_col.key) is not None]
        if not relevant:
            return
        keys = sorted({getattr(r, key_col.key) for r in relevant})
        lo = min(r.event_time for r in relevant) - rule.window
        hi = max(r.event_time for r in relevant) + rule.window
        value_col = _KEY_COLUMNS[rule.distinct] if rule.distinct else None
        points: dict[str, list[_Point]] = {}
        for i in range(0, len(keys), _IN_CHUNK):
            chunk = keys[i:i + _IN_CHUNK]
            q = select(ActivityEventRow.id, key_col, ActivityEventRow.event_time,
                       value_col if value_col is not None else key_col).where(
                ActivityEventRow.tenant_id == tenant, key_col.in_(chunk),
                ActivityEventRow.kind.in_([e.value for e in rule.events]),
                ActivityEventRow.event_time > lo, ActivityEventRow.event_time < hi)
            for rid, key, at, value in s.execute(q):
                if key is not None:
                    points.setdefault(key, []).append(_Point(at, value, rid in new_ids))
        for key in keys:
            pts = sorted(points.get(key, []), key=lambda p: p.time)
            for first, last, peak in firing_windows(pts, rule):
                self._record(s, tenant, rule, key, first, last, peak, now, result)

    def _record(self, s: Session, tenant: str, rule: RateRule, key: str, first: datetime, last: datetime, peak: int,
                now: datetime, result: IngestResult) -> None:
        existing = s.scalars(select(ActivityAlertRow).where(
            ActivityAlertRow.tenant_id == tenant, ActivityAlertRow.rule == rule.name,
            ActivityAlertRow.key_hash == key, ActivityAlertRow.first_at <= last, ActivityAlertRow.last_at >= first,
        ).order_by(ActivityAlertRow.id).limit(1)).first()
        if existing is None:
            row = ActivityAlertRow(tenant_id=tenant, rule=rule.name, key_kind=rule.key.value, key_hash=key, count=peak,
                                   threshold=rule.threshold, window_seconds=rule.window_seconds, first_at=first,
                                   last_at=last, status=AlertStatus.OPEN.value, created_at=now)
            s.add(row)
            s.flush()
            result.raised.append(Alert.from_row(row))
            return
        changed = False
        if first < existing.first_at:
            existing.first_at, changed = first, True
        if last > existing.last_at:
            existing.last_at, changed = last, True
        if peak > existing.count:
            existing.count, changed = peak, True
        if changed:
            s.flush()
            alert = Alert.from_row(existing)
            if all(a.id != alert.id for a in result.raised):
                result.updated = [a for a in result.updated if a.id != alert.id] + [alert]
            else:
                result.raised = [alert if a.id == alert.id else a for a in result.raised]

    # --- for the security officer ------------------------------------------------------------------

    def _officer(self, s: Session, tenant: str, staff_id: str, action: StaffAction) -> None:
        auth = authorize(load_staff(s, tenant, staff_id), action, SubjectContext(tenant))
        if not auth:
            if self.audit is not None and s.get(Tenant, tenant) is not None:
                actor = staff_id if STAFF_ID_RE.match(staff_id or "") else "unknown"
                self.audit.append(tenant, actor, AuditAction.OTHER, details={
                    "outcome": "denied", "rule": auth.rule, "attempted": auth.action.value, "why": auth.reason_zh})
            raise AccessDenied(auth)

    def alerts(self, tenant: str, staff_id: str, *, status: AlertStatus | str | None = None,
               limit: int | None = None) -> list[Alert]:
        """The tenant's alerts, newest first; only for a security officer."""
        with self.sessions() as s:
            self._officer(s, tenant, staff_id, StaffAction.VIEW_ALERTS)
            q = select(ActivityAlertRow).where(ActivityAlertRow.tenant_id == tenant)
            if status is not None:
                q = q.where(ActivityAlertRow.status == AlertStatus(status).value)
            q = q.order_by(ActivityAlertRow.id.desc())
            if limit:
                q = q.limit(limit)
            return [Alert.from_row(r) for r in s.scalars(q)]

    def get_alert(self, alert_id: int) -> Alert:
        with self.sessions() as s:
            row = s.get(ActivityAlertRow, alert_id)
            if row is None:
                raise NotFound(f"没有告警 {alert_id}")
            return Alert.from_row(row)

    def ack(self, alert_id: int, staff_id: str, *, note: str | None = None, tenant: str | None = None) -> Alert:
        """Acknowledge an alert (确认): a security officer of its tenant; logged in the audit log."""
        text = _clean_reason(note, "备注") if note and note.strip() else None
        with self.sessions() as s:
            row = s.get(ActivityAlertRow, alert_id)
            if row is None or (tenant is not None and row.tenant_id != tenant):
                raise NotFound(f"没有告警 {alert_id}")
            owner = row.tenant_id
            self._officer(s, owner, staff_id, StaffAction.ACK_ALERT)
        with self.sessions() as s, s.begin():
            row = s.get(ActivityAlertRow, alert_id)
            assert row is not None
            if row.status != AlertStatus.ACKNOWLEDGED:
                row.status = AlertStatus.ACKNOWLEDGED.value
                row.acknowledged_by = staff_id
                row.acknowledged_at = self.clock()
                row.note = text
                if self.audit is not None:
                    self.audit.append_in(s, owner, staff_id, AuditAction.OTHER, reason=text, details={
                        "step": "alert_ack", "alert": alert_id, "rule": row.rule, "key_kind": row.key_kind})
            return Alert.from_row(row)

    def prune(self, tenant: str, before: datetime) -> int:
        """Delete stored events older than ``before`` (keep at least the longest window); returns how many."""
        with self.sessions() as s, s.begin():
            res = s.execute(delete(ActivityEventRow).where(ActivityEventRow.tenant_id == tenant,
                                                           ActivityEventRow.event_time < before))
            return int(getattr(res, "rowcount", 0) or 0)
