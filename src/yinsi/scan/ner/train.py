"""Train the name/address tagger on CLUENER2020 ``train.json`` (never on the test split).

    python -m yinsi.scan.ner.train ../shared/data/cluener/train.json [--epochs 12] [--holdout 0.1]

Writes ``src/yinsi/scan/data/ner_model.json.gz`` (or ``--out``). The data are read from where they lie and
never copied; the artefact keeps feature weights and character sets only.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from yinsi.scan.ner.features import GAZETTEER_MAX, sentence_features
from yinsi.scan.ner.model import NerModel, tags_to_spans, viterbi

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
KINDS = ("name", "address", "org", "misc")
TAGS = ["O", *(f"{p}-{k}" for k in KINDS for p in ("B", "I"))]


@dataclass
class Example:
    text: str
    tags: list[str]


def read_cluener(path: Path) -> list[Example]:
    """CLUENER JSON lines as per-character BIO tags over ``KINDS`` (end offsets in the file are inclusive)."""
    examples = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            text: str = row["text"]
            tags = ["O"] * len(text)
            for label, spans in (row.get("label") or {}).items():
                kind = KIND_OF.get(label)
                if kind is None:
                    continue
                for positions in spans.values():
                    for start, end in positions:
                        if all(t == "O" for t in tags[start:end + 1]):
                            tags[start] = f"B-{kind}"
                            for i in range(start + 1, end + 1):
                                tags[i] = f"I-{kind}"
            examples.append(Example(text, tags))
    return examples


def build_lexicon(examples: Iterable[Example]) -> dict[str, frozenset[str]]:
    """Character sets learned from the training spans: surname characters and address suffix/head characters."""
    surname: Counter[str] = Counter()
    given: Counter[str] = Counter()
    addr_end: Counter[str] = Counter()
    addr_any: Counter[str] = Counter()
    for ex in examples:
        for kind, s, e in tags_to_spans(ex.tags):
            span = ex.text[s:e]
            if kind == "name" and 2 <= len(span) <= 4 and all("\u4e00" <= c <= "\u9fff" for c in span):
                surname[span[0]] += 1
                for c in span[1:]:
                    given[c] += 1
            elif kind == "address":
                addr_end[span[-1]] += 1
                for c in span:
                    addr_any[c] += 1
    return {
        "sur": frozenset(c for c, n in surname.items() if n >= 3),
        "giv": frozenset(c for c, n in given.items() if n >= 3),
        "asfx": frozenset(c for c, n in addr_end.items() if n >= 4),
        "achr": frozenset(c for c, n in addr_any.items() if n >= 8),
    }


#: Kinds whose training spans become gazetteer entries. Person names are deliberately not listed: the shipped
#: artefact keeps no list of people.
GAZETTEER_KINDS = ("address", "org", "misc")


def build_gazetteer(examples: Iterable[Example]) -> dict[str, str]:
    """Span text → its kinds ("address|org"), from the training spans of ``GAZETTEER_KINDS``."""
    kinds: dict[str, set[str]] = {}
    for ex in examples:
        for kind, s, e in tags_to_spans(ex.tags):
            if kind in GAZETTEER_KINDS and 2 <= e - s <= GAZETTEER_MAX:
                kinds.setdefault(ex.text[s:e], set()).add(kind)
    return {word: "|".join(sorted(ks)) for word, ks in kinds.items()}


class Trainer:
    """Structured averaged perceptron (Collins 2002) with the "c × update" averaging trick."""

    def __init__(self, lexicon: dict[str, frozenset[str]]) -> None:
        self.lexicon = lexicon
        self.n = len(TAGS)
        self.index: dict[str, int] = {}
        self.w = array("d")
        self.wa = array("d")  # sum of c * update, for averaging
        self.t = [[0.0] * self.n for _ in range(self.n)]
        self.ta = [[0.0] * self.n for _ in range(self.n)]
        self.c = 1
        self.model = NerModel(TAGS, {}, self.t, lexicon)

    def featurize(self, text: str, grow: bool, gazetteer: dict[str, str] | None = None) -> list[list[int]]:
        out = []
        for feats in sentence_features(text, self.lexicon, gazetteer):
            ids = []
            for f in feats:
                k = self.index.get(f)
                if k is None and grow:
                    k = len(self.index)
                    self.index[f] = k
                    self.w.extend([0.0] * self.n)
                    self.wa.extend([0.0] * self.n)
                if k is not None:
                    ids.append(k)
            out.append(ids)
        return out

    def _emissions(self, ids: list[list[int]]) -> list[list[float]]:
        n, w = self.n, self.w
        rows = []
        for token in ids:
            row = [0.0] * n
            for k in token:
                base = k * n
                for j in range(n):
                    row[j] += w[base + j]
            rows.append(row)
        return rows

    def update(self, ids: list[list[int]], gold: list[int]) -> bool:
        guess = viterbi(self._emissions(ids), self.t, self.model._start_ok, self.model._allowed_prev)
        changed = guess != gold
        if changed:
            n, c = self.n, self.c
            for i, (g, p) in enumerate(zip(gold, guess, strict=True)):
                if g != p:
                    for k in ids[i]:
                        self.w[k * n + g] += 1.0
                        self.wa[k * n + g] += c
                        self.w[k * n + p] -= 1.0
                        self.wa[k * n + p] -= c
                if i:
                    gp, pp = gold[i - 1], guess[i - 1]
                    if (gp, g) != (pp, p):
                        self.t[gp][g] += 1.0
                        self.ta[gp][g] += c
                        self.t[pp][p] -= 1.0
                        self.ta[pp][p] -= c
        self.c += 1
        return changed

    def averaged(self, prune: float = 1.0, gazetteer: dict[str, str] | None = None) -> NerModel:
        """The averaged weights, rounded to integers; features whose weights all stay below ``prune`` in
        magnitude are dropped (on a held-out tenth of train.json neither step lowered F1, and the artefact and
        its loading time shrink by a third)."""
        n, c = self.n, self.c
        weights: dict[str, list[float]] = {}
        for f, k in self.index.items():
            row = [self.w[k * n + j] - self.wa[k * n + j] / c for j in range(n)]
            if max(abs(x) for x in row) >= prune:
                weights[f] = [round(x) for x in row]
        trans = [[round(self.t[a][b] - self.ta[a][b] / c, 3) for b in range(n)] for a in range(n)]
        return NerModel(TAGS, weights, trans, self.lexicon, gazetteer=gazetteer)


def evaluate(model: NerModel, examples: list[Example], kinds: Iterable[str] = ("name", "address")) -> dict[str, dict[str, float]]:
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


def train(examples: list[Example], epochs: int, seed: int, holdout: list[Example] | None = None,
          folds: int = 10) -> NerModel:
    """Train; gazetteer features of each training sentence come from the OTHER folds' spans (jackknifing), so
    the model learns how far to trust an entry instead of learning that every entry is right."""
    lexicon = build_lexicon(examples)
    trainer = Trainer(lexicon)
    gazetteer = build_gazetteer(examples)
    data = []
    for k in range(folds):
        fold_gazetteer = build_gazetteer(ex for i, ex in enumerate(examples) if i % folds != k) if folds > 1 else gazetteer
        data += [(trainer.featurize(ex.text, grow=True, gazetteer=fold_gazetteer), [TAGS.index(t) for t in ex.tags])
                 for i, ex in enumerate(examples) if i % folds == k and ex.text]
    rng = random.Random(seed)
    for epoch in range(1, epochs + 1):
        began = time.perf_counter()
        rng.shuffle(data)
        errors = sum(trainer.update(ids, gold) for ids, gold in data)
        line = f"epoch {epoch}: {errors} sentences wrong, {time.perf_counter() - began:.0f} s"
        if holdout:
            scores = evaluate(trainer.averaged(gazetteer=gazetteer), holdout)
            line += "; holdout F1 " + ", ".join(f"{k} {v['f1'] * 100:.2f}" for k, v in scores.items())
        print(line, flush=True)
    model = trainer.averaged(gazetteer=gazetteer)
    model.meta = {"trained_on": "CLUENER2020 train.json", "sentences": len(examples), "epochs": epochs, "seed": seed,
                  "features": len(model.weights)}
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", type=Path, help="CLUENER train.json")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--folds", type=int, default=10, help="jackknife folds for gazetteer features (1: none)")
    parser.add_argument("--holdout", type=float, default=0.0, help="fraction of train.json held out to report F1 per epoch")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "ner_model.json.gz")
    args = parser.parse_args(argv)
    examples = read_cluener(args.train)
    holdout: list[Example] = []
    if args.holdout:
        cut = int(len(examples) * (1 - args.holdout))
        examples, holdout = examples[:cut], examples[cut:]
    model = train(examples, args.epochs, args.seed, holdout, args.folds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(model.weights)} features)")


if __name__ == "__main__":
    main()
