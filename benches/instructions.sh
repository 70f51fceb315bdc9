#!/usr/bin/env bash
# Instructions per call of the forward's parts, counted by valgrind's callgrind: a figure that does
# not move with the machine's load, for comparing two builds where criterion's times (±10 % run to
# run on a shared VM) cannot tell a 2 % change.
#
#   benches/instructions.sh [BENCH-FILTER] [BINARY]
#
#   BENCH-FILTER  one forwarding benchmark (default 'GCM128-1200B/fanout/10$')
#   BINARY        a built forwarding bench binary (default: build this checkout's)
#
# Prints instructions per call for the functions in FUNCTIONS (space-separated substrings of
# callgrind's function names; default the forward and its parts). Takes ~2 minutes: the fixture's
# DTLS handshakes and 2 s of the benchmark run under valgrind. Instructions are not time (a cache
# miss costs no instructions), so a change is judged on both: this for its direction and size,
# criterion's interleaved runs for the time. Counts from the AVX-512 code paths differ from a
# native run: valgrind hides AVX-512, so the AES-GCM seal takes its AVX2 path.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
filter=${1:-'GCM128-1200B/fanout/10$'}
binary=${2:-}
functions=${FUNCTIONS:-"str0m::Rtc::forward_rtp_now Session::forward_rtp_now StreamTx::forward_now SrtpContext::protect_rtp_forward RtpHeader::write_to Pacer>::register_send TwccSendRegister::register_seq MediaEngine::handle_datagram"}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}
if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
  echo "installing Debian's valgrind (callgrind)…"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind
fi

if [ -z "$binary" ]; then
  # Cargo's messages go to stderr as usual; a failed build leaves `binary` empty (checked below).
  binary=$(cargo bench -p dragoman-benches --bench forwarding --no-run --message-format=json |
    sed -n 's/.*"executable":"\([^"]*forwarding-[^"]*\)".*/\1/p' | tail -1) || true
  [ -n "$binary" ] || { echo "could not build the forwarding benchmark" >&2; exit 1; }
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== callgrind: $binary --bench '$filter' (~2 minutes)"
timeout 900 valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
  "$binary" --bench "$filter" --profile-time 2 >"$out/run.log" 2>&1 ||
  { tail -20 "$out/run.log" >&2; exit 1; }

# In the caller tree, each function's block is its callers ("<" lines with their call counts) and
# the function itself ("*" line, inclusive instructions). Instructions per call = inclusive
# instructions / calls from all callers; of the blocks matching a name, the largest is shown (the
# same function can appear under several source files when inlined code is attributed apart).
callgrind_annotate --threshold=100 --inclusive=yes --tree=caller "$out/callgrind.out" >"$out/tree.txt"
for name in $functions; do
  awk -v name="$name" '
    function flush() {
      if (star != "" && calls > 0 && incl > best) { best = incl; best_calls = calls }
      star = ""; calls = 0; incl = 0
    }
    /^$/ { flush(); next }
    / \* / && index($0, name) { star = $0; incl = $1; gsub(",", "", incl); incl += 0; next }
    / < / && match($0, /\(([0-9,]+)x\)/) {
      c = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", c); calls += c
    }
    END {
      flush()
      if (best_calls > 0) printf "%-40s %8.0f instructions per call (%d calls)\n", name, best / best_calls, best_calls
      else printf "%-40s not found\n", name
    }' "$out/tree.txt"
done
