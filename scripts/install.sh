#!/usr/bin/env bash
# Makes .venv and installs the pinned requirements into it: requirements.txt, and the
# file named on top (requirements-dev.txt: the test tools); does nothing when they are
# installed already. Usage: scripts/install.sh [requirements-file]
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=${1:-requirements.txt}
python=${PYTHON:-python3}

[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.installed-$(basename "$requirements")-$(cat requirements*.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "Installing $requirements into .venv ..."
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        -r requirements.txt -r "$requirements"
    touch "$stamp"
fi
