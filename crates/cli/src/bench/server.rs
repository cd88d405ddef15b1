//! The server under test: `secure-agent todo-mcp` as a child process (so its memory and CPU are
//! its own), its endpoint read from the startup banner, and its peak RSS and CPU time read from
//! `/proc`. Also which filesystem a directory lives on, to tell a disk from tmpfs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How to start the child.
pub(crate) struct SpawnOptions<'a> {
    pub(crate) data_dir: &'a Path,
    pub(crate) issuer: &'a str,
    pub(crate) resource: &'a str,
    pub(crate) database: Option<&'a str>,
    pub(crate) stateless: bool,
}

/// A running `todo-mcp` child; killed if dropped without [`ChildServer::stop`].
pub(crate) struct ChildServer {
    child: Child,
    pid: u32,
    /// The MCP endpoint it listens on, `http://127.0.0.1:PORT/mcp`.
    pub(crate) url: String,
    /// Where its stderr (logs) goes.
    pub(crate) log: PathBuf,
}

/// Memory figures of a process, in bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memory {
    /// Peak resident set (`VmHWM`).
    pub(crate) peak_rss: u64,
    /// Current resident set (`VmRSS`).
    pub(crate) rss: u64,
    /// The private part of it (`RssAnon`, from Linux 4.5): heap, stacks, the allocator's pages.
    /// The rest is mapped files, mostly the binary's own code, shared with every process running
    /// it.
    pub(crate) private: Option<u64>,
}

/// Variables `todo-mcp` reads that would override what the benchmark passes.
const CHILD_ENV_REMOVE: [&str; 5] = [
    "MCP_STATELESS",
    "TODO_DATABASE_URL",
    "TODO_BIND",
    "MCP_PORT",
    "SECURE_AGENT_DATA_DIR",
];

impl ChildServer {
    /// Starts `secure-agent todo-mcp` on a free loopback port and waits for its endpoint line.
    pub(crate) async fn spawn(options: &SpawnOptions<'_>) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the secure-agent binary")?;
        let log = options.data_dir.join("todo-mcp.log");
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(exe);
        command
            .arg("todo-mcp")
            .arg("--data-dir")
            .arg(options.data_dir)
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(["--issuer", options.issuer])
            .args(["--resource", options.resource]);
        if let Some(database) = options.database {
            command.args(["--database", database]);
        }
        if options.stateless {
            command.arg("--stateless");
        }
        for name in CHILD_ENV_REMOVE {
            command.env_remove(name);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        let mut child = command.spawn().context("starting secure-agent todo-mcp")?;
        let pid = child
            .id()
            .context("the todo-mcp child exited immediately")?;
        let stdout = child
            .stdout
            .take()
            .context("the todo-mcp child has no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = endpoint_from_banner(&line) {
                    return Ok::<_, std::io::Error>(Some(url));
                }
            }
            Ok(None)
        })
        .await;
        let url = match found {
            Ok(Ok(Some(url))) => url,
            Ok(Ok(None)) | Ok(Err(_)) => {
                let _ = child.wait().await;
                bail!(
                    "todo-mcp exited before it was ready; its log ({}):\n{}",
                    log.display(),
                    log_tail(&log)
                );
            }
            Err(_) => bail!(
                "todo-mcp did not print its endpoint within 30 s; its log ({}):\n{}",
                log.display(),
                log_tail(&log)
            ),
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            pid,
            url,
            log,
        })
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Peak and current resident set size.
    pub(crate) fn memory(&self) -> anyhow::Result<Memory> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.trim().strip_suffix("kB"))
                .and_then(|kb| kb.trim().parse::<u64>().ok())
                .map(|kb| kb * 1024)
                .with_context(|| format!("no {name} in {path}"))
        };
        Ok(Memory {
            peak_rss: field("VmHWM:")?,
            rss: field("VmRSS:")?,
            private: field("RssAnon:").ok(),
        })
    }

    /// CPU time (user + system) the child has used so far, in seconds.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(&format!("/proc/{}/stat", self.pid))
    }

    /// SIGTERM (graceful shutdown), then SIGKILL after 5 s.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let terminated = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if terminated
            && let Ok(status) =
                tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await
        {
            status?;
            return Ok(());
        }
        self.child.kill().await?;
        Ok(())
    }
}

/// CPU time (user + system) of this process so far, in seconds.
pub(crate) fn own_cpu_seconds() -> Option<f64> {
    cpu_seconds("/proc/self/stat")
}

/// CPU time all processes have used so far (user, nice, system, irq, softirq, steal), in
/// seconds summed over CPUs, from `/proc/stat`.
pub(crate) fn system_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal …
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|i| fields.get(*i))
        .sum();
    Some(busy as f64 / 100.0)
}

/// CPU time (`utime + stime`, seconds) of this process's threads whose name starts with one of
/// `prefixes` (`/proc/self/task/*/comm`, at most 15 bytes); `None` without `/proc`. Threads that
/// ended are not counted, so it is sampled while the servers run.
pub(crate) fn threads_cpu_seconds(prefixes: &[&str]) -> Option<f64> {
    let mut total = 0.0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = task.path();
        let Ok(name) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if prefixes.iter().any(|p| name.trim_end().starts_with(p)) {
            total += cpu_seconds(&path.join("stat").to_string_lossy()).unwrap_or(0.0);
        }
    }
    Some(total)
}

/// `utime + stime` from a `/proc/<pid>/stat` file, in seconds (USER_HZ is 100 on Linux).
fn cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may contain spaces; the fields after its closing parenthesis do not.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// `http://127.0.0.1:PORT/mcp` from the line `  MCP endpoint:      http://… (resource …)`.
fn endpoint_from_banner(line: &str) -> Option<String> {
    let rest = line.split_once("MCP endpoint:")?.1;
    rest.split_whitespace()
        .next()
        .filter(|url| url.starts_with("http://"))
        .map(str::to_owned)
}

/// The last lines of the child's log, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The filesystem type (`ext4`, `tmpfs`, …) `path` lives on, from `/proc/self/mountinfo`.
pub(crate) fn filesystem_type(path: &Path) -> Option<String> {
    let path = std::fs::canonicalize(path).ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, String)> = None;
    for line in mountinfo.lines() {
        // `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS`
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split(' ').nth(4) else {
            continue;
        };
        let mount_point = PathBuf::from(unescape_mount(mount_point));
        let Some(fs_type) = right.split(' ').next() else {
            continue;
        };
        if path.starts_with(&mount_point) {
            let depth = mount_point.components().count();
            // Later lines with the same depth over-mount earlier ones.
            if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
                best = Some((depth, fs_type.to_owned()));
            }
        }
    }
    best.map(|(_, fs)| fs)
}

/// Mount points escape space, tab, newline and backslash as `\ooo`.
fn unescape_mount(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = bytes
                .get(i + 1..i + 4)
                .and_then(|digits| std::str::from_utf8(digits).ok())
                .and_then(|digits| u8::from_str_radix(digits, 8).ok())
        {
            out.push(code);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a filesystem type keeps data in memory only.
pub(crate) fn is_memory_fs(fs_type: &str) -> bool {
    matches!(fs_type, "tmpfs" | "ramfs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_read_from_the_banner() {
        assert_eq!(
            endpoint_from_banner(
                "  MCP endpoint:      http://127.0.0.1:4242/mcp   (resource http://localhost:5002/mcp)"
            )
            .as_deref(),
            Some("http://127.0.0.1:4242/mcp")
        );
        assert_eq!(endpoint_from_banner("todo0 MCP server is running"), None);
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount(r"/mnt/my\040disk"), "/mnt/my disk");
        assert_eq!(unescape_mount("/"), "/");
    }

    #[test]
    fn this_process_has_cpu_time_and_a_filesystem() {
        assert!(own_cpu_seconds().is_some());
        assert!(system_busy_seconds().is_some());
        assert!(filesystem_type(Path::new("/")).is_some());
    }
}
