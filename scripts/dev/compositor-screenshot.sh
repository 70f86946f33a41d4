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
# The wallpaper is set by hsetroot, which publishes it as _XROOTPMAP_ID, the root pixmap
# compositors paint (ImageMagick's `display -window root` made xcompmgr fail with BadMatch, and
# xsetroot's leaves the composited screen grey); the compositor is picom (xrender backend: Xvfb
# has no GL), COMPOSITOR=xcompmgr to try the other one.
#
# Mesa's CPU Vulkan driver (lavapipe) of Debian 12 (22.3.6) presents nothing into a window of
# depth 32, the transparent kind: the window stays empty (measured; 25.0.7 shows it). With a
# Mesa older than 23 this script unpacks lavapipe from Debian's bookworm-backports into
# ~/.cache/desktop-mate/mesa-backports (apt-get download + dpkg -x, nothing installed) and runs
# the mascot on it.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="$1"
program="${2:-${CARGO_TARGET_DIR:-target}/debug/desktop-mate}"
scripts/setup.sh --test --desktop-shot

mesa_env=()
mesa_version=$(dpkg-query -W -f '${Version}' mesa-vulkan-drivers 2>/dev/null || echo 0)
if dpkg --compare-versions "$mesa_version" lt 23; then
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/desktop-mate/mesa-backports"
  lib="$cache/root/usr/lib/x86_64-linux-gnu"
  if [[ ! -f "$lib/libvulkan_lvp.so" ]]; then
    echo "compositor-screenshot: Mesa $mesa_version's lavapipe shows no transparent window; fetching bookworm-backports' lavapipe into $cache"
    mkdir -p "$cache/lists/partial" "$cache/debs"
    echo "deb http://deb.debian.org/debian bookworm-backports main" >"$cache/sources.list"
    apt_private=(-o "Dir::Etc::SourceList=$cache/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$cache/lists")
    apt-get "${apt_private[@]}" update >/dev/null
    (cd "$cache/debs" && apt-get "${apt_private[@]}" download \
      mesa-vulkan-drivers/bookworm-backports libdrm2/bookworm-backports \
      libdrm-amdgpu1/bookworm-backports >/dev/null 2>&1)
    rm -rf "$cache/root"
    for deb in "$cache"/debs/*.deb; do dpkg -x "$deb" "$cache/root"; done
  fi
  printf '{"ICD": {"api_version": "1.3.0", "library_path": "%s/libvulkan_lvp.so"}, "file_format_version": "1.0.0"}\n' \
    "$lib" >"$cache/lvp_icd.json"
  mesa_env=(LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" VK_ICD_FILENAMES="$cache/lvp_icd.json")
fi

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
DISPLAY="$display" hsetroot -tile "$work/tile.png" >/dev/null
if [[ "${COMPOSITOR:-picom}" == xcompmgr ]]; then
  DISPLAY="$display" xcompmgr >"$work/compositor.log" 2>&1 &
else
  DISPLAY="$display" picom --backend xrender >"$work/compositor.log" 2>&1 &
fi
pids+=($!)
echo "(window: (position: Some((200, 50))), desktop: (autostart: false))" >"$work/mascot.ron"
env "${mesa_env[@]}" HOME="$work" XDG_CONFIG_HOME="$work" XDG_DATA_HOME="$work" DISPLAY="$display" \
  RUST_LOG=info,desktop_mate::avatar::window=debug "$program" --config "$work/mascot.ron" run >"$work/run.log" 2>&1 &
pids+=($!)
# Until the avatar is framed (its log line); then the screen is read until the pixels check out
# (the CPU renderer's first frames of the avatar take seconds on 2 busy cores), 60 s at most.
for _ in $(seq 600); do
  grep -q "avatar framed" "$work/run.log" && break
  sleep 0.1
done
grep -q "avatar framed" "$work/run.log" || {
  tail -20 "$work/run.log" >&2
  echo "compositor-screenshot: the mascot never showed its avatar" >&2
  exit 1
}
# Inside the window (200,50 .. 600,650): a corner must be the root pattern's colours (seen
# through); the avatar's face and the chat panel must be neither.
cat >"$work/check.py" <<'PY'
import subprocess, sys
def pixel(x, y):
    text = subprocess.run(["convert", f"{sys.argv[1]}[1x1+{x}+{y}]", "-depth", "8", "txt:-"],
                          check=True, capture_output=True, text=True).stdout
    return text.splitlines()[1].split("#")[1][:6].lower()
pattern = {"2a5db0", "f2c14e"}
corner = {pixel(205 + dx, 55 + dy) for dx in range(0, 16, 3) for dy in range(0, 16, 3)}
face = pixel(380, 190)
panel = pixel(400, 300)
assert corner <= pattern and len(corner) == 2, f"transparent corner shows {corner}, not the pattern"
assert face not in pattern, f"the avatar's face shows the pattern ({face})"
assert panel not in pattern, f"the chat panel shows the pattern ({panel})"
print(f"compositor-screenshot: the pattern shows through the transparent corner {sorted(corner)}, "
      f"the avatar's face (#{face}) and the chat panel (#{panel}) cover it")
PY
for _ in $(seq 60); do
  convert "xwd:$work/fb/Xvfb_screen0" "$out"
  if python3 "$work/check.py" "$out" 2>"$work/check.log"; then
    exit 0
  fi
  sleep 1
done
tail -1 "$work/check.log" >&2
exit 1
