#!/usr/bin/env python
"""Start-up time of the ``yinsi`` command (issue 9, item 9): wall time of whole processes, median of N runs.

Cases, measured in the same run and interleaved (one run of each case per round, so that a busy machine
slows every case alike):

- ``python -c pass``: the interpreter's own start-up, the floor;
- ``yinsi --help``: the command list (the table in ``yinsi/cli/main.py``; no command module is imported);
- ``yinsi rules N1``: a small command (the rule catalogue, no database);
- ``yinsi policy --help`` and ``yinsi request --help``: a sub-group's help imports that area's modules only;
- ``yinsi db current`` on a migrated SQLite file: a command that opens Yinsi's database;
- every command module imported: what each command cost before command areas were loaded lazily.

Usage: ``.venv/bin/python bench/cli/run.py [-n 15] [--importtime] [--no-write] [--out FILE]``. The table is
printed and written to ``docs/benchmarks/cli.md``; the part of that file from ``<!-- kept across runs -->`` on
is kept. ``--importtime`` also prints the slowest imports of ``yinsi --help`` (``python -X importtime``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
YINSI = str(Path(PY).with_name("yinsi"))
KEEP = "<!-- kept across runs -->"
DB_URL = f"sqlite:///{tempfile.mkdtemp(prefix='yinsi-bench-cli-')}/yinsi.db"
EAGER = ("import pkgutil, importlib, yinsi.cli as c\n"
         "for m in pkgutil.iter_modules(c.__path__):\n"
         "    m.name.endswith('_cmds') and importlib.import_module('yinsi.cli.' + m.name)")

CASES: list[tuple[str, list[str]]] = [
    ("python -c pass", [PY, "-c", "pass"]),
    ("yinsi --help", [YINSI, "--help"]),
    ("yinsi rules N1", [YINSI, "rules", "N1"]),
    ("yinsi policy --help", [YINSI, "policy", "--help"]),
    ("yinsi request --help", [YINSI, "request", "--help"]),
    ("yinsi db current (SQLite)", [YINSI, "db", "current", "--url", DB_URL]),
    ("import every command module (as before)", [PY, "-c", EAGER]),
]


def _run(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=ROOT)
    return time.perf_counter() - start


def measure(n: int) -> dict[str, list[float]]:
    _run([YINSI, "db", "upgrade", "--url", DB_URL])
    for _, cmd in CASES:  # warm the file cache and the bytecode once
        _run(cmd)
    times: dict[str, list[float]] = {name: [] for name, _ in CASES}
    for _ in range(n):
        for name, cmd in CASES:
            times[name].append(_run(cmd))
    return times


def importtime(top: int = 15) -> list[tuple[int, str]]:
    """The slowest imports (cumulative µs) of ``yinsi --help``."""
    code = "from yinsi.cli.main import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass"
    err = subprocess.run([PY, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True).stderr
    rows = []
    for line in err.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            rows.append((int(cumulative), name.rstrip()))
    return sorted(rows, reverse=True)[:top]


def table(times: dict[str, list[float]], n: int) -> str:
    floor = statistics.median(times["python -c pass"])
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end); "
        f"median and max of {n} runs each, interleaved.",
        "",
        "| case | median (s) | max (s) | over `python -c pass` (s) |",
        "|---|---:|---:|---:|",
    ]
    for name, _ in CASES:
        med = statistics.median(times[name])
        lines.append(f"| {name} | {med:.3f} | {max(times[name]):.3f} | {med - floor:+.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=15, help="runs of each case (default 15)")
    ap.add_argument("--importtime", action="store_true", help="also list the slowest imports of yinsi --help")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "cli.md")
    args = ap.parse_args()
    times = measure(args.n)
    text = table(times, args.n)
    print(text)
    if args.importtime:
        print("\nslowest imports of yinsi --help (cumulative ms):")
        for us, name in importtime():
            print(f"  {us / 1000:7.1f}  {name}")
    if not args.no_write:
        kept = ""
        if args.out.exists() and KEEP in (old := args.out.read_text(encoding="utf-8")):
            kept = old[old.index(KEEP):]
        head = ("# Benchmark: start-up time of the `yinsi` command\n\n"
                "Produced by `.venv/bin/python bench/cli/run.py`; whole processes, wall time.\n\n")
        args.out.write_text(head + text + "\n\n" + (kept or KEEP + "\n"), encoding="utf-8")
        print(f"\nwritten to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
