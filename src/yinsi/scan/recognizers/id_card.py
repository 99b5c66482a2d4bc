"""18-digit resident ID numbers (居民身份证号码, GB 11643): province code, birth date, MOD 11-2 check."""

from __future__ import annotations

from yinsi.scan.checksums import digits_only, id_card_problem
from yinsi.scan.recognizer import Pattern, Recognizer, as_tuple
from yinsi.scan.recognizers._chars import DIGITS


def _valid(value: str) -> bool:
    return id_card_problem(digits_only(value)) is None


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
        ),
        context=as_tuple(("身份证", "证件", "身份号", "公民身份", "sfz", "id")),
        context_boost=0.1,
        validated_boost=0.3,
        boundary=DIGITS,
        separators=" ",
        validator=_valid,
        validated_reason="province code, birth date and ISO 7064 MOD 11-2 check passed",
    )
