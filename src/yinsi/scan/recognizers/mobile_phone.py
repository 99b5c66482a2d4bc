"""Mainland mobile numbers (手机号码): 11 digits from a 13x–19x segment, optionally +86/0086, spaces, dashes."""

from __future__ import annotations

import re

from yinsi.scan.checksums import digits_only
from yinsi.scan.recognizer import AMOUNT_CONTEXT, LOOKALIKE_CONTEXT, Pattern, Recognizer, as_tuple
from yinsi.scan.recognizers._chars import DIGITS, GROUP_SEPARATORS

#: Number segments (号段) allocated to mobile networks (incl. IoT-free consumer ranges and virtual operators).
_SEGMENT = re.compile(r"1(?:3[0-9]|4[5-9]|5[0-35-9]|6[2567]|7[0-8]|8[0-9]|9[0-35-9])")


def _valid_segment(value: str) -> bool | None:
    digits = digits_only(value)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:  # "+86 138…", "8613812345678"
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
            Pattern("cn_mobile_dotted", r"1[3-9][0-9]\.[0-9]{4}\.[0-9]{4}", 0.7),
            # The country code without "+" ("8613812345678"): a 13-digit run, weaker than the plain number.
            Pattern("cn_mobile_86", r"86[ -]?1[3-9][0-9](?:[ -]?[0-9]{4}){2}", 0.6),
        ),
        context=as_tuple(("手机", "电话", "联系", "致电", "号码", "来电", "短信", "热线", "拨", "打给", "发送至", "发至",
                          "发到", "手机号", "tel", "phone", "mobile", "call")),
        # Amount words (成交额、价格…) are look-alike words as well: the number after them is a sum.
        negative_context=(*LOOKALIKE_CONTEXT, *AMOUNT_CONTEXT),
        requires_any=DIGITS,
        needs_digit_run=True,
        boundary=DIGITS,
        # "." too: "13812345678.00" is an amount, and a run glued to "." and a digit is part of a longer number.
        separators=GROUP_SEPARATORS + ".",
        reject_quantities=True,
        validator=_valid_segment,
    )
