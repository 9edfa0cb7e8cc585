#!/usr/bin/env bash
# Set up .venv (Picasso with every extra and the test tools) and Chromium (for the
# browser tests), then run the whole test suite: lint, types, then pytest. Extra arguments go
# to pytest, e.g. `-k occlusion`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv "all,dev"
ensure_chromium
.venv/bin/python -m ruff check src tests bench tools scripts
.venv/bin/python -m ruff format --check src tests bench tools scripts
.venv/bin/python -m mypy
.venv/bin/python -m pytest "$@"
