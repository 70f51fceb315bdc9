#!/usr/bin/env bash
# Side by side with Janus: the same synthetic four-party calls, the same bots and the same fixed
# load against a Janus VideoRoom and against Dragoman, one after the other in one run, then a
# table of CPU per delivered packet (and the ratio Janus / Dragoman), loss, latency and memory.
#
#   crates/dragoman-bot/load/compare-janus.sh [CALLS...]    # default: 5
#
# Environment:
#   DURATION=20s   measurement window per run      RATE=2      calls started per second
#   SETTLE=3s      wait after the ramp             OUT=target/load   reports, logs, Janus config
#   BUILD=1        build the release binaries first (0 to skip)
#   DRAGOMAN_BIN=target/release/dragoman   the server binary to measure (a copy of another
#                  build, to compare two builds run by run; it must be named `dragoman`)
#   PIN=auto       auto: with 2+ CPUs pin the server to CPU 0 and the generator to CPU 1; 0: none
#   ROUNDS=1       rounds per load, the servers' order alternating round by round; with more
#                  than one, the verdict per load rests on the median ratio (one round's ratio
#                  moves by ±20 % on a shared machine)
#   JANUS_EVENT_LOOPS=1   Janus `event_loops` (1: one media loop thread, like Dragoman's one media
#                  worker; 0: Janus's default, a loop thread per handle)
#
# Needs root (or sudo) once to install Debian's `janus` package if it is missing, and root for the
# private network namespace the runs happen in (below).
#
# Loopback only, in a private network namespace. Janus (libnice) never gathers candidates on a
# loopback interface, so on its own it offers none the bots (bound to 127.0.0.1) can reach. The
# script therefore re-runs itself under `unshare --net`: a new namespace with nothing in it but
# `lo` and a veth pair `jv0`/`jv1` that exists only inside it. `jv0` carries 127.0.0.2, and Janus
# gathers on `jv0` only (`ice_enforce_list`), so its one host candidate is 127.0.0.2. libnice pins
# its sends to that interface (IP_UNICAST_IF), so Janus's packets to the bots leave by `jv0` and
# come back in by `jv1`; `route_localnet` and `accept_local`, set in that namespace only, let
# 127.0.0.0/8 travel over the pair. The bots' packets to Janus go over `lo`. Dragoman runs in the
# same namespace on 127.0.0.1. Nothing leaves the namespace, and it vanishes with the script.
#
# Every process is bounded by `timeout` and stopped by its pid when its run ends or the script
# exits.
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
# shellcheck source=common.sh
. "$root/crates/dragoman-bot/load/common.sh"
duration=${DURATION:-20s}
rate=${RATE:-2}
settle=${SETTLE:-3s}
out=${OUT:-target/load}
pin=${PIN:-auto}
event_loops=${JANUS_EVENT_LOOPS:-1}
rounds=${ROUNDS:-1}
[[ "$rounds" =~ ^[0-9]+$ ]] && [ "$rounds" -ge 1 ] || { echo "ROUNDS must be a positive integer, not '$rounds'"; exit 2; }
calls_list=("$@")
[ ${#calls_list[@]} -gt 0 ] || calls_list=(5)
for calls in "${calls_list[@]}"; do
  [[ "$calls" =~ ^[0-9]+$ ]] && [ "$calls" -ge 1 ] || { echo "calls must be positive integers, not '$calls'"; exit 2; }
done

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

if [ -z "${DRAGOMAN_COMPARE_NETNS:-}" ]; then
  # Outside the namespace: install, build, then go in.
  if ! command -v janus >/dev/null; then
    echo "installing Debian's janus package"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends janus
  fi
  for tool in ip unshare taskset timeout; do
    command -v "$tool" >/dev/null || { echo "this script needs '$tool' (iproute2, util-linux, coreutils)"; exit 1; }
  done
  if [ "${BUILD:-1}" = 1 ]; then
    cargo build --release --bin dragoman --bin dragoman-bot
  fi
  mkdir -p "$out"
  if [ "$(id -u)" = 0 ]; then
    exec env DRAGOMAN_COMPARE_NETNS=1 unshare --net bash "$0" "$@"
  else
    exec sudo env DRAGOMAN_COMPARE_NETNS=1 PATH="$PATH" DURATION="$duration" RATE="$rate" \
      SETTLE="$settle" OUT="$out" PIN="$pin" JANUS_EVENT_LOOPS="$event_loops" ROUNDS="$rounds" \
      unshare --net bash "$0" "$@"
  fi
fi

# Inside the private namespace.
ip link set lo up
ip link add jv0 type veth peer name jv1
ip addr add 127.0.0.2/32 dev jv0
ip link set jv0 up
ip link set jv1 up
for key in route_localnet accept_local; do
  for dev in all default lo jv0 jv1; do sysctl -qw "net.ipv4.conf.$dev.$key=1"; done
done
for dev in all default lo jv0 jv1; do sysctl -qw "net.ipv4.conf.$dev.rp_filter=0"; done

bot_bin=target/release/dragoman-bot
janus_version=$( (janus --version 2>/dev/null || true) | sed -n 's/^Janus version: .*(\(.*\))/\1/p' | head -1)
echo "Janus ${janus_version:-?} ($(command -v janus)), private network namespace: lo + jv0 127.0.0.2"

load_pinning "$pin"

# The Janus configuration: the VideoRoom plugin and the WebSocket transport on 127.0.0.1 only,
# host candidates on jv0 only, no STUN/TURN, no recording, no event handlers, warnings only.
conf="$out/janus-conf"
rm -rf "$conf"
mkdir -p "$conf"
lib=$(dirname "$(find /usr/lib -path '*janus/plugins/libjanus_videoroom.so' 2>/dev/null | head -1)")/..
lib=$(cd "$lib" && pwd)
list_except() { # the .so files of a folder, but the one kept, comma-separated
  find "$1" -maxdepth 1 -name '*.so' -printf '%f\n' | grep -vx "$2" | sort | paste -sd, -
}
loops_line=""
[ "$event_loops" != 0 ] && loops_line="event_loops = $event_loops"
cat >"$conf/janus.jcfg" <<EOF
general: {
	configs_folder = "$(cd "$conf" && pwd)"
	plugins_folder = "$lib/plugins"
	transports_folder = "$lib/transports"
	events_folder = "$lib/events"
	loggers_folder = "$lib/loggers"
	debug_level = 3
	session_timeout = 60
	$loops_line
}
media: {
	ipv6 = false
}
nat: {
	nice_debug = false
	ice_enforce_list = "jv0"
	ignore_mdns = true
}
plugins: {
	disable = "$(list_except "$lib/plugins" libjanus_videoroom.so)"
}
transports: {
	disable = "$(list_except "$lib/transports" libjanus_websockets.so)"
}
loggers: {
	disable = "$(list_except "$lib/loggers" none)"
}
events: {
	broadcast = false
}
EOF
cat >"$conf/janus.transport.websockets.jcfg" <<'EOF'
general: {
	json = "compact"
	ws = true
	ws_port = 8188
	ws_ip = "127.0.0.1"
	wss = false
}
admin: {
	admin_ws = false
	admin_wss = false
}
EOF
# Rooms are created by the load tool through the API (one per call, Opus + VP8, no recording).
cat >"$conf/janus.plugin.videoroom.jcfg" <<'EOF'
general: {
}
EOF

trap stop_server EXIT

load_args=(--rate "$rate" --settle "$settle" --duration "$duration")
janus_reports=()
dragoman_reports=()

# One Janus run at a load: run_janus CALLS REPORT LOG.
run_janus() {
  timeout "$run_seconds" "${sfu_pin[@]}" janus -F "$conf" -C "$conf/janus.jcfg" -o -N -L "$3" >/dev/null 2>&1 &
  server_pid=$!
  janus_pid=$(child_of "$server_pid" janus) || { cat "$3"; exit 1; }
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/8188) 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$3"; exit 1; }
    sleep 0.1
  done
  echo "== Janus: $1 calls against pid $janus_pid at ws://127.0.0.1:8188"
  timeout "$run_seconds" "${gen_pin[@]}" "$bot_bin" load --server janus --url ws://127.0.0.1:8188 \
    --sfu-pid "$janus_pid" --calls "$1" "${load_args[@]}" --call-prefix "janus$1" --report "$2"
  stop_server
}

# One Dragoman run at a load, a fresh release server as run-load.sh starts it:
# run_dragoman CALLS REPORT LOG HISTORY.
run_dragoman() {
  start_dragoman "$3" "$4" "compare-secret-$$"
  echo "== Dragoman: $1 calls against pid $dragoman_pid at $http"
  timeout "$run_seconds" "${gen_pin[@]}" "$bot_bin" load --url "ws://$http/v1/signal" --secret "compare-secret-$$" \
    --sfu-pid "$dragoman_pid" --calls "$1" "${load_args[@]}" --call-prefix "dragoman$1" --report "$2"
  stop_server
}

for calls in "${calls_list[@]}"; do
  run_limit "$calls" "$rate" "$settle" "$duration"
  for round in $(seq "$rounds"); do
    # Round 1 keeps the plain file names; later rounds add their number.
    tag=$calls
    [ "$round" -gt 1 ] && tag="$calls-round$round"
    [ "$rounds" -gt 1 ] && echo "== round $round of $rounds at $calls calls"
    janus_report="$out/janus-$tag.json"
    dragoman_report="$out/dragoman-$tag.json"
    # Alternate which server goes first, so a drift of the machine over the rounds weighs on
    # both alike.
    if [ $((round % 2)) = 1 ]; then
      run_janus "$calls" "$janus_report" "$out/janus-$tag.log"
      run_dragoman "$calls" "$dragoman_report" "$out/dragoman-$tag.log" "$out/history-compare-$tag.sqlite"
    else
      run_dragoman "$calls" "$dragoman_report" "$out/dragoman-$tag.log" "$out/history-compare-$tag.sqlite"
      run_janus "$calls" "$janus_report" "$out/janus-$tag.log"
    fi
    janus_reports+=(--janus "$janus_report")
    dragoman_reports+=(--dragoman "$dragoman_report")
  done
done

echo
echo "== Side by side (Janus ${janus_version:-?}, event_loops ${event_loops}; window $duration; $rounds round(s) per load)"
"$bot_bin" compare "${janus_reports[@]}" "${dragoman_reports[@]}" --report "$out/compare-janus.json"
echo "reports in $out/"
