#!/usr/bin/env bash
# Runs every test of the project, the way CI does, on a fresh machine of this kind.
# Installs what the tests need when it is missing, then: format check, lints, all tests, and the
# media plane's dependency rule (no tokio, axum or signaling in dragoman-media).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the dragoman-bot binary (the end-to-end tests run it as a separate process)"
cargo build -p dragoman-bot --bin dragoman-bot --locked

step "cargo test (unit, sans-IO, end-to-end over loopback)"
cargo test --workspace --locked

step "dragoman-media depends on no tokio, axum or dragoman-signal"
if cargo tree -p dragoman-media -e normal --locked | grep -E '\b(tokio|axum|dragoman-signal)\b'; then
    echo "dragoman-media must stay free of I/O runtimes and signaling" >&2
    exit 1
fi

step "all tests passed"
