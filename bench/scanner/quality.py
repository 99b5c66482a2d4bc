"""Quality of the pattern recognizers: precision, recall and F1 per type on the generated corpus and on the hard
set (bench/scanner/hardset.jsonl: look-alike words near real numbers and the reverse, rare formats, tables).

    python -m bench.scanner.quality [--set both|generated|hard] [--docs 4000] [--seed 7] [--errors 20] [--json]
"""

from __future__ import annotations

import argparse
import json

from bench.scanner.corpus import generate
from bench.scanner.hardset import read as read_hardset
from bench.scanner.metrics import Scores
from yinsi.scan import PATTERN_TYPES, scan_text

Row = dict[str, float | int]


def _score(docs: list[tuple[str, list[dict[str, object]], str]], errors: list[str], limit: int) -> dict[str, Row]:
    scores = Scores()
    for text, spans, why in docs:
        gold = {(str(s["type"]), int(str(s["start"])), int(str(s["end"]))) for s in spans}
        pred = {(r.type, r.start, r.end) for r in scan_text(text, types=PATTERN_TYPES)}
        scores.add(gold, pred)
        if len(errors) < limit:
            note = f" ({why})" if why else ""
            errors += [f"FP {t} {text[s:e]!r} in {text!r}{note}" for t, s, e in pred - gold]
            errors += [f"FN {t} {text[s:e]!r} in {text!r}{note}" for t, s, e in gold - pred]
    rows: dict[str, Row] = {t: scores.row(t) for t in PATTERN_TYPES}
    rows["micro"] = scores.micro(PATTERN_TYPES)
    return rows


def hard_rows(errors: list[str] | None = None, limit: int = 0) -> dict[str, Row]:
    """P/R/F1 per type on the hard set (types without gold spans and without predictions are left out)."""
    docs = [(str(c["text"]), list(c["spans"]), str(c["why"])) for c in read_hardset()]  # type: ignore[call-overload]
    rows = _score(docs, errors if errors is not None else [], limit)
    return {t: r for t, r in rows.items() if t == "micro" or int(r["tp"]) + int(r["fp"]) + int(r["fn"]) > 0}


def generated_rows(n_docs: int, seed: int, errors: list[str] | None = None, limit: int = 0) -> dict[str, Row]:
    docs = [(d.text, list(d.spans), "") for d in generate(n_docs, seed)]
    return _score(docs, errors if errors is not None else [], limit)


def _print(title: str, rows: dict[str, Row]) -> None:
    print(title)
    print(f"{'type':16} {'P':>7} {'R':>7} {'F1':>7} {'tp':>6} {'fp':>5} {'fn':>5}")
    for t, r in rows.items():
        print(f"{t:16} {r['precision']:7.4f} {r['recall']:7.4f} {r['f1']:7.4f} {r['tp']:6} {r['fp']:5} {r['fn']:5}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("both", "generated", "hard"), default="both")
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--errors", type=int, default=0, help="print up to N false positives/negatives")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    errors: list[str] = []
    out: dict[str, dict[str, Row]] = {}
    if args.set in ("both", "hard"):
        out["hard"] = hard_rows(errors, args.errors)
    if args.set in ("both", "generated"):
        out["generated"] = generated_rows(args.docs, args.seed, errors, args.errors)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for name, rows in out.items():
            _print(f"== {name} set", rows)
    for line in errors[: args.errors]:
        print(line)


if __name__ == "__main__":
    main()
