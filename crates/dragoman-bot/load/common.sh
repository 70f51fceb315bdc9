# Shared by the load scripts (sourced, not run): CPU pinning, starting a release `dragoman serve`
# on loopback, and stopping the server a run started.
#
# After `load_pinning "$PIN"`: `sfu_pin` and `gen_pin` are the commands to prefix the server and
# the generator with. After `run_limit CALLS RATE SETTLE DURATION`: `run_seconds`, the bound every
# process of one run gets. After `start_dragoman LOG HISTORY SECRET`: `server_pid` is the process to
# stop (the `timeout` around the server), `dragoman_pid` the server itself, `http` its address.

# auto: with 2+ CPUs, the server on CPU 0 and the load generator on CPU 1; anything else: none.
load_pinning() {
  sfu_pin=()
  gen_pin=()
  if [ "$1" = auto ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    sfu_pin=(taskset -c 0)
    gen_pin=(taskset -c 1)
    echo "pinning: server on CPU 0, load generator on CPU 1"
  else
    echo "pinning: none"
  fi
}

# Whole seconds (rounded up) in a duration written as the load tool takes it: 500ms, 20s, 2m, 1h.
duration_seconds() {
  if [[ $1 =~ ^([0-9]+)(ms|s|m|h)$ ]]; then
    local n=${BASH_REMATCH[1]}
    case ${BASH_REMATCH[2]} in
      ms) echo $(((n + 999) / 1000)) ;;
      s) echo "$n" ;;
      m) echo $((n * 60)) ;;
      h) echo $((n * 3600)) ;;
    esac
  else
    echo "cannot read the duration '$1': write it as a number and one unit, e.g. 500ms, 20s, 2m" >&2
    return 1
  fi
}

# One run's bound: the ramp (CALLS at RATE per second), SETTLE and the DURATION window, plus two
# minutes for the start, the joins, the leaves and the report.
run_limit() {
  local calls=$1 rate=$2 settle duration ramp
  settle=$(duration_seconds "$3") || exit 1
  duration=$(duration_seconds "$4") || exit 1
  ramp=$(awk -v c="$calls" -v r="$rate" 'BEGIN { if (r <= 0) exit 1; printf "%d", c / r + 1 }') ||
    { echo "RATE must be a positive number of calls per second, not '$rate'" >&2; exit 1; }
  run_seconds=$((ramp + settle + duration + 120))
}

command -v pgrep >/dev/null || { echo "the load scripts need 'pgrep' (procps)"; exit 1; }

server_pid=
# Stop the server the last run started: SIGTERM to `timeout`, which passes it on; up to 5 s, then
# SIGKILL to `timeout`'s whole process group (it leads one), the server included.
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 -- "-$server_pid" 2>/dev/null || kill -9 "$server_pid" 2>/dev/null || true
  fi
  server_pid=
}

# The pid of the server started by `timeout` (its child, once taskset has exec'd it). Fails the
# script rather than measure the wrong process.
child_of() {
  local parent=$1 name=$2 pid=
  for _ in $(seq 100); do
    pid=$(pgrep -P "$parent" -x "$name" | head -1 || true)
    [ -n "$pid" ] && { echo "$pid"; return; }
    sleep 0.1
  done
  echo "no '$name' process under pid $parent after 10 s" >&2
  return 1
}

# A fresh release server on 127.0.0.1 with ephemeral ports, pinned, bounded by `timeout`; waits
# for its ready line and reads the HTTP address from it.
start_dragoman() {
  local log=$1 history=$2 secret=$3
  rm -f "$history"
  timeout "${run_seconds:?call run_limit first}" "${sfu_pin[@]}" "${DRAGOMAN_BIN:-target/release/dragoman}" serve --http 127.0.0.1:0 --media 127.0.0.1:0 \
    --secret "$secret" --history "$history" >"$log" 2>&1 &
  server_pid=$!
  dragoman_pid=$(child_of "$server_pid" dragoman) || { cat "$log"; exit 1; }
  http=
  for _ in $(seq 100); do
    http=$(sed -n 's/^dragoman ready: http=\([^ ]*\) .*/\1/p' "$log" | head -1)
    [ -n "$http" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.1
  done
  [ -n "$http" ] || { echo "the server did not start"; cat "$log"; exit 1; }
}
