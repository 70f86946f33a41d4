#!/usr/bin/env bash
# One short session on a lent GPU machine (NVIDIA H100 80 GB, 16 cores, nvcc, cmake, ninja,
# python3 + numpy, no Rust, no internet): builds libggml-cuda.so there, then measures the app's
# load profiles on a 1.1 GB random Llama and forces a GPU out-of-memory to see the CPU retry.
#
#   here:   scripts/device/pack-gpu-run.sh            (fills gpu-run/, git-ignored, < 60 MiB)
#   there:  bash scripts/device/gpu-run.sh            (device tool: carry ["gpu-run"], timeout_s 600)
#   again:  bash scripts/device/gpu-run.sh --summary DIR   (only rewrites DIR/summary.txt)
#
# Results under $OUT: gpu-run.log (this log), steps.tsv (step, rc, seconds), nvidia-smi.txt,
# check-*.json, cuda-build.log, bench-<label>.json/.log, monitor-<label>.jsonl (the app's own
# NVML sampler), smi-<label>.csv (nvidia-smi, a cross-check), oom.log/oom.json, summary.txt.
#
# Timeline (all steps under `timeout`, the whole under GPU_RUN_BUDGET_S, default 530 s):
#   info -> [background: CUDA build | model generation] -> check -> Vulkan bench (while nvcc runs,
#   niced, so its CPU side competes: said in the summary) -> wait for CUDA (deadline
#   GPU_RUN_CUDA_DEADLINE_S, 330 s) -> performance, cpu_fallback, oom, balanced, auto.
# Without CUDA (build failed or too slow) the GPU profiles run on whatever `auto` finds (Vulkan).
# A second call on the still-warm machine reuses /tmp/dm-cuda-out and the model.
# GPU_RUN_ONLY="performance oom" runs only those labels (vulkan-performance performance
# cpu_fallback oom balanced auto).
set -uo pipefail # not -e: every step may fail, the rest still runs

ROOT=$(cd "$(dirname "$0")/../.." && pwd)

# ---------------------------------------------------------------- the summary (also standalone)
summarize() {
  python3 - "$1" <<'PY'
import csv, glob, json, os, statistics, sys

out = sys.argv[1]

def load_json(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        # bench prints one JSON object on stdout; take the last line that parses
        for line in reversed(text.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    pass
    except OSError:
        pass
    return None

def monitor(label):
    """Peak/baseline VRAM, GPU % and power from the app's monitor (JSON lines), else nvidia-smi."""
    vram, util, power, ram = [], [], [], []
    try:
        with open(os.path.join(out, f"monitor-{label}.jsonl")) as f:
            for line in f:
                try:
                    s = json.loads(line)
                except ValueError:
                    continue  # a line cut by the kill
                ram.append(s.get("ram_used_bytes") or 0)
                g = s.get("gpu") or {}
                if g.get("vram_used_bytes") is not None:
                    vram.append(g["vram_used_bytes"] / 2**20)
                if g.get("gpu_utilization_percent") is not None:
                    util.append(g["gpu_utilization_percent"])
                if g.get("power_watts") is not None:
                    power.append(g["power_watts"])
    except OSError:
        pass
    source = "monitor"
    if not vram:
        source = "nvidia-smi"
        try:
            with open(os.path.join(out, f"smi-{label}.csv")) as f:
                for row in csv.reader(f):
                    try:
                        vram.append(float(row[1])); util.append(float(row[3])); power.append(float(row[4]))
                    except (ValueError, IndexError):
                        continue
        except OSError:
            source = "none"
    r = {"source": source, "samples": len(vram)}
    if vram:
        r.update(vram_peak=max(vram), vram_base=vram[0])
    if util:
        r.update(util_mean=statistics.mean(util), util_peak=max(util))
    if power:
        r.update(power_mean=statistics.mean(power), power_peak=max(power))
    if ram:
        r.update(ram_peak_gib=max(ram) / 2**30, ram_base_gib=ram[0] / 2**30)
    return r

steps = {}
try:
    with open(os.path.join(out, "steps.tsv")) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) >= 3:
                steps[p[0]] = (p[1], p[2])
except OSError:
    pass

meta = {}
for path in glob.glob(os.path.join(out, "meta-*.txt")):
    label = os.path.basename(path)[5:-4]
    with open(path) as f:
        meta[label] = dict(l.strip().split("=", 1) for l in f if "=" in l)

def fmt(v, spec=".1f"):
    if v is None or v == "":
        return "-"
    try:
        return format(float(v), spec)
    except (TypeError, ValueError):
        return str(v)

order = ["cpu_fallback", "balanced", "performance", "auto", "vulkan-performance"]
labels = [l for l in order if l in meta] + sorted(l for l in meta if l not in order and l != "oom")
cols = ["label", "gpu module", "cpu", "ngl", "thr", "decode t/s", "prompt t/s", "pp256 t/s", "tg64 t/s",
        "TTFT warm ms", "TTFT cold ms", "load ms", "VRAM peak MiB (+run)", "GPU % mean/peak",
        "power W mean", "rc/secs"]
rows = []
notes = []
for label in labels:
    m = meta.get(label, {})
    b = load_json(os.path.join(out, f"bench-{label}.json")) or {}
    speed = load_json(os.path.join(out, f"bench-{label}-speed.json")) or {}
    if not b and speed:
        notes.append(f"{label}: the full bench did not finish; pp256/tg64 from --speed-only")
    mon = monitor(label)
    rc, secs = steps.get(f"bench-{label}", ("-", "-"))
    vram = "-"
    if "vram_peak" in mon:
        vram = f"{mon['vram_peak']:.0f} (+{mon['vram_peak'] - mon['vram_base']:.0f})"
    util = "-"
    if "util_mean" in mon:
        util = f"{mon['util_mean']:.0f}/{mon['util_peak']:.0f}"
    lb = b.get("llama_backends") or speed.get("llama_backends") or {}
    gpu_module = lb.get("gpu_module") if lb else None
    if not lb:
        gpu_module = "?" + (m.get("gpu_module") or m.get("gpu_backend", ""))  # what was asked for
    rows.append([
        label, gpu_module or "none", lb.get("cpu_variant") or "?",
        fmt(b.get("n_gpu_layers", speed.get("n_gpu_layers")), "g"),
        fmt(b.get("n_threads", speed.get("n_threads")), "g"),
        fmt(b.get("decode_tps")), fmt(b.get("prompt_tps")),
        fmt(b.get("pp256_tps", speed.get("pp256_tps"))), fmt(b.get("tg64_tps", speed.get("tg64_tps"))),
        fmt(b.get("ttft_first_ms")), fmt(b.get("ttft_cold_ms")), fmt(b.get("load_ms"), ".0f"),
        vram, util, fmt(mon.get("power_mean")), f"{rc}/{secs}",
    ])
    if b.get("threads_sweep"):
        best = max(b["threads_sweep"], key=lambda r: r.get("decode_tps") or 0)
        notes.append(f"{label}: auto threads {b.get('auto_threads')}, best decode {fmt(best.get('decode_tps'))} tok/s at {best.get('n_threads')} threads; "
                     f"ttft turn1 {fmt(b.get('ttft_turn1_ms'))} ms, warm-up {fmt(b.get('warmup_ms'))} ms, n_ctx {b.get('n_ctx')}")

widths = [max(len(str(r[i])) for r in [cols] + rows) for i in range(len(cols))]
lines = []
model = None
for label in labels:
    b = load_json(os.path.join(out, f"bench-{label}.json"))
    if b and b.get("model"):
        model = f"{b['model']} ({fmt((b.get('model_size_bytes') or 0) / 1e9, '.2f')} GB, {b.get('n_layers')} layers)"
        break
lines.append(f"desktop-mate on the GPU machine: {model or 'no bench finished'}")
lines.append("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
for r in rows:
    lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
lines.append("")
lines.append("decode = bench decode_tps (plain completion, greedy); prompt = prompt_tps of the first (cold) reply;")
lines.append("TTFT warm = ttft_first_ms (system prompt already in the KV cache), cold = ttft_cold_ms; VRAM: device-wide")
lines.append("used during the bench, (+run) over the first sample; GPU %/power: NVML over the whole bench, loads included.")
lines.append("gpu module/cpu: what the app loaded (bench's llama_backends; '?x' = asked for x, no report).")
lines.append("warm_start is off in these configs (every warm-up is a real prefill). cpu_fallback runs with GPU module none.")
if "vulkan-performance" in meta and meta["vulkan-performance"].get("during_cuda_build") == "yes":
    lines.append("vulkan-performance ran while nvcc was building CUDA (niced): its CPU side competed for cores.")
for n in notes:
    lines.append(n)

# out-of-memory run
oom = meta.get("oom")
if oom:
    lines.append("")
    lines.append("forced GPU out-of-memory: " + ", ".join(f"{k} {v}" for k, v in oom.items()))
    try:
        with open(os.path.join(out, "oom.log"), errors="replace") as f:
            log = f.read()
        hits = [l for l in log.splitlines() if "running on the CPU instead" in l]
        oom_lines = [l for l in log.splitlines() if "out of memory" in l.lower() or "failed to allocate" in l.lower() or "cudaMalloc" in l]
        lines.append("  CPU retry notice: " + (hits[0].strip()[:400] if hits else "NOT seen"))
        for l in oom_lines[:4]:
            lines.append("  " + l.strip()[:300])
    except OSError:
        lines.append("  no oom.log")
    j = load_json(os.path.join(out, "oom.json"))
    if j:
        lines.append(f"  reply after the retry: n_gpu_layers(plan) {j.get('n_gpu_layers')}, ttft {fmt(j.get('ttft_ms'))} ms, "
                     f"decode {fmt(j.get('decode_tps'))} tok/s, load {fmt(j.get('load_ms'), '.0f')} ms")
    mon = monitor("oom")
    if "vram_peak" in mon or "ram_peak_gib" in mon:
        lines.append(f"  VRAM peak {fmt(mon.get('vram_peak'), '.0f')} MiB, RAM used peak {fmt(mon.get('ram_peak_gib'))} GiB (from {fmt(mon.get('ram_base_gib'))} GiB)")

# checks, CUDA build and every step
for name in ("check-before-cuda", "check"):
    c = load_json(os.path.join(out, f"{name}.json"))
    if c:
        be = c.get("backends") or {}
        plan = c.get("plan") or {}
        lines.append(f"{name}: cpu variant {be.get('cpu_variant')} ({be.get('cpu_reason')}); gpu module {be.get('gpu_module')} "
                     f"({be.get('gpu_reason')}); plan {plan.get('profile')} ngl {plan.get('n_gpu_layers')} threads {plan.get('n_threads')}: {plan.get('reason')}"
                     + (f"; backends_error {c.get('backends_error')}" if c.get("backends_error") else ""))
lines.append("")
lines.append("steps (rc 124 = timed out, 99 = skipped):")
try:
    with open(os.path.join(out, "steps.tsv")) as f:
        for line in f:
            lines.append("  " + line.rstrip("\n").replace("\t", "  "))
except OSError:
    pass
text = "\n".join(lines) + "\n"
with open(os.path.join(out, "summary.txt"), "w") as f:
    f.write(text)
print(text)
PY
}

if [[ "${1:-}" == "--summary" ]]; then
  summarize "${2:?usage: gpu-run.sh --summary OUT_DIR}"
  exit $?
fi

# ---------------------------------------------------------------- settings
OUT="${OUT:-/tmp/gpu-run-out}"
mkdir -p "$OUT"
PAY="$ROOT/gpu-run"
BUDGET="${GPU_RUN_BUDGET_S:-530}"             # the whole script, seconds
CUDA_DEADLINE="${GPU_RUN_CUDA_DEADLINE_S:-330}" # give up on the CUDA build after this
RESERVE=15                                    # kept for the summary
ONLY="${GPU_RUN_ONLY:-}"

# The benchmark model: a Llama with Qwen2.5-0.5B/1.5B-like widths (dim 1536, 12 heads of 128,
# no GQA, FFN 4096), 20 layers, f16: 0.57 B parameters, 1.13 GB. Its header says it was trained
# for 1,048,576 tokens (the app's n_ctx maximum) so the out-of-memory step can ask for that much.
DIM=1536 LAYERS=20 HEADS=12 TYPE=f16 CTX_TRAIN=1048576
MODEL_DIR=/tmp/dm-model
MODEL="$MODEL_DIR/random-llama-${DIM}x${LAYERS}-${TYPE}.gguf"
# KV cache per token: K and V, each n_kv_heads * head_dim = DIM values of f16 (2 bytes), per
# layer: 2 * 20 * 1536 * 2 = 122,880 bytes = 120 KiB. At n_ctx 1,048,576: 120 GiB.
KV_PER_TOKEN=$((2 * LAYERS * DIM * 2))

RUN=/tmp/dm                      # the app with its libraries and modules side by side
SRC=/tmp/dm-ggml-src             # the ggml source (llama.cpp/ inside)
CUDA_BUILD=/tmp/dm-cuda-build    # kept between calls on a warm machine
CUDA_OUT=/tmp/dm-cuda-out
CFG=/tmp/dm-cfg
APP="$RUN/desktop-mate"
# bench: 3 turns, 16-token replies, one repetition of pp256/tg64. The thread sweep (1..physical
# cores, 64 tokens each) cannot be turned off and dominates on the CPU profile.
BENCH_FLAGS=(bench --json --turns 3 --max-tokens 16 --repetitions 1)

T0=$(date +%s)
exec 3>&1 # the log also goes to the original stdout, whatever a step redirects
LOG="$OUT/gpu-run.log"
STEPS="$OUT/steps.tsv"
: >"$STEPS"
now() { date +%s; }
elapsed() { echo $(($(now) - T0)); }
left() { echo $((BUDGET - $(elapsed))); }
log() { printf '[%s +%3ss] %s\n' "$(date +%H:%M:%S)" "$(elapsed)" "$*" | tee -a "$LOG" >&3; }
wanted() { [[ -z "$ONLY" || " $ONLY " == *" $1 "* ]]; }

BG_PIDS=()
cleanup() {
  # A background step runs `timeout` as the child of its subshell, in a process group of its
  # own: signal that timeout (it passes the signal on to its whole group), then the subshell.
  local pid child
  for pid in "${BG_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do kill "$child" 2>/dev/null; done
    kill "$pid" 2>/dev/null
  done
}
trap cleanup EXIT

# run_step NAME TIMEOUT CMD...: runs CMD under `timeout` (cut to what the budget has left),
# logs start/end and appends "NAME rc seconds" to steps.tsv. rc 99 = skipped for lack of time.
run_step() {
  local name=$1 limit=$2
  shift 2
  local have=$(($(left) - RESERVE))
  if ((have < 10)); then
    log "SKIP $name: the time budget is spent"
    printf '%s\t99\t0\n' "$name" >>"$STEPS"
    return 99
  fi
  ((limit > have)) && limit=$have
  ((limit < 1)) && limit=1
  log "START $name (timeout ${limit}s)"
  local start
  start=$(now)
  timeout -k 5 "$limit" "$@"
  local rc=$?
  local took=$(($(now) - start))
  if ((rc == 124 || rc == 137)); then
    log "TIMEOUT $name after ${took}s"
  else
    log "END $name rc=$rc ${took}s"
  fi
  printf '%s\t%s\t%s\n' "$name" "$rc" "$took" >>"$STEPS"
  return $rc
}

# have_time NAME SECONDS: false (and the step recorded as skipped) when less is left.
have_time() {
  if (($(left) - RESERVE < $2)); then
    log "SKIP $1: less than $2 s left"
    printf '%s\t99\t0\n' "$1" >>"$STEPS"
    return 1
  fi
}

log "gpu-run: budget ${BUDGET}s, CUDA deadline ${CUDA_DEADLINE}s, out $OUT, payload $PAY"
[[ -f "$PAY/MANIFEST.txt" ]] && head -n 3 "$PAY/MANIFEST.txt" | sed 's/^/  /' | tee -a "$LOG" >&3
[[ -f "$PAY/app.tar.xz" ]] || log "ERROR: $PAY/app.tar.xz is missing (scripts/device/pack-gpu-run.sh here, carry [\"gpu-run\"])"

# ---------------------------------------------------------------- a. the machine
{
  echo "== nvidia-smi"
  timeout 30 nvidia-smi
  echo "== nvidia-smi -q (memory, clocks, power)"
  timeout 30 nvidia-smi -q -d MEMORY,POWER,CLOCK,COMPUTE
  echo "== nvcc"
  timeout 20 nvcc --version || ls /usr/local/cuda*/bin/nvcc
  echo "== cmake / ninja / gcc"
  cmake --version | head -n1
  ninja --version
  gcc --version | head -n1
  echo "== nproc $(nproc)"
  lscpu
  echo "== memory"
  free -g
  cat /sys/fs/cgroup/memory.max 2>/dev/null
  echo "== python"
  python3 --version
  python3 -c 'import numpy; print("numpy", numpy.__version__)'
  echo "== glibc"
  ldd --version | head -n1
  echo "== vulkan"
  ldconfig -p | grep -E 'libvulkan|nvidia' | head -n 20
  ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null
  command -v vulkaninfo >/dev/null && timeout 20 vulkaninfo --summary
  echo "== disk"
  df -h /tmp
} >"$OUT/nvidia-smi.txt" 2>&1
timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,power.limit --format=csv |
  tee "$OUT/gpu.csv" | sed 's/^/  /' | tee -a "$LOG" >&3
log "driver/CUDA: $(timeout 20 nvidia-smi | grep -o 'Driver Version: [0-9.]*.*CUDA Version: [0-9.]*' | tr -s ' ')"
log "nproc $(nproc), $(python3 --version 2>&1), $(ldd --version | head -n1), RAM $(free -g | awk '/Mem:/ {print $2 " GiB, " $7 " GiB available"}')"

# ---------------------------------------------------------------- b. CUDA build | model (background)
cuda_lib() { find "$CUDA_OUT" -maxdepth 2 -name libggml-cuda.so -type f 2>/dev/null | head -n1; }
CUDA_PID=""
if [[ -n "$(cuda_lib)" ]]; then
  log "CUDA module already built: $(cuda_lib)"
elif tar -tJf "$PAY/app.tar.xz" dm/libggml-cuda.so >/dev/null 2>&1; then
  log "CUDA module packed with the app: no build"
elif [[ ! -f "$PAY/ggml-src.tar.gz" ]]; then
  log "ERROR: no $PAY/ggml-src.tar.gz: no CUDA build"
  printf 'cuda_build\t98\t0\n' >>"$STEPS"
else
  (
    if [[ ! -f "$SRC/llama.cpp/CMakeLists.txt" ]]; then
      rm -rf "$SRC" && mkdir -p "$SRC" && tar -xzf "$PAY/ggml-src.tar.gz" -C "$SRC"
    fi
    # CUDA_ARCHS: 90 (H100/H200) unless set.
    run_step cuda_build $((CUDA_DEADLINE - $(elapsed))) \
      bash "$ROOT/scripts/build-backend-module.sh" cuda --src "$SRC/llama.cpp" \
      --build "$CUDA_BUILD" --out "$CUDA_OUT" >"$OUT/cuda-build.log" 2>&1
  ) &
  CUDA_PID=$!
  BG_PIDS+=("$CUDA_PID")
  log "CUDA build started in the background (pid $CUDA_PID, CUDA_ARCHS=${CUDA_ARCHS:-90}), log cuda-build.log"
fi

MODEL_PID=""
if [[ -s "$MODEL" ]]; then
  log "model already there: $MODEL ($(stat -c %s "$MODEL") bytes)"
else
  (
    mkdir -p "$MODEL_DIR"
    run_step gen_model 180 env PYTHONPATH="$PAY/py" python3 "$ROOT/scripts/bench/make-bench-model.py" \
      "$MODEL.tmp" --dim $DIM --layers $LAYERS --heads $HEADS --type $TYPE --ctx $CTX_TRAIN \
      >"$OUT/gen-model.log" 2>&1 && mv -f "$MODEL.tmp" "$MODEL"
  ) &
  MODEL_PID=$!
  BG_PIDS+=("$MODEL_PID")
  log "generating the model in the background (pid $MODEL_PID)"
fi

# ---------------------------------------------------------------- c. the run folder
rm -rf "$RUN" /tmp/dm-pkg && mkdir -p "$RUN" /tmp/dm-pkg "$CFG"
run_step unpack_app 60 tar -xJf "$PAY/app.tar.xz" -C /tmp/dm-pkg
cp -a /tmp/dm-pkg/dm/. "$RUN/"
# Missing (or too old) system libraries: this machine's are used unless ldd says otherwise.
if ldd "$APP" "$RUN"/*.so* 2>&1 | grep -q 'not found'; then
  ldd "$APP" "$RUN"/*.so* 2>&1 | grep 'not found' | sort -u | sed 's/^/  /' | tee -a "$LOG" >&3
  export LD_LIBRARY_PATH="/tmp/dm-pkg/syslibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  log "using the packed system libraries (/tmp/dm-pkg/syslibs) for the above"
fi
ldd "$APP" "$RUN"/*.so* >"$OUT/ldd.txt" 2>&1
ls -la "$RUN" >"$OUT/run-folder.txt"
export XDG_CONFIG_HOME=/tmp/dm-home/config XDG_CACHE_HOME=/tmp/dm-home/cache XDG_DATA_HOME=/tmp/dm-home/data
export DESKTOP_MATE_BACKENDS_DIR="$RUN"
export RUST_LOG="${GPU_RUN_RUST_LOG:-info,llama-cpp-2=warn,llama_cpp_2=warn}"
unset DESKTOP_MATE_CPU_VARIANT DESKTOP_MATE_CONFIG
# GPU_RUN_CPU_VARIANT=haswell (say) forces the CPU module, e.g. after a SIGILL (rc 132).
[[ -n "${GPU_RUN_CPU_VARIANT:-}" ]] && export DESKTOP_MATE_CPU_VARIANT="$GPU_RUN_CPU_VARIANT"
mkdir -p /tmp/dm-home
run_step version 20 "$APP" --version >"$OUT/version.txt" 2>&1 || log "ERROR: the app does not start (see ldd.txt, version.txt)"
log "app: $(head -c 200 "$OUT/version.txt")"

# make_config NAME PROFILE [N_CTX]: config/mascot.ron with that profile (and context), warm_start
# off; prints its path.
make_config() {
  local file="$CFG/$1.ron"
  sed -e "s/^\([[:space:]]*\)profile: auto,/\1profile: $2,/" \
    -e "s/^\([[:space:]]*\)warm_start: true,/\1warm_start: false,/" \
    ${3:+-e "s/^\([[:space:]]*\)n_ctx: 4096,/\1n_ctx: $3,/"} \
    "$ROOT/config/mascot.ron" >"$file"
  grep -q "profile: $2," "$file" && grep -q 'warm_start: false,' "$file" &&
    { [[ -z "${3:-}" ]] || grep -q "n_ctx: $3," "$file"; } || {
    log "ERROR: could not set profile $2 ${3:+n_ctx $3} in config/mascot.ron"
    return 1
  }
  mkdir -p "$OUT/configs" && cp "$file" "$OUT/configs/"
  echo "$file"
}

wait_model() {
  if [[ -n "$MODEL_PID" ]]; then
    log "waiting for the model"
    wait "$MODEL_PID"
    MODEL_PID=""
  fi
  if [[ -s "$MODEL" ]]; then
    log "model: $MODEL ($(stat -c %s "$MODEL") bytes)"
  else
    log "ERROR: no model (gen-model.log): nothing to measure"
    return 1
  fi
}

MON_PIDS=()
start_monitors() { # LABEL
  timeout 400 "$APP" monitor --json --interval 0.5 >"$OUT/monitor-$1.jsonl" 2>"$OUT/monitor-$1.err" &
  MON_PIDS=($!)
  timeout 400 nvidia-smi --query-gpu=timestamp,memory.used,memory.total,utilization.gpu,power.draw \
    --format=csv,noheader,nounits -lms 500 >"$OUT/smi-$1.csv" 2>/dev/null &
  MON_PIDS+=($!)
  BG_PIDS+=("${MON_PIDS[@]}")
  sleep 1 # a baseline sample before the model loads
}
stop_monitors() {
  sleep 1
  for pid in "${MON_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  wait "${MON_PIDS[@]}" 2>/dev/null
  MON_PIDS=()
}

# check LABEL GPU_BACKEND: the app's report (hardware, backends, plan) with the model.
check() {
  run_step "$1" 60 env DESKTOP_MATE_GPU_BACKEND="$2" "$APP" --model "$MODEL" check --json \
    >"$OUT/$1.json" 2>"$OUT/$1.log"
  python3 - "$OUT/$1.json" <<'PY' 2>/dev/null | sed 's/^/  /' | tee -a "$LOG" >&3
import json, sys
c = json.load(open(sys.argv[1]))
b, p = c.get("backends") or {}, c.get("plan") or {}
print(f"cpu {b.get('cpu_variant')} | gpu {b.get('gpu_module')} ({b.get('gpu_reason')}) | plan {p.get('profile')} ngl {p.get('n_gpu_layers')} threads {p.get('n_threads')}: {p.get('reason')}")
if c.get("backends_error"): print("backends_error:", c["backends_error"])
PY
}

# bench LABEL PROFILE GPU_BACKEND TIMEOUT
bench() {
  local label=$1 profile=$2 gpu=$3 limit=$4 cfg
  wanted "$label" || return 0
  have_time "bench-$label" 25 || return 0
  cfg=$(make_config "$label" "$profile") || return 1
  {
    echo "profile=$profile"
    echo "gpu_backend=$gpu"
    echo "gpu_module=$(if [[ $gpu == none ]]; then echo none; elif [[ $gpu == auto ]]; then echo "auto:$AUTO_GPU"; else echo "$gpu"; fi)"
    echo "during_cuda_build=$([[ -n "$CUDA_PID" ]] && kill -0 "$CUDA_PID" 2>/dev/null && echo yes || echo no)"
  } >"$OUT/meta-$label.txt"
  start_monitors "$label"
  run_step "bench-$label" "$limit" env DESKTOP_MATE_GPU_BACKEND="$gpu" "$APP" --config "$cfg" \
    --model "$MODEL" "${BENCH_FLAGS[@]}" >"$OUT/bench-$label.json" 2>"$OUT/bench-$label.log"
  local rc=$?
  stop_monitors
  if ((rc != 0)); then
    tail -n 5 "$OUT/bench-$label.log" | sed 's/^/  | /' | tee -a "$LOG" >&3
  fi
  if ((rc == 124 || rc == 137)); then
    # The full bench ran out of time: at least llama-bench-like pp256/tg64.
    run_step "bench-$label-speed" 45 env DESKTOP_MATE_GPU_BACKEND="$gpu" "$APP" --config "$cfg" \
      --model "$MODEL" bench --json --speed-only --repetitions 1 \
      >"$OUT/bench-$label-speed.json" 2>"$OUT/bench-$label-speed.log"
  fi
  python3 - "$OUT/bench-$label.json" <<'PY' 2>/dev/null | sed "s/^/  $label: /" | tee -a "$LOG" >&3
import json, sys
b = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(f"ngl {b.get('n_gpu_layers')} threads {b.get('n_threads')} decode {b.get('decode_tps', 0):.1f} tok/s, prompt {b.get('prompt_tps', 0):.1f} tok/s, "
      f"pp256 {b.get('pp256_tps', 0):.1f}, tg64 {b.get('tg64_tps', 0):.1f}, ttft warm {b.get('ttft_first_ms', 0):.0f} ms, load {b.get('load_ms', 0):.0f} ms")
PY
  return $rc
}

# f. Forced out-of-memory: all layers on the GPU with a KV cache larger than its memory, so
# llama.cpp cannot create the context there; the engine (with_cpu_retry, src/llm/runtime/engine.rs)
# then loads again with 0 GPU layers and `chat` prints "warning: loading with 999 GPU layers
# failed (...); running on the CPU instead".
# n_ctx: the KV cache must exceed VRAM + 6 GiB: (VRAM MiB + 6144) MiB / 120 KiB, rounded up to
# 256. H100 80 GB (81,559 MiB): n_ctx 748,544 -> KV 748,544 x 120 KiB = 85.7 GiB > 79.6 GiB.
# The CPU retry then allocates (and zeroes) those 85.7 GiB in RAM: it fits in 128 GiB, so the
# step checks MemAvailable (and a cgroup limit) for KV + 8 GiB first, and skips otherwise (an
# OOM kill helps nobody). On an H200 (141 GB) even n_ctx 1,048,576 (120 GiB) fits the card: skipped.
oom() {
  wanted oom || return 0
  local vram_mib n_ctx kv avail limit usage cfg
  vram_mib=$(timeout 20 nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -n1 | tr -dc 0-9)
  vram_mib=${vram_mib:-0}
  n_ctx=$(((((vram_mib + 6144) * 1048576 + KV_PER_TOKEN - 1) / KV_PER_TOKEN + 255) / 256 * 256))
  ((n_ctx > 1048576)) && n_ctx=1048576
  kv=$((n_ctx * KV_PER_TOKEN))
  avail=$(($(awk '/MemAvailable/ {print $2}' /proc/meminfo) * 1024))
  # A container's memory limit (cgroup v2, else v1) counts, not only the machine's.
  limit=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || echo max)
  usage=$(cat /sys/fs/cgroup/memory.current 2>/dev/null || echo 0)
  if [[ ! "$limit" =~ ^[0-9]+$ && -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]]; then
    limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
    usage=$(cat /sys/fs/cgroup/memory/memory.usage_in_bytes 2>/dev/null || echo 0)
  fi
  if [[ "$limit" =~ ^[0-9]+$ ]] && ((limit < 1 << 60)) && ((limit - usage < avail)); then
    avail=$((limit - usage))
  fi
  {
    echo "vram_mib=$vram_mib"
    echo "n_ctx=$n_ctx"
    echo "kv_gib=$(awk -v k="$kv" 'BEGIN {printf "%.1f", k / 2^30}')"
    echo "ram_available_gib=$(awk -v a="$avail" 'BEGIN {printf "%.1f", a / 2^30}')"
  } >"$OUT/meta-oom.txt"
  log "oom: VRAM $vram_mib MiB -> n_ctx $n_ctx, KV $(awk -v k="$kv" 'BEGIN {printf "%.1f", k / 2^30}') GiB; RAM available $(awk -v a="$avail" 'BEGIN {printf "%.1f", a / 2^30}') GiB"
  if ((kv <= vram_mib * 1048576)); then
    log "SKIP oom: even n_ctx $n_ctx fits in this GPU's memory with this model"
    echo "skipped=KV fits in VRAM" >>"$OUT/meta-oom.txt"
    return 0
  fi
  if ((avail < kv + 8 * 1073741824)) && [[ "${GPU_RUN_OOM_RAM_CHECK:-1}" != 0 ]]; then
    log "SKIP oom: the CPU retry would need ~$((kv / 1073741824 + 8)) GiB of RAM"
    echo "skipped=not enough RAM for the CPU retry" >>"$OUT/meta-oom.txt"
    return 0
  fi
  have_time oom 40 || return 0
  cfg=$(make_config oom performance "$n_ctx") || return 1
  start_monitors oom
  # RUST_LOG=info: llama.cpp's own allocation failure lands in the log too.
  run_step oom 180 env DESKTOP_MATE_GPU_BACKEND="${GPU_FOR_OOM:-auto}" RUST_LOG=info "$APP" \
    --config "$cfg" --model "$MODEL" chat --prompt "Hello! How are you today?" --max-tokens 8 \
    --temperature 0 --seed 1 --json >"$OUT/oom.json" 2>"$OUT/oom.log"
  local rc=$?
  stop_monitors
  if grep -q "running on the CPU instead" "$OUT/oom.log"; then
    log "oom: CPU retry seen: $(grep -m1 -o 'loading with.*instead' "$OUT/oom.log" | cut -c1-300)"
  else
    log "oom: NO CPU retry notice (rc $rc); tail of oom.log:"
    tail -n 8 "$OUT/oom.log" | cut -c1-300 | sed 's/^/  | /' | tee -a "$LOG" >&3
  fi
}

# ---------------------------------------------------------------- d/e. measurements
if wait_model; then
  AUTO_GPU="vulkan"
  check check-before-cuda auto
  if [[ -f "$RUN/libggml-vulkan.so" ]]; then
    # Vulkan on the NVIDIA driver, while nvcc builds (the build is niced).
    bench vulkan-performance performance vulkan 90
  else
    log "no libggml-vulkan.so in the payload: no Vulkan bench"
  fi

  if [[ -n "$CUDA_PID" ]]; then
    log "waiting for the CUDA build (deadline +${CUDA_DEADLINE}s)"
    wait "$CUDA_PID"
    CUDA_PID=""
    tail -n 3 "$OUT/cuda-build.log" | sed 's/^/  | /' | tee -a "$LOG" >&3
  fi
  if [[ -n "$(cuda_lib)" ]]; then
    cp "$(cuda_lib)" "$RUN/"
  fi
  if [[ -f "$RUN/libggml-cuda.so" ]]; then
    GPU=cuda
    AUTO_GPU=cuda
    # The CUDA runtime and cuBLAS it links: from the toolkit when the loader does not know them.
    if ldd "$RUN/libggml-cuda.so" 2>&1 | grep -q 'not found'; then
      for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64; do
        [[ -d "$dir" ]] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$dir"
      done
      log "libggml-cuda.so: unresolved libraries, LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    fi
    log "CUDA module: $(stat -c %s "$RUN/libggml-cuda.so") bytes; unresolved: $(ldd "$RUN/libggml-cuda.so" 2>&1 | grep 'not found' | awk '{printf "%s ", $1}')"
    ldd "$RUN/libggml-cuda.so" >>"$OUT/ldd.txt" 2>&1
  else
    GPU=auto
    log "NO CUDA module (see cuda-build.log): the GPU profiles run on what auto finds"
  fi
  check check "$GPU"

  bench performance performance "$GPU" 75
  bench cpu_fallback cpu_fallback none 110
  oom
  bench balanced balanced "$GPU" 75
  bench auto auto auto 75
  # Vulkan again, after the build, when there is time for it and the first run was contended.
  if [[ -f "$RUN/libggml-vulkan.so" ]] && (($(left) > 120)) && wanted vulkan-performance; then
    mv -f "$OUT/bench-vulkan-performance.json" "$OUT/bench-vulkan-performance-during-build.json" 2>/dev/null
    bench vulkan-performance performance vulkan 75
  fi
fi

# ---------------------------------------------------------------- g. summary
log "summary (total $(elapsed)s)"
summarize "$OUT" >/dev/null
cat "$OUT/summary.txt" >&3
log "done in $(elapsed)s"
