"""Cron expressions (定时表达式) for periodic jobs: five fields, minute hour day-of-month month day-of-week.

Each field is ``*``, a number, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a comma list of those.
Day of week: 0 or 7 is Sunday. As in cron, when both day of month and day of week are restricted, a day
matching either one is due. Times are naive local wall-clock times (the jobs module passes Asia/Shanghai
time, which has no daylight saving, so every local minute exists exactly once). Pure: no clock is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

__all__ = ["Cron", "CronError"]

#: How far back or ahead a due time is searched (a schedule like ``0 0 29 2 *`` is due every four years).
SEARCH_DAYS = 366 * 8 + 2

_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("分钟", 0, 59),
    ("小时", 0, 23),
    ("日", 1, 31),
    ("月", 1, 12),
    ("星期", 0, 7),
)


class CronError(ValueError):
    """An invalid cron expression (the message is Chinese and names the field)."""


def _field(text: str, label: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, _, step_text = part.partition("/")
            if not step_text.isdigit() or int(step_text) < 1:
                raise CronError(f"定时表达式的{label}字段步长无效：{step_text!r}")
            step = int(step_text)
        if part == "*":
            first, last = low, high
        elif "-" in part:
            a, _, b = part.partition("-")
            if not (a.isdigit() and b.isdigit()):
                raise CronError(f"定时表达式的{label}字段范围无效：{part!r}")
            first, last = int(a), int(b)
        elif part.isdigit():
            first = last = int(part)
            if step != 1:
                last = high
        else:
            raise CronError(f"定时表达式的{label}字段无效：{part!r}")
        if not (low <= first <= last <= high):
            raise CronError(f"定时表达式的{label}字段超出范围 {low}–{high}：{part!r}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression; :meth:`latest` and :meth:`next` find due minutes."""

    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday
    day_restricted: bool
    weekday_restricted: bool

    @classmethod
    def parse(cls, expr: str) -> Cron:
        if not isinstance(expr, str):
            raise CronError("定时表达式应为字符串，例如 \"0 3 * * *\"（每天 3:00）")
        parts = expr.split()
        if len(parts) != 5:
            raise CronError(f"定时表达式应有 5 个字段（分 时 日 月 星期），实际为 {len(parts)} 个：{expr!r}")
        fields = [_field(p, label, low, high) for p, (label, low, high) in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in fields[4])
        return cls(" ".join(parts), fields[0], fields[1], fields[2], fields[3], weekdays,
                   parts[2] != "*", parts[4] != "*")

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = day.isoweekday() % 7 in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return dom or dow
        return dom and dow

    def matches(self, at: datetime) -> bool:
        """Whether the minute of ``at`` is due."""
        return at.minute in self.minutes and at.hour in self.hours and self.day_matches(at.date())

    def latest(self, at: datetime) -> datetime | None:
        """The last due minute at or before ``at`` (seconds dropped), or None if none in ``SEARCH_DAYS``."""
        start = at.replace(second=0, microsecond=0)
        for back in range(SEARCH_DAYS):
            day = start.date() - timedelta(days=back)
            if not self.day_matches(day):
                continue
            for hour in sorted(self.hours, reverse=True):
                if back == 0 and hour > start.hour:
                    continue
                for minute in sorted(self.minutes, reverse=True):
                    if back == 0 and hour == start.hour and minute > start.minute:
                        continue
                    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=at.tzinfo)
        return None

    def next(self, after: datetime) -> datetime | None:
        """The first due minute strictly after ``after``, or None if none in ``SEARCH_DAYS``."""
        start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for ahead in range(SEARCH_DAYS):
            day = start.date() + timedelta(days=ahead)
            if not self.day_matches(day):
                continue
            for hour in sorted(self.hours):
                if ahead == 0 and hour < start.hour:
                    continue
                for minute in sorted(self.minutes):
                    if ahead == 0 and hour == start.hour and minute < start.minute:
                        continue
                    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=after.tzinfo)
        return None
