//! `secure-agent github0` as a person starts it: the demo users file from the data directory,
//! one app from flags with its secret from the environment, a short `--token-lifetime`; a
//! browser walks sign-in and consent, the code is exchanged, the token works, then expires.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_secure-agent");
const CALLBACK: &str = "http://127.0.0.1:9/oauth2/v1/sts/callback";

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect(name) + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].replace("&amp;", "&")
}

#[tokio::test]
async fn the_command_serves_the_flow_with_the_demo_users_and_the_flag_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("demo-users.txt"), "alice:alice-demo-pw\n").unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["github0", "--port", "0", "--client-id", "Iv1.cli"])
        .args(["--callback-url", CALLBACK, "--token-lifetime", "2s"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("GITHUB0_CLIENT_SECRET", "cli-secret")
        .env_remove("GITHUB0_PORT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(at) = line.find("listening on 127.0.0.1:") {
                let rest = &line[at + "listening on 127.0.0.1:".len()..];
                return rest.trim_end_matches(')').parse::<u16>().unwrap();
            }
        }
        panic!("no listening line");
    })
    .await
    .unwrap();
    let base = format!("http://localhost:{port}");
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut authorize = url::Url::parse(&format!("{base}/login/oauth/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", "Iv1.cli")
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("scope", "repo")
        .append_pair("state", "cli-state");
    let first = browser.get(authorize.as_str()).send().await.unwrap();
    let login = first.headers()["location"].to_str().unwrap().to_owned();
    let page = browser
        .get(format!("{base}{login}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("sandbox"));
    let signed_in = browser
        .post(format!("{base}/session"))
        .form(&[
            ("login", "alice"),
            ("password", "alice-demo-pw"),
            ("authenticity_token", &hidden(&page, "authenticity_token")),
            ("return_to", &hidden(&page, "return_to")),
        ])
        .send()
        .await
        .unwrap();
    let back = signed_in.headers()["location"].to_str().unwrap().to_owned();
    let consent = browser
        .get(format!("{base}{back}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(consent.contains("Authorize Okta"), "{consent}");
    let decided = browser
        .post(format!("{base}/login/oauth/authorize"))
        .form(&[
            (
                "authorize_request",
                hidden(&consent, "authorize_request").as_str(),
            ),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    let callback = url::Url::parse(decided.headers()["location"].to_str().unwrap()).unwrap();
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let api = reqwest::Client::builder()
        .user_agent("cli-test")
        .build()
        .unwrap();
    let tokens: serde_json::Value = api
        .post(format!("{base}/login/oauth/access_token"))
        .header("accept", "application/json")
        .form(&[
            ("client_id", "Iv1.cli"),
            ("client_secret", "cli-secret"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["expires_in"], 2, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap();
    let me = api
        .get(format!("{base}/api/v3/user"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(
        me.json::<serde_json::Value>().await.unwrap()["login"],
        "alice"
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let expired = api
        .get(format!("{base}/api/v3/user"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 401);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn an_app_without_its_secret_is_refused_before_binding_a_port() {
    let dir = tempfile::tempdir().unwrap();
    // The port is taken: a command that bound it first would fail on that instead.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = tokio::process::Command::new(BIN)
        .args([
            "github0",
            "--port",
            &port,
            "--client-id",
            "Iv1.cli",
            "--callback-url",
            CALLBACK,
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("GITHUB0_CLIENT_SECRET")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("GITHUB0_CLIENT_SECRET"), "{stderr}");
}
