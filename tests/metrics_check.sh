#!/usr/bin/env bash
# Checks the Prometheus side: the scrape config parses, `/metrics` of a real server that carried a
# short two-bot call passes `promtool check metrics`, and every metric the Grafana dashboard queries
# exists. Loopback only; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/debug
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

promtool check config deploy/prometheus.yml

"$bin/dragoman" serve --http 127.0.0.1:0 --media 127.0.0.1:0 --secret metrics-check \
    --history "$work/history.sqlite" >"$work/server.out" 2>"$work/server.err" &
pids+=($!)
for _ in $(seq 100); do
    grep -q '^dragoman ready:' "$work/server.out" 2>/dev/null && break
    sleep 0.1
done
http=$(sed -n 's/^dragoman ready: http=\([^ ]*\) .*/\1/p' "$work/server.out")
[ -n "$http" ] || { echo "server did not start:"; cat "$work/server.err"; exit 1; }

for who in company buyer; do
    token=$("$bin/dragoman" token --secret metrics-check --call metrics --identity "$who" --role "$who")
    timeout 30 "$bin/dragoman-bot" --url "ws://$http/v1/signal" --token "$token" \
        --publish audio,video --subscribe all --duration 6s --report "$work/$who.json" \
        >/dev/null 2>"$work/$who.err" &
    pids+=($!)
done
sleep 5
curl -sf "http://$http/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt"
grep -q '^dragoman_participant_rtt_seconds_count [1-9]' "$work/metrics.txt" \
    || { echo "no RTT samples after a call:"; grep rtt "$work/metrics.txt"; exit 1; }

missing=0
for name in $(grep -o 'dragoman_[a-z_]*' deploy/grafana-dashboard.json | sed 's/_\(bucket\)$//' | sort -u); do
    if ! grep -q "^$name" "$work/metrics.txt"; then
        echo "the Grafana dashboard queries $name, which /metrics does not export"
        missing=1
    fi
done
[ "$missing" = 0 ]
echo "metrics check passed: $(grep -c '^dragoman_' "$work/metrics.txt") series"
