#!/usr/bin/env bash
# Tests the Windows build (x86_64-pc-windows-gnu, cross-built with MinGW) under Wine:
#  0. clippy for the Windows target (cfg(windows) code the Linux lints never see);
#  1. the unit tests, run as Windows programs (cargo's target runner = wine);
#  2. the integration tests that need no window (settings, VRM files, engine, templates, CLI,
#     llama.cpp modules, downloads, OpenAI backend...);
#  3. the packed exe (scripts/build-windows.sh): `check --json`, and greedy parity: `chat --raw
#     --temperature 0` on ../shared/models/stories260K.gguf and on Gemma 3 270M gives the same
#     text as the Linux build;
#  4. the window: `snapshot` of the built-in mascot through Wine's Vulkan on Mesa's lavapipe
#     (under Xvfb), its pixels compared with the Linux build's;
#  5. the mascot (`run`): tray icon, and click-through following the pointer moved over the
#     avatar and over a transparent corner.
# Each run uses a fresh Wine prefix (its own %APPDATA%), so nothing of the user's is touched.
#   scripts/test-windows.sh [cargo test filters...]   (filters narrow step 2)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test --windows
# One virtual X display of our own for every step, even on a desktop (the tests move the
# pointer): Wine's session (its wineserver and desktop process) keeps the display it started with.
if [[ -z "${DESKTOP_MATE_WINE_XVFB:-}" ]]; then
  export DESKTOP_MATE_WINE_XVFB=1
  exec xvfb-run -a -s "-screen 0 1280x1024x24 -noreset" "$PWD/scripts/test-windows.sh" "$@"
fi
# shellcheck source=scripts/windows-env.sh
source scripts/windows-env.sh
# The Linux build below (the parity run) links the Linux libraries of the voice.
# shellcheck source=scripts/lib/sherpa-onnx.sh
. scripts/lib/sherpa-onnx.sh
target_dir="${CARGO_TARGET_DIR:-target}"

prefix=$(mktemp -d /tmp/desktop-mate-wine.XXXXXX)
home=$(mktemp -d)
cleanup() {
  WINEPREFIX="$prefix" wineserver -k 2>/dev/null || true
  rm -rf "$prefix" "$home"
}
trap cleanup EXIT
export WINEPREFIX="$prefix" WINEDEBUG="${WINEDEBUG:--all}" WINEDLLOVERRIDES="mscoree,mshtml="
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
start=$SECONDS
wineboot --init >/dev/null 2>&1
# Wine 8 lacks bcryptprimitives.dll (ProcessPrng, which Rust's std imports; every Windows 10/11
# has it): a test-only stand-in goes into this prefix's system32 (never shipped).
x86_64-w64-mingw32-gcc-posix -O2 -shared -o "$prefix/drive_c/windows/system32/bcryptprimitives.dll" \
  scripts/windows/wine-bcryptprimitives.c -ladvapi32
# Wine's X11 driver on Xvfb reports display modes without a refresh rate, which winit asserts
# on when it lists a monitor's modes; without XRandR Wine reports complete ones (real Windows
# always does).
wine reg add 'HKCU\Software\Wine\X11 Driver' /v UseXRandR /t REG_SZ /d N /f >/dev/null 2>&1
echo "test-windows: Wine prefix ready in $((SECONDS - start)) s ($(wine --version))"

# The integration tests that open no window (the rest need a window: step 4 tries one).
integration=(cli:: settings:: settings_edit:: vrm_file:: templates:: engine:: backends::
  download:: openai:: llm_plugin:: memory::)
if (($# > 0)); then
  integration=("$@")
fi

run_tests() {
  local what="$1"
  shift
  local log
  log=$(mktemp)
  local rc=0
  windows_cargo test --locked --target "$WINDOWS_TARGET" "$@" 2>&1 | tee "$log" || rc=$?
  local counts
  counts=$(awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i + 1) ~ /^passed/) p += $i;
    if ($(i + 1) ~ /^failed/) f += $i } } END { printf "%d passed, %d failed", p, f }' "$log")
  rm -f "$log"
  echo "test-windows: $what under Wine: $counts"
  return "$rc"
}

# Lints of the Windows-only code (the Linux lints never compile it). In CI the compiler of this
# crate is clippy-driver (scripts/lib/lints-in-build.sh): the build is the lint, and the
# dependency tree is compiled once for Windows, not checked and then built.
if [[ "${RUSTC_WORKSPACE_WRAPPER:-}" == *clippy-driver* ]]; then
  start=$SECONDS
  windows_cargo test --locked --target "$WINDOWS_TARGET" --no-run --lib --bins --test it
  echo "test-windows: built and clippy clean for $WINDOWS_TARGET (lints in the build) in $((SECONDS - start)) s"
else
  windows_cargo clippy --locked --target "$WINDOWS_TARGET" --all-targets -- -D warnings
  echo "test-windows: clippy clean for $WINDOWS_TARGET"
fi

run_tests "unit tests" --lib
run_tests "integration tests (no window)" --test it -- "${integration[@]}"

# The exe as users get it: the packed folder.
zip=$(scripts/build-windows.sh)
folder="${zip%.zip}"
exe="$folder/desktop-mate.exe"
# The Linux build of the same source, to compare with (a no-op after scripts/test.sh).
cargo build --locked >&2
linux_exe="$target_dir/debug/desktop-mate"
echo "()" >"$home/mascot.ron"

# Runs the Windows exe under Wine, its output (CR-free) on stdout; on failure the tail of its
# log and exit 1 (set -e alone would stop the script without a word).
run_exe() {
  local what="$1"
  shift
  if ! wine "$exe" "$@" >"$home/out.txt" 2>"$home/err.txt"; then
    tr -d '\r' <"$home/err.txt" | tail -20 >&2
    echo "test-windows: desktop-mate.exe $what FAILED under Wine" >&2
    exit 1
  fi
  tr -d '\r' <"$home/out.txt"
}

# A Windows path for a file here. The wineserver exits a few seconds after its last client, and
# a winepath started just then can fail with "recvmsg: Connection reset by peer" and print
# nothing (seen once in CI: the snapshot got an empty --config): try again, then fail loudly.
winpath() {
  local path
  for _ in 1 2 3; do
    path=$(winepath -w "$1" 2>/dev/null) && [[ -n "$path" ]] && { echo "$path"; return 0; }
    sleep 1
  done
  echo "test-windows: winepath failed for $1" >&2
  return 1
}

check=$(run_exe check check --json --config "$(winpath "$home/mascot.ron")")
echo "$check" | python3 -c '
import json, sys
report = json.load(sys.stdin)
backends = report["backends"]
assert report["settings"]["valid"], report["settings"]
assert backends["cpu_variant"], backends
print("test-windows: check --json: settings", report["settings"]["origin"], "| llama.cpp CPU module",
      backends["cpu_variant"], "of", len(backends["cpu_candidates"]), "| plan", report["plan"]["profile"])
' || {
  echo "test-windows: check --json did not print the expected report: $check" >&2
  exit 1
}

# Greedy parity: the same completion from the Windows exe as from the Linux build, on the
# issue's tiny stories model (../shared) and on Gemma 3 270M (scripts/fetch-gemma.sh's cache),
# whichever this machine has.
parity() {
  local name="$1" model="$2"
  local prompt="Once upon a time"
  local linux_text windows_text
  linux_text=$("$linux_exe" chat --raw --temperature 0 --max-tokens 48 --config "$home/mascot.ron" \
    --model "$model" --prompt "$prompt")
  windows_text=$(run_exe "chat on $name" chat --raw --temperature 0 --max-tokens 48 \
    --config "$(winpath "$home/mascot.ron")" --model "$(winpath "$model")" \
    --prompt "$prompt")
  if [[ -z "$linux_text" || "$linux_text" != "$windows_text" ]]; then
    echo "test-windows: greedy parity on $name FAILED" >&2
    echo "  Linux:   $linux_text" >&2
    echo "  Windows: $windows_text" >&2
    exit 1
  fi
  echo "test-windows: greedy parity with Linux on $name: identical (${#windows_text} chars): $windows_text"
}
compared=0
stories=../shared/models/stories260K.gguf
if [[ -f "$stories" ]]; then
  parity stories260K "$(realpath "$stories")"
  compared=$((compared + 1))
else
  echo "test-windows: $stories absent: parity on stories260K skipped"
fi
gemma="${DESKTOP_MATE_MODELS:-$HOME/.cache/desktop-mate/models}/gemma-3-270m-q4_k_m.gguf"
if [[ -f "$gemma" ]]; then
  parity "Gemma 3 270M" "$gemma"
  compared=$((compared + 1))
else
  echo "test-windows: $gemma absent (scripts/fetch-gemma.sh): parity on Gemma skipped"
fi
if ((compared == 0)) && [[ "${CI:-}" == "true" ]]; then
  echo "test-windows: no model to compare the Windows and Linux builds on" >&2
  exit 1
fi

# The window: the built-in mascot rendered by the Windows exe through Wine's Vulkan on Mesa's
# lavapipe, compared with the Linux build's snapshot of the same settings.
export WGPU_BACKEND=vulkan
snapshot=(snapshot --size 400x600 --settle-frames 10)
if ! "$linux_exe" "${snapshot[@]}" --config "$home/mascot.ron" --out "$home/linux.png" \
  2>"$home/linux-snapshot.txt"; then
  tail -20 "$home/linux-snapshot.txt" >&2
  echo "test-windows: the Linux snapshot to compare with FAILED" >&2
  exit 1
fi
start=$SECONDS
run_exe snapshot "${snapshot[@]}" --config "$(winpath "$home/mascot.ron")" \
  --out "$(winpath "$home/windows.png")" >/dev/null
echo "test-windows: the Windows exe rendered the mascot under Wine in $((SECONDS - start)) s"
scripts/windows/compare-png.py --max-alpha-mismatch 0.001 --max-mean-diff 1 \
  "$home/windows.png" "$home/linux.png"

# The mascot itself (`run`) under Wine: the tray icon, then click-through driven by the
# Windows pointer source (GetPhysicalCursorPos): the pointer moved (xdotool, X server -> Wine)
# over the avatar's face makes the window catch clicks, over a transparent corner lets them
# through.
log="$home/run.txt"
: >"$log"
RUST_LOG=info,desktop_mate::avatar::window=debug wine "$exe" \
  --config "$(winpath "$home/mascot.ron")" run >/dev/null 2>"$log" &
mascot=$!
# Waits until the mascot's log has a line matching $1 (a grep -E pattern); fails after $2 s.
wait_log() {
  local deadline=$((SECONDS + $2))
  until tr -d '\r' <"$log" | grep -qE "$1"; do
    if ((SECONDS > deadline)) || ! kill -0 "$mascot" 2>/dev/null; then
      tr -d '\r' <"$log" | tail -20 >&2
      echo "test-windows: the mascot under Wine never logged /$1/" >&2
      kill "$mascot" 2>/dev/null || true
      exit 1
    fi
    sleep 0.5
  done
}
wait_log "tray icon added to the notification area" 60
wait_log "window placed by the OS at \[-?[0-9]+, -?[0-9]+\]" 60
read -r wx wy < <(tr -d '\r' <"$log" | sed -n 's/.*window placed by the OS at \[\(-\{0,1\}[0-9]*\), \(-\{0,1\}[0-9]*\)\].*/\1 \2/p' | head -1)
wait_log "hit mask ready" 60
xdotool mousemove $((wx + 200)) $((wy + 150))
wait_log "pointer at Some\(Vec2\(200.0, 150.0\)\): window catches clicks" 30
xdotool mousemove $((wx + 10)) $((wy + 10))
wait_log "pointer at Some\(Vec2\(10.0, 10.0\)\): clicks pass through" 30
kill "$mascot" 2>/dev/null || true
wait "$mascot" 2>/dev/null || true
echo "test-windows: the mascot runs under Wine: tray icon, desktop pointer mapped, the avatar catches clicks and a transparent corner lets them through"
