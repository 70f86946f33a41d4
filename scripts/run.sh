#!/usr/bin/env bash
# One command to run the mascot on a fresh Debian/Ubuntu machine: installs the system
# packages (apt-get, as root or through sudo), builds and starts it. Arguments go to
# desktop-mate, e.g. `scripts/run.sh --model ~/models/zephyr.gguf` or `scripts/run.sh check`.
#
# It builds the same profile as scripts/test.sh (dev: every dependency optimized, our own code
# at opt-level 1), so the two commands share one build of Bevy and llama.cpp; the release
# profile (thin LTO) is for packages, not for trying the mascot.
set -euo pipefail
cd "$(dirname "$0")/.."

# The window needs a display: say so now, not after a build of tens of minutes. The terminal
# commands need none.
needs_window=true
for arg in "$@"; do
  case "$arg" in
    check | chat | bench | profile-memory | model | monitor | memory | motion | say | voice | help | --help | -h | --version | -V)
      needs_window=false
      break
      ;;
  esac
done
if $needs_window && [[ "$(uname -s)" == Linux && -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" ]]; then
  echo "run: no display to open the mascot's window on (DISPLAY and WAYLAND_DISPLAY are unset)." >&2
  echo "run: start it from a desktop session, over ssh with 'ssh -X', or try 'scripts/run.sh check'" >&2
  echo "run: or 'scripts/run.sh chat', which need no display." >&2
  exit 2
fi

scripts/setup.sh
# shellcheck source=scripts/lib/sherpa-onnx.sh
. scripts/lib/sherpa-onnx.sh
cargo build --locked
program="${CARGO_TARGET_DIR:-target}/debug"
# With a GPU, llama.cpp's GPU module next to the program (built once; nothing without a GPU).
scripts/gpu-module.sh "$program"
exec "$program/desktop-mate" "$@"
