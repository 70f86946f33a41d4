#!/usr/bin/env bash
# Installs the system packages desktop-mate needs to build, run and test on Debian/Ubuntu.
# Run as root it uses apt-get directly; otherwise it uses sudo (and says so). Packages already
# installed are skipped, so it is quick on later runs.
#
#   scripts/setup.sh             building and running on Linux (scripts/run.sh)
#   scripts/setup.sh --test      also what the tests need: Xvfb, a session bus, the Vulkan
#                                module's build tools (scripts/test.sh)
#   scripts/setup.sh --windows   also the Windows cross build (add --test for its Wine tests)
#   scripts/setup.sh --vulkan-module   what building llama.cpp's Vulkan module needs
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

# Each entry is a Debian/Ubuntu package, or `a|b` for a package whose name differs between
# releases (the first one the release has is installed). Checked against Debian 12/13 and
# Ubuntu 22.04/24.04.
PACKAGES=(
  # building llama.cpp (cmake) and its Rust bindings (bindgen needs libclang)
  cmake clang libclang-dev pkg-config
  # the window (winit on X11/Wayland) and input
  libx11-dev libxkbcommon-dev libxcursor-dev libxi-dev libxrandr-dev libwayland-dev libudev-dev
  # sound output (cpal through ALSA, which reaches PulseAudio/PipeWire through their plugins)
  libasound2-dev
  # Vulkan loader + Mesa drivers (lavapipe renders on the CPU when there is no GPU)
  libvulkan1 mesa-vulkan-drivers
  # the voice's phonemizer (GPL-3.0, run as its own program: docs/voice.md)
  espeak-ng
)
for arg in "$@"; do
  case "$arg" in
    --test | --vulkan-module)
      # building llama.cpp's Vulkan module (scripts/build-backend-module.sh vulkan: the tests
      # offload to it; scripts/gpu-module.sh builds it for a GPU): the shader compiler, the
      # Vulkan headers and SPIR-V headers
      PACKAGES+=(glslc libvulkan-dev spirv-headers)
      ;;&
    --vulkan-module) ;;
    --test)
      PACKAGES+=(
        # headless rendering for tests and screenshots
        xvfb xauth
        # the tray test: a private session bus (dbus-daemon) and dbus-send to read and click its
        # menu (one `dbus` package before Debian 12 / Ubuntu 23.04)
        "dbus-daemon|dbus" "dbus-bin|dbus"
        # scripts/fetch-embedding.sh converts the memory tests' embedding model in a venv
        python3-venv
        # the voice tests play into a private PulseAudio server's null sink (through ALSA's
        # pulse plugin, as on a desktop) and record its monitor with parecord
        pulseaudio pulseaudio-utils libasound2-plugins
        # the listening tests: instrument and percussion sounds that must not start an utterance
        sound-icons
        # the native Wayland tests: weston's headless backend and its screenshooter; sway
        # (headless, with a virtual pointer) and wev, a window that prints the clicks it gets
        weston sway wev
      )
      ;;
    --desktop-shot)
      PACKAGES+=(
        # scripts/dev/compositor-screenshot.sh: compositing managers, a wallpaper setter,
        # xdpyinfo, and ImageMagick to read the screen Xvfb writes
        picom xcompmgr hsetroot x11-utils imagemagick
      )
      ;;
    --windows)
      PACKAGES+=(
        # cross-compiling for Windows (scripts/build-windows.sh): gcc/g++ (-posix) and binutils
        gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64 mingw-w64-x86-64-dev
        # running the Windows build and its tests (scripts/test-windows.sh); 64-bit Wine only;
        # xdotool moves the pointer over the mascot running under Wine
        wine wine64 xdotool
      )
      ;;
    *)
      echo "setup: unknown option $arg (scripts/setup.sh [--test] [--windows] [--vulkan-module] [--desktop-shot])" >&2
      exit 2
      ;;
  esac
done

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for entry in "${PACKAGES[@]}"; do
  IFS='|' read -r -a names <<<"$entry"
  found=false
  for name in "${names[@]}"; do
    if installed "$name"; then
      found=true
      break
    fi
  done
  $found || missing+=("$entry")
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
"${SUDO[@]}" apt-get update -qq
# The name this release has, for each `a|b` entry (apt-cache knows the lists after the update).
chosen=()
for entry in "${missing[@]}"; do
  IFS='|' read -r -a names <<<"$entry"
  pick="${names[0]}"
  for name in "${names[@]}"; do
    if [[ -n "$(apt-cache policy "$name" 2>/dev/null | sed -n 's/^ *Candidate: \(.*\)/\1/p' | grep -v '(none)')" ]]; then
      pick="$name"
      break
    fi
  done
  chosen+=("$pick")
done
mapfile -t chosen < <(printf '%s\n' "${chosen[@]}" | sort -u)
echo "setup: installing system packages with apt-get: ${chosen[*]}" >&2
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${chosen[@]}" >&2
