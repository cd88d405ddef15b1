//! The process's memory allocator: jemalloc, chosen by measurement (README, "Memory").
//!
//! glibc's malloc cost memory in two ways. Its arenas multiply with threads (up to eight per
//! core), so a busy server's RSS grew with the number of cores: todo0's MCP server at 256
//! sessions held 59 MB with two runtime threads and 78 MB with sixteen. And each Argon2id password
//! check in idp0 (19 MiB, OWASP's parameters) raised glibc's *dynamic* mmap threshold, after which
//! everything below 19 MiB came from a heap that was not given back (`up` went from ~46 MB idle to
//! ~70 MB after the first login); the cure was to re-execute the binary at start with a fixed
//! threshold in `GLIBC_TUNABLES`. Allocation was also a fifth of todo0's CPU per MCP call
//! (`malloc`, `free`, `malloc_consolidate` and arena-lock wake-ups in `perf`).
//!
//! jemalloc's options are compiled in (`JEMALLOC_SYS_WITH_MALLOC_CONF` in `.cargo/config.toml`):
//! four arenas whatever the core count, a background thread returning free pages to the system,
//! dirty pages kept at most a second. Measured on 2 cores (README): the same server at 256
//! sessions 64 MB with sixteen runtime threads; `get-todos` 0.88–0.98 of the reference against
//! 0.78–0.83 with glibc; `up` idle 10.6 MB of private memory against 8.4 MB, unchanged after logins;
//! mimalloc was as fast but held 53 MB idle. No start-up step is needed.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
