"""yinsi policy analyze over the 130 original CAPP-130 policies: policies per second and findings by kind.

    .venv/bin/python bench/analyzer/capp130_speed.py
"""

from __future__ import annotations

import collections
import json
import sys
import time
from pathlib import Path

from yinsi.analyze import analyze_text, read_policy
from yinsi.analyze.draft import draft_declaration

ROOT = Path(__file__).resolve().parents[1] / ".cache" / "capp130" / "CAPP_130_Corpus" / "Original_policies"


def main() -> int:
    files = sorted(ROOT.glob("*.txt"))
    if not files:
        print("bench/.cache/capp130 is missing: run bench/analyzer/fetch_capp130.py first", file=sys.stderr)
        return 2
    texts = [(f.name, read_policy(f)) for f in files]
    kinds: collections.Counter[str] = collections.Counter()
    t0 = time.perf_counter()
    worst = 0.0
    for name, text in texts:
        t1 = time.perf_counter()
        for f in analyze_text(text, name):
            kinds[f.kind] += 1
        worst = max(worst, time.perf_counter() - t1)
    analyse = time.perf_counter() - t0
    t0 = time.perf_counter()
    for name, text in texts:
        draft_declaration(text, name)
    drafting = time.perf_counter() - t0
    print(json.dumps({"policies": len(texts), "characters": sum(len(t) for _n, t in texts),
                      "analyse_policies_per_second": round(len(texts) / analyse, 1),
                      "slowest_policy_seconds": round(worst, 3),
                      "draft_policies_per_second": round(len(texts) / drafting, 1),
                      "findings_by_kind": dict(kinds.most_common())}, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
