#!/usr/bin/env bash
# Packs the llama.cpp source vendored in the llama-cpp-sys-2 pinned in Cargo.lock into a small
# tarball, enough for scripts/build-backend-module.sh cuda|vulkan --src on a machine without
# Rust or ~/.cargo (the GPU machine: no internet, and a few MB to carry, not 40).
#
#   scripts/pack-ggml-source.sh OUT.tar.gz [--src LLAMA_CPP_DIR]
#   tar -xzf OUT.tar.gz && scripts/build-backend-module.sh cuda --src llama.cpp
#
# The tarball holds one folder, llama.cpp/, with what configuring the top-level CMakeLists with
# build-backend-module.sh's options reads: CMakeLists, cmake/, include/, src/ (libllama is
# configured, never built), vendor/ without its big header-only libraries (INTERFACE targets:
# cmake does not look for their files), and ggml/ with only the CUDA and Vulkan backends and the
# CPU backend's headers (ggml-base includes them; the CPU backend itself is cargo's job). Tests,
# docs, models, examples, tools, common/ and the other backends stay out. It also records the
# llama-cpp-sys-2 version in llama.cpp/.llama-cpp-sys-2-version, which names the cache folder.
# Prints the tarball's path and size on stderr.
set -euo pipefail

usage() {
  echo "usage: $0 OUT.tar.gz [--src LLAMA_CPP_DIR]" >&2
  exit 2
}

(($# >= 1)) || usage
tarball="$1"
shift
src=""
while (($# > 0)); do
  case "$1" in
    --src) (($# >= 2)) || usage; src="$2"; shift 2 ;;
    *) usage ;;
  esac
done
[[ "$tarball" == *.tar.gz || "$tarball" == *.tgz ]] || usage

repo="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/lib/llama-source.sh
. "$repo/scripts/lib/llama-source.sh"
version=$(llama_sys_version "$repo")
if [[ -z "$version" ]]; then
  echo "pack-ggml-source: no llama-cpp-sys-2 in $repo/Cargo.lock" >&2
  exit 1
fi
if [[ -z "$src" ]]; then
  src=$(llama_sys_source "$version")
  if [[ -z "$src" ]]; then
    echo "pack-ggml-source: llama-cpp-sys-2 $version's source is not in ${CARGO_HOME:-$HOME/.cargo}/registry/src; run cargo build first (or pass --src)" >&2
    exit 1
  fi
fi
if [[ ! -f "$src/CMakeLists.txt" || ! -f "$src/ggml/CMakeLists.txt" ]]; then
  echo "pack-ggml-source: $src is not a llama.cpp source" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/llama.cpp"
mkdir -p "$stage"

# Whole folders, then the pieces of ggml/src and vendor/ that are needed.
(
  cd "$src"
  files() {
    # top level: the CMake entry point and the license
    printf '%s\n' CMakeLists.txt LICENSE
    find cmake include src -type f
    # ggml: its CMake, public headers, the base library, the two GPU backends, and the CPU
    # backend's headers only
    printf '%s\n' ggml/CMakeLists.txt
    find ggml/cmake ggml/include ggml/src -type f | grep -E \
      '^ggml/(cmake|include)/|^ggml/src/[^/]+$|^ggml/src/ggml-(cuda|vulkan)/|^ggml/src/ggml-cpu/.*\.h$'
    # vendor: everything but the big header-only libraries
    find vendor -type f ! -name miniaudio.h ! -name json.hpp ! -name stb_image.h \
      ! -path 'vendor/cpp-httplib/*'
    printf '%s\n' vendor/cpp-httplib/CMakeLists.txt
  }
  files | sort -u | tar --no-recursion -cf - --files-from=-
) | tar -xf - -C "$stage"
printf '%s\n' "$version" >"$stage/.llama-cpp-sys-2-version"

mkdir -p "$(dirname "$tarball")"
tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner -cf - llama.cpp |
  gzip -9 -n >"$tarball.tmp"
mv -f "$tarball.tmp" "$tarball"
echo "pack-ggml-source: $tarball ($(du -h "$tarball" | cut -f1), llama-cpp-sys-2 $version)" >&2
