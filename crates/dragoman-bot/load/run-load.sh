#!/usr/bin/env bash
# Measured load runs of `dragoman-bot load` against a fresh release `dragoman serve` on loopback.
#
#   crates/dragoman-bot/load/run-load.sh [CALLS...]         # default: 2 5 10
#
# Environment:
#   DURATION=20s   measurement window per run     RATE=2         calls started per second
#   SETTLE=3s      wait after the ramp            OUT=target/load   reports and server logs
#   BUILD=1        build the release binaries first (0 to skip)
#   DRAGOMAN_BIN=target/release/dragoman   the server binary to measure (a copy of another
#                  build, to compare two builds run by run; it must be named `dragoman`)
#   BASELINE=4     first run the generator's floor: this many bot pairs connected straight to
#                  each other (no SFU), on the generator's CPU (0 to skip)
#   PIN=auto       auto: with 2+ CPUs pin the SFU to CPU 0 and the generator to CPU 1 (taskset);
#                  0: no pinning
#
# One server per run (fresh process, so its memory and CPU belong to that run only), on
# 127.0.0.1 with ephemeral ports; the script reads the ports from the server's first line. Every
# run is bounded (the load tool's own deadline, and `timeout` around it); the server is stopped by
# its pid when the run ends or the script exits.
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
duration=${DURATION:-20s}
rate=${RATE:-2}
settle=${SETTLE:-3s}
out=${OUT:-target/load}
pin=${PIN:-auto}
secret="load-secret-$$"
calls_list=("$@")
[ ${#calls_list[@]} -gt 0 ] || calls_list=(2 5 10)
mkdir -p "$out"
# shellcheck source=common.sh
. "$root/crates/dragoman-bot/load/common.sh"

if [ "${BUILD:-1}" = 1 ]; then
  cargo build --release --bin dragoman --bin dragoman-bot
fi
bot_bin=target/release/dragoman-bot

load_pinning "$pin"

if [ "${BASELINE:-4}" != 0 ]; then
  echo "== baseline: ${BASELINE:-4} direct bot pairs, no SFU"
  timeout 300 "${gen_pin[@]}" "$bot_bin" baseline --pairs "${BASELINE:-4}" --duration "$duration" \
    --report "$out/baseline.json"
fi

trap stop_server EXIT

for calls in "${calls_list[@]}"; do
  run_limit "$calls" "$rate" "$settle" "$duration"
  start_dragoman "$out/server-$calls.log" "$out/history-$calls.sqlite" "$secret"
  echo "== $calls calls against pid $dragoman_pid at $http"
  timeout "$run_seconds" "${gen_pin[@]}" "$bot_bin" load \
    --url "ws://$http/v1/signal" --secret "$secret" --sfu-pid "$dragoman_pid" \
    --calls "$calls" --rate "$rate" --settle "$settle" --duration "$duration" \
    --call-prefix "load$calls" --report "$out/load-$calls.json"
  stop_server
done
echo "reports in $out/"
