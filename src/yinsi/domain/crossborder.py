"""Transfers abroad (出境): which mechanism the year's volume requires, and what a declaration allows (X1, X2).

X2 (促进和规范数据跨境流动规定, 2024; RULES.md X2), counted per processor from 1 January (Beijing time):

- ≥ 1,000,000 people's non-sensitive PI, or ≥ 10,000 people's sensitive PI → security assessment (安全评估);
- 100,000 – 1,000,000 non-sensitive, or 1 – 9,999 sensitive → standard contract (filed within 10 working
  days) or certification;
- < 100,000 non-sensitive and no sensitive → exempt.

The declaration names the mechanism it relies on (``storage.mechanism``). A transfer that would take the
year's count beyond what that mechanism covers is refused; one that takes it within :data:`WARN_RATIO` of
the next threshold is allowed with a warning, so the processor can prepare the next mechanism in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum

NON_SENSITIVE_CONTRACT = 100_000  # from here a standard contract or certification (X2)
NON_SENSITIVE_ASSESSMENT = 1_000_000  # from here a security assessment (X2)
SENSITIVE_ASSESSMENT = 10_000  # sensitive PI: from here a security assessment; below it, a contract (X2)
WARN_RATIO = 0.8

_BEIJING = timezone(timedelta(hours=8))


class Mechanism(IntEnum):
    """Mechanisms in the order of what they cover."""

    EXEMPT = 0
    CONTRACT = 1  # standard contract or certification
    ASSESSMENT = 2  # security assessment


MECHANISM_ZH: dict[Mechanism, str] = {
    Mechanism.EXEMPT: "免于申报（无需机制）", Mechanism.CONTRACT: "个人信息出境标准合同或个人信息保护认证",
    Mechanism.ASSESSMENT: "数据出境安全评估",
}


def declared_mechanism(text: str | None) -> Mechanism:
    """The strongest mechanism a declaration's ``storage.mechanism`` names (none named: exempt only)."""
    t = (text or "").lower()
    if "assessment" in t or "安全评估" in t:
        return Mechanism.ASSESSMENT
    if any(w in t for w in ("contract", "certification", "标准合同", "认证")):
        return Mechanism.CONTRACT
    return Mechanism.EXEMPT


def year_of(moment: datetime) -> int:
    """The calendar year in Beijing time that ``moment`` counts in (a naive moment is UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(_BEIJING).year


def required(non_sensitive: int, sensitive: int) -> Mechanism:
    """The mechanism a year's distinct-people counts require (X2)."""
    if non_sensitive >= NON_SENSITIVE_ASSESSMENT or sensitive >= SENSITIVE_ASSESSMENT:
        return Mechanism.ASSESSMENT
    if non_sensitive >= NON_SENSITIVE_CONTRACT or sensitive > 0:
        return Mechanism.CONTRACT
    return Mechanism.EXEMPT


def limits(mechanism: Mechanism) -> tuple[int | None, int | None]:
    """(non-sensitive, sensitive): the first count ``mechanism`` no longer covers (``None``: no limit)."""
    if mechanism is Mechanism.ASSESSMENT:
        return None, None
    if mechanism is Mechanism.CONTRACT:
        return NON_SENSITIVE_ASSESSMENT, SENSITIVE_ASSESSMENT
    return NON_SENSITIVE_CONTRACT, 1


@dataclass(frozen=True, slots=True)
class Volume:
    """What the year's counts after a transfer mean under the declared mechanism."""

    allowed: bool
    required: Mechanism
    declared: Mechanism
    warnings: tuple[tuple[bool, str, str], ...]  # (sensitive, level, Chinese message)
    message: str


def check(non_sensitive: int, sensitive: int, declared: Mechanism) -> Volume:
    """Judge the counts a transfer would reach (X2): refused beyond what ``declared`` covers, warned near it."""
    need = required(non_sensitive, sensitive)
    if need > declared:
        msg = (f"今年（自1月1日起）向境外提供个人信息的人数将达到一般个人信息 {non_sensitive:,} 人、敏感个人信息 "
               f"{sensitive:,} 人，须具备{MECHANISM_ZH[need]}；隐私政策声明的出境机制为{MECHANISM_ZH[declared]}，"
               "超出其范围，不得提供（X2）")
        return Volume(False, need, declared, (), msg)
    warnings: list[tuple[bool, str, str]] = []
    lim_n, lim_s = limits(declared)
    for sens, count, lim in ((False, non_sensitive, lim_n), (True, sensitive, lim_s)):
        if lim is None or lim <= 1:
            continue
        if count >= WARN_RATIO * lim:
            what = "敏感个人信息" if sens else "一般个人信息"
            warnings.append((sens, f"near_{lim}", f"今年向境外提供{what}的人数已达 {count:,} 人，接近 {lim:,} 人的门槛："
                             f"达到后须具备{MECHANISM_ZH[required(lim if not sens else 0, lim if sens else 0)]}（X2）"))
    return Volume(True, need, declared, tuple(warnings), f"所需机制：{MECHANISM_ZH[need]}（X2）")
