"""The PI scanner (个人信息扫描): recognizers for Chinese text, ``scan_text``, and database column proposals.

    >>> from yinsi.scan import scan_text
    >>> [(r.type, r.start, r.end) for r in scan_text("手机：138-0013-8000", types=["mobile_phone"])]
    [('mobile_phone', 3, 16)]
"""

from yinsi.scan.engine import resolve_overlaps, scan_text
from yinsi.scan.recognizer import Pattern, Recognizer
from yinsi.scan.registry import (
    MODEL_TYPES,
    PATTERN_TYPES,
    TYPE_LABELS,
    TYPES,
    RecognizerRegistry,
    UnknownType,
    default_registry,
)
from yinsi.scan.result import Result

__all__ = [
    "MODEL_TYPES",
    "PATTERN_TYPES",
    "TYPES",
    "TYPE_LABELS",
    "Pattern",
    "Recognizer",
    "RecognizerRegistry",
    "Result",
    "UnknownType",
    "default_registry",
    "resolve_overlaps",
    "scan_text",
]
