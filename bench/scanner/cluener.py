"""Person-name and address F1 on CLUENER2020 (``test.json``, the official dev split), beside the reference.

    python -m bench.scanner.cluener [--data ../shared/data/cluener]

Exact-span matching, as in CLUENER's own scorer. Two views: the tagger's raw spans, and ``scan_text`` with
``types=["person_name", "address"]`` (what users get: spans trimmed of punctuation, names of one character
dropped). The model never saw ``test.json`` (``python -m yinsi.scan.ner.train``; all four test sets:
``bench.scanner.ner_eval``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.scanner.metrics import Scores
from yinsi.scan import scan_text
from yinsi.scan.ner.model import load_default_model

REFERENCE = {"name": 89.09, "address": 62.63}  # RoBERTa-wwm-large, CLUENER2020 paper / leaderboard
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "cluener"
TYPE_OF_KIND = {"person_name": "name", "address": "address"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    model = load_default_model()
    if model is None:
        raise SystemExit("no trained model: run python -m yinsi.scan.ner.train "
                         "../shared/data/cluener/train.json --extra bench/.cache/ner")
    raw, pipeline = Scores(), Scores()
    chars = 0
    began = time.perf_counter()
    with (args.data / "test.json").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            text = row["text"]
            chars += len(text.encode("utf-8"))
            gold = {(kind, s, e + 1) for kind in ("name", "address")
                    for positions in (row.get("label") or {}).get(kind, {}).values() for s, e in positions}
            raw.add(gold, {(k, s, e) for k, s, e in model.spans(text) if k in ("name", "address")})
            pipeline.add(gold, {(TYPE_OF_KIND[r.type], r.start, r.end)
                                for r in scan_text(text, types=["person_name", "address"])})
    elapsed = time.perf_counter() - began
    out = {
        "reference_f1": REFERENCE,
        "tagger": {k: raw.row(k) for k in ("name", "address")},
        "scan_text": {k: pipeline.row(k) for k in ("name", "address")},
        "mb_per_s_both_passes": chars / 1e6 / elapsed,
        "model": model.meta,
    }
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return
    print("| kind | reference F1 | tagger P / R / F1 | scan_text P / R / F1 |")
    print("|---|---:|---:|---:|")
    for k in ("name", "address"):
        a, b = raw.row(k), pipeline.row(k)
        print(f"| {k} | {REFERENCE[k]:.2f} | {a['precision'] * 100:.2f} / {a['recall'] * 100:.2f} / **{a['f1'] * 100:.2f}** | "
              f"{b['precision'] * 100:.2f} / {b['recall'] * 100:.2f} / **{b['f1'] * 100:.2f}** |")
    print(f"\nmodel: {model.meta}; {elapsed:.1f} s for both passes")


if __name__ == "__main__":
    main()
