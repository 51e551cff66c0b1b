#!/usr/bin/env bash
# Installs localstripe, the Stripe API of the local stack, offline-ready, into $LOCALSTRIPE_HOME
# (default .localstripe): its own venv with the exact pins of requirements.txt, on the project's
# python3 (or LOCALSTRIPE_PYTHON). Nothing is fetched when it runs.
#
#   $LOCALSTRIPE_HOME/venv    python infra/localstripe/serve.py (started by infra/scripts/emulator.sh)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
home="${LOCALSTRIPE_HOME:-.localstripe}"
python="${LOCALSTRIPE_PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 || { echo "install.sh: localstripe needs Python 3.9 or later (set LOCALSTRIPE_PYTHON)" >&2; exit 1; }

mkdir -p "$home"
if [[ ! -x "$home/venv/bin/python" ]]; then "$python" -m venv "$home/venv"; fi
pip=("$home/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps)
# The pinned setuptools first: it builds localstripe's sdist below (no build isolation).
"${pip[@]}" "$(grep -E '^setuptools==' "$here/requirements.txt")"
"${pip[@]}" --no-build-isolation -r "$here/requirements.txt"
"$home/venv/bin/python" -c 'import localstripe.server' # every module it needs is there
echo "install.sh: localstripe $("$home/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("localstripe"))') in $home ($("$home/venv/bin/python" --version))"
