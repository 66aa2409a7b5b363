#!/usr/bin/env bash
# Creates the Python 3.11 environment in .venv when it is missing or out of date, then runs:
#   ./run.sh train [hydra overrides]   train.py (default: YES/NO on the generated corpus)
#   ./run.sh test [pytest arguments]   lint (ruff) and the test suite
#   ./run.sh <program> [arguments]     any program of the environment, e.g. ./run.sh python test.py ...
set -euo pipefail
cd "$(dirname "$0")"

venv=${VENV:-.venv}
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "run.sh: needs Python 3.11 (found $("$python" --version 2>&1) at $python); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

wanted=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ ! -x $venv/bin/python || "$(cat "$venv/.installed" 2>/dev/null)" != "$wanted" ]]; then
  echo "run.sh: installing the environment into $venv (first run: a few minutes)" >&2
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade "pip>=25.1,<27"
  "$venv/bin/python" -m pip install --quiet -r requirements.txt --group test
  echo "$wanted" >"$venv/.installed"
fi

command=${1:-train}
shift || true
case $command in
  train) exec "$venv/bin/python" train.py "$@" ;;
  test)
    "$venv/bin/ruff" check .
    "$venv/bin/ruff" format --check .
    # Two workers, one test file each at a time (module fixtures run once), one thread each: most tests
    # wait on Python, subprocesses and disk rather than on arithmetic, so two at once fit two cores.
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} exec "$venv/bin/python" -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
    ;;
  *) exec "$venv/bin/$command" "$@" ;;
esac
