//! The whole `okta` cycle offline (issue 9's first required test, J5 with J2 inside it): a real
//! `secure-agent idp` plays the Okta org; `okta bootstrap` configures it through the management
//! API; `todo-mcp`, `todo-app` and `agent` start from the files it wrote, unchanged; alice
//! passes J2 through agent0 with the offline model and finds her todo in todo0's web app;
//! `okta validate --login` (its browser step driven here) passes every check; `okta rollback`
//! leaves none of what was created, and a second rollback has nothing to do. Loopback only,
//! ports chosen here (never the defaults), every process stopped by its guard.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::Browser;

use super::okta::Run;
use super::up::{chat, has_default_port, log_in_to_agent0, post_json};
use super::{BIN, demo_password, env_file};

/// A child process killed (and reaped) when dropped, with its stdout drained by a thread so
/// it never writes into a closed pipe.
struct Service {
    child: std::process::Child,
    name: &'static str,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `secure-agent <args>` in `cwd` and waits for the stdout line containing `marker`;
/// returns the service and the lines it printed until then.
fn start(name: &'static str, cwd: &Path, args: &[&str], marker: &str) -> (Service, Vec<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        // Only the files speak: nothing from the test's own environment.
        .env_remove("PORT")
        .env_remove("MCP_PORT")
        .env_remove("OKTA_DOMAIN")
        .env_remove("OKTA_ISSUER")
        .env_remove("OKTA_API_TOKEN")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("LLM_PROVIDER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut found = false;
    for line in lines.by_ref().map_while(Result::ok) {
        found = line.contains(marker);
        seen.push(line);
        if found {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let stderr = child.stderr.take().unwrap();
    if !found {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text).unwrap();
        panic!("{name} ({args:?}) did not start: {seen:#?}\n{text}");
    }
    std::thread::spawn(move || BufReader::new(stderr).lines().for_each(drop));
    (Service { child, name }, seen)
}

/// A port free on the loopback now (the OS's choice; the services bind it from the files).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `secure-agent okta <args>` run in `cwd` with the API token, and how long it took.
async fn okta_in(cwd: &Path, args: &[&str], token: &str) -> (Run, Duration) {
    let started = Instant::now();
    let output = tokio::process::Command::new(BIN)
        .arg("okta")
        .args(args)
        .current_dir(cwd)
        .env("OKTA_API_TOKEN", token)
        .env_remove("OKTA_ORG_URL")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let took = started.elapsed();
    let run = Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    (run, took)
}

/// Every item of a management API list, following `Link: <…>; rel="next"`.
async fn list_all(http: &reqwest::Client, url: &str, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut next = Some(url.to_owned());
    while let Some(url) = next.take() {
        let response = http
            .get(&url)
            .header("authorization", format!("SSWS {token}"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        next = response
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find(|l| l.contains("rel=\"next\""))
            .and_then(|l| Some(l.split_once('<')?.1.split_once('>')?.0.to_owned()));
        let body: Value = response.json().await.unwrap();
        // The AI agents list answers `{data: […]}`, Okta's v1 lists a bare array.
        let page = body
            .get("data")
            .cloned()
            .unwrap_or(body)
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("{url}: not a list"));
        items.extend(page);
    }
    items
}

/// Every id the state file records (apps, servers, policies, rules, agent, connection,
/// trusted origins).
fn recorded_ids(state: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for key in [
        "mcpAuthServerIds",
        "agent0AppIds",
        "todo0AppIds",
        "agentIdentityIds",
        "mcpPolicyIds",
        "mcpPolicyRuleIds",
        "trustedOriginIds",
    ] {
        let list = state[key].as_array().unwrap_or_else(|| panic!("{key}"));
        assert!(!list.is_empty(), "bootstrap recorded no {key}");
        ids.extend(list.iter().map(|v| v.as_str().unwrap().to_owned()));
    }
    for connection in state["agentConnections"].as_array().unwrap() {
        ids.push(connection["connectionId"].as_str().unwrap().to_owned());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_bootstrap_services_j2_validate_login_and_rollback_against_a_running_idp0() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let idp_data = root.join("idp0");
    let out = root.join("checkout");
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();

    // 1. idp0 on a port the OS picks, with a fresh development configuration.
    let (idp, banner) = {
        let (cwd, data) = (elsewhere.clone(), idp_data.display().to_string());
        tokio::task::spawn_blocking(move || {
            let args = ["idp", "--port", "0", "--data-dir", &data];
            start("idp0", &cwd, &args, "settings for agent0")
        })
        .await
        .unwrap()
    };
    let org = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("org issuer:"))
        .map(|i| i.trim().to_owned())
        .expect("idp0 prints its issuer");
    let token = std::fs::read_to_string(idp_data.join("idp0-admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(!token.is_empty());
    let password = demo_password(&idp_data, "alice");

    // 2. bootstrap from another folder than --out, on ports that are not the defaults.
    let (agent_port, todo_port, mcp_port, login_port) =
        (free_port(), free_port(), free_port(), free_port());
    let ports = [agent_port, todo_port, mcp_port, login_port].map(|p| p.to_string());
    let out_arg = out.display().to_string();
    let (bootstrap, took) = okta_in(
        &elsewhere,
        &[
            "bootstrap",
            "--org",
            &org,
            "--yes",
            "--out",
            &out_arg,
            "--agent-port",
            &ports[0],
            "--todo-port",
            &ports[1],
            "--mcp-port",
            &ports[2],
            "--login-port",
            &ports[3],
            "--poll-interval-ms",
            "50",
        ],
        &token,
    )
    .await;
    eprintln!("okta bootstrap against idp0: {took:?}");
    assert!(bootstrap.ok, "{}\n{}", bootstrap.stdout, bootstrap.stderr);
    assert!(
        !elsewhere.join(".okta-bootstrap-state.json").exists(),
        "everything goes under --out"
    );
    let agent_app = env_file(&out.join("packages/agent0/.env.app"));
    let agent_env = env_file(&out.join("packages/agent0/.env.agent"));
    let todo_app = env_file(&out.join("packages/todo0/.env.app"));
    assert_eq!(agent_env["LLM_PROVIDER"], "offline");
    for (file, vars) in [
        ("agent0/.env.app", &agent_app),
        ("agent0/.env.agent", &agent_env),
        ("todo0/.env.app", &todo_app),
        (
            "todo0/.env.mcp",
            &env_file(&out.join("packages/todo0/.env.mcp")),
        ),
    ] {
        for (key, value) in vars.iter() {
            assert!(
                !has_default_port(value),
                "{file}: {key}={value} names a default port"
            );
        }
    }
    let secrets = [
        agent_app["OKTA_CLIENT_SECRET"].clone(),
        todo_app["OKTA_CLIENT_SECRET"].clone(),
    ];
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(".okta-bootstrap-state.json")).unwrap(),
    )
    .unwrap();
    let ids = recorded_ids(&state);

    // 3. The three services from the written files, unchanged, run from a neutral folder (the
    // agent's key path is relative to its env file's folder). todo0's two services share a
    // data directory (the same todos); agent0 has its own.
    let services = {
        let (cwd, out) = (elsewhere.clone(), out.clone());
        let (todo_data, agent_data) = (root.join("todo0-data"), root.join("agent0-data"));
        tokio::task::spawn_blocking(move || {
            let file = |f: &str| out.join(f).display().to_string();
            let todo_data = todo_data.display().to_string();
            let agent_data = agent_data.display().to_string();
            let (mcp, _) = start(
                "todo-mcp",
                &cwd,
                &[
                    "todo-mcp",
                    "--env-file",
                    &file("packages/todo0/.env.mcp"),
                    "--data-dir",
                    &todo_data,
                ],
                "MCP endpoint",
            );
            let (app, _) = start(
                "todo-app",
                &cwd,
                &[
                    "todo-app",
                    "--env-file",
                    &file("packages/todo0/.env.app"),
                    "--data-dir",
                    &todo_data,
                ],
                "todo0 web app is running",
            );
            let (agent, _) = start(
                "agent",
                &cwd,
                &[
                    "agent",
                    "--env-file",
                    &file("packages/agent0/.env.app"),
                    "--env-file",
                    &file("packages/agent0/.env.agent"),
                    "--data-dir",
                    &agent_data,
                ],
                "agent0 listening",
            );
            vec![agent, app, mcp]
        })
        .await
        .unwrap()
    };

    // 4. J2 through agent0 (offline model): alice logs in on the app bootstrap created; the
    // agent lists her todos, then creates one after her approval, then lists it.
    let agent = format!("http://localhost:{agent_port}");
    let browser = Browser::new();
    let csrf = log_in_to_agent0(&browser, &agent, "alice", &password).await;
    let reply = chat(&browser, &agent, &csrf, "list my todos").await;
    let chip = &reply["toolResults"][0];
    assert_eq!(chip["tool"], "get-todos", "{reply}");
    assert_eq!(chip["isError"], false, "{reply}");
    assert_eq!(chip["result"]["count"], 0, "{reply}");
    let asked = chat(&browser, &agent, &csrf, "add a todo \"prep the demo\"").await;
    let card = &asked["confirmation"];
    // The files request every MCP scope up front (the sample's
    // AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST), so the write may run at once; where agent0
    // asks first, alice approves.
    let reply = if card.is_null() {
        asked.clone()
    } else {
        assert_eq!(card["tool"], "create-todo", "{asked}");
        post_json(
            &browser,
            &format!("{agent}/api/chat/confirm"),
            &csrf,
            &serde_json::json!({
                "id": card["id"],
                "conversationId": card["conversationId"],
                "decision": "approve",
            }),
        )
        .await
    };
    let chip = &reply["toolResults"][0];
    assert_eq!(chip["tool"], "create-todo", "{reply}");
    assert_eq!(chip["isError"], false, "{reply}");
    let reply = chat(&browser, &agent, &csrf, "list my todos").await;
    let chip = &reply["toolResults"][0];
    assert_eq!(chip["tool"], "get-todos", "{reply}");
    assert_eq!(chip["result"]["count"], 1, "{reply}");
    assert!(reply.to_string().contains("prep the demo"), "{reply}");

    // todo0's web app (the todo0 app bootstrap created, signing in at the MCP authorization
    // server): alice logs in through idp0's form and sees the todo the agent created.
    let todo = format!("http://localhost:{todo_port}");
    let web = Browser::new();
    let start_login = web.http.get(format!("{todo}/login")).send().await.unwrap();
    let authorize = testkit::location(&start_login).unwrap();
    assert!(
        authorize.as_str().starts_with(&todo_app["OKTA_ISSUER"]),
        "{authorize}"
    );
    let form = web.http.get(authorize.clone()).send().await.unwrap();
    assert!(form.status().is_success(), "{}", form.status());
    let html = form.text().await.unwrap();
    let done = web
        .submit_login(authorize.as_str(), &html, "alice", &password)
        .await
        .unwrap();
    let callback = testkit::location(&done).unwrap();
    assert!(
        callback.as_str().starts_with(&format!("{todo}/callback?"))
            && callback.query_pairs().any(|(k, _)| k == "code"),
        "idp0 lets the todo0 app sign alice in: {callback}"
    );
    let back = web.http.get(callback).send().await.unwrap();
    assert!(back.status().is_redirection(), "{}", back.status());
    let todos: Value = web
        .http
        .get(format!("{todo}/todos"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let titles: Vec<&str> = todos
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["title"].as_str())
        .collect();
    assert_eq!(titles, ["prep the demo"], "{todos}");

    // 5. validate --login: the printed URL driven as a browser (form, then the redirect to the
    // loopback callback); every check passes.
    let validate = {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(BIN)
            .args(["okta", "validate", "--login", "--no-browser"])
            .args([
                "--timeout",
                "60",
                "--login-port",
                &ports[3],
                "--out",
                &out_arg,
            ])
            .current_dir(&elsewhere)
            .env("OKTA_API_TOKEN", &token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut printed = Vec::new();
        let mut url = None;
        while let Some(line) = stderr.next_line().await.unwrap() {
            printed.push(line.clone());
            if line.trim_start().starts_with(&format!("{org}/")) {
                url = Some(line.trim().to_owned());
                break;
            }
        }
        let url = url.unwrap_or_else(|| panic!("no authorization URL in {printed:#?}"));
        let rest = tokio::spawn(async move {
            let mut rest = Vec::new();
            while let Ok(Some(line)) = stderr.next_line().await {
                rest.push(line);
            }
            rest
        });
        let person = Browser::new();
        let form = person.http.get(&url).send().await.unwrap();
        let html = form.text().await.unwrap();
        let done = person
            .submit_login(&url, &html, "alice", &password)
            .await
            .unwrap();
        let callback = testkit::location(&done).unwrap();
        assert!(
            callback
                .as_str()
                .starts_with(&format!("http://127.0.0.1:{login_port}/callback?")),
            "{callback}"
        );
        let page = person.http.get(callback).send().await.unwrap();
        assert!(page.status().is_success(), "{}", page.status());
        let output = child.wait_with_output().await.unwrap();
        printed.extend(rest.await.unwrap());
        Run {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: printed.join("\n"),
        }
    };
    let checks: Vec<&str> = validate
        .stdout
        .lines()
        .filter(|l| l.starts_with("PASS") || l.starts_with("FAIL"))
        .collect();
    assert!(
        validate.ok && !checks.is_empty() && checks.iter().all(|l| l.starts_with("PASS")),
        "{}\n{}",
        validate.stdout,
        validate.stderr
    );
    for line in [
        "PASS  published key",
        "PASS  agent client authentication (private_key_jwt)",
        "PASS  login with the agent0 app",
        "PASS  Cross-App Access",
        "PASS  MCP tools/list",
    ] {
        assert!(
            validate.stdout.contains(line),
            "{line}:\n{}",
            validate.stdout
        );
    }

    // 6. The services stop; rollback removes everything bootstrap created.
    for service in services {
        let name = service.name;
        drop(service);
        eprintln!("stopped {name}");
    }
    let (rollback, took) = okta_in(
        &elsewhere,
        &[
            "rollback",
            "--yes",
            "--out",
            &out_arg,
            "--poll-interval-ms",
            "50",
        ],
        &token,
    )
    .await;
    eprintln!("okta rollback against idp0: {took:?}");
    assert!(rollback.ok, "{}\n{}", rollback.stdout, rollback.stderr);
    assert!(!out.join(".okta-bootstrap-state.json").exists());
    let http = reqwest::Client::new();
    for list in [
        "/api/v1/authorizationServers",
        "/api/v1/apps",
        "/api/v1/trustedOrigins",
        "/workload-principals/api/v1/ai-agents",
    ] {
        let items = list_all(&http, &format!("{org}{list}"), &token).await;
        let text = serde_json::to_string(&items).unwrap();
        for id in &ids {
            assert!(
                !text.contains(id.as_str()),
                "{list} still lists {id}: {text}"
            );
        }
    }
    let (again, _) = okta_in(
        &elsewhere,
        &["rollback", "--yes", "--out", &out_arg],
        &token,
    )
    .await;
    assert!(
        again.ok && again.stdout.contains("Nothing to roll back"),
        "{}\n{}",
        again.stdout,
        again.stderr
    );

    // 7. No API token and no client secret in anything the okta commands printed or reported.
    let report = std::fs::read_to_string(out.join("okta-config-report.md")).unwrap();
    for (what, text) in [
        ("bootstrap stdout", &bootstrap.stdout),
        ("bootstrap stderr", &bootstrap.stderr),
        ("validate stdout", &validate.stdout),
        ("validate stderr", &validate.stderr),
        ("rollback stdout", &rollback.stdout),
        ("rollback stderr", &rollback.stderr),
        ("second rollback stdout", &again.stdout),
        ("second rollback stderr", &again.stderr),
        ("okta-config-report.md", &report),
    ] {
        assert!(!text.contains(&token), "the API token in the {what}");
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a client secret in the {what}"
            );
        }
    }
    drop(idp);
}
