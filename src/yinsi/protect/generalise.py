"""Generalisation (泛化): coarser values that still serve analytics — age bands, birth years, cities, grid cells.

Pure functions; time is passed in (``today``), never read from a clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import pairwise

__all__ = [
    "DEFAULT_AGE_BOUNDS",
    "PROVINCES",
    "GridCell",
    "age_band",
    "age_on",
    "birth_date_to_band",
    "birth_year",
    "city_of",
    "province_of",
    "round_coordinates",
]

#: Lower bounds of the default age bands: under 14 (PIPL 31, minors' PI is sensitive), 14–17 (minors),
#: then adult decades split at 25. Labels: ``0-13``, ``14-17``, ``18-24``, ..., ``65+``.
DEFAULT_AGE_BOUNDS: tuple[int, ...] = (0, 14, 18, 25, 35, 45, 55, 65)


def _check_bounds(bounds: Sequence[int]) -> None:
    if not bounds or bounds[0] != 0 or any(b >= c for b, c in pairwise(bounds)):
        raise ValueError(f"age band bounds must start at 0 and increase strictly, got {list(bounds)}")


def age_band(age: int, bounds: Sequence[int] = DEFAULT_AGE_BOUNDS) -> str:
    """The band an age falls in, e.g. ``age_band(30) == "25-34"``, ``age_band(70) == "65+"``."""
    _check_bounds(bounds)
    if isinstance(age, bool) or not isinstance(age, int) or age < 0:
        raise ValueError(f"age must be a non-negative integer, got {age!r}")
    for low, high in zip(bounds, [*bounds[1:], None], strict=True):
        if high is None:
            return f"{low}+"
        if age < high:
            return f"{low}-{high - 1}"
    raise AssertionError("unreachable")  # pragma: no cover


def age_on(birth: date, today: date) -> int:
    """Full years of age on ``today`` (周岁). A birthday on 29 February counts from 1 March in other years."""
    if birth > today:
        raise ValueError("birth date is after today")
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def birth_year(birth: date) -> int:
    """Birth date → year only."""
    return birth.year


def birth_date_to_band(birth: date, today: date, bounds: Sequence[int] = DEFAULT_AGE_BOUNDS) -> str:
    """Birth date → age band on ``today``."""
    return age_band(age_on(birth, today), bounds)


#: Provincial-level divisions (省级行政区) as written in full, with their short forms.
PROVINCES: dict[str, str] = {
    "北京市": "北京", "天津市": "天津", "上海市": "上海", "重庆市": "重庆",
    "河北省": "河北", "山西省": "山西", "辽宁省": "辽宁", "吉林省": "吉林", "黑龙江省": "黑龙江",
    "江苏省": "江苏", "浙江省": "浙江", "安徽省": "安徽", "福建省": "福建", "江西省": "江西",
    "山东省": "山东", "河南省": "河南", "湖北省": "湖北", "湖南省": "湖南", "广东省": "广东",
    "海南省": "海南", "四川省": "四川", "贵州省": "贵州", "云南省": "云南", "陕西省": "陕西",
    "甘肃省": "甘肃", "青海省": "青海", "台湾省": "台湾",
    "内蒙古自治区": "内蒙古", "广西壮族自治区": "广西", "西藏自治区": "西藏",
    "宁夏回族自治区": "宁夏", "新疆维吾尔自治区": "新疆",
    "香港特别行政区": "香港", "澳门特别行政区": "澳门",
}
_MUNICIPALITIES = {"北京市", "天津市", "上海市", "重庆市"}
_SARS = {"香港特别行政区", "澳门特别行政区"}
#: Suffixes of prefecture-level divisions (地级行政区), longest first.
_PREFECTURE_SUFFIXES = ("自治州", "地区", "市", "盟")
#: Characters that show a cut went past the city into a district, street or building.
_NOT_IN_CITY = re.compile(r"[区县镇乡村路街道巷号楼室\d０-９]")


def province_of(address: str) -> str | None:
    """The province (full name) an address starts with, by full or short name; ``None`` if none."""
    text = address.strip().removeprefix("中国")
    for full, short in PROVINCES.items():
        if text.startswith(full) or text.startswith(short):
            return full
    return None


def city_of(address: str) -> str | None:
    """The prefecture-level city (地级市, 自治州, 地区 or 盟) of a Chinese address, or ``None``.

    ``"广东省深圳市南山区科技园"`` → ``"深圳市"``; the four municipalities give themselves
    (``"北京市朝阳区..."`` → ``"北京市"``); Hong Kong and Macao give the region. The address is cut at
    the first prefecture suffix after the province; a cut that would swallow a district, street or number
    (``"西湖区文三路超市"``) gives ``None`` rather than a wrong city.
    """
    text = re.sub(r"\s+", "", address).removeprefix("中国")
    province = province_of(text)
    rest = text
    if province is not None:
        if province in _MUNICIPALITIES or province in _SARS:
            return province
        short = PROVINCES[province]
        rest = text[len(province):] if text.startswith(province) else text[len(short):]
        rest = rest.removeprefix("省")
        if rest.startswith("市"):  # 吉林市 in 吉林省, written without the province
            return short + "市"
    best: str | None = None
    for suffix in _PREFECTURE_SUFFIXES:
        at = rest.find(suffix)
        if at > 0 and (best is None or at + len(suffix) < len(best)):
            best = rest[: at + len(suffix)]
    if best is None or len(best) > 12 or _NOT_IN_CITY.search(best[:-1]):
        return None
    return best


@dataclass(frozen=True)
class GridCell:
    """A square cell of ``size`` degrees; ``lat``/``lon`` are its centre (what is released)."""

    lat: float
    lon: float
    size: float


def round_coordinates(lat: float, lon: float, size: float = 0.01) -> GridCell:
    """Snap a precise position to the centre of its grid cell (default 0.01°, about 1.1 km north–south).

    Every point of a cell maps to the same centre, unlike rounding each coordinate to fewer decimals, whose
    cells straddle the points where people cluster. Common sizes: 0.001 (~110 m), 0.01 (~1 km), 0.1 (~11 km).
    """
    if not (math.isfinite(lat) and math.isfinite(lon)) or not -90 <= lat <= 90 or not -180 <= lon <= 180:
        raise ValueError("coordinates out of range")
    if not size > 0:
        raise ValueError("grid size must be positive")
    step = Decimal(str(size))
    exponent = step.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError("grid size must be a finite number")
    places = Decimal(1).scaleb(exponent - 1)  # keep one more digit than the step has

    def centre(v: float) -> float:
        cell = (Decimal(str(v)) / step).to_integral_value(rounding="ROUND_FLOOR")
        return float(((cell + Decimal("0.5")) * step).quantize(places, rounding=ROUND_HALF_EVEN))

    return GridCell(centre(lat), centre(lon), size)
