#!/usr/bin/env bash
# Cross-builds desktop-mate for Windows (x86_64-pc-windows-gnu) from Linux with Debian's MinGW
# and packs it as a folder + zip that runs on a stock Windows 10/11:
#   desktop-mate.exe, llama.cpp's DLLs (libllama, libllama-common, ggml, ggml-base), ggml's
#   CPU modules (ggml-cpu-<level>.dll, chosen at run time) and MinGW's C++ runtime DLLs
#   (libstdc++-6, libgcc_s_seh-1, libwinpthread-1). Every DLL any of them imports is either in the folder or
#   part of Windows: checked with objdump -p, the build fails otherwise.
#
#   scripts/build-windows.sh             dev profile (what the Wine tests use)
#   scripts/build-windows.sh --release   release profile (what users get)
#
# Prints the zip's path on stdout. `scripts/windows-env.sh` holds the cross toolchain settings
# (also used by scripts/test-windows.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
cargo_profile=()
if [[ "${1:-}" == "--release" ]]; then
  profile=release
  cargo_profile=(--release)
fi

scripts/setup.sh --windows
# shellcheck source=scripts/windows-env.sh
source scripts/windows-env.sh

start=$SECONDS
windows_cargo build --locked --target "$WINDOWS_TARGET" "${cargo_profile[@]}" >&2
echo "build-windows: cargo build ($profile) took $((SECONDS - start)) s" >&2

target_dir="${CARGO_TARGET_DIR:-target}"
out="$target_dir/$WINDOWS_TARGET/$profile"
dist="$target_dir/dist/$profile"
name="desktop-mate-windows-x86_64"
folder="$dist/$name"
rm -rf "$folder" "$dist/$name.zip"
mkdir -p "$folder"

cp "$out/desktop-mate.exe" "$folder/"
shopt -s nullglob
dlls=("$out"/*.dll)
shopt -u nullglob
if ((${#dlls[@]} == 0)); then
  echo "build-windows: no llama.cpp DLLs next to $out/desktop-mate.exe (build.rs copies them)" >&2
  exit 1
fi
cp "${dlls[@]}" "$folder/"
for dll in "${WINDOWS_RUNTIME_DLLS[@]}"; do
  cp "$dll" "$folder/"
done
x86_64-w64-mingw32-strip --strip-unneeded "$folder"/*.exe "$folder"/*.dll

scripts/windows/check-imports.sh "$folder" >&2

(cd "$dist" && python3 -m zipfile -c "$name.zip" "$name")
echo "build-windows: $(du -sh "$folder" | cut -f1) in $folder, zip $(du -h "$dist/$name.zip" | cut -f1)" >&2
echo "$dist/$name.zip"
