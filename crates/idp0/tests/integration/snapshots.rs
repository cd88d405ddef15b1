//! Wire documents and decoded claims as `insta` snapshots: discovery (both well-known forms, org
//! and custom AS), JWKS shape, and the claims of an ID token, an ID-JAG and an access token. The
//! ephemeral port is replaced by `[issuer]`; times, ids and key material are redacted.

use insta::assert_json_snapshot;
use protocol::oauth::TokenType;
use secrecy::ExposeSecret;
use serde_json::Value;
use testkit::{Browser, IdpHandle};

use super::flow::RESOURCE;

/// Fetches JSON and replaces the run's issuer with a stable placeholder.
/// Snapshots list object keys in sorted order, whatever order serde_json keeps them in (its
/// `preserve_order` feature is switched on by other crates' dependencies in a workspace build).
fn sorted_maps() -> insta::internals::SettingsBindDropGuard {
    let mut settings = insta::Settings::clone_current();
    settings.set_sort_maps(true);
    settings.bind_to_scope()
}

async fn stable(idp: &IdpHandle, url: &str) -> Value {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    serde_json::from_str(&text.replace(&idp.issuer, "[issuer]")).unwrap()
}

fn stable_claims(idp: &IdpHandle, token: &str) -> Value {
    let claims = protocol::verify::decode_unverified(token)
        .unwrap()
        .to_string();
    serde_json::from_str(&claims.replace(&idp.issuer, "[issuer]")).unwrap()
}

#[tokio::test]
async fn metadata_documents() {
    let _sorted = sorted_maps();
    let idp = IdpHandle::start().await.unwrap();
    let org_oidc = stable(
        &idp,
        &format!("{}/.well-known/openid-configuration", idp.issuer),
    )
    .await;
    let org_oauth = stable(
        &idp,
        &format!("{}/.well-known/oauth-authorization-server", idp.issuer),
    )
    .await;
    assert_eq!(org_oidc, org_oauth, "both org documents agree");
    assert_json_snapshot!("org_metadata", org_oidc);

    let todo0 = idp.todo0_issuer();
    let custom = stable(
        &idp,
        &format!("{todo0}/.well-known/oauth-authorization-server"),
    )
    .await;
    let inserted = stable(
        &idp,
        &format!(
            "{}/.well-known/oauth-authorization-server/oauth2/todo0",
            idp.issuer
        ),
    )
    .await;
    let oidc = stable(&idp, &format!("{todo0}/.well-known/openid-configuration")).await;
    assert_eq!(
        custom, inserted,
        "RFC 8414 path insertion serves the same document"
    );
    assert_eq!(custom, oidc);
    assert_json_snapshot!("todo0_metadata", custom);

    let jwks = stable(&idp, &format!("{todo0}/v1/keys")).await;
    assert_json_snapshot!("todo0_jwks", jwks, { ".keys[].kid" => "[kid]", ".keys[].n" => "[n]" });
    let missing = reqwest::get(format!(
        "{}/oauth2/nope/.well-known/oauth-authorization-server",
        idp.issuer
    ))
    .await
    .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn decoded_token_claims() {
    let _sorted = sorted_maps();
    let idp = IdpHandle::start().await.unwrap();
    let login = idp.login(&Browser::new(), "alice").await.unwrap();
    let id_token = login.id_token.unwrap();
    let redactions = |v: &Value| {
        let mut v = v.clone();
        for key in ["iat", "exp", "jti", "auth_time", "sid"] {
            if v.get(key).is_some() {
                v[key] = format!("[{key}]").into();
            }
        }
        v
    };
    assert_json_snapshot!(
        "id_token_claims",
        redactions(&stable_claims(&idp, id_token.expose_secret()))
    );
    let jag = idp
        .id_jag(
            &id_token,
            TokenType::IdToken,
            RESOURCE,
            "mcp:connect mcp:tools:read",
        )
        .await
        .unwrap();
    let header = protocol::verify::decode_unverified(&format!(
        "x.{}.y",
        jag.access_token.expose_secret().split('.').next().unwrap()
    ))
    .unwrap();
    assert_eq!(header["typ"], "oauth-id-jag+jwt");
    assert_eq!(header["alg"], "RS256");
    assert_json_snapshot!(
        "id_jag_claims",
        redactions(&stable_claims(&idp, jag.access_token.expose_secret()))
    );
    let access = idp.redeem(&jag.access_token).await.unwrap();
    assert_json_snapshot!(
        "access_token_claims",
        redactions(&stable_claims(&idp, access.access_token.expose_secret()))
    );
}
