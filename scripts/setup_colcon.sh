#!/usr/bin/env bash
# colcon from PyPI in its own venv (.venv-colcon), pinned by scripts/colcon-requirements.txt.
# Idempotent: pip runs only when that file changed. Prints the colcon executable's path.
# On a machine with ROS 2 installed, its own `colcon` does the same job.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=$(sha256sum scripts/colcon-requirements.txt | cut -c1-16)
if [ ! -f .venv-colcon/.motus-stamp ] || [ "$(cat .venv-colcon/.motus-stamp)" != "$stamp" ]; then
  echo "[setup-colcon] installing colcon into .venv-colcon" >&2
  "$PY" -m venv .venv-colcon
  .venv-colcon/bin/python -m pip install -q -r scripts/colcon-requirements.txt 2>&1 \
    | { grep -v "is neither a file nor a directory" || true; } >&2
  echo "$stamp" > .venv-colcon/.motus-stamp
fi
echo "$PWD/.venv-colcon/bin/colcon"
