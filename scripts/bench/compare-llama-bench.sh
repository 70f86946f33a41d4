#!/usr/bin/env bash
# Compares our engine with llama.cpp's own llama-bench on one GGUF and thread count:
#   llama-bench -p 256 -n 64 -t THREADS -r REPS   (scripts/build-llama-tools.sh builds it)
#   desktop-mate bench --speed-only --threads THREADS --repetitions REPS --json
# and prints prompt (pp256) and decode (tg64) tok/s side by side with the ratios ours/theirs.
# llama-bench's tg feeds random tokens without sampling; ours samples with the engine's chain
# (greedy + repeat penalty, the bench's settings; "sampling" = the settings' temperature etc.).
#
# usage: scripts/bench/compare-llama-bench.sh MODEL.gguf [THREADS (default 2)]
# env:   REPS (3), DESKTOP_MATE (a built binary; default: `cargo build` in $PROFILE, dev)
set -euo pipefail

model="${1:?usage: compare-llama-bench.sh MODEL.gguf [THREADS]}"
threads="${2:-2}"
reps="${REPS:-3}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

tools="$(scripts/build-llama-tools.sh)"
if [[ -z "${DESKTOP_MATE:-}" ]]; then
  profile="${PROFILE:-dev}"
  cargo build --quiet --profile "$profile" >&2
  dir="$profile"
  [[ "$profile" == dev ]] && dir=debug
  DESKTOP_MATE="${CARGO_TARGET_DIR:-$root/target}/$dir/desktop-mate"
fi

sdist_version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
# shellcheck source=scripts/lib/llama-source.sh
. scripts/lib/llama-source.sh
sys_version="$(llama_sys_version .)"
sys_src="$(llama_sys_source "$sys_version")"
sys_dir="${sys_src%/llama.cpp}"
sys_commit="$(sed -n 's/.*"sha1": "\(.\{7\}\).*/\1/p' "$sys_dir/.cargo_vcs_info.json" 2>/dev/null || true)"

load() { cut -d' ' -f1 /proc/loadavg; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "load before llama-bench: $(load)" >&2
"$tools/llama-bench" -m "$model" -p 256 -n 64 -t "$threads" -r "$reps" -o json \
  >"$work/llama-bench.json" 2>"$work/llama-bench.err" || {
  cat "$work/llama-bench.err" >&2
  exit 1
}
echo "load before desktop-mate bench: $(load)" >&2
"$DESKTOP_MATE" --model "$model" bench --speed-only --threads "$threads" \
  --repetitions "$reps" --json >"$work/ours.json" 2>"$work/ours.err" || {
  cat "$work/ours.err" >&2
  exit 1
}
echo "load after: $(load)" >&2

python3 - "$work/llama-bench.json" "$work/ours.json" <<EOF
import json, sys
theirs = json.load(open(sys.argv[1]))
ours = json.load(open(sys.argv[2]))
def test(n_prompt, n_gen):
    for t in theirs:
        if t["n_prompt"] == n_prompt and t["n_gen"] == n_gen:
            return t
    sys.exit(f"llama-bench gave no pp{n_prompt}/tg{n_gen} result")
pp, tg = test(256, 0), test(0, 64)
print(f"model: $model, {ours['n_threads']} threads, {$reps} runs each (mean)")
print(f"llama-bench: llama.cpp from the llama-cpp-python $sdist_version sdist (vendor/llama.cpp),"
      f" {pp.get('cpu_info', '?')}, backend {pp.get('backends', '?')}, n_batch {pp['n_batch']},"
      f" n_ubatch {pp['n_ubatch']}, flash_attn {pp.get('flash_attn', '?')}")
print(f"ours:        llama.cpp vendored by llama-cpp-sys-2 $sys_version (llama-cpp-rs $sys_commit),"
      f" n_batch {ours['llama_bench_like']['n_batch']}, flash_attn auto")
rows = [
    ("pp256 tok/s", pp["avg_ts"], pp["stddev_ts"], ours["pp256_tps"]),
    ("tg64 tok/s (greedy)", tg["avg_ts"], tg["stddev_ts"], ours["tg64_tps"]),
    ("tg64 tok/s (sampling)", tg["avg_ts"], tg["stddev_ts"], ours["tg64_sampling_tps"]),
]
print(f"{'':24}{'llama-bench':>18}{'ours':>10}{'ours/theirs':>13}")
for name, avg, sd, mine in rows:
    print(f"{name:24}{avg:>10.1f} ± {sd:<5.1f}{mine:>10.1f}{mine / avg:>12.2f}x")
EOF
