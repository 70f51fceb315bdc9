#!/usr/bin/env bash
# Runs every test of the project, the way CI does, on a fresh machine of this kind.
# Installs what the tests need when it is missing, then: format check, lints, all tests, the
# vendored str0m's own unit tests, the media plane's dependency rule (no tokio, axum or signaling
# in dragoman-media), and the web client's type-check, lint, unit tests and end-to-end test in
# headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "disk space (a clean build of every test takes ~8 GB under target/)"
# Fail early with a clear message instead of a linker's "No space left on device" half an hour in.
min_free_gb=${DRAGOMAN_TEST_MIN_FREE_GB:-10}
target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$target_dir"
free_gb=$(df -Pk "$target_dir" | awk 'NR == 2 { print int($4 / 1048576) }')
echo "free under $target_dir: ${free_gb} GB (need ${min_free_gb} GB; DRAGOMAN_TEST_MIN_FREE_GB overrides)"
if [ "$free_gb" -lt "$min_free_gb" ]; then
    echo "not enough free disk for the test build: ${free_gb} GB free, ${min_free_gb} GB needed" >&2
    exit 1
fi

step "toolchain components"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

step "web client dependencies (Debian chromium for the end-to-end test, npm packages)"
if [ ! -x /usr/bin/chromium ]; then
    apt-get update && apt-get install -y chromium
fi
# Before any cargo build: dragoman-server's build.rs bundles web/ with the esbuild from node_modules.
if [ ! -d web/node_modules ]; then
    (cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the dragoman and dragoman-bot binaries (the end-to-end tests run them as separate processes)"
cargo build --bin dragoman --bin dragoman-bot --locked

step "cargo test (unit, sans-IO, end-to-end over loopback)"
cargo test --workspace --locked

step "str0m (vendored, with Dragoman's changes): its own unit tests"
vendor/str0m/unit-tests.sh

step "dragoman-media depends on no tokio, axum or dragoman-signal"
if cargo tree -p dragoman-media -e normal --locked | grep -E '\b(tokio|axum|dragoman-signal)\b'; then
    echo "dragoman-media must stay free of I/O runtimes and signaling" >&2
    exit 1
fi

step "Prometheus: promtool on the scrape config and on /metrics after a real call"
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update && apt-get install -y "${missing[@]}"
fi
tests/metrics_check.sh

step "web client: type-check (tsc --strict) and lint (eslint)"
(cd web && npm run check)

step "web client: unit tests"
(cd web && npm test)

step "web client end-to-end: headless Chromium, dragoman serve and two dragoman-bot (screenshots in artifacts/e2e/)"
(cd web && timeout --kill-after=10 300 npm run e2e)

step "all tests passed"
