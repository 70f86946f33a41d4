#!/usr/bin/env bash
# Puts a llama.cpp GPU module next to a build when this machine has a GPU the app can use, so a
# user with a GPU gets it without knowing about modules (scripts/run.sh calls this):
#   - an NVIDIA GPU and the CUDA toolkit (nvcc): the CUDA module, for this GPU's architecture;
#   - any other GPU with a Vulkan driver (Mesa's radv/anv, NVIDIA's own): the Vulkan module.
# No GPU, or only Mesa's CPU driver (lavapipe): nothing is built. The module is built once
# (several minutes) into ~/.cache/desktop-mate/backend-modules and copied next to the program;
# `desktop-mate check` then names it. DESKTOP_MATE_GPU_MODULE=none skips all of this.
#
#   scripts/gpu-module.sh FOLDER_OF_THE_PROGRAM
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$1"

if [[ "${DESKTOP_MATE_GPU_MODULE:-auto}" == none ]]; then
  exit 0
fi
kind=""
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 &&
  { command -v nvcc >/dev/null || [[ -n "${CUDACXX:-}" ]]; }; then
  kind=cuda
else
  # A Vulkan driver for a real device: an ICD other than lavapipe, and a render node (or
  # NVIDIA's control device).
  for icd in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json; do
    [[ -f "$icd" ]] || continue
    case "$(basename "$icd")" in lvp_icd*) continue ;; esac
    if compgen -G "/dev/dri/renderD*" >/dev/null || [[ -e /dev/nvidiactl ]]; then
      kind=vulkan
      break
    fi
  done
fi
if [[ -z "$kind" ]]; then
  exit 0
fi
for existing in "$dest"/libggml-cuda.so "$dest"/libggml-vulkan.so; do
  if [[ -f "$existing" ]]; then
    exit 0
  fi
done
echo "gpu-module: this machine has a GPU: building llama.cpp's $kind module once (several minutes)" >&2
if [[ "$kind" == vulkan ]]; then
  scripts/setup.sh --vulkan-module
fi
if module=$(CUDA_ARCHS="${CUDA_ARCHS:-native}" scripts/build-backend-module.sh "$kind"); then
  cp "$module" "$dest/"
  echo "gpu-module: $(basename "$module") is next to the program; 'desktop-mate check' shows it in use" >&2
else
  echo "gpu-module: the $kind module could not be built (see above); the mascot runs on the CPU" >&2
fi
