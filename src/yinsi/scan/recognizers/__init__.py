"""The predefined recognizers, one module per type (person names and addresses use a trained model)."""

from __future__ import annotations

from yinsi.scan.recognizer import Recognizer
from yinsi.scan.recognizers import (
    bank_card,
    email,
    id_card,
    imei,
    ip_address,
    landline_phone,
    license_plate,
    mac_address,
    mobile_phone,
    passport,
    person_and_address,
    qq,
    wechat_id,
)


def pattern_recognizers() -> list[Recognizer]:
    """Every pattern-based recognizer (fast, no model), in priority order for exact ties."""
    return [
        id_card.recognizer(),
        bank_card.recognizer(),
        imei.recognizer(),
        mobile_phone.recognizer(),
        landline_phone.recognizer(),
        email.recognizer(),
        ip_address.ipv4_recognizer(),
        ip_address.ipv6_recognizer(),
        mac_address.recognizer(),
        passport.recognizer(),
        license_plate.recognizer(),
        qq.recognizer(),
        wechat_id.recognizer(),
    ]


def model_recognizers() -> list[Recognizer]:
    """The person-name and address recognizer, if the trained model is shipped (else none); the model itself
    is loaded on first use."""
    from importlib import resources

    from yinsi.scan.ner.model import MODEL_FILE

    shipped = (resources.files("yinsi.scan") / "data" / MODEL_FILE).is_file()
    return [person_and_address.recognizer()] if shipped else []
