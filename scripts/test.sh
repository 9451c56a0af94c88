#!/usr/bin/env bash
# Set up (idempotently) and run the whole test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup_env.sh" dev,eval
cd "$root"
exec "${NDVQ_VENV:-$root/.venv}/bin/python" -m pytest -q "$@"
