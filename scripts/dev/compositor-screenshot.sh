#!/usr/bin/env bash
# The mascot on a composited X desktop, as a user sees it: Xvfb with a compositing manager
# (xcompmgr) over a patterned root window, the real `desktop-mate run`, and a screenshot of the
# whole screen: the pattern must show through the window's transparent pixels and the avatar
# must cover it (checked here on the pixels: exit 1 otherwise).
#
#   scripts/dev/compositor-screenshot.sh OUT.png [PROGRAM]
#
# PROGRAM defaults to the dev build (cargo build first).
#
# NOT WORKING YET (2026-12-02): under Xvfb with xcompmgr the mascot's window does not appear in
# the composited screen (Mesa lavapipe presenting into a redirected ARGB window?), and a root
# pixmap set by ImageMagick makes xcompmgr fail with BadMatch (xsetroot's leaves it grey). The
# checks below say so; no screenshot in docs/ comes from it until they pass.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="$1"
program="${2:-${CARGO_TARGET_DIR:-target}/debug/desktop-mate}"
scripts/setup.sh --test --desktop-shot

display=":$((90 + RANDOM % 100))"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# -fbdir: the screen as the compositor painted it, as an XWD file (a GetImage of the root
# window does not include what a compositing manager paints).
mkdir -p "$work/fb"
Xvfb "$display" -screen 0 800x700x24 -fbdir "$work/fb" -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do DISPLAY="$display" xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done
# A two-colour check pattern as the desktop's wallpaper, then the compositor.
convert -size 16x16 xc:'#2a5db0' -size 16x16 xc:'#f2c14e' +append \
  \( -size 16x16 xc:'#f2c14e' -size 16x16 xc:'#2a5db0' +append \) -append "$work/tile.png"
# (display exits 1 after setting the root window's background; the pixels are checked below.)
DISPLAY="$display" display -window root "$work/tile.png" || true
DISPLAY="$display" xcompmgr >/dev/null 2>&1 &
pids+=($!)
echo "(window: (position: Some((200, 50))), desktop: (autostart: false))" >"$work/mascot.ron"
HOME="$work" XDG_CONFIG_HOME="$work" XDG_DATA_HOME="$work" DISPLAY="$display" \
  RUST_LOG=info "$program" --config "$work/mascot.ron" run >"$work/run.log" 2>&1 &
pids+=($!)
# Until the avatar is on screen (its log line), then a moment for the compositor.
for _ in $(seq 600); do
  grep -q "avatar .* ready" "$work/run.log" && break
  sleep 0.1
done
grep -q "avatar .* ready" "$work/run.log" || {
  tail -20 "$work/run.log" >&2
  echo "compositor-screenshot: the mascot never showed its avatar" >&2
  exit 1
}
sleep 3
convert "xwd:$work/fb/Xvfb_screen0" "$out"
# Inside the window (200,50 .. 600,650): a corner must be the root pattern's colours (seen
# through), the avatar's middle must be neither.
python3 - "$out" <<'PY'
import subprocess, sys
def pixel(x, y):
    text = subprocess.run(["convert", f"{sys.argv[1]}[1x1+{x}+{y}]", "-depth", "8", "txt:-"],
                          check=True, capture_output=True, text=True).stdout
    return text.splitlines()[1].split("#")[1][:6].lower()
pattern = {"2a5db0", "f2c14e"}
corner = {pixel(205 + dx, 55 + dy) for dx in range(0, 16, 3) for dy in range(0, 16, 3)}
middle = pixel(400, 300)
assert corner <= pattern and len(corner) == 2, f"transparent corner shows {corner}, not the pattern"
assert middle not in pattern, f"the avatar's middle shows the pattern ({middle})"
print(f"compositor-screenshot: the pattern shows through the transparent corner {sorted(corner)}, "
      f"the avatar covers the middle (#{middle})")
PY
