#!/usr/bin/env bash
# What `scripts/run.sh check` does on a user's machine with an NVIDIA GPU, after its cargo build,
# run on a lent GPU machine (no Rust, no internet, so the build is the one packed here):
#   1. a fresh build folder: the program and its libraries, no GPU module beside it;
#   2. llama-cpp-sys-2's llama.cpp source where cargo leaves it ($CARGO_HOME/registry/src/...);
#   3. scripts/gpu-module.sh FOLDER, exactly as run.sh calls it: it must see the GPU and nvcc,
#      build the CUDA module for this GPU (CUDA_ARCHS=native) and put it beside the program;
#   4. `desktop-mate check` (text, as the user reads it, and --json), then a short chat on
#      stories260K to show layers on the GPU; gpu-module.sh again: nothing rebuilt.
#
#   here:   scripts/device/pack-gpu-run.sh && cp ../shared/models/stories260K.gguf gpu-run/
#   there:  bash scripts/device/run-check.sh     (device tool: carry ["gpu-run"], timeout_s 560)
#
# Results under $OUT: run-check.log (everything), check.txt, check.json, chat.json, gpu-module.log.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PAY="$ROOT/gpu-run"
OUT="${OUT:-/tmp/run-check-out}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run-check.log") 2>&1
start=$(date +%s)
say() { printf '[%4ss] %s\n' "$(($(date +%s) - start))" "$*"; }

prog=/tmp/dm-build/debug
rm -rf /tmp/dm-build /tmp/dm-pkg && mkdir -p "$prog" /tmp/dm-pkg
tar -xJf "$PAY/app.tar.xz" -C /tmp/dm-pkg || { say "ERROR: cannot unpack $PAY/app.tar.xz"; exit 1; }
cp -a /tmp/dm-pkg/dm/. "$prog/"
# A fresh cargo build has no GPU module beside the program.
rm -f "$prog"/libggml-cuda.so "$prog"/libggml-vulkan.so
# System libraries this machine lacks (libasound on a server image, say): the packed ones, and
# only those (the machine's own libstdc++ may be newer than the packed one).
mkdir -p /tmp/dm-syslibs
ldcache=$(ldconfig -p) # once: `ldconfig -p | grep -q` can fail on SIGPIPE under pipefail
for lib in /tmp/dm-pkg/syslibs/*; do
  name=$(basename "$lib")
  if ! grep -q "^[[:space:]]*$name " <<<"$ldcache"; then
    ln -sf "$lib" "/tmp/dm-syslibs/$name"
    say "$name: not on this machine, the packed one is used"
  fi
done
export LD_LIBRARY_PATH="/tmp/dm-syslibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ldd "$prog/desktop-mate" | grep 'not found' && say "ERROR: unresolved libraries above"

version=$(awk '/^name = "llama-cpp-sys-2"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$ROOT/Cargo.lock")
export CARGO_HOME=/tmp/dm-cargo
crate="$CARGO_HOME/registry/src/index.crates.io-1949cf8c6b5b557f/llama-cpp-sys-2-$version"
mkdir -p "$crate"
tar -xzf "$PAY/ggml-src.tar.gz" -C "$crate" || { say "ERROR: cannot unpack the ggml source"; exit 1; }
say "llama-cpp-sys-2 $version's llama.cpp at $crate/llama.cpp"

# A user's CUDA toolkit puts nvcc on the PATH.
for dir in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
  [[ -x "$dir/nvcc" ]] && ! command -v nvcc >/dev/null && export PATH="$PATH:$dir"
done
nvidia-smi -L
nvcc --version | tail -n 2
export XDG_CONFIG_HOME=/tmp/dm-home/config XDG_CACHE_HOME=/tmp/dm-home/cache XDG_DATA_HOME=/tmp/dm-home/data
unset DESKTOP_MATE_BACKENDS_DIR DESKTOP_MATE_GPU_BACKEND DESKTOP_MATE_CPU_VARIANT

say "scripts/gpu-module.sh $prog (as run.sh calls it)"
t0=$(date +%s)
(cd "$ROOT" && timeout 420 bash scripts/gpu-module.sh "$prog") >"$OUT/gpu-module.log" 2>&1
rc=$?
tail -n 4 "$OUT/gpu-module.log"
say "gpu-module.sh: rc $rc in $(($(date +%s) - t0)) s; beside the program: $(cd "$prog" && ls libggml-cuda.so libggml-vulkan.so 2>/dev/null | tr '\n' ' ')"

if [[ -f "$prog/libggml-cuda.so" ]] && ldd "$prog/libggml-cuda.so" | grep -q 'not found'; then
  # A toolkit installed by NVIDIA's packages registers its libraries with ldconfig; this image's does not.
  for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [[ -d "$dir" ]] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$dir"
  done
  say "libggml-cuda.so: CUDA runtime not registered with ldconfig; LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
fi
ldd "$prog/libggml-cuda.so" 2>&1 | grep -E 'cuda|cublas|not found'
say "desktop-mate check"
"$prog/desktop-mate" check >"$OUT/check.txt" 2>"$OUT/check.err"
say "check: rc $?"
cat "$OUT/check.txt"
"$prog/desktop-mate" --model "$PAY/stories260K.gguf" check --json >"$OUT/check.json" 2>>"$OUT/check.err"
say "check --json: rc $?"
python3 - "$OUT/check.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
b, p = c.get("backends") or {}, c.get("plan") or {}
print(f"backends: cpu {b.get('cpu_variant')} | gpu {b.get('gpu_module')} ({b.get('gpu_reason')})")
print(f"plan: {p.get('profile')} ngl {p.get('n_gpu_layers')} threads {p.get('n_threads')}: {p.get('reason')}")
PY
say "chat on stories260K"
timeout 60 "$prog/desktop-mate" --model "$PAY/stories260K.gguf" chat --prompt "Once upon a time" \
  --max-tokens 32 --temperature 0 --seed 1 --json >"$OUT/chat.json" 2>"$OUT/chat.err"
say "chat: rc $?"
head -c 1500 "$OUT/chat.json"
echo
grep -iE 'cuda|offload|gpu' "$OUT/chat.err" | head -n 12

t0=$(date +%s)
(cd "$ROOT" && bash scripts/gpu-module.sh "$prog") >"$OUT/gpu-module-again.log" 2>&1
say "gpu-module.sh again: rc $? in $(($(date +%s) - t0)) s (module already there)"
say "done"
