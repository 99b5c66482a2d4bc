"""IMEI device identifiers (国际移动设备识别码): 15 digits, known reporting-body prefix, Luhn check."""

from __future__ import annotations

from yinsi.scan.checksums import digits_only, luhn_ok
from yinsi.scan.recognizer import LOOKALIKE_CONTEXT, Pattern, Recognizer, as_tuple
from yinsi.scan.recognizers._chars import DIGITS, GROUP_SEPARATORS

#: Reporting Body Identifiers that open a Type Allocation Code (the first two digits of an IMEI).
REPORTING_BODIES = frozenset({"01", "10", "30", "33", "35", "44", "45", "49", "50", "51", "52", "53", "54", "86", "91",
                              "98", "99"})


def _valid(value: str) -> bool:
    digits = digits_only(value)
    return len(digits) == 15 and digits[:2] in REPORTING_BODIES and luhn_ok(digits)


def recognizer() -> Recognizer:
    return Recognizer(
        name="ImeiRecognizer",
        type="imei",
        patterns=(
            Pattern("imei_contiguous", r"[0-9]{15}", 0.55),
            Pattern("imei_grouped", r"[0-9]{2}[ -][0-9]{6}[ -][0-9]{6}[ -][0-9]", 0.55),
        ),
        context=as_tuple(("imei", "串号", "设备识别码", "识别码", "设备号", "设备标识", "meid", "手机串号")),
        # An old 15-digit ID number may pass Luhn with a reporting-body prefix: the ID word tells it is no IMEI.
        negative_context=(*LOOKALIKE_CONTEXT, "身份证", "证件号", "身份号码"),
        validated_boost=0.3,
        requires_any=DIGITS,
        needs_digit_run=True,
        boundary=DIGITS,
        separators=GROUP_SEPARATORS,
        validator=_valid,
        validated_reason="reporting-body prefix and Luhn check passed",
    )
