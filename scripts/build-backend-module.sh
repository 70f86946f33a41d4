#!/usr/bin/env bash
# Builds one GPU backend module of ggml (libggml-vulkan.so or libggml-cuda.so) outside cargo, for
# the app to load at run time with ggml_backend_load() (llama-cpp-sys-2's dynamic-backends
# feature: GGML_BACKEND_DL=ON, BUILD_SHARED_LIBS=ON).
#
#   scripts/build-backend-module.sh vulkan|cuda [--src LLAMA_CPP_DIR] [--build DIR] [--out DIR]
#
# A module must match the libggml-base.so that cargo built (same source, same ggml version:
# ggml_backend_load() rejects a module whose GGML_BACKEND_API_VERSION differs, and any other
# mismatch in ggml's structs is silent memory corruption). So the source defaults to the
# llama.cpp vendored in the llama-cpp-sys-2 pinned in Cargo.lock, and the configure step is the
# one llama-cpp-sys-2's build.rs runs: the top-level llama.cpp CMakeLists (not ggml/ alone, whose
# defaults differ, e.g. GGML_CUDA_GRAPHS is ON only under llama.cpp) with the same switches.
# Only the module's target is built (plus the libggml-base it links against, which stays in the
# build folder: the app uses cargo's copy, soname libggml-base.so.0).
#
# Vulkan needs glslc, libvulkan-dev and spirv-headers (scripts/setup.sh). CUDA needs the CUDA
# toolkit (nvcc on PATH or CUDACXX); CUDA_ARCHS picks the GPU architectures (default 90, H100).
# On a machine without Rust or ~/.cargo, pass --src: the folder scripts/pack-ggml-source.sh
# packs. BACKEND_CMAKE_ARGS adds cmake options (split on spaces); JOBS sets the parallelism.
#
# Everything stays in ~/.cache/desktop-mate/backend-modules/<llama-cpp-sys-2 version>/ (never
# commit it); a second run, with the module there, newer than the source and built with the same
# options, only prints its path. Prints the module's path on stdout; logs go to stderr.
set -euo pipefail

usage() {
  echo "usage: $0 vulkan|cuda [--src LLAMA_CPP_DIR] [--build DIR] [--out DIR]" >&2
  exit 2
}

(($# >= 1)) || usage
kind="$1"
shift
case "$kind" in
  vulkan | cuda) ;;
  *) usage ;;
esac
src="" build="" out=""
while (($# > 0)); do
  case "$1" in
    --src) (($# >= 2)) || usage; src="$2"; shift 2 ;;
    --build) (($# >= 2)) || usage; build="$2"; shift 2 ;;
    --out) (($# >= 2)) || usage; out="$2"; shift 2 ;;
    -h | --help) usage ;;
    *) echo "build-backend-module: unknown argument $1" >&2; usage ;;
  esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"

# The llama-cpp-sys-2 version pinned in Cargo.lock names the cache folder; a packed source
# (scripts/pack-ggml-source.sh) carries it in a file, for machines without the repository's lock.
# shellcheck source=scripts/lib/llama-source.sh
. "$repo/scripts/lib/llama-source.sh"
version=$(llama_sys_version "$repo")
if [[ -n "$src" && -f "$src/.llama-cpp-sys-2-version" ]]; then
  packed=$(<"$src/.llama-cpp-sys-2-version")
  if [[ -n "$version" && "$packed" != "$version" ]]; then
    echo "build-backend-module: warning: $src is llama-cpp-sys-2 $packed, Cargo.lock pins $version" >&2
  fi
  version="${version:-$packed}"
fi
if [[ -z "$version" ]]; then
  echo "build-backend-module: no llama-cpp-sys-2 version (no Cargo.lock in $repo, no .llama-cpp-sys-2-version in --src)" >&2
  exit 1
fi

if [[ -z "$src" ]]; then
  src=$(llama_sys_source "$version")
  if [[ -z "$src" ]]; then
    echo "build-backend-module: llama-cpp-sys-2 $version's source is not in ${CARGO_HOME:-$HOME/.cargo}/registry/src; run cargo build first (or pass --src)" >&2
    exit 1
  fi
fi
if [[ ! -f "$src/CMakeLists.txt" || ! -d "$src/ggml/src/ggml-$kind" ]]; then
  echo "build-backend-module: $src is not a llama.cpp source with ggml/src/ggml-$kind" >&2
  exit 1
fi
src="$(cd "$src" && pwd)"

cache="${DESKTOP_MATE_BACKEND_MODULES:-$HOME/.cache/desktop-mate/backend-modules}/$version"
build="${build:-$cache/build-$kind}"
out="${out:-$cache}"
lib="libggml-$kind.so"

# ggml-vulkan uses Vulkan-Hpp types newer than Debian 12's headers (1.3.239 lacks
# VK_EXT_layer_settings, 1.3.261+): take the Vulkan and SPIR-V headers of Debian 13 (trixie)
# instead, unpacked into the cache, not installed (the system's libvulkan.so.1 stays the one
# linked: ggml resolves every Vulkan function at run time through the loader). apt fetches them
# from the Debian archive this machine's apt already uses, with its own lists in the cache.
# Prints the include folder.
newer_vulkan_headers() {
  local root="${DESKTOP_MATE_BACKEND_MODULES:-$HOME/.cache/desktop-mate/backend-modules}/vulkan-headers-trixie"
  if [[ -f "$root/usr/include/vulkan/vulkan.hpp" ]]; then
    echo "$root/usr/include"
    return
  fi
  local uri
  # shellcheck disable=SC2016 # apt's format fields, not shell
  uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(LABEL)' 2>/dev/null |
    awk '$3 == "Debian" && $2 !~ /-/ { print $1; exit }')
  if [[ -z "$uri" ]] || ! command -v dpkg-deb >/dev/null; then
    echo "build-backend-module: the Vulkan headers in /usr/include are too old for ggml-vulkan (need 1.3.261 or newer); install newer ones or set VULKAN_SDK" >&2
    exit 1
  fi
  echo "build-backend-module: Debian 12's Vulkan headers are too old; unpacking trixie's libvulkan-dev and spirv-headers into $root" >&2
  local apt="$root.apt"
  rm -rf "$apt" "$root.tmp"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs" "$root.tmp"
  : >"$apt/status"
  echo "deb $uri trixie main" >"$apt/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=-
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "Dir::State::Status=$apt/status"
    -o APT::Sandbox::User=root)
  if ! apt-get "${opts[@]}" -qq update >&2 ||
    ! (cd "$apt/debs" && apt-get "${opts[@]}" -qq download libvulkan-dev spirv-headers >&2); then
    echo "build-backend-module: could not download trixie's libvulkan-dev and spirv-headers with apt-get" >&2
    exit 1
  fi
  local deb
  for deb in "$apt/debs"/*.deb; do
    dpkg-deb -x "$deb" "$root.tmp"
  done
  rm -rf "$root" "$apt"
  mv "$root.tmp" "$root"
  echo "$root/usr/include"
}

# What build.rs sets (LLAMA_BUILD_*, LLAMA_CURL, GGML_NATIVE, GGML_OPENMP, BUILD_SHARED_LIBS,
# GGML_BACKEND_DL); Release like a cargo release build. GGML_CPU=OFF: the CPU backend is cargo's
# job, and nothing in ggml-base or the GPU modules depends on it. The build number and commit are
# fixed to what a source without git gets (cargo's registry copy), so an extracted copy inside
# some other git checkout does not pick up that checkout's commit. RUNPATH $ORIGIN instead of
# the build folder: the module finds libggml-base.so.0 beside it (the app has loaded it anyway),
# never the copy in this build folder.
# shellcheck disable=SC2016 # $ORIGIN is for the dynamic linker
args=(
  -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN'
  -DBUILD_SHARED_LIBS=ON -DGGML_BACKEND_DL=ON
  -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF -DGGML_CPU=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_CURL=OFF
  -DLLAMA_BUILD_NUMBER=0 -DLLAMA_BUILD_COMMIT=unknown
)
case "$kind" in
  vulkan)
    args+=(-DGGML_VULKAN=ON)
    missing=()
    command -v glslc >/dev/null || missing+=("glslc")
    [[ -f /usr/include/vulkan/vulkan.hpp || -n "${VULKAN_SDK:-}" ]] || missing+=("libvulkan-dev")
    if [[ -z "${VULKAN_SDK:-}" ]] && ! compgen -G "/usr/share/cmake/SPIRV-Headers/*Config.cmake" \
      >/dev/null && ! compgen -G "/usr/lib/*/cmake/SPIRV-Headers/*Config.cmake" >/dev/null; then
      missing+=("spirv-headers")
    fi
    if ((${#missing[@]} > 0)); then
      echo "build-backend-module: the Vulkan module needs ${missing[*]} (scripts/setup.sh installs them)" >&2
      exit 1
    fi
    if [[ -z "${VULKAN_SDK:-}" ]] && ! grep -q VK_EXT_layer_settings /usr/include/vulkan/vulkan_core.h; then
      headers=$(newer_vulkan_headers)
      args+=("-DVulkan_INCLUDE_DIR=$headers")
    fi
    ;;
  cuda)
    # One architecture by default (sm_90, H100) and only the default flash-attention quant
    # pairs (GGML_CUDA_FA_ALL_QUANTS stays OFF): each more multiplies the nvcc time. NCCL off
    # like build.rs: one GPU, and a machine without NCCL.
    args+=(-DGGML_CUDA=ON -DGGML_CUDA_NCCL=OFF -DGGML_CUDA_FA_ALL_QUANTS=OFF
      "-DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHS:-90}")
    if [[ -z "${CUDACXX:-}" ]] && ! command -v nvcc >/dev/null; then
      for dir in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
        if [[ -x "$dir/nvcc" ]]; then
          export CUDACXX="$dir/nvcc"
          break
        fi
      done
      if [[ -z "${CUDACXX:-}" ]]; then
        echo "build-backend-module: nvcc not found; put the CUDA toolkit's bin on PATH or set CUDACXX" >&2
        exit 1
      fi
    fi
    ;;
esac
if [[ -n "${BACKEND_CMAKE_ARGS:-}" ]]; then
  read -r -a extra <<<"$BACKEND_CMAKE_ARGS"
  args+=("${extra[@]}")
fi

# The options and the source a module was built with, kept next to it: a change to either (say
# CUDA_ARCHS) means a rebuild.
stamp="$out/$lib.build-info"
info="$(printf 'llama-cpp-sys-2 %s\nsource %s\n' "$version" "$src"; printf '%s\n' "${args[@]}")"
if [[ -f "$out/$lib" && -f "$stamp" && "$(<"$stamp")" == "$info" ]] &&
  [[ -z "$(find "$src" -newer "$out/$lib" -print -quit)" ]]; then
  echo "$out/$lib"
  exit 0
fi

# Ninja when there is one (the CUDA build has hundreds of template instances); a build folder
# configured with another generator is started over, cmake refuses to switch.
generator="Unix Makefiles"
command -v ninja >/dev/null && generator="Ninja"
if [[ -f "$build/CMakeCache.txt" ]] &&
  ! grep -qx "CMAKE_GENERATOR:INTERNAL=$generator" "$build/CMakeCache.txt"; then
  echo "build-backend-module: $build was configured with another generator; starting it over" >&2
  rm -rf "$build"
fi
# Same for a build folder of another source: cmake refuses that too.
if [[ -f "$build/CMakeCache.txt" ]] &&
  ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$src" "$build/CMakeCache.txt"; then
  echo "build-backend-module: $build was configured for another source; starting it over" >&2
  rm -rf "$build"
fi

echo "build-backend-module: building $lib from $src (llama-cpp-sys-2 $version) in $build" >&2
mkdir -p "$build" "$out"
cmake -S "$src" -B "$build" -G "$generator" "${args[@]}" >&2
jobs="${JOBS:-$(nproc)}"
nice -n 10 cmake --build "$build" --config Release -j "$jobs" --target "ggml-$kind" >&2

# MODULE libraries get no version suffix; they land in the runtime output folder (bin/).
built="$build/bin/$lib"
if [[ ! -f "$built" ]]; then
  echo "build-backend-module: the build did not produce $built" >&2
  exit 1
fi
# Copy, then rename: a half-written module in $out would look up to date to the next run.
cp "$built" "$out/$lib.tmp"
mv -f "$out/$lib.tmp" "$out/$lib"
printf '%s\n' "$info" >"$stamp"
echo "$out/$lib"
