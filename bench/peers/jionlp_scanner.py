"""jionlp's rule-based extractors as a scanner peer (jionlp 1.5.x; no model is loaded for these).

Used: ``extract_phone_number`` (cell_phone → mobile_phone, landline_phone), ``extract_id_card``,
``extract_email``, ``extract_ip_address``, ``extract_qq``, ``extract_wechat_id`` and
``extract_motor_vehicle_licence_plate``. jionlp has no extractor for bank cards, IMEI, MAC or passports.
An extractor that raises on a document (jionlp 1.5.31's ``extract_email`` raises ``AttributeError`` on some
domains with a hyphen) counts as finding nothing there; ``ERRORS`` counts such calls per extractor.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

Span = tuple[str, int, int]

ERRORS: Counter[str] = Counter()

SUPPORTED_TYPES = ("mobile_phone", "landline_phone", "id_card", "email", "ip_address", "license_plate", "qq",
                   "wechat_id")


def build() -> tuple[Callable[[str], list[Span]], str]:
    import jionlp as jio

    extractors: list[tuple[Callable[..., list[dict[str, object]]], str | None]] = [
        (jio.extract_phone_number, None),
        (jio.extract_id_card, "id_card"),
        (jio.extract_email, "email"),
        (jio.extract_ip_address, "ip_address"),
        (jio.extract_qq, "qq"),
        (jio.extract_wechat_id, "wechat_id"),
        (jio.extract_motor_vehicle_licence_plate, "license_plate"),
    ]
    phone_types = {"cell_phone": "mobile_phone", "landline_phone": "landline_phone"}

    def analyze(text: str) -> list[Span]:
        spans: list[Span] = []
        for fn, pi_type in extractors:
            try:
                items = fn(text, detail=True)
            except Exception:  # a peer's bug on one document must not stop the benchmark
                ERRORS[fn.__name__] += 1
                continue
            for item in items:
                start, end = item["offset"]  # type: ignore[misc]
                t = pi_type or phone_types.get(str(item.get("type")), "mobile_phone")
                spans.append((t, int(start), int(end)))
        return spans

    return analyze, f"jionlp {getattr(jio, '__version__', '')} extractors (phone, id card, email, ip, qq, wechat, plate)"
