"""Chinese passport numbers (护照号码): E + 8 digits or E + letter + 7 digits (ordinary); G/D/S/P with context."""

from __future__ import annotations

from yinsi.scan.recognizer import Pattern, Recognizer, as_tuple
from yinsi.scan.recognizers._chars import ALNUM, DIGITS


def recognizer() -> Recognizer:
    return Recognizer(
        name="PassportRecognizer",
        type="passport",
        patterns=(
            # Ordinary electronic passports (普通护照) since 2012 / 2017.
            Pattern("cn_passport_e", r"E(?:[0-9]{8}|[A-HJ-NP-Z][0-9]{7})", 0.5),
            # Older ordinary (G), diplomatic (D), service (S) and public-affairs (P) passports: context required.
            Pattern("cn_passport_other", r"[GDSP][0-9]{7,8}", 0.3),
        ),
        context=as_tuple(("护照", "passport", "旅行证件", "出入境证件")),
        negative_context=(),
        context_boost=0.45,
        requires_any=DIGITS,
        needs_digit_run=True,
        boundary=ALNUM,
    )
