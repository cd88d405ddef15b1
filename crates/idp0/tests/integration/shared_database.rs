//! Two idp0 replicas on one PostgreSQL database (`--database postgres://…`) and one data
//! directory (their signing keys): a login on one is an SSO session on the other, and a refresh
//! token issued by one rotates on the other exactly once.
//!
//! PostgreSQL is required, never skipped: `IDP0_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; each run uses its own schema, dropped at the end.

use dbconn::testing::TestSchema;
use idp0::store::PostgresStore;
use protocol::token_client::TokenClient;
use secrecy::ExposeSecret;
use testkit::{Browser, IdpHandle, Pkce};

use crate::flow::RESOURCE;

/// A fresh schema of the test database with idp0's tables, dropped when the test ends.
async fn create_schema() -> TestSchema {
    let schema = TestSchema::new("IDP0_TEST_DATABASE_URL");
    if let Err(e) = PostgresStore::connect_in_schema(schema.url(), schema.name()).await {
        panic!("{}", schema.required(e));
    }
    schema
}

#[tokio::test]
async fn two_replicas_on_one_postgres_database_share_sessions_and_tokens() {
    let schema = create_schema().await;
    let database = schema.url_with_search_path();
    let dir = tempfile::tempdir().unwrap();
    let a = IdpHandle::start_replica(dir.path(), &database)
        .await
        .unwrap();
    let b = IdpHandle::start_replica(dir.path(), &database)
        .await
        .unwrap();
    assert!(
        !dir.path().join(idp0::DATABASE_FILE).exists(),
        "no SQLite file when a database URL is given"
    );

    // A: password login, code redemption, and the ID-JAG token exchange on the shared state.
    let browser = Browser::new();
    let login = a.login(&browser, "alice").await.unwrap();
    let granted = a
        .cross_app_access(
            login.id_token.as_ref().unwrap(),
            RESOURCE,
            "mcp:connect mcp:tools:read",
        )
        .await
        .unwrap();
    assert!(!granted.access.access_token.expose_secret().is_empty());

    // B: the SSO session A created signs alice in without the login form (same browser).
    let pkce = Pkce::new();
    let url = b.authorize_url("agent0", &b.agent0_redirect, "openid", &pkce, "s", "n");
    let code = browser
        .authorize(&url, None)
        .await
        .expect("replica B knows replica A's SSO session");
    let on_b = TokenClient::new()
        .unwrap()
        .request(
            &b.org_token_endpoint(),
            &b.web_client_auth("agent0"),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code.code),
                ("redirect_uri", &b.agent0_redirect),
                ("code_verifier", pkce.verifier.expose_secret()),
            ],
        )
        .await
        .unwrap();
    assert!(on_b.id_token.is_some());

    // B rotates A's refresh token; A then sees it used (reuse: refused).
    let refresh_token = login.refresh_token.as_ref().unwrap().expose_secret();
    let refresh_at = |idp: &IdpHandle| {
        let (endpoint, auth) = (idp.org_token_endpoint(), idp.web_client_auth("agent0"));
        async move {
            TokenClient::new()
                .unwrap()
                .request(
                    &endpoint,
                    &auth,
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh_token),
                    ],
                )
                .await
                .map_err(|e| e.to_string())
        }
    };
    refresh_at(&b).await.expect("B accepts A's refresh token");
    let reused = refresh_at(&a).await.unwrap_err();
    assert!(reused.contains("invalid_grant"), "{reused}");

    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
