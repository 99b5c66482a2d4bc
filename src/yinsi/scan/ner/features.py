"""Character features for the name/address tagger: n-grams around the character and character classes."""

from __future__ import annotations

_PAD_LEFT = ("^2", "^1")
_PAD_RIGHT = ("$1", "$2")


def char_class(ch: str) -> str:
    """D digit, L Latin letter, H Han character, S space, P anything else."""
    if ch.isdigit():
        return "D"
    if ch.isascii() and ch.isalpha():
        return "L"
    if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf":
        return "H"
    if ch.isspace():
        return "S"
    return "P"


#: Longest gazetteer entry looked up.
GAZETTEER_MAX = 12


def gazetteer_features(chars: str, gazetteer: dict[str, str]) -> list[list[str]]:
    """Per character: whether a gazetteer entry (a known address, organisation, ... from the training spans)
    starts (B), continues (I) or ends (E) here; ``gazetteer`` maps the entry to its kinds ("address|org")."""
    out: list[list[str]] = [[] for _ in chars]
    n = len(chars)
    for i in range(n):
        for length in range(min(GAZETTEER_MAX, n - i), 1, -1):
            kinds = gazetteer.get(chars[i:i + length])
            if kinds is None:
                continue
            for kind in kinds.split("|"):
                out[i].append("gB" + kind)
                for j in range(i + 1, i + length - 1):
                    out[j].append("gI" + kind)
                out[i + length - 1].append("gE" + kind)
            break  # the longest entry starting here
    return out


def sentence_features(chars: str, lexicon: dict[str, frozenset[str]] | None = None,
                      gazetteer: dict[str, str] | None = None) -> list[list[str]]:
    """For each character, the feature strings the model scores.

    ``lexicon`` maps a feature family (e.g. ``"sur"`` for surname characters, ``"asfx"`` for address
    suffix characters) to a set of characters; membership of the current and neighbouring characters
    becomes a feature. ``gazetteer`` adds entry-boundary features (see ``gazetteer_features``).
    """
    padded = (*_PAD_LEFT, *chars, *_PAD_RIGHT)
    classes = ("B", "B", *(char_class(c) for c in chars), "E", "E")
    out: list[list[str]] = []
    lex = lexicon or {}
    gaz = gazetteer_features(chars, gazetteer) if gazetteer else None
    for i in range(len(chars)):
        j = i + 2
        a, b, c, d, e = padded[j - 2], padded[j - 1], padded[j], padded[j + 1], padded[j + 2]
        feats = [
            "b",
            "u0" + c,
            "u-1" + b,
            "u1" + d,
            "u-2" + a,
            "u2" + e,
            "b-1" + b + c,
            "b1" + c + d,
            "b-2" + a + b,
            "b2" + d + e,
            "s" + b + d,
            "t" + b + c + d,
            "c" + classes[j - 1] + classes[j] + classes[j + 1],
        ]
        for name, chars_set in lex.items():
            if c in chars_set:
                feats.append(name + "0")
            if b in chars_set:
                feats.append(name + "-1")
            if d in chars_set:
                feats.append(name + "1")
        if gaz is not None and gaz[i]:
            feats.extend(dict.fromkeys(gaz[i]))
        out.append(feats)
    return out
