#!/usr/bin/env bash
# Create bench/.venv-peers: Yinsi plus the scanner's peers (Presidio analyzer, jionlp), from PyPI only.
# No spaCy model is downloaded: the speed/quality runs give Presidio a blank Chinese spaCy pipeline
# (spacy.blank("zh") with the jieba segmenter, both from PyPI) built in process. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
VENV=bench/.venv-peers
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
# Yinsi itself (editable) with its bench extra (presidio-analyzer, jionlp, jieba for spaCy's Chinese word
# segmenter; pinned in pyproject.toml), so the comparison runs all engines on one corpus in one run.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[bench]'
# Name/address peers for bench/scanner/ner_eval.py whose PyPI packages bundle their models: THULAC. (pkuseg and
# Baidu's LAC publish only source archives that do not build on this Python; ner_eval lists them as skipped.)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check thulac==0.2.2
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("presidio-analyzer", "spacy", "jionlp", "jieba", "thulac"):
    print(f"{name}=={md.version(name)}")
PY
