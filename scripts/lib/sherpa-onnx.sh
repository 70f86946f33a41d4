# Sourced by the scripts that build desktop-mate for Linux (run, test, package, CI): the
# speech engine's prebuilt libraries (scripts/fetch-sherpa-onnx.sh, from PyPI) for the
# `sherpa-onnx` crate's build script, which links them and copies them next to the program.
# A plain `cargo build` without this variable makes that build script download them from
# GitHub instead. The Windows build sets its own folder (scripts/windows-env.sh).
# shellcheck shell=bash

if [[ -z "${SHERPA_ONNX_LIB_DIR:-}" ]]; then
  SHERPA_ONNX_LIB_DIR=$("$(dirname "${BASH_SOURCE[0]}")/../fetch-sherpa-onnx.sh")
  export SHERPA_ONNX_LIB_DIR
fi
