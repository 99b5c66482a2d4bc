#!/usr/bin/env python
"""Small before/after comparison of the gate (warm ``check()`` with records off and on, cold first decisions).

Usage: ``.venv/bin/python bench/gate/warm_compare.py SRC_DIR`` imports yinsi from ``SRC_DIR`` (e.g. the ``src`` of
``git worktree add /tmp/yinsi-before <commit>``, or ``src`` of this checkout) and prints one line. Run the two
trees alternately, several times, pinned to one CPU (``taskset -c 0``), and compare medians: on a shared machine
single runs vary widely. Scratch SQLite database and data directory in a temporary directory.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "src"))
os.environ["YINSI_DATA_DIR"] = tempfile.mkdtemp(prefix="yinsi-bench-data-")

from yinsi.services.consent import ConsentService  # noqa: E402
from yinsi.services.publishing import publish  # noqa: E402
from yinsi.storage import upgrade  # noqa: E402

TENANT = "weiliaoke"
URL = f"sqlite:///{tempfile.mkdtemp(prefix='yinsi-bench-')}/yinsi.db"


def main() -> None:
    upgrade(URL)
    publish(ROOT / "policies" / "weiliaoke-2022.yaml", URL)
    kw = {"feature": "marketing", "items": ["device.identifiers"]}
    out = []
    with ConsentService(URL) as svc:
        for scope in ("policy", "feature:marketing"):
            svc.record_consent(TENANT, "u1", scope)
        for record in (False, True):
            for _ in range(20_000):
                svc.check(TENANT, "u1", "use", record=record, **kw)
            svc.flush()
            rates = []
            for _ in range(5):
                t = time.perf_counter()
                for _ in range(30_000):
                    svc.check(TENANT, "u1", "use", record=record, **kw)
                svc.flush()
                rates.append(30_000 / (time.perf_counter() - t))
            out.append(f"warm record={record}: {statistics.median(rates):,.0f}/s")
        t = time.perf_counter()
        for i in range(300):
            svc.check(TENANT, f"cold-{i}", "use", record=False, **kw)
        out.append(f"cold: {300 / (time.perf_counter() - t):,.0f}/s")
    print(sys.path[0], "|", " | ".join(out), "| load", " ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
