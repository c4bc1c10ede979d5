#!/usr/bin/env bash
# Test-only step: the ROS 2 Jazzy `launch`, `launch_ros`, `launch_testing`, `launch_testing_ros`
# packages (not on PyPI) into .venv, from their unmodified sources, plus a stand-in for
# `composition_interfaces` (tests/support/composition_interfaces_standin). Their PyPI
# dependencies (osrf-pycommon, lark) are pinned in requirements.txt.
#
# Sources: $MOTUS_ROS_LAUNCH_SRC, else ../shared/vendor/ros2-launch-jazzy beside this checkout.
# They are copied first (the folder may be read-only; pip builds in the source tree).
# Without them this prints a note and exits 0: the launch tests then skip (or fail under CI=true).
# A machine with ROS 2 installed (source /opt/ros/jazzy/setup.bash) uses the system's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${MOTUS_ROS_LAUNCH_SRC:-../shared/vendor/ros2-launch-jazzy}
PKGS=(launch launch_ros launch_testing launch_testing_ros)
if [ ! -d "$SRC/launch_ros" ]; then
  echo "[setup-launch] no launch sources at $SRC: launch-file tests will skip" >&2
  exit 0
fi
stamp=$( { for p in "${PKGS[@]}"; do cat "$SRC/$p/setup.py" "$SRC/$p/package.xml"; done; \
          cat tests/support/composition_interfaces_standin/composition_interfaces/*.py; } \
        | sha256sum | cut -c1-16)
if [ -f .venv/.launch-stamp ] && [ "$(cat .venv/.launch-stamp)" = "$stamp" ]; then
  exit 0
fi
echo "[setup-launch] installing launch, launch_ros, launch_testing(_ros) from $SRC (test only)" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in "${PKGS[@]}"; do
  mkdir -p "$tmp/$p"
  # the package only: not the build/ and *.egg-info left in the source folder
  (cd "$SRC/$p" && tar --exclude=./build --exclude='./*.egg-info' -cf - .) | (cd "$tmp/$p" && tar xf -)
done
cp -r tests/support/composition_interfaces_standin "$tmp/"
.venv/bin/python -m pip install -q --no-deps --no-build-isolation \
  "${PKGS[@]/#/$tmp/}" "$tmp/composition_interfaces_standin" 2>&1 \
  | { grep -v "is neither a file nor a directory" || true; } >&2
echo "$stamp" > .venv/.launch-stamp
