"""Train the name/address tagger (a CRF) on public NER *training* splits only.

    python -m bench.scanner.ner_data            # MSRA/Weibo/Resume training splits into bench/.cache/ner
    python -m yinsi.scan.ner.train ../shared/data/cluener/train.json --extra bench/.cache/ner

Training data: CLUENER2020 ``train.json``; with ``--extra``: the MSRA NER training sentences available here
(``msra/train_part.jsonl``), Weibo NER ``train`` and Resume NER ``train``. Dev and test splits are never read.
Writes ``src/yinsi/scan/data/ner_crf.crfsuite.gz`` (feature weights only) and ``ner_crf.json`` (what it was
trained on, with which settings). Needs ``python-crfsuite`` (a dependency of Yinsi).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pycrfsuite  # type: ignore[import-untyped]

from yinsi.scan.ner.features import sentence_features
from yinsi.scan.ner.model import META_FILE, MODEL_FILE, NerModel, tags_to_spans

#: CLUENER types grouped into the kinds the tagger learns: the PI kinds and two "other entity" kinds, so that
#: e.g. a company named after a city is learned as not an address.
KIND_OF = {
    "name": "name",
    "address": "address",
    "company": "org",
    "organization": "org",
    "government": "org",
    "scene": "misc",
    "position": "misc",
    "game": "misc",
    "book": "misc",
    "movie": "misc",
}
#: The other corpora's labels as kinds. Their place names (MSRA ``LOC``, Weibo ``GPE``/``LOC``) are ``loc``, a
#: kind of its own: CLUENER's ``address`` spans run from province to room in one span, while MSRA tags 江苏 / 如皋市
#: / 城西乡 as three; nominal mentions (Weibo ``*.NOM``: 女友, 老师) are not names.
EXTRA_KIND_OF = {
    "msra": {"PER": "name", "LOC": "loc", "ORG": "org"},
    "weibo": {"PER.NAM": "name", "LOC.NAM": "loc", "GPE.NAM": "loc", "ORG.NAM": "org"},
    "resume": {"NAME": "name", "LOC": "loc", "ORG": "org", "CONT": "misc", "TITLE": "misc", "EDU": "misc",
               "PRO": "misc", "RACE": "misc"},
}
EXTRA_SPLITS = {"msra": "train_part", "weibo": "train", "resume": "train"}


@dataclass
class Example:
    text: str
    tags: list[str]


def _bio(text: str, spans: list[tuple[str, int, int]]) -> list[str]:
    tags = ["O"] * len(text)
    for kind, start, end in spans:  # the first of two overlapping spans wins
        if end > start and all(t == "O" for t in tags[start:end]):
            tags[start] = f"B-{kind}"
            for i in range(start + 1, end):
                tags[i] = f"I-{kind}"
    return tags


def read_cluener(path: Path) -> list[Example]:
    """CLUENER JSON lines as per-character BIO tags (end offsets in the file are inclusive)."""
    examples = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            spans = [(KIND_OF[label], s, e + 1) for label, by_text in (row.get("label") or {}).items()
                     if label in KIND_OF for positions in by_text.values() for s, e in positions]
            examples.append(Example(row["text"], _bio(row["text"], spans)))
    return examples


def read_extra(folder: Path, corpus: str) -> list[Example]:
    """A training split written by ``bench.scanner.ner_data`` (``{"text", "spans": [[label, start, end]]}``)."""
    kinds = EXTRA_KIND_OF[corpus]
    examples = []
    with (folder / corpus / f"{EXTRA_SPLITS[corpus]}.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            spans = [(kinds[label], s, e) for label, s, e in row["spans"] if label in kinds]
            examples.append(Example(row["text"], _bio(row["text"], spans)))
    return examples


def evaluate(model: NerModel, examples: list[Example], kinds: tuple[str, ...] = ("name", "address")
             ) -> dict[str, dict[str, float]]:
    """Exact-span precision/recall/F1 per kind."""
    counts = {k: [0, 0, 0] for k in kinds}  # tp, predicted, gold
    for ex in examples:
        gold = {s for s in tags_to_spans(ex.tags) if s[0] in counts}
        pred = {s for s in model.spans(ex.text) if s[0] in counts}
        for kind, *_ in gold:
            counts[kind][2] += 1
        for span in pred:
            counts[span[0]][1] += 1
            if span in gold:
                counts[span[0]][0] += 1
    out = {}
    for kind, (tp, npred, ngold) in counts.items():
        p = tp / npred if npred else 0.0
        r = tp / ngold if ngold else 0.0
        out[kind] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "gold": ngold}
    return out


def train(examples: list[Example], c1: float, c2: float, iterations: int) -> NerModel:
    trainer = pycrfsuite.Trainer(verbose=False)
    for ex in examples:
        if ex.text:
            trainer.append(sentence_features(ex.text), ex.tags)
    trainer.set_params({"c1": c1, "c2": c2, "max_iterations": iterations, "feature.possible_transitions": True})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.crfsuite"
        trainer.train(str(path))
        return NerModel(path.read_bytes())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", type=Path, help="CLUENER train.json")
    parser.add_argument("--extra", type=Path, help="bench/.cache/ner (training splits of MSRA, Weibo, Resume)")
    parser.add_argument("--c1", type=float, default=0.1, help="L1 penalty (sparser, smaller model)")
    parser.add_argument("--c2", type=float, default=0.01, help="L2 penalty")
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--holdout", type=float, default=0.0, help="fraction of CLUENER train held out to report F1")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data")
    args = parser.parse_args(argv)
    examples = read_cluener(args.train)
    holdout: list[Example] = []
    if args.holdout:
        cut = int(len(examples) * (1 - args.holdout))
        examples, holdout = examples[:cut], examples[cut:]
    sources = {"CLUENER2020 train.json": len(examples)}
    if args.extra:
        for corpus, split in EXTRA_SPLITS.items():
            extra = read_extra(args.extra, corpus)
            sources[f"{corpus} {split}"] = len(extra)
            examples += extra
    began = time.perf_counter()
    model = train(examples, args.c1, args.c2, args.iterations)
    info = model.tagger.info()
    model.meta = {
        "model": "linear-chain CRF (CRFsuite, L-BFGS), character features (yinsi.scan.ner.features)",
        "trained_on": sources,
        "provenance": "bench/scanner/ner_data.py (MSRA, Weibo, Resume training splits); CLUENER2020 train.json",
        "labels": sorted(model.tagger.labels()),
        "c1": args.c1, "c2": args.c2, "iterations": args.iterations,
        "state_features": len(info.state_features), "attributes": len(Counter(a for a, _ in info.state_features)),
        "training_seconds": round(time.perf_counter() - began),
    }
    if holdout:
        model.meta["holdout"] = evaluate(model, holdout)
        print(model.meta["holdout"])
    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / MODEL_FILE, args.out / META_FILE)
    size = (args.out / MODEL_FILE).stat().st_size
    print(f"wrote {args.out / MODEL_FILE} ({size / 1e6:.2f} MB), {model.meta['state_features']} state features")


if __name__ == "__main__":
    main()
