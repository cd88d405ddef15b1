//! The TypeScript sample's own env files, written as its bootstrap writes them, start every
//! service unchanged; `up --sample-env` writes them for the running stack.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use secrecy::ExposeSecret;
use testkit::{Browser, IdpHandle};

use super::BIN;
use super::up::{Up, log_in_to_agent0};

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
    let access = idp
        .cross_app_access(
            &login.id_token.unwrap(),
            "http://localhost:5002/mcp",
            "mcp:connect mcp:tools:read",
        )
        .await
        .unwrap()
        .access;
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

use super::env_file as env_of;

fn start_up_with_sample(dir: &std::path::Path, root: &std::path::Path) -> Up {
    let (dir, root) = (dir.to_owned(), root.display().to_string());
    Up::start_with(&dir, [0; 4], &["--tls", "--sample-env", &root])
}

/// `up --tls --sample-env DIR` on OS-picked ports writes the sample's four files for the running
/// stack: the sample's services on ports of their own, registered at idp0 (an authorization
/// request with their redirect URIs shows the login form), its agent on the stack's MCP server.
/// Our own services start from those files, and a person logs in to agent0 started from them. A
/// second start backs up what it replaces, and the person's own earlier file stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_sample_env_writes_the_samples_files_for_the_running_stack() {
    let dir = tempfile::tempdir().unwrap();
    let sample = tempfile::tempdir().unwrap();
    let root = sample.path().to_owned();
    // The person's own file, from a bootstrap against an Okta tenant.
    let theirs = root.join("packages/todo0/.env.mcp");
    std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
    std::fs::write(&theirs, "MCP_PORT=5002\n").unwrap();
    let (path, at) = (dir.path().to_owned(), root.clone());
    let up = tokio::task::spawn_blocking(move || start_up_with_sample(&path, &at))
        .await
        .unwrap();
    let ca = std::fs::canonicalize(dir.path().join("tls/ca.pem")).unwrap();
    protocol::trust::trust_pem_file(&ca).unwrap();
    let banner = up.banner.join("\n");
    let canonical = std::fs::canonicalize(&root).unwrap();
    assert!(
        banner.contains(&format!(
            "The TypeScript sample's env files for this stack are in {}",
            canonical.display()
        )),
        "{banner}"
    );
    assert!(
        banner.contains(&format!(
            "NODE_EXTRA_CA_CERTS={} pnpm run start:all",
            ca.display()
        )),
        "{banner}"
    );
    assert!(
        banner.contains("packages/todo0/.env.mcp (its earlier version: .env.mcp.backup)"),
        "{banner}"
    );
    assert!(banner.contains("FILL IN"), "{banner}");
    let backup = |file: &str| root.join(format!("packages/{file}"));
    assert_eq!(
        std::fs::read_to_string(backup("todo0/.env.mcp.backup")).unwrap(),
        "MCP_PORT=5002\n"
    );

    let file = |name: &str| root.join(format!("packages/{name}"));
    let (agent_app, agent) = (
        env_of(&file("agent0/.env.app")),
        env_of(&file("agent0/.env.agent")),
    );
    let (todo_app, mcp) = (
        env_of(&file("todo0/.env.app")),
        env_of(&file("todo0/.env.mcp")),
    );
    let idp = format!("https://localhost:{}", up.idp);
    let as_issuer = format!("{idp}/oauth2/todo0");
    let our_mcp = format!("https://localhost:{}/mcp", up.mcp);
    let port = |value: &str| value.parse::<u16>().unwrap();
    let sample_ports = [
        port(&agent_app["PORT"]),
        port(&todo_app["PORT"]),
        port(&mcp["MCP_PORT"]),
    ];
    for sample_port in sample_ports {
        assert!(
            ![up.idp, up.mcp, up.app, up.agent].contains(&sample_port),
            "the sample's services need ports of their own: {sample_ports:?}"
        );
    }
    let sample_agent = format!("http://localhost:{}", sample_ports[0]);
    let sample_todo = format!("http://localhost:{}", sample_ports[1]);
    assert_eq!(agent_app["OKTA_DOMAIN"], format!("localhost:{}", up.idp));
    assert_eq!(agent_app["OKTA_CLIENT_ID"], "agent0");
    assert_eq!(
        agent_app["OKTA_REDIRECT_URI"],
        format!("{sample_agent}/callback")
    );
    assert_eq!(agent["OKTA_DOMAIN"], agent_app["OKTA_DOMAIN"]);
    assert_eq!(
        agent["MCP_SERVER_URL"], our_mcp,
        "the stack's own MCP server"
    );
    assert_eq!(agent["MCP_AUTHORIZATION_SERVER"], as_issuer);
    assert_eq!(
        agent["MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT"],
        format!("{as_issuer}/v1/token")
    );
    let key = std::fs::canonicalize(dir.path().join("agent0-agent.pem")).unwrap();
    assert_eq!(
        agent["AI_AGENT_PRIVATE_KEY_FILE"],
        key.display().to_string()
    );
    assert!(
        !agent.contains_key("ANTHROPIC_API_KEY"),
        "the person's to fill in"
    );
    assert_eq!(todo_app["OKTA_ISSUER"], as_issuer);
    assert_eq!(todo_app["OKTA_CLIENT_ID"], "todo0");
    assert_eq!(
        todo_app["OKTA_REDIRECT_URI"],
        format!("{sample_todo}/callback")
    );
    assert_eq!(todo_app["EXPECTED_AUDIENCE"], our_mcp);
    assert_eq!(mcp["MCP_OKTA_ISSUER"], as_issuer);
    assert_eq!(mcp["MCP_EXPECTED_AUDIENCE"], our_mcp);

    // idp0 takes the sample's redirect URIs: an authorization request shows the login form.
    let browser = Browser::new();
    let authorize = |endpoint: &str, client: &str, redirect: &str| {
        let mut url = url::Url::parse(endpoint).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", client)
            .append_pair("redirect_uri", redirect)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid profile email")
            .append_pair("state", "sample-state")
            .append_pair("nonce", "sample-nonce")
            .append_pair("code_challenge", &"A".repeat(43))
            .append_pair("code_challenge_method", "S256");
        browser.http.get(url).send()
    };
    for (endpoint, client, redirect) in [
        (
            format!("{idp}/oauth2/v1/authorize"),
            "agent0",
            &agent_app["OKTA_REDIRECT_URI"],
        ),
        (
            format!("{as_issuer}/v1/authorize"),
            "todo0",
            &todo_app["OKTA_REDIRECT_URI"],
        ),
    ] {
        let page = authorize(&endpoint, client, redirect).await.unwrap();
        assert_eq!(page.status(), 200, "{endpoint} {client} {redirect}");
        let html = page.text().await.unwrap();
        assert!(html.contains("name=\"password\""), "{client}: {html}");
    }
    let elsewhere = authorize(
        &format!("{idp}/oauth2/v1/authorize"),
        "agent0",
        "http://localhost:1/callback",
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(elsewhere.contains("not registered"), "{elsewhere}");

    // Our own services start from the four files, on the ports they name, trusting the stack's CA.
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let show = |p: &std::path::Path| p.display().to_string();
    let (data_arg, ca_arg) = (show(data.path()), show(&ca));
    let (agent_app_file, agent_file, todo_app_file, mcp_file) = (
        show(&file("agent0/.env.app")),
        show(&file("agent0/.env.agent")),
        show(&file("todo0/.env.app")),
        show(&file("todo0/.env.mcp")),
    );
    let cwd_path = cwd.path().to_owned();
    let services = tokio::task::spawn_blocking(move || {
        let common = ["--data-dir", &data_arg, "--ca-file", &ca_arg];
        let args = |service: &str, files: &[&str]| -> Vec<String> {
            let mut args = vec![service.to_owned()];
            args.extend(common.iter().map(|a| (*a).to_owned()));
            for f in files {
                args.extend(["--env-file".to_owned(), (*f).to_owned()]);
            }
            args
        };
        let start = |args: Vec<String>, marker: &str| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            start_service(&cwd_path, &args, marker)
        };
        let mcp = start(
            args("todo-mcp", &[&mcp_file]),
            "MCP endpoint:      http://127.0.0.1:",
        );
        let app = start(
            args("todo-app", &[&todo_app_file]),
            "(listening on 127.0.0.1:",
        );
        let agent = start(
            args("agent", &[&agent_app_file, &agent_file]),
            "agent0 listening on 127.0.0.1:",
        );
        (mcp, app, agent)
    })
    .await
    .unwrap();
    let (mcp_service, app_service, agent_service) = services;
    assert_eq!(
        [agent_service.port, app_service.port, mcp_service.port],
        sample_ports
    );
    for service in [&mcp_service, &app_service, &agent_service] {
        let health = browser
            .http
            .get(format!("http://127.0.0.1:{}/health", service.port))
            .send()
            .await
            .unwrap();
        assert!(health.status().is_success());
    }
    // A person logs in to agent0 started from the sample's files: through idp0 and back on the
    // sample's port.
    let password = super::demo_password(dir.path(), "alice");
    log_in_to_agent0(&Browser::new(), &sample_agent, "alice", &password).await;
    drop((mcp_service, app_service, agent_service));

    // A second start (other ports) replaces the files, keeping each earlier version; the
    // person's own file stays where the first start put it.
    let first_mcp = std::fs::read_to_string(file("todo0/.env.mcp")).unwrap();
    tokio::task::spawn_blocking(move || up.stop())
        .await
        .unwrap();
    let (path, at) = (dir.path().to_owned(), root.clone());
    let again = tokio::task::spawn_blocking(move || start_up_with_sample(&path, &at))
        .await
        .unwrap();
    for name in ["agent0/.env.app", "agent0/.env.agent", "todo0/.env.app"] {
        assert!(
            backup(&format!("{name}.backup")).exists(),
            "{name} backed up"
        );
    }
    assert_eq!(
        std::fs::read_to_string(backup("todo0/.env.mcp.backup")).unwrap(),
        "MCP_PORT=5002\n"
    );
    assert_eq!(
        std::fs::read_to_string(backup("todo0/.env.mcp.1.backup")).unwrap(),
        first_mcp
    );
    assert_eq!(
        env_of(&file("agent0/.env.agent"))["MCP_SERVER_URL"],
        format!("https://localhost:{}/mcp", again.mcp)
    );
    tokio::task::spawn_blocking(move || again.stop())
        .await
        .unwrap();
}

/// A sample port past 65535 is refused, naming the flag to change, before anything is configured.
#[test]
fn up_sample_env_refuses_ports_the_sample_cannot_have() {
    let dir = tempfile::tempdir().unwrap();
    let high = (65_436..=65_535)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .unwrap();
    let output = Command::new(BIN)
        .args([
            "up",
            "--idp-port",
            "0",
            "--mcp-port",
            "0",
            "--github-port",
            "0",
        ])
        .args(["--app-port", "0", "--agent-port", &high.to_string()])
        .arg("--sample-env")
        .arg(dir.path().join("sample"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("--agent-port {high} leaves no room")),
        "{stderr}"
    );
    assert!(!dir.path().join("data/idp0.toml").exists());
    assert!(!dir.path().join("sample").exists());
}
