"""Mainland mobile numbers (手机号码): 11 digits from a 13x–19x segment, optionally +86/0086, spaces, dashes."""

from __future__ import annotations

import re

from yinsi.scan.checksums import digits_only
from yinsi.scan.recognizer import Pattern, Recognizer, as_tuple
from yinsi.scan.recognizers._chars import DIGITS, GROUP_SEPARATORS

#: Number segments (号段) allocated to mobile networks (incl. IoT-free consumer ranges and virtual operators).
_SEGMENT = re.compile(r"1(?:3[0-9]|4[5-9]|5[0-35-9]|6[2567]|7[0-8]|8[0-9]|9[0-35-9])")


def _valid_segment(value: str) -> bool | None:
    digits = digits_only(value)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return None if len(digits) == 11 and _SEGMENT.match(digits) else False


def recognizer() -> Recognizer:
    return Recognizer(
        name="MobilePhoneRecognizer",
        type="mobile_phone",
        patterns=(
            # Two patterns rather than one with an optional prefix: a pattern that opens with a fixed character lets
            # the regex engine skip ahead, which triples throughput on Chinese text.
            Pattern("cn_mobile", r"1[3-9][0-9](?:[ -]?[0-9]{4}){2}", 0.75),
            Pattern("cn_mobile_intl", r"(?:\+86|0086|\(\+?86\))[ -]?1[3-9][0-9](?:[ -]?[0-9]{4}){2}", 0.75),
        ),
        context=as_tuple(("手机", "电话", "联系", "致电", "号码", "来电", "短信", "热线", "tel", "phone", "mobile", "call")),
        boundary=DIGITS,
        separators=GROUP_SEPARATORS,
        validator=_valid_segment,
    )
