"""WeChat IDs (微信号): 6–20 characters starting with a letter, only right after a WeChat context word."""

from __future__ import annotations

from yinsi.scan.recognizer import Pattern, Recognizer, as_tuple
from yinsi.scan.recognizers._chars import ALNUM

_NOT_IDS = frozenset({"wechat", "weixin", "wechatpay", "wechatid", "account", "number", "contact"})


def _not_a_word(value: str) -> bool | None:
    return False if value.lower() in _NOT_IDS else None


def recognizer() -> Recognizer:
    return Recognizer(
        name="WechatIdRecognizer",
        type="wechat_id",
        patterns=(Pattern("wechat_id", r"[A-Za-z][-_A-Za-z0-9]{5,19}", 0.7),),
        context=as_tuple(("微信", "wechat", "weixin", "wx", "vx", "v信", "薇信", "威信")),
        context_window=8,
        context_required=True,
        boundary=ALNUM + "-_",
        validator=_not_a_word,
    )
