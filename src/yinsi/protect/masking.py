"""Display masks (展示脱敏) per PI type, and ``mask_text`` that masks every span the scanner finds.

The formats (documented in docs/scanner.md):

========================  ===========================  ====================================================
type                      example in → out             what is kept
========================  ===========================  ====================================================
mobile_phone              13800138000 → 138****8000    first 3 and last 4 digits (+86 prefix kept)
landline_phone            010-62345678 → 010-****5678  area code and last 4 digits
id_card                   110105194912310021 →         region code (first 6) and last 4
                          110105********0021
bank_card                 6222020000000000008 →        last 4 only, always three groups of ``****`` so the
                          **** **** **** 0008          card length is hidden too
person_name               张三 → 张*, 欧阳娜娜 → 欧阳**   the surname (compound surnames kept whole)
email                     zhang@example.com →          first character of the mailbox and the domain
                          z***@example.com
address                   北京市朝阳区建国路88号 →      down to the district/county (区/县/旗), else the city
                          北京市朝阳区***
ip_address                192.168.1.10 → 192.168.*.*   IPv4: first two octets; IPv6: first two groups
imei                      356938035643809 →            the type allocation code (first 8, the model only)
                          35693803*******
mac_address               00:1A:2B:3C:4D:5E →          the vendor prefix (OUI, first 3 octets)
                          00:1A:2B:**:**:**
passport                  E12345678 → E******78        first character and last 2
license_plate             京A12345 → 京A****5           province, issuing-authority letter, last character
qq                        123456789 → 12*****89        first 2 and last 2
wechat_id                 zhang_san88 → z*********8    first and last character
========================  ===========================  ====================================================

Digits are shown as ASCII whatever their original width. Unknown types get the generic mask (first and last
character kept).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

from yinsi.scan import Result, scan_text

#: Compound surnames (复姓) kept whole when a name is masked.
COMPOUND_SURNAMES = frozenset((
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "夏侯", "令狐", "澹台", "端木", "轩辕", "南宫", "西门", "独孤", "百里", "呼延", "万俟", "闻人",
    "太史", "申屠", "公羊", "赫连", "拓跋", "钟离", "宗政", "濮阳", "淳于", "单于", "司空", "仲孙",
    "东郭", "南门", "左丘",
))


def _ascii(value: str) -> str:
    return unicodedata.normalize("NFKC", value)


def _digits(value: str) -> str:
    return "".join(ch for ch in _ascii(value) if ch.isdigit() or ch in "Xx").upper()


def mask_generic(value: str) -> str:
    """First and last character kept, the rest starred (a single character becomes ``*``)."""
    if len(value) <= 2:
        return value[:1] + "*" * (len(value) - 1) if len(value) == 2 else "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]


def mask_mobile(value: str) -> str:
    text = _ascii(value).strip()
    digits = _digits(text)
    prefix = ""
    if text.startswith(("+86", "(+86)", "(86)")) or (digits.startswith("0086") and len(digits) == 15):
        prefix, digits = "+86 ", digits[-11:]
    elif len(digits) == 13 and digits.startswith("86"):
        prefix, digits = "+86 ", digits[2:]
    if len(digits) < 7:
        return mask_generic(digits)
    return prefix + digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_landline(value: str) -> str:
    digits = _digits(value)
    area = 3 if digits.startswith(("010", "02")) else 4
    if len(digits) <= area + 4:
        return mask_generic(digits)
    return digits[:area] + "-" + "*" * (len(digits) - area - 4) + digits[-4:]


def mask_id_card(value: str) -> str:
    digits = _digits(value)
    if len(digits) < 12:
        return mask_generic(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask_bank_card(value: str) -> str:
    digits = _digits(value)
    return "**** **** **** " + digits[-4:] if len(digits) >= 8 else mask_generic(digits)


def mask_person_name(value: str) -> str:
    name = value.strip()
    if not name:
        return name
    if all(ord(ch) < 0x2E80 for ch in name if not ch.isspace()):  # a Latin-script name: keep initials
        return " ".join(w[0] + "*" * (len(w) - 1) for w in name.split())
    keep = 2 if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else 1
    return name[:keep] + "*" * max(1, len(name) - keep)


def mask_email(value: str) -> str:
    local, at, domain = _ascii(value).partition("@")
    if not at:
        return mask_generic(value)
    return (local[:1] or "*") + "***@" + domain


#: Administrative suffixes an address is cut after, most specific first: district/county level, then city.
_DISTRICT = re.compile(r"^.{1,16}?(?:自治县|自治旗|新区|区|县|旗)(?!域|别)")
_CITY = re.compile(r"^.{1,12}?(?:自治州|地区|盟|市)")
_PROVINCE = re.compile(r"^.{1,8}?(?:自治区|特别行政区|省)")


def mask_address(value: str) -> str:
    """The address generalised to its district or county (区/县/旗); failing that its city, then province."""
    for pattern in (_DISTRICT, _CITY, _PROVINCE):
        m = pattern.match(value)
        if m and m.end() < len(value):
            return m.group() + "***"
        if m:
            return m.group()
    return value[:2] + "***" if len(value) > 2 else "***"


def mask_ip(value: str) -> str:
    text = _ascii(value)
    if ":" in text:
        groups = [g for g in text.split(":") if g]
        return ":".join(groups[:2]) + ":*:*:*:*:*:*"
    parts = text.split(".")
    return ".".join(parts[:2] + ["*"] * (len(parts) - 2))


def mask_imei(value: str) -> str:
    digits = _digits(value)
    return digits[:8] + "*" * (len(digits) - 8) if len(digits) > 8 else mask_generic(digits)


def mask_mac(value: str) -> str:
    text = _ascii(value)
    sep = next((ch for ch in ":-." if ch in text), ":")
    if sep == ".":
        hexes = text.replace(".", "")
        return hexes[:4] + "." + hexes[4:6] + "**.****"
    parts = text.split(sep)
    return sep.join(parts[:3] + ["**"] * (len(parts) - 3))


def mask_passport(value: str) -> str:
    text = _ascii(value)
    return text[0] + "*" * (len(text) - 3) + text[-2:] if len(text) > 3 else mask_generic(text)


def mask_plate(value: str) -> str:
    text = "".join(ch for ch in _ascii(value) if ch not in "·• ")
    return text[:2] + "*" * (len(text) - 3) + text[-1:] if len(text) > 3 else mask_generic(text)


def mask_qq(value: str) -> str:
    digits = _digits(value)
    return digits[:2] + "*" * (len(digits) - 4) + digits[-2:] if len(digits) > 4 else mask_generic(digits)


MASKERS: dict[str, Callable[[str], str]] = {
    "mobile_phone": mask_mobile,
    "landline_phone": mask_landline,
    "id_card": mask_id_card,
    "bank_card": mask_bank_card,
    "person_name": mask_person_name,
    "email": mask_email,
    "address": mask_address,
    "ip_address": mask_ip,
    "imei": mask_imei,
    "mac_address": mask_mac,
    "passport": mask_passport,
    "license_plate": mask_plate,
    "qq": mask_qq,
    "wechat_id": mask_generic,
}


def mask_value(pi_type: str, value: str) -> str:
    """The display mask of ``value`` as a ``pi_type`` value (the generic mask for unknown types)."""
    return MASKERS.get(pi_type, mask_generic)(value)


def mask_results(text: str, results: Iterable[Result]) -> str:
    """``text`` with each (non-overlapping) result's span replaced by its mask."""
    out: list[str] = []
    pos = 0
    for r in sorted(results, key=lambda r: r.start):
        if r.start < pos:
            continue
        out.append(text[pos:r.start])
        out.append(mask_value(r.type, r.text))
        pos = r.end
    out.append(text[pos:])
    return "".join(out)


def mask_text(text: str, *, types: Iterable[str] | None = None) -> str:
    """``text`` with every PI span the scanner finds replaced by its display mask."""
    return mask_results(text, scan_text(text, types=types))
