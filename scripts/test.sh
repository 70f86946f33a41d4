#!/usr/bin/env bash
# One command to run every test on a fresh Debian/Ubuntu machine: installs the system
# packages (apt-get, as root or through sudo), then runs `cargo test` under a virtual X
# display (Xvfb) so rendering tests use Mesa's CPU Vulkan driver (lavapipe).
#
# A test whose input is missing here (../shared, Gemma, a display, llama.cpp's tools...) skips
# and is counted on the last line; under CI=true it fails instead (tests/it/support.rs
# `missing`), except for what .ci/run left to a later run (DESKTOP_MATE_DEFERRED).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# shellcheck source=scripts/lib/sherpa-onnx.sh
. scripts/lib/sherpa-onnx.sh
skip_log=$(mktemp)
trap 'rm -f "$skip_log"' EXIT
export DESKTOP_MATE_SKIP_LOG="$skip_log"
rc=0
# -noreset: an X server resets when its last client leaves, and drops the connections made
# meanwhile ("failed to read whole buffer", "Broken pipe" in two CI runs): with many test
# processes opening and closing windows, the suite's Xvfb must stay up between them.
xvfb-run -a -s "-screen 0 1280x1024x24 -noreset" cargo test --locked "$@" || rc=$?
if [[ -s "$skip_log" ]]; then
  echo "test.sh: $(wc -l <"$skip_log") checks skipped, for lack of: $(cut -f2 "$skip_log" | sort | uniq -c | sed 's/^ *\([0-9]*\) \(.*\)/\2 (x\1)/' | paste -sd ';' | sed 's/;/; /g')"
else
  echo "test.sh: no check skipped"
fi
exit "$rc"
