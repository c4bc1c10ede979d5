# The two commands for a fresh machine are `make demo` and `make test` (README). Each bootstraps
# what it needs through scripts/setup_env.sh (apt packages when missing, pinned .venv).
SHELL := /bin/bash
PY := .venv/bin/python
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
export FASTRTPS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/dds/fastdds_shm.xml

.PHONY: setup demo test test-fast lint format expert clean gpu-check

setup:
	@./scripts/setup_env.sh

## make demo: closed-loop demo on the simulated ALOHA through the ROS graph; prints the success rate.
demo: setup
	$(PY) -m motus_policy.cli.demo $(DEMO_ARGS)

## make test: the whole suite (unit, model on CPU, ROS graph over real DDS, MuJoCo, a colcon
## install, the launch files through ROS 2 launch). GPU tests skip. setup_launch.sh installs the
## ROS 2 launch packages (not on PyPI) from ../shared/vendor, for the tests only.
test: setup
	@./scripts/setup_launch.sh
	$(PY) -m pytest -n 2 --dist loadgroup -m "not gpu" $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no tests were collected: failing on purpose"; exit 1; fi; exit $$rc

## make test-fast: everything except the tests marked slow.
test-fast: setup
	$(PY) -m pytest -n 2 -m "not gpu and not slow" $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

format: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

## make expert: validate the scripted expert (50 seeds per task, progress bar, success rate).
expert: setup
	$(PY) -m motus_teleop.expert --task transfer_cube --episodes 50
	$(PY) -m motus_teleop.expert --task insertion --episodes 50

## make gpu-check: golden parity (fp32 + bf16), lean vs official benchmark, each mode once; full
## size on CUDA (< 8 min), tiny preset on CPU (benchmarks/README.md, gpu-check).
gpu-check: setup
	$(PY) -m benchmarks.gpu_check $(GPU_CHECK_ARGS)

clean:
	rm -rf .venv .pytest_cache .ruff_cache build install log
