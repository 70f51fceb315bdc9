#!/usr/bin/env bash
# Runs str0m's own unit tests (`cargo test --lib`) on the vendored copy, changes included.
#
#   vendor/str0m/unit-tests.sh [TEST-FILTER]
#
# The copy is a patched dependency, not a workspace member, so cargo will not test it in place.
# This copies it to target/str0m-unit-tests/ and tests it there as a package of its own, after
# three edits to that copy only:
# - optional backends and dev-dependencies at versions the crates index here does not have
#   (str0m-openssl, -rust-crypto and -apple-crypto 0.7, -wincrypto 0.9, str0m-netem 0.5) are
#   removed: the lib's tests use the default aws-lc-rs backend, and netem serves the integration
#   tests, which are not copied;
# - `docs/chrome-sdp.json` (a captured Chrome offer, not copied) is written as `{}` so the SDP
#   tests compile, and the two tests that parse it are skipped;
# - the copy is made a workspace of its own, locked by vendor/str0m/unit-tests.lock (the
#   workspace's versions plus str0m's dev-dependencies), so every run tests the same versions.
#   After changing the vendored Cargo.toml, refresh it: UPDATE_LOCK=1 vendor/str0m/unit-tests.sh
#
# Builds into $CARGO_TARGET_DIR/str0m-unit-tests (default target/), ~1.4 GB.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
work="${CARGO_TARGET_DIR:-$root/target}/str0m-unit-tests"
copy="$work/str0m"
rm -rf "$copy"
mkdir -p "$copy/docs"
cp -r "$root/vendor/str0m/src" "$root/vendor/str0m/Cargo.toml" "$copy/"
if [ "${UPDATE_LOCK:-0}" = 1 ]; then
  cp "$root/Cargo.lock" "$copy/Cargo.lock"
else
  cp "$root/vendor/str0m/unit-tests.lock" "$copy/Cargo.lock"
fi
echo '{}' >"$copy/docs/chrome-sdp.json"

# Drop each `[…dependencies.NAME]` table of the unavailable crates (up to the next table), and
# the features that name them.
awk '
  /^\[/ {
    skip = ($0 ~ /dependencies\.(str0m-openssl|str0m-rust-crypto|str0m-apple-crypto|str0m-wincrypto|netem)\]$/)
  }
  skip { next }
  /^(openssl|rust-crypto|apple-crypto|wincrypto|wincrypto-dimpl|vendored) = / { next }
  /^openssl-dimpl = \[/ && !/\]/ { in_list = 1; next }
  /^openssl-dimpl = / { next }
  in_list { if ($0 ~ /^\]/) in_list = 0; next }
  { print }
' "$root/vendor/str0m/Cargo.toml" >"$copy/Cargo.toml"
# A workspace of its own: the copy sits under this workspace's target/.
printf '\n[workspace]\n' >>"$copy/Cargo.toml"

cd "$copy"
locked=--locked
[ "${UPDATE_LOCK:-0}" = 1 ] && locked=
CARGO_TARGET_DIR="$work/target" cargo test --lib $locked -- \
  --skip sdp::data::test::fast_and_easy_parse_agree \
  --skip sdp::data::test::invalid_sdp_keeps_the_detailed_error \
  "$@"
if [ "${UPDATE_LOCK:-0}" = 1 ]; then
  cp "$copy/Cargo.lock" "$root/vendor/str0m/unit-tests.lock"
  echo "wrote vendor/str0m/unit-tests.lock"
fi
