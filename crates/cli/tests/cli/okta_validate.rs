//! `secure-agent okta validate`, and the services started from the files bootstrap wrote: the
//! checks against the stand-in org (published keys, files, key mode) and against a running
//! idp0 + todo0 (discovery, a real `private_key_jwt`, `--login` with both ID-JAG steps and an
//! MCP tools/list).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::BIN;
use super::okta::{bootstrap, okta};
use super::okta_standin::{StandIn, TOKEN};

/// The sample's four files for a running idp0's development configuration, as bootstrap lays
/// them out (the key file named by its absolute path).
fn files_for_idp0(idp: &testkit::IdpHandle, out: &Path, kid: Option<&str>) {
    let agent = idp.env("agent0.env");
    let todo = idp.env("todo0.env");
    let var = |map: &std::collections::HashMap<String, String>, name: &str| {
        map.get(name).cloned().unwrap_or_else(|| panic!("{name}"))
    };
    let write = |file: &str, vars: &[(&str, String)]| {
        let path = out.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(&path, text).unwrap();
    };
    write(
        "packages/agent0/.env.app",
        &[
            ("PORT", "3000".into()),
            ("OKTA_DOMAIN", var(&agent, "OKTA_DOMAIN")),
            ("OKTA_CLIENT_ID", var(&agent, "OKTA_CLIENT_ID")),
            ("OKTA_CLIENT_SECRET", var(&agent, "OKTA_CLIENT_SECRET")),
            ("OKTA_REDIRECT_URI", var(&agent, "OKTA_REDIRECT_URI")),
        ],
    );
    write(
        "packages/agent0/.env.agent",
        &[
            ("OKTA_DOMAIN", var(&agent, "OKTA_DOMAIN")),
            ("AI_AGENT_ID", var(&agent, "AI_AGENT_ID")),
            (
                "AI_AGENT_PRIVATE_KEY_FILE",
                var(&agent, "AI_AGENT_PRIVATE_KEY_FILE"),
            ),
            (
                "AI_AGENT_PRIVATE_KEY_KID",
                kid.map_or_else(|| var(&agent, "AI_AGENT_PRIVATE_KEY_KID"), str::to_owned),
            ),
            ("MCP_SERVER_URL", var(&agent, "MCP_SERVER_URL")),
            (
                "MCP_RESOURCE_INDICATOR",
                var(&agent, "MCP_RESOURCE_INDICATOR"),
            ),
            (
                "MCP_AUTHORIZATION_SERVER",
                var(&agent, "MCP_AUTHORIZATION_SERVER"),
            ),
            (
                "MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT",
                var(&agent, "MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT"),
            ),
        ],
    );
    write(
        "packages/todo0/.env.app",
        &[
            ("PORT", "5001".into()),
            ("OKTA_ISSUER", var(&todo, "MCP_OKTA_ISSUER")),
            ("OKTA_CLIENT_ID", "todo0".into()),
            (
                "OKTA_CLIENT_SECRET",
                secrecy::ExposeSecret::expose_secret(&idp.client_secret("todo0")).to_owned(),
            ),
            ("OKTA_REDIRECT_URI", "http://localhost:5001/callback".into()),
            ("EXPECTED_AUDIENCE", var(&todo, "MCP_EXPECTED_AUDIENCE")),
        ],
    );
    write(
        "packages/todo0/.env.mcp",
        &[
            ("MCP_PORT", "5002".into()),
            ("MCP_OKTA_ISSUER", var(&todo, "MCP_OKTA_ISSUER")),
            ("MCP_EXPECTED_AUDIENCE", var(&todo, "MCP_EXPECTED_AUDIENCE")),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_validate_checks_files_key_discovery_and_a_real_private_key_jwt_at_idp0() {
    let idp = testkit::IdpHandle::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    files_for_idp0(&idp, dir.path(), None);
    let run = okta(&["validate", "--out", &out], None).await;
    for line in [
        "PASS  file packages/agent0/.env.app",
        "PASS  file packages/todo0/.env.mcp",
        "PASS  settings agree",
        "PASS  agent key file",
        "PASS  discovery of the org authorization server",
        "PASS  discovery of the MCP authorization server",
        "PASS  agent client authentication (private_key_jwt)",
        // No API token: the published keys cannot be read (idp0 has no management API yet).
        "FAIL  published key",
    ] {
        assert!(run.stdout.contains(line), "{line}:\n{}", run.stdout);
    }
    assert!(!run.ok, "a failed check fails the command");
    assert!(
        run.stdout.contains("fix: set OKTA_API_TOKEN"),
        "{}",
        run.stdout
    );

    // A kid the org does not know: the client is refused, and the fix names the key and kid.
    files_for_idp0(&idp, dir.path(), Some("not-the-kid"));
    let run = okta(&["validate", "--out", &out], None).await;
    assert!(!run.ok);
    assert!(
        run.stdout
            .contains("FAIL  agent client authentication (private_key_jwt)")
            && run.stdout.contains("invalid_client")
            && run.stdout.contains("key or kid"),
        "{}",
        run.stdout
    );
    let secret = idp.client_secret("agent0");
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(secrecy::ExposeSecret::expose_secret(&secret)));
    }

    // A missing file is a FAIL with the fix.
    std::fs::remove_file(dir.path().join("packages/todo0/.env.mcp")).unwrap();
    let run = okta(&["validate", "--out", &out], None).await;
    assert!(!run.ok);
    assert!(
        run.stdout.contains("FAIL  file packages/todo0/.env.mcp")
            && run.stdout.contains("okta bootstrap"),
        "{}",
        run.stdout
    );
}

/// `validate --login`: the person's login on the loopback redirect (driven here as a browser
/// would), both ID-JAG steps with the agent's key, and an MCP tools/list at todo0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_validate_login_runs_a_real_login_both_id_jag_steps_and_tools_list() {
    use tokio::io::AsyncBufReadExt;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stack = testkit::Stack::start_for_agent(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    let idp = &stack.idp;
    let dir = tempfile::tempdir().unwrap();
    files_for_idp0(idp, dir.path(), None);
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "okta",
            "validate",
            "--login",
            "--no-browser",
            "--timeout",
            "60",
        ])
        .arg("--login-port")
        .arg(port.to_string())
        .arg("--out")
        .arg(dir.path())
        .env_remove("OKTA_API_TOKEN")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut url = None;
    while let Some(line) = stderr.next_line().await.unwrap() {
        if line.trim_start().starts_with(&format!("{}/", idp.issuer)) {
            url = Some(line.trim().to_owned());
            break;
        }
    }
    let url = url.expect("validate --login prints the authorization URL");
    assert!(url.contains(&format!(
        "redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fcallback"
    )));
    let password = idp.password("alice");
    let page = testkit::Browser::new()
        .log_in_to(
            &url,
            ("alice", &password),
            &format!("http://127.0.0.1:{port}/callback"),
        )
        .await
        .unwrap();
    assert!(page.status().is_success(), "{}", page.status());
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in [
        "PASS  login with the agent0 app",
        "PASS  Cross-App Access",
        "PASS  MCP tools/list",
    ] {
        assert!(stdout.contains(line), "{line}:\n{stdout}");
    }
    // Only the published-key check fails (no API token; idp0 has no management API yet).
    assert_eq!(stdout.matches("FAIL").count(), 1, "{stdout}");
}

/// Runs `secure-agent <args>` and waits for the line containing `marker`; the child is killed
/// when the guard is dropped.
struct Started(std::process::Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(cwd: &Path, data_dir: &Path, args: &[&str], marker: &str) -> Started {
    use std::io::BufRead;
    let mut child = std::process::Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .current_dir(cwd)
        .env_remove("PORT")
        .env_remove("OKTA_DOMAIN")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("LLM_PROVIDER")
        .env_remove("MCP_PORT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let found = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains(marker));
    std::thread::spawn(move || lines.for_each(drop));
    if !found {
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        panic!("{args:?} did not start: {stderr}");
    }
    Started(child)
}

/// `secure-agent agent`, `todo-mcp` and `todo-app` start from the files bootstrap wrote, as
/// they are (only the ports are moved off the defaults, which a test cannot count on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_bootstrap_files_start_the_agent_and_both_todo0_services() {
    let org = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("checkout");
    let run = bootstrap(&org, &out).await;
    assert!(run.ok, "{}", run.stderr);
    let data = dir.path().join("data");
    let (out2, data2) = (out.clone(), data.clone());
    tokio::task::spawn_blocking(move || {
        let _mcp = start(
            &out2,
            &data2,
            &[
                "todo-mcp",
                "--env-file",
                "packages/todo0/.env.mcp",
                "--port",
                "0",
            ],
            "MCP endpoint",
        );
        let _app = start(
            &out2,
            &data2,
            &[
                "todo-app",
                "--env-file",
                "packages/todo0/.env.app",
                "--port",
                "0",
            ],
            "todo0 web app is running",
        );
        let _agent = start(
            &out2,
            &data2,
            &[
                "agent",
                "--env-file",
                "packages/agent0/.env.app",
                "--env-file",
                "packages/agent0/.env.agent",
                "--port",
                "0",
            ],
            "agent0 listening",
        );
    })
    .await
    .unwrap();
}

/// validate reads the agent's published keys with the API token: the kid in the files is the
/// one Okta returned, with the file's public key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_validate_finds_the_kid_among_the_agents_published_keys() {
    let org = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    assert!(bootstrap(&org, dir.path()).await.ok);
    let out = dir.path().display().to_string();
    let run = okta(&["validate", "--out", &out], Some(TOKEN)).await;
    for line in [
        "PASS  settings agree",
        "PASS  agent key file",
        "PASS  published key: kid okta-kid-10 is published for agent wlp8",
        "PASS  discovery of the org authorization server",
        "PASS  discovery of the MCP authorization server",
        // The stand-in has no token endpoint.
        "FAIL  agent client authentication",
    ] {
        assert!(run.stdout.contains(line), "{line}:\n{}", run.stdout);
    }
    let agent = dir.path().join("packages/agent0/.env.agent");
    let text = std::fs::read_to_string(&agent).unwrap();
    std::fs::write(&agent, text.replace("okta-kid-10", "okta-kid-99")).unwrap();
    let run = okta(&["validate", "--out", &out], Some(TOKEN)).await;
    assert!(
        run.stdout
            .contains("FAIL  published key: agent wlp8 publishes no key with kid okta-kid-99"),
        "{}",
        run.stdout
    );
    std::fs::set_permissions(
        dir.path().join("packages/agent0/agent0-agent.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let run = okta(&["validate", "--out", &out], Some(TOKEN)).await;
    assert!(
        run.stdout.contains("has mode 644") && run.stdout.contains("chmod 600"),
        "{}",
        run.stdout
    );
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(TOKEN) && !text.contains("SECRET"));
    }
}

/// OKTA_DOMAIN comes from a file: validate sends the API token only to an address bootstrap
/// would accept as an org (https, or http on loopback, without a path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_validate_sends_the_api_token_only_to_an_org_address() {
    let org = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    assert!(bootstrap(&org, dir.path()).await.ok);
    let env = dir.path().join("packages/agent0/.env.agent");
    let text = std::fs::read_to_string(&env).unwrap();
    let edited: String = text
        .lines()
        .map(|line| {
            if line.starts_with("OKTA_DOMAIN=") {
                format!("OKTA_DOMAIN={}/some/tenant\n", org.base)
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    std::fs::write(&env, edited).unwrap();
    let before = org.requests().len();
    let out = dir.path().display().to_string();
    let run = okta(&["validate", "--out", &out], Some(TOKEN)).await;
    assert!(!run.ok);
    assert!(
        run.stdout.contains("FAIL  published key") && run.stdout.contains("not sent there"),
        "{}",
        run.stdout
    );
    let with_token = org.requests()[before..]
        .iter()
        .filter(|r| {
            r.authorization
                .as_deref()
                .is_some_and(|a| a.contains(TOKEN))
        })
        .count();
    assert_eq!(
        with_token, 0,
        "the API token was sent to {}/some/tenant",
        org.base
    );
}
