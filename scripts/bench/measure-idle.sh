#!/usr/bin/env bash
# Idle cost of the mascot: runs the real app (default avatar, chat panel open, no model) under
# Xvfb for SECONDS (default 30) with the frame cap raised to 240 fps (more than lavapipe can
# draw: continuous redraw), with the settings' default cap (30 fps idle / 60 active), and with
# a 10 fps cap; prints the process CPU use (utime + stime from /proc, after a 5 s start-up) and
# the mean frame rate (from the app's own diagnostics recording) each time.
# AVATAR=path/to/file.vrm measures with that avatar instead of the built-in one; MOTION=off
# with motion clips switched off (the still pose of before motion).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-30}
bin="${CARGO_TARGET_DIR:-target}/debug/desktop-mate"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source scripts/bench/cpu-of-run.sh
for fps in "240.0 240.0" "30.0 60.0" "10.0 10.0"; do
  read -r idle active <<<"$fps"
  avatar=""
  if [[ -n ${AVATAR:-} ]]; then
    avatar=$(printf 'avatar: (vrm_path: Some("%s")), ' "$(realpath "$AVATAR")")
  fi
  if [[ ${MOTION:-on} == off ]]; then
    avatar="${avatar}motion: (enabled: false), "
  fi
  printf '(%swindow: (idle_fps: %s, active_fps: %s), chat: (history_file: Some("%s/h.jsonl")))\n' \
    "$avatar" "$idle" "$active" "$tmp" >"$tmp/m.ron"
  rm -f "$tmp/d.csv"
  cpu=$(cpu_of_run "$seconds" 5 "$tmp/m.ron" --record-diagnostics "$tmp/d.csv")
  fps_mean=$(awk -F, 'NR > 6 && $14 != "" { sum += $14; n++ } END { if (n) printf "%.1f", sum / n; else print "n/a" }' "$tmp/d.csv")
  printf 'frame cap %-11s fps: %5s fps drawn, CPU %s%% of one core\n' "$idle/$active" "$fps_mean" "$cpu"
done
