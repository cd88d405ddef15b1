//! The Okta-compatible management API through real HTTP (OKTA.md §4): `SSWS` authentication and
//! Okta's error bodies, `Link` pagination, and the whole bootstrap sequence of
//! `secure-agent okta bootstrap` — after which a person logs in to the created app and the
//! created agent, with the key uploaded through the API, gets an ID-JAG and redeems it at the
//! created authorization server, at once and again after a restart — then the rollback order,
//! which leaves every list empty.

use std::path::Path;
use std::sync::Arc;

use protocol::assertion::ClientAssertionSigner;
use protocol::claims::AccessTokenClaims;
use protocol::keys::{KeyKind, SigningKey};
use protocol::oauth::{ErrorCode, TokenType};
use protocol::token_client::{ClientAuth, IdJagRequest, TokenClient, TokenClientError};
use protocol::verify::{Expectations, TypeRule};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use testkit::{Browser, IdpHandle, Pkce};

use crate::flow::remote_verifier;
use crate::management_client::{Api, assert_okta_error, next_link};

const AUDIENCE: &str = "http://localhost:5003/mcp";
const CALLBACK: &str = "http://localhost:3000/callback";
const AGENTS: &str = "/workload-principals/api/v1/ai-agents";
const SCOPES: [&str; 4] = [
    "mcp:connect",
    "mcp:tools:read",
    "mcp:tools:manage",
    "mcp:tools:delete",
];

#[tokio::test]
async fn the_management_api_refuses_requests_without_the_ssws_admin_token() {
    let idp = IdpHandle::start().await.unwrap();
    let api = Api::new(&idp);
    let token_file = idp.data_dir.join(idp0::admin::TOKEN_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(api.token.len() >= 40);
    let wrong = format!("SSWS {}x", api.token);
    let bearer = format!("Bearer {}", api.token);
    for path in [
        "/api/v1/org",
        "/api/v1/users/me",
        "/api/v1/authorizationServers",
        AGENTS,
        "/api/v1/no-such-thing",
    ] {
        for authorization in [
            None,
            Some("SSWS "),
            Some(wrong.as_str()),
            Some(bearer.as_str()),
        ] {
            let reply = api.call_as(Method::GET, path, None, authorization).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{path} {authorization:?}"
            );
            assert_okta_error(&reply.body, "E0000011");
            assert_eq!(reply.body["errorSummary"], "Invalid token provided");
        }
    }
    let created = api
        .call_as(
            Method::POST,
            "/api/v1/trustedOrigins",
            Some(
                json!({"name": "x", "origin": "http://localhost:1", "scopes": [{"type": "CORS"}]}),
            ),
            Some(&wrong),
        )
        .await;
    assert_eq!(created.status, StatusCode::UNAUTHORIZED);
    assert!(api.list("/api/v1/trustedOrigins").await.is_empty());

    // Unknown endpoints under every prefix: Okta's 404 body.
    for path in [
        "/api/v1/no-such-thing",
        "/api/v2/x",
        "/workload-principals/api/v1/nothing",
        "/workload-principals/other",
        "/governance/api/v1/nothing",
        "/api/v1/apps/0oaNOSUCHAPP",
        "/api/v1/authorizationServers/..%2Fetc",
    ] {
        let reply = api.call(Method::GET, path, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_okta_error(&reply.body, "E0000007");
        assert!(
            reply.body["errorSummary"]
                .as_str()
                .unwrap()
                .starts_with("Not found: Resource not found: ")
        );
    }
    // Validation errors name the field.
    let bad = api
        .call(
            Method::POST,
            "/api/v1/authorizationServers",
            Some(json!({"name": "x", "audiences": []})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_okta_error(&bad.body, "E0000001");
    assert!(
        bad.body["errorCauses"][0]["errorSummary"]
            .as_str()
            .unwrap()
            .starts_with("audiences")
    );
    let malformed = api
        .http
        .post(format!("{}/api/v1/apps", idp.issuer))
        .header("authorization", format!("SSWS {}", api.token))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_okta_error(&malformed.json().await.unwrap(), "E0000003");
    idp.stop().await.unwrap();
}

#[tokio::test]
async fn lists_paginate_with_link_next_to_the_end() {
    let idp = IdpHandle::start().await.unwrap();
    let api = Api::new(&idp);
    let mut ids = Vec::new();
    for port in [3000, 3001, 3002] {
        let body = json!({"name": format!("o{port}"), "origin": format!("http://localhost:{port}/"),
                          "scopes": [{"type": "CORS"}, {"type": "REDIRECT"}]});
        let reply = api
            .post("/api/v1/trustedOrigins", body, StatusCode::OK)
            .await;
        assert_eq!(reply.body["origin"], format!("http://localhost:{port}"));
        assert_eq!(reply.body["status"], "ACTIVE");
        ids.push(reply.body["id"].as_str().unwrap().to_owned());
    }
    assert!(ids.iter().all(|id| id.starts_with("tos") && id.len() == 20));
    let first = api
        .call(Method::GET, "/api/v1/trustedOrigins?limit=1", None)
        .await;
    assert_eq!(first.body.as_array().unwrap().len(), 1);
    assert!(next_link(&first.links).unwrap().starts_with(&idp.issuer));
    let all = api.list("/api/v1/trustedOrigins?limit=1").await;
    let listed: Vec<&str> = all.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(listed, ids);
    let last = api
        .call(
            Method::GET,
            &format!("/api/v1/trustedOrigins?limit=1&after={}", ids[2]),
            None,
        )
        .await;
    assert_eq!(last.body, json!([]));
    assert_eq!(next_link(&last.links), None);
    let duplicate = api
        .call(Method::POST, "/api/v1/trustedOrigins",
              Some(json!({"name": "again", "origin": "http://localhost:3000", "scopes": [{"type": "CORS"}]})))
        .await;
    assert_eq!(duplicate.status, StatusCode::BAD_REQUEST);
    for limit in ["0", "201", "x"] {
        let reply = api
            .call(
                Method::GET,
                &format!("/api/v1/trustedOrigins?limit={limit}"),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "limit={limit}");
    }
    idp.stop().await.unwrap();
}

/// What the bootstrap sequence created.
pub(crate) struct Created {
    pub(crate) as_id: String,
    pub(crate) app_id: String,
    pub(crate) secret: SecretString,
    pub(crate) user_id: String,
    pub(crate) agent_id: String,
    pub(crate) kid: String,
    pub(crate) policy_id: String,
    pub(crate) rule_id: String,
    pub(crate) connection_id: String,
    pub(crate) origin_id: String,
}

/// OKTA.md §4 steps 1–11 (the connection after the policy, to see the agent refused first).
pub(crate) async fn bootstrap(idp: &IdpHandle, api: &Api, key: &SigningKey) -> Created {
    // 4, 6: who the token belongs to, the org.
    let me = api.get("/api/v1/users/me").await;
    assert_eq!(me["status"], "ACTIVE");
    assert_eq!(me["profile"]["login"], "alice");
    let user_id = me["id"].as_str().unwrap().to_owned();
    let org = api.get("/api/v1/org").await;
    let org_id = org["id"].as_str().unwrap().to_owned();
    assert!(org_id.starts_with("00o"));

    // 1, 2: the authorization server and its scopes.
    let server = api
        .post(
            "/api/v1/authorizationServers",
            json!({"name": "todo0-mcp-server", "description": "MCP", "audiences": [AUDIENCE]}),
            StatusCode::CREATED,
        )
        .await
        .body;
    let as_id = server["id"].as_str().unwrap().to_owned();
    assert!(as_id.starts_with("aus"));
    assert_eq!(server["issuer"], format!("{}/oauth2/{as_id}", idp.issuer));
    assert_eq!(server["status"], "ACTIVE");
    let found = api.list("/api/v1/authorizationServers?q=todo0-mcp").await;
    assert_eq!(found.len(), 1);
    for scope in SCOPES {
        let body = json!({"name": scope, "description": scope, "displayName": scope, "consent": "REQUIRED"});
        let created = api
            .post(
                &format!("/api/v1/authorizationServers/{as_id}/scopes"),
                body,
                StatusCode::CREATED,
            )
            .await;
        assert!(created.body["id"].as_str().unwrap().starts_with("scp"));
    }

    // 3: the app; its secret comes once.
    let app = api
        .post(
            "/api/v1/apps",
            json!({"name": "oidc_client", "label": "agent0", "signOnMode": "OPENID_CONNECT",
                   "credentials": {"oauthClient": {"token_endpoint_auth_method": "client_secret_basic"}},
                   "settings": {"oauthClient": {"client_uri": "http://localhost:3000",
                       "redirect_uris": [CALLBACK], "post_logout_redirect_uris": ["http://localhost:3000/"],
                       "response_types": ["code"], "grant_types": ["authorization_code", "refresh_token"],
                       "application_type": "web", "consent_method": "REQUIRED"}}}),
            StatusCode::OK,
        )
        .await
        .body;
    let app_id = app["id"].as_str().unwrap().to_owned();
    assert!(app_id.starts_with("0oa"));
    assert_eq!(
        app["credentials"]["oauthClient"]["client_id"],
        app_id.as_str()
    );
    let secret = SecretString::from(
        app["credentials"]["oauthClient"]["client_secret"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let again = api.get(&format!("/api/v1/apps/{app_id}")).await;
    assert!(
        again["credentials"]["oauthClient"]
            .get("client_secret")
            .is_none()
    );
    assert_eq!(api.list("/api/v1/apps?q=agent").await.len(), 1);

    // Only assigned users may sign in to an app (Okta's app assignments): bob is not.
    let pkce = Pkce::new();
    let url = idp.authorize_url(&app_id, CALLBACK, "openid", &pkce, "s", "n");
    let refused = Browser::new()
        .authorize(&url, Some(("bob", &idp.password("bob"))))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("access_denied: User is not assigned to the client application."),
        "{refused}"
    );

    // 4: the user assigned to the app.
    let assigned = api
        .post(
            &format!("/api/v1/apps/{app_id}/users"),
            json!({"id": user_id, "scope": "USER"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(assigned.body["id"], user_id.as_str());
    api.get(&format!("/api/v1/apps/{app_id}/users/{user_id}"))
        .await;

    // 5: the agent, 202 + operation.
    let reply = api
        .post(
            AGENTS,
            json!({"profile": {"name": "agent0", "description": "d"}, "appId": app_id}),
            StatusCode::ACCEPTED,
        )
        .await;
    let agent_id = api.completed(&reply).await;
    assert!(agent_id.starts_with("wlp"));
    let agent = api.get(&format!("{AGENTS}/{agent_id}")).await;
    assert_eq!(agent["status"], "STAGED");
    assert_eq!(agent["appId"], app_id.as_str());

    // Activation needs an owner.
    let early = api
        .call(
            Method::POST,
            &format!("{AGENTS}/{agent_id}/lifecycle/activate"),
            None,
        )
        .await;
    assert_eq!(early.status, StatusCode::BAD_REQUEST);

    // 6: owners.
    let agent_orn = format!("orn:okta:directory:{org_id}:workload-principals:ai-agents:{agent_id}");
    assert_eq!(agent["orn"], agent_orn.as_str());
    api.post(
        "/governance/api/v1/resource-owners",
        json!({"principalOrns": [format!("orn:okta:directory:{org_id}:users:{user_id}")],
               "resourceOrns": [agent_orn]}),
        StatusCode::OK,
    )
    .await;

    // 7: the public key; a private one is refused.
    let jwks = format!("{AGENTS}/{agent_id}/credentials/jwks");
    let public = serde_json::to_value(key.public_jwk()).unwrap();
    let mut private = public.clone();
    private["d"] = json!("AQAB");
    let refused = api.call(Method::POST, &jwks, Some(private)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let uploaded = api
        .post(
            &jwks,
            json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": key.kid(),
                                          "n": public["n"], "e": public["e"]}),
            StatusCode::CREATED,
        )
        .await;
    let kid = uploaded.body["kid"].as_str().unwrap().to_owned();
    assert_eq!(kid, key.kid());
    let listed = api.list(&jwks).await;
    assert_eq!(listed[0]["n"], public["n"]);

    // 8: activation.
    let reply = api
        .send(
            Method::POST,
            &format!("{AGENTS}/{agent_id}/lifecycle/activate"),
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(api.completed(&reply).await, agent_id);
    assert_eq!(
        api.get(&format!("{AGENTS}/{agent_id}")).await["status"],
        "ACTIVE"
    );

    // 10: the policy and rule.
    let policy = api
        .post(
            &format!("/api/v1/authorizationServers/{as_id}/policies"),
            json!({"name": "Default MCP Policy", "priority": 1, "type": "OAUTH_AUTHORIZATION_POLICY",
                   "conditions": {"clients": {"include": [agent_id]}}}),
            StatusCode::CREATED,
        )
        .await
        .body;
    let policy_id = policy["id"].as_str().unwrap().to_owned();
    let rule = api
        .post(
            &format!("/api/v1/authorizationServers/{as_id}/policies/{policy_id}/rules"),
            json!({"name": "Allow MCP Connection", "priority": 1, "type": "RESOURCE_ACCESS",
                   "conditions": {"grantTypes": {"include": ["client_credentials", "authorization_code",
                        "urn:ietf:params:oauth:grant-type:device_code",
                        "urn:ietf:params:oauth:grant-type:token-exchange",
                        "urn:ietf:params:oauth:grant-type:jwt-bearer"]},
                       "people": {"groups": {"include": ["EVERYONE"]}},
                       "scopes": {"include": SCOPES}},
                   "actions": {"token": {"accessTokenLifetimeMinutes": 60,
                       "refreshTokenLifetimeMinutes": 129600, "refreshTokenWindowMinutes": 10080}}}),
            StatusCode::CREATED,
        )
        .await
        .body;
    let rule_id = rule["id"].as_str().unwrap().to_owned();

    // Without its managed connection the agent reaches no custom server.
    let id_token = log_in(idp, &app_id, &secret).await;
    let refused = exchange(idp, &agent_id, key, &as_id, &id_token)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, TokenClientError::OAuth { error, .. } if error.error == ErrorCode::InvalidTarget),
        "{refused:?}"
    );

    // 9: the managed connection.
    let connection = api
        .post(
            &format!("{AGENTS}/{agent_id}/connections"),
            json!({"connectionType": "IDENTITY_ASSERTION_CUSTOM_AS",
                   "authorizationServer": {"orn": format!("orn:okta:idp:{org_id}:authorization_servers:{as_id}"),
                                           "resourceIndicator": AUDIENCE},
                   "scopeCondition": "INCLUDE_ONLY", "scopes": SCOPES}),
            StatusCode::CREATED,
        )
        .await
        .body;
    let connection_id = connection["id"].as_str().unwrap().to_owned();
    let connections = api.get(&format!("{AGENTS}/{agent_id}/connections")).await;
    assert_eq!(connections["data"][0]["status"], "ACTIVE");

    // 11: a trusted origin.
    let origin = api
        .post("/api/v1/trustedOrigins",
              json!({"name": "agent0", "origin": "http://localhost:3000", "scopes": [{"type": "CORS"}, {"type": "REDIRECT"}]}),
              StatusCode::OK)
        .await;
    Created {
        as_id,
        app_id,
        secret,
        user_id,
        agent_id,
        kid,
        policy_id,
        rule_id,
        connection_id,
        origin_id: origin.body["id"].as_str().unwrap().to_owned(),
    }
}

/// alice logs in to the created app through the login form; its ID token.
pub(crate) async fn log_in(idp: &IdpHandle, app_id: &str, secret: &SecretString) -> SecretString {
    log_in_for(idp, app_id, secret, "openid profile email")
        .await
        .id_token
        .unwrap()
}

/// alice logs in to the created app asking for `scope`; the token response.
pub(crate) async fn log_in_for(
    idp: &IdpHandle,
    app_id: &str,
    secret: &SecretString,
    scope: &str,
) -> protocol::oauth::TokenResponse {
    let pkce = Pkce::new();
    let url = idp.authorize_url(app_id, CALLBACK, scope, &pkce, "s", "n");
    let code = Browser::new()
        .authorize(&url, Some(("alice", &idp.password("alice"))))
        .await
        .unwrap();
    let auth = ClientAuth::SecretBasic {
        client_id: app_id.to_owned(),
        secret: secret.clone(),
    };
    TokenClient::new()
        .unwrap()
        .request(
            &idp.org_token_endpoint(),
            &auth,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code.code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", pkce.verifier.expose_secret()),
            ],
        )
        .await
        .unwrap()
}

/// Both Cross-App Access steps as the created agent, signing with its uploaded key.
pub(crate) async fn exchange(
    idp: &IdpHandle,
    agent_id: &str,
    key: &SigningKey,
    as_id: &str,
    id_token: &SecretString,
) -> Result<SecretString, TokenClientError> {
    let key = Arc::new(
        SigningKey::from_pem(
            key.private_pem().expose_secret(),
            Some(key.kid().to_owned()),
        )
        .unwrap(),
    );
    let auth = ClientAuth::PrivateKeyJwt(ClientAssertionSigner::new(
        agent_id,
        key,
        protocol::clock::system(),
    ));
    let issuer = format!("{}/oauth2/{as_id}", idp.issuer);
    let client = TokenClient::new().unwrap();
    let jag = client
        .exchange_for_id_jag(
            &idp.org_token_endpoint(),
            &auth,
            &IdJagRequest {
                subject_token: id_token,
                subject_token_type: TokenType::IdToken,
                audience: &issuer,
                resource: Some(AUDIENCE),
                scope: Some("mcp:connect mcp:tools:read"),
            },
        )
        .await?;
    let access = client
        .redeem_id_jag(&format!("{issuer}/v1/token"), &auth, &jag.access_token)
        .await?;
    Ok(access.access_token)
}

async fn assert_access_works(idp: &IdpHandle, created: &Created, key: &SigningKey) {
    let id_token = log_in(idp, &created.app_id, &created.secret).await;
    let access = exchange(idp, &created.agent_id, key, &created.as_id, &id_token)
        .await
        .unwrap();
    let issuer = format!("{}/oauth2/{}", idp.issuer, created.as_id);
    let claims = remote_verifier(&issuer)
        .await
        .verify::<AccessTokenClaims>(
            access.expose_secret(),
            &Expectations::new(issuer.clone(), AUDIENCE, TypeRule::ACCESS_TOKEN),
        )
        .await
        .unwrap()
        .claims;
    assert_eq!(claims.user_id(), created.user_id);
    assert_eq!(claims.client(), Some(created.agent_id.as_str()));
    assert_eq!(
        claims.scp,
        Some(vec!["mcp:connect".to_owned(), "mcp:tools:read".to_owned()])
    );
}

fn file_contains(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        name.starts_with("idp0.db")
            && std::fs::read(entry.path())
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
    })
}

#[tokio::test]
async fn the_bootstrap_sequence_makes_a_working_agent_at_once_that_survives_a_restart_and_rollback_empties_every_list()
 {
    let dir = tempfile::tempdir().unwrap();
    let idp = IdpHandle::start_in(dir.path(), protocol::clock::system())
        .await
        .unwrap();
    let api = Api::new(&idp);
    let key = SigningKey::generate(KeyKind::Rsa).unwrap();
    let created = bootstrap(&idp, &api, &key).await;
    assert_access_works(&idp, &created, &key).await;
    assert!(!file_contains(dir.path(), created.secret.expose_secret()));
    assert!(file_contains(dir.path(), &created.as_id));

    // A restart on the same data directory keeps everything (and the admin token).
    idp.stop().await.unwrap();
    let idp = IdpHandle::start_in(dir.path(), protocol::clock::system())
        .await
        .unwrap();
    let api = Api::new(&idp);
    assert_access_works(&idp, &created, &key).await;
    let keys = api
        .list(&format!("{AGENTS}/{}/credentials/jwks", created.agent_id))
        .await;
    assert_eq!(keys[0]["kid"], created.kid.as_str());

    // The rollback order (OKTA.md §4 teardown).
    let (s, p, a) = (&created.as_id, &created.policy_id, &created.agent_id);
    let server = format!("/api/v1/authorizationServers/{s}");
    api.send(
        Method::DELETE,
        &format!("{server}/policies/{p}/rules/{}", created.rule_id),
        StatusCode::NO_CONTENT,
    )
    .await;
    api.send(
        Method::DELETE,
        &format!("{server}/policies/{p}"),
        StatusCode::NO_CONTENT,
    )
    .await;
    let org = api.get("/api/v1/org").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.post(
        "/governance/api/v1/resource-owners",
        json!({"principalOrns": null,
               "resourceOrns": [format!("orn:okta:directory:{org}:workload-principals:ai-agents:{a}")]}),
        StatusCode::OK,
    )
    .await;
    let connection = format!("{AGENTS}/{a}/connections/{}", created.connection_id);
    let active = api.call(Method::DELETE, &connection, None).await;
    assert_eq!(active.status, StatusCode::BAD_REQUEST);
    api.send(
        Method::POST,
        &format!("{connection}/lifecycle/deactivate"),
        StatusCode::NO_CONTENT,
    )
    .await;
    api.send(Method::DELETE, &connection, StatusCode::NO_CONTENT)
        .await;
    let still_active = api
        .call(Method::DELETE, &format!("{AGENTS}/{a}"), None)
        .await;
    assert_eq!(still_active.status, StatusCode::BAD_REQUEST);
    let reply = api
        .send(
            Method::POST,
            &format!("{AGENTS}/{a}/lifecycle/deactivate"),
            StatusCode::ACCEPTED,
        )
        .await;
    api.completed(&reply).await;
    let reply = api
        .send(
            Method::DELETE,
            &format!("{AGENTS}/{a}"),
            StatusCode::ACCEPTED,
        )
        .await;
    api.completed(&reply).await;
    let app = format!("/api/v1/apps/{}", created.app_id);
    api.send(
        Method::DELETE,
        &format!("{app}/users/{}", created.user_id),
        StatusCode::NO_CONTENT,
    )
    .await;
    let forbidden = api.call(Method::DELETE, &app, None).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_okta_error(&forbidden.body, "E0000056");
    api.send(
        Method::POST,
        &format!("{app}/lifecycle/deactivate"),
        StatusCode::OK,
    )
    .await;
    api.send(Method::DELETE, &app, StatusCode::NO_CONTENT).await;
    api.send(
        Method::POST,
        &format!("{server}/lifecycle/deactivate"),
        StatusCode::NO_CONTENT,
    )
    .await;
    let keys = idp.data_dir.join("keys").join(format!("as-{s}"));
    assert!(keys.exists(), "a deactivated server keeps its keys");
    api.send(Method::DELETE, &server, StatusCode::NO_CONTENT)
        .await;
    assert!(!keys.exists(), "a deleted server's keys are removed");
    api.send(
        Method::DELETE,
        &format!("/api/v1/trustedOrigins/{}", created.origin_id),
        StatusCode::NO_CONTENT,
    )
    .await;
    for list in [
        "/api/v1/authorizationServers",
        "/api/v1/apps",
        AGENTS,
        "/api/v1/trustedOrigins",
    ] {
        assert!(api.list(list).await.is_empty(), "{list}");
    }
    // Gone at once from the directory too: the server's discovery answers 404.
    let discovery = reqwest::get(format!(
        "{}/oauth2/{s}/.well-known/openid-configuration",
        idp.issuer
    ))
    .await
    .unwrap();
    assert_eq!(discovery.status(), StatusCode::NOT_FOUND);
    assert!(idp.idp.client(&created.app_id).is_none());
    assert!(idp.idp.client(a).is_none());
    // Deleting again: 404, as rollback expects of what is gone.
    let again = api.call(Method::DELETE, &server, None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    idp.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_changes_are_serialized_and_all_kept() {
    let idp = IdpHandle::start().await.unwrap();
    let api = Arc::new(Api::new(&idp));
    let mut tasks = Vec::new();
    for port in 4000..4012 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"name": format!("o{port}"), "origin": format!("http://localhost:{port}"),
                              "scopes": [{"type": "CORS"}]});
            api.call(Method::POST, "/api/v1/trustedOrigins", Some(body)).await.status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(api.list("/api/v1/trustedOrigins?limit=5").await.len(), 12);
    // An oversized body is refused with Okta's malformed-body error; a policy naming an unknown
    // client is a validation error naming the field.
    let huge =
        json!({"name": "x".repeat(100 * 1024), "origin": "http://localhost:1", "scopes": []});
    let refused = api
        .call(Method::POST, "/api/v1/trustedOrigins", Some(huge))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_okta_error(&refused.body, "E0000003");
    let server = api
        .post(
            "/api/v1/authorizationServers",
            json!({"name": "s", "audiences": [AUDIENCE]}),
            StatusCode::CREATED,
        )
        .await;
    let as_id = server.body["id"].as_str().unwrap();
    let policy = api
        .call(
            Method::POST,
            &format!("/api/v1/authorizationServers/{as_id}/policies"),
            Some(json!({"name": "p", "conditions": {"clients": {"include": ["wlpNOSUCHAGENT"]}}})),
        )
        .await;
    assert_eq!(policy.status, StatusCode::BAD_REQUEST);
    assert_okta_error(&policy.body, "E0000001");
    assert_eq!(
        policy.body["errorSummary"],
        "Api validation failed: conditions.clients.include"
    );
    idp.stop().await.unwrap();
}

#[tokio::test]
async fn past_the_rate_limit_the_answer_is_429_with_okta_s_headers() {
    let idp = IdpHandle::start().await.unwrap();
    let api = Api::new(&idp);
    let header = |reply: &crate::management_client::Reply, name: &str| {
        reply.headers[name]
            .to_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    let first = api.call(Method::GET, "/api/v1/org", None).await;
    assert_eq!(first.status, StatusCode::OK);
    let limit = header(&first, "x-rate-limit-limit");
    assert_eq!(header(&first, "x-rate-limit-remaining"), limit - 1);
    let reset = header(&first, "x-rate-limit-reset");
    assert!(reset > protocol::clock::system().now());
    let mut refused = None;
    for _ in 0..limit {
        let reply = api.call(Method::GET, "/api/v1/org", None).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("a 429 past the limit");
    assert_okta_error(&refused.body, "E0000047");
    assert_eq!(header(&refused, "x-rate-limit-remaining"), 0);
    assert_eq!(header(&refused, "x-rate-limit-reset"), reset);
    idp.stop().await.unwrap();
}

/// Requests without the admin token are limited apart: a flood of guesses is refused with 429
/// while the admin's own requests still go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_tokens_does_not_use_up_the_admins_quota() {
    let idp = IdpHandle::start().await.unwrap();
    let api = Api::new(&idp);
    let mut refused = None;
    for _ in 0..=600 {
        let reply = api
            .call_as(Method::GET, "/api/v1/org", None, Some("SSWS not-the-token"))
            .await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(reply);
            break;
        }
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    assert_okta_error(&refused.expect("guesses are bounded").body, "E0000047");
    let admin = api.call(Method::GET, "/api/v1/org", None).await;
    assert_eq!(admin.status, StatusCode::OK, "the admin is not locked out");
    idp.stop().await.unwrap();
}
