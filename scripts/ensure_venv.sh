# Sourced by run_local.sh, run_tests.sh and run_dataflow.sh: creates the virtualenv $VENV (default
# ./.venv) with $PYTHON (default python3) if there is none, and installs this package into it with the
# extras in $1 (e.g. "[test]"; empty for none), at the versions constraints.txt pins (the codec builds
# that decide the output's bytes), unless scripts/install_is_current.py finds them installed already. Sets $VENV_PYTHON. Says what it does in one line on stderr; pip's own output goes to
# $VENV/install.log and is shown only when the install fails.
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating the virtualenv $VENV ..." >&2
  "$PYTHON" -m venv "$VENV"
fi
VENV_PYTHON="$VENV/bin/python"
if ! "$VENV_PYTHON" scripts/install_is_current.py "${1:-}"; then
  echo "Installing folder2tfrecord${1:-} into $VENV, a few minutes the first time (pip's log:" \
       "$VENV/install.log) ..." >&2
  if ! { "$VENV_PYTHON" -m pip install --upgrade pip &&
         "$VENV_PYTHON" -m pip install -c constraints.txt -e ".${1:-}"; } >"$VENV/install.log" 2>&1; then
    tail -n 60 "$VENV/install.log" >&2
    echo "error: installing folder2tfrecord${1:-} into $VENV failed; pip's last lines are above," \
         "all of them in $VENV/install.log" >&2
    exit 1
  fi
fi
