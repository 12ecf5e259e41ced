#!/usr/bin/env bash
# Makes the virtual environment the lmeval tests run lm-evaluation-harness from (.venv-lmeval/,
# pinned by scripts/lmeval-requirements.txt, from PyPI) unless it is already there and imports
# lm_eval. scripts/test.sh calls it; ctest's lmeval tests find it through REPRISE_LMEVAL_PYTHON.
# Usage: scripts/setup-lmeval.sh   (prints the interpreter's path on its last line)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-lmeval
if ! "$venv/bin/python" -c 'import lm_eval.evaluator' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r scripts/lmeval-requirements.txt
  "$venv/bin/python" -c 'import lm_eval.evaluator'
fi
echo "$PWD/$venv/bin/python"
