#!/usr/bin/env bash
# Runs the whole test suite from a fresh machine: creates the virtualenv ($VENV, default ./.venv) if
# there is none, installs the package with its test extras, then runs pytest. Extra arguments go to
# pytest (e.g. ./run_tests.sh -m "not slow" -x).
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating virtualenv $VENV ..."
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[test]'
exec "$VENV/bin/python" -m pytest tests "$@"
