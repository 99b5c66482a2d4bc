"""Throughput (MB/s on one core), peak memory and F1 of Yinsi's pattern recognizers beside Presidio and jionlp.

``yinsi`` scans the pattern types only; ``yinsi-full`` is the full scan (pattern types and the name/address
tagger, as ``yinsi scan`` and masking run it; F1 is still scored on the pattern types). ``--prose`` builds a
second corpus where the same PI sentences sit inside ordinary Chinese prose (CLUENER sentences from
../shared/data, no PI labels of the pattern types, about one PI sentence in twenty), closer to free text in
tickets and notes than the PI-dense generated corpus.

    bash bench/peers/setup_scanner_peers.sh                  # once: bench/.venv-peers with the peers
    bench/.venv-peers/bin/python -m bench.scanner.speed      # all engines, same corpus, one run

Each engine runs in its own child process (same interpreter, pinned to one CPU where the OS allows) on the
same generated corpus, one call per document: setup time, then a warm-up, then the timed passes (the best of
``--repeat``; MB/s from the process's CPU time, which other work on a shared machine disturbs less than wall
time, also reported); then a pass under ``tracemalloc`` for the peak Python allocation while scanning. Peak
RSS (``ru_maxrss``) of the child is reported as well. F1 is exact-span, per type, on the types each engine
supports.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from bench.scanner.corpus import Doc, generate, read, write
from bench.scanner.metrics import Scores, Span

ENGINES = ("yinsi", "yinsi-full", "presidio", "jionlp")
CLUENER = Path("../shared/data/cluener/test.json")
DEFAULT_CORPUS = Path("bench/.cache/scanner_corpus.jsonl")


def _build(engine: str) -> tuple[Callable[[str], list[Span]], tuple[str, ...], str]:
    if engine == "yinsi":
        from yinsi.scan import PATTERN_TYPES, scan_text

        def analyze(text: str) -> list[Span]:
            return [(r.type, r.start, r.end) for r in scan_text(text, types=PATTERN_TYPES)]

        return analyze, PATTERN_TYPES, "yinsi.scan.scan_text(types=PATTERN_TYPES)"
    if engine == "yinsi-full":
        from yinsi.scan import PATTERN_TYPES, scan_text

        def analyze_full(text: str) -> list[Span]:
            return [(r.type, r.start, r.end) for r in scan_text(text)]

        return analyze_full, PATTERN_TYPES, "yinsi.scan.scan_text() (all types, name/address tagger on)"
    if engine == "presidio":
        from bench.peers import presidio_scanner

        fn, desc = presidio_scanner.build()
        return fn, presidio_scanner.SUPPORTED_TYPES, desc
    if engine == "jionlp":
        from bench.peers import jionlp_scanner

        fn, desc = jionlp_scanner.build()
        return fn, jionlp_scanner.SUPPORTED_TYPES, desc
    raise SystemExit(f"unknown engine {engine}")


def _peer_errors(engine: str) -> dict[str, int]:
    if engine == "jionlp":
        from bench.peers import jionlp_scanner

        return dict(jionlp_scanner.ERRORS)
    return {}


def run_engine(engine: str, corpus: list[Doc], repeat: int) -> dict[str, object]:
    """Measure one engine in this process."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    analyze, types, description = _build(engine)
    setup = time.perf_counter() - began
    texts = [d.text for d in corpus]
    for text in texts[:50]:
        analyze(text)
    best = best_wall = float("inf")
    outputs: list[list[Span]] = []
    for _ in range(repeat):
        began, began_wall = time.process_time(), time.perf_counter()
        outputs = [analyze(text) for text in texts]
        best = min(best, time.process_time() - began)
        best_wall = min(best_wall, time.perf_counter() - began_wall)
    tracemalloc.start()
    for text in texts:
        analyze(text)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = sum(len(t.encode("utf-8")) for t in texts)
    scores = Scores()
    for doc, predicted in zip(corpus, outputs, strict=True):
        gold = [(str(s["type"]), int(str(s["start"])), int(str(s["end"]))) for s in doc.spans]
        scores.add(gold, predicted, types)
    return {
        "engine": engine,
        "description": description,
        "documents": len(texts),
        "megabytes": size / 1e6,
        "seconds": best,
        "mb_per_s": size / 1e6 / best,
        "wall_seconds": best_wall,
        "wall_mb_per_s": size / 1e6 / best_wall,
        "setup_seconds": setup,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_import_mb": rss_start / 1024,
        "tracemalloc_peak_mb": traced_peak / 1e6,
        "errors": _peer_errors(engine),
        "types": list(types),
        "per_type": {t: scores.row(t) for t in types},
        "micro": scores.micro(types),
    }


def _table(results: list[dict[str, object]]) -> str:
    base = next((r for r in results if r["engine"] == "yinsi"), None)
    lines = ["| engine | MB/s (1 core, CPU time) | CPU s | wall MB/s | Yinsi's speed-up | peak RSS (MB) | tracemalloc peak (MB) "
             "| setup (s) | micro F1 (own types) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        ratio = (f"{float(str(base['mb_per_s'])) / float(str(r['mb_per_s'])):.1f}×" if base and r is not base
                 else "—")
        micro = r["micro"]
        assert isinstance(micro, dict)
        lines.append(f"| {r['engine']} | {float(str(r['mb_per_s'])):.3f} | {float(str(r['seconds'])):.2f} | "
                     f"{float(str(r['wall_mb_per_s'])):.3f} | {ratio} | "
                     f"{float(str(r['peak_rss_mb'])):.0f} | {float(str(r['tracemalloc_peak_mb'])):.2f} | "
                     f"{float(str(r['setup_seconds'])):.2f} | {micro['f1']:.4f} |")
    types: list[str] = []
    for r in results:
        types += [t for t in r["types"] if t not in types]  # type: ignore[union-attr]
    lines += ["", "| type | " + " | ".join(f"{r['engine']} P / R / F1" for r in results) + " |",
              "|---|" + "---:|" * len(results)]
    for t in types:
        cells = []
        for r in results:
            row = r["per_type"].get(t)  # type: ignore[union-attr]
            cells.append(f"{row['precision']:.3f} / {row['recall']:.3f} / **{row['f1']:.3f}**" if row else "not supported")
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def prose(docs: list[Doc], per_doc: int = 20) -> list[Doc]:
    """Each PI sentence placed after ``per_doc - 1`` CLUENER sentences (gold offsets shifted)."""
    import json as _json

    lines = [str(_json.loads(line)["text"]) for line in CLUENER.read_text(encoding="utf-8").splitlines() if line.strip()]
    out: list[Doc] = []
    k = 0
    for doc in docs[: max(1, len(docs) // per_doc)]:
        filler = "".join(lines[(k + i) % len(lines)] for i in range(per_doc - 1))
        k += per_doc - 1
        spans = [{**s, "start": int(str(s["start"])) + len(filler), "end": int(str(s["end"])) + len(filler)}
                 for s in doc.spans]
        out.append(Doc(filler + doc.text, spans))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=[*ENGINES, "all"], default="all")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--docs", type=int, default=4000, help="documents when the corpus is generated")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes (the best is kept)")
    parser.add_argument("--json-out", type=Path, help="write all results as JSON")
    parser.add_argument("--prose", action="store_true", help="embed the PI sentences in CLUENER prose")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_engine(args.engine, read(args.corpus), args.repeat)))
        return
    docs = generate(args.docs, args.seed)  # deterministic: the same corpus for every engine and run
    write(args.corpus, prose(docs) if args.prose else docs)
    engines = ENGINES if args.engine == "all" else (args.engine,)
    results = []
    for engine in engines:
        cmd = [sys.executable, "-m", "bench.scanner.speed", "--child", "--engine", engine, "--corpus", str(args.corpus),
               "--repeat", str(args.repeat)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{engine}: failed ({proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode})",
                  file=sys.stderr)
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{engine}: {results[-1]['mb_per_s']:.3f} MB/s — {results[-1]['description']}", file=sys.stderr)
    print(_table(results))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
