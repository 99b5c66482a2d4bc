"""Resident ID numbers (居民身份证号码, GB 11643): 18 digits with province code, birth date and MOD 11-2 check,
contiguous, grouped 6-8-4 or by fours; and the old 15-digit number (first-generation cards, 一代身份证: no check
character, two-digit year), which needs an ID context word."""

from __future__ import annotations

from yinsi.scan.checksums import PROVINCE_CODES, digits_only, id_birth_date, id_card_problem
from yinsi.scan.recognizer import Pattern, Recognizer, as_tuple
from yinsi.scan.recognizers._chars import DIGITS


def _valid(value: str) -> bool | None:
    digits = digits_only(value)
    if len(digits) == 15:
        # 15 digits: region code, YYMMDD (19YY), sequence; structural check only, so never "validated".
        ok = digits.isdigit() and digits[:2] in PROVINCE_CODES and id_birth_date(digits[:6] + "19" + digits[6:]) is not None
        return None if ok else False
    return id_card_problem(digits) is None


def recognizer() -> Recognizer:
    return Recognizer(
        name="IdCardRecognizer",
        type="id_card",
        patterns=(
            Pattern(
                "cn_resident_id",
                r"[1-9][0-9]{5} ?(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01]) ?[0-9]{3}[0-9Xx]",
                0.6,
            ),
            Pattern(
                "cn_resident_id_fours",
                r"[1-9][0-9]{3}([ -])[0-9]{4}\1[0-9]{4}\1[0-9]{4}\1[0-9][0-9Xx]",
                0.6,
            ),
            # The first-generation 15-digit number: base score below the threshold, an ID context word lifts it.
            Pattern("cn_resident_id_15", r"[1-9][0-9]{5}[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}", 0.4),
        ),
        context=as_tuple(("身份证", "证件", "身份号", "公民身份", "sfz", "id")),
        context_boost=0.15,
        validated_boost=0.3,
        requires_any=DIGITS,
        needs_digit_run=True,
        boundary=DIGITS,
        separators=" -",
        validator=_valid,
        validated_reason="province code, birth date and ISO 7064 MOD 11-2 check passed",
    )
