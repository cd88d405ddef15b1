//! Private PostgreSQL and Redis servers for fault tests: each test gets its own server on an
//! ephemeral 127.0.0.1 port, in a temporary directory, that it may stop, start and restart at
//! will without touching the machine's shared servers (which other tests use at the same time).
//!
//! - [`PrivatePostgres`]: `initdb` into the directory, then `postgres` with settings for speed
//!   (`fsync=off`: a test server needs no durability across a machine crash) and no Unix socket.
//!   As root it runs as the `postgres` OS user (PostgreSQL refuses root): the process gets that
//!   user's ids directly, not through `runuser`, whose watching parent would turn the fast
//!   shutdown signal into a SIGKILL two seconds later.
//! - [`PrivateRedis`]: `redis-server` keeping nothing on disk (`--save ''`, `--appendonly no`),
//!   so a restart loses every key, like a real Redis restart without persistence.
//!
//! Missing binaries fail the test with what to install, never a skip. Dropping a server kills it
//! and removes its directory.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a server may take to accept connections after its start (a loaded 2-core machine).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped server may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Fresh ports tried when the one picked was taken in between.
const PORT_ATTEMPTS: usize = 5;

/// Where Debian and Ubuntu install PostgreSQL's server binaries, one directory per version.
const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";

/// A free port on 127.0.0.1 (bound, then released for the server to take).
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// `name` on `PATH`, if there.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The directory holding `initdb` and `postgres`: the highest version under
/// `/usr/lib/postgresql/<version>/bin`, else wherever `PATH` has both.
fn postgres_bin_dir() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_PG_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file())
                .then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let (Some(initdb), Some(_)) = (on_path("initdb"), on_path("postgres"))
        && let Some(dir) = initdb.parent()
    {
        return Ok(dir.to_owned());
    }
    Err(format!(
        "these tests start a private PostgreSQL server and need its server binaries (initdb, \
         postgres), found neither in {DEBIAN_PG_ROOT}/<version>/bin nor on PATH: install the \
         Debian package `postgresql` (apt-get install postgresql)"
    ))
}

/// The `redis-server` binary.
fn redis_binary() -> Result<PathBuf, String> {
    let debian = PathBuf::from("/usr/bin/redis-server");
    if debian.is_file() {
        return Ok(debian);
    }
    on_path("redis-server").ok_or_else(|| {
        "these tests start a private Redis server and need `redis-server`, found neither at \
         /usr/bin/redis-server nor on PATH: install the Debian package `redis-server` (apt-get \
         install redis-server)"
            .into()
    })
}

/// Whether this process runs as root (then PostgreSQL must run as another user).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The uid and gid of the OS user `name`.
fn user_ids(name: &str) -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, name])
            .output()
            .map_err(|e| format!("running `id {flag} {name}`: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                format!(
                    "running as root, the private PostgreSQL must run as the OS user `{name}`, \
                     which does not exist: install the Debian package `postgresql` (it creates \
                     the user) or run the tests as an ordinary user"
                )
            })
    };
    Ok((id("-u")?, id("-g")?))
}

/// A fresh directory `<temp>/<prefix>-<uuid>`, mode 0700, owned by `owner` when given.
fn fresh_dir(prefix: &str, owner: Option<(u32, u32)>) -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, chown};
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if let Some((uid, gid)) = owner {
        chown(&dir, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", dir.display()))?;
    }
    Ok(dir)
}

/// The last lines of a server's log, for a failure message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Whether a server's log says its port was taken.
fn is_port_clash(log: &str) -> bool {
    log.contains("Address already in use") || log.contains("could not bind")
}

/// Sends `signal` (`INT`, `TERM`, …) to `pid`.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A server process and the directory it lives in; killed and removed on drop.
#[derive(Debug)]
struct Process {
    dir: PathBuf,
    log: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Sent on drop before SIGKILL, for a server whose children must go with it.
    drop_signal: Option<&'static str>,
}

impl Process {
    /// Signals the server with `how`, waits for it to exit (killing it after [`STOP_TIMEOUT`]).
    async fn stop(&mut self, how: &str) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        signal(child.id(), how);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "the server did not stop within {} s; killed it",
                        STOP_TIMEOUT.as_secs()
                    ));
                }
            }
        }
    }

    /// Waits until `ready` answers true, failing early if the process exits.
    async fn wait_ready<F, Fut>(&mut self, what: &str, ready: F) -> Result<(), Started>
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let log = log_tail(&self.log);
                return Err(if is_port_clash(&log) {
                    Started::PortTaken
                } else {
                    Started::Failed(format!("{what} exited ({status}) at start:\n{log}"))
                });
            }
            if ready(address).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Started::Failed(format!(
                    "{what} did not accept connections on {address} within {} s:\n{}",
                    READY_TIMEOUT.as_secs(),
                    log_tail(&self.log)
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(how) = self.drop_signal {
                signal(child.id(), how);
                let deadline = Instant::now() + Duration::from_secs(5);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Why a start did not give a running server.
enum Started {
    /// Another process took the port in between: try another.
    PortTaken,
    Failed(String),
}

/// A private PostgreSQL server (superuser `postgres`, trust authentication, database
/// `postgres`) on an ephemeral 127.0.0.1 port.
#[derive(Debug)]
pub struct PrivatePostgres {
    process: Process,
    bin: PathBuf,
    owner: Option<(u32, u32)>,
}

impl PrivatePostgres {
    /// Creates a cluster in a fresh temporary directory and starts it.
    pub async fn launch() -> Result<Self, String> {
        let bin = postgres_bin_dir()?;
        let owner = if is_root() {
            Some(user_ids("postgres")?)
        } else {
            None
        };
        let dir = fresh_dir("dbconn-pg", owner)?;
        let mut server = Self {
            process: Process {
                log: dir.join("postgres.log"),
                dir,
                port: 0,
                child: None,
                // Immediate shutdown: the postmaster takes its backends with it.
                drop_signal: Some("QUIT"),
            },
            bin,
            owner,
        };
        server.initdb()?;
        for _ in 0..PORT_ATTEMPTS {
            server.process.port = free_port()?;
            match server.spawn().await {
                Ok(()) => return Ok(server),
                Err(Started::PortTaken) => continue,
                Err(Started::Failed(why)) => return Err(why),
            }
        }
        Err(format!(
            "no free port for the private PostgreSQL after {PORT_ATTEMPTS} attempts"
        ))
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.process.port
        )
    }

    /// The port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// Fast shutdown (SIGINT): open sessions are ended, transactions in flight roll back, and the
    /// port refuses connections until [`Self::start`].
    pub async fn stop(&mut self) -> Result<(), String> {
        self.process.stop("INT").await
    }

    /// Starts the stopped server again on the same port and data.
    pub async fn start(&mut self) -> Result<(), String> {
        if self.process.child.is_some() {
            return Ok(());
        }
        self.spawn().await.map_err(|e| match e {
            Started::PortTaken => format!(
                "port {} was taken while the private PostgreSQL was stopped",
                self.process.port
            ),
            Started::Failed(why) => why,
        })
    }

    /// [`Self::stop`], then [`Self::start`].
    pub async fn restart(&mut self) -> Result<(), String> {
        self.stop().await?;
        self.start().await
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.current_dir(&self.process.dir);
        if let Some((uid, gid)) = self.owner {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        command
    }

    fn initdb(&self) -> Result<(), String> {
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(self.process.dir.join("data"))
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ])
            .output()
            .map_err(|e| format!("running initdb: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "initdb failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    async fn spawn(&mut self) -> Result<(), Started> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.process.log)
            .map_err(|e| Started::Failed(format!("opening the server log: {e}")))?;
        let stderr = log
            .try_clone()
            .map_err(|e| Started::Failed(e.to_string()))?;
        let port = self.process.port.to_string();
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.process.dir.join("data"))
            .args(["-p", &port])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"])
            .args(["-c", "max_connections=100"])
            .args(["-c", "shared_buffers=16MB"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .map_err(|e| Started::Failed(format!("starting postgres: {e}")))?;
        self.process.child = Some(child);
        let url = self.url();
        self.process
            .wait_ready("the private PostgreSQL", |_| {
                let url = url.clone();
                async move {
                    match PgConnection::connect(&url).await {
                        Ok(conn) => {
                            let _ = conn.close().await;
                            true
                        }
                        Err(_) => false,
                    }
                }
            })
            .await
    }
}

/// A private Redis server keeping nothing on disk, on an ephemeral 127.0.0.1 port.
#[derive(Debug)]
pub struct PrivateRedis {
    process: Process,
    binary: PathBuf,
}

impl PrivateRedis {
    /// Starts a server in a fresh temporary directory.
    pub async fn launch() -> Result<Self, String> {
        let binary = redis_binary()?;
        let dir = fresh_dir("dbconn-redis", None)?;
        let mut server = Self {
            process: Process {
                log: dir.join("redis.log"),
                dir,
                port: 0,
                child: None,
                drop_signal: None,
            },
            binary,
        };
        for _ in 0..PORT_ATTEMPTS {
            server.process.port = free_port()?;
            match server.spawn().await {
                Ok(()) => return Ok(server),
                Err(Started::PortTaken) => continue,
                Err(Started::Failed(why)) => return Err(why),
            }
        }
        Err(format!(
            "no free port for the private Redis after {PORT_ATTEMPTS} attempts"
        ))
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.process.port)
    }

    /// The port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// Stops the server (SIGTERM; it saves nothing): every key is gone, and the port refuses
    /// connections until [`Self::start`].
    pub async fn stop(&mut self) -> Result<(), String> {
        self.process.stop("TERM").await
    }

    /// Starts an empty server again on the same port.
    pub async fn start(&mut self) -> Result<(), String> {
        if self.process.child.is_some() {
            return Ok(());
        }
        self.spawn().await.map_err(|e| match e {
            Started::PortTaken => format!(
                "port {} was taken while the private Redis was stopped",
                self.process.port
            ),
            Started::Failed(why) => why,
        })
    }

    /// [`Self::stop`], then [`Self::start`].
    pub async fn restart(&mut self) -> Result<(), String> {
        self.stop().await?;
        self.start().await
    }

    async fn spawn(&mut self) -> Result<(), Started> {
        let port = self.process.port.to_string();
        let child = Command::new(&self.binary)
            .current_dir(&self.process.dir)
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.process.dir)
            .arg("--logfile")
            .arg(&self.process.log)
            .args(["--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Started::Failed(format!("starting redis-server: {e}")))?;
        self.process.child = Some(child);
        self.process
            .wait_ready("the private Redis", |address| async move {
                is_redis_ready(address).await
            })
            .await
    }
}

/// Whether a Redis server at `address` answers `PING` with `+PONG`.
async fn is_redis_ready(address: SocketAddr) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut reply = [0_u8; 7];
        stream.read_exact(&mut reply).await.ok()?;
        Some(reply.starts_with(b"+PONG"))
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_private_postgres_stops_starts_on_the_same_port_and_keeps_its_data() {
        let mut pg = PrivatePostgres::launch().await.unwrap();
        let (url, port) = (pg.url(), pg.port());
        let mut conn = PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("CREATE TABLE kept (n INT); INSERT INTO kept VALUES (7)")
            .execute(&mut conn)
            .await
            .unwrap();
        pg.stop().await.unwrap();
        assert!(PgConnection::connect(&url).await.is_err(), "stopped");
        pg.start().await.unwrap();
        assert_eq!(pg.port(), port);
        let mut conn = PgConnection::connect(&url).await.unwrap();
        let n: i32 = sqlx::query_scalar("SELECT n FROM kept")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 7);
        let _ = conn.close().await;
        let dir = pg.process.dir.clone();
        drop(pg);
        assert!(!dir.exists(), "the directory is removed");
        assert!(PgConnection::connect(&url).await.is_err(), "killed on drop");
    }

    #[tokio::test]
    async fn a_private_redis_restarts_empty_on_the_same_port() {
        let mut redis = PrivateRedis::launch().await.unwrap();
        let address = SocketAddr::from(([127, 0, 0, 1], redis.port()));
        assert!(is_redis_ready(address).await);
        redis.stop().await.unwrap();
        assert!(!is_redis_ready(address).await, "stopped");
        redis.restart().await.unwrap();
        assert!(is_redis_ready(address).await);
        let dir = redis.process.dir.clone();
        drop(redis);
        assert!(!dir.exists(), "the directory is removed");
        assert!(!is_redis_ready(address).await, "killed on drop");
    }
}
