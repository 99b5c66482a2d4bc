"""Copy the CAPP-130 corpus (EnlightenedAI/CAPP-130) from a git directory into bench/.cache/capp130/.

The corpus is used for evaluation only and is never committed: the repository publishes no licence file
(its README mentions CC BY 4.0 for the data, but no LICENSE accompanies it). bench/.cache/ is ignored by git.

    .venv/bin/python bench/analyzer/fetch_capp130.py [--from GIT_DIR] [--to DIR]

Copies the topic-identification split exactly as published (train/dev/test), the label explanation, the
README and the 130 original policy texts (for the speed measurement).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

DEFAULT_FROM = Path("/work/.mirror/EnlightenedAI+CAPP-130/repo")
DEFAULT_TO = Path(__file__).resolve().parents[1] / ".cache" / "capp130"
PREFIXES = (
    "README.md",
    "CAPP_130_Corpus/Annotation/label_explanation.json",
    "CAPP_130_Corpus/Subdataset/Extraction/topic_identification_dataset/",
    "CAPP_130_Corpus/Original_policies/",
)


def _git(git_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(git_dir), *args], check=True, capture_output=True).stdout


def fetch(git_dir: Path, dest: Path) -> int:
    names = _git(git_dir, "ls-tree", "-r", "-z", "--name-only", "HEAD").decode("utf-8").split("\0")
    count = 0
    for name in names:
        if not name or not any(name == p or (p.endswith("/") and name.startswith(p)) for p in PREFIXES):
            continue
        out = dest / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(_git(git_dir, "show", f"HEAD:{name}"))
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="src", type=Path, default=DEFAULT_FROM, help="git directory of CAPP-130")
    ap.add_argument("--to", type=Path, default=DEFAULT_TO)
    args = ap.parse_args(argv)
    n = fetch(args.src, args.to)
    print(f"copied {n} files into {args.to}")
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
