#!/usr/bin/env bash
# Regenerates the bot's test clips with Debian's ffmpeg (`apt-get install ffmpeg`).
#
#   clip.ivf  3 s of VP8, 320x240 at 15 fps, a keyframe every 15 frames (1 s), no alt-ref frames,
#             so every IVF frame is one displayable frame the bot can send on its own.
#   clip.ogg  3 s of Opus, 48 kHz stereo, 20 ms frames, one Opus packet per Ogg page.
#
# The generated files are committed (the tests embed them with include_bytes!), so this only needs
# to run when the clips should change. Output is deterministic enough for tests, not bit-exact.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v ffmpeg >/dev/null; then
    echo "ffmpeg is missing: apt-get install -y ffmpeg" >&2
    exit 1
fi

ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc=size=320x240:rate=15" -t 3 \
    -c:v libvpx -deadline realtime -cpu-used 8 \
    -g 15 -keyint_min 15 -auto-alt-ref 0 -lag-in-frames 0 \
    -b:v 120k -maxrate 160k -bufsize 160k \
    -f ivf clip.ivf

ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 3 \
    -ac 2 -c:a libopus -b:a 32k -frame_duration 20 -application audio \
    -page_duration 20000 \
    -f ogg clip.ogg

ls -l clip.ivf clip.ogg
