//! `secure-agent mcp tools|call` as a user runs it, against idp0 and todo0's MCP server on
//! ephemeral ports: discovery from the 401, Cross-App Access, step-up on 403, `--bearer`, user
//! isolation, error exits, and no token ever on stdout or stderr.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use secrecy::ExposeSecret;
use testkit::{Browser, Stack};

const BIN: &str = env!("CARGO_BIN_EXE_secure-agent");

/// Everything that could leak into the child from the developer's environment.
const SCRUBBED: [&str; 12] = [
    "OKTA_DOMAIN",
    "ID_TOKEN",
    "MCP_BEARER_TOKEN",
    "MCP_SERVER_URL",
    "IDP_TOKEN_ENDPOINT",
    "AI_AGENT_ID",
    "AI_AGENT_PRIVATE_KEY_FILE",
    "AI_AGENT_PRIVATE_KEY_KID",
    "AI_AGENT_CLIENT_SECRET",
    "SECURE_AGENT_DATA_DIR",
    "RUST_LOG",
    "MCP_RESOURCE_INDICATOR",
];

/// One run of the binary.
struct Run {
    output: Output,
}

impl Run {
    fn ok(&self) -> bool {
        self.output.status.success()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout()))
    }
    fn assert_ok(&self) -> &Self {
        assert!(
            self.ok(),
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout(),
            self.stderr()
        );
        self
    }
    fn assert_no_token(&self) -> &Self {
        for (name, text) in [("stdout", self.stdout()), ("stderr", self.stderr())] {
            assert!(!text.contains("eyJ"), "a JWT leaked on {name}: {text}");
        }
        self
    }
}

/// How the binary is pointed at the stack.
#[derive(Clone)]
struct Client {
    server: String,
    issuer: String,
    env_file: PathBuf,
}

impl Client {
    fn new(stack: &Stack) -> Self {
        Self {
            server: stack.mcp_url.clone(),
            issuer: stack.idp.issuer.clone(),
            env_file: stack.idp.data_dir.join("agent0.env"),
        }
    }

    /// `secure-agent mcp <args…> --server … --env-file … --issuer …`, the ID token (if any) on
    /// standard input, and `env` added to the scrubbed environment.
    async fn run(&self, args: &[&str], id_token: Option<&str>, env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(BIN);
        command
            .arg("mcp")
            .args(args)
            .args(["--server", &self.server, "--issuer", &self.issuer])
            .arg("--env-file")
            .arg(&self.env_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in SCRUBBED {
            command.env_remove(name);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        if id_token.is_some() {
            command.args(["--id-token", "-"]);
        }
        let stdin = id_token.map(str::to_owned);
        let output = tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().unwrap();
            let mut pipe = child.stdin.take().unwrap();
            if let Some(token) = stdin {
                pipe.write_all(token.as_bytes()).unwrap();
            }
            drop(pipe);
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        let run = Run { output };
        run.assert_no_token();
        run
    }
}

async fn id_token(stack: &Stack, user: &str) -> String {
    let login = stack.idp.login(&Browser::new(), user).await.unwrap();
    login.id_token.unwrap().expose_secret().to_owned()
}

fn owner_of(id_token: &str) -> todo0::domain::Owner {
    let claims = protocol::verify::decode_unverified(id_token).unwrap();
    todo0::domain::Owner::new(claims["sub"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_are_listed_with_their_required_scopes() {
    let stack = Stack::start().await.unwrap();
    let alice = id_token(&stack, "alice").await;
    let run = Client::new(&stack).run(&["tools"], Some(&alice), &[]).await;
    run.assert_ok();
    let tools = run.json();
    let tools = tools.as_array().unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "create-todo",
            "delete-todo",
            "get-todos",
            "toggle-todo",
            "update-todo"
        ]
    );
    let delete = tools.iter().find(|t| t["name"] == "delete-todo").unwrap();
    assert_eq!(
        delete["requiredScopes"],
        serde_json::json!(["mcp:connect", "mcp:tools:delete"])
    );
    assert!(delete["description"].as_str().unwrap().contains("Delete"));
    assert!(
        !run.stderr().contains("stepped up"),
        "listing needs only mcp:connect: {}",
        run.stderr()
    );

    // Not even verbose logging shows a token (`run` checks every run's output).
    let verbose = Client::new(&stack)
        .run(&["tools"], Some(&alice), &[("RUST_LOG", "trace")])
        .await;
    verbose.assert_ok();
    assert!(verbose.stderr().contains("TRACE"), "trace logging was on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_step_up_to_the_scope_each_tool_needs_and_users_stay_isolated() {
    let stack = Stack::start().await.unwrap();
    let client = Client::new(&stack);
    let alice = id_token(&stack, "alice").await;

    // create-todo: mcp:connect first (the 401's scope), then a 403 and a step-up to manage.
    let created = client
        .run(
            &["call", "create-todo", r#"{"title":"prep the demo"}"#],
            Some(&alice),
            &[],
        )
        .await;
    created.assert_ok();
    let stderr = created.stderr();
    let step_up = stderr
        .lines()
        .find(|l| l.starts_with("stepped up to: "))
        .unwrap_or_else(|| panic!("no step-up reported: {stderr}"));
    assert!(step_up.contains("mcp:connect") && step_up.contains("mcp:tools:manage"));
    assert_eq!(stderr.matches("stepped up to:").count(), 1);
    let todo = created.json()["todo"].clone();
    assert_eq!(todo["title"], "prep the demo");
    let id = todo["id"].as_i64().unwrap();
    let stored = stack
        .store
        .list(&owner_of(&alice), &Default::default())
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .any(|t| t.id == id && t.title == "prep the demo")
    );

    // Bob sees none of it.
    let bob = id_token(&stack, "bob").await;
    let listed = client.run(&["call", "get-todos"], Some(&bob), &[]).await;
    listed.assert_ok();
    assert!(listed.stderr().contains("mcp:tools:read"));
    assert_eq!(listed.json()["count"], 0, "{}", listed.stdout());
    assert!(!listed.stdout().contains("prep the demo"));
    // Nor can he delete it: a foreign id is a missing one.
    let foreign = client
        .run(
            &["call", "delete-todo", &format!(r#"{{"id":{id}}}"#)],
            Some(&bob),
            &[],
        )
        .await;
    assert!(!foreign.ok());

    // Alice deletes it: a step-up to the delete scope.
    let deleted = client
        .run(
            &["call", "delete-todo", &format!(r#"{{"id":{id}}}"#)],
            Some(&alice),
            &[],
        )
        .await;
    deleted.assert_ok();
    assert!(
        deleted.stderr().contains("stepped up to: ")
            && deleted.stderr().contains("mcp:tools:delete"),
        "{}",
        deleted.stderr()
    );
    assert_eq!(deleted.json()["todo"]["id"], id);
    assert!(
        stack
            .store
            .list(&owner_of(&alice), &Default::default())
            .await
            .unwrap()
            .is_empty()
    );

    // A missing todo: the tool's error result, non-zero exit, the text on stderr.
    let missing = client
        .run(
            &["call", "delete-todo", r#"{"id":424242}"#],
            Some(&alice),
            &[],
        )
        .await;
    assert!(!missing.ok());
    assert!(missing.stdout().trim().is_empty(), "{}", missing.stdout());
    assert!(
        missing.stderr().contains("delete-todo failed"),
        "{}",
        missing.stderr()
    );

    // A tool the server does not have: the JSON-RPC error on stderr.
    let unknown = client
        .run(&["call", "no-such-tool", "{}"], Some(&alice), &[])
        .await;
    assert!(!unknown.ok());
    assert!(
        unknown.stderr().contains("no-such-tool") || unknown.stderr().contains("not found"),
        "{}",
        unknown.stderr()
    );

    // Arguments that are not a JSON object never reach the server.
    let bad = client
        .run(&["call", "create-todo", "[1]"], Some(&alice), &[])
        .await;
    assert!(!bad.ok());
    assert!(bad.stderr().contains("JSON object"), "{}", bad.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_lacking_scope_fails_clearly() {
    let stack = Stack::start().await.unwrap();
    let client = Client::new(&stack);
    let token = stack.mcp_token("alice", "mcp:connect").await.unwrap();
    let token = token.expose_secret().to_owned();

    // Enough for listing.
    let tools = client
        .run(&["tools"], None, &[("MCP_BEARER_TOKEN", &token)])
        .await;
    tools.assert_ok();
    assert_eq!(tools.json().as_array().unwrap().len(), 5);

    // Not for creating, and a fixed token cannot be stepped up.
    let refused = client
        .run(
            &["call", "create-todo", r#"{"title":"nope"}"#],
            None,
            &[("MCP_BEARER_TOKEN", &token)],
        )
        .await;
    assert!(!refused.ok());
    let stderr = refused.stderr();
    assert!(stderr.contains("insufficient scope"), "{stderr}");
    assert!(stderr.contains("mcp:tools:manage"), "{stderr}");
    assert!(stderr.contains("cannot be stepped up"), "{stderr}");
    assert!(!stderr.contains("stepped up to:"), "{stderr}");

    // A token that is no token at all.
    let garbage = client
        .run(&["tools", "--bearer", "not-a-token"], None, &[])
        .await;
    assert!(!garbage.ok());
    assert!(
        garbage.stderr().contains("refused the --bearer token"),
        "{}",
        garbage.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_the_server_requirement_is_explained() {
    let stack = Stack::start().await.unwrap();
    let run = Client::new(&stack).run(&["tools"], None, &[]).await;
    assert!(!run.ok());
    assert!(
        run.stderr().contains("requires authorization"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("--id-token"), "{}", run.stderr());
}

/// A recorded request: the `Authorization` header and the form body.
type Recorded = std::sync::Arc<std::sync::Mutex<Vec<(Option<String>, String)>>>;

/// An IdP token endpoint that records what it is sent and refuses with `invalid_client`.
async fn refusing_token_endpoint() -> (String, Recorded) {
    let recorded = Recorded::default();
    let sink = recorded.clone();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let auth = headers
                    .get(axum::http::header::AUTHORIZATION)
                    .map(|v| v.to_str().unwrap().to_owned());
                sink.lock().unwrap().push((auth, body));
                (
                    axum::http::StatusCode::BAD_REQUEST,
                    axum::Json(serde_json::json!({"error": "invalid_client", "error_description": "mock refuses"})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, recorded)
}

fn form(body: &str) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_basic_and_post_reach_the_idp_token_endpoint() {
    let stack = Stack::start().await.unwrap();
    let client = Client::new(&stack);
    let alice = id_token(&stack, "alice").await;
    let (endpoint, recorded) = refusing_token_endpoint().await;
    for method in ["basic", "post"] {
        let run = client
            .run(
                &[
                    "tools",
                    "--idp-token-endpoint",
                    &endpoint,
                    "--client-id",
                    "some-agent",
                    "--client-auth",
                    method,
                ],
                Some(&alice),
                &[("AI_AGENT_CLIENT_SECRET", "s3cret-value")],
            )
            .await;
        assert!(!run.ok());
        assert!(run.stderr().contains("invalid_client"), "{}", run.stderr());
        assert!(!run.stderr().contains("s3cret-value"));
        let (auth, body) = recorded.lock().unwrap().pop().unwrap();
        let form = form(&body);
        // The exchange is for this server's resource and AS, with the challenge's scope only.
        assert_eq!(
            form["grant_type"],
            "urn:ietf:params:oauth:grant-type:token-exchange"
        );
        assert_eq!(form["audience"], stack.idp.todo0_issuer());
        assert_eq!(form["resource"], stack.mcp_url);
        assert_eq!(form["scope"], "mcp:connect");
        assert!(!form.contains_key("client_assertion"));
        if method == "basic" {
            // base64("some-agent:s3cret-value")
            assert_eq!(
                auth.as_deref(),
                Some("Basic c29tZS1hZ2VudDpzM2NyZXQtdmFsdWU=")
            );
            assert!(!form.contains_key("client_secret"));
        } else {
            assert_eq!(auth, None);
            assert_eq!(form["client_id"], "some-agent");
            assert_eq!(form["client_secret"], "s3cret-value");
        }
    }
}

/// A protected "MCP server" whose metadata names another resource. With `point_to_metadata`
/// the 401 names the metadata URL; without, the client must find it at the well-known URL.
async fn lying_server(point_to_metadata: bool) -> (String, Recorded) {
    let recorded = Recorded::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let prm_url = format!("{base}/.well-known/oauth-protected-resource/mcp");
    let challenge = if point_to_metadata {
        format!(r#"Bearer resource_metadata="{prm_url}", scope="mcp:connect""#)
    } else {
        r#"Bearer scope="mcp:connect""#.to_owned()
    };
    let sink = recorded.clone();
    let app = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::post(move || {
                let challenge = challenge.clone();
                async move {
                    (
                        axum::http::StatusCode::UNAUTHORIZED,
                        [(axum::http::header::WWW_AUTHENTICATE, challenge)],
                    )
                }
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            axum::routing::get(move || {
                sink.lock().unwrap().push((None, "prm".into()));
                async {
                    axum::Json(serde_json::json!({
                        "resource": "http://other.example/mcp",
                        "authorization_servers": ["http://127.0.0.1:1/oauth2/x"],
                    }))
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("{base}/mcp"), recorded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_for_another_resource_is_refused() {
    for point_to_metadata in [true, false] {
        let (server, recorded) = lying_server(point_to_metadata).await;
        let dir = tempfile::tempdir().unwrap();
        let env_file = dir.path().join("empty.env");
        std::fs::write(&env_file, "").unwrap();
        let client = Client {
            server,
            issuer: "http://127.0.0.1:1".into(),
            env_file,
        };
        let run = client
            .run(&["tools"], Some("not-really-an-id-token"), &[])
            .await;
        assert!(!run.ok());
        assert!(run.stderr().contains("RFC 9728"), "{}", run.stderr());
        assert!(run.stderr().contains("http://other.example/mcp"));
        assert_eq!(
            recorded.lock().unwrap().len(),
            1,
            "the metadata was fetched"
        );
    }
}

/// A protected "MCP server" backed by a real idp0 whose 403s always ask for more: each token
/// is told to get the next scope in `ladder` (by the token's `scp`). It never serves MCP.
async fn greedy_server(ladder: &'static [&'static str]) -> (String, testkit::IdpHandle) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("{base}/mcp");
    let idp = testkit::IdpHandle::start_for_resource(&url).await.unwrap();
    let prm = serde_json::json!({
        "resource": url,
        "authorization_servers": [idp.todo0_issuer()],
    });
    let prm_url = format!("{base}/.well-known/oauth-protected-resource/mcp");
    let app = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::any(move |headers: axum::http::HeaderMap| {
                let prm_url = prm_url.clone();
                async move {
                    let token = headers
                        .get(axum::http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(protocol::bearer::parse_authorization);
                    let Some(token) = token else {
                        let challenge = format!(
                            r#"Bearer resource_metadata="{prm_url}", scope="mcp:connect""#
                        );
                        return (
                            axum::http::StatusCode::UNAUTHORIZED,
                            [(axum::http::header::WWW_AUTHENTICATE, challenge)],
                        );
                    };
                    let claims = protocol::verify::decode_unverified(token).unwrap();
                    let has: Vec<&str> = claims["scp"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap())
                        .collect();
                    let next = ladder
                        .iter()
                        .position(|s| !has.contains(s))
                        .unwrap_or(ladder.len() - 1);
                    let challenge = format!(
                        r#"Bearer error="insufficient_scope", scope="{}", resource_metadata="{prm_url}""#,
                        ladder[..=next].join(" ")
                    );
                    (
                        axum::http::StatusCode::FORBIDDEN,
                        [(axum::http::header::WWW_AUTHENTICATE, challenge)],
                    )
                }
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            axum::routing::get(move || {
                let prm = prm.clone();
                async move { axum::Json(prm) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, idp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_ups_stop_after_two_and_when_the_scope_is_not_granted() {
    // Three more scopes wanted one after the other: two step-ups, then a clear failure.
    let (server, idp) = greedy_server(&[
        "mcp:connect",
        "mcp:tools:read",
        "mcp:tools:manage",
        "mcp:tools:delete",
    ])
    .await;
    let alice = idp.login(&Browser::new(), "alice").await.unwrap();
    let alice = alice.id_token.unwrap().expose_secret().to_owned();
    let client = Client {
        server,
        issuer: idp.issuer.clone(),
        env_file: idp.data_dir.join("agent0.env"),
    };
    let run = client.run(&["tools"], Some(&alice), &[]).await;
    assert!(!run.ok());
    let stderr = run.stderr();
    assert_eq!(stderr.matches("stepped up to: ").count(), 2, "{stderr}");
    assert!(
        stderr.contains("stepped up to: mcp:connect mcp:tools:read\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stepped up to: mcp:connect mcp:tools:manage mcp:tools:read\n"),
        "{stderr}"
    );
    assert!(stderr.contains("after 2 step-ups"), "{stderr}");

    // A scope the authorization server does not have.
    let (server, idp) = greedy_server(&["mcp:connect", "mcp:admin"]).await;
    let alice = idp.login(&Browser::new(), "alice").await.unwrap();
    let alice = alice.id_token.unwrap().expose_secret().to_owned();
    let client = Client {
        server,
        issuer: idp.issuer.clone(),
        env_file: idp.data_dir.join("agent0.env"),
    };
    let run = client.run(&["tools"], Some(&alice), &[]).await;
    assert!(!run.ok());
    let stderr = run.stderr();
    assert!(stderr.contains("mcp:admin"), "{stderr}");
    assert!(
        stderr.contains("stepping up to mcp:admin mcp:connect") || stderr.contains("granted only"),
        "{stderr}"
    );
}

/// `secure-agent login --username … --password-stdin` with `--data-dir`, and what it printed.
fn login(stack: &Stack, data_dir: &std::path::Path, user: &str, password: &str) -> Run {
    let mut command = Command::new(BIN);
    command
        .args(["login", "--username", user, "--password-stdin", "--issuer"])
        .arg(&stack.idp.issuer)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--timeout", "60"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in SCRUBBED {
        command.env_remove(name);
    }
    let mut child = command.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(format!("{password}\n").as_bytes()).unwrap();
    drop(pipe);
    let run = Run {
        output: child.wait_with_output().unwrap(),
    };
    run.assert_no_token();
    run
}

/// `secure-agent <args…>` with the scrubbed environment and nothing on standard input.
fn secure_agent(args: &[&str]) -> Run {
    let mut command = Command::new(BIN);
    command.args(args).stdin(Stdio::null());
    for name in SCRUBBED {
        command.env_remove(name);
    }
    let run = Run {
        output: command.output().unwrap(),
    };
    run.assert_no_token();
    run
}

/// A person logs in from the shell (idp0's form over HTTP, loopback redirect on an ephemeral
/// port), the tokens land in a 0600 file under the data directory, and `mcp tools` and
/// `token exchange` then work with no `--id-token`; an expired cached ID token is refreshed with
/// the refresh token, and without one the error says to log in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_caches_the_tokens_that_mcp_and_token_exchange_use() {
    let stack = Stack::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("state");
    let dir = data_dir.to_str().unwrap().to_owned();
    let password = stack.idp.password("alice");

    let wrong = tokio::task::block_in_place(|| login(&stack, &data_dir, "alice", "not-it"));
    assert!(!wrong.ok());
    assert!(
        wrong.stderr().contains("did not accept"),
        "{}",
        wrong.stderr()
    );

    let run = tokio::task::block_in_place(|| login(&stack, &data_dir, "alice", &password));
    run.assert_ok();
    assert!(
        run.stdout().contains("alice@example.com"),
        "{}",
        run.stdout()
    );
    assert!(!run.stdout().contains(&password) && !run.stderr().contains(&password));

    // One file for the issuer: 0600 in a 0700 directory, holding only what later commands need.
    let tokens_dir = data_dir.join("tokens");
    let files: Vec<PathBuf> = std::fs::read_dir(&tokens_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let cache_file = files[0].clone();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cache_file), 0o600);
        assert_eq!(mode(&tokens_dir), 0o700);
        assert_eq!(mode(&data_dir), 0o700);
    }
    let text = std::fs::read_to_string(&cache_file).unwrap();
    assert!(!text.contains(&password));
    let cached: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut keys: Vec<&str> = cached
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "client_id",
            "id_token",
            "id_token_expires_at",
            "issuer",
            "refresh_token"
        ]
    );
    assert_eq!(cached["client_id"], "secure-agent-cli");
    let claims = protocol::verify::decode_unverified(cached["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["aud"], "secure-agent-cli");

    // `--show`: decoded claims, no token.
    let show = secure_agent(&[
        "login",
        "--show",
        "--issuer",
        &stack.idp.issuer,
        "--data-dir",
        &dir,
    ]);
    show.assert_ok();
    assert_eq!(show.json()["claims"]["email"], "alice@example.com");

    // `mcp tools` with the cached ID token: Cross-App Access as alice.
    let client = Client::new(&stack);
    let tools = client.run(&["tools", "--data-dir", &dir], None, &[]).await;
    tools.assert_ok();
    assert!(tools.json().as_array().is_some_and(|t| !t.is_empty()));

    // `token exchange` with it too.
    let env_file = stack.idp.data_dir.join("agent0.env");
    let exchange_args = [
        "token",
        "exchange",
        "--data-dir",
        &dir,
        "--env-file",
        env_file.to_str().unwrap(),
        "--issuer",
        &stack.idp.issuer,
        "--audience",
        &stack.idp.todo0_issuer(),
        "--resource",
        &stack.mcp_url,
    ];
    let exchange = secure_agent(&exchange_args);
    exchange.assert_ok();
    let out = exchange.json();
    assert_eq!(out["id_jag"]["claims"]["sub"], claims["sub"]);
    assert_eq!(out["access_token"]["claims"]["act"]["sub"], "agent0-agent");

    // An expired cached ID token is refreshed (and the rotated refresh token stored).
    let mut expired = cached.clone();
    expired["id_token_expires_at"] = 0.into();
    std::fs::write(&cache_file, expired.to_string()).unwrap();
    let refreshed = client.run(&["tools", "--data-dir", &dir], None, &[]).await;
    refreshed.assert_ok();
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache_file).unwrap()).unwrap();
    assert_ne!(after["refresh_token"], cached["refresh_token"]);
    assert!(after["id_token_expires_at"].as_i64().unwrap() > 0);

    // Expired with no refresh token: log in again.
    let mut stale = after.clone();
    stale["id_token_expires_at"] = 0.into();
    stale.as_object_mut().unwrap().remove("refresh_token");
    std::fs::write(&cache_file, stale.to_string()).unwrap();
    let refused = secure_agent(&exchange_args);
    assert!(!refused.ok());
    assert!(
        refused.stderr().contains("secure-agent login"),
        "{}",
        refused.stderr()
    );
}
