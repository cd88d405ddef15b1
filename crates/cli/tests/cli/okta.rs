//! `secure-agent okta bootstrap | rollback` against a stand-in Okta management API that speaks
//! Okta's documented shapes ([`okta_standin`]): the requests the client sends, step by step;
//! idempotence; resume after a fault at step k; a wrong token stops before anything is created;
//! a FAILED operation; rollback past a 404 and a failure; refused state files; no secret in any
//! output, report or log.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{Value, json};

use super::BIN;
use super::okta_standin::{StandIn, TOKEN};

pub(super) struct Run {
    pub(super) ok: bool,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

pub(super) async fn okta(args: &[&str], token: Option<&str>) -> Run {
    let mut command = tokio::process::Command::new(BIN);
    command
        .arg("okta")
        .args(args)
        .env_remove("OKTA_API_TOKEN")
        .env_remove("OKTA_ORG_URL")
        .stdin(std::process::Stdio::null());
    if let Some(token) = token {
        command.env("OKTA_API_TOKEN", token);
    }
    let output = command.output().await.unwrap();
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub(super) async fn bootstrap(okta_org: &StandIn, out: &Path) -> Run {
    let out = out.display().to_string();
    okta(
        &[
            "bootstrap",
            "--org",
            &okta_org.base,
            "--out",
            &out,
            "--yes",
            "--poll-interval-ms",
            "20",
            "--poll-deadline-secs",
            "10",
        ],
        Some(TOKEN),
    )
    .await
}

async fn rollback(out: &Path) -> Run {
    let out = out.display().to_string();
    okta(
        &[
            "rollback",
            "--out",
            &out,
            "--yes",
            "--poll-interval-ms",
            "20",
        ],
        Some(TOKEN),
    )
    .await
}

fn state(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join(".okta-bootstrap-state.json")).unwrap())
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn env(path: &Path) -> std::collections::HashMap<String, String> {
    super::env_file(path)
}

/// What a complete bootstrap POSTs, in OKTA.md §4's order (ids as the stand-in numbers them).
fn expected_posts() -> Vec<&'static str> {
    vec![
        "/api/v1/authorizationServers",
        "/api/v1/authorizationServers/aus1/scopes",
        "/api/v1/authorizationServers/aus1/scopes",
        "/api/v1/authorizationServers/aus1/scopes",
        "/api/v1/authorizationServers/aus1/scopes",
        "/api/v1/apps",
        "/api/v1/apps",
        "/api/v1/apps/0oa6/users",
        "/api/v1/apps/0oa7/users",
        "/workload-principals/api/v1/ai-agents",
        "/governance/api/v1/resource-owners",
        "/workload-principals/api/v1/ai-agents/wlp8/credentials/jwks",
        "/workload-principals/api/v1/ai-agents/wlp8/lifecycle/activate",
        "/workload-principals/api/v1/ai-agents/wlp8/connections",
        "/api/v1/authorizationServers/aus1/policies",
        "/api/v1/authorizationServers/aus1/policies/pol13/rules",
        "/api/v1/trustedOrigins",
        "/api/v1/trustedOrigins",
        "/api/v1/authorizationServers/aus1/policies",
        "/api/v1/authorizationServers/aus1/policies/pol17/rules",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_bootstrap_sends_okta_documented_requests_writes_the_files_and_a_second_run_creates_nothing()
 {
    let org = StandIn::start().await;
    // One 429 on the first list of trusted origins, and a page of one existing origin more
    // than fits a page (two a page) so the list follows Link: rel="next".
    org.with(|s| {
        s.faults.rate_limit = Some("/api/v1/trustedOrigins".into());
        s.resources.insert(
            "/api/v1/trustedOrigins".into(),
            (0..3)
                .map(|i| json!({"id": format!("tosOld{i}"), "name": format!("old {i}"), "origin": format!("https://old{i}.example")}))
                .collect(),
        );
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let first = bootstrap(&org, out).await;
    assert!(first.ok, "{}\n{}", first.stdout, first.stderr);
    assert!(first.stderr.contains("rate limited"), "{}", first.stderr);

    let requests = org.requests();
    for r in &requests {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("SSWS {TOKEN}").as_str()),
            "{}",
            r.path
        );
        assert_eq!(r.accept.as_deref(), Some("application/json"), "{}", r.path);
    }
    // Read-only calls first: the token is proven before anything is created.
    assert_eq!(requests[0].path, "/api/v1/users/me");
    assert_eq!(requests[1].path, "/api/v1/org");
    let posts = org.posts();
    let paths: Vec<&str> = posts.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, expected_posts());
    let body = |i: usize| &posts[i].body;
    assert_eq!(
        body(0),
        &json!({"name": "todo0-mcp-server", "description": body(0)["description"], "audiences": ["http://localhost:5002/mcp"]})
    );
    let scopes: Vec<&str> = (1..5).map(|i| body(i)["name"].as_str().unwrap()).collect();
    assert_eq!(
        scopes,
        [
            "mcp:connect",
            "mcp:tools:read",
            "mcp:tools:manage",
            "mcp:tools:delete"
        ]
    );
    assert_eq!(body(1)["consent"], "REQUIRED");
    assert_eq!(body(5)["label"], "agent0");
    assert_eq!(body(5)["name"], "oidc_client");
    assert_eq!(body(5)["signOnMode"], "OPENID_CONNECT");
    assert_eq!(
        body(5)["credentials"]["oauthClient"]["token_endpoint_auth_method"],
        "client_secret_basic"
    );
    assert_eq!(
        body(5)["settings"]["oauthClient"]["redirect_uris"],
        json!([
            "http://localhost:3000/callback",
            "http://127.0.0.1:8976/callback"
        ])
    );
    assert_eq!(
        body(5)["settings"]["oauthClient"]["post_logout_redirect_uris"],
        json!(["http://localhost:3000/"])
    );
    assert_eq!(
        body(5)["settings"]["oauthClient"]["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(body(6)["label"], "todo0");
    assert_eq!(
        body(6)["settings"]["oauthClient"]["redirect_uris"],
        json!(["http://localhost:5001/callback"])
    );
    assert_eq!(body(7)["id"], "00uAdmin");
    assert_eq!(body(9)["appId"], "0oa6");
    assert!(body(9)["profile"]["name"].is_string());
    assert_eq!(
        body(10),
        &json!({
            "principalOrns": ["orn:okta:directory:00oOrg:users:00uAdmin"],
            "resourceOrns": ["orn:okta:directory:00oOrg:workload-principals:ai-agents:wlp8"],
        })
    );
    let jwk = body(11);
    assert_eq!(
        (
            jwk["kty"].as_str(),
            jwk["alg"].as_str(),
            jwk["use"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    assert!(jwk.get("d").is_none(), "the private part is never sent");
    let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    assert_eq!(
        jwk["kid"].as_str().unwrap(),
        protocol::keys::thumbprint(&parsed).unwrap()
    );
    assert_eq!(
        body(13),
        &json!({
            "connectionType": "IDENTITY_ASSERTION_CUSTOM_AS",
            "authorizationServer": {"orn": "orn:okta:idp:00oOrg:authorization_servers:aus1", "resourceIndicator": "http://localhost:5002/mcp"},
            "scopeCondition": "INCLUDE_ONLY",
            "scopes": ["mcp:connect", "mcp:tools:read", "mcp:tools:manage", "mcp:tools:delete"],
        })
    );
    assert_eq!(
        body(14)["conditions"]["clients"]["include"],
        json!(["wlp8"])
    );
    assert_eq!(body(14)["type"], "OAUTH_AUTHORIZATION_POLICY");
    let grants = body(15)["conditions"]["grantTypes"]["include"]
        .as_array()
        .unwrap();
    assert!(grants.contains(&json!("urn:ietf:params:oauth:grant-type:jwt-bearer")));
    assert_eq!(body(15)["type"], "RESOURCE_ACCESS");
    assert_eq!(body(16)["origin"], "http://localhost:3000");
    assert_eq!(body(17)["origin"], "http://localhost:5002");
    assert_eq!(
        body(16)["scopes"],
        json!([{"type": "CORS"}, {"type": "REDIRECT"}])
    );
    // todo0's web app signs in at the MCP server: a policy of its own whose rule covers the
    // OIDC scopes it requests (Okta matches a rule only when it covers every requested scope).
    assert_eq!(
        body(18)["conditions"]["clients"]["include"],
        json!(["client-0oa7"])
    );
    assert_eq!(body(18)["type"], "OAUTH_AUTHORIZATION_POLICY");
    assert_eq!(body(18)["priority"], 2);
    assert_eq!(
        body(19)["conditions"]["grantTypes"]["include"],
        json!(["authorization_code"])
    );
    assert_eq!(
        body(19)["conditions"]["scopes"]["include"],
        json!(["openid", "profile", "email"])
    );
    // The agent's creation and activation were polled (IN_PROGRESS, then COMPLETED), the
    // relative Location of one and the absolute of the other; the origins list was paged.
    let polls = requests
        .iter()
        .filter(|r| r.path.contains("/operations/"))
        .count();
    assert_eq!(polls, 4);
    assert!(
        requests
            .iter()
            .any(|r| r.path.contains("trustedOrigins?") && r.path.contains("after=2"))
    );

    // The files.
    let agent_app = env(&out.join("packages/agent0/.env.app"));
    let agent = env(&out.join("packages/agent0/.env.agent"));
    let todo_app = env(&out.join("packages/todo0/.env.app"));
    let todo_mcp = env(&out.join("packages/todo0/.env.mcp"));
    assert_eq!(
        agent_app["OKTA_DOMAIN"], org.base,
        "an http loopback org is written as its URL"
    );
    assert_eq!(agent_app["OKTA_CLIENT_ID"], "client-0oa6");
    assert_eq!(agent_app["OKTA_CLIENT_SECRET"], "client-secret-0oa6-SECRET");
    assert_eq!(
        agent_app["OKTA_REDIRECT_URI"],
        "http://localhost:3000/callback"
    );
    assert_eq!(agent_app["PORT"], "3000");
    assert!(agent_app["SESSION_SECRET"].len() >= 64);
    let as_issuer = format!("{}/oauth2/aus1", org.base);
    assert_eq!(agent["AI_AGENT_ID"], "wlp8");
    assert_eq!(
        agent["AI_AGENT_PRIVATE_KEY_KID"], "okta-kid-10",
        "the kid Okta returned"
    );
    assert_eq!(agent["AI_AGENT_PRIVATE_KEY_FILE"], "agent0-agent.pem");
    assert_eq!(agent["MCP_SERVER_URL"], "http://localhost:5002/mcp");
    assert_eq!(agent["MCP_AUTHORIZATION_SERVER"], as_issuer);
    assert_eq!(
        agent["MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT"],
        format!("{as_issuer}/v1/token")
    );
    assert_eq!(agent["LLM_PROVIDER"], "offline");
    assert_eq!(todo_app["OKTA_ISSUER"], as_issuer);
    assert_eq!(todo_app["EXPECTED_AUDIENCE"], "http://localhost:5002/mcp");
    assert_eq!(todo_app["OKTA_CLIENT_SECRET"], "client-secret-0oa7-SECRET");
    assert_eq!(todo_mcp["MCP_OKTA_ISSUER"], as_issuer);
    assert_eq!(
        todo_mcp["MCP_EXPECTED_AUDIENCE"],
        "http://localhost:5002/mcp"
    );
    assert_eq!(todo_mcp["MCP_PORT"], "5002");
    let key = out.join("packages/agent0/agent0-agent.pem");
    for file in [
        "packages/agent0/.env.app",
        "packages/agent0/.env.agent",
        "packages/todo0/.env.app",
        "packages/todo0/.env.mcp",
        "packages/agent0/agent0-agent.pem",
        ".okta-bootstrap-state.json",
    ] {
        assert_eq!(mode(&out.join(file)), 0o600, "{file}");
    }
    let pem = std::fs::read_to_string(&key).unwrap();
    let signing = protocol::keys::SigningKey::from_pem(&pem, None).unwrap();
    assert_eq!(
        signing.kid(),
        jwk["kid"].as_str().unwrap(),
        "the uploaded key is the file's"
    );
    let recorded = state(out);
    assert_eq!(recorded["version"], 1);
    assert_eq!(recorded["oktaDomain"], org.base);
    assert_eq!(recorded["orgId"], "00oOrg");
    assert_eq!(recorded["mcpAuthServerIds"], json!(["aus1"]));
    assert_eq!(recorded["agent0AppIds"], json!(["0oa6"]));
    assert_eq!(recorded["todo0AppIds"], json!(["0oa7"]));
    assert_eq!(recorded["agent0AppUserIds"], json!(["00uAdmin"]));
    assert_eq!(recorded["agentIdentityIds"], json!(["wlp8"]));
    assert_eq!(
        recorded["agentConnections"],
        json!([{"agentId": "wlp8", "connectionId": "con12"}])
    );
    assert_eq!(recorded["agentOwnerSetupMethod"], "resource-owners");
    assert_eq!(recorded["agentKeyKid"], "okta-kid-10");
    assert_eq!(recorded["mcpPolicyIds"], json!(["pol13", "pol17"]));
    assert_eq!(recorded["mcpPolicyRuleIds"], json!(["rul14", "rul18"]));
    assert_eq!(recorded["trustedOriginIds"], json!(["tos15", "tos16"]));
    assert_eq!(recorded["trustedOriginNames"].as_array().unwrap().len(), 2);
    let report = std::fs::read_to_string(out.join("okta-config-report.md")).unwrap();
    assert!(report.contains("aus1") && report.contains("wlp8") && report.contains("okta-kid-10"));

    // A second run: nothing created, the files untouched, no backups.
    let before = org.posts().len();
    let before_files = std::fs::read(out.join("packages/agent0/.env.agent")).unwrap();
    let second = bootstrap(&org, out).await;
    assert!(second.ok, "{}\n{}", second.stdout, second.stderr);
    assert_eq!(
        org.posts().len(),
        before,
        "a second bootstrap creates nothing"
    );
    assert!(
        second.stdout.contains("Nothing changed"),
        "{}",
        second.stdout
    );
    assert!(
        !second.stdout.contains("does not register"),
        "{}",
        second.stdout
    );
    assert_eq!(
        std::fs::read(out.join("packages/agent0/.env.agent")).unwrap(),
        before_files
    );
    assert!(!out.join("packages/agent0/.env.agent.backup").exists());
    assert_eq!(state(out), recorded);

    // A changed file is backed up before it is replaced; secrets survive a run in which Okta
    // no longer shows them (read from the app's secrets).
    std::fs::write(out.join("packages/todo0/.env.mcp"), "MCP_PORT=1\n").unwrap();
    let third = bootstrap(&org, out).await;
    assert!(third.ok, "{}", third.stderr);
    assert_eq!(
        std::fs::read_to_string(out.join("packages/todo0/.env.mcp.backup")).unwrap(),
        "MCP_PORT=1\n"
    );
    assert_eq!(
        env(&out.join("packages/todo0/.env.mcp"))["MCP_PORT"],
        "5002"
    );

    // No token or client secret anywhere but the env files.
    for text in [
        &first.stdout,
        &first.stderr,
        &second.stdout,
        &second.stderr,
        &third.stdout,
        &third.stderr,
        &report,
    ] {
        assert!(!text.contains(TOKEN), "the API token leaked");
        assert!(!text.contains("SECRET"), "a secret leaked:\n{text}");
    }
    assert!(
        !std::fs::read_to_string(out.join(".okta-bootstrap-state.json"))
            .unwrap()
            .contains("SECRET")
    );
}

/// The state with the org's address (the stand-in's port) left out.
fn comparable(out: &Path) -> Value {
    let mut value = state(out);
    value.as_object_mut().unwrap().remove("oktaDomain");
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_bootstrap_resumes_after_a_fault_at_step_k_and_ends_as_an_uninterrupted_run() {
    let reference = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    assert!(bootstrap(&reference, dir.path()).await.ok);
    let expected = comparable(dir.path());
    let expected_held = reference.held();
    for k in [1, 3, 6, 8, 10, 11, 12, 13, 14, 16, 18, 19, 20] {
        let org = StandIn::start().await;
        org.with(|s| s.faults.fail_post = Some(k));
        let dir = tempfile::tempdir().unwrap();
        let failed = bootstrap(&org, dir.path()).await;
        assert!(!failed.ok, "k={k}");
        assert!(
            failed
                .stderr
                .contains("Internal Server Error: stand-in fault [E0000009]")
                && failed.stderr.contains("run the same command again"),
            "k={k}: {}",
            failed.stderr
        );
        assert!(
            dir.path().join(".okta-bootstrap-state.json").exists(),
            "k={k}"
        );
        let resumed = bootstrap(&org, dir.path()).await;
        assert!(resumed.ok, "k={k}: {}", resumed.stderr);
        assert_eq!(comparable(dir.path()), expected, "k={k}");
        assert_eq!(
            org.held(),
            expected_held,
            "k={k}: the same resources, no duplicates"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_bootstrap_with_a_wrong_token_stops_before_creating_anything() {
    let org = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let run = okta(
        &["bootstrap", "--org", &org.base, "--out", &out, "--yes"],
        Some("wrong-token"),
    )
    .await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("HTTP 401") && run.stderr.contains("OKTA_API_TOKEN"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Invalid token provided"),
        "{}",
        run.stderr
    );
    assert!(org.posts().is_empty());
    assert_eq!(org.requests().len(), 1);
    assert!(!dir.path().join(".okta-bootstrap-state.json").exists());
    assert!(!run.stderr.contains("wrong-token"));

    // No token at all, and no terminal to ask on.
    let run = okta(
        &["bootstrap", "--org", &org.base, "--out", &out, "--yes"],
        None,
    )
    .await;
    assert!(!run.ok);
    assert!(run.stderr.contains("OKTA_API_TOKEN"), "{}", run.stderr);
    // A URL with a path, and plain http to a non-loopback host.
    for bad in [
        "https://dev-1.okta.com/oauth2/default",
        "http://dev-1.okta.com",
    ] {
        let run = okta(
            &["bootstrap", "--org", bad, "--out", &out, "--yes"],
            Some(TOKEN),
        )
        .await;
        assert!(
            !run.ok && run.stderr.contains("--org"),
            "{bad}: {}",
            run.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_bootstrap_reports_a_failed_operation_and_keeps_the_state() {
    let org = StandIn::start().await;
    org.with(|s| s.faults.fail_operations = true);
    let dir = tempfile::tempdir().unwrap();
    let run = bootstrap(&org, dir.path()).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("FAILED")
            && run
                .stderr
                .contains("Agent creation failed: stand-in says no"),
        "{}",
        run.stderr
    );
    let recorded = state(dir.path());
    assert_eq!(recorded["mcpAuthServerIds"], json!(["aus1"]));
    assert!(recorded.get("pendingAgentOperation").is_none());
    assert_eq!(recorded["agentIdentityIds"], json!([]));
}

/// An operation that never completes stops bootstrap at the deadline with the fix; the state
/// keeps the pending operation, and a re-run once Okta has finished completes the setup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_bootstrap_gives_up_on_an_operation_at_its_deadline_and_resumes_later() {
    let org = StandIn::start().await;
    org.with(|s| s.faults.stall_operations = true);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let args = [
        "bootstrap",
        "--org",
        &org.base,
        "--out",
        &out,
        "--yes",
        "--poll-interval-ms",
        "20",
        "--poll-deadline-secs",
        "1",
    ];
    let run = okta(&args, Some(TOKEN)).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("had not completed after 1 s")
            && run.stderr.contains("run the command again"),
        "{}",
        run.stderr
    );
    assert!(
        state(dir.path()).get("pendingAgentOperation").is_some(),
        "the pending operation is kept: {}",
        state(dir.path())
    );
    org.with(|s| s.faults.stall_operations = false);
    let again = bootstrap(&org, dir.path()).await;
    assert!(again.ok, "{}", again.stderr);
    assert_eq!(
        state(dir.path())["agentIdentityIds"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_rollback_deletes_in_reverse_order_past_a_404_and_keeps_the_state_on_failure() {
    let org = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    assert!(bootstrap(&org, out).await.ok);
    let before = org.requests().len();
    org.with(|s| {
        // Deleted by hand in the Admin Console: a 404 at rollback.
        s.resources
            .get_mut("/api/v1/trustedOrigins")
            .unwrap()
            .retain(|o| o["id"] != "tos15");
        s.faults.fail_delete = Some("/api/v1/apps/0oa7".into());
    });
    let first = rollback(out).await;
    assert!(!first.ok);
    assert!(
        first.stderr.contains("1 deletion(s) failed")
            && first.stderr.contains("stand-in delete fault"),
        "{}",
        first.stderr
    );
    assert!(first.stdout.contains("already gone"), "{}", first.stdout);
    let left = state(out);
    assert_eq!(left["todo0AppIds"], json!(["0oa7"]));
    assert_eq!(left["agent0AppIds"], json!([]));
    assert_eq!(left["mcpAuthServerIds"], json!([]));
    assert_eq!(left["agentIdentityIds"], json!([]));
    assert_eq!(left["trustedOriginIds"], json!([]));
    let calls: Vec<String> = org.requests()[before..]
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let position = |needle: &str| {
        calls
            .iter()
            .position(|c| c == needle)
            .unwrap_or_else(|| panic!("{needle} in {calls:#?}"))
    };
    let order = [
        "DELETE /api/v1/authorizationServers/aus1/policies/pol13/rules/rul14",
        "DELETE /api/v1/authorizationServers/aus1/policies/pol17/rules/rul18",
        "DELETE /api/v1/authorizationServers/aus1/policies/pol13",
        "DELETE /api/v1/authorizationServers/aus1/policies/pol17",
        "POST /governance/api/v1/resource-owners",
        "POST /workload-principals/api/v1/ai-agents/wlp8/connections/con12/lifecycle/deactivate",
        "DELETE /workload-principals/api/v1/ai-agents/wlp8/connections/con12",
        "POST /workload-principals/api/v1/ai-agents/wlp8/lifecycle/deactivate",
        "DELETE /workload-principals/api/v1/ai-agents/wlp8",
        "DELETE /api/v1/apps/0oa6/users/00uAdmin",
        "POST /api/v1/apps/0oa6/lifecycle/deactivate",
        "DELETE /api/v1/apps/0oa6",
        "POST /api/v1/authorizationServers/aus1/lifecycle/deactivate",
        "DELETE /api/v1/authorizationServers/aus1",
        "DELETE /api/v1/trustedOrigins/tos16",
    ];
    let positions: Vec<usize> = order.iter().map(|c| position(c)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{calls:#?}");
    let owners = org
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/governance/api/v1/resource-owners")
        .unwrap();
    assert_eq!(owners.body["principalOrns"], Value::Null);

    // Fixed: the re-run deletes the rest and the state file.
    org.with(|s| s.faults.fail_delete = None);
    let second = rollback(out).await;
    assert!(second.ok, "{}\n{}", second.stdout, second.stderr);
    assert!(!out.join(".okta-bootstrap-state.json").exists());
    assert!(
        org.held().is_empty() || org.held().iter().all(|h| h.contains("tosOld")),
        "{:?}",
        org.held()
    );
    let third = rollback(out).await;
    assert!(
        third.ok && third.stdout.contains("Nothing to roll back"),
        "{}",
        third.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_bootstrap_refuses_a_corrupt_state_file_or_one_of_another_org() {
    let org = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".okta-bootstrap-state.json");
    std::fs::write(&path, "{\"oktaDomain\": ").unwrap();
    let run = bootstrap(&org, dir.path()).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("not a readable bootstrap state")
            && run.stderr.contains("not replaced"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"oktaDomain\": ");
    assert!(org.requests().is_empty());
    let rollback_run = rollback(dir.path()).await;
    assert!(!rollback_run.ok && rollback_run.stderr.contains("not replaced"));

    std::fs::write(
        &path,
        r#"{"oktaDomain":"dev-1.okta.com","mcpAuthServerIds":["aus9"]}"#,
    )
    .unwrap();
    let run = bootstrap(&org, dir.path()).await;
    assert!(!run.ok);
    assert!(
        run.stderr.contains("belongs to the org dev-1.okta.com"),
        "{}",
        run.stderr
    );
    assert!(org.requests().is_empty());
}

/// A step whose answer was lost (done at Okta, a 502 here): the re-run finds the resource by
/// its name, origin or key and creates no duplicate (the agent: by name and app in the list of
/// agents).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_bootstrap_finds_what_a_lost_answer_created_instead_of_duplicating_it() {
    let reference = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    assert!(bootstrap(&reference, dir.path()).await.ok);
    let expected = comparable(dir.path());
    let expected_held = reference.held();
    // AS, a scope, both apps, an assignment, the agent, the key, the connection, policy, rule,
    // an origin, todo0's policy and rule.
    for k in [1, 2, 6, 7, 8, 10, 12, 14, 15, 16, 18, 19, 20] {
        let org = StandIn::start().await;
        org.with(|s| s.faults.lose_post = Some(k));
        let dir = tempfile::tempdir().unwrap();
        let failed = bootstrap(&org, dir.path()).await;
        assert!(!failed.ok, "k={k}");
        let resumed = bootstrap(&org, dir.path()).await;
        assert!(resumed.ok, "k={k}: {}", resumed.stderr);
        assert_eq!(org.held(), expected_held, "k={k}: no duplicate");
        assert_eq!(comparable(dir.path()), expected, "k={k}");
    }
}

/// Resources deleted by hand in the Admin Console are created again, and said so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_bootstrap_recreates_what_was_deleted_by_hand() {
    let org = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    assert!(bootstrap(&org, dir.path()).await.ok);
    org.with(|s| {
        s.resources
            .get_mut("/api/v1/apps")
            .unwrap()
            .retain(|a| a["id"] != "0oa7");
        s.resources.remove("/api/v1/apps/0oa7/users");
        s.resources
            .get_mut("/api/v1/trustedOrigins")
            .unwrap()
            .retain(|o| o["id"] != "tos16");
    });
    let again = bootstrap(&org, dir.path()).await;
    assert!(again.ok, "{}", again.stderr);
    assert!(
        again
            .stdout
            .contains("the todo0 app 0oa7 recorded in the state is gone from Okta"),
        "{}",
        again.stdout
    );
    assert!(
        again
            .stdout
            .contains("trusted origin http://localhost:5002"),
        "{}",
        again.stdout
    );
    // todo0's sign-in policy still names the app's old client: the fix is said.
    assert!(
        again.stdout.contains(
            "the access policy todo0 web sign-in (pol17) does not include the client client-0oa19"
        ),
        "{}",
        again.stdout
    );
    let recorded = state(dir.path());
    assert_eq!(recorded["todo0AppIds"], json!(["0oa19"]));
    assert_eq!(recorded["trustedOriginIds"], json!(["tos15", "tos20"]));
    let todo_app = env(&dir.path().join("packages/todo0/.env.app"));
    assert_eq!(todo_app["OKTA_CLIENT_ID"], "client-0oa19");
    assert!(dir.path().join("packages/todo0/.env.app.backup").exists());
}

/// A hostile or compromised org must not get the API token sent elsewhere: a `Link:
/// rel="next"` or an operation's `Location` naming another origin is refused, never followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_bootstrap_never_sends_the_api_token_to_another_origin() {
    let thief = StandIn::start().await;
    for second_page in [false, true] {
        let org = StandIn::start().await;
        org.with(|s| s.faults.foreign_links = Some(thief.base.clone()));
        if second_page {
            // Enough look-alike servers for a second page of the first list bootstrap reads,
            // so its `next` link (to the other origin) comes up.
            org.with(|s| {
                let items = s
                    .resources
                    .entry("/api/v1/authorizationServers".into())
                    .or_default();
                for i in 0..3 {
                    items.push(json!({"id": format!("ausOld{i}"),
                        "name": format!("todo0-mcp-server-old{i}"), "audiences": ["x"],
                        "status": "ACTIVE"}));
                }
            });
        }
        let dir = tempfile::tempdir().unwrap();
        let run = bootstrap(&org, dir.path()).await;
        assert!(!run.ok, "{}", run.stderr);
        assert!(
            run.stderr.contains("another origin"),
            "the refusal is explained: {}",
            run.stderr
        );
        assert!(!run.stderr.contains(TOKEN) && !run.stdout.contains(TOKEN));
    }
    let stolen: Vec<_> = thief.requests();
    assert!(
        stolen.is_empty(),
        "requests reached another origin: {:?}",
        stolen.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
}

/// A private key that others can read (or that someone else planted in a shared --out folder)
/// is never uploaded as the agent's key: bootstrap stops before creating the agent's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_bootstrap_refuses_an_agent_key_that_others_can_read() {
    let org = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("packages/agent0/agent0-agent.pem");
    std::fs::create_dir_all(key_path.parent().unwrap()).unwrap();
    let planted = protocol::keys::SigningKey::generate(protocol::keys::KeyKind::Rsa).unwrap();
    std::fs::write(
        &key_path,
        secrecy::ExposeSecret::expose_secret(planted.private_pem()),
    )
    .unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = bootstrap(&org, dir.path()).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("has mode 644"), "{}", run.stderr);
    let uploaded: Vec<_> = org
        .posts()
        .into_iter()
        .filter(|r| r.path.ends_with("/credentials/jwks"))
        .collect();
    assert!(uploaded.is_empty(), "the planted key was uploaded");
}

/// A state file whose ids would leave their request path (`../../users/…`) is refused before
/// any request: rollback must not delete some other resource of the org.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_rollback_refuses_a_state_whose_ids_traverse_to_other_resources() {
    let org = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let crafted = json!({
        "version": 1,
        "oktaDomain": org.base,
        "todo0AppIds": ["0oa1"],
        "todo0AppUserIds": ["../../../users/00u1"],
    });
    std::fs::write(
        dir.path().join(".okta-bootstrap-state.json"),
        crafted.to_string(),
    )
    .unwrap();
    let run = rollback(dir.path()).await;
    assert!(!run.ok);
    assert!(run.stderr.contains("not an Okta id"), "{}", run.stderr);
    assert!(
        org.requests().iter().all(|r| r.method != "DELETE"),
        "{:?}",
        org.requests()
    );
}
