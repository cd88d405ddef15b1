//! In-process token-endpoint throughput of idp0 (no sockets): requests go through
//! `idp0::router(idp)` with `tower::ServiceExt::oneshot`, so the figures cover routing, form
//! parsing, `private_key_jwt` client authentication (verification plus the jti replay insert),
//! the grant, token signing and the JSON response, but no TCP or HTTP framing. The IdP has the
//! development configuration's shape (generated here), a SQLite file in a temporary directory
//! (WAL, `synchronous = FULL`: each request's `jti` writes are durable, as in production),
//! ephemeral RSA keys and the system clock. Requests are sent one at a time (latency, ops/s = 1 / time).
//!
//! * `token_endpoint/id_jag_exchange`: RFC 8693 exchange of alice's ID token (issued to `agent0`,
//!   which `agent0-agent` is linked to) for an ID-JAG at `/oauth2/v1/token`.
//! * `token_endpoint/jwt_bearer_redemption`: redeeming an ID-JAG at `/oauth2/todo0/v1/token`.
//!   An ID-JAG is redeemable once, so batches are minted outside the timed section.
//! * `token_endpoint/client_assertion_sign`: signing one client assertion alone. Both requests
//!   include this cost: each needs a fresh assertion (new `jti`), signed as the agent would.
//!
//! Each request kind must answer 200 once, untimed, before it is measured (timed responses are
//! checked too), so a refused request cannot pass for throughput.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use devstack::{
    AGENT_ID, AGENT_INITIAL_SCOPES, AGENT0_CLIENT, TODO0_CLIENT, TODO0_MCP_RESOURCE, TODO0_SCOPES,
    TODO0_SERVER,
};
use idp0::config::{Config, ConfigFile};
use idp0::state::IdpParts;
use idp0::store::SqliteStore;
use idp0::tokens::{IdJagInput, IdTokenInput, new_secret};
use idp0::{Idp, password};
use protocol::Scopes;
use protocol::assertion::ClientAssertionSigner;
use protocol::keys::{KeyKind, SigningKey};
use protocol::oauth::{GrantType, TokenResponse, TokenType};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tower::ServiceExt;

const ISSUER: &str = "http://idp0.bench";

/// The development configuration (as `devstack::ensure` writes it), with fresh secrets.
fn dev_config(agent_key: &SigningKey) -> ConfigFile {
    let user = |username: &str, name: &str| {
        let hash = password::hash(&new_secret()).expect("hashing a password");
        json!({"username": username, "name": name, "email": format!("{username}@example.com"),
               "password_hash": hash})
    };
    let web_client = |id: &str, port: u16| {
        json!({"client_id": id, "name": id, "client_secret": new_secret(),
               "auth_method": "client_secret_basic",
               "redirect_uris": [format!("http://localhost:{port}/callback")],
               "post_logout_redirect_uris": [format!("http://localhost:{port}/")]})
    };
    let file = json!({
        "development": true,
        "id_token_lifetime_seconds": 3600, "id_jag_lifetime_seconds": 300,
        "users": [user("alice", "Alice Example"), user("bob", "Bob Example")],
        "clients": [web_client(AGENT0_CLIENT, 3000), web_client(TODO0_CLIENT, 5001)],
        "agents": [{"client_id": AGENT_ID, "name": "agent0 AI agent",
                    "jwks": {"keys": [agent_key.public_jwk()]}, "linked_clients": [AGENT0_CLIENT]}],
        "authorization_servers": [{
            "id": TODO0_SERVER, "name": "todo0 MCP", "audience": TODO0_MCP_RESOURCE,
            "scopes": TODO0_SCOPES, "default_scopes": ["mcp:connect"],
            "policies": [
                {"clients": [AGENT_ID], "grant_types": [GrantType::JwtBearer.as_str()],
                 "scopes": TODO0_SCOPES, "access_token_lifetime_seconds": 3600},
                {"clients": [TODO0_CLIENT], "grant_types": ["authorization_code", "refresh_token"],
                 "scopes": TODO0_SCOPES, "access_token_lifetime_seconds": 3600}]}]
    });
    serde_json::from_value(file).expect("a ConfigFile")
}

/// A form POST to `endpoint` with the agent's fresh `private_key_jwt` fields appended after
/// `params`, as `TokenClient` sends it.
fn token_request(
    endpoint: &str,
    agent: &ClientAssertionSigner,
    params: &[(&str, &str)],
) -> Request<Body> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(params.iter().copied());
    for (name, value) in agent.form_fields(endpoint).expect("signing an assertion") {
        form.append_pair(name, value.expose_secret());
    }
    Request::post(&endpoint[ISSUER.len()..])
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(Body::from(form.finish()))
        .expect("a valid request")
}

/// Sends a request through the router: its status and body.
async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, axum::body::Bytes) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await;
    (status, body.expect("a body"))
}

fn token_endpoint(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let clock = protocol::clock::system();
    let agent_key = Arc::new(SigningKey::generate(KeyKind::Rsa).expect("agent key"));
    let config = Config::from_file(dev_config(&agent_key), Path::new(".")).expect("valid config");
    let store = rt.block_on(SqliteStore::temporary()).expect("store");
    let idp = Idp::new(IdpParts {
        config,
        issuer: ISSUER.into(),
        store: Arc::new(store),
        clock: clock.clone(),
        keys_dir: None,
        demo_credentials: vec![],
    })
    .expect("assembling the IdP");
    let app = idp0::router(idp.clone());
    let agent = ClientAssertionSigner::new(AGENT_ID, agent_key, clock.clone());
    let todo0 = idp.server(Some(TODO0_SERVER)).expect("todo0 server");
    let (org_endpoint, todo0_endpoint) = (idp.org.endpoint("token"), todo0.endpoint("token"));
    let alice = idp
        .directory()
        .config
        .users
        .get("alice")
        .expect("alice")
        .clone();

    // alice's ID token, as agent0 holds it after login.
    let login_scope = Scopes::parse("openid profile email offline_access").expect("scopes");
    let now = clock.now();
    let id_token = idp0::tokens::id_token(
        &idp.org,
        &alice,
        &IdTokenInput {
            client_id: AGENT0_CLIENT,
            scope: &login_scope,
            nonce: Some("n0nce"),
            auth_time: now,
            sid: None,
            lifetime: idp.directory().config.id_token_lifetime,
        },
        now,
    )
    .expect("minting an ID token")
    .token;
    let (grant, requested, subject_type) = (
        GrantType::TokenExchange.to_string(),
        TokenType::IdJag.to_string(),
        TokenType::IdToken.to_string(),
    );
    let exchange = || {
        let params = [
            ("grant_type", grant.as_str()),
            ("requested_token_type", requested.as_str()),
            ("subject_token", id_token.expose_secret()),
            ("subject_token_type", subject_type.as_str()),
            ("audience", todo0.issuer.as_str()),
            ("resource", TODO0_MCP_RESOURCE),
            ("scope", AGENT_INITIAL_SCOPES),
        ];
        token_request(&org_endpoint, &agent, &params)
    };
    let jag_scope = Scopes::parse(AGENT_INITIAL_SCOPES).expect("scopes");
    let mint_jag = || -> SecretString {
        let input = IdJagInput {
            user: &alice,
            audience: &todo0.issuer,
            client_id: AGENT_ID,
            resource: Some(TODO0_MCP_RESOURCE),
            scope: &jag_scope,
            auth_time: Some(now),
            lifetime: idp.directory().config.id_jag_lifetime,
        };
        idp0::tokens::id_jag(&idp.org, &input, clock.now())
            .expect("minting an ID-JAG")
            .token
    };
    let bearer = GrantType::JwtBearer.to_string();
    let redeem = |jag: &SecretString| {
        let params = [
            ("grant_type", bearer.as_str()),
            ("assertion", jag.expose_secret()),
        ];
        token_request(&todo0_endpoint, &agent, &params)
    };

    // Untimed: each request kind must succeed, or the figures would measure refusals.
    for (what, request, token_type) in [
        ("token exchange", exchange(), "N_A"),
        ("ID-JAG redemption", redeem(&mint_jag()), "Bearer"),
    ] {
        let (status, body) = rt.block_on(send(&app, request));
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::OK, "{what} failed: {text}");
        let response: TokenResponse = serde_json::from_slice(&body).expect("a token response");
        assert_eq!(response.token_type, token_type, "{what}");
    }

    let (app, redeem) = (&app, &redeem);
    let mut group = c.benchmark_group("token_endpoint");
    group.throughput(Throughput::Elements(1));
    group.bench_function("id_jag_exchange", |b| {
        b.to_async(&rt).iter(|| async {
            let (status, _) = send(app, exchange()).await;
            assert_eq!(status, StatusCode::OK);
        })
    });
    group.bench_function("jwt_bearer_redemption", |b| {
        b.to_async(&rt).iter_batched(
            mint_jag,
            |jag| async move {
                let (status, _) = send(app, redeem(&jag)).await;
                assert_eq!(status, StatusCode::OK);
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("client_assertion_sign", |b| {
        b.iter(|| agent.sign(&org_endpoint).expect("signing"))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = token_endpoint
}
criterion_main!(benches);
