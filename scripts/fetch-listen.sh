#!/usr/bin/env bash
# Fetches what listening (src/voice/listen.rs) needs in tests and benchmarks, from PyPI:
# - Silero VAD (MIT), the voice activity detector that cuts speech into utterances: the ONNX
#   model the package `silero-vad` ships, into ~/.cache/desktop-mate/models/silero-vad.onnx;
# - real recorded English read speech with its transcripts: five LibriVox utterances (Jane
#   Austen's Sense and Sensibility, public domain) and CMU's five "cards" utterances, from the
#   test data of the `pocketsphinx` source package (BSD-2-Clause), into
#   ~/.cache/desktop-mate/models/speech-samples/.
# Prints the two paths. Tests and benchmarks only: the mascot itself never downloads these.
set -euo pipefail

VAD_WHEEL_SHA256=7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8
VAD_SHA256=1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3
SAMPLES_SHA256=675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355
models="${DESKTOP_MATE_MODELS:-$HOME/.cache/desktop-mate/models}"
vad="$models/silero-vad.onnx"
samples="$models/speech-samples"
mkdir -p "$models"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! { [[ -f "$vad" ]] && echo "$VAD_SHA256  $vad" | sha256sum --check --status; }; then
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work" silero-vad==6.2.3 >&2; then
    echo "fetch-listen: could not download silero-vad from PyPI (offline?)" >&2
    exit 1
  fi
  wheel=("$work"/silero_vad-*.whl)
  if ! echo "$VAD_WHEEL_SHA256  ${wheel[0]}" | sha256sum --check --status; then
    echo "fetch-listen: ${wheel[0]}'s sha256 is not $VAD_WHEEL_SHA256" >&2
    exit 1
  fi
  python3 -m zipfile -e "${wheel[0]}" "$work/vad"
  echo "$VAD_SHA256  $work/vad/silero_vad/data/silero_vad.onnx" | sha256sum --check --status
  cp "$work/vad/silero_vad/data/silero_vad.onnx" "$vad.tmp"
  mv "$vad.tmp" "$vad"
fi

if [[ ! -f "$samples/.complete" ]]; then
  # The source package itself (pip download of a source package would build it), at its
  # permanent address on PyPI's file host, checked by its sha256.
  url=https://files.pythonhosted.org/packages/61/e7/13e0e787ff467218de880310d79cba14424f13b87171ac44af0bde1e428c/pocketsphinx-5.1.1.tar.gz
  if ! python3 -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" "$url" "$work/ps.tar.gz"; then
    echo "fetch-listen: could not download $url (offline?)" >&2
    exit 1
  fi
  if ! echo "$SAMPLES_SHA256  $work/ps.tar.gz" | sha256sum --check --status; then
    echo "fetch-listen: $url's sha256 is not $SAMPLES_SHA256" >&2
    exit 1
  fi
  tar -xzf "$work/ps.tar.gz" -C "$work" pocketsphinx-5.1.1/test/data/librivox pocketsphinx-5.1.1/test/data/cards pocketsphinx-5.1.1/LICENSE
  rm -rf "$samples"
  mkdir -p "$samples"
  cp -r "$work/pocketsphinx-5.1.1/test/data/librivox" "$work/pocketsphinx-5.1.1/test/data/cards" "$samples/"
  cp "$work/pocketsphinx-5.1.1/LICENSE" "$samples/LICENSE.pocketsphinx"
  touch "$samples/.complete"
fi
echo "$vad"
echo "$samples"
