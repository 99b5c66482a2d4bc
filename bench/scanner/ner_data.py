"""Public Chinese NER corpora for the name/address tagger: copied into ``bench/.cache/ner`` (git-ignored).

    python -m bench.scanner.ner_data [--mirror /work/.mirror]

The corpora are never committed. This machine has no general internet: the public GitHub repositories below are
first brought onto the machine as bare git snapshots (one directory per repository, ``<owner>+<name>``, under
``--mirror``); this script reads the files from those snapshots with ``git show`` and writes one JSON line per
sentence, ``{"text": ..., "spans": [[label, start, end], ...]}`` (end exclusive, the corpus's own labels), to
``bench/.cache/ner/<corpus>/<split>.jsonl``, plus ``SOURCES.json`` saying where every file came from.

| corpus | splits | repository and path |
|---|---|---|
| msra | test | OYE93/Chinese-NLP-Corpus ``NER/MSRA/msra_test_bio.txt`` (SIGHAN 2006 bakeoff 3, MSRA NER test) |
| msra | train_part | lemonhu/NER-BERT-pytorch ``data/msra/val/{sentences,tags}.txt`` (see below) |
| weibo | train, dev, test | hltcoe/golden-horse ``data/weiboNER_2nd_conll.*`` (Peng and Dredze 2015, 2nd revision) |
| resume | train, dev, test | jiesutd/LatticeLSTM ``ResumeNER/*.char.bmes`` (Zhang and Yang 2018) |

``msra/train_part`` is 3,000 sentences cut from the MSRA *training* split (that repository's validation set);
the full 45,000-sentence training file is too large to be held in the snapshots.

Only the training splits (``train``, ``train_part``) are ever used for training (``python -m
yinsi.scan.ner.train``); ``dev``/``test`` are for reporting.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "ner"
DEFAULT_MIRROR = Path("/work/.mirror")

#: corpus -> split -> (repository, [paths], format)
SOURCES: dict[str, dict[str, tuple[str, list[str], str]]] = {
    "msra": {
        "test": ("OYE93/Chinese-NLP-Corpus", ["NER/MSRA/msra_test_bio.txt"], "conll"),
        "train_part": ("lemonhu/NER-BERT-pytorch", ["data/msra/val/sentences.txt", "data/msra/val/tags.txt"],
                       "lines"),
    },
    "weibo": {split: ("hltcoe/golden-horse", [f"data/weiboNER_2nd_conll.{split}"], "conll")
              for split in ("train", "dev", "test")},
    "resume": {split: ("jiesutd/LatticeLSTM", [f"ResumeNER/{split}.char.bmes"], "conll")
               for split in ("train", "dev", "test")},
}


def _git_dir(mirror: Path, repo: str) -> Path:
    base = mirror / repo.replace("/", "+") / "repo"
    return base / ".git" if (base / ".git").is_dir() else base


def _show(mirror: Path, repo: str, path: str) -> str:
    git_dir = _git_dir(mirror, repo)
    if not git_dir.is_dir():
        raise SystemExit(f"{repo} is not in {mirror}: bring a snapshot of github.com/{repo} onto the machine first")
    done = subprocess.run(["git", f"--git-dir={git_dir}", "show", f"HEAD:{path}"], capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{repo}:{path} is missing from the snapshot: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode("utf-8")


def tags_to_spans(tags: list[str]) -> list[list[object]]:
    """BIO or BMES(+S) tags (``B-PER``, ``M-NAME``, ``E-NAME``, ``S-NAME``, ``I-PER.NAM``) to ``[label, start, end]``."""
    spans: list[list[object]] = []
    label, start = "", -1
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, lab = tag.partition("-")
        continues = prefix in ("I", "M", "E") and lab == label and label
        if label and not continues:
            spans.append([label, start, i])
            label, start = "", -1
        if prefix in ("B", "S") or (prefix in ("I", "M", "E") and not label):
            label, start = lab, i
        if prefix in ("E", "S") and label:
            spans.append([label, start, i + 1])
            label, start = "", -1
    return spans


def parse_conll(raw: str) -> list[dict[str, object]]:
    """``char<TAB or space>tag`` lines, sentences separated by blank lines; Weibo characters carry a trailing
    position digit (``科0``), which is dropped."""
    out = []
    chars: list[str] = []
    tags: list[str] = []
    for line in [*raw.splitlines(), ""]:
        parts = line.split()
        if len(parts) < 2:
            if chars:
                out.append({"text": "".join(chars), "spans": tags_to_spans(tags)})
            chars, tags = [], []
            continue
        ch = parts[0]
        if len(ch) == 2 and ch[1].isdigit():
            ch = ch[0]
        chars.append(ch[0])
        tags.append(parts[-1])
    return out


def parse_lines(sentences: str, tag_lines: str) -> list[dict[str, object]]:
    out = []
    for sent, tag in zip(sentences.splitlines(), tag_lines.splitlines(), strict=True):
        chars, tags = sent.split(), tag.split()
        if chars and len(chars) == len(tags):
            out.append({"text": "".join(c[0] for c in chars), "spans": tags_to_spans(tags)})
    return out


def read(corpus: str, split: str, cache: Path = CACHE) -> list[dict[str, object]]:
    path = cache / corpus / f"{split}.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run python -m bench.scanner.ner_data")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR)
    parser.add_argument("--out", type=Path, default=CACHE)
    args = parser.parse_args(argv)
    provenance = {}
    for corpus, splits in SOURCES.items():
        for split, (repo, paths, fmt) in splits.items():
            texts = [_show(args.mirror, repo, p) for p in paths]
            rows = parse_conll(texts[0]) if fmt == "conll" else parse_lines(texts[0], texts[1])
            target = args.out / corpus / f"{split}.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            provenance[f"{corpus}/{split}"] = {"repository": f"https://github.com/{repo}", "paths": paths,
                                               "sentences": len(rows)}
            print(f"{corpus}/{split}: {len(rows)} sentences from {repo}:{','.join(paths)}")
    (args.out / "SOURCES.json").write_text(json.dumps(provenance, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
