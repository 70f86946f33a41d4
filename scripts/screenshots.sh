#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png from the real app under Xvfb (Mesa lavapipe renders on the
# CPU, so no GPU or screen is needed). Uses the bundled default settings, not yours.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked
bin="${CARGO_TARGET_DIR:-target}/debug/desktop-mate"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp config/mascot.ron "$tmp/mascot.ron"
mkdir -p docs/screenshots
HOME="$tmp" xvfb-run -a -s "-screen 0 1280x1024x24" \
  "$bin" snapshot --config "$tmp/mascot.ron" --settings --size 400x600 \
  --out docs/screenshots/settings.png
echo "wrote docs/screenshots/settings.png"
