"""Fixed-line numbers (固定电话): area code 010/02x (8-digit subscriber) or 0xxx (7–8 digits)."""

from __future__ import annotations

from yinsi.scan.checksums import digits_only
from yinsi.scan.recognizer import AMOUNT_CONTEXT, LOOKALIKE_CONTEXT, Pattern, Recognizer, as_tuple
from yinsi.scan.recognizers._chars import DIGITS, GROUP_SEPARATORS


def _valid_length(value: str) -> bool | None:
    digits = digits_only(value)
    if digits.startswith(("010", "02")):  # three-digit area codes: Beijing and the 02x cities
        ok = len(digits) == 11 and digits[3] in "23456789"
    else:
        ok = len(digits) in (11, 12) and digits[4] in "23456789"
    return None if ok else False


def recognizer() -> Recognizer:
    return Recognizer(
        name="LandlinePhoneRecognizer",
        type="landline_phone",
        patterns=(
            # The subscriber number contiguous or grouped ("0755-8888 6666", "010 6234 5678").
            Pattern("cn_landline",
                    r"(?:\(0[1-9][0-9]{1,2}\)|0[1-9][0-9]{1,2})[ -]?(?:[2-9][0-9]{6,7}|[2-9][0-9]{2,3}[ -][0-9]{4})", 0.6),
        ),
        context=as_tuple(("电话", "座机", "固话", "联系", "致电", "号码", "传真", "拨", "热线", "tel", "phone", "fax")),
        negative_context=(*LOOKALIKE_CONTEXT, *AMOUNT_CONTEXT),
        requires_any=DIGITS,
        needs_digit_run=True,
        boundary=DIGITS,
        separators=GROUP_SEPARATORS + ".",
        reject_quantities=True,
        validator=_valid_length,
    )
