"""The recognizer registry (识别器注册表): which recognizers run, looked up by type."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from yinsi.scan.recognizer import Recognizer

#: The JSON type names, in the order they are documented.
TYPES: tuple[str, ...] = (
    "mobile_phone", "landline_phone", "id_card", "bank_card", "email", "ip_address", "imei", "mac_address",
    "passport", "license_plate", "qq", "wechat_id", "person_name", "address",
)
#: Chinese labels for people (CLI tables, messages).
TYPE_LABELS: dict[str, str] = {
    "mobile_phone": "手机号码", "landline_phone": "固定电话", "id_card": "身份证号码", "bank_card": "银行卡号",
    "email": "电子邮箱", "ip_address": "IP地址", "imei": "IMEI", "mac_address": "MAC地址", "passport": "护照号码",
    "license_plate": "车牌号", "qq": "QQ号", "wechat_id": "微信号", "person_name": "姓名", "address": "地址",
}
#: Types found by patterns (and checksums), as opposed to the trained name/address model.
PATTERN_TYPES: tuple[str, ...] = TYPES[:12]
MODEL_TYPES: tuple[str, ...] = ("person_name", "address")


class UnknownType(ValueError):
    """A type name that no recognizer produces."""


class RecognizerRegistry:
    """An ordered set of recognizers. Order breaks exact ties between overlapping results (earlier wins)."""

    def __init__(self, recognizers: Iterable[Recognizer] = ()) -> None:
        self._recognizers: list[Recognizer] = []
        self._selection: dict[frozenset[str] | None, list[Recognizer]] = {}
        for r in recognizers:
            self.add(r)

    def add(self, recognizer: Recognizer) -> None:
        if any(r.name == recognizer.name for r in self._recognizers):
            raise ValueError(f"recognizer {recognizer.name} is already registered")
        self._recognizers.append(recognizer)
        self._selection.clear()

    def remove(self, name: str) -> None:
        self._recognizers = [r for r in self._recognizers if r.name != name]
        self._selection.clear()

    @property
    def recognizers(self) -> tuple[Recognizer, ...]:
        return tuple(self._recognizers)

    @property
    def types(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for r in self._recognizers:
            for t in r.types:
                seen.setdefault(t, None)
        return tuple(seen)

    def for_types(self, types: Iterable[str] | None) -> list[Recognizer]:
        """The recognizers producing any of ``types`` (all when ``None``); unknown names raise ``UnknownType``."""
        key = None if types is None else frozenset(types)
        selected = self._selection.get(key)
        if selected is None:
            if key is None:
                selected = list(self._recognizers)
            else:
                unknown = key - set(self.types)
                if unknown:
                    raise UnknownType(f"unknown PI type(s): {', '.join(sorted(unknown))}; known: {', '.join(self.types)}")
                selected = [r for r in self._recognizers if key & set(r.types)]
            self._selection[key] = selected
        return list(selected)


@cache
def default_registry() -> RecognizerRegistry:
    """All predefined recognizers: the pattern types, then the person-name and address model."""
    from yinsi.scan.recognizers import model_recognizers, pattern_recognizers

    return RecognizerRegistry([*pattern_recognizers(), *model_recognizers()])
