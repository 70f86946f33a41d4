# Sourced by scripts/build-windows.sh and scripts/test-windows.sh: the settings that cross-build
# desktop-mate for Windows with Debian's MinGW (mingw-w64 packages, scripts/setup.sh --windows).
# shellcheck shell=bash

export WINDOWS_TARGET=x86_64-pc-windows-gnu
if ! rustup target list --installed | grep -qx "$WINDOWS_TARGET"; then
  echo "windows: adding the Rust target $WINDOWS_TARGET (rustup)" >&2
  rustup target add "$WINDOWS_TARGET" >&2
fi

# The -posix MinGW compilers: llama.cpp uses std::mutex/std::thread, which the default win32
# thread model of Debian's MinGW lacks. The linker must be the same compiler, so that the C++
# runtime the objects were compiled for is the one linked.
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc-posix
export CXX_x86_64_pc_windows_gnu=x86_64-w64-mingw32-g++-posix
export AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc-posix
# cargo for the Windows target: llama-cpp-sys-2 hands CMAKE_* variables to llama.cpp's CMake,
# here to force-include the header that fills gaps of Debian 12's MinGW (see the header). Only
# these cargo runs see them (a Linux build would get the flags too). They are no rebuild
# trigger: after editing the header, delete target/x86_64-pc-windows-gnu/*/build/llama-cpp-sys-2-*.
WINDOWS_COMPAT_H="$(pwd)/scripts/windows/mingw-compat.h"
# (A checkout path with spaces would need quoting inside the flags; not supported.)
# The voice's prebuilt Windows libraries (sherpa-onnx's C API + onnxruntime, from PyPI) for the
# sherpa-onnx crate, which links them and copies the DLLs next to the executable.
WINDOWS_SHERPA_ONNX_LIB_DIR=$("$(dirname "${BASH_SOURCE[0]}")/fetch-sherpa-onnx.sh" windows)
windows_cargo() {
  CMAKE_C_FLAGS="-include $WINDOWS_COMPAT_H" CMAKE_CXX_FLAGS="-include $WINDOWS_COMPAT_H" \
    SHERPA_ONNX_LIB_DIR="$WINDOWS_SHERPA_ONNX_LIB_DIR" cargo "$@"
}

# MinGW's C++ runtime, shipped next to the executable (llama.cpp's DLLs are C++); an array
# for the sourcing script (arrays cannot be exported).
gcc_dir=$(dirname "$(x86_64-w64-mingw32-g++-posix -print-libgcc-file-name)")
WINDOWS_RUNTIME_DLLS=(
  "$gcc_dir/libstdc++-6.dll"
  "$gcc_dir/libgcc_s_seh-1.dll"
  /usr/x86_64-w64-mingw32/lib/libwinpthread-1.dll
)
# Where Wine finds them when it runs test binaries from the build folder
# (and the voice's sherpa-onnx DLLs).
export WINEPATH="$gcc_dir;/usr/x86_64-w64-mingw32/lib;$WINDOWS_SHERPA_ONNX_LIB_DIR"
