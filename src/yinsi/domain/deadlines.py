"""Reply deadlines (答复期限) on the Chinese statutory-holiday calendar (RULES D1–D3, R9, R10).

Pure: no clock is read here; the caller passes the date a request was received (in China local time,
Asia/Shanghai) and, for :func:`status`, today's date.

Counting rules (see ``docs/deadlines.md`` for the reasoning):

* D1 (民法典 201, 203, 1259): the day the request is received is not counted; "N天内" includes day N and
  the deadline is the end of that day. If the last day of a natural-day period is a rest day (法定休假日:
  an official holiday block, or an ordinary weekend that is not a make-up working day), the period ends
  on the first working day after it. The narrower reading (only official holidays move the last day) is
  available as ``Reading(roll_on="statutory_holiday")``.
* D2: working days (工作日) are the days :meth:`Calendar.is_workday` says are worked: weekends and
  official holidays are skipped, make-up working days (调休上班日) count. We count ourselves; chinesecalendar's
  ``find_workday()`` over-counts by one when the start is a rest day and is never used.
* 顺延 (``holidays_extended``, e.g. "十五天内（国家法定节假日顺延）"): the days of an official holiday
  block that fall inside the period are not counted, so the period is extended by them (and by any
  further holiday days the extension reaches); ordinary weekends still count as natural days. D1 then
  applies to the last day. ``Reading(extension="end_only")`` reads 顺延 as D1 alone instead.
* Fail closed: a date whose year the calendar data does not cover raises :class:`CalendarNotCovered`;
  nothing is ever guessed as an ordinary weekday or weekend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

import chinese_calendar

from yinsi.domain.policy import RIGHT_ZH, DayUnit, Declaration, ReplyTime, RightKind

__all__ = [
    "DEFAULT_READING",
    "STATUTORY_CEILINGS",
    "Calendar",
    "CalendarNotCovered",
    "Ceiling",
    "ChineseCalendar",
    "Deadline",
    "DeadlineStatus",
    "Reading",
    "deadline_for",
    "due_date",
    "format_date",
    "promised_reply_time",
    "status",
    "statutory_ceiling",
    "working_days_left",
]

ONE_DAY = timedelta(days=1)
_WEEKDAY_ZH = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")


# --- the calendar ----------------------------------------------------------------------------------------

class CalendarNotCovered(ValueError):
    """The holiday data does not cover a year a deadline computation needs: refuse, never guess."""

    def __init__(self, year: int, first: int | None = None, last: int | None = None, source: str = "节假日数据") -> None:
        self.year = year
        self.first = first
        self.last = last
        span = f"仅含 {first}–{last} 年的国务院放假安排" if first is not None and last is not None else "不含该年放假安排"
        super().__init__(
            f"{source}未覆盖 {year} 年（{span}），无法按法定节假日计算期限；"
            f"拒绝按普通工作日或周末推算。请更新节假日数据（国务院办公厅当年放假通知）后重试。"
        )


@runtime_checkable
class Calendar(Protocol):
    """Which days are worked and which belong to an official holiday block, per the State Council notice."""

    def covers(self, year: int) -> bool:
        """Whether the data holds the official arrangement for ``year``."""
        ...

    def is_workday(self, d: date) -> bool:
        """A day people work: Monday–Friday outside holiday blocks, plus make-up working days (调休上班).

        Raises :class:`CalendarNotCovered` for a year the data does not cover.
        """
        ...

    def is_statutory_holiday(self, d: date) -> bool:
        """A day of an official holiday block (法定节假日放假期间, weekends inside the block included);
        false for ordinary weekends and for make-up working days.

        Raises :class:`CalendarNotCovered` for a year the data does not cover.
        """
        ...


class ChineseCalendar:
    """:class:`Calendar` over the PyPI package chinesecalendar (1.11.0 carries 2004–2026)."""

    SOURCE = f"chinesecalendar {chinese_calendar.__version__}"

    def __init__(self) -> None:
        years = {d.year for d in chinese_calendar.holidays} | {d.year for d in chinese_calendar.workdays}
        self.first_year: int = min(years)
        self.last_year: int = max(years)

    def covers(self, year: int) -> bool:
        return self.first_year <= year <= self.last_year

    def _check(self, d: date) -> date:
        if isinstance(d, datetime):
            raise TypeError("请传入日期（date），不要传入带时刻的 datetime：先按北京时间换算成日期")
        if not self.covers(d.year):
            raise CalendarNotCovered(d.year, self.first_year, self.last_year, self.SOURCE)
        return d

    def is_workday(self, d: date) -> bool:
        self._check(d)
        try:
            return bool(chinese_calendar.is_workday(d))
        except NotImplementedError as exc:  # the library's own range check; ours should have caught it
            raise CalendarNotCovered(d.year, self.first_year, self.last_year, self.SOURCE) from exc

    def is_statutory_holiday(self, d: date) -> bool:
        self._check(d)
        try:
            on_holiday, name = chinese_calendar.get_holiday_detail(d)
        except NotImplementedError as exc:
            raise CalendarNotCovered(d.year, self.first_year, self.last_year, self.SOURCE) from exc
        # (True, name): inside an official block; (True, None): an ordinary weekend; (False, name): 调休上班.
        return bool(on_holiday) and name is not None

    def __repr__(self) -> str:
        return f"ChineseCalendar({self.SOURCE}, {self.first_year}–{self.last_year})"


# --- counting --------------------------------------------------------------------------------------------

RollOn = Literal["rest_day", "statutory_holiday"]
Extension = Literal["skip_holidays", "end_only"]


@dataclass(frozen=True)
class Reading:
    """How the ambiguous parts of D1 and of 顺延 are read (defaults documented in docs/deadlines.md).

    ``roll_on``: which last day of a natural-day period moves to the next working day: any rest day
    (法定休假日 as in 民法典 203: holiday blocks and ordinary weekends, the default) or only days of an
    official holiday block.
    ``extension``: what 国家法定节假日顺延 adds: official holiday days inside the period are not counted
    (``skip_holidays``, the default) or nothing beyond D1 (``end_only``).
    """

    roll_on: RollOn = "rest_day"
    extension: Extension = "skip_holidays"


DEFAULT_READING = Reading()


@dataclass(frozen=True)
class _Count:
    due: date
    last_counted: date  # the Nth counted day, before D1 moved it
    skipped_holidays: int  # official holiday days not counted (顺延)


def _as_unit(unit: DayUnit | str) -> DayUnit:
    try:
        return DayUnit(unit)
    except ValueError:
        raise ValueError(f"未知的期限单位 {unit!r}：应为 natural（自然日）或 working（工作日）") from None


def _count(received: date, days: int, unit: DayUnit | str, holidays_extended: bool, cal: Calendar,
           reading: Reading) -> _Count:
    if isinstance(received, datetime) or not isinstance(received, date):
        raise TypeError("received 应为日期（date）：先按北京时间把收到请求的时刻换算成日期")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"期限天数应为正整数，收到 {days!r}")
    kind = _as_unit(unit)
    d = received
    skipped = 0
    if kind is DayUnit.WORKING:
        # D2: count forward from the day after receipt, counting only days that are worked.
        counted = 0
        while counted < days:
            d += ONE_DAY
            if cal.is_workday(d):
                counted += 1
        return _Count(d, d, 0)  # a working day: D1 never moves it
    if holidays_extended and reading.extension == "skip_holidays":
        counted = 0
        while counted < days:
            d += ONE_DAY
            if cal.is_statutory_holiday(d):
                skipped += 1
            else:
                counted += 1
    else:
        d = received + timedelta(days=days)
    last = d
    # D1: a last day that is a rest day moves to the first working day after it.
    # With roll_on="statutory_holiday" only a last day inside an official holiday block moves.
    if reading.roll_on == "rest_day" or cal.is_statutory_holiday(d):
        while not cal.is_workday(d):
            d += ONE_DAY
    return _Count(d, last, skipped)


def due_date(received: date, days: int, unit: DayUnit | Literal["natural", "working"], holidays_extended: bool,
             cal: Calendar, *, reading: Reading = DEFAULT_READING) -> date:
    """The last day (inclusive: the deadline is the end of it) of a period of ``days`` from ``received``.

    The day of receipt is not counted (D1). ``natural``: received + days, extended by the official holiday
    days inside the period when ``holidays_extended`` (顺延), and a last day on a rest day moves to the next
    working day (D1). ``working``: the ``days``-th worked day after receipt (D2); ``holidays_extended``
    changes nothing there, holidays are never working days. Raises :class:`CalendarNotCovered` when a day
    the count needs lies in a year the calendar does not cover.
    """
    return _count(received, days, unit, holidays_extended, cal, reading).due


# --- statutory ceilings and the effective deadline -------------------------------------------------------

@dataclass(frozen=True)
class Ceiling:
    """A statutory upper bound for answering a request."""

    rule_id: str  # RULES.md id
    days: int
    unit: DayUnit
    basis: str  # the sources, as RULES.md cites them

    def describe(self) -> str:
        unit = "个工作日" if self.unit is DayUnit.WORKING else "天"
        return f"{self.days}{unit}内"


STATUTORY_CEILINGS: dict[RightKind, Ceiling] = {
    RightKind.CANCEL_ACCOUNT: Ceiling("R9", 15, DayUnit.WORKING, "认定方法 6.3；GB/T 35273 8.5"),
    RightKind.COMPLAINT: Ceiling("R10", 15, DayUnit.WORKING, "认定方法 6.5"),
}
_OTHER_REPLIES = Ceiling("R10", 30, DayUnit.NATURAL, "GB/T 35273 8.7")


def statutory_ceiling(right: RightKind) -> Ceiling:
    """R9 for account cancellation, R10 (15 working days) for complaints, R10 (30 days) for every other reply."""
    return STATUTORY_CEILINGS.get(right, _OTHER_REPLIES)


def format_date(d: date) -> str:
    """2026年3月6日（星期五）."""
    return f"{d.year}年{d.month}月{d.day}日（{_WEEKDAY_ZH[d.weekday()]}）"


@dataclass(frozen=True)
class Deadline:
    """The effective deadline of one request: the earlier of the tenant's promise and the statutory ceiling."""

    right: RightKind
    received: date
    due: date  # inclusive: the request must be answered by the end of this day
    basis: Literal["promise", "ceiling"]  # which of the two set ``due`` (the promise on a tie)
    rule_id: str  # the RULES.md id of the obligation (R9 or R10)
    promise: ReplyTime | None  # None: the policy promises no number of days
    promise_due: date | None
    ceiling: Ceiling
    ceiling_due: date
    explanation: str = field(compare=False)


def promised_reply_time(decl: Declaration, right: RightKind) -> ReplyTime | None:
    """The policy's promise for ``right``: for cancellation the cancellation section's own reply time first,
    then the right's, then the general response time; ``None`` when no number of days is promised."""
    rt: ReplyTime | None = None
    if right is RightKind.CANCEL_ACCOUNT and decl.account_cancellation is not None:
        rt = decl.account_cancellation.reply_time
    if rt is None or rt.days is None:
        rt = decl.reply_time_for(right)
    return rt if rt.days is not None else None


def _describe_count(c: _Count, received: date) -> str:
    text = f"自{format_date(received + ONE_DAY)}起算（收到当日不计入）"
    if c.skipped_holidays:
        text += f"，期间国家法定节假日{c.skipped_holidays}天不计入（顺延）"
    if c.due != c.last_counted:
        text += f"，最后一日{format_date(c.last_counted)}为休息日，延至其后第一个工作日（民法典第二百零三条）"
    return text + f"，截止{format_date(c.due)}"


def deadline_for(decl: Declaration, right: RightKind, received: date, cal: Calendar, ceiling: Ceiling | None = None,
                 *, reading: Reading = DEFAULT_READING) -> Deadline:
    """The deadline for answering a ``right`` request received on ``received``.

    The promise (:func:`promised_reply_time`) is capped by the statutory ceiling (``ceiling``, default
    :func:`statutory_ceiling`): R9 cancellation ≤ 15 working days, R10 complaints ≤ 15 working days, other
    replies ≤ 30 days. The earlier date wins; on a tie the promise is named.
    """
    cap = ceiling if ceiling is not None else statutory_ceiling(right)
    cap_count = _count(received, cap.days, cap.unit, False, cal, reading)
    cap_text = f"法定上限{cap.describe()}（{cap.rule_id}，{cap.basis}）：" + _describe_count(cap_count, received)
    promise = promised_reply_time(decl, right)
    head = f"{RIGHT_ZH[right]}请求，{format_date(received)}收到。"
    if promise is None or promise.days is None:
        explanation = head + f"隐私政策未承诺答复时限；适用{cap_text}。"
        return Deadline(right, received, cap_count.due, "ceiling", cap.rule_id, None, None, cap, cap_count.due, explanation)
    p_count = _count(received, promise.days, promise.unit, promise.holidays_extended, cal, reading)
    p_text = f"依据隐私政策承诺：{promise.describe()}；" + _describe_count(p_count, received)
    if p_count.due <= cap_count.due:
        basis: Literal["promise", "ceiling"] = "promise"
        due = p_count.due
        verdict = f"承诺不晚于法定上限，以承诺为准：{format_date(due)}。"
    else:
        basis = "ceiling"
        due = cap_count.due
        verdict = f"承诺晚于法定上限，以法定上限为准：{format_date(due)}。"
    explanation = f"{head}{p_text}。{cap_text}。{verdict}"
    return Deadline(right, received, due, basis, cap.rule_id, promise, p_count.due, cap, cap_count.due, explanation)


# --- status ----------------------------------------------------------------------------------------------

class DeadlineStatus(StrEnum):
    OVERDUE = "overdue"
    DUE_SOON = "due_soon"
    ON_TRACK = "on_track"


def working_days_left(due: date, today: date, cal: Calendar, *, stop_after: int | None = None) -> int:
    """Working days after ``today`` up to and including ``due`` (0 when due today or earlier).

    With ``stop_after``, counting stops once the count exceeds it (the result is then ``stop_after + 1``).
    """
    left = 0
    d = today
    while d < due:
        d += ONE_DAY
        if cal.is_workday(d):
            left += 1
            if stop_after is not None and left > stop_after:
                break
    return left


def status(due: date, today: date, cal: Calendar, *, soon: int = 3) -> DeadlineStatus:
    """``overdue`` after the end of ``due``; ``due_soon`` when at most ``soon`` working days are left after
    today (so a request due today is due soon); otherwise ``on_track``."""
    if soon < 0:
        raise ValueError("soon 不能为负数")
    if today > due:
        return DeadlineStatus.OVERDUE
    if working_days_left(due, today, cal, stop_after=soon) <= soon:
        return DeadlineStatus.DUE_SOON
    return DeadlineStatus.ON_TRACK
