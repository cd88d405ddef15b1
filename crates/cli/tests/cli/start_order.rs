//! Start-up order of the single-service commands (`idp`, `todo-mcp`, `todo-app`): each opens and
//! checks its database before it binds its port, so an unreachable database stops it with a
//! non-zero exit, naming the URL without its password and the fix, and nothing ever listens.
//! (`agent` and `up`, which also take `--redis`, are covered by `agent_database.rs` and
//! `up_database.rs`.)

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::IdpHandle;

use super::BIN;

const UNREACHABLE: &str = "postgres://user:secret@127.0.0.1:1/x";
const SHOWN: &str = "postgres://user:***@127.0.0.1:1/x";

/// Runs `command` to its end and checks the refusal: fast, non-zero, the redacted URL and the
/// fix on stderr, no password anywhere, no port ever bound.
fn assert_refused_before_binding(mut command: Command, service: &str, fix: &str) {
    let started = Instant::now();
    let output = command.output().unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{service}: {stdout}\n{stderr}");
    assert!(elapsed < Duration::from_secs(15), "{service}: {elapsed:?}");
    assert!(stderr.contains(SHOWN), "{service}: {stderr}");
    assert!(stderr.contains(fix), "{service}: {stderr}");
    assert!(
        !stdout.contains("secret") && !stderr.contains("secret"),
        "{service}: {stdout}\n{stderr}"
    );
    assert!(
        !stdout.contains("listening") && !stderr.contains("listening"),
        "{service} bound its port: {stdout}\n{stderr}"
    );
}

#[test]
fn idp_with_an_unreachable_database_stops_before_binding() {
    // `--port 0` is the case that used to bind first (the issuer names the port).
    for port in ["0", "1"] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(BIN);
        command
            .args(["idp", "--port", port, "--data-dir"])
            .arg(dir.path())
            .args(["--database", UNREACHABLE])
            .env_remove("IDP_DATABASE_URL");
        assert_refused_before_binding(command, "idp", "Fix: start the server");
        assert!(
            !dir.path().join("idp0.db").exists(),
            "no SQLite file instead"
        );
    }
}

/// Whether process `pid` holds a listening TCP socket: its socket inodes (`/proc/<pid>/fd`)
/// against the LISTEN rows (state `0A`) of the kernel's TCP tables.
fn is_listening(pid: u32) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let inodes: Vec<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .map(|row| row.split_whitespace().collect::<Vec<_>>())
            .any(|cols| {
                cols.get(3) == Some(&"0A")
                    && cols.get(9).is_some_and(|i| inodes.iter().any(|n| n == i))
            })
    })
}

/// `idp --port 0` against a database that accepts the connection but never answers: during the
/// whole wait idp0 holds no listening socket (it used to bind first, as the issuer names the
/// port), and it then stops with the cause.
#[test]
fn idp_on_port_0_does_not_listen_while_its_database_is_checked() {
    // Connections are queued by the kernel and never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    assert!(
        is_listening(std::process::id()),
        "the probe sees this test's own listener"
    );
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .args(["idp", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .args([
            "--database",
            &format!("postgres://user:secret@127.0.0.1:{port}/x"),
        ])
        .env_remove("IDP_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        assert!(
            !is_listening(child.id()),
            "idp0 bound its port before its database answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("postgres://user:***@127.0.0.1:"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todo_services_with_an_unreachable_database_stop_before_binding() {
    // idp0's data directory holds the todo0.env both services read (issuer, audience, login).
    let idp = IdpHandle::start().await.unwrap();
    let data = idp.data_dir.clone();
    tokio::task::spawn_blocking(move || {
        for service in ["todo-mcp", "todo-app"] {
            let mut command = Command::new(BIN);
            command
                .args([service, "--port", "0", "--data-dir"])
                .arg(&data)
                .args(["--database", UNREACHABLE])
                .env_remove("TODO_DATABASE_URL")
                .env_remove("PORT")
                .env_remove("MCP_PORT")
                .env_remove("TODO_APP_PORT");
            assert_refused_before_binding(command, service, "check --database / TODO_DATABASE_URL");
        }
    })
    .await
    .unwrap();
}
