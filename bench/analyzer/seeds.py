"""The analyzer against a reviewer's list of defects in the five seed policies.

    .venv/bin/python bench/analyzer/seeds.py [--seeds DIR] [--json OUT] [-v]

bench/analyzer/seed_defects.yaml lists, per seed, the defects a careful reviewer finds, each with a quote
from the seed (or ``missing: true`` for an element the text lacks) and the finding kinds that report it.
A defect is found when a finding of one of its kinds overlaps the quote (or, for a missing element, is
reported at all). A finding is true when it is the evidence of a listed defect; every other finding is
counted false and printed, so the list cannot silently absorb the analyzer's mistakes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import yaml

from yinsi.analyze import analyze_text, read_policy
from yinsi.analyze.findings import Finding

HERE = Path(__file__).resolve().parent
DEFAULT_SEEDS = HERE.parents[1].parent / "shared" / "seeds"


def locate(text: str, quote: str) -> tuple[int, int] | None:
    """The span of a reviewer's quote in the text: a line break in the quote must be one in the text; elsewhere
    hard line wraps and Markdown marks between characters are ignored."""
    parts = []
    for k, seg in enumerate(re.split(r"\s*\n\s*", quote.strip())):
        if k:
            parts.append(r"\s*\n\s*")
        chars = [c for c in seg if not c.isspace()]
        parts.append(r"[\s*#>\-]*".join(re.escape(c) for c in chars))
    m = re.search("".join(parts), text)
    return (m.start(), m.end()) if m else None


def matches(defect: dict, f: Finding, spans: list[tuple[int, int]] | None) -> bool:
    if f.kind not in defect["kinds"]:
        return False
    if defect.get("missing"):
        return True
    assert spans is not None
    return any(f.start < e and s < max(f.end, f.start + 1) for s, e in spans)


def evaluate(seeds: Path, spec: dict, verbose: bool = False) -> dict:
    rows = []
    totals = {"defects": 0, "found": 0, "findings": 0, "true": 0}
    t0 = time.perf_counter()
    for name, defects in spec.items():
        text = read_policy(seeds / name)
        findings = analyze_text(text, name)
        spans: list[list[tuple[int, int]] | None] = []
        for d in defects:
            if d.get("missing"):
                spans.append(None)
                continue
            quotes = d["quote"] if isinstance(d["quote"], list) else [d["quote"]]
            found_spans = []
            for q in quotes:
                span = locate(text, q)
                if span is None:
                    raise SystemExit(f"{name}: quote not in the seed: {q!r}")
                found_spans.append(span)
            spans.append(found_spans)
        found = [any(matches(d, f, s) for f in findings) for d, s in zip(defects, spans, strict=True)]
        true = [any(matches(d, f, s) for d, s in zip(defects, spans, strict=True)) for f in findings]
        rows.append({"seed": name, "defects": len(defects), "found": sum(found), "findings": len(findings),
                     "true": sum(true),
                     "missed": [d["id"] for d, ok in zip(defects, found, strict=True) if not ok],
                     "false": [f"{f.line}:{f.kind}:{f.quote[:30]!r}" for f, ok in zip(findings, true, strict=True) if not ok]})
        for k, v in (("defects", len(defects)), ("found", sum(found)), ("findings", len(findings)), ("true", sum(true))):
            totals[k] += v
    secs = time.perf_counter() - t0
    return {"seeds": rows, **totals,
            "recall": round(totals["found"] / totals["defects"], 3) if totals["defects"] else None,
            "precision": round(totals["true"] / totals["findings"], 3) if totals["findings"] else None,
            "seconds": round(secs, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=Path, default=DEFAULT_SEEDS)
    ap.add_argument("--json", type=Path)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    spec = yaml.safe_load((HERE / "seed_defects.yaml").read_text(encoding="utf-8"))
    result = evaluate(args.seeds, spec, args.verbose)
    out = json.dumps(result, ensure_ascii=False, indent=2)
    print(out)
    if args.json:
        args.json.write_text(out + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
