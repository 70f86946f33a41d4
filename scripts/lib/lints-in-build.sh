# Sourced by .ci/run: every cargo build of this crate also runs clippy with -D warnings.
# clippy-driver becomes the compiler of the workspace crate (RUSTC_WORKSPACE_WRAPPER, the same
# wrapper `cargo clippy` sets; CLIPPY_ARGS is how cargo-clippy hands it its flags). The
# dependencies are compiled once, by rustc, for the tests and the binaries; a separate
# `cargo clippy` would compile the whole dependency tree a second time in check mode (33 min
# of a cold 2-core CI run). Lint errors fail the build step that meets them.
# shellcheck shell=bash
RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
