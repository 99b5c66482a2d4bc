"""Presidio (presidio-analyzer) configured for Chinese text as far as it goes, for the scanner benchmark.

What is configured (Presidio ships no Chinese recognizers and no Chinese model; nothing is downloaded):

* NLP engine: ``SpacyNlpEngine`` whose ``load`` builds ``spacy.blank("zh")`` in process, with the ``jieba``
  word segmenter when jieba is installed (so Presidio's context words such as 微信/QQ can match tokens), else
  spaCy's character segmenter, plus a one-line component that sets each token's lemma to its lower-cased text
  (Presidio's context enhancer matches context words against lemmas, and a blank pipeline has none). No
  statistical NER: Presidio's NER-based entities (PERSON, LOCATION) are unavailable.
* Presidio's generic recognizers, set to language ``zh``: ``EmailRecognizer``, ``IpRecognizer``,
  ``CreditCardRecognizer`` (Luhn; reported as bank_card), ``MacAddressRecognizer`` and ``PhoneRecognizer``
  with ``supported_regions=("CN",)`` (libphonenumber; a PHONE_NUMBER whose digits start with 1 after +86 is
  scored as mobile_phone, otherwise landline_phone).
* ``PatternRecognizer``s written for this benchmark with Presidio's API (regexes equivalent to Yinsi's, checks in
  ``validate_result``): CN_ID_CARD (province, birth date, ISO 7064 MOD 11-2), CN_IMEI (Luhn), CN_PASSPORT,
  CN_LICENSE_PLATE, and CN_QQ / CN_WECHAT with context words and a low base score (0.05) so that only
  Presidio's context enhancer can lift them over the score threshold (0.35).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

Span = tuple[str, int, int]

SUPPORTED_TYPES = ("mobile_phone", "landline_phone", "id_card", "bank_card", "email", "ip_address", "imei",
                   "mac_address", "passport", "license_plate", "qq", "wechat_id")
THRESHOLD = 0.35

_ENTITY_TYPE = {
    "EMAIL_ADDRESS": "email", "IP_ADDRESS": "ip_address", "CREDIT_CARD": "bank_card", "MAC_ADDRESS": "mac_address",
    "CN_ID_CARD": "id_card", "CN_IMEI": "imei", "CN_PASSPORT": "passport", "CN_LICENSE_PLATE": "license_plate",
    "CN_QQ": "qq", "CN_WECHAT": "wechat_id",
}


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _id_ok(value: str) -> bool:
    v = value.upper()
    if len(v) != 18 or not v[:17].isdigit():
        return False
    try:
        date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return False
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(c) * w for c, w in zip(v[:17], weights, strict=True)) % 11] == v[17]


def build() -> tuple[Callable[[str], list[Span]], str]:
    """An ``analyze(text) -> spans`` function and a one-line description of the configuration."""
    import spacy
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IpRecognizer,
        MacAddressRecognizer,
        PhoneRecognizer,
    )
    from spacy.language import Language
    from spacy.tokens import Doc

    try:
        import jieba  # noqa: F401

        segmenter = "jieba"
    except ImportError:
        segmenter = "char"

    if not Language.has_factory("yinsi_bench_lemma_is_lower"):
        # Presidio's context enhancer compares context words with token lemmas; a blank pipeline has none.
        @Language.component("yinsi_bench_lemma_is_lower")
        def _lemma_is_lower(doc: Doc) -> Doc:
            for token in doc:
                token.lemma_ = token.lower_
            return doc

    class BlankChineseNlpEngine(SpacyNlpEngine):
        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": "zh", "model_name": "blank:zh"}])

        def load(self) -> None:
            nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": segmenter}}})
            nlp.add_pipe("yinsi_bench_lemma_is_lower")
            self.nlp = {"zh": nlp}

    class IdCard(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return _id_ok(pattern_text.replace(" ", ""))

    class Imei(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            digits = re.sub(r"\D", "", pattern_text)
            return len(digits) == 15 and _luhn(digits)

    lang = "zh"
    recognizers = [
        EmailRecognizer(supported_language=lang),
        IpRecognizer(supported_language=lang),
        CreditCardRecognizer(supported_language=lang),
        MacAddressRecognizer(supported_language=lang),
        PhoneRecognizer(supported_language=lang, supported_regions=("CN",),
                        context=["电话", "手机", "联系", "致电", "号码", "tel", "phone"]),
        IdCard(supported_entity="CN_ID_CARD", supported_language=lang, context=["身份证", "证件", "身份"],
               patterns=[Pattern("cn_id", r"(?<!\d)[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
                                          r"\d{3}[\dXx](?!\d)", 0.5)]),
        Imei(supported_entity="CN_IMEI", supported_language=lang, context=["IMEI", "串号", "识别码"],
             patterns=[Pattern("imei", r"(?<!\d)\d{15}(?!\d)|(?<!\d)\d{2}-\d{6}-\d{6}-\d(?!\d)", 0.5)]),
        PatternRecognizer(supported_entity="CN_PASSPORT", supported_language=lang, context=["护照", "passport"],
                          patterns=[Pattern("cn_passport", r"(?<![A-Za-z0-9])E(?:\d{8}|[A-HJ-NP-Z]\d{7})(?![A-Za-z0-9])",
                                            0.5)]),
        PatternRecognizer(supported_entity="CN_LICENSE_PLATE", supported_language=lang,
                          context=["车牌", "车辆", "号牌"],
                          patterns=[Pattern("cn_plate", r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]"
                                                        r"[A-HJ-NP-Z]·?(?:[DF][A-HJ-NP-Z0-9]\d{4}|\d{5}[DF]|"
                                                        r"[A-HJ-NP-Z0-9]{4}[A-HJ-NP-Z0-9挂学警港澳])(?![A-Za-z0-9])", 0.6)]),
        PatternRecognizer(supported_entity="CN_QQ", supported_language=lang, context=["QQ", "qq", "QQ号", "扣扣"],
                          patterns=[Pattern("qq", r"(?<!\d)[1-9]\d{4,10}(?!\d)", 0.05)]),
        PatternRecognizer(supported_entity="CN_WECHAT", supported_language=lang, context=["微信", "微信号", "vx", "wx"],
                          patterns=[Pattern("wechat", r"(?<![A-Za-z0-9_-])[A-Za-z][-_A-Za-z0-9]{5,19}(?![A-Za-z0-9_-])",
                                            0.05)]),
    ]
    registry = RecognizerRegistry(supported_languages=[lang])
    for r in recognizers:
        registry.add_recognizer(r)
    engine = AnalyzerEngine(registry=registry, nlp_engine=BlankChineseNlpEngine(), supported_languages=[lang],
                            default_score_threshold=THRESHOLD)

    def analyze(text: str) -> list[Span]:
        spans: list[Span] = []
        for r in engine.analyze(text=text, language=lang):
            if r.entity_type == "PHONE_NUMBER":
                digits = re.sub(r"\D", "", text[r.start:r.end])
                digits = digits[2:] if digits.startswith("86") and len(digits) == 13 else digits
                digits = digits[4:] if digits.startswith("0086") else digits
                spans.append(("mobile_phone" if digits.startswith("1") else "landline_phone", r.start, r.end))
            elif r.entity_type in _ENTITY_TYPE:
                spans.append((_ENTITY_TYPE[r.entity_type], r.start, r.end))
        return spans

    return analyze, (f"presidio-analyzer, spacy.blank('zh') with the {segmenter} segmenter, generic recognizers "
                     "(email, IP, credit card, MAC, phone CN) + Chinese PatternRecognizers")
