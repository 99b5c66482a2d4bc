"""Retention planning (存储期限): which rows expire when, for a ``now`` that is always passed in.

Pure: no clock, no database. The inputs are the data map's per-table ``retention`` (the promised maximum,
counted from ``time_column``), the table's ``legal_hold`` (a statutory minimum, counted from the row's own
``date_column`` or, without one, from the same ``time_column``), the declaration's retention rules (a
shorter promise for the table's items wins) and the statutory minimums of RULES.md T2 (a law that requires
longer than the declaration promises wins, and the reason is kept with the plan).

A row dated ``d`` under a period of ``n`` days is *due* at ``d + n``: it is kept while ``now < d + n`` and
expires from ``d + n`` on. The SQL form of the same rule is ``time_column <= now - n`` (``cutoff``), so the
property tests and the sweep agree on the boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from yinsi.domain.datamap import DataMap, RowAction
from yinsi.domain.policy import Declaration

THREE_YEARS = 3 * 365
SIX_MONTHS = 180


@dataclass(frozen=True)
class StatutoryMinimum:
    """A period a law requires some items to be kept at least (RULES.md T2)."""

    rule: str
    items: frozenset[str]
    prefixes: tuple[str, ...]
    min_days: int
    basis: str

    def covers(self, item: str) -> bool:
        return item in self.items or item.startswith(self.prefixes)


STATUTORY_MINIMUMS: tuple[StatutoryMinimum, ...] = (
    StatutoryMinimum("T2", frozenset({"online.ip_address", "online.access_log"}), (), SIX_MONTHS,
                     "网络安全法第二十一条：网络日志留存不少于六个月"),
    StatutoryMinimum("T2", frozenset({"property.transaction_record"}), ("transaction.",), THREE_YEARS,
                     "电子商务法第三十一条：交易信息自交易完成之日起保存不少于三年"),
)


def statutory_minimum(items: Iterable[str]) -> StatutoryMinimum | None:
    """The longest statutory minimum any of ``items`` falls under, or None."""
    found = [m for m in STATUTORY_MINIMUMS for i in items if m.covers(i)]
    return max(found, key=lambda m: m.min_days, default=None)


@dataclass(frozen=True)
class TableRule:
    """The retention of one SQL table: expire rows ``max_days`` after ``time_column``, unless held."""

    store: str
    table: str
    time_column: str
    max_days: int
    action: Literal["delete", "anonymise"]
    hold_days: int | None = None
    hold_column: str | None = None  # None: the hold counts from time_column
    hold_rule: str | None = None
    hold_basis: str | None = None
    why: str | None = None

    def cutoff(self, now: datetime) -> datetime:
        """Rows with ``time_column <= cutoff`` are past their period."""
        return now - timedelta(days=self.max_days)

    def hold_cutoff(self, now: datetime) -> datetime | None:
        """Rows with the hold date ``> hold_cutoff`` are still held; None when there is no hold."""
        return None if self.hold_days is None else now - timedelta(days=self.hold_days)


Verdict = Literal["keep", "held", "expire"]


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    until: datetime | None  # when the row stops being kept or held; None when it expires now
    reason: str | None = None


def decide(rule: TableRule, dated: datetime, now: datetime, hold_dated: datetime | None = None) -> Decision:
    """What happens to one row dated ``dated`` (and ``hold_dated`` for its hold) at ``now``."""
    due = dated + timedelta(days=rule.max_days)
    if now < due:
        return Decision("keep", due)
    if rule.hold_days is not None:
        held_until = (hold_dated if hold_dated is not None else dated) + timedelta(days=rule.hold_days)
        if now < held_until:
            return Decision("held", held_until, rule.hold_basis)
    return Decision("expire", None)


def first_expiry(rule: TableRule, dated: datetime, hold_dated: datetime | None = None) -> datetime:
    """The earliest ``now`` at which the row expires."""
    due = dated + timedelta(days=rule.max_days)
    if rule.hold_days is None:
        return due
    return max(due, (hold_dated if hold_dated is not None else dated) + timedelta(days=rule.hold_days))


def _promised_days(decl: Declaration | None, items: set[str]) -> int | None:
    """The shortest period the declaration promises for any of ``items`` (or a policy-wide ``*``)."""
    if decl is None:
        return None
    days = [r.period_days for r in decl.retention if r.period_days
            and ("*" in r.items or items & set(r.items))]
    return min(days, default=None)


def table_rules(dm: DataMap, decl: Declaration | None = None) -> list[TableRule]:
    """One rule per SQL table that has a retention period (from the data map, shortened by the
    declaration's promise for the table's items), lengthened by a legal hold where one is declared or a
    law requires one (T2)."""
    out: list[TableRule] = []
    for store in dm.sql_stores():
        for tname, table in store.tables.items():
            if table.retention is None or table.not_pi:
                continue
            items = {c.item for c in table.columns.values() if c.item}
            max_days = table.retention.max_days
            promised = _promised_days(decl, items)
            if promised is not None:
                max_days = min(max_days, promised)
            action: Literal["delete", "anonymise"] = (
                "delete" if table.erase in (RowAction.DELETE_ROW, RowAction.KEEP_LEGAL_HOLD) else "anonymise")
            hold = table.legal_hold
            hold_days = hold.min_days if hold is not None else None
            hold_rule = hold.rule if hold is not None else None
            hold_basis = hold.basis if hold is not None else None
            hold_column = hold.date_column if hold is not None else None
            law = statutory_minimum(items)
            if law is not None and law.min_days > max_days and (hold_days or 0) < law.min_days:
                hold_days, hold_rule, hold_basis = law.min_days, law.rule, law.basis
            if hold_days is not None and hold_days <= max_days:
                hold_days = hold_rule = hold_basis = hold_column = None  # the period already covers it
            out.append(TableRule(store.id, tname, table.retention.time_column, max_days, action,
                                 hold_days, hold_column, hold_rule, hold_basis, table.retention.why))
    return out


def shortfalls(decl: Declaration) -> list[tuple[int, StatutoryMinimum]]:
    """Retention rules promising less than a law requires (index into ``decl.retention``, the law)."""
    out: list[tuple[int, StatutoryMinimum]] = []
    for k, r in enumerate(decl.retention):
        if not r.period_days or "*" in r.items:
            continue
        law = statutory_minimum(r.items)
        held = r.legal_hold is not None and (r.legal_hold.min_days or 0) >= (law.min_days if law else 0)
        if law is not None and r.period_days < law.min_days and not held:
            out.append((k, law))
    return out


# --- Yinsi's own data (内部数据的保存期限) -------------------------------------------------------------


@dataclass(frozen=True)
class InternalPeriod:
    """How long Yinsi keeps one kind of its own records once they are over (``days`` after the record's
    end date), why, and the statutory minimum the period may not go below (``floor_days``, T2)."""

    name: str
    days: int
    reason: str
    rule: str = "T1"
    floor_days: int = 0
    floor_basis: str | None = None


#: The defaults (docs/retention.md explains each). A period is counted from the record's own end date.
INTERNAL_PERIODS: tuple[InternalPeriod, ...] = (
    InternalPeriod("verification_codes", 30, "验证码用过、过期或作废后只为排查滥用保留 30 天（哈希，不含验证码本身）"),
    InternalPeriod("outbox", 30, "已发送或已过期的消息只为核对送达保留 30 天；发送失败（dead）的同样从创建起 30 天"),
    InternalPeriod("export_packages", 30, "导出包（加密的个人信息副本）在请求完成 30 天后删除文件，只保留请求记录"),
    InternalPeriod("rights_requests", 3 * 365, "已结束的权利请求（及其状态记录和执行步骤）保留 3 年以证明依法处理",
                   "T1"),
    InternalPeriod("processing_records", 3 * 365, "处理记录保留 3 年", "T2", 3 * 365,
                   "个人信息保护法第五十六条：个人信息保护影响评估报告和处理情况记录应当至少保存三年"),
    InternalPeriod("legal_holds", 0, "依法保存期届满的隔离数据（保全库）在届满次日删除", "T3"),
    InternalPeriod("login_challenges", 1, "登录验证过期 1 天后删除"),
    InternalPeriod("subject_sessions", 1, "个人会话结束（过期或退出）1 天后删除"),
    InternalPeriod("staff_sessions", 30, "工作人员会话结束 30 天后删除（供安全排查）"),
    InternalPeriod("rate_events", 1, "频率限制计数 1 天后删除（最长的限制窗口为 1 小时）"),
)


@dataclass(frozen=True)
class InternalRule:
    """The period in force for one kind of record: the configured days, raised to a statutory floor."""

    name: str
    days: int
    reason: str
    rule: str
    raised_from: int | None = None  # the configured period when a law required longer (T2)
    floor_basis: str | None = None

    def cutoff(self, now: datetime) -> datetime:
        """Records that ended at or before ``cutoff`` are past their period."""
        return now - timedelta(days=self.days)


def internal_rules(overrides: Mapping[str, int] | None = None) -> list[InternalRule]:
    """The rules in force: defaults, with ``overrides`` (name → days) applied; a period below its statutory
    floor is raised to it and the law kept as the reason. Unknown names and negative days raise ValueError."""
    overrides = dict(overrides or {})
    known = {p.name for p in INTERNAL_PERIODS}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"未知的内部数据类别：{'、'.join(unknown)}（可选：{'、'.join(sorted(known))}）")
    out: list[InternalRule] = []
    for p in INTERNAL_PERIODS:
        days = overrides.get(p.name, p.days)
        if days < 0:
            raise ValueError(f"{p.name} 的保存期限不能为负数")
        if days < p.floor_days:
            out.append(InternalRule(p.name, p.floor_days, p.reason, p.rule, days, p.floor_basis))
        else:
            out.append(InternalRule(p.name, days, p.reason, p.rule, None, p.floor_basis))
    return out


def parse_periods(text: str) -> dict[str, int]:
    """``name=days,name=days`` (the ``YINSI_RETENTION_INTERNAL`` setting and ``--period``) to a mapping."""
    out: dict[str, int] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, days = part.partition("=")
        if not sep or not days.strip().isdigit():
            raise ValueError(f"保存期限的格式应为 类别=天数：{part}")
        out[name.strip()] = int(days.strip())
    return out
