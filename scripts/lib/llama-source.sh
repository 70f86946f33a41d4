# shellcheck shell=bash
# Sourced (not run) by the scripts that need llama.cpp exactly as llama-cpp-sys-2 vendors it.

# llama_sys_version REPO: the llama-cpp-sys-2 version REPO/Cargo.lock pins (empty without one).
llama_sys_version() {
  [[ -f "$1/Cargo.lock" ]] || return 0
  awk '/^name = "llama-cpp-sys-2"$/ { getline; gsub(/"/, "", $3); print $3; exit }' \
    "$1/Cargo.lock"
}

# llama_sys_source VERSION: that crate's llama.cpp folder in cargo's registry (empty when cargo
# has not fetched it yet).
llama_sys_source() {
  local dir found=""
  for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"llama-cpp-sys-2-$1"/llama.cpp; do
    [[ -f "$dir/CMakeLists.txt" ]] && found="$dir"
  done
  printf '%s' "$found"
}
