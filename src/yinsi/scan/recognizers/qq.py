"""QQ numbers (QQ号): 5–11 digits, only right after a QQ context word."""

from __future__ import annotations

from yinsi.scan.recognizer import LOOKALIKE_CONTEXT, Pattern, Recognizer, as_tuple
from yinsi.scan.recognizers._chars import DIGITS


def recognizer() -> Recognizer:
    return Recognizer(
        name="QqRecognizer",
        type="qq",
        patterns=(Pattern("qq_number", r"[1-9][0-9]{4,10}", 0.7),),
        context=as_tuple(("qq", "扣扣", "企鹅号", "q号")),
        context_window=8,
        # A QQ group number (QQ群) identifies a group, not a person.
        negative_context=(*LOOKALIKE_CONTEXT, "qq群", "群号", "群聊"),
        context_required=True,
        requires_any=DIGITS,
        needs_digit_run=True,
        boundary=DIGITS,
    )
