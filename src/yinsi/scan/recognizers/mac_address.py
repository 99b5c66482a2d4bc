"""MAC addresses (MAC地址): six hex octets with ``:`` or ``-``, or Cisco-style ``xxxx.xxxx.xxxx``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from yinsi.scan.recognizer import Candidate, Pattern, Recognizer, as_tuple
from yinsi.scan.recognizers._chars import ALNUM


class MacRecognizer(Recognizer):
    def candidates(self, normalized: str, windows: Sequence[tuple[int, int]] | None = None) -> Iterator[Candidate]:
        for cand in super().candidates(normalized, windows):
            if not any(ch in "ABCDEFabcdef" for ch in cand.value):
                # All-decimal groups ("23-10-01-12-30-45") are more often dates or codes: need a context word.
                yield replace(cand, pattern=replace(cand.pattern, name=cand.pattern.name + "_decimal", score=0.4))
            else:
                yield cand


def recognizer() -> Recognizer:
    return MacRecognizer(
        name="MacAddressRecognizer",
        type="mac_address",
        patterns=(
            Pattern("mac_colon_dash", r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}", 0.85),
            Pattern("mac_dotted", r"[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}", 0.75),
        ),
        context=as_tuple(("mac", "物理地址", "网卡", "硬件地址", "无线地址", "蓝牙地址")),
        negative_context=(),
        boundary=ALNUM,
        separators=":-.",
        requires_any=":-.",
    )
