//! The TypeScript sample's own env files, written as its bootstrap writes them, start every
//! service unchanged.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use secrecy::ExposeSecret;
use testkit::{Browser, IdpHandle};

use super::BIN;

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
