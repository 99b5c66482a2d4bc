"""Personal-information security incidents (个人信息安全事件). Pure: time is passed in.

- The PIPL 57 record (I1): what happened, the PI types, the cause, the possible harm, the measures taken,
  what people can do themselves, and a contact. :func:`missing_fields` names what is still missing; a notice
  is refused until all of it is there.
- Severity (事件分级) and the regulator-report clock (I3, 国家网络安全事件报告管理办法): 较大 and above are
  reported within 4 hours of discovery, within 1 hour for critical information infrastructure
  (关键信息基础设施); 一般 has no clock here.
- Notices (I2): to each person through the declared channels, to a minor's guardian (M4), and a public
  announcement only with a recorded reason (individual notice impractical).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from yinsi.domain.notices import BEIJING


class Severity(StrEnum):
    """Incident class (事件级别)."""

    GENERAL = "general"
    LARGER = "larger"
    MAJOR = "major"
    CRITICAL = "critical"


SEVERITY_ZH: dict[Severity, str] = {
    Severity.GENERAL: "一般", Severity.LARGER: "较大", Severity.MAJOR: "重大", Severity.CRITICAL: "特别重大",
}
_SEVERITY_ALIASES = {v: k for k, v in SEVERITY_ZH.items()}

REPORT_HOURS = 4
REPORT_HOURS_CII = 1
ADULT_AGE = 18


def parse_severity(value: str) -> Severity:
    """A severity from its English or Chinese name; ``ValueError`` (Chinese) otherwise."""
    text = value.strip()
    if text in _SEVERITY_ALIASES:
        return _SEVERITY_ALIASES[text]
    try:
        return Severity(text)
    except ValueError:
        names = "、".join(f"{s.value}（{z}）" for s, z in SEVERITY_ZH.items())
        raise ValueError(f"未知的事件级别「{value}」；可选：{names}") from None


def report_due(discovered_at: datetime, severity: Severity, critical_infrastructure: bool) -> datetime | None:
    """When the report to the regulator is due (I3), or ``None`` for an incident below 较大."""
    if severity is Severity.GENERAL:
        return None
    hours = REPORT_HOURS_CII if critical_infrastructure else REPORT_HOURS
    return discovered_at + timedelta(hours=hours)


def report_clock_zh(severity: Severity, critical_infrastructure: bool) -> str:
    if severity is Severity.GENERAL:
        return "一般事件：无须在限时内向网信部门报告（仍按应急预案处置并记录）"
    hours = REPORT_HOURS_CII if critical_infrastructure else REPORT_HOURS
    who = "关键信息基础设施运营者" if critical_infrastructure else "较大及以上事件"
    return f"{who}须在发现后 {hours} 小时内向省级网信部门报告（I3）"


#: The PIPL 57 record: field → its Chinese name.
RECORD_FIELDS: dict[str, str] = {
    "what_happened": "事件经过",
    "pi_types": "涉及的个人信息种类",
    "cause": "发生原因",
    "possible_harm": "可能造成的危害",
    "measures": "已采取的补救措施",
    "what_people_can_do": "个人可以采取的减轻危害的措施",
    "contact": "联系方式",
}
MAX_FIELD = 4000


def clean_record(values: dict[str, Any]) -> dict[str, str]:
    """The known fields of a record, stripped; unknown fields and over-long text refused (Chinese)."""
    unknown = sorted(set(values) - set(RECORD_FIELDS))
    if unknown:
        raise ValueError(f"未知的事件记录字段：{'、'.join(unknown)}（可选：{'、'.join(RECORD_FIELDS)}）")
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        text = str(value).strip()
        if len(text) > MAX_FIELD:
            raise ValueError(f"「{RECORD_FIELDS[key]}」过长：最多 {MAX_FIELD} 个字符")
        if text:
            out[key] = text
    return out


def missing_fields(record: dict[str, str]) -> list[str]:
    """The Chinese names of the PIPL 57 fields still empty."""
    return [zh for key, zh in RECORD_FIELDS.items() if not record.get(key)]


def is_minor(birth_date: date | None, on: date) -> bool:
    """Under 18 on ``on`` (M2: adults are 18+); unknown birth date: not known to be a minor."""
    if birth_date is None:
        return False
    years = on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
    return years < ADULT_AGE


@dataclass(frozen=True)
class NoticeText:
    subject: str
    body: str


def _contents(record: dict[str, str]) -> str:
    return (f"一、事件情况：{record['what_happened']}\n"
            f"二、涉及的个人信息种类：{record['pi_types']}\n"
            f"三、发生原因：{record['cause']}\n"
            f"四、可能造成的危害：{record['possible_harm']}\n"
            f"五、我们已采取的补救措施：{record['measures']}\n"
            f"六、您可以采取的减轻危害的措施：{record['what_people_can_do']}\n"
            f"七、联系方式：{record['contact']}\n")


def notice_text(app_name: str, controller: str, record: dict[str, str], discovered_at: datetime,
                *, audience: str) -> NoticeText:
    """The notice to a person (``person``), a minor's guardian (``guardian``) or the public (``public``)."""
    missing = missing_fields(record)
    if missing:
        raise ValueError(f"事件记录不完整，不能发出通知：缺少{'、'.join(missing)}（I1，PIPL 57）")
    when = discovered_at.astimezone(BEIJING).strftime("%Y年%m月%d日")
    if audience == "guardian":
        greet = "尊敬的监护人：\n\n您监护的未成年人的个人信息可能受到一起个人信息安全事件的影响。"
    elif audience == "public":
        greet = "公告\n\n"
    else:
        greet = "您好：\n\n您的个人信息可能受到一起个人信息安全事件的影响。"
    body = (f"{greet}{controller}（“{app_name}”的运营者）于 {when} 发现该事件，现依据《个人信息保护法》"
            f"第五十七条告知如下：\n\n{_contents(record)}\n{controller}\n")
    subject = f"【{app_name}】个人信息安全事件{'公告' if audience == 'public' else '告知'}"
    return NoticeText(subject, body)
