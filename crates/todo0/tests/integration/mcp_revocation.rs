//! Revoked access tokens stop working at todo0 (RFC 7662 introspection by a background sweep):
//! against a fake introspection endpoint that speaks the real wire format, and end to end with
//! idp0 revoking a token from the real Cross-App Access chain.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use testkit::{Browser, IdpHandle};
use todo0::mcp::{RevocationConfig, SweepReport};

use crate::harness::{Backend, Server, call};

const READ: &str = "mcp:connect mcp:tools:read";

/// An introspection endpoint: `todo0`/`s3cret` by HTTP Basic, inactive for the tokens in
/// `revoked`, HTTP 500 while `down`.
#[derive(Clone, Default)]
struct FakeAs {
    revoked: Arc<Mutex<HashSet<String>>>,
    down: Arc<Mutex<bool>>,
    asked: Arc<Mutex<Vec<(String, String)>>>,
}

async fn post_introspect(
    State(fake): State<FakeAs>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    if *fake.down.lock().unwrap() {
        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({})));
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("todo0:s3cret")
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        );
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let token = form
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let hint = form
        .iter()
        .find(|(k, _)| k == "token_type_hint")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    fake.asked.lock().unwrap().push((token.clone(), hint));
    let active = !fake.revoked.lock().unwrap().contains(&token);
    (StatusCode::OK, axum::Json(json!({"active": active})))
}

async fn fake_as() -> (FakeAs, String) {
    let fake = FakeAs::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/introspect", axum::routing::post(post_introspect))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, url)
}

#[tokio::test]
async fn the_sweep_denies_tokens_introspection_calls_inactive_and_keeps_the_rest() {
    let (fake, url) = fake_as().await;
    let mut config =
        RevocationConfig::new(&url, "todo0", SecretString::from("s3cret".to_owned())).unwrap();
    // No background sweep during the test: sweeps are run by hand.
    config.interval = Duration::from_secs(3600);
    let server = Server::start_with(Backend::Sqlite, |c| c.revocation = Some(config.clone())).await;
    let revoked = server.token("alice", READ);
    let kept = server.token("alice", READ);
    for token in [&revoked, &kept] {
        assert_eq!(server.call(token, "get-todos", json!({})).await.status, 200);
    }
    assert!(
        fake.asked.lock().unwrap().is_empty(),
        "requests never wait on introspection"
    );

    fake.revoked.lock().unwrap().insert(revoked.clone());
    let report = server.guard.sweep_revocations(&config).await;
    assert_eq!(
        report,
        SweepReport {
            checked: 2,
            revoked: 1,
            failed: 0
        }
    );
    assert!(
        fake.asked
            .lock()
            .unwrap()
            .iter()
            .all(|(_, hint)| hint == "access_token")
    );
    let refused = server
        .rpc(Some(&revoked), None, &call("get-todos", json!({})))
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.challenge().param("error"), Some("invalid_token"));
    assert_eq!(server.call(&kept, "get-todos", json!({})).await.status, 200);

    // Only tokens used since the last sweep are asked about.
    let asked = fake.asked.lock().unwrap().len();
    let report = server.guard.sweep_revocations(&config).await;
    assert_eq!(report.checked, 1, "only the kept token was used since");
    assert_eq!(fake.asked.lock().unwrap().len(), asked + 1);
    let report = server.guard.sweep_revocations(&config).await;
    assert_eq!(report.checked, 0, "nothing was used since");

    // An outage keeps serving, and the token is asked about again at the next sweep.
    *fake.down.lock().unwrap() = true;
    assert_eq!(server.call(&kept, "get-todos", json!({})).await.status, 200);
    let report = server.guard.sweep_revocations(&config).await;
    assert_eq!((report.checked, report.failed), (1, 1));
    assert_eq!(server.call(&kept, "get-todos", json!({})).await.status, 200);
    *fake.down.lock().unwrap() = false;
    fake.revoked.lock().unwrap().insert(kept.clone());
    let report = server.guard.sweep_revocations(&config).await;
    assert_eq!((report.checked, report.revoked), (1, 1));
    assert_eq!(
        server
            .rpc(Some(&kept), None, &call("get-todos", json!({})))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn wrong_client_credentials_revoke_nothing() {
    let (fake, url) = fake_as().await;
    let mut config =
        RevocationConfig::new(&url, "todo0", SecretString::from("wrong".to_owned())).unwrap();
    config.interval = Duration::from_secs(3600);
    let server = Server::start_with(Backend::Sqlite, |c| c.revocation = Some(config.clone())).await;
    let token = server.token("alice", READ);
    assert_eq!(
        server.call(&token, "get-todos", json!({})).await.status,
        200
    );
    fake.revoked.lock().unwrap().insert(token.clone());
    let report = server.guard.sweep_revocations(&config).await;
    assert_eq!((report.checked, report.revoked, report.failed), (1, 0, 1));
}

/// Revokes `token` at `endpoint` as the agent it was issued to (`private_key_jwt`).
async fn revoke_as_agent(idp: &IdpHandle, endpoint: &str, token: &SecretString) {
    let auth = idp.agent_auth();
    let protocol::token_client::ClientAuth::PrivateKeyJwt(signer) = &auth else {
        panic!("the agent authenticates with private_key_jwt");
    };
    let mut form: Vec<(String, String)> = signer
        .form_fields(endpoint)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.expose_secret().to_owned()))
        .collect();
    form.push(("token".into(), token.expose_secret().to_owned()));
    let response = reqwest::Client::new()
        .post(endpoint)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// An access token from the real ID-JAG chain.
async fn real_token(idp: &IdpHandle, mcp_url: &str, user: &str) -> SecretString {
    let login = idp.login(&Browser::new(), user).await.unwrap();
    let id_token = login.id_token.unwrap();
    idp.cross_app_access(&id_token, mcp_url, READ)
        .await
        .unwrap()
        .access
        .access_token
}

#[tokio::test]
async fn a_token_revoked_at_idp0_is_refused_within_the_sweep_interval() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mcp_url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let idp = IdpHandle::start_for_resource(&mcp_url).await.unwrap();
    let http = protocol::discovery::http_client().unwrap();
    let metadata = protocol::discovery::discover(&http, &idp.todo0_issuer())
        .await
        .unwrap();
    let introspection = metadata.introspection_endpoint.clone().unwrap();
    let mut revocation =
        RevocationConfig::new(&introspection, "todo0", idp.client_secret("todo0")).unwrap();
    let interval = Duration::from_millis(200);
    revocation.interval = interval;
    let jwks =
        protocol::verify::RemoteJwks::discover(http, &idp.todo0_issuer(), Duration::from_secs(30))
            .await
            .unwrap();
    let mut config = todo0::mcp::McpConfig::new(idp.todo0_issuer(), &mcp_url);
    config.revocation = Some(revocation);
    let store = Arc::new(todo0::store::SqliteStore::temporary().await.unwrap());
    let mcp = todo0::mcp::build(&config, Arc::new(jwks), store, protocol::clock::system());
    let app = mcp.router;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = Server::attach(&mcp_url);

    let revoked = real_token(&idp, &mcp_url, "alice").await;
    let kept = real_token(&idp, &mcp_url, "alice").await;
    for token in [&revoked, &kept] {
        let reply = client
            .call(token.expose_secret(), "get-todos", json!({}))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }

    // The agent revokes its token at the todo0 authorization server (RFC 7009).
    let revoke = metadata.revocation_endpoint.clone().unwrap();
    revoke_as_agent(&idp, &revoke, &revoked).await;
    let revoked_at = Instant::now();

    let session = client.initialize(kept.expose_secret()).await;
    loop {
        let reply = client
            .rpc(
                Some(revoked.expose_secret()),
                None,
                &call("get-todos", json!({})),
            )
            .await;
        if reply.status == 401 {
            assert_eq!(reply.challenge().param("error"), Some("invalid_token"));
            break;
        }
        assert!(
            revoked_at.elapsed() < interval * 10,
            "still accepted {:?} after revocation",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = revoked_at.elapsed();
    assert!(elapsed < interval * 10, "refused after {elapsed:?}");
    eprintln!("revoked token refused {elapsed:?} after revocation (sweep every {interval:?})");
    // A token that was not revoked keeps working, sessions and all.
    tokio::time::sleep(interval * 2).await;
    let reply = client
        .rpc(
            Some(kept.expose_secret()),
            session.as_deref(),
            &call("get-todos", json!({})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        mcp.guard.cached_tokens(),
        1,
        "the revoked token left the cache"
    );
}

#[tokio::test]
async fn the_rest_api_refuses_a_token_revoked_at_idp0_too() {
    let stack = testkit::Stack::start().await.unwrap();
    let http = protocol::discovery::http_client().unwrap();
    let metadata = protocol::discovery::discover(&http, &stack.idp.todo0_issuer())
        .await
        .unwrap();
    let mut revocation = RevocationConfig::new(
        metadata.introspection_endpoint.clone().unwrap(),
        "todo0",
        stack.idp.client_secret("todo0"),
    )
    .unwrap();
    revocation.interval = Duration::from_millis(200);
    let oidc = todo0::web::OidcSettings {
        issuer: stack.idp.issuer.clone(),
        client_id: "todo0".into(),
        client_secret: stack.idp.client_secret("todo0"),
        redirect_uri: testkit::TODO0_REDIRECT.into(),
        post_logout_redirect_uri: "http://localhost:5001/".into(),
    };
    let key =
        todo0::web::SessionKey::from_secret(&todo0::web::SessionKey::generate_secret()).unwrap();
    let mut config =
        todo0::web::WebConfig::new(oidc, key, stack.idp.todo0_issuer(), &stack.mcp_url);
    config.revocation = Some(revocation);
    let jwks = protocol::verify::RemoteJwks::discover(
        http,
        &stack.idp.todo0_issuer(),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let router = todo0::web::router(
        config,
        Arc::new(jwks),
        stack.store.clone(),
        protocol::clock::system(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let todos = format!("http://{}/todos", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let token = stack.mcp_token("alice", READ).await.unwrap();
    let get = || {
        reqwest::Client::new()
            .get(&todos)
            .bearer_auth(token.expose_secret())
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 200);
    revoke_as_agent(
        &stack.idp,
        metadata.revocation_endpoint.as_deref().unwrap(),
        &token,
    )
    .await;
    let revoked_at = Instant::now();
    loop {
        let status = get().await.unwrap().status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(2),
            "still accepted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
