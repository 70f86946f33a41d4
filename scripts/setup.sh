#!/usr/bin/env bash
# Installs the system packages desktop-mate needs to build, run and test on Debian/Ubuntu.
# Run as root it uses apt-get directly; otherwise it uses sudo (and says so). Packages already
# installed are skipped, so it is quick on later runs.
#
#   scripts/setup.sh             building, running and testing on Linux
#   scripts/setup.sh --windows   also the Windows cross build and its tests under Wine
set -euo pipefail
cd "$(dirname "$0")/.."

# The Rust toolchain pinned in rust-toolchain.toml (Bevy 0.20 needs 1.97.1 or newer). rustup
# would install it on first use anyway; doing it here makes a failure say what is wrong.
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
if ! command -v rustup >/dev/null; then
  echo "setup: rustup not found; install it from https://rustup.rs, then run this again" >&2
  exit 1
fi
if ! rustup toolchain list | grep -q "^$toolchain"; then
  echo "setup: installing Rust $toolchain (rust-toolchain.toml)" >&2
  if ! rustup toolchain install "$toolchain" --profile minimal -c clippy -c rustfmt >&2; then
    echo "setup: could not install Rust $toolchain with rustup (offline?); Bevy 0.20 needs Rust >= 1.97.1" >&2
    exit 1
  fi
fi

PACKAGES=(
  # building llama.cpp (cmake) and its Rust bindings (bindgen needs libclang)
  cmake clang libclang-dev pkg-config
  # the window (winit on X11/Wayland) and input
  libx11-dev libxkbcommon-dev libxcursor-dev libxi-dev libxrandr-dev libwayland-dev libudev-dev
  # Vulkan loader + Mesa drivers (lavapipe renders on the CPU when there is no GPU)
  libvulkan1 mesa-vulkan-drivers
  # building the Vulkan backend module (scripts/build-backend-module.sh vulkan): the shader
  # compiler, the Vulkan headers (vulkan.hpp) and SPIR-V headers (a CMake package ggml asks for)
  glslc libvulkan-dev spirv-headers
  # headless rendering for tests and screenshots
  xvfb xauth
  # the tray test: a private session bus (dbus-daemon) and dbus-send to read and click its menu
  dbus-daemon dbus-bin
)
if [[ "${1:-}" == "--windows" ]]; then
  PACKAGES+=(
    # cross-compiling for Windows (scripts/build-windows.sh): gcc/g++ (-posix) and binutils
    gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64 mingw-w64-x86-64-dev
    # running the Windows build and its tests (scripts/test-windows.sh); 64-bit Wine only;
    # xdotool moves the pointer over the mascot running under Wine
    wine wine64 xdotool
  )
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "setup: missing packages ${missing[*]}; install them with your package manager" >&2
  exit 1
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null; then
    echo "setup: run as root, or install: ${missing[*]}" >&2
    exit 1
  fi
  SUDO=(sudo)
fi
echo "setup: installing system packages with apt-get: ${missing[*]}" >&2
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
