//! `secure-agent up` as a person runs it: any ports, readiness, a taken port, an ordered stop,
//! and J1 + J2 over HTTP on the ports it chose.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::Browser;

use super::{BIN, reqwest, wait_timeout};

#[test]
fn up_runs_the_whole_stack_in_one_process_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start(dir.path(), [0; 4]);
    let get = |url: String| reqwest::blocking_get(&url);
    assert_eq!(get(format!("http://127.0.0.1:{}/health", up.idp)), "ok");
    assert_eq!(get(format!("http://127.0.0.1:{}/health", up.mcp)), "ok");
    assert!(get(format!("http://127.0.0.1:{}/openapi.json", up.app)).contains("openapi"));
    let agent = format!("http://127.0.0.1:{}", up.agent);
    assert!(get(format!("{agent}/health")).contains("\"status\":\"ok\""));
    assert!(get(format!("{agent}/")).contains("agent0"));
    // Ctrl-C/SIGTERM stops everything cleanly.
    up.stop();
}

/// `up`'s default ports; none may appear once every port is chosen by the OS.
const DEFAULT_PORTS: [&str; 4] = ["3000", "5001", "5002", "9400"];

/// Whether `text` names a default port (`:5001` but not `:50012`).
pub(super) fn has_default_port(text: &str) -> bool {
    DEFAULT_PORTS.iter().any(|port| {
        text.match_indices(&format!(":{port}")).any(|(at, found)| {
            !text[at + found.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
    })
}

/// A running `secure-agent up` on ports the OS picked, with what its banners said.
pub(super) struct Up {
    child: std::process::Child,
    /// Where its log goes.
    stderr: std::path::PathBuf,
    /// Every line `up` printed until it said it was ready.
    pub(super) banner: Vec<String>,
    pub(super) idp: u16,
    pub(super) mcp: u16,
    pub(super) app: u16,
    pub(super) agent: u16,
}

impl Up {
    /// Starts `up` on `dir` with `ports` (idp, mcp, app, agent; 0 = any) and waits until it says
    /// it is up.
    pub(super) fn start(dir: &std::path::Path, ports: [u16; 4]) -> Self {
        Self::start_with(dir, ports, &[])
    }

    /// [`Up::start`] with more arguments (`--tls` makes every URL it reads https).
    pub(super) fn start_with(dir: &std::path::Path, ports: [u16; 4], extra: &[&str]) -> Self {
        Self::start_full(dir, ports, extra, &[])
    }

    /// [`Up::start`] with more environment variables (`GITHUB0_TOKEN_LIFETIME=4s`).
    pub(super) fn start_env(dir: &std::path::Path, ports: [u16; 4], env: &[(&str, &str)]) -> Self {
        Self::start_full(dir, ports, &[], env)
    }

    fn start_full(
        dir: &std::path::Path,
        ports: [u16; 4],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let [idp, mcp, app, agent] = ports.map(|p| p.to_string());
        let scheme = if extra.contains(&"--tls") {
            "https"
        } else {
            "http"
        };
        let mut child = Command::new(BIN)
            .args(["up", "--idp-port", &idp, "--mcp-port", &mcp])
            // github0 too on a port the OS picks, so tests side by side never collide.
            .args(["--github-port", "0"])
            .args(["--app-port", &app, "--agent-port", &agent, "--data-dir"])
            .arg(dir)
            .args(extra)
            .envs(env.iter().copied())
            .env_remove("PORT")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("up.stderr")).unwrap())
            .spawn()
            .unwrap();
        let mut banner = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let ready = line.starts_with("secure-agent is up");
            banner.push(line);
            if ready {
                break;
            }
        }
        // Keep reading what it prints later, so its stdout never breaks.
        std::thread::spawn(move || lines.for_each(drop));
        let port_after = |marker: &str| -> u16 {
            let line = banner
                .iter()
                // github0's banner line `web + OAuth: … (listening on …)` is not todo0's.
                .find(|l| l.contains(marker) && !l.contains("web + OAuth:"))
                .unwrap_or_else(|| {
                    let stderr = std::fs::read_to_string(dir.join("up.stderr")).unwrap();
                    panic!("no {marker:?} in {banner:#?}\nstderr:\n{stderr}")
                });
            let rest = &line[line.find(marker).unwrap() + marker.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap()
        };
        Self {
            idp: port_after(&format!("org issuer:        {scheme}://localhost:")),
            mcp: port_after(&format!("MCP endpoint:      {scheme}://127.0.0.1:")),
            app: port_after("(listening on 127.0.0.1:"),
            agent: port_after(&format!("secure-agent is up: open {scheme}://localhost:")),
            banner,
            child,
            stderr: dir.join("up.stderr"),
        }
    }

    /// Stops `up` with SIGTERM; returns what it logged.
    pub(super) fn stop(mut self) -> String {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(wait_timeout(&mut self.child, Duration::from_secs(10)).success());
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Up {
    /// A failed test must not leave the stack running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Logs `user` in to agent0 at `agent` (its public base URL) as a browser would, following every
/// redirect idp0 sends, and returns the session's CSRF token.
pub(super) async fn log_in_to_agent0(
    browser: &Browser,
    agent: &str,
    user: &str,
    password: &str,
) -> String {
    use ::reqwest::StatusCode;
    let start = browser
        .http
        .get(format!("{agent}/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let authorize = testkit::location(&start).unwrap();
    let form = browser.http.get(authorize.clone()).send().await.unwrap();
    let html = form.text().await.unwrap();
    let done = browser
        .submit_login(authorize.as_str(), &html, user, password)
        .await
        .unwrap();
    let callback = testkit::location(&done).unwrap();
    assert!(
        callback.as_str().starts_with(&format!("{agent}/callback?")),
        "idp0 sends the code to agent0's real port: {callback}"
    );
    let back = browser.http.get(callback).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER, "callback accepted");
    let status: serde_json::Value = browser
        .http
        .get(format!("{agent}/auth/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["authenticated"], true, "{status}");
    status["csrf"].as_str().unwrap().to_owned()
}

pub(super) async fn chat(
    browser: &Browser,
    agent: &str,
    csrf: &str,
    message: &str,
) -> serde_json::Value {
    let body = serde_json::json!({ "message": message });
    post_json(browser, &format!("{agent}/api/chat"), csrf, &body).await
}

pub(super) async fn post_json(
    browser: &Browser,
    url: &str,
    csrf: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    let response = browser
        .http
        .post(url)
        .header("x-csrf-token", csrf)
        .json(body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{url}: {body}");
    response.json().await.unwrap()
}

/// J1 + J2 on ports that are not the defaults, through `up` itself (no test-only configuration):
/// every redirect, logout URI, resource and URL follows the ports served; a second start on other
/// ports with the same data directory follows them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_on_other_ports_sends_every_redirect_and_token_to_those_ports() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let path = dir.path().to_owned();
        let up = tokio::task::spawn_blocking(move || Up::start(&path, [0; 4]))
            .await
            .unwrap();
        let (agent, mcp) = (
            format!("http://localhost:{}", up.agent),
            format!("http://localhost:{}/mcp", up.mcp),
        );
        for line in &up.banner {
            assert!(
                !has_default_port(line),
                "round {round}: a default port in the banner: {line}"
            );
        }
        let env = |file: &str| super::env_file(&dir.path().join(file));
        let agent_env = env("agent0.env");
        assert_eq!(agent_env["OKTA_REDIRECT_URI"], format!("{agent}/callback"));
        assert_eq!(agent_env["MCP_SERVER_URL"], mcp);
        assert_eq!(agent_env["MCP_RESOURCE_INDICATOR"], mcp);
        assert_eq!(agent_env["PORT"], up.agent.to_string());
        let todo_env = env("todo0.env");
        assert_eq!(
            todo_env["OKTA_REDIRECT_URI"],
            format!("http://localhost:{}/callback", up.app)
        );
        assert_eq!(todo_env["MCP_EXPECTED_AUDIENCE"], mcp);
        assert_eq!(todo_env["MCP_PORT"], up.mcp.to_string());
        assert_eq!(todo_env["TODO_APP_PORT"], up.app.to_string());
        assert_eq!(
            todo_env["MCP_OKTA_ISSUER"],
            format!("http://localhost:{}/oauth2/todo0", up.idp)
        );

        // J1: log in through idp0's form; the code comes back to this agent0.
        let password = super::demo_password(dir.path(), "alice");
        let browser = Browser::new();
        let csrf = log_in_to_agent0(&browser, &agent, "alice", &password).await;

        // J2: the person's MCP token is minted for, and sent to, this todo0.
        let reply = chat(&browser, &agent, &csrf, "list my todos").await;
        let chip = &reply["toolResults"][0];
        assert_eq!(chip["tool"], "get-todos", "{reply}");
        assert_eq!(chip["isError"], false, "{reply}");
        assert_eq!(chip["result"]["count"], round, "{reply}");
        let card = chat(&browser, &agent, &csrf, "add a todo \"prep the demo\"").await;
        let card = &card["confirmation"];
        assert_eq!(card["tool"], "create-todo", "the first write asks: {card}");
        let reply = post_json(
            &browser,
            &format!("{agent}/api/chat/confirm"),
            &csrf,
            &serde_json::json!({
                "id": card["id"],
                "conversationId": card["conversationId"],
                "decision": "approve",
            }),
        )
        .await;
        let chip = &reply["toolResults"][0];
        assert_eq!(chip["tool"], "create-todo", "{reply}");
        assert_eq!(chip["isError"], false, "{reply}");
        let status: serde_json::Value = browser
            .http
            .get(format!("{agent}/api/connections/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let text = status.to_string();
        assert!(text.contains(&mcp), "{status}");
        assert!(
            !has_default_port(&text),
            "no default port in the connections: {status}"
        );

        if round == 1 {
            // Stopped with alice's MCP session open: agent0 ends it while todo0 still listens.
            let log = tokio::task::spawn_blocking(move || up.stop())
                .await
                .unwrap();
            assert!(!log.contains("ERROR"), "a clean stop logs no error:\n{log}");
            break;
        }
        // Logout: RP-initiated at idp0, back to this agent0 (its post-logout URI is registered
        // for this port).
        let logout = browser
            .http
            .post(format!("{agent}/auth/logout"))
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap();
        let next = if logout.status().is_redirection() {
            testkit::location(&logout).unwrap().to_string()
        } else {
            let body: serde_json::Value = logout.json().await.unwrap();
            body["redirect"].as_str().unwrap().to_owned()
        };
        assert!(
            next.starts_with(&format!("http://localhost:{}/", up.idp)),
            "{next}"
        );
        let ended = browser.http.get(&next).send().await.unwrap();
        assert_eq!(
            testkit::location(&ended).unwrap().as_str(),
            format!("{agent}/"),
            "idp0 sends the person back to this agent0"
        );
        tokio::task::spawn_blocking(move || up.stop())
            .await
            .unwrap();
    }
}

#[test]
fn up_names_the_service_and_the_flag_when_a_port_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = Command::new(BIN)
        .args([
            "up",
            "--idp-port",
            "0",
            "--mcp-port",
            &port,
            "--github-port",
            "0",
        ])
        .args(["--app-port", "0", "--agent-port", "0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "todo0's MCP server cannot listen on 127.0.0.1:{port}"
        )) && stderr.contains("--mcp-port"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("idp0.toml").exists(),
        "nothing is configured before every port is held"
    );
}
