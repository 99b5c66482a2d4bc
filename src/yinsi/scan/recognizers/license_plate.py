"""Vehicle licence plates (机动车号牌), including 8-character new-energy plates (新能源号牌)."""

from __future__ import annotations

from yinsi.scan.recognizer import Pattern, Recognizer, as_tuple
from yinsi.scan.recognizers._chars import ALNUM, DIGITS

_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_L = "A-HJ-NP-Z"  # plate letters: I and O are not used


def _plausible_serial(value: str) -> bool | None:
    serial = value[2:].lstrip("·• ")
    if len(serial) == 6:  # new-energy plates are fully specified by the pattern
        return None
    digits = sum(ch.isdigit() for ch in serial)
    return None if digits >= 2 else False


def recognizer() -> Recognizer:
    return Recognizer(
        name="LicensePlateRecognizer",
        type="license_plate",
        patterns=(
            Pattern(
                "cn_plate",
                rf"[{_PROVINCES}][{_L}][·• ]?(?:[DF][{_L}0-9][0-9]{{4}}|[0-9]{{5}}[DF]|[{_L}0-9]{{4}}[{_L}0-9挂学警港澳])",
                0.7,
            ),
        ),
        context=as_tuple(("车牌", "号牌", "车辆", "牌照", "车号", "汽车", "停车", "plate")),
        negative_context=(),
        context_boost=0.2,
        requires_any=DIGITS,
        boundary=ALNUM,
        validator=_plausible_serial,
    )
