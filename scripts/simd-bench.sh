#!/usr/bin/env bash
# Shows what building llama.cpp with the CPU's SIMD is worth: builds scripts/simd-bench twice
# (generic x86-64 = SSE2 only, and x86-64-v3 = AVX2/FMA as .cargo/config.toml sets for the app)
# and prints prompt and decode tokens/s for both.
# Usage: scripts/simd-bench.sh MODEL.gguf [threads] [runs]
set -euo pipefail
model=$(realpath "${1:?usage: scripts/simd-bench.sh MODEL.gguf [threads] [runs]}")
shift
cd "$(dirname "$0")/simd-bench"
base="${SIMD_BENCH_TARGET_DIR:-$HOME/.cache/desktop-mate/simd-bench}"
for cpu in x86-64 x86-64-v3; do
  RUSTFLAGS="-C target-cpu=$cpu" CARGO_TARGET_DIR="$base/$cpu" \
    cargo build --release --quiet
  printf '%-10s ' "$cpu"
  "$base/$cpu/release/simd-bench" "$model" "$@"
done
