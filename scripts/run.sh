#!/usr/bin/env bash
# One command to run the mascot on a fresh Debian/Ubuntu machine: installs the system
# packages (apt-get, as root or through sudo), builds in release mode and starts it.
# Arguments go to desktop-mate, e.g. `scripts/run.sh --model ~/models/zephyr.gguf`
# or `scripts/run.sh check`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --locked -- "$@"
