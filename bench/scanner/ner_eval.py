"""Person names and addresses on four public test sets, Yinsi's tagger beside the peers installed here.

    python -m bench.scanner.ner_data                       # once: public corpora into bench/.cache/ner
    bench/.venv-peers/bin/python -m bench.scanner.ner_eval [--systems yinsi,jieba,thulac,pkuseg] [--json out.json]

Test sets (never used for training): MSRA NER test (person = ``PER``), Weibo NER test (person = ``PER.NAM``),
Resume NER test (person = ``NAME``) and CLUENER2020 dev (``../shared/data/cluener/test.json``; ``name`` and
``address``). Addresses are scored on CLUENER only: the other corpora's ``LOC``/``GPE`` labels are place names,
not postal addresses.

Two matchings: *exact* (same start and end; the usual NER score) and *overlap* (a predicted span is right if it
overlaps a gold span of the same kind; recall counts the gold spans that some prediction overlaps). Overlap is what
masking needs: a half-found name is still partly hidden. Speed is characters per CPU-second of this one process
(single-threaded engines; thread pools pinned to one thread), over all four test sets.

Peers (from PyPI, models bundled in the wheels; nothing downloaded at run time): jieba's part-of-speech tagger
(``nr*`` names, ``ns`` places), THULAC (``np`` names, ``ns`` places), pkuseg with ``postag=True`` (``nr``, ``ns``), Baidu's LAC
(``PER``, ``LOC``). A peer that cannot be imported is listed as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from bench.scanner.ner_data import read  # noqa: E402

Span = tuple[str, int, int]
Tagger = Callable[[str], list[Span]]
CLUENER = Path(__file__).resolve().parents[3] / "shared" / "data" / "cluener" / "test.json"
PERSON_LABELS = {"msra": {"PER"}, "weibo": {"PER.NAM"}, "resume": {"NAME"}, "cluener": {"name"}}
ADDRESS_LABELS = {"cluener": {"address"}}
#: issue 15's targets, exact-span F1
TARGETS = {("msra", "name"): 0.85, ("resume", "name"): 0.92, ("weibo", "name"): 0.60,
           ("cluener", "name"): 0.85, ("cluener", "address"): 0.62}


def load_sets() -> dict[str, list[tuple[str, set[Span]]]]:
    sets: dict[str, list[tuple[str, set[Span]]]] = {}
    for corpus in ("msra", "weibo", "resume"):
        rows = []
        for row in read(corpus, "test"):
            text = str(row["text"])
            gold = {("name", int(s), int(e)) for lab, s, e in row["spans"]  # type: ignore[union-attr]
                    if lab in PERSON_LABELS[corpus]}
            rows.append((text, gold))
        sets[corpus] = rows
    rows = []
    with CLUENER.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            gold = {(kind, s, e + 1) for kind in ("name", "address")
                    for positions in (row.get("label") or {}).get(kind, {}).values() for s, e in positions}
            rows.append((row["text"], gold))
    sets["cluener"] = rows
    return sets


class Counts:
    def __init__(self) -> None:
        self.exact = [0, 0, 0]  # tp, predicted, gold
        self.overlap = [0, 0, 0]  # predicted overlapping a gold, predicted, gold overlapped

    def add(self, gold: set[Span], pred: set[Span]) -> None:
        self.exact[0] += len(gold & pred)
        self.exact[1] += len(pred)
        self.exact[2] += len(gold)
        self.overlap[0] += sum(any(p[1] < g[2] and g[1] < p[2] for g in gold) for p in pred)
        self.overlap[1] += len(pred)
        self.overlap[2] += sum(any(p[1] < g[2] and g[1] < p[2] for p in pred) for g in gold)

    @staticmethod
    def prf(hit_p: int, npred: int, hit_r: int, ngold: int) -> dict[str, float]:
        p = hit_p / npred if npred else 0.0
        r = hit_r / ngold if ngold else 0.0
        return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}

    def rows(self) -> dict[str, dict[str, float]]:
        tp, npred, ngold = self.exact
        return {"exact": self.prf(tp, npred, tp, ngold),
                "overlap": self.prf(self.overlap[0], self.overlap[1], self.overlap[2], self.overlap[2] and ngold),
                "gold": {"n": ngold}}


# --- systems ---------------------------------------------------------------------------------------------------
def yinsi_tagger() -> Tagger:
    from yinsi.scan import scan_text

    kinds = {"person_name": "name", "address": "address"}

    def tag(text: str) -> list[Span]:
        return [(kinds[r.type], r.start, r.end) for r in scan_text(text, types=["person_name", "address"])]

    return tag


def _from_words(words: list[tuple[str, str]], kind_of: Callable[[str], str | None]) -> list[Span]:
    out: list[Span] = []
    pos = 0
    for word, flag in words:
        kind = kind_of(flag)
        if kind is not None and word.strip():
            out.append((kind, pos, pos + len(word)))
        pos += len(word)
    return out


def jieba_tagger() -> Tagger:
    import logging

    import jieba
    import jieba.posseg as pseg

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()

    def kind_of(flag: str) -> str | None:
        return "name" if flag.startswith("nr") else "address" if flag == "ns" else None

    return lambda text: _from_words([(w.word, w.flag) for w in pseg.cut(text)], kind_of)


def thulac_tagger() -> Tagger:
    import thulac

    model = thulac.thulac()

    def kind_of(flag: str) -> str | None:
        return "name" if flag == "np" else "address" if flag == "ns" else None

    def tag(text: str) -> list[Span]:
        words = [(w, t) for w, t in model.cut(text)]
        if "".join(w for w, _ in words) != text:  # THULAC drops spaces: re-align on the original text
            return _realign(text, words, kind_of)
        return _from_words(words, kind_of)

    return tag


def pkuseg_tagger() -> Tagger:
    import pkuseg

    model = pkuseg.pkuseg(postag=True)

    def kind_of(flag: str) -> str | None:
        return "name" if flag == "nr" else "address" if flag == "ns" else None

    def tag(text: str) -> list[Span]:
        words = [(w, t) for w, t in model.cut(text)]
        if "".join(w for w, _ in words) != text:
            return _realign(text, words, kind_of)
        return _from_words(words, kind_of)

    return tag


def lac_tagger() -> Tagger:
    from LAC import LAC

    model = LAC(mode="lac")

    def kind_of(flag: str) -> str | None:
        return "name" if flag == "PER" else "address" if flag == "LOC" else None

    def tag(text: str) -> list[Span]:
        words, flags = model.run(text)
        return _realign(text, list(zip(words, flags, strict=True)), kind_of)

    return tag


def _realign(text: str, words: list[tuple[str, str]], kind_of: Callable[[str], str | None]) -> list[Span]:
    out: list[Span] = []
    pos = 0
    for word, flag in words:
        at = text.find(word, pos)
        if at < 0:
            continue
        kind = kind_of(flag)
        if kind is not None:
            out.append((kind, at, at + len(word)))
        pos = at + len(word)
    return out


SYSTEMS: dict[str, Callable[[], Tagger]] = {"yinsi": yinsi_tagger, "jieba": jieba_tagger,
                                            "thulac": thulac_tagger, "pkuseg": pkuseg_tagger, "lac": lac_tagger}


def run(systems: list[str]) -> dict[str, object]:
    sets = load_sets()
    total_chars = sum(len(t) for rows in sets.values() for t, _ in rows)
    results: dict[str, object] = {}
    for name in systems:
        try:
            began = time.perf_counter()
            tagger = SYSTEMS[name]()
            tagger("预热：张三住在北京市。")
            setup = time.perf_counter() - began
        except Exception as exc:  # a peer that is not installed is reported, not fatal
            results[name] = {"skipped": f"{type(exc).__name__}: {exc}"[:200]}
            print(f"{name}: skipped ({type(exc).__name__}: {exc})", flush=True)
            continue
        per_set: dict[str, object] = {}
        cpu = 0.0
        for corpus, rows in sets.items():
            counts = {"name": Counts(), "address": Counts()}
            c0 = time.process_time()
            predictions = [set(tagger(text)) for text, _ in rows]
            cpu += time.process_time() - c0
            for (_, gold), pred in zip(rows, predictions, strict=True):
                for kind, cnt in counts.items():
                    if kind == "address" and corpus not in ADDRESS_LABELS:
                        continue
                    cnt.add({g for g in gold if g[0] == kind}, {p for p in pred if p[0] == kind})
            per_set[corpus] = {kind: cnt.rows() for kind, cnt in counts.items()
                               if kind == "name" or corpus in ADDRESS_LABELS}
        results[name] = {"sets": per_set, "chars_per_cpu_s": total_chars / cpu if cpu else 0.0, "setup_s": setup}
        print(f"{name}: {total_chars / cpu:,.0f} chars/s; " + "; ".join(
            f"{c} name {v['name']['exact']['f1']:.3f}" for c, v in per_set.items()  # type: ignore[index]
        ), flush=True)
    return {"chars": total_chars, "results": results,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_average": os.getloadavg()}


def markdown(out: dict[str, object]) -> str:
    results: dict[str, dict[str, object]] = out["results"]  # type: ignore[assignment]
    lines = []
    cols = [("msra", "name"), ("weibo", "name"), ("resume", "name"), ("cluener", "name"), ("cluener", "address")]
    for match in ("exact", "overlap"):
        note = " (issue 15's target in the header)" if match == "exact" else ""
        lines.append(f"\n{match.capitalize()}-span P / R / F1{note}\n")
        header = "| system | " + " | ".join(
            f"{c} {k}" + (f" (≥ {TARGETS[(c, k)]:.2f})" if match == "exact" else "") for c, k in cols) + " |"
        lines += [header, "|---|" + "---:|" * len(cols)]
        for name, res in results.items():
            if "skipped" in res:
                continue
            sets: dict[str, dict[str, dict[str, dict[str, float]]]] = res["sets"]  # type: ignore[assignment]
            cells = []
            for c, k in cols:
                r = sets[c][k][match]
                cells.append(f"{r['precision']:.3f} / {r['recall']:.3f} / **{r['f1']:.3f}**")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| system | characters per CPU-second (1 core) | setup (s) |", "|---|---:|---:|"]
    for name, res in results.items():
        if "skipped" in res:
            lines.append(f"| {name} | skipped: {res['skipped']} | |")
        else:
            lines.append(f"| {name} | {res['chars_per_cpu_s']:,.0f} | {res['setup_s']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    out = run([s for s in args.systems.split(",") if s])
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
    print(markdown(out))
    print(f"\n{out['chars']:,} characters; {out['machine']}; load average {out['load_average']}; "
          f"peak RSS {out['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
