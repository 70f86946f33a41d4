#!/usr/bin/env bash
# The F3 overlay's cost: runs the real mascot under Xvfb for SECONDS (default 20) with the
# overlay hidden, then shown, and prints the process CPU use each time (utime + stime from
# /proc over the same interval, after a 3 s start-up).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
bin="${CARGO_TARGET_DIR:-target}/debug/desktop-mate"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ticks=$(getconf CLK_TCK)
for visible in false true; do
  printf '(diagnostics: (overlay_visible: %s), chat: (history_file: Some("%s/h.jsonl")))\n' \
    "$visible" "$tmp" >"$tmp/m.ron"
  HOME="$tmp" xvfb-run -a -s "-screen 0 1280x1024x24" "$bin" run --config "$tmp/m.ron" \
    >/dev/null 2>"$tmp/log" &
  sleep 3 # window, pipelines
  pid=$(pgrep -n -f "desktop-mate run --config $tmp/m.ron")
  read -r -a before <"/proc/$pid/stat"
  sleep "$seconds"
  read -r -a after <"/proc/$pid/stat"
  kill "$pid"
  wait || true
  cpu=$(( (after[13] + after[14] - before[13] - before[14]) ))
  awk -v v="$visible" -v c="$cpu" -v t="$ticks" -v s="$seconds" \
    'BEGIN { printf "overlay visible=%-5s  CPU %.1f%% of one core\n", v, 100 * c / t / s }'
done
