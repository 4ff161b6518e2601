#!/usr/bin/env bash
# Runs the whole test suite from a fresh machine: creates the virtualenv ($VENV, default ./.venv) if
# there is none, installs the package with its test extras, then runs pytest. Extra arguments go to
# pytest (e.g. ./run_tests.sh -m "not slow" -x).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure_venv.sh "[test]"
exec "$VENV_PYTHON" -m pytest tests "$@"
