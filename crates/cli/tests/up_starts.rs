//! `secure-agent up` on a fresh data directory starts every time: todo0's MCP server and web app
//! open one new SQLite file at once in one process, which once failed about one start in 45 with
//! "database is locked". Also checks that `up` gives the MCP server the `todo0` client's
//! credentials from the generated `todo0.env`, so revoked tokens are checked.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_secure-agent");
const ROUNDS: usize = 10;

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn up_starts_on_a_fresh_data_directory_every_time() {
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args([
                "up",
                "--idp-port",
                "0",
                "--mcp-port",
                "0",
                "--app-port",
                "0",
                "--agent-port",
                "0",
                "--github-port",
                "0",
                "--data-dir",
            ])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    return;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });

        let deadline = Instant::now() + Duration::from_secs(90);
        let (mut mcp, mut app, mut agent, mut revocation) = (false, false, false, None);
        while !(mcp && app && agent && revocation.is_some()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    mcp |= line.contains("MCP endpoint:");
                    app |= line.contains("(listening on");
                    agent |= line.starts_with("agent0 listening on ");
                    if line.trim().starts_with("revoked tokens:") {
                        revocation = Some(line.clone());
                    }
                }
                Err(_) => {
                    stop(&mut child);
                    panic!(
                        "round {round}: `up` did not start (mcp {mcp}, app {app}, agent {agent}):\n{}",
                        errors.join().unwrap()
                    );
                }
            }
        }
        stop(&mut child);
        let log = errors.join().unwrap();
        assert!(log.contains(" INFO "), "round {round}: the log: {log}");
        assert!(
            !log.contains('\u{1b}'),
            "round {round}: a log that goes to no terminal has no colour codes: {log}"
        );
        let revocation = revocation.unwrap();
        assert!(
            revocation.contains("refused within 15s"),
            "up checks revoked tokens with the todo0 client: {revocation}"
        );
    }
}
