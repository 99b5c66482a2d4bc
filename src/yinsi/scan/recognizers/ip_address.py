"""IP addresses (IP地址): dotted IPv4 and IPv6 (checked by the standard library's parser)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Sequence

from yinsi.scan.recognizer import LOOKALIKE_CONTEXT, Candidate, Pattern, Recognizer, as_tuple
from yinsi.scan.recognizers._chars import ALNUM, HEX, LETTERS

_CONTEXT = as_tuple(("ip", "地址", "登录", "访问", "服务器", "主机", "host", "来源", "网关", "dns"))
#: Dotted version numbers look like IPv4 addresses.
_NEGATIVE = (*LOOKALIKE_CONTEXT, "版本", "version")


def _valid_v4(value: str) -> bool | None:
    """Octets 0–255 without leading zeros (a cheap pattern finds the candidates, this checks them)."""
    for octet in value.split("."):
        if int(octet) > 255 or (len(octet) > 1 and octet[0] == "0"):
            return False
    return None


def _valid_v6(value: str) -> bool | None:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def ipv4_recognizer() -> Recognizer:
    return Recognizer(
        name="Ipv4Recognizer",
        type="ip_address",
        patterns=(Pattern("ipv4", r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", 0.65),),
        context=_CONTEXT,
        negative_context=_NEGATIVE,
        context_window=8,
        context_boost=0.25,
        boundary=ALNUM,
        separators=".",
        requires_any=".",
        validator=_valid_v4,
    )


_HEXCOLON = frozenset(HEX + ":")
_PATTERN_V6 = Pattern("ipv6", r":[0-9A-Fa-f]{0,4}:", 0.75)
_COLON_PAIR = re.compile(_PATTERN_V6.regex)


class Ipv6Recognizer(Recognizer):
    """Finds runs of hex digits and colons around each ``:hhhh:`` (a literal-led search, fast), then lets the
    standard library's parser decide."""

    def candidates(self, normalized: str, windows: Sequence[tuple[int, int]] | None = None) -> Iterator[Candidate]:
        s, n = normalized, len(normalized)
        pos = 0
        while True:
            m = _COLON_PAIR.search(s, pos)
            if m is None:
                return
            left, right = m.start(), m.end()
            while left > 0 and s[left - 1] in _HEXCOLON:
                left -= 1
            while right < n and s[right] in _HEXCOLON:
                right += 1
            yield Candidate(left, right, s[left:right], _PATTERN_V6)
            pos = right


def ipv6_recognizer() -> Recognizer:
    return Ipv6Recognizer(
        name="Ipv6Recognizer",
        type="ip_address",
        patterns=(),
        context=_CONTEXT,
        negative_context=_NEGATIVE,
        context_window=8,
        context_boost=0.2,
        boundary=HEX + LETTERS + ":",
        requires_any=":",
        validator=_valid_v6,
        validated_reason="valid IPv6 address",
        validated_boost=0.1,
    )
