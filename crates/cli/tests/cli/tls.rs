//! `up --tls` as a person runs it: a local CA made once, every service on https, J1 + J2 over
//! https with a client that trusts only what `up` told it to, the CLI reaching the stack with no
//! flag, and a restart that keeps the CA.

use std::process::Command;

use testkit::Browser;

use super::BIN;
use super::up::{Up, chat, log_in_to_agent0};

fn env_of(dir: &std::path::Path, file: &str) -> std::collections::HashMap<String, String> {
    super::env_file(&dir.join(file))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_tls_serves_every_service_over_https_from_a_local_ca_kept_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let up = tokio::task::spawn_blocking(move || Up::start_with(&path, [0; 4], &["--tls"]))
        .await
        .unwrap();
    let ca = dir.path().join("tls/ca.pem");
    let ca_text = std::fs::read_to_string(&ca).unwrap();
    let banner = up.banner.join("\n");
    let canonical = std::fs::canonicalize(&ca).unwrap();
    assert!(
        banner.contains(&format!("NODE_EXTRA_CA_CERTS={}", canonical.display())),
        "up says how to trust its CA:\n{banner}"
    );
    assert!(banner.contains("REQUESTS_CA_BUNDLE=") && banner.contains("SSL_CERT_FILE="));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tls/ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the CA key is the owner's only");
    }

    // The env files name https URLs, and OKTA_DOMAIN the bare host:port the sample expects.
    let agent_env = env_of(dir.path(), "agent0.env");
    assert_eq!(agent_env["OKTA_DOMAIN"], format!("localhost:{}", up.idp));
    let agent = format!("https://localhost:{}", up.agent);
    let mcp = format!("https://localhost:{}/mcp", up.mcp);
    assert_eq!(agent_env["OKTA_REDIRECT_URI"], format!("{agent}/callback"));
    assert_eq!(agent_env["MCP_SERVER_URL"], mcp);
    let todo_env = env_of(dir.path(), "todo0.env");
    assert_eq!(
        todo_env["MCP_OKTA_ISSUER"],
        format!("https://localhost:{}/oauth2/todo0", up.idp)
    );

    // A client that has not been told about the CA is refused at the handshake; plain http to
    // an https port gets no answer.
    let untrusting = reqwest::Client::new();
    let refused = untrusting
        .get(format!("https://localhost:{}/health", up.idp))
        .send()
        .await
        .unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");
    assert!(
        untrusting
            .get(format!("http://localhost:{}/health", up.idp))
            .send()
            .await
            .is_err()
    );

    // Trusting the CA `up` printed, a person does J1 and J2 over https: login at idp0, the
    // code back at agent0, the ID-JAG exchange and the MCP call between the services.
    protocol::trust::trust_pem_file(&ca).unwrap();
    let discovery: serde_json::Value = Browser::new()
        .http
        .get(format!(
            "https://localhost:{}/.well-known/openid-configuration",
            up.idp
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["issuer"],
        format!("https://localhost:{}", up.idp),
        "an https issuer (RFC 8414 §2)"
    );
    let password = super::demo_password(dir.path(), "alice");
    let browser = Browser::new();
    let csrf = log_in_to_agent0(&browser, &agent, "alice", &password).await;
    let reply = chat(&browser, &agent, &csrf, "list my todos").await;
    let chip = &reply["toolResults"][0];
    assert_eq!(chip["tool"], "get-todos", "{reply}");
    assert_eq!(chip["isError"], false, "{reply}");
    let cookies = browser
        .http
        .get(format!("{agent}/auth/status"))
        .send()
        .await
        .unwrap();
    assert!(cookies.status().is_success());

    // The CLI in another process reaches the https stack with no CA flag: it trusts the data
    // directory's CA by itself.
    let mut login = Command::new(BIN)
        .args([
            "login",
            "--username",
            "alice",
            "--password-stdin",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = login.stdin.take().unwrap();
        writeln!(stdin, "{password}").unwrap();
    }
    let login = login.wait_with_output().unwrap();
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let tools = Command::new(BIN)
        .args(["mcp", "tools", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        tools.status.success(),
        "{}",
        String::from_utf8_lossy(&tools.stderr)
    );
    assert!(String::from_utf8_lossy(&tools.stdout).contains("get-todos"));

    // A restart on other ports keeps the CA (what the person trusted stays trusted).
    tokio::task::spawn_blocking(move || up.stop())
        .await
        .unwrap();
    let path = dir.path().to_owned();
    let again = tokio::task::spawn_blocking(move || Up::start_with(&path, [0; 4], &["--tls"]))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&ca).unwrap(), ca_text);
    let health = Browser::new()
        .http
        .get(format!("https://localhost:{}/health", again.agent))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    tokio::task::spawn_blocking(move || again.stop())
        .await
        .unwrap();
}

#[test]
fn tls_cert_without_its_key_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["idp", "--port", "0", "--tls-cert", "cert.pem", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--tls-key"), "{stderr}");
}

/// `--tls-cert` / `--tls-key`: a certificate of the person's own (here from a CA made elsewhere),
/// served as given; a client told about that CA with `--ca-file` reaches it, one that is not
/// is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::disallowed_methods)] // a real TLS client checks against the real time
async fn a_given_certificate_is_served_and_ca_file_makes_the_cli_trust_it() {
    use std::io::{BufRead, BufReader};
    let elsewhere = tempfile::tempdir().unwrap();
    let (ca, _) =
        httpserve::tls::LocalCa::ensure(elsewhere.path(), std::time::SystemTime::now()).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut idp = Command::new(BIN)
        .args(["idp", "--port", "0", "--tls-cert"])
        .arg(&ca.cert)
        .arg("--tls-key")
        .arg(&ca.key)
        .arg("--data-dir")
        .arg(data.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marker = "org issuer:        https://localhost:";
    let mut lines = BufReader::new(idp.stdout.take().unwrap()).lines();
    let port: u16 = lines
        .by_ref()
        .map(Result::unwrap)
        .find_map(|line| {
            let at = line.find(marker)?;
            line[at + marker.len()..].parse().ok()
        })
        .unwrap();
    // Keep reading what it prints later: a closed stdout would stop idp0 at its next line.
    std::thread::spawn(move || lines.for_each(drop));
    assert!(
        !data.path().join("tls").exists(),
        "no local CA is made when a certificate is given"
    );
    // The CLI in another process: without the CA it fails at the handshake; with --ca-file
    // it logs in.
    let password = super::demo_password(data.path(), "alice");
    let login = |extra: &[&std::ffi::OsStr]| {
        use std::io::Write;
        let mut child = Command::new(BIN)
            .args([
                "login",
                "--username",
                "alice",
                "--password-stdin",
                "--issuer",
            ])
            .arg(format!("https://localhost:{port}"))
            .args(extra)
            .arg("--data-dir")
            .arg(data.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let refused = login(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.to_lowercase().contains("certificate") || stderr.contains("UnknownIssuer"),
        "{stderr}"
    );
    let trusted = login(&["--ca-file".as_ref(), ca.ca_cert.as_os_str()]);
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    let trusted = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(&std::fs::read(&ca.ca_cert).unwrap()).unwrap(),
        ])
        .build()
        .unwrap();
    let discovery: serde_json::Value = trusted
        .get(format!(
            "https://localhost:{port}/.well-known/openid-configuration"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], format!("https://localhost:{port}"));
    let _ = idp.kill();
    let _ = idp.wait();
}
