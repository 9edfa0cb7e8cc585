#!/usr/bin/env bash
# Set up .venv (Picasso with every extra) and start the web app on the bundled demo
# models: http://127.0.0.1:8765/ (jobs and uploads are kept in ./picasso-data/).
# Extra arguments go to `picasso serve`, e.g. `--port 9000` or `--model my.toml`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv "all"
exec .venv/bin/picasso serve "$@"
