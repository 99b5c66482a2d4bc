"""Quality of the pattern recognizers on the generated corpus: precision, recall and F1 per type.

    python -m bench.scanner.quality [--docs 4000] [--seed 7] [--errors 20] [--json]
"""

from __future__ import annotations

import argparse
import json

from bench.scanner.corpus import generate
from bench.scanner.metrics import Scores
from yinsi.scan import PATTERN_TYPES, scan_text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--errors", type=int, default=0, help="print up to N false positives/negatives")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    scores = Scores()
    errors: list[str] = []
    for doc in generate(args.docs, args.seed):
        gold = {(str(s["type"]), int(str(s["start"])), int(str(s["end"]))) for s in doc.spans}
        pred = {(r.type, r.start, r.end) for r in scan_text(doc.text, types=PATTERN_TYPES)}
        scores.add(gold, pred)
        if len(errors) < args.errors:
            errors += [f"FP {t} {doc.text[s:e]!r} in {doc.text!r}" for t, s, e in pred - gold]
            errors += [f"FN {t} {doc.text[s:e]!r} in {doc.text!r}" for t, s, e in gold - pred]
    rows = {t: scores.row(t) for t in PATTERN_TYPES}
    rows["micro"] = scores.micro(PATTERN_TYPES)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'type':16} {'P':>7} {'R':>7} {'F1':>7} {'tp':>6} {'fp':>5} {'fn':>5}")
        for t, r in rows.items():
            print(f"{t:16} {r['precision']:7.4f} {r['recall']:7.4f} {r['f1']:7.4f} {r['tp']:6} {r['fp']:5} {r['fn']:5}")
    for line in errors[: args.errors]:
        print(line)


if __name__ == "__main__":
    main()
