# Sourced by run_local.sh and run_tests.sh: creates the virtualenv $VENV (default ./.venv) with
# $PYTHON (default python3) if there is none, and installs this package into it with the extras in
# $1 (e.g. "[test]"; empty for none). Sets $VENV_PYTHON.
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating virtualenv $VENV ..."
  "$PYTHON" -m venv "$VENV"
fi
VENV_PYTHON="$VENV/bin/python"
"$VENV_PYTHON" -m pip install --quiet --upgrade pip
"$VENV_PYTHON" -m pip install --quiet -e ".${1:-}"
