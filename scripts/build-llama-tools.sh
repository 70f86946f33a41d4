#!/usr/bin/env bash
# Builds llama.cpp's own tools (llama-bench, llama-server, llama-simple) to measure the engine
# against (scripts/bench/compare-llama-bench.sh, docs/benchmarks.md "llama.cpp's own speed").
# llama-cpp-sys-2 vendors llama.cpp without its tools, so the full source comes from the
# llama-cpp-python sdist on PyPI (its vendor/llama.cpp). Everything stays in
# ~/.cache/desktop-mate/llama-tools/ (never commit it); a second run only prints the paths.
# x86-64-v3 (the haswell CPU module of our build; before run-time modules, the whole app), no OpenMP; GGML_NATIVE stays
# off: a VM may advertise instructions it cannot run (AMX here: SIGILL).
# Prints the folder of the binaries on stdout. With --cached-only it builds nothing: exit 3 when
# the tools are not built yet.
set -euo pipefail
cached_only=false
[[ "${1:-}" == "--cached-only" ]] && cached_only=true

VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
dir="${DESKTOP_MATE_LLAMA_TOOLS:-$HOME/.cache/desktop-mate/llama-tools}"
src="$dir/llama_cpp_python-$VERSION/vendor/llama.cpp"
build="$dir/build-$VERSION"
bin="$build/bin"
tools=(llama-bench llama-server llama-simple)

built() {
  for tool in "${tools[@]}"; do [[ -x "$bin/$tool" ]] || return 1; done
}

if ! built && $cached_only; then
  echo "build-llama-tools: not built yet in $build" >&2
  exit 3
fi
if ! built; then
  mkdir -p "$dir"
  sdist="$dir/llama_cpp_python-$VERSION.tar.gz"
  if [[ ! -f "$sdist" ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    # pip prepares the sdist's metadata (scikit-build-core in an isolated environment) before
    # it saves the file; nothing is compiled.
    if ! python3 -m pip download --quiet --no-deps --no-binary :all: -d "$work" \
      "llama-cpp-python==$VERSION" >&2; then
      echo "build-llama-tools: could not download llama-cpp-python $VERSION from PyPI" >&2
      exit 1
    fi
    mv "$work"/llama_cpp_python-"$VERSION".tar.gz "$sdist"
  fi
  if [[ ! -f "$src/CMakeLists.txt" ]]; then
    tar -xzf "$sdist" -C "$dir" "llama_cpp_python-$VERSION/vendor/llama.cpp"
  fi
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
    -DGGML_BMI2=ON -DGGML_SSE42=ON -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF \
    -DCMAKE_C_FLAGS="-march=x86-64-v3" -DCMAKE_CXX_FLAGS="-march=x86-64-v3" \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON >&2
  jobs="${JOBS:-$(nproc)}"
  nice -n 10 cmake --build "$build" --config Release -j "$jobs" --target "${tools[@]}" >&2
  built || {
    echo "build-llama-tools: the build did not produce ${tools[*]} in $bin" >&2
    exit 1
  }
fi
echo "$bin"
