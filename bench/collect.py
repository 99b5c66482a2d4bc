"""Assemble docs/benchmarks.md from the per-area result files in docs/benchmarks/ (each written by its
benchmark together with the command that produced it).

    .venv/bin/python bench/collect.py
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["gate", "api", "audit", "scanner", "protect", "rights"]
COMMANDS = {
    "gate": ".venv/bin/python bench/gate/run.py",
    "api": ".venv/bin/python bench/api/run.py",
    "audit": ".venv/bin/python bench/audit/run.py --seconds 1.5 --repeat 3 --pg postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "scanner": "bash bench/peers/setup_scanner_peers.sh && bench/.venv-peers/bin/python -m bench.scanner.speed; "
               ".venv/bin/python -m bench.scanner.quality; .venv/bin/python -m bench.scanner.cluener; "
               ".venv/bin/python -m bench.scanner.ner_data && bench/.venv-peers/bin/python -m bench.scanner.ner_eval",
    "protect": ".venv/bin/python -m bench.protect.run",
    "rights": "bash bench/peers/setup_fides.sh && .venv/bin/python bench/rights/run.py --app-url "
              "postgresql+psycopg://postgres@127.0.0.1:5432/wlk_bench --access 200 --erasure 200 --queued 1000 "
              "--workers 2 --fides --fides-n 30 --fides-queued 50",
    "analyzer": ".venv/bin/python bench/analyzer/seeds.py; .venv/bin/python bench/analyzer/fetch_capp130.py && "
                ".venv/bin/python bench/analyzer/capp130_topics.py && .venv/bin/python bench/analyzer/capp130_speed.py",
    "cli": ".venv/bin/python bench/cli/run.py",
    "web": ".venv/bin/python bench/web/run.py",
    "retention": ".venv/bin/python -m bench.retention.run --database URL --rows 2000000 --rounds 3",
    "rights-planning": ".venv/bin/python bench/rights/planning.py",
    "jobs": ".venv/bin/python bench/jobs/run.py --jobs 200 --write docs/benchmarks/jobs.md",
    "abroad": ".venv/bin/python bench/abroad/run.py --people 2000 --repeat 3 --write docs/benchmarks/abroad.md",
    "freetext": ".venv/bin/python bench/freetext/run.py --sizes 10000,100000,1000000 --requests 30 "
                "--write docs/benchmarks/freetext.md",
}


def main() -> None:
    parts = sorted((ROOT / "docs" / "benchmarks").glob("*.md"), key=lambda p: (
        ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem))
    out = [
        "# Benchmarks",
        "",
        "Every section below is written by its benchmark, with the command that produced it, the machine and the",
        "date. Ratios are against a baseline or a peer measured in the same run; peak memory is reported beside",
        "time. This page is assembled from `docs/benchmarks/*.md` by `.venv/bin/python bench/collect.py`.",
        "",
        "| area | file | command |",
        "|---|---|---|",
    ]
    for p in parts:
        cmd = COMMANDS.get(p.stem, "see the section")
        out.append(f"| {p.stem} | `docs/benchmarks/{p.name}` | `{cmd}` |")
    out.append("")
    for p in parts:
        text = p.read_text(encoding="utf-8").strip().splitlines()
        out.append("")
        out += [("#" + line) if line.startswith("#") else line for line in text]
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"wrote docs/benchmarks.md from {len(parts)} files")


if __name__ == "__main__":
    main()
