"""Notices of a policy change and of the end of the service (变更告知、停止运营告知). Pure: time is passed in.

- :func:`change_summary`: the changes between two versions in Chinese, one line per changed element, from
  :func:`yinsi.domain.changes.diff_declarations` (N7: a changed policy notifies the changed parts).
- :func:`plan_change_notice`: when notices go out and by when they must arrive: before the effective date,
  at least ``policy_changes.notice_days`` days before when the declaration promises that; refused (with a
  Chinese reason) when a notice sent now would arrive later. A letter takes :data:`CHANNEL_DAYS` days.
- :func:`plan_termination`: the end of the service needs at least 30 days' notice (:data:`TERMINATION_DAYS`);
  the full sweep (R4: service stopped) is due on the stop date.

Days are Beijing calendar days; an effective date takes effect at 00:00 Asia/Shanghai.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from yinsi.domain.changes import CRITERIA_ZH, Change, PolicyDiff, Reduction, rights_reductions
from yinsi.domain.policy import CHANNEL_KIND_ZH, RIGHT_ZH, Declaration, RightKind
from yinsi.domain.taxonomy import taxonomy

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
TERMINATION_DAYS = 30

#: Days a notice takes to reach a person through a channel (a letter is posted); others arrive at once.
CHANNEL_DAYS: dict[str, int] = {"mail": 3, "letter": 3, "written": 3}

#: Declared notice channels Yinsi sends itself (through the outbox) and the identifier kind they need.
OUTBOX_CHANNELS: dict[str, str] = {"email": "email", "sms": "mobile_phone"}
#: Channels the app shows itself: Yinsi posts the notice and the app displays it (the privacy center).
POSTED_CHANNELS = frozenset({"in_app", "popup", "push", "web", "announcement"})

_SECTION_ZH: dict[str, str] = {
    "features": "功能", "sdks": "第三方SDK", "recipients": "个人信息接收方", "rights": "个人权利",
    "retention": "存储期限", "storage": "存储地点与出境", "controller": "个人信息处理者",
    "account_cancellation": "注销账号", "response_time": "答复期限", "security_measures": "安全措施",
    "automated_decisions": "自动化决策", "minors": "未成年人保护", "incident_notice": "安全事件告知",
    "policy_changes": "政策更新规则", "disputes": "争议解决", "consent_exceptions": "征得同意的例外",
    "app": "产品信息", "version": "版本信息",
}
_KIND_ZH = {"added": "新增", "removed": "删除", "changed": "变更"}


class NoticeRefused(ValueError):
    """Notices cannot reach people in time (message in Chinese)."""


def beijing_midnight(day: date) -> datetime:
    """00:00 Beijing time of ``day``, as a UTC datetime."""
    return datetime.combine(day, time(0, 0), BEIJING).astimezone(UTC)


def _beijing_text(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def _element_name(decl: Declaration | None, section: str, key: str) -> str:
    if decl is None:
        return key
    if section == "features":
        f = decl.feature(key)
        return f.name if f else key
    if section == "recipients":
        r = decl.recipient(key)
        return r.name if r else key
    if section == "sdks":
        s = next((s for s in decl.sdks if s.id == key), None)
        return s.name if s else key
    if section == "rights":
        try:
            return RIGHT_ZH[RightKind(key)]
        except ValueError:
            return key
    if section == "retention":
        tax = taxonomy()
        return "、".join(tax.item(i).name if i in tax.items else i for i in key.split(","))
    return key


def _line(change: Change, old: Declaration | None, new: Declaration | None) -> str:
    path = change.path
    head = path.split(".", 1)[0]
    section, _, rest = head.partition("[")
    key = rest.rstrip("]") if rest else ""
    where = _SECTION_ZH.get(section, section)
    decl = new if change.kind != "removed" else old
    if key and path == head:  # a whole element added or removed
        return f"{_KIND_ZH[change.kind]}{where}「{_element_name(decl, section, key)}」"
    detail = path[len(head) + 1:] if len(path) > len(head) else ""
    subject = f"{where}「{_element_name(decl, section, key)}」" if key else where
    return f"{subject}{('的 ' + detail) if detail else ''}{_KIND_ZH[change.kind]}"


@dataclass(frozen=True)
class ChangeSummary:
    """The Chinese summary of a change and what it means for the person."""

    lines: list[str]
    major: bool
    criteria: list[int]
    reductions: list[Reduction]
    reconsent: list[str]

    @property
    def rights_reducing(self) -> bool:
        return bool(self.reductions)

    def text(self) -> str:
        out: list[str] = []
        if self.major:
            out.append("本次更新属于重大变更：" + "；".join(CRITERIA_ZH[c] for c in self.criteria) + "。")
        out.append("主要变更：")
        out.extend(f"{n}. {line}" for n, line in enumerate(self.lines, 1))
        if self.reductions:
            out.append("以下变更减损了您的权利，须经您明确同意方对您适用，继续使用不视为同意：")
            out.extend(f"- {r.what}" for r in self.reductions)
        if self.reconsent:
            out.append("需要您重新同意的事项：")
            out.extend(f"- {r}" for r in self.reconsent)
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "major": self.major, "criteria": self.criteria,
                "rights_reducing": self.rights_reducing, "reductions": [r.to_json() for r in self.reductions],
                "reconsent": self.reconsent, "text": self.text()}


_SKIP = ("version.", "source_file")


def change_summary(diff: PolicyDiff, old: Declaration, new: Declaration, *, limit: int = 30) -> ChangeSummary:
    """One Chinese line per changed element (version dates left out), the reductions and re-consents."""
    lines: list[str] = []
    for c in diff.changes:
        if c.path.startswith(_SKIP):
            continue
        line = _line(c, old, new)
        if line not in lines:
            lines.append(line)
    if len(lines) > limit:
        lines = [*lines[:limit], f"另有 {len(lines) - limit} 项变更，详见新版本隐私政策"]
    if not lines:
        lines = ["文字性修订，处理规则未变"]
    return ChangeSummary(lines, diff.major, diff.criteria_met(), rights_reductions(old, new),
                         [r.reason for r in diff.reconsent])


@dataclass(frozen=True)
class NoticeTiming:
    """When notices are sent and by when they must arrive."""

    send_at: datetime
    arrive_by: datetime
    channels: list[str]
    latest_arrival: datetime
    warnings: list[str] = field(default_factory=list)


def _arrival(send_at: datetime, channels: list[str]) -> datetime:
    days = max((CHANNEL_DAYS.get(c, 0) for c in channels), default=0)
    return send_at + timedelta(days=days)


def plan_change_notice(new: Declaration, now: datetime, *, people: int) -> NoticeTiming:
    """Timing of the notices of ``new``'s change, or :class:`NoticeRefused` when they would arrive late.

    With nobody to notify (``people == 0``) nothing can be late: the timing is returned for the record.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    effective = new.version.effective_date.value
    if effective is None:
        raise NoticeRefused("新版本没有生效日期：无法安排变更告知（N8：政策须写明生效日期）")
    pc = new.policy_changes
    days = pc.notice_days or 0
    arrive_by = beijing_midnight(effective) - timedelta(days=days)
    channels: list[str] = list(dict.fromkeys(str(c) for c in pc.notice_channels))
    warnings: list[str] = []
    if not channels:
        warnings.append("声明未列出变更告知渠道（policy_changes.notice_channels）：只能在隐私政策页面公示")
    latest = _arrival(now, channels)
    if people and latest > arrive_by:
        promise = f"生效前 {days} 天" if days else "生效前"
        slow = [CHANNEL_KIND_ZH.get(c, c) for c in channels if CHANNEL_DAYS.get(c, 0)]
        via = f"（{'、'.join(slow)}需 {max(CHANNEL_DAYS[c] for c in channels if c in CHANNEL_DAYS)} 天送达）" if slow else ""
        raise NoticeRefused(
            f"变更告知无法按承诺送达：新版本 {new.version.label} 于 {effective.isoformat()} 生效，隐私政策承诺"
            f"{promise}告知（最迟 {_beijing_text(arrive_by)} 送达），现在发出的告知最早 {_beijing_text(latest)} "
            f"送达{via}，影响 {people} 人。请推迟生效日期后重新发布（N7、C5）")
    return NoticeTiming(now, arrive_by, channels, latest, warnings)


def plan_termination(stop_date: date, now: datetime, channels: list[str], *, people: int) -> NoticeTiming:
    """Timing of the notices that the service stops on ``stop_date``: at least 30 days before (R4)."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    arrive_by = beijing_midnight(stop_date) - timedelta(days=TERMINATION_DAYS)
    latest = _arrival(now, channels)
    if latest > arrive_by:
        raise NoticeRefused(
            f"停止运营须至少提前 {TERMINATION_DAYS} 天告知：停止日期 {stop_date.isoformat()}，告知最迟须于 "
            f"{_beijing_text(arrive_by)} 送达，现在发出最早 {_beijing_text(latest)} 送达（影响 {people} 人）。"
            f"请把停止日期定在 {(latest.astimezone(BEIJING).date() + timedelta(days=TERMINATION_DAYS + 1)).isoformat()} 或之后")
    if not channels:
        raise NoticeRefused("没有告知渠道：请指定至少一个渠道（如 email、sms、in_app）")
    return NoticeTiming(now, arrive_by, channels, latest)


def change_notice_text(app_name: str, controller: str, label: str, effective: date, summary: ChangeSummary,
                       *, explicit_consent: bool) -> tuple[str, str]:
    """(subject, body) of the notice of a change, in Chinese."""
    subject = f"【{app_name}】隐私政策更新通知（{effective.isoformat()} 生效）"
    consent = ("本次更新涉及需要您重新同意的事项。在您明确同意之前，我们不会进行依赖新同意的处理；"
               "继续使用本服务不视为同意。" if explicit_consent else
               "您可在应用内随时查看新旧版本的隐私政策。")
    body = (f"您好：\n\n{controller}（“{app_name}”的运营者）更新了隐私政策，新版本（{label}）将于 "
            f"{effective.isoformat()} 生效。\n\n{summary.text()}\n\n{consent}\n"
            f"如有疑问，请通过隐私政策中的联系方式与我们联系。\n")
    return subject, body


def termination_notice_text(app_name: str, controller: str, stop_date: date, reason: str | None) -> tuple[str, str]:
    """(subject, body) of the notice that the service stops, in Chinese."""
    why = f"原因：{reason}\n" if reason else ""
    subject = f"【{app_name}】停止运营通知（{stop_date.isoformat()} 起）"
    body = (f"您好：\n\n{controller}将于 {stop_date.isoformat()} 停止“{app_name}”的运营。\n{why}\n"
            f"停止运营后，我们将停止收集您的个人信息，并删除或匿名化处理我们持有的您的个人信息"
            f"（法律、行政法规规定须保存的除外，届时仅作存储和必要的安全保护）（《个人信息保护法》第四十七条）。"
            f"在此之前，您可以查阅、复制或转移您的个人信息。\n")
    return subject, body
