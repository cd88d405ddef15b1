//! The `secure-agent` binary as a user runs it: real processes, real files, real HTTP.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use secrecy::ExposeSecret;
use testkit::{Browser, IdpHandle};

#[path = "cli/agent_database.rs"]
mod agent_database;
#[path = "cli/browser.rs"]
mod browser;
#[path = "cli/browser_j3.rs"]
mod browser_j3;
#[path = "cli/j3.rs"]
mod j3;
#[path = "cli/j3_revoked.rs"]
mod j3_revoked;
#[path = "cli/node.rs"]
mod node;
#[path = "cli/okta.rs"]
mod okta;
#[path = "cli/okta_cycle.rs"]
mod okta_cycle;
#[path = "cli/okta_standin.rs"]
mod okta_standin;
#[path = "cli/okta_validate.rs"]
mod okta_validate;
#[path = "cli/sample_env.rs"]
mod sample_env;
#[path = "cli/scale.rs"]
mod scale;
#[path = "cli/start_order.rs"]
mod start_order;
#[path = "cli/tls.rs"]
mod tls;
#[path = "cli/todo_mcp_replicas.rs"]
mod todo_mcp_replicas;
#[path = "cli/token_sts.rs"]
mod token_sts;
#[path = "cli/up.rs"]
mod up;
#[path = "cli/up_database.rs"]
mod up_database;

const BIN: &str = env!("CARGO_BIN_EXE_secure-agent");

/// `user`'s demo password from the data directory's `demo-users.txt`.
fn demo_password(data_dir: &std::path::Path, user: &str) -> String {
    std::fs::read_to_string(data_dir.join("demo-users.txt"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{user}:")).map(str::to_owned))
        .unwrap_or_else(|| panic!("no demo user {user} in {}", data_dir.display()))
}

/// A dotenv file's variables, read as the services read them.
fn env_file(path: &std::path::Path) -> std::collections::HashMap<String, String> {
    devstack::read_env_file(path).unwrap().into_iter().collect()
}

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
