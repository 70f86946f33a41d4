#!/usr/bin/env bash
# Fetches sherpa-onnx's prebuilt shared libraries (the speech engine of src/voice/: C API +
# onnxruntime, Apache-2.0/MIT) from PyPI, where the package `sherpa-onnx-core` ships them for
# Linux and Windows, verifies the wheel's sha256 and unpacks the libraries into
# ~/.cache/desktop-mate/sherpa-onnx/<version>/<os>/. Prints that folder: the `sherpa-onnx`
# crate's build script links against it (SHERPA_ONNX_LIB_DIR, set by scripts/lib/sherpa-onnx.sh),
# so no C++ is compiled and nothing is downloaded at build time.
#
#   scripts/fetch-sherpa-onnx.sh            Linux x86-64
#   scripts/fetch-sherpa-onnx.sh windows    Windows x86-64 (the cross build)
set -euo pipefail

# The version must match the `sherpa-onnx` crate's in Cargo.lock (its C API is the crate's).
VERSION=2.0.1
case "${1:-linux}" in
  linux)
    platform=manylinux2014_x86_64
    wheel=sherpa_onnx_core-$VERSION-py3-none-manylinux2014_x86_64.whl
    sha256=f4ee0ab91c4ae596e0e49d7de32522a946295e038a652f1c1884d89014ee4ec2
    os=linux-x64
    required=(libsherpa-onnx-c-api.so libonnxruntime.so)
    ;;
  windows)
    platform=win_amd64
    wheel=sherpa_onnx_core-$VERSION-py3-none-win_amd64.whl
    sha256=08890e9ea23ed2f59f81d5840c63b6b5cc8674d0f6e48d9069126a848aa0e022
    os=windows-x64
    required=(sherpa-onnx-c-api.dll sherpa-onnx-c-api.lib onnxruntime.dll)
    ;;
  *)
    echo "fetch-sherpa-onnx: unknown platform $1 (linux or windows)" >&2
    exit 2
    ;;
esac

cache="${DESKTOP_MATE_CACHE:-$HOME/.cache/desktop-mate}"
dir="$cache/sherpa-onnx/$VERSION/$os"
if [[ -f "$dir/.complete" ]]; then
  echo "$dir"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --platform "$platform" \
  -d "$work" "sherpa-onnx-core==$VERSION" >&2; then
  echo "fetch-sherpa-onnx: could not download sherpa-onnx-core $VERSION ($platform) from PyPI (offline?)" >&2
  exit 1
fi
if ! echo "$sha256  $work/$wheel" | sha256sum --check --status; then
  echo "fetch-sherpa-onnx: $wheel's sha256 is not $sha256" >&2
  exit 1
fi
python3 -m zipfile -e "$work/$wheel" "$work/wheel"
rm -rf "$dir"
mkdir -p "$dir"
# Only the libraries the C API needs (the C++ API's are left out).
for lib in libsherpa-onnx-c-api.so libonnxruntime.so sherpa-onnx-c-api.dll sherpa-onnx-c-api.lib onnxruntime.dll; do
  if [[ -f "$work/wheel/sherpa_onnx/lib/$lib" ]]; then
    cp "$work/wheel/sherpa_onnx/lib/$lib" "$dir/"
  fi
done
for lib in "${required[@]}"; do
  if [[ ! -f "$dir/$lib" ]]; then
    echo "fetch-sherpa-onnx: $wheel has no $lib" >&2
    exit 1
  fi
done
touch "$dir/.complete"
echo "$dir"
