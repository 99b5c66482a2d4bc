"""E-mail addresses (电子邮箱地址), found by expanding around each ``@`` (linear time, no regex backtracking)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from yinsi.scan.recognizer import Candidate, Pattern, Recognizer, as_tuple
from yinsi.scan.recognizers._chars import ALNUM

_LOCAL = frozenset(ALNUM + "._%+-")
_DOMAIN = frozenset(ALNUM + ".-")
_PATTERN = Pattern("email_at", r"local@domain.tld", 0.85)


class EmailRecognizer(Recognizer):
    def candidates(self, normalized: str, windows: Sequence[tuple[int, int]] | None = None) -> Iterator[Candidate]:
        s, n = normalized, len(normalized)
        at = s.find("@")
        while at >= 0:
            left = at
            while left > 0 and s[left - 1] in _LOCAL:
                left -= 1
            while left < at and s[left] in ".-+":
                left += 1
            right = at + 1
            while right < n and s[right] in _DOMAIN:
                right += 1
            while right > at + 1 and s[right - 1] in ".-":
                right -= 1
            domain = s[at + 1:right]
            tld = domain.rsplit(".", 1)[-1]
            if left < at and "." in domain and len(tld) >= 2 and tld.isalpha() and ".." not in domain:
                yield Candidate(left, right, s[left:right], _PATTERN)
            at = s.find("@", max(right, at + 1))


def recognizer() -> Recognizer:
    return EmailRecognizer(
        name="EmailRecognizer",
        type="email",
        patterns=(),
        context=as_tuple(("邮箱", "邮件", "email", "e-mail", "mail", "信箱")),
        negative_context=(),
        context_boost=0.1,
        requires_any="@",
    )
