#!/usr/bin/env bash
# Avatar load time: runs `desktop-mate snapshot --avatar FILE` RUNS times (default 3) under Xvfb
# and prints, from the log's timestamps, the time from "loading avatar" to the "ready" line
# (file read, checked, parsed by bevy_vrm, scene spawned) and to "avatar framed" (meshes have
# bounds and the camera is on them: the first frames drawn with the avatar), plus the whole
# command's wall time (window, pipelines, settle, capture).
set -euo pipefail
cd "$(dirname "$0")/../.."
file=${1:?usage: scripts/bench/measure-load.sh AVATAR.vrm [RUNS]}
runs=${2:-3}
bin="${CARGO_TARGET_DIR:-target}/debug/desktop-mate"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo '()' >"$tmp/m.ron"
ms() { echo $(($(date -d "$1" +%s%N) / 1000000)); }
for _ in $(seq "$runs"); do
  start=$(date +%s%N)
  HOME="$tmp" NO_COLOR=1 xvfb-run -a -s "-screen 0 1280x1024x24" "$bin" snapshot --config "$tmp/m.ron" \
    --no-chat --size 400x600 --avatar "$file" --out "$tmp/shot.png" 2>"$tmp/log" >/dev/null
  wall=$(( ($(date +%s%N) - start) / 1000000 ))
  stamp() { grep -m1 "$1" "$tmp/log" | sed 's/\x1b\[[0-9;]*m//g' | awk '{ print $1 }'; }
  loading=$(ms "$(stamp 'loading avatar')")
  ready=$(ms "$(stamp ' ready: ')")
  framed=$(ms "$(stamp 'avatar framed')")
  printf '%s: ready %d ms, framed %d ms, snapshot command %d ms\n' "$(basename "$file")" \
    $((ready - loading)) $((framed - loading)) "$wall"
done
