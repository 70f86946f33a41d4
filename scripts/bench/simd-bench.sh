#!/usr/bin/env bash
# What the CPU's SIMD is worth to llama.cpp: builds scripts/bench/simd-bench (llama.cpp alone, no Bevy)
# three ways and prints prompt and decode tokens/s for each:
#   sse       generic x86-64 with ggml's AVX/AVX2/FMA/F16C/BMI2 turned off (what a pre-2013 CPU runs)
#   x86-64    generic x86-64 rustflags, ggml's own defaults (which turn AVX2 on)
#   x86-64-v3 what the app was built with before run-time CPU modules (AVX2, FMA, F16C, BMI2)
#   native    -C target-cpu=native (llama.cpp's GGML_NATIVE: AVX-512 etc. where the CPU has them)
# Usage: scripts/bench/simd-bench.sh MODEL.gguf [threads] [runs]
# A model large enough to measure kernels: scripts/bench/make-bench-model.py (see docs/benchmarks.md).
set -euo pipefail
model=$(realpath "${1:?usage: scripts/bench/simd-bench.sh MODEL.gguf [threads] [runs]}")
shift
cd "$(dirname "$0")/simd-bench"
base="${SIMD_BENCH_TARGET_DIR:-$HOME/.cache/desktop-mate/simd-bench}"
run() {
  local name=$1
  shift
  env "$@" CARGO_TARGET_DIR="$base/$name" cargo build --release --quiet
  printf '%-10s ' "$name"
  "$base/$name/release/simd-bench" "$model" "${ARGS[@]}" || echo "failed (exit code $?)"
}
ARGS=("$@")
run sse RUSTFLAGS="-C target-cpu=x86-64" GGML_SSE42=OFF GGML_AVX=OFF GGML_AVX2=OFF \
  GGML_FMA=OFF GGML_F16C=OFF GGML_BMI2=OFF
run x86-64 RUSTFLAGS="-C target-cpu=x86-64"
run x86-64-v3 RUSTFLAGS="-C target-cpu=x86-64-v3"
run native RUSTFLAGS="-C target-cpu=native"
