#!/usr/bin/env bash
# The F3 overlay's cost: runs the real mascot under Xvfb for SECONDS (default 20) with the
# overlay hidden, then shown, and prints the process CPU use each time (utime + stime from
# /proc over the same interval, after a 3 s start-up).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
bin="${CARGO_TARGET_DIR:-target}/debug/desktop-mate"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source scripts/bench/cpu-of-run.sh
for visible in false true; do
  printf '(diagnostics: (overlay_visible: %s), chat: (history_file: Some("%s/h.jsonl")))\n' \
    "$visible" "$tmp" >"$tmp/m.ron"
  cpu=$(cpu_of_run "$seconds" 3 "$tmp/m.ron")
  printf 'overlay visible=%-5s  CPU %s%% of one core\n' "$visible" "$cpu"
done
