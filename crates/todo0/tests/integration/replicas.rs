//! todo0 on several replicas behind a load balancer (issue 10), each pair over one PostgreSQL
//! schema, every replica with its own connection pool as separate processes would have:
//!
//! * two MCP servers in stateless mode (`todo-mcp --stateless`) with the same resource identifier
//!   (the balancer's public URL) and the same authorization server keys: a client initializes on
//!   one and calls tools on either; writes through one are read through the other; scope, token
//!   and owner checks answer the same on both; no session is ever recorded, and the server's tasks
//!   do not pile up over many calls;
//! * two web app instances sharing the cookie key (`SESSION_SECRET`): a person logged in through
//!   one uses the pages and the REST API through the other, a login begun on one finishes on the
//!   other, and logging out through one ends the session on both.

use std::sync::Arc;
use std::time::Duration;

use protocol::Scopes;
use protocol::claims::{AccessTokenClaims, Audience};
use protocol::keys::{KeyKind, SigningKey, jwk_set};
use protocol::verify::StaticKeys;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use testkit::{Browser, Stack, hidden_fields, location};
use todo0::store::{PostgresStore, TodoStore};

use super::harness::{ISSUER, McpClient, Reply, Server, call};

/// The resource identifier every replica serves: the balancer's URL, not a replica's own.
const RESOURCE: &str = "https://todo0.test/mcp";
const ALL: &str = "mcp:connect mcp:tools:read mcp:tools:manage mcp:tools:delete";

/// A store on the shared schema, with its own pool.
async fn shared_store(schema: &dbconn::testing::TestSchema) -> Arc<dyn TodoStore> {
    match PostgresStore::connect_in_schema(schema.url(), schema.name()).await {
        Ok(store) => Arc::new(store),
        Err(e) => panic!("{}", schema.required(e)),
    }
}

/// One stateless MCP replica on 127.0.0.1:0.
struct McpReplica {
    client: McpClient,
    sessions: Arc<todo0::mcp::OwnedSessions>,
}

impl McpReplica {
    async fn start(key: &SigningKey, store: Arc<dyn TodoStore>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let mut config = todo0::mcp::McpConfig::new(ISSUER, RESOURCE);
        config.stateless = true;
        let keys = Arc::new(StaticKeys::new(&jwk_set([key])));
        let mcp = todo0::mcp::build(&config, keys, store, protocol::clock::system());
        let app = mcp.router;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            client: Server::attach(&url),
            sessions: mcp.sessions,
        }
    }
}

/// Two stateless MCP replicas on one PostgreSQL schema.
struct McpPair {
    a: McpReplica,
    b: McpReplica,
    key: SigningKey,
    _schema: dbconn::testing::TestSchema,
}

impl McpPair {
    async fn start() -> Self {
        let schema = dbconn::testing::TestSchema::new("TODO0_TEST_DATABASE_URL");
        let key = SigningKey::generate(KeyKind::Rsa).unwrap();
        let a = McpReplica::start(&key, shared_store(&schema).await).await;
        let b = McpReplica::start(&key, shared_store(&schema).await).await;
        Self {
            a,
            b,
            key,
            _schema: schema,
        }
    }

    fn token(&self, user: &str, scopes: &str) -> String {
        sign(&self.key, user, scopes, RESOURCE, 600)
    }
}

/// An access token as the todo0 authorization server issues it, expiring `ttl` seconds from now
/// (negative: already expired).
fn sign(key: &SigningKey, user: &str, scopes: &str, audience: &str, ttl: i64) -> String {
    let scopes = Scopes::parse(scopes).unwrap();
    let exp = protocol::clock::system().now() + ttl;
    let claims = AccessTokenClaims {
        iss: ISSUER.into(),
        aud: Audience::One(audience.into()),
        sub: user.into(),
        exp,
        iat: exp - 600,
        jti: Some(uuid::Uuid::new_v4().to_string()),
        uid: Some(user.into()),
        cid: Some("agent0-agent".into()),
        client_id: Some("agent0-agent".into()),
        scp: Some(scopes.to_vec()),
        scope: Some(scopes.to_string()),
        auth_time: None,
        act: None,
    };
    key.sign("at+jwt", &claims).unwrap()
}

fn ok(reply: &Reply) -> &Value {
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply.headers.get("mcp-session-id").is_none(),
        "a stateless replica names no session"
    );
    assert!(!reply.is_tool_error(), "{}", reply.text);
    reply.structured()
}

fn titles(list: &Value) -> Vec<(String, bool)> {
    let mut titles: Vec<(String, bool)> = list["todos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["title"].as_str().unwrap().to_owned(),
                t["completed"].as_bool().unwrap(),
            )
        })
        .collect();
    titles.sort();
    titles
}

#[tokio::test]
async fn stateless_mcp_replicas_on_one_database_serve_any_request_on_either() {
    let pair = McpPair::start().await;
    let (a, b) = (&pair.a.client, &pair.b.client);
    let alice = pair.token("alice", ALL);

    // The handshake happens on A; nothing of it is needed on B.
    assert_eq!(a.initialize(&alice).await, None, "no Mcp-Session-Id");
    let created = b
        .rpc(
            Some(&alice),
            None,
            &call("create-todo", json!({"title": "from B"})),
        )
        .await;
    let id = ok(&created)["todo"]["id"].as_i64().unwrap();
    let listed = a
        .rpc(Some(&alice), None, &call("get-todos", json!({})))
        .await;
    assert_eq!(titles(ok(&listed)), [("from B".to_owned(), false)]);

    let updated = b
        .rpc(
            Some(&alice),
            None,
            &call(
                "update-todo",
                json!({"id": id, "title": "renamed on B", "completed": true}),
            ),
        )
        .await;
    assert_eq!(ok(&updated)["todo"]["title"], "renamed on B");
    let created = a
        .rpc(
            Some(&alice),
            None,
            &call("create-todo", json!({"title": "from A"})),
        )
        .await;
    ok(&created);
    for replica in [a, b] {
        let listed = replica
            .rpc(Some(&alice), None, &call("get-todos", json!({})))
            .await;
        assert_eq!(
            titles(ok(&listed)),
            [
                ("from A".to_owned(), false),
                ("renamed on B".to_owned(), true)
            ]
        );
    }

    // The owner comes from each request's token, on whichever replica answers.
    let bob = pair.token("bob", ALL);
    let theirs = b.rpc(Some(&bob), None, &call("get-todos", json!({}))).await;
    assert_eq!(ok(&theirs)["count"], 0);
    let foreign = a
        .rpc(
            Some(&bob),
            None,
            &call("update-todo", json!({"id": id, "title": "bob was here"})),
        )
        .await;
    assert!(foreign.is_tool_error(), "{}", foreign.text);
    let listed = b
        .rpc(Some(&alice), None, &call("get-todos", json!({})))
        .await;
    assert!(!listed.text.contains("bob was here"), "{}", listed.text);

    assert!(pair.a.sessions.is_empty() && pair.b.sessions.is_empty());
}

#[tokio::test]
async fn stateless_mcp_replicas_refuse_the_same_tokens_the_same_way() {
    let pair = McpPair::start().await;
    let (a, b) = (&pair.a.client, &pair.b.client);
    let reader = pair.token("alice", "mcp:connect mcp:tools:read");
    let stranger = SigningKey::generate(KeyKind::Rsa).unwrap();
    let refused = [
        ("expired", sign(&pair.key, "alice", ALL, RESOURCE, -3600)),
        (
            "another resource",
            sign(&pair.key, "alice", ALL, "https://other.test/mcp", 600),
        ),
        (
            "an unknown key",
            sign(&stranger, "alice", ALL, RESOURCE, 600),
        ),
    ];

    let mut answers = vec![];
    for replica in [a, b] {
        // A valid token without the tool's scope: 403 with the step-up challenge, nothing done.
        let create = call("create-todo", json!({"title": "not allowed"}));
        let reply = replica.rpc(Some(&reader), None, &create).await;
        assert_eq!(reply.status, 403, "{}", reply.text);
        let challenge = reply.challenge();
        assert_eq!(challenge.param("error"), Some("insufficient_scope"));
        let scope = challenge.param("scope").unwrap().to_owned();
        assert!(scope.split(' ').any(|s| s == "mcp:tools:manage"), "{scope}");
        // What the token allows still works there.
        let listed = replica
            .rpc(Some(&reader), None, &call("get-todos", json!({})))
            .await;
        assert_eq!(ok(&listed)["count"], 0);

        for (why, token) in &refused {
            let reply = replica
                .rpc(Some(token), None, &call("get-todos", json!({})))
                .await;
            assert_eq!(reply.status, 401, "{why}: {}", reply.text);
            assert_eq!(
                reply.challenge().param("error"),
                Some("invalid_token"),
                "{why}"
            );
        }
        let anonymous = replica.rpc(None, None, &call("get-todos", json!({}))).await;
        assert_eq!(anonymous.status, 401);
        answers.push(scope);
    }
    assert_eq!(
        answers[0], answers[1],
        "both replicas ask for the same scopes"
    );

    // GET (a standalone SSE stream) and DELETE (ending a session) have nothing to serve without
    // sessions: 405 naming POST, as the Streamable HTTP transport allows; still behind the token.
    let alice = pair.token("alice", ALL);
    let http = reqwest::Client::new();
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let send = |token: Option<&str>| {
            let mut request = http
                .request(method.clone(), &a.url)
                .header("accept", "text/event-stream")
                .header("mcp-protocol-version", "2025-11-25");
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let answer = send(Some(&alice)).await.unwrap();
        assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(answer.headers()["allow"], "POST", "{method}");
        assert_eq!(
            send(None).await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "{method}"
        );
    }
    let left = a
        .rpc(Some(&alice), None, &call("get-todos", json!({})))
        .await;
    assert_eq!(ok(&left)["count"], 0, "no refused call wrote anything");
}

#[tokio::test]
async fn a_stateless_replica_keeps_nothing_per_request() {
    let pair = McpPair::start().await;
    let (a, b) = (&pair.a.client, &pair.b.client);
    let alice = pair.token("alice", ALL);
    let alive = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let settle = |limit: usize| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = alive();
            if now <= limit || tokio::time::Instant::now() > deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // Warm both replicas (pools, key caches), then count the tasks the test runtime holds.
    for replica in [a, b] {
        replica.initialize(&alice).await;
        let reply = replica
            .rpc(Some(&alice), None, &call("get-todos", json!({})))
            .await;
        ok(&reply);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = alive();

    for n in 0..200 {
        let replica = if n % 2 == 0 { a } else { b };
        let message = if n % 10 == 0 {
            call("create-todo", json!({"title": format!("todo {n}")}))
        } else {
            call("get-todos", json!({}))
        };
        let reply = replica.rpc(Some(&alice), None, &message).await;
        ok(&reply);
    }
    let listed = b
        .rpc(Some(&alice), None, &call("get-todos", json!({})))
        .await;
    assert_eq!(ok(&listed)["count"], 20);

    assert_eq!(pair.a.sessions.len(), 0, "no session recorded on A");
    assert_eq!(pair.b.sessions.len(), 0, "no session recorded on B");
    // Each call's handler task ends with its answer: the tasks alive come back to what they were
    // (a few connection tasks may still be closing, hence the slack).
    let after = settle(before + 4).await;
    assert!(
        after <= before + 4,
        "{before} tasks before 200 calls, {after} after"
    );
}

/// A web app instance on 127.0.0.1:0 with its own pool on the shared schema; returns its URL.
async fn web_replica(
    stack: &Stack,
    secret: &secrecy::SecretString,
    schema: &dbconn::testing::TestSchema,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let oidc = todo0::web::OidcSettings {
        issuer: stack.idp.issuer.clone(),
        client_id: "todo0".into(),
        client_secret: stack.idp.client_secret("todo0"),
        redirect_uri: testkit::TODO0_REDIRECT.into(),
        post_logout_redirect_uri: "http://localhost:5001/".into(),
    };
    // What `SESSION_SECRET` does on each replica: the same key from the same secret.
    let key = todo0::web::SessionKey::from_secret(secret).unwrap();
    let config = todo0::web::WebConfig::new(oidc, key, stack.idp.todo0_issuer(), &stack.mcp_url);
    let jwks = protocol::verify::RemoteJwks::discover(
        protocol::discovery::http_client().unwrap(),
        &stack.idp.todo0_issuer(),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let store = shared_store(schema).await;
    let router = todo0::web::router(config, Arc::new(jwks), store, protocol::clock::system())
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// Logs `user` in: `/login` on `start`, idp0's form, and `/callback` on `finish`, as a browser
/// behind a balancer may do. Returns the session cookie (`todo0_session=…`).
async fn log_in(stack: &Stack, user: &str, start: &str, finish: &str) -> String {
    let browser = Browser::new();
    let begun = browser
        .http
        .get(format!("{start}/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(begun.status(), StatusCode::SEE_OTHER);
    let authorize = location(&begun).unwrap();
    let password = stack.idp.password(user);
    let done = browser
        .log_in_to(
            authorize.as_str(),
            (user, &password),
            &format!("{finish}/callback"),
        )
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(done.headers()[LOCATION], "/");
    done.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("todo0_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn web_app_replicas_sharing_the_cookie_key_and_database_share_sessions_and_logout() {
    let stack = Stack::start().await.unwrap();
    let schema = dbconn::testing::TestSchema::new("TODO0_TEST_DATABASE_URL");
    let secret = todo0::web::SessionKey::generate_secret();
    let a = web_replica(&stack, &secret, &schema).await;
    let b = web_replica(&stack, &secret, &schema).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let cookie = log_in(&stack, "alice", &a, &a).await;
    let get = |url: String| {
        http.get(url)
            .header("cookie", &cookie)
            .header("accept", "application/json")
            .send()
    };
    // The page through B knows her and carries the CSRF token her session holds.
    let page = http
        .get(format!("{b}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(!page.contains("Log in"), "{page}");
    let csrf = hidden_fields(&page)
        .into_iter()
        .find(|(name, _)| name == "csrf_token")
        .map(|(_, value)| value)
        .expect("the page through B carries the CSRF token");
    assert!(page.contains("alice") || page.contains("Alice"), "{page}");

    // A change through B (REST, CSRF-checked) and a form through A; each read through the other.
    let created = http
        .post(format!("{b}/todos"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"title": "written through B"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let form = http
        .post(format!("{a}/todos"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("title", "written through A"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::SEE_OTHER);
    for replica in [&a, &b] {
        let listed: Value = get(format!("{replica}/todos"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut titles: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["title"].as_str().unwrap())
            .collect();
        titles.sort_unstable();
        assert_eq!(
            titles,
            ["written through A", "written through B"],
            "{replica}"
        );
    }
    let who = get(format!("{b}/session")).await.unwrap();
    assert_eq!(who.status(), StatusCode::OK);

    // A login begun on B finishes on A (the pre-login cookie is under the same key).
    let bob = log_in(&stack, "bob", &b, &a).await;
    let bobs = http
        .get(format!("{b}/todos"))
        .header("cookie", &bob)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(bobs.status(), StatusCode::OK);
    assert!(!bobs.text().await.unwrap().contains("written through"));

    // Logging out through A ends the session on B too (the ended session is in the database).
    let out = http
        .post(format!("{a}/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    for path in ["/todos", "/session"] {
        for replica in [&b, &a] {
            let refused = get(format!("{replica}{path}")).await.unwrap();
            assert_eq!(
                refused.status(),
                StatusCode::UNAUTHORIZED,
                "{replica}{path}"
            );
        }
    }
    let page = http
        .get(format!("{b}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Log in") && !page.contains("written through"),
        "{page}"
    );
    // Bob's session, on the same replicas, is untouched.
    let still = http
        .get(format!("{a}/session"))
        .header("cookie", &bob)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), StatusCode::OK);
}
