#!/usr/bin/env bash
# The project's one test command (README, .ci/run): unused dependencies, formatting, lints, then every test.
# Needs the Rust toolchain and the machine's PostgreSQL (127.0.0.1:5432, database `test`); installs
# Debian's chromium + chromium-driver for agent0's browser test when they are missing, and Node.js
# + npm for the Node interop tests (Python's MCP SDK and npm packages are installed by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "== installing chromium and chromium-driver (agent0's browser test)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q chromium chromium-driver \
    || { $sudo apt-get update -q && $sudo apt-get install -y -q chromium chromium-driver; }
fi
# The Node interop tests (crates/cli/tests/cli/node.rs) run Okta's client libraries from npm
# (installed by the test itself with `npm ci`); they need Node.js >= 20 and npm.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "== installing nodejs and npm (the Node interop tests)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q nodejs npm \
    || { $sudo apt-get update -q && $sudo apt-get install -y -q nodejs npm; }
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "error: the Node interop tests need Node.js >= 20, this is $(node --version);" \
    "install a newer one (e.g. from nodejs.org or NodeSource) and run again" >&2
  exit 1
fi
# Unused dependencies: cargo-machete reads the manifests and sources (no build, about 1 s) and
# fails on a dependency nothing uses. Installed once into ~/.cargo/bin (about 1 min on 2 cores)
# and kept for later runs on the machine. A dependency listed only to turn on a feature goes in
# the crate's `[package.metadata.cargo-machete] ignored = [...]`, with a comment saying why.
if ! cargo machete --version 2>/dev/null | grep -q "0\.9\.2"; then
  echo "== installing cargo-machete (the unused-dependency check; once per machine)"
  cargo install --locked cargo-machete --version 0.9.2
fi
echo "== cargo machete (unused dependencies)"
cargo machete
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
