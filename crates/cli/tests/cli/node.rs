//! Interop with the Node libraries Okta's agent0/todo0 sample is built on, from npm:
//! `openid-client` v5 logs a person in at idp0 exactly as the sample's agent0 discovers it, and
//! `@okta/jwt-verifier` v4 checks a todo0 access token as the sample's todo0 does. Both run
//! against `secure-agent up --tls`, trusting the local CA through `NODE_EXTRA_CA_CERTS` only.
//!
//! The npm project (`tests/node`: package.json, package-lock.json, the scripts) is installed with
//! `npm ci` into `<target>/node-interop` on first use; later runs reuse it while the lock file is
//! unchanged. No Node.js or npm means a failure, not a skip.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::BIN;
use super::up::Up;

/// The oldest Node.js the scripts run on (`fetch`'s `Headers.getSetCookie`).
const MIN_NODE_MAJOR: u32 = 20;
/// Bounds one script run (their own deadlines are 60 and 90 s).
const RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(150);
/// What the CLI reads from the process environment before the data directory's files: none of
/// it may leak in from the shell running the tests.
const SAMPLE_VARIABLES: [&str; 8] = [
    "OKTA_DOMAIN",
    "ID_TOKEN",
    "AI_AGENT_ID",
    "AI_AGENT_PRIVATE_KEY_FILE",
    "AI_AGENT_PRIVATE_KEY_KID",
    "MCP_AUTHORIZATION_SERVER",
    "MCP_RESOURCE_INDICATOR",
    "AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST",
];

fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// `<target>/node-interop` (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
fn install_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("node-interop")
}

fn run_setup(command: &mut Command, what: &str) -> std::process::Output {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not start {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The installed `node_modules`, running `npm ci` when the lock file changed or nothing is there.
fn node_modules() -> &'static Path {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    INSTALLED.get_or_init(ensure_installed)
}

fn ensure_installed() -> PathBuf {
    let version = Command::new("node").arg("--version").output();
    let major = version
        .as_ref()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout);
            text.trim()
                .trim_start_matches('v')
                .split('.')
                .next()?
                .parse::<u32>()
                .ok()
        });
    assert!(
        major.is_some_and(|m| m >= MIN_NODE_MAJOR),
        "the Node interop tests need Node.js >= {MIN_NODE_MAJOR} and npm on PATH \
         (`apt-get install nodejs npm`): `node --version` gave {version:?}"
    );
    let source = project_dir();
    let dir = install_dir();
    std::fs::create_dir_all(&dir).unwrap();
    // Another test binary or cargo invocation may be installing into the same folder.
    let lock = std::fs::File::create(dir.with_extension("lock")).unwrap();
    lock.lock().unwrap();

    let manifest = std::fs::read(source.join("package.json")).unwrap();
    let lockfile = std::fs::read(source.join("package-lock.json")).unwrap();
    let stamp = dir.join("secure-agent-installed.lock.json");
    let installed = std::fs::read(&stamp).is_ok_and(|s| s == lockfile)
        && std::fs::read(dir.join("package.json")).is_ok_and(|m| m == manifest)
        && dir.join("node_modules/openid-client/package.json").exists()
        && dir
            .join("node_modules/@okta/jwt-verifier/package.json")
            .exists();
    if !installed {
        let _ = std::fs::remove_file(&stamp);
        std::fs::write(dir.join("package.json"), &manifest).unwrap();
        std::fs::write(dir.join("package-lock.json"), &lockfile).unwrap();
        let started = std::time::Instant::now();
        run_setup(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .env("npm_config_update_notifier", "false")
                .current_dir(&dir),
            &format!("`npm ci` of {} into {}", source.display(), dir.display()),
        );
        eprintln!("npm ci took {:.1?}", started.elapsed());
        std::fs::write(&stamp, &lockfile).unwrap();
    }
    dir.join("node_modules")
}

/// Runs `tests/node/<script>` with `env`, trusting `ca`; returns its JSON line.
fn run_script(script: &str, ca: &Path, env: &[(&str, &str)]) -> serde_json::Value {
    let output = node(script, Some(ca), env);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty());
    let out: serde_json::Value = line
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{script}: no JSON line on stdout:\n{stdout}\n{stderr}"));
    println!("{script}: {out}");
    out
}

/// Runs `tests/node/<script>` with `env`; Node trusts `ca` besides its own roots, and nothing
/// turns certificate checks off.
fn node(script: &str, ca: Option<&Path>, env: &[(&str, &str)]) -> std::process::Output {
    let modules = node_modules();
    let mut command = Command::new("node");
    command
        .arg(project_dir().join(script))
        .env("NODE_PATH", modules)
        .env_remove("NODE_EXTRA_CA_CERTS")
        .env_remove("NODE_TLS_REJECT_UNAUTHORIZED")
        .env_remove("NODE_OPTIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(ca) = ca {
        command.env("NODE_EXTRA_CA_CERTS", ca);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("could not start node: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(RUN_TIMEOUT)
        .unwrap_or_else(|_| {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{script} did not finish in {RUN_TIMEOUT:?}")
        })
        .unwrap()
}

fn env_of(dir: &Path, file: &str) -> HashMap<String, String> {
    super::env_file(&dir.join(file))
}

/// `secure-agent` with `args` on `dir`, standard input `input`, nothing from the shell's sample
/// variables; panics unless it succeeds. Returns its standard output.
fn cli(args: &[&str], dir: &Path, input: &str) -> String {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in SAMPLE_VARIABLES {
        command.env_remove(name);
    }
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "secure-agent {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The sample's agent0 login with `openid-client`: discovery from `'https://' + OKTA_DOMAIN`, the
/// authorization URL with PKCE (S256), state and nonce, idp0's login form over https, and the code
/// redeemed by `client.callback()` with agent0's own client credentials from agent0.env.
#[test]
fn openid_client_discovers_idp0_and_logs_alice_in_with_pkce_state_and_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start_with(dir.path(), [0; 4], &["--tls"]);
    let agent = env_of(dir.path(), "agent0.env");
    let domain = &agent["OKTA_DOMAIN"];
    assert_eq!(
        domain,
        &format!("localhost:{}", up.idp),
        "bare, as the sample reads it"
    );
    let issuer = format!("https://{domain}");
    let password = super::demo_password(dir.path(), "alice");
    let ca = dir.path().join("tls/ca.pem");
    let settings = [
        ("OKTA_DOMAIN", domain.as_str()),
        ("OKTA_CLIENT_ID", &agent["OKTA_CLIENT_ID"]),
        ("OKTA_CLIENT_SECRET", &agent["OKTA_CLIENT_SECRET"]),
        ("OKTA_REDIRECT_URI", &agent["OKTA_REDIRECT_URI"]),
        ("LOGIN_USERNAME", "alice"),
        ("LOGIN_PASSWORD", &password),
    ];

    // Not told about the CA, Node refuses idp0's certificate at discovery.
    let untrusting = node("oidc_login.cjs", None, &settings);
    let stderr = String::from_utf8_lossy(&untrusting.stderr);
    assert!(
        !untrusting.status.success() && stderr.contains("certificate"),
        "{stderr}"
    );

    let out = run_script("oidc_login.cjs", &ca, &settings);

    assert_eq!(out["discovered"]["issuer"], issuer, "{out}");
    assert_eq!(
        out["discovered"]["token_endpoint"],
        format!("{issuer}/oauth2/v1/token"),
        "{out}"
    );
    assert!(
        out["discovered"]["code_challenge_methods_supported"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m == "S256")),
        "{out}"
    );
    assert_eq!(
        out["authorizationUrl"]["code_challenge_method"], "S256",
        "{out}"
    );
    assert_eq!(out["authorizationUrl"]["hasState"], true, "{out}");
    assert_eq!(out["authorizationUrl"]["hasNonce"], true, "{out}");
    assert_eq!(out["callback"]["stateEchoed"], true, "{out}");
    assert_eq!(
        out["callback"]["iss"], issuer,
        "RFC 9207 iss on the redirect: {out}"
    );
    assert_eq!(out["idTokenAlg"], "RS256", "{out}");
    let id = &out["idToken"];
    assert_eq!(id["iss"], issuer, "{out}");
    assert_eq!(id["aud"], agent["OKTA_CLIENT_ID"].as_str(), "{out}");
    assert_eq!(id["preferred_username"], "alice", "{out}");
    assert_eq!(id["nonceMatched"], true, "{out}");
    assert!(id["sub"].as_str().is_some_and(|s| !s.is_empty()), "{out}");
    assert_eq!(out["userinfo"]["sub"], id["sub"], "{out}");
    assert_eq!(out["userinfo"]["preferred_username"], "alice", "{out}");
    assert_eq!(
        out["codeReuse"],
        serde_json::json!({ "opError": true, "error": "invalid_grant" }),
        "a code redeems once: {out}"
    );
    up.stop();
}

/// The sample's todo0 token check with `@okta/jwt-verifier`, configured from todo0.env, on an
/// access token that `secure-agent login` + `secure-agent token exchange` (the ID-JAG exchange and
/// the JWT-bearer redemption) minted: accepted for todo0's audience, refused for any other, and
/// refused with a changed signature.
#[test]
fn okta_jwt_verifier_accepts_a_cross_app_access_token_for_todo0_and_refuses_other_audiences() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start_with(dir.path(), [0; 4], &["--tls"]);
    let todo = env_of(dir.path(), "todo0.env");
    let (issuer, audience) = (&todo["MCP_OKTA_ISSUER"], &todo["MCP_EXPECTED_AUDIENCE"]);
    assert_eq!(
        issuer,
        &format!("https://localhost:{}/oauth2/todo0", up.idp)
    );
    assert_eq!(audience, &format!("https://localhost:{}/mcp", up.mcp));

    let password = super::demo_password(dir.path(), "alice");
    cli(
        &["login", "--username", "alice", "--password-stdin"],
        dir.path(),
        &format!("{password}\n"),
    );
    let exchanged: serde_json::Value =
        serde_json::from_str(&cli(&["token", "exchange", "--raw"], dir.path(), "")).unwrap();
    let token = exchanged["access_token"]["raw"].as_str().unwrap();

    let out = run_script(
        "verify_access_token.cjs",
        &dir.path().join("tls/ca.pem"),
        &[
            ("MCP_OKTA_ISSUER", issuer),
            ("MCP_EXPECTED_AUDIENCE", audience),
            ("ACCESS_TOKEN", token),
        ],
    );

    assert_eq!(out["jwksUri"], format!("{issuer}/v1/keys"), "{out}");
    assert_eq!(out["header"]["alg"], "RS256", "{out}");
    let claims = &out["claims"];
    assert_eq!(claims["iss"], issuer.as_str(), "{out}");
    assert_eq!(claims["aud"], audience.as_str(), "{out}");
    assert_eq!(
        claims["cid"], "agent0-agent",
        "the agent's client id: {out}"
    );
    assert_eq!(claims["act"]["sub"], "agent0-agent", "{out}");
    assert_eq!(
        claims["sub"], exchanged["access_token"]["claims"]["sub"],
        "{out}"
    );
    assert!(
        claims["scp"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s == "mcp:connect")),
        "{out}"
    );
    let wrong = out["wrongAudience"].as_object().unwrap();
    assert_eq!(wrong.len(), 2, "{out}");
    for (other, message) in wrong {
        assert!(
            message
                .as_str()
                .is_some_and(|m| m.contains("does not match expected audience")
                    && m.contains(other.as_str())),
            "audience {other}: {out}"
        );
    }
    assert!(
        out["configuredElsewhere"]
            .as_str()
            .is_some_and(|m| m.contains("does not match expected audience")),
        "{out}"
    );
    assert!(
        out["tampered"]
            .as_str()
            .is_some_and(|m| m.contains("ignature")),
        "{out}"
    );
    up.stop();
}
