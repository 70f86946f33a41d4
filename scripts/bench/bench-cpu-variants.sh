#!/usr/bin/env bash
# llama.cpp's CPU modules side by side on one model, in one run: the module the app picks for
# this CPU at run time ("auto"), then each named module forced with DESKTOP_MATE_CPU_VARIANT
# (haswell = the fixed x86-64-v3 build this project shipped before run-time selection; sse42 =
# the old-CPU path). Each row is `desktop-mate bench --speed-only` (pp256 / tg64, like
# llama-bench) in its own process, since modules load once per process.
#
# usage: scripts/bench/bench-cpu-variants.sh MODEL.gguf [VARIANT...]   (default: auto haswell sse42)
# env:   THREADS (2), REPS (3), DESKTOP_MATE (a built binary; default: `cargo build`, dev profile)
set -euo pipefail

model="${1:?usage: bench-cpu-variants.sh MODEL.gguf [VARIANT...]}"
shift
variants=("$@")
((${#variants[@]})) || variants=(auto haswell sse42)
threads="${THREADS:-2}"
reps="${REPS:-3}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
if [[ -z "${DESKTOP_MATE:-}" ]]; then
  cargo build --quiet >&2
  DESKTOP_MATE="${CARGO_TARGET_DIR:-$root/target}/debug/desktop-mate"
fi

printf '%-16s %-16s %12s %12s\n' "asked" "module" "pp256 tok/s" "tg64 tok/s"
for variant in "${variants[@]}"; do
  env=()
  [[ "$variant" != auto ]] && env=(DESKTOP_MATE_CPU_VARIANT="$variant")
  json="$(env "${env[@]}" DESKTOP_MATE_GPU_BACKEND=none "$DESKTOP_MATE" bench --speed-only --json \
    --threads "$threads" --repetitions "$reps" --model "$model" 2>/dev/null)" || {
    printf '%-16s failed\n' "$variant"
    continue
  }
  python3 - "$variant" "$json" <<'PY'
import json, sys
asked, report = sys.argv[1], json.loads(sys.argv[2])
module = (report.get("llama_backends") or {}).get("cpu_variant") or "?"
print(f"{asked:<16} {module:<16} {report['pp256_tps']:>12.1f} {report['tg64_tps']:>12.1f}")
PY
done
