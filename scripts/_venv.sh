# Sourced by the other scripts: create (or reuse) .venv and install Picasso into it.
# Usage: ensure_venv EXTRAS   e.g. ensure_venv "all,dev"
# PyTorch is pinned in the same pip command as everything that depends on it, so pip
# cannot pick another build. Override with PICASSO_TORCH_SPEC="torch==X torchvision==Y".
set -euo pipefail

ensure_venv() {
    local extras="$1"
    local python="${PYTHON:-python3}"
    if [ ! -x .venv/bin/python ]; then
        echo "creating .venv with $($python --version)" >&2
        "$python" -m venv .venv
    fi
    local torch_spec="${PICASSO_TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
    echo "installing picasso-vision[$extras] ($torch_spec) into .venv" >&2
    # shellcheck disable=SC2086
    if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        $torch_spec -e ".[$extras]" 2>&1 | { grep -v "^WARNING: Location" >&2 || true; }; then
        echo "error: pip could not install picasso-vision[$extras] into .venv" >&2
        exit 1
    fi
    # Every requirement of the chosen extras must be installed: a missing one would
    # otherwise turn into tests that skip.
    .venv/bin/python scripts/check_extras.py "$extras" \
        || { echo "error: installation into .venv is incomplete" >&2; exit 1; }
}

# Debian's Chromium for the browser tests (Playwright drives it; `playwright install`
# cannot download browsers here). Installed once; needs root or sudo.
ensure_chromium() {
    if command -v chromium >/dev/null 2>&1; then
        return
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "warning: no apt-get; install Chromium by hand for the browser tests" >&2
        return
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    echo "installing chromium (Debian) for the browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq chromium >/dev/null 2>&1 \
        || { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null; } \
        || echo "warning: could not install chromium; browser tests will not run" >&2
}
