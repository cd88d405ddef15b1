//! The `secure-agent` binary as a user runs it: real processes, real files, real HTTP.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use secrecy::ExposeSecret;
use testkit::{Browser, IdpHandle};

#[path = "cli/browser.rs"]
mod browser;

const BIN: &str = env!("CARGO_BIN_EXE_secure-agent");

#[test]
fn keys_generate_writes_a_private_pem_and_a_thumbprint_jwk() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["rsa", "p256", "ed25519"] {
        let out = dir.path().join(format!("{kind}.pem"));
        let run = Command::new(BIN)
            .args(["keys", "generate", "--kind", kind, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "private keys are owner-only");
        let pem = std::fs::read_to_string(&out).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let jwk: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{}.jwk.json", out.display())).unwrap(),
        )
        .unwrap();
        let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        assert_eq!(
            jwk["kid"].as_str().unwrap(),
            protocol::keys::thumbprint(&parsed).unwrap()
        );
        assert!(jwk.get("d").is_none(), "no private part in the public JWK");
        assert!(String::from_utf8_lossy(&run.stdout).contains(jwk["kid"].as_str().unwrap()));
        // A second run refuses to overwrite.
        let again = Command::new(BIN)
            .args(["keys", "generate", "--kind", kind, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exchange_prints_decoded_claims_and_no_raw_tokens() {
    let idp = IdpHandle::start().await.unwrap();
    let login = idp.login(&Browser::new(), "alice").await.unwrap();
    let id_token = login.id_token.unwrap();
    let env_file = idp.data_dir.join("agent0.env");
    let (issuer, audience) = (idp.issuer.clone(), idp.todo0_issuer());
    let id_token = id_token.expose_secret().to_owned();
    let run = move |raw: bool| {
        let mut command = Command::new(BIN);
        command
            .args(["token", "exchange", "--env-file"])
            .arg(&env_file)
            .args([
                "--issuer",
                &issuer,
                "--audience",
                &audience,
                "--id-token",
                "-",
            ])
            .env_remove("OKTA_DOMAIN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if raw {
            command.arg("--raw");
        }
        let mut child = command.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(id_token.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let output = tokio::task::spawn_blocking(move || (run(false), run(true)))
        .await
        .unwrap();
    let (plain, raw) = output;
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert_eq!(out["id_jag"]["claims"]["client_id"], "agent0-agent");
    assert_eq!(out["id_jag"]["scope"], "mcp:connect mcp:tools:read");
    assert_eq!(out["access_token"]["claims"]["act"]["sub"], "agent0-agent");
    assert_eq!(
        out["access_token"]["claims"]["aud"],
        "http://localhost:5002/mcp"
    );
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(!text.contains("eyJ"), "no raw JWT without --raw");
    assert!(raw.status.success());
    let raw_out: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert!(
        raw_out["access_token"]["raw"]
            .as_str()
            .unwrap()
            .starts_with("eyJ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exchange_reports_the_servers_error() {
    let idp = IdpHandle::start().await.unwrap();
    let env_file = idp.data_dir.join("agent0.env");
    let output = Command::new(BIN)
        .args(["token", "exchange", "--env-file"])
        .arg(&env_file)
        .args([
            "--issuer",
            &idp.issuer,
            "--audience",
            &idp.todo0_issuer(),
            "--id-token",
            "not-a-jwt",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("step 1") && stderr.contains("invalid_grant"),
        "{stderr}"
    );
}

#[test]
fn idp_serves_generates_a_dev_config_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["idp", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut issuer = None;
    let mut logins = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("org issuer:") {
            issuer = Some(rest.trim().to_owned());
        }
        if line.starts_with("    alice /") || line.starts_with("    bob /") {
            logins.push(line.clone());
        }
        if line.contains("settings for agent0") {
            break;
        }
    }
    let issuer = issuer.unwrap();
    assert!(issuer.starts_with("http://localhost:"));
    assert_eq!(logins.len(), 2, "demo logins are printed");
    let port = issuer.rsplit(':').next().unwrap();
    let body = reqwest::blocking_get(&format!(
        "http://127.0.0.1:{port}/.well-known/openid-configuration"
    ));
    assert!(body.contains(&format!("\"issuer\":\"{issuer}\"")));
    for (file, mode) in [
        ("idp0.toml", 0o600),
        ("demo-users.txt", 0o600),
        ("agent0-agent.pem", 0o600),
        ("agent0.env", 0o600),
        ("todo0.env", 0o600),
    ] {
        let meta = std::fs::metadata(dir.path().join(file)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
    }
    assert_eq!(
        std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let todo0 = std::fs::read_to_string(dir.path().join("todo0.env")).unwrap();
    assert!(todo0.contains(&format!("MCP_OKTA_ISSUER={issuer}/oauth2/todo0")));
    assert!(todo0.contains("MCP_EXPECTED_AUDIENCE=http://localhost:5002/mcp"));
    let demo = std::fs::read_to_string(dir.path().join("demo-users.txt")).unwrap();
    assert!(demo.starts_with("alice:"));

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(10));
    assert!(status.success(), "graceful shutdown exits 0");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("idp0 stopped")));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let secret = todo0
        .lines()
        .find_map(|l| l.strip_prefix("OKTA_CLIENT_SECRET="))
        .unwrap();
    assert!(!stderr.contains(secret), "no secret in the logs");
}

#[test]
fn a_bad_config_fails_before_binding_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("idp0.toml");
    std::fs::write(&config, "[[users]]\nusername = \"a\"\nname = \"A\"\nemail = \"a@x\"\npassword_hash = \"x\"\ncolour = \"blue\"\n").unwrap();
    let output = Command::new(BIN)
        .args(["idp", "--port", "1", "--data-dir"])
        .arg(dir.path())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("colour"), "{stderr}");
    std::fs::write(
        &config,
        "[[users]]\nusername = \"a\"\nname = \"A\"\nemail = \"a@x\"\npassword_hash = \"x\"\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["idp", "--port", "1", "--data-dir"])
        .arg(dir.path())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("users[0].password_hash") && stderr.contains("hash-password"),
        "{stderr}"
    );
}

fn wait_timeout(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("process did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

mod reqwest {
    /// A tiny blocking GET for a sync test (the workspace reqwest has no blocking feature).
    pub(super) fn blocking_get(url: &str) -> String {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async { ::reqwest::get(url).await.unwrap().text().await.unwrap() })
    }
}

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
fn has_default_port(text: &str) -> bool {
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
struct Up {
    child: std::process::Child,
    /// Where its log goes.
    stderr: std::path::PathBuf,
    /// Every line `up` printed until it said it was ready.
    banner: Vec<String>,
    idp: u16,
    mcp: u16,
    app: u16,
    agent: u16,
}

impl Up {
    /// Starts `up` on `dir` with `ports` (idp, mcp, app, agent; 0 = any) and waits until it says
    /// it is up.
    fn start(dir: &std::path::Path, ports: [u16; 4]) -> Self {
        let [idp, mcp, app, agent] = ports.map(|p| p.to_string());
        let mut child = Command::new(BIN)
            .args(["up", "--idp-port", &idp, "--mcp-port", &mcp])
            .args(["--app-port", &app, "--agent-port", &agent, "--data-dir"])
            .arg(dir)
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
                .find(|l| l.contains(marker))
                .unwrap_or_else(|| {
                    let stderr = std::fs::read_to_string(dir.join("up.stderr")).unwrap();
                    panic!("no {marker:?} in {banner:#?}\nstderr:\n{stderr}")
                });
            let rest = &line[line.find(marker).unwrap() + marker.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap()
        };
        Self {
            idp: port_after("org issuer:        http://localhost:"),
            mcp: port_after("MCP endpoint:      http://127.0.0.1:"),
            app: port_after("(listening on 127.0.0.1:"),
            agent: port_after("secure-agent is up: open http://localhost:"),
            banner,
            child,
            stderr: dir.join("up.stderr"),
        }
    }

    /// Stops `up` with SIGTERM; returns what it logged.
    fn stop(mut self) -> String {
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
async fn log_in_to_agent0(browser: &Browser, agent: &str, user: &str, password: &str) -> String {
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

async fn chat(browser: &Browser, agent: &str, csrf: &str, message: &str) -> serde_json::Value {
    let body = serde_json::json!({ "message": message });
    post_json(browser, &format!("{agent}/api/chat"), csrf, &body).await
}

async fn post_json(
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
        let env = |file: &str| -> std::collections::HashMap<String, String> {
            idp0::devconfig::read_env_file(&dir.path().join(file))
                .unwrap()
                .into_iter()
                .collect()
        };
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
        let demo = std::fs::read_to_string(dir.path().join("demo-users.txt")).unwrap();
        let password = demo
            .lines()
            .find_map(|l| l.strip_prefix("alice:"))
            .unwrap()
            .to_owned();
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
        .args(["up", "--idp-port", "0", "--mcp-port", &port])
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

/// A service started from the sample's files, with what it printed until it listened.
struct Service {
    child: std::process::Child,
    port: u16,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `secure-agent <args>` in `cwd` and waits for the line that names its address
/// (`marker` followed by `127.0.0.1:PORT`).
fn start_service(cwd: &std::path::Path, args: &[&str], marker: &str) -> Service {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("PORT")
        .env_remove("OKTA_DOMAIN")
        .env_remove("ANTHROPIC_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut port = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(at) = line.find(marker) {
            let rest = &line[at + marker.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            port = Some(digits.parse().unwrap());
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let Some(port) = port else {
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        panic!("{args:?} did not start: {stderr}");
    };
    Service { child, port }
}

/// The four env files exactly as the sample's bootstrap writes them (OKTA.md §5), for a running
/// idp0: unquoted scope lists, a hex SESSION_SECRET, a key path relative to the agent's folder,
/// todo0's OKTA_ISSUER / PORT / EXPECTED_AUDIENCE. Returns the sample's root folder.
fn write_sample_files(idp: &IdpHandle, root: &std::path::Path, anthropic_key: &str) {
    let agent0 = root.join("packages/agent0");
    let todo0 = root.join("packages/todo0");
    std::fs::create_dir_all(&agent0).unwrap();
    std::fs::create_dir_all(&todo0).unwrap();
    std::fs::copy(
        idp.data_dir.join("agent0-agent.pem"),
        agent0.join("agent0-private-key.pem"),
    )
    .unwrap();
    let agent_env = idp.env("agent0.env");
    let todo_env = idp.env("todo0.env");
    let secret = |id: &str| idp.client_secret(id).expose_secret().to_owned();
    let as_issuer = idp.todo0_issuer();
    let resource = "http://localhost:5002/mcp";
    let issuer = &idp.issuer;
    std::fs::write(
        agent0.join(".env.app"),
        format!(
            "# Agent0 App Configuration\nPORT=0\n\
             SESSION_SECRET=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n\n\
             # Okta Configuration\nOKTA_DOMAIN={issuer}\nOKTA_CLIENT_ID=agent0\n\
             OKTA_CLIENT_SECRET={}\nOKTA_REDIRECT_URI=http://localhost:3000/callback\n",
            secret("agent0")
        ),
    )
    .unwrap();
    std::fs::write(
        agent0.join(".env.agent"),
        format!(
            "# MCP Server Configuration\nMCP_SERVER_URL={resource}\n\n\
             # Anthropic Configuration\nANTHROPIC_API_KEY={anthropic_key}\n\
             ANTHROPIC_MODEL=claude-sonnet-4-6\n\n\
             # Okta Configuration\nOKTA_DOMAIN={issuer}\nAI_AGENT_ID=agent0-agent\n\
             AI_AGENT_PRIVATE_KEY_FILE=./agent0-private-key.pem\nAI_AGENT_PRIVATE_KEY_KID={}\n\
             AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST=mcp:connect mcp:tools:read mcp:tools:manage\n\
             MCP_AUTHORIZATION_SERVER={as_issuer}\n\
             MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT={as_issuer}/v1/token\n",
            agent_env["AI_AGENT_PRIVATE_KEY_KID"]
        ),
    )
    .unwrap();
    std::fs::write(
        todo0.join(".env.app"),
        format!(
            "PORT=0\nOKTA_ISSUER={as_issuer}\nOKTA_CLIENT_ID=todo0\nOKTA_CLIENT_SECRET={}\n\
             OKTA_REDIRECT_URI=http://localhost:5001/callback\nEXPECTED_AUDIENCE={resource}\n",
            secret("todo0")
        ),
    )
    .unwrap();
    std::fs::write(
        todo0.join(".env.mcp"),
        format!(
            "MCP_PORT=0\nMCP_OKTA_ISSUER={}\nMCP_EXPECTED_AUDIENCE={}\n",
            todo_env["MCP_OKTA_ISSUER"], todo_env["MCP_EXPECTED_AUDIENCE"]
        ),
    )
    .unwrap();
}

/// The sample's own env files start agent0, todo-mcp and todo-app unchanged, from another working
/// directory; a placeholder model key and a broken line are refused with the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_samples_env_files_start_every_service_unchanged() {
    let idp = IdpHandle::start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    write_sample_files(&idp, root.path(), "sk-ant-api03-not-a-real-key");
    let data = root.path().join("data");
    let file = |f: &str| root.path().join(f).display().to_string();
    let (cwd, data_arg) = (elsewhere.path().to_owned(), data.display().to_string());
    let (agent_app, agent_agent, todo_app, todo_mcp) = (
        file("packages/agent0/.env.app"),
        file("packages/agent0/.env.agent"),
        file("packages/todo0/.env.app"),
        file("packages/todo0/.env.mcp"),
    );
    let (a, b, c, d) = (
        agent_app.clone(),
        agent_agent.clone(),
        todo_app.clone(),
        todo_mcp.clone(),
    );
    let services = tokio::task::spawn_blocking(move || {
        let (agent_app, agent_agent, todo_app, todo_mcp) = (a, b, c, d);
        let mcp = start_service(
            &cwd,
            &["todo-mcp", "--data-dir", &data_arg, "--env-file", &todo_mcp],
            "MCP endpoint:      http://127.0.0.1:",
        );
        let app = start_service(
            &cwd,
            &["todo-app", "--data-dir", &data_arg, "--env-file", &todo_app],
            "(listening on 127.0.0.1:",
        );
        let agent = start_service(
            &cwd,
            &[
                "agent",
                "--data-dir",
                &data_arg,
                "--env-file",
                &agent_app,
                "--env-file",
                &agent_agent,
            ],
            "agent0 listening on 127.0.0.1:",
        );
        (mcp, app, agent)
    })
    .await
    .unwrap();
    let (mcp, app, agent) = services;
    let http = ::reqwest::Client::new();
    let get = |url: String| http.get(url).send();
    assert!(
        get(format!("http://127.0.0.1:{}/health", mcp.port))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let health: serde_json::Value = get(format!("http://127.0.0.1:{}/health", agent.port))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    // todo0's app accepts a token minted for EXPECTED_AUDIENCE by OKTA_ISSUER.
    let login = idp.login(&Browser::new(), "alice").await.unwrap();
    let id_jag = idp
        .id_jag(
            &login.id_token.unwrap(),
            protocol::oauth::TokenType::IdToken,
            "http://localhost:5002/mcp",
            "mcp:connect mcp:tools:read",
        )
        .await
        .unwrap();
    let access = idp.redeem(&id_jag.access_token).await.unwrap();
    let todos = http
        .get(format!("http://127.0.0.1:{}/todos", app.port))
        .bearer_auth(access.access_token.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(todos.status(), 200);
    drop((mcp, app, agent));

    // The bootstrap's placeholder key: refused at start, with the fix.
    write_sample_files(&idp, root.path(), "your_anthropic_api_key_here");
    let output = Command::new(BIN)
        .args(["agent", "--port", "0", "--data-dir"])
        .arg(&data)
        .args(["--env-file", &agent_app, "--env-file", &agent_agent])
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ANTHROPIC_API_KEY still holds a placeholder"),
        "{stderr}"
    );

    // A broken line: the error names the file, the line and the variable.
    std::fs::write(&todo_app, "PORT=0\nOKTA_CLIENT_SECRET=\"unterminated\n").unwrap();
    let output = Command::new(BIN)
        .args(["todo-app", "--data-dir"])
        .arg(&data)
        .args(["--env-file", &todo_app])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{todo_app}:2: OKTA_CLIENT_SECRET")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_subcommands_take_the_data_dir_on_either_side() {
    let idp = IdpHandle::start().await.unwrap();
    let dir = idp.data_dir.display().to_string();
    for args in [
        vec!["idp", "rotate-keys", "--data-dir", &dir],
        vec![
            "idp",
            "--data-dir",
            &dir,
            "rotate-keys",
            "--server",
            "todo0",
        ],
    ] {
        let output = Command::new(BIN).args(&args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("now signing with kid"));
    }
}

/// The peak resident memory of process `pid` in MB (`VmHWM`).
fn peak_rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024
}

/// 200 concurrent wrong-password posts with a genuine CSRF pair (as an attacker would fetch
/// one) against the real `secure-agent idp` process: every answer is 401, 429 or 503 within its
/// deadline, and the process's peak memory stays under 150 MB (Argon2id runs on a bounded set of
/// threads; each check costs ≈ 19 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_wrong_passwords_keep_idp0_under_150_mb() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["idp", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let issuer = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find_map(|l| {
            l.trim()
                .strip_prefix("org issuer:")
                .map(|i| i.trim().to_owned())
        })
        .unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    let pkce = testkit::Pkce::new();
    let mut authorize = url::Url::parse(&format!("{issuer}/oauth2/v1/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", "agent0")
        .append_pair("redirect_uri", "http://localhost:3000/callback")
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", "s")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    // One genuine cookie + form pair, replayed on every post as an attacker would (no cookie
    // store: each refusal page sets a fresh pair, which must not change what the flood sends).
    let http = ::reqwest::Client::builder()
        .redirect(::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(authorize.clone()).send().await.unwrap();
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("idp0_csrf="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let action = testkit::form_action(authorize.as_str(), &html).unwrap();
    let fields = testkit::hidden_fields(&html);
    let before = peak_rss_mb(pid);
    let started = std::time::Instant::now();
    let posts: Vec<_> = (0..200)
        .map(|i| {
            let (http, action, cookie) = (http.clone(), action.clone(), cookie.clone());
            let mut form = fields.clone();
            let user = if i % 2 == 0 {
                "alice".to_owned()
            } else {
                format!("user{i}")
            };
            form.push(("username".into(), user));
            form.push(("password".into(), format!("wrong-{i}")));
            tokio::spawn(async move {
                let response = http
                    .post(action)
                    .header("cookie", format!("idp0_csrf={cookie}"))
                    .form(&form)
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await
                    .unwrap();
                let retry_after = response.headers().contains_key("retry-after");
                (response.status().as_u16(), retry_after)
            })
        })
        .collect();
    let mut seen = std::collections::BTreeMap::new();
    for post in posts {
        let (status, retry_after) = post.await.unwrap();
        assert!(matches!(status, 401 | 429 | 503), "status {status}");
        if status != 401 {
            assert!(retry_after, "{status} says when to retry");
        }
        *seen.entry(status).or_insert(0) += 1;
    }
    let elapsed = started.elapsed();
    let peak = peak_rss_mb(pid);
    eprintln!("200 wrong passwords: {seen:?} in {elapsed:?}; peak RSS {before} MB -> {peak} MB");
    assert!(peak < 150, "peak RSS {peak} MB");
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    let _ = child.kill();
    let _ = child.wait();
}
