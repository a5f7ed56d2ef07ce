# Sourced by scripts/serve and scripts/test (and run by scripts/_venv.py): make .venv if
# missing and install the project. $1: the extras to install, e.g. "[dev]" (empty for the
# service alone).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
stamp=".venv/.installed$1"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # Said before the wait, which is silent otherwise: pip runs quiet.
  if [ -f "$stamp" ]; then
    echo "consult: pyproject.toml changed: installing consult$1 into .venv again..." >&2
  else
    echo "consult: first use: installing consult$1 and its dependencies into .venv" \
         "(a minute or two; later starts skip this)..." >&2
  fi
  if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".$1"
  touch "$stamp"
  echo "consult: installed into .venv" >&2
fi
# The extras include the service itself: scripts/serve need not install it again.
[ -z "$1" ] || touch -r "$stamp" .venv/.installed
