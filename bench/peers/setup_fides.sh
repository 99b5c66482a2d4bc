#!/usr/bin/env bash
# Create bench/.venv-fides: Fides 2.86.2 (Ethyca) in its own venv, for bench/peers/fides_rights.py.
# Fides 2.86.2 needs Python >= 3.13; it is installed from PyPI only, never vendored. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${FIDES_PYTHON:-$HOME/.pyenv/versions/3.13.0/bin/python3}
VENV=bench/.venv-fides
if [ ! -x "$PY" ]; then
  echo "setup_fides.sh: Python 3.13 interpreter not found at $PY (Fides 2.86.2 needs Python >= 3.13);" \
       "install it (pyenv install 3.13.0) or set FIDES_PYTHON=/path/to/python3.13" >&2
  exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)'; then
  echo "setup_fides.sh: $PY is $("$PY" -V 2>&1), Fides 2.86.2 needs Python >= 3.13" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# pip's "Location ... is ignored" warnings (local index mirrors absent on this machine) are filtered out.
pip_install() {
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }
}
pip_install --upgrade pip >/dev/null
if [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("ethyca-fides"))' 2>/dev/null)" != "2.86.2" ]; then
  pip_install 'ethyca-fides==2.86.2'
fi
# The harness itself uses httpx (HTTP client), psycopg2 (demo DB look-ups; Fides already depends on it)
# PyYAML (the dataset file) and redis (flushing its Redis DB 9); all are Fides dependencies, checked here.
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("ethyca-fides", "httpx", "psycopg2-binary", "PyYAML", "redis", "uvicorn", "celery"):
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        raise SystemExit(f"setup_fides.sh: {name} missing from {__import__('sys').prefix}")
PY
