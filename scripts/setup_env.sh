#!/usr/bin/env bash
# Create or reuse .venv with everything the project needs. Idempotent: a second run only checks a stamp.
#   bash scripts/setup_env.sh [extras]      (extras default: dev,eval)
# Torch: on a machine that keeps the CPU wheel in /opt/wheels we pin torch==2.13.0 so pip never pulls
# the 5 GB CUDA build; elsewhere set TORCH_SPEC (e.g. TORCH_SPEC="torch" for your CUDA build).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${NDVQ_VENV:-$root/.venv}"
extras="${1:-dev,eval}"
py="${PYTHON:-python3}"

# espeak-ng: phonemizer's backend and the mini corpus's voice. Debian/Ubuntu: apt; macOS: brew install espeak-ng.
if ! command -v espeak-ng >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq espeak-ng >/dev/null
  else
    echo "espeak-ng is missing: install it with your package manager (brew install espeak-ng, dnf install espeak-ng)" >&2
    exit 1
  fi
fi

# chromium + chromedriver: the demo's browser test (tests/tts/test_demo.py), installed for test set-ups
# (extras with "dev"); where apt is missing the test is skipped and says why.
if [[ ",$extras," == *",dev,"* ]] && ! { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    { $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null; } \
      || echo "setup_env: could not install chromium/chromium-driver; the browser test will be skipped" >&2
  fi
fi

[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
stamp="$venv/.ndvq-setup"
# The stamp names the checkout: the editable install points at one folder, so a moved or copied checkout
# (with its .venv) installs again instead of silently importing the old tree's code.
want="$(cat "$root/pyproject.toml" "$0" | sha256sum | cut -c1-16) $extras $root"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
pip=("$venv/bin/python" -m pip install -q)
torch_spec="${TORCH_SPEC:-}"
if [ -z "$torch_spec" ]; then
  if ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
    torch_spec="torch==2.13.0"; pip+=(--find-links /opt/wheels)
  else
    torch_spec="torch"
  fi
fi
"${pip[@]}" --upgrade pip 2>&1 | grep -v "is ignored" || true
"${pip[@]}" "$torch_spec" 2>&1 | grep -v "is ignored" || true
"${pip[@]}" -e "$root[$extras]" 2>&1 | grep -v "is ignored" || true
"$venv/bin/python" -c "import torch, soundfile, phonemizer, accelerate" 
echo "$want" > "$stamp"
