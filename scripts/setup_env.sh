#!/usr/bin/env bash
# Bootstrap a fresh machine for this project: apt packages when missing, then .venv with every
# pinned dependency (requirements.txt under constraints.txt, which keeps torch on the CPU build).
# Idempotent and cheap when nothing changed: pip runs only when requirements.txt,
# constraints.txt or setup.py changed since the last run (their hash is stamped into .venv/.motus-stamp).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libosmesa6 libegl1 libegl-mesa0 libgl1-mesa-dri libusb-1.0-0)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing apt packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
stamp=$(cat requirements.txt constraints.txt setup.py | sha256sum | cut -c1-16)
if [ -f .venv/.motus-stamp ] && [ "$(cat .venv/.motus-stamp)" = "$stamp" ]; then
  exit 0
fi
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv (pinned requirements; takes about a minute on a warm pip cache)"
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip==25.3 2>&1 \
    | { grep -v "is neither a file nor a directory" || true; }
else
  echo "[setup] requirements changed: updating .venv in place"
fi
# (the machine's pip config may list local indexes that do not exist: hide only those warnings)
.venv/bin/python -m pip install -q -c constraints.txt -r requirements.txt 2>&1 \
  | { grep -v "is neither a file nor a directory" || true; }
# the project itself, editable: the README's CLIs (motus-eval, motus-dataset, motus-train, ...)
# land in .venv/bin and run this source tree; no dependencies are resolved here (all pinned above)
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . 2>&1 \
  | { grep -v "is neither a file nor a directory" || true; }
echo "$stamp" > .venv/.motus-stamp
echo "[setup] .venv ready"
