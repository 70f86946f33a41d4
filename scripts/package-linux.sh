#!/usr/bin/env bash
# Packs the Linux build as a folder + tarball that runs from anywhere: the executable, llama.cpp's
# shared libraries and CPU modules beside it (rpath $ORIGIN; the app picks the best module at
# start), a GPU module when scripts/gpu-module.sh put one next to the build, the icon, the
# desktop entry and install.sh (which puts it on the PATH and in the app menu).
#
#   scripts/package-linux.sh             the dev build (the one scripts/run.sh and test.sh use)
#   scripts/package-linux.sh --release   the release profile (thin LTO; a second build)
#
# Prints the tarball's path on stdout. A tarball rather than an AppImage: the AppImage tools are
# not in Debian's archive, and a folder with $ORIGIN libraries is what the Windows zip is too.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
cargo_profile=()
if [[ "${1:-}" == "--release" ]]; then
  profile=release
  cargo_profile=(--release)
fi
scripts/setup.sh
# shellcheck source=scripts/lib/sherpa-onnx.sh
. scripts/lib/sherpa-onnx.sh
cargo build --locked "${cargo_profile[@]}" >&2

target_dir="${CARGO_TARGET_DIR:-target}"
out="$target_dir/$profile"
dist="$target_dir/dist/$profile"
name="desktop-mate-linux-x86_64"
folder="$dist/$name"
rm -rf "$folder" "$dist/$name.tar.gz"
mkdir -p "$folder"

cp "$out/desktop-mate" "$folder/"
# llama.cpp's libraries (soname files: libllama.so.0, libggml.so.0, ...), ggml's modules and the
# voice's (sherpa-onnx's C API and onnxruntime, copied there by the sherpa-onnx crate).
shopt -s nullglob
libs=("$out"/lib*.so.0 "$out"/libggml-*.so "$out"/libsherpa-onnx-c-api.so "$out"/libonnxruntime.so)
if ((${#libs[@]} == 0)); then
  echo "package-linux: no llama.cpp libraries next to $out/desktop-mate (build.rs copies them)" >&2
  exit 1
fi
cp "${libs[@]}" "$folder/"
python3 scripts/lib/make-icon.py "$folder/desktop-mate.png" 256
cp scripts/install.sh "$folder/install.sh"
cp LICENSE* "$folder/" 2>/dev/null || true

# Every library the executable and the modules need is in the folder or a system library (the
# modules have no rpath of their own: the program has loaded libggml-base from the folder
# before it loads them, so the folder stands in for the library path here).
missing=$(cd "$folder" && for f in desktop-mate ./*.so*; do
  LD_LIBRARY_PATH="$PWD" ldd "$f" 2>/dev/null | awk '/not found/ {print $1}'
done | sort -u)
if [[ -n "$missing" ]]; then
  echo "package-linux: libraries not found for the packed files: $missing" >&2
  exit 1
fi

tar -C "$dist" -czf "$dist/$name.tar.gz" "$name"
echo "package-linux: $(du -sh "$folder" | cut -f1) in $folder, $(du -h "$dist/$name.tar.gz" | cut -f1) packed" >&2
echo "$dist/$name.tar.gz"
