#!/usr/bin/env bash
# The project's one test command (README, .ci/run): formatting, lints, then every test.
# Needs only the Rust toolchain; PostgreSQL/Redis are not used yet.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
