#!/usr/bin/env bash
# Fills gpu-run/ (git-ignored) with what scripts/device/gpu-run.sh needs on a lent GPU machine that has
# no Rust and no internet:
#   gpu-run/app.tar.xz      dm/: desktop-mate (stripped), libllama*/libggml* and the speech
#                           libraries (libsherpa-onnx-c-api, libonnxruntime) it links, the CPU
#                           variant modules libggml-cpu-*.so, libggml-vulkan.so (and
#                           libggml-cuda.so when one was built here); syslibs/: this machine's
#                           libstdc++/libgcc_s/libgomp/libasound/libvulkan, used there only
#                           when missing
#   gpu-run/ggml-src.tar.gz the trimmed llama.cpp/ggml source (scripts/pack-ggml-source.sh), to
#                           build libggml-cuda.so there (scripts/build-backend-module.sh cuda)
#   gpu-run/py/             pure-python gguf (llama.cpp's gguf-py, PyPI) + yaml + tqdm, for
#                           scripts/bench/make-bench-model.py (the device has numpy only)
#   gpu-run/MANIFEST.txt    what is inside, sizes, sha256, the glibc the binary needs
# The device tool carries it with: carry: ["gpu-run"] (at most 64 MiB in all, repo included).
#
# usage: scripts/device/pack-gpu-run.sh
# env:   CARGO_TARGET_DIR (default ~/.cache/desktop-mate/target), GPU_RUN_PROFILE (debug),
#        BACKEND_MODULES_DIR (~/.cache/desktop-mate/backend-modules), GGUF_VERSION (0.19.0),
#        GPU_RUN_NO_CUDA_SOURCE=1 to pack without the ggml source (no CUDA build there),
#        XZ_LEVEL (6; 9 if the total is over the limit)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/gpu-run"
target="${CARGO_TARGET_DIR:-$HOME/.cache/desktop-mate/target}"
profile="${GPU_RUN_PROFILE:-debug}"
bindir="$target/$profile"
bin="$bindir/desktop-mate"
modules="${BACKEND_MODULES_DIR:-$HOME/.cache/desktop-mate/backend-modules}"
gguf_version="${GGUF_VERSION:-0.19.0}"
limit_mib=60

say() { printf 'pack-gpu-run: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

[[ -x "$bin" ]] || die "no app binary at $bin: build it first (cargo build), or set CARGO_TARGET_DIR / GPU_RUN_PROFILE"
# A binary linked statically against llama.cpp (before the dynamic-backends feature) needs no
# libllama.so and cannot load GPU modules: refuse it, the run would measure nothing useful.
objdump -p "$bin" | grep -q 'NEEDED.*libllama' ||
  die "$bin does not link libllama.so: it is not a dynamic-backends build (rebuild it)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/stage"
mkdir -p "$stage/dm" "$stage/syslibs"

# 1. The binary and the llama.cpp shared libraries next to it (symlink chains kept).
strip -o "$stage/dm/desktop-mate" "$bin"
shopt -s nullglob
libs=("$bindir"/libllama*.so* "$bindir"/libggml*.so*)
shopt -u nullglob
[[ ${#libs[@]} -gt 0 ]] || die "no libllama*/libggml* shared libraries in $bindir"
for lib in "${libs[@]}"; do
  case "$(basename "$lib")" in
  libggml-cpu-*.so | libggml-cuda.so | libggml-vulkan.so | libggml-hip.so) continue ;; # modules: below
  esac
  cp -a "$lib" "$stage/dm/"
done

# The speech engine's libraries (sherpa-onnx's C API and onnxruntime): next to the binary in a
# package, in scripts/fetch-sherpa-onnx.sh's folder for a cargo build (SHERPA_ONNX_LIB_DIR).
for lib in libsherpa-onnx-c-api.so libonnxruntime.so; do
  for dir in "$bindir" "${SHERPA_ONNX_LIB_DIR:-}"; do
    if [[ -n "$dir" && -f "$dir/$lib" ]]; then
      cp -L "$dir/$lib" "$stage/dm/"
      break
    fi
  done
  [[ -f "$stage/dm/$lib" ]] || die "no $lib next to $bin nor in SHERPA_ONNX_LIB_DIR (. scripts/lib/sherpa-onnx.sh)"
done

# 2. The CPU variant modules: next to the binary, else the llama-cpp-sys-2 build whose
#    libggml-base.so is the one next to the binary (several stale build dirs may exist).
cpu_dir=""
if compgen -G "$bindir/libggml-cpu-*.so" >/dev/null; then
  cpu_dir="$bindir"
else
  # shellcheck disable=SC2045 # newest first; cargo paths have no spaces
  for dir in $(ls -dt "$bindir"/build/llama-cpp-sys-2-*/out 2>/dev/null); do
    compgen -G "$dir/backends/libggml-cpu-*.so" >/dev/null || continue
    base=$(find "$dir" -name 'libggml-base.so' -type f -print -quit 2>/dev/null || true)
    if [[ -n "$base" && -f "$bindir/libggml-base.so" ]] && ! cmp -s "$base" "$(realpath "$bindir/libggml-base.so")"; then
      say "skipping $dir/backends: its libggml-base.so differs from the binary's"
      continue
    fi
    cpu_dir="$dir/backends"
    break
  done
fi
[[ -n "$cpu_dir" ]] || die "no libggml-cpu-*.so modules next to $bin nor in $bindir/build/llama-cpp-sys-2-*/out/backends"
say "CPU modules from $cpu_dir"
cp -L "$cpu_dir"/libggml-cpu-*.so "$stage/dm/"

# 3. GPU modules built by scripts/build-backend-module.sh: the finished copy in its output folder
#    (with its .build-info stamp; not a half-built one in build-*/), newest first.
for name in vulkan cuda; do
  found=$(find "$modules" "$bindir" -maxdepth 2 -name "libggml-$name.so" -type f -printf '%T@ %p\n' 2>/dev/null | sort -rn |
    while read -r _ path; do [[ -f "$path.build-info" || "$(dirname "$path")" == "$bindir" ]] && echo "$path"; done |
    head -n1 || true)
  if [[ -n "$found" ]]; then
    say "GPU module: $found"
    cp -L "$found" "$stage/dm/"
  elif [[ "$name" == vulkan ]]; then
    say "warning: no finished libggml-vulkan.so in $modules/*/: the Vulkan steps will be skipped there (scripts/build-backend-module.sh vulkan)"
  fi
done

# Strip every regular shared object (keeps the dynamic symbol table).
find "$stage/dm" -name '*.so*' -type f -exec strip --strip-unneeded {} +

# 4. Fallback system libraries, used there only when its own are missing or too old.
# The regular files of dm/ (not the symlinks of a .so chain).
files() { find "$stage/dm" -maxdepth 1 -type f | sort; }
needed=$(files | while read -r f; do objdump -p "$f" | awk '/NEEDED/ {print $2}'; done | sort -u)
for lib in libstdc++.so.6 libgcc_s.so.1 libgomp.so.1 libasound.so.2 libvulkan.so.1; do
  if [[ "$lib" == libvulkan.so.1 ]] || grep -qx "$lib" <<<"$needed"; then
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ {print $NF; exit}')
    [[ -n "$path" ]] && cp -L "$path" "$stage/syslibs/$lib"
  fi
done

# Every NEEDED library must be in dm/ or be a system library.
missing=$(files | while read -r f; do
  LD_LIBRARY_PATH="$stage/dm" ldd "$f" 2>&1 | { grep 'not found' || true; } | sed "s|^|$(basename "$f"): |"
done | sort -u)
[[ -z "$missing" ]] || die "unresolved libraries:"$'\n'"$missing"
symbols=$(files | while read -r f; do objdump -T "$f" 2>/dev/null || true; done)
glibc=$({ grep -o 'GLIBC_2[0-9.]*' <<<"$symbols" || true; } | sort -uV | tail -n1)
glibcxx=$({ grep -o 'GLIBCXX_[0-9.]*' <<<"$symbols" || true; } | sort -uV | tail -n1)

rm -rf "$out"
mkdir -p "$out/py"
say "compressing the app ($(du -sh "$stage" | cut -f1)) with xz"
tar -C "$stage" -cf - dm syslibs | xz -T0 "-${XZ_LEVEL:-6}" >"$out/app.tar.xz"

# 5. The trimmed ggml source for the CUDA build there.
if [[ "${GPU_RUN_NO_CUDA_SOURCE:-0}" == 1 ]]; then
  say "GPU_RUN_NO_CUDA_SOURCE=1: no ggml source, no CUDA build there"
elif [[ -x "$root/scripts/pack-ggml-source.sh" || -f "$root/scripts/pack-ggml-source.sh" ]]; then
  bash "$root/scripts/pack-ggml-source.sh" "$out/ggml-src.tar.gz" >&2
  [[ -s "$out/ggml-src.tar.gz" ]] || die "scripts/pack-ggml-source.sh wrote no $out/ggml-src.tar.gz"
else
  die "scripts/pack-ggml-source.sh is missing (GPU_RUN_NO_CUDA_SOURCE=1 packs without CUDA)"
fi
# build-backend-module.sh must travel too: it is carried with the working tree (untracked but
# not ignored is enough); say so if it is not there.
[[ -f "$root/scripts/build-backend-module.sh" ]] ||
  say "warning: scripts/build-backend-module.sh is missing: the CUDA build there will fail"

# 6. Pure-python gguf and what it imports (yaml at import time; tqdm only for progress bars;
#    requests only for Hugging Face look-ups, never used here). Wheels are unpacked and any
#    compiled extension removed (PyYAML falls back to its pure-python code), so any CPython
#    3.10+ runs them.
python3 -m pip download --quiet --no-deps -d "$work/wheels" "gguf==$gguf_version" "pyyaml>=6" "tqdm>=4.27" >&2
for wheel in "$work"/wheels/*.whl; do
  python3 - "$wheel" "$out/py" <<'EOF'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        top = name.split("/")[0]
        if top in ("gguf", "yaml", "tqdm") and not name.endswith((".so", ".pyd")):
            z.extract(name, dest)
EOF
done
for pkg in gguf yaml tqdm; do [[ -f "$out/py/$pkg/__init__.py" ]] || die "gpu-run/py/$pkg is missing"; done
find "$out/py" -name '__pycache__' -type d -prune -exec rm -rf {} +

{
  echo "packed $(date -u +%FT%TZ) from $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?') ($(git -C "$root" status --porcelain 2>/dev/null | wc -l) changed files)"
  echo "binary: $bin ($(stat -c %s "$bin") bytes, $(date -u -r "$bin" +%FT%TZ)), needs $glibc, $glibcxx"
  echo "gguf-py: $gguf_version"
  echo "app.tar.xz:"
  tar -tvJf "$out/app.tar.xz" | awk '{printf "  %12s %s\n", $3, $6 ($7 ? " " $7 " " $8 : "")}'
  echo "sha256:"
  (cd "$out" && sha256sum app.tar.xz ggml-src.tar.gz 2>/dev/null | sed 's/^/  /')
} >"$out/MANIFEST.txt"

total=$(du -sb "$out" | cut -f1)
repo=$(cd "$root" && { git ls-files -z | xargs -0 stat -c %s 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}')
say "contents:"
du -ab "$out" | sort -n | awk '$1 > 100000 {printf "  %8.1f MiB  %s\n", $1 / 1048576, $2}' >&2
awk -v t="$total" -v r="${repo:-0}" -v g="$glibc" -v x="$glibcxx" 'BEGIN {
  printf "pack-gpu-run: gpu-run/ = %.1f MiB; tracked files ~%.1f MiB; with both ~%.1f MiB of the 64 MiB carry; binaries need %s, %s\n",
    t / 1048576, r / 1048576, (t + r) / 1048576, g, x }' >&2
if ((total > limit_mib * 1048576)); then
  die "gpu-run/ is over $limit_mib MiB: the carry limit is 64 MiB with the repository (try XZ_LEVEL=9e)"
fi
echo "$out"
