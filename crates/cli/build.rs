//! Links the `secure-agent` binary with packed relative relocations (DT_RELR) where the C
//! library that will start it understands them (glibc 2.36 or later).
//!
//! A position-independent binary's relocations are applied at every start: as `.rela.dyn` they
//! are 1.7 MB of the binary, read through its mapping by every process that runs it, and counted
//! in each one's RSS. DT_RELR encodes the same relocations in about 20 KB (todo0's MCP server at
//! 256 sessions: 34–38 → 33 MB of RSS; README, "Memory"). A binary using it refuses to start on
//! an older glibc, so the flag is given only when building for the machine doing the build (not
//! cross-compiling), on GNU/Linux, with the toolchain's own linker (a configured one, such as
//! cargo-zigbuild's, may link against an older glibc than this machine's, which would then load
//! the binary without applying its relocations), when `getconf GNU_LIBC_VERSION` says 2.36 or
//! later. `SECURE_AGENT_NO_RELR=1` leaves it out (a binary built here to run on an older glibc).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SECURE_AGENT_NO_RELR");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let native = var("TARGET") == var("HOST");
    let gnu_linux = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    // Cargo sets RUSTC_LINKER for build scripts when a linker is configured for the target.
    let own_linker = var("RUSTC_LINKER").is_empty();
    if !native || !gnu_linux || !own_linker || var("SECURE_AGENT_NO_RELR") == "1" {
        return;
    }
    if glibc_version().is_some_and(|version| version >= (2, 36)) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The build machine's glibc version, e.g. `(2, 36)` from `glibc 2.36`.
fn glibc_version() -> Option<(u32, u32)> {
    let output = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let (major, minor) = text.trim().strip_prefix("glibc ")?.split_once('.')?;
    let minor = minor.split('.').next()?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}
