//! Keeps glibc's heap from growing for good after an Argon2id hash. Each password check in idp0
//! allocates 19 MiB (OWASP's Argon2id parameters); glibc serves it with `mmap`, and on freeing it
//! raises its *dynamic* mmap threshold to that size, so from then on everything below 19 MiB
//! comes from the heap, which is not given back: `up` went from ~46 MB idle to ~70 MB after the
//! first login. A fixed threshold (the tunable `glibc.malloc.mmap_threshold`) turns the dynamic
//! adjustment off; measured: ~28 MB idle, ~36 MB after a journey. The tunable is read when the
//! process starts, so the binary re-executes itself once with it set (same PID, same arguments;
//! if that fails it simply runs as it is). Other C libraries ignore the variable.

/// The fixed mmap threshold: glibc's default starting value, 128 KiB.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TUNABLE: &str = "glibc.malloc.mmap_threshold=131072";

/// Re-executes this process with a fixed mmap threshold, unless it has one already.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn steady_heap() {
    use std::os::unix::process::CommandExt;

    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if current.contains("glibc.malloc.mmap_threshold")
        || std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let tunables = if current.is_empty() {
        TUNABLE.to_owned()
    } else {
        format!("{current}:{TUNABLE}")
    };
    // Only returns if the exec failed; then carry on unchanged.
    let _ = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", tunables)
        .exec();
}

/// Nothing to do for other C libraries.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn steady_heap() {}
