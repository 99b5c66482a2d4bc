"""Check digits and structural checks used by the recognizers' ``validate`` hooks."""

from __future__ import annotations

import re
from datetime import date

#: Province-level codes (省级行政区划代码, GB/T 2260) that open an 18-digit resident ID number; 71 Taiwan,
#: 81 Hong Kong, 82 Macao and 83 (residence permits of Taiwan residents, 台湾居民居住证) included.
PROVINCE_CODES: dict[str, str] = {
    "11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古",
    "21": "辽宁", "22": "吉林", "23": "黑龙江",
    "31": "上海", "32": "江苏", "33": "浙江", "34": "安徽", "35": "福建", "36": "江西", "37": "山东",
    "41": "河南", "42": "湖北", "43": "湖南", "44": "广东", "45": "广西", "46": "海南",
    "50": "重庆", "51": "四川", "52": "贵州", "53": "云南", "54": "西藏",
    "61": "陕西", "62": "甘肃", "63": "青海", "64": "宁夏", "65": "新疆",
    "71": "台湾", "81": "香港", "82": "澳门", "83": "台湾（居住证）",
}

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


_NOT_DIGIT_OR_X = re.compile(r"[^0-9Xx]+")


def digits_only(value: str) -> str:
    """The ASCII digits (and a trailing X) of a normalised ``value``, separators dropped."""
    return _NOT_DIGIT_OR_X.sub("", value).upper()


def luhn_ok(number: str) -> bool:
    """Luhn (mod 10) check over an all-digit string, as used by bank cards and IMEIs."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_check_digit(payload: str) -> str:
    """The digit that makes ``payload + digit`` pass the Luhn check."""
    for d in "0123456789":
        if luhn_ok(payload + d):
            return d
    raise AssertionError("unreachable")


def id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits of a resident ID number (GB 11643)."""
    total = sum(int(ch) * w for ch, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def id_birth_date(number: str) -> date | None:
    """The birth date encoded in digits 7–14 of an 18-digit ID number, or ``None`` if it is not a date."""
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None
    return born if born.year >= 1900 else None


def id_card_problem(number: str) -> str | None:
    """Why ``number`` (18 characters) is not a valid resident ID number, or ``None`` if it is."""
    if len(number) != 18 or not number[:17].isdigit():
        return "not 17 digits and a check character"
    if number[:2] not in PROVINCE_CODES:
        return f"unknown province code {number[:2]}"
    if id_birth_date(number) is None:
        return "invalid birth date"
    if id_check_char(number[:17]) != number[17].upper():
        return "ISO 7064 MOD 11-2 check character mismatch"
    return None
