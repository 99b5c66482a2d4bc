"""Bank card numbers (银行卡号): 16–19 digits, optionally grouped by four, Luhn check."""

from __future__ import annotations

from yinsi.scan.checksums import digits_only, luhn_ok
from yinsi.scan.recognizer import LOOKALIKE_CONTEXT, Pattern, Recognizer, as_tuple
from yinsi.scan.recognizers._chars import DIGITS, GROUP_SEPARATORS


def _valid(value: str) -> bool:
    digits = digits_only(value)
    return 16 <= len(digits) <= 19 and luhn_ok(digits)


def recognizer() -> Recognizer:
    # Issuer prefixes: 62 UnionPay, 4 Visa, 5 Mastercard, 3 JCB/AmEx, 9 legacy domestic debit cards (e.g. 9559).
    return Recognizer(
        name="BankCardRecognizer",
        type="bank_card",
        patterns=(
            Pattern("card_contiguous", r"[3-69][0-9]{15,18}", 0.5),
            Pattern("card_grouped", r"[3-69][0-9]{3}(?:[ -][0-9]{4}){3}(?:[ -]?[0-9]{1,3})?", 0.5),
            # Six then the rest ("622202 1234567890123", as printed on many 19-digit UnionPay cards).
            Pattern("card_grouped_6", r"[3-69][0-9]{5}[ -][0-9]{10,13}", 0.5),
        ),
        context=as_tuple(("银行卡", "卡号", "储蓄卡", "信用卡", "借记卡", "银行账号", "账号", "账户", "开户", "card")),
        # An ID number with a wrong check character may still pass Luhn: the ID context tells it is no card.
        negative_context=(*LOOKALIKE_CONTEXT, "身份证", "证件号", "身份号码"),
        validated_boost=0.35,
        requires_any=DIGITS,
        needs_digit_run=True,
        boundary=DIGITS,
        separators=GROUP_SEPARATORS,
        validator=_valid,
        validated_reason="Luhn check passed",
    )
