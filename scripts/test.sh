#!/usr/bin/env bash
# One command to run every test on a fresh Debian/Ubuntu machine: installs the system
# packages (apt-get, as root or through sudo), then runs `cargo test` under a virtual X
# display (Xvfb) so rendering tests use Mesa's CPU Vulkan driver (lavapipe).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec xvfb-run -a -s "-screen 0 1280x1024x24" cargo test --locked "$@"
