//! The management API's wire shapes as `insta` snapshots (one of each resource as Okta shows
//! it, and the error bodies), with the port, the generated ids, times and key material
//! replaced by placeholders; and a stored directory that no longer fits the configuration file
//! stops idp0's start with the object named.

use insta::assert_json_snapshot;
use protocol::keys::{KeyKind, SigningKey};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use testkit::IdpHandle;

use crate::management_client::Api;

const AGENTS: &str = "/workload-principals/api/v1/ai-agents";

/// `value` with the issuer and `ids` replaced, and times, error ids and key material redacted.
fn stable(idp: &IdpHandle, ids: &[(String, &str)], value: &Value) -> Value {
    let mut text = value.to_string().replace(&idp.issuer, "[issuer]");
    for (id, name) in ids {
        text = text.replace(id.as_str(), &format!("[{name}]"));
    }
    let mut value: Value = serde_json::from_str(&text).unwrap();
    redact(&mut value);
    value
}

fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match key.as_str() {
                    "created" | "lastUpdated" | "started" | "completed" => *v = json!("[time]"),
                    "errorId" => *v = json!("[errorId]"),
                    "n" => *v = json!("[n]"),
                    "client_secret" => *v = json!("[secret]"),
                    _ => redact(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn management_api_shapes() {
    let mut settings = insta::Settings::clone_current();
    settings.set_sort_maps(true);
    let _sorted = settings.bind_to_scope();
    let idp = IdpHandle::start().await.unwrap();
    let api = Api::new(&idp);
    let org = api.get("/api/v1/org").await;
    let mut ids = vec![(id(&org), "org")];
    let me = api.get("/api/v1/users/me").await;

    let server = api
        .post(
            "/api/v1/authorizationServers",
            json!({"name": "mcp", "description": "MCP", "audiences": ["http://localhost:5003/mcp"]}),
            StatusCode::CREATED,
        )
        .await
        .body;
    let as_id = id(&server);
    ids.push((as_id.clone(), "as"));
    let base = format!("/api/v1/authorizationServers/{as_id}");
    let scope = api
        .post(
            &format!("{base}/scopes"),
            json!({"name": "mcp:connect", "description": "d", "displayName": "Connect", "consent": "REQUIRED"}),
            StatusCode::CREATED,
        )
        .await
        .body;
    ids.push((id(&scope), "scope"));
    let app = api
        .post(
            "/api/v1/apps",
            json!({"name": "oidc_client", "label": "agent0", "signOnMode": "OPENID_CONNECT",
                   "credentials": {"oauthClient": {"token_endpoint_auth_method": "client_secret_basic"}},
                   "settings": {"oauthClient": {"redirect_uris": ["http://localhost:3000/callback"],
                       "response_types": ["code"], "grant_types": ["authorization_code"],
                       "application_type": "web"}}}),
            StatusCode::OK,
        )
        .await
        .body;
    let app_id = id(&app);
    ids.push((app_id.clone(), "app"));
    let user_id = id(&me);
    let app_user = api
        .post(
            &format!("/api/v1/apps/{app_id}/users"),
            json!({"id": user_id}),
            StatusCode::OK,
        )
        .await
        .body;
    let accepted = api
        .post(
            AGENTS,
            json!({"profile": {"name": "agent0"}, "appId": app_id}),
            StatusCode::ACCEPTED,
        )
        .await;
    let operation_id = id(&accepted.body);
    let agent_id = api.completed(&accepted).await;
    ids.push((agent_id.clone(), "agent"));
    ids.push((operation_id, "operation"));
    let operation = api.get(accepted.location.as_deref().unwrap()).await;
    let agent = api.get(&format!("{AGENTS}/{agent_id}")).await;
    let key = SigningKey::generate(KeyKind::Rsa).unwrap();
    let jwk = api
        .post(
            &format!("{AGENTS}/{agent_id}/credentials/jwks"),
            serde_json::to_value(key.public_jwk()).unwrap(),
            StatusCode::CREATED,
        )
        .await
        .body;
    ids.push((id(&jwk), "key"));
    ids.push((key.kid().to_owned(), "kid"));
    let connection = api
        .post(
            &format!("{AGENTS}/{agent_id}/connections"),
            json!({"connectionType": "IDENTITY_ASSERTION_CUSTOM_AS",
                   "authorizationServer": {"orn": format!("orn:okta:idp:{}:authorization_servers:{as_id}", id(&org)),
                                           "resourceIndicator": "http://localhost:5003/mcp"},
                   "scopeCondition": "INCLUDE_ONLY", "scopes": ["mcp:connect"]}),
            StatusCode::CREATED,
        )
        .await
        .body;
    ids.push((id(&connection), "connection"));
    let connections = api.get(&format!("{AGENTS}/{agent_id}/connections")).await;
    let policy = api
        .post(
            &format!("{base}/policies"),
            json!({"name": "Default MCP Policy", "priority": 1, "type": "OAUTH_AUTHORIZATION_POLICY",
                   "conditions": {"clients": {"include": [agent_id]}}}),
            StatusCode::CREATED,
        )
        .await
        .body;
    let policy_id = id(&policy);
    ids.push((policy_id.clone(), "policy"));
    let rule = api
        .post(
            &format!("{base}/policies/{policy_id}/rules"),
            json!({"name": "Allow", "priority": 1, "type": "RESOURCE_ACCESS",
                   "conditions": {"grantTypes": {"include": ["urn:ietf:params:oauth:grant-type:jwt-bearer"]},
                                  "people": {"groups": {"include": ["EVERYONE"]}},
                                  "scopes": {"include": ["mcp:connect"]}},
                   "actions": {"token": {"accessTokenLifetimeMinutes": 60}}}),
            StatusCode::CREATED,
        )
        .await
        .body;
    ids.push((id(&rule), "rule"));
    let origin = api
        .post(
            "/api/v1/trustedOrigins",
            json!({"name": "agent0", "origin": "http://localhost:3000", "scopes": [{"type": "CORS"}]}),
            StatusCode::OK,
        )
        .await
        .body;
    ids.push((id(&origin), "origin"));
    let unauthorized = api
        .call_as(Method::GET, "/api/v1/org", None, None)
        .await
        .body;
    let not_found = api.call(Method::GET, "/api/v1/nothing", None).await.body;
    let invalid = api
        .call(
            Method::POST,
            &format!("{base}/scopes"),
            Some(json!({"name": "mcp:connect"})),
        )
        .await
        .body;

    let shapes = [
        ("org", org),
        ("users_me", me),
        ("authorization_server", server),
        ("scope", scope),
        ("app_created", app),
        ("app_user", app_user),
        ("agent_operation", operation),
        ("agent", agent),
        ("agent_jwk", jwk),
        ("agent_connection", connection),
        ("agent_connections", connections),
        ("policy", policy),
        ("policy_rule", rule),
        ("trusted_origin", origin),
        ("error_401", unauthorized),
        ("error_404", not_found),
        ("error_400", invalid),
    ];
    for (name, value) in shapes {
        assert_json_snapshot!(format!("management_{name}"), stable(&idp, &ids, &value));
    }
    idp.stop().await.unwrap();
}

#[tokio::test]
async fn a_stored_directory_that_no_longer_fits_stops_the_start_naming_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let idp = IdpHandle::start_in(dir.path(), protocol::clock::system())
        .await
        .unwrap();
    let api = Api::new(&idp);
    let app = api
        .post(
            "/api/v1/apps",
            json!({"name": "oidc_client", "label": "a", "signOnMode": "OPENID_CONNECT",
                   "settings": {"oauthClient": {"redirect_uris": ["http://localhost:3000/callback"]}}}),
            StatusCode::OK,
        )
        .await
        .body;
    let app_id = id(&app);
    idp.stop().await.unwrap();

    // The configuration file now registers a client under the app's id.
    let config = dir.path().join("idp0.toml");
    let mut file: idp0::config::ConfigFile =
        toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let extra: idp0::config::ClientEntry = toml::from_str(&format!(
        "client_id = \"{app_id}\"\nauth_method = \"none\"\nredirect_uris = [\"http://localhost:9/cb\"]\n"
    ))
    .unwrap();
    file.clients.push(extra);
    let text = toml::to_string(&file).unwrap();
    std::fs::write(&config, text).unwrap();
    let error = IdpHandle::start_in(dir.path(), protocol::clock::system())
        .await
        .err()
        .expect("the start is refused")
        .to_string();
    assert!(error.contains(&format!("app {app_id}")), "{error}");
    assert!(error.contains("duplicate client id"), "{error}");
    assert!(error.contains("Fix:"), "{error}");
}

fn app_body(field: &str, value: Value) -> Value {
    let mut settings = json!({
        "redirect_uris": ["http://localhost:3000/callback"],
        "response_types": ["code"],
        "grant_types": ["authorization_code"],
        "application_type": "web",
    });
    settings[field] = value;
    json!({
        "name": "oidc_client",
        "label": "hostile",
        "signOnMode": "OPENID_CONNECT",
        "settings": {"oauthClient": settings},
    })
}

#[tokio::test]
async fn apps_with_script_data_file_or_odd_redirect_uris_are_refused() {
    let idp = IdpHandle::start().await.unwrap();
    let api = Api::new(&idp);
    for (field, value) in [
        ("redirect_uris", json!(["javascript:alert(1)"])),
        (
            "redirect_uris",
            json!(["data:text/html,<script>1</script>"]),
        ),
        ("redirect_uris", json!(["file:///etc/passwd"])),
        ("redirect_uris", json!(["http://user:pw@localhost/cb"])),
        ("redirect_uris", json!(["https://*.example.com/cb"])),
        (
            "redirect_uris",
            json!(["http://localhost/cb\r\nSet-Cookie: x=1"]),
        ),
        ("redirect_uris", json!(["http://localhost/cb#fragment"])),
        ("redirect_uris", json!(["/relative"])),
        ("post_logout_redirect_uris", json!(["javascript:alert(1)"])),
        ("initiate_login_uri", json!("javascript:alert(1)")),
        (
            "logo_uri",
            json!("data:image/svg+xml,<svg onload=alert(1)>"),
        ),
    ] {
        let reply = api
            .call(
                Method::POST,
                "/api/v1/apps",
                Some(app_body(field, value.clone())),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{field} {value}");
        assert_eq!(reply.body["errorCode"], "E0000001", "{field} {value}");
    }
    assert!(
        api.list("/api/v1/apps").await.is_empty(),
        "nothing was created"
    );
    let fine = api
        .call(
            Method::POST,
            "/api/v1/apps",
            Some(app_body(
                "post_logout_redirect_uris",
                json!(["https://app.example/"]),
            )),
        )
        .await;
    assert_eq!(fine.status, StatusCode::OK, "{}", fine.body);
    idp.stop().await.unwrap();
}

#[tokio::test]
async fn weak_odd_or_decorated_agent_keys_are_refused_or_stripped() {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let idp = IdpHandle::start().await.unwrap();
    let api = Api::new(&idp);
    let created = api
        .call(
            Method::POST,
            AGENTS,
            Some(json!({"profile": {"name": "keys"}})),
        )
        .await;
    let agent = created.body["resource"]["id"].as_str().unwrap().to_owned();
    let keys = format!("{AGENTS}/{agent}/credentials/jwks");
    let rsa = SigningKey::generate(KeyKind::Rsa).unwrap();
    let public = serde_json::to_value(rsa.public_jwk()).unwrap();
    let with = |changes: Value| {
        let mut jwk = public.clone();
        for (name, value) in changes.as_object().unwrap() {
            jwk[name] = value.clone();
        }
        jwk
    };
    let mut small = vec![0xC3u8; 128]; // a 1024-bit modulus
    small[127] |= 1;
    let p256 = SigningKey::generate(KeyKind::P256).unwrap();
    let ec = serde_json::to_value(p256.public_jwk()).unwrap();
    let mut ec_as_p384 = ec.clone();
    ec_as_p384["crv"] = json!("P-384");
    ec_as_p384.as_object_mut().unwrap().remove("alg");
    for (what, jwk) in [
        ("RSA 1024", with(json!({"n": b64(&small), "kid": "small"}))),
        ("e = 1", with(json!({"e": "AQ", "kid": "e1"}))),
        ("e = 3", with(json!({"e": "Aw", "kid": "e3"}))),
        ("n = 1", with(json!({"n": "AQ", "kid": "n1"}))),
        ("use enc", with(json!({"use": "enc", "kid": "enc"}))),
        ("kid too long", with(json!({"kid": "k".repeat(500)}))),
        ("kid with spaces", with(json!({"kid": "a kid"}))),
        ("P-256 point called P-384", ec_as_p384),
    ] {
        let reply = api.call(Method::POST, &keys, Some(jwk)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            reply.body
        );
        assert_eq!(reply.body["errorCode"], "E0000001", "{what}");
    }
    assert!(api.call(Method::GET, &keys, None).await.body == json!([]));
    // Members a verifier has no use for (and must never follow) are not kept.
    let decorated = with(json!({
        "jku": "https://evil.example/jwks",
        "x5u": "https://evil.example/cert",
        "x5c": ["MIIB"],
        "note": "x",
    }));
    let reply = api.call(Method::POST, &keys, Some(decorated)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let listed = api.call(Method::GET, &keys, None).await.body;
    for member in ["jku", "x5u", "x5c", "note"] {
        assert!(
            listed[0].get(member).is_none(),
            "{member} was kept: {listed}"
        );
    }
    assert_eq!(listed[0]["n"], public["n"]);
    idp.stop().await.unwrap();
}

/// Unassigning a person from the app ends what the agent can do with the tokens it already
/// holds for them: the next ID-JAG exchange of their ID token is `invalid_grant`.
#[tokio::test]
async fn an_unassigned_user_s_id_token_no_longer_exchanges() {
    use crate::management::{bootstrap, exchange, log_in};
    let idp = IdpHandle::start().await.unwrap();
    let api = Api::new(&idp);
    let key = SigningKey::generate(KeyKind::Rsa).unwrap();
    let created = bootstrap(&idp, &api, &key).await;
    let id_token = log_in(&idp, &created.app_id, &created.secret).await;
    exchange(&idp, &created.agent_id, &key, &created.as_id, &id_token)
        .await
        .expect("assigned: the exchange works");
    let unassigned = api
        .call(
            Method::DELETE,
            &format!("/api/v1/apps/{}/users/{}", created.app_id, created.user_id),
            None,
        )
        .await;
    assert_eq!(unassigned.status, StatusCode::NO_CONTENT);
    let refused = exchange(&idp, &created.agent_id, &key, &created.as_id, &id_token)
        .await
        .expect_err("unassigned: refused");
    assert!(refused.to_string().contains("invalid_grant"), "{refused}");
    idp.stop().await.unwrap();
}

/// Unassigning a person also ends the app's own refresh tokens for them: the next refresh is
/// `invalid_grant`.
#[tokio::test]
async fn an_unassigned_user_s_refresh_token_no_longer_refreshes() {
    use crate::management::{bootstrap, log_in_for};
    let idp = IdpHandle::start().await.unwrap();
    let api = Api::new(&idp);
    let key = SigningKey::generate(KeyKind::Rsa).unwrap();
    let created = bootstrap(&idp, &api, &key).await;
    let tokens = log_in_for(
        &idp,
        &created.app_id,
        &created.secret,
        "openid profile email offline_access",
    )
    .await;
    let auth = protocol::token_client::ClientAuth::SecretBasic {
        client_id: created.app_id.clone(),
        secret: created.secret.clone(),
    };
    let refresh = |token: secrecy::SecretString| {
        let (auth, endpoint) = (auth.clone(), idp.org_token_endpoint());
        async move {
            protocol::token_client::TokenClient::new()
                .unwrap()
                .request(
                    &endpoint,
                    &auth,
                    &[
                        ("grant_type", "refresh_token"),
                        (
                            "refresh_token",
                            secrecy::ExposeSecret::expose_secret(&token),
                        ),
                    ],
                )
                .await
        }
    };
    let rotated = refresh(tokens.refresh_token.unwrap())
        .await
        .expect("assigned: the refresh works");
    let unassigned = api
        .call(
            Method::DELETE,
            &format!("/api/v1/apps/{}/users/{}", created.app_id, created.user_id),
            None,
        )
        .await;
    assert_eq!(unassigned.status, StatusCode::NO_CONTENT);
    let refused = refresh(rotated.refresh_token.unwrap())
        .await
        .expect_err("unassigned: refused");
    assert!(refused.to_string().contains("invalid_grant"), "{refused}");
    idp.stop().await.unwrap();
}

/// An app created through the API may use only its own grant types (authorization code here),
/// whatever a policy would allow: client credentials is `unauthorized_client`.
#[tokio::test]
async fn an_app_is_held_to_its_own_grant_types() {
    use crate::management::bootstrap;
    let idp = IdpHandle::start().await.unwrap();
    let api = Api::new(&idp);
    let key = SigningKey::generate(KeyKind::Rsa).unwrap();
    let created = bootstrap(&idp, &api, &key).await;
    let auth = protocol::token_client::ClientAuth::SecretBasic {
        client_id: created.app_id.clone(),
        secret: created.secret.clone(),
    };
    let refused = protocol::token_client::TokenClient::new()
        .unwrap()
        .request(
            &idp.org_token_endpoint(),
            &auth,
            &[("grant_type", "client_credentials"), ("scope", "openid")],
        )
        .await
        .expect_err("not one of the app's grant types");
    assert!(
        refused.to_string().contains("unauthorized_client"),
        "{refused}"
    );
    idp.stop().await.unwrap();
}

/// idp0 does not evaluate a rule's people condition, so a rule for some people only is refused
/// (it would otherwise grant everyone what it grants them).
#[tokio::test]
async fn a_rule_limited_to_some_people_is_refused_not_widened_to_everyone() {
    let idp = IdpHandle::start().await.unwrap();
    let api = Api::new(&idp);
    let server = api
        .post(
            "/api/v1/authorizationServers",
            json!({"name": "people", "audiences": ["http://localhost:5003/mcp"]}),
            StatusCode::CREATED,
        )
        .await
        .body;
    let base = format!(
        "/api/v1/authorizationServers/{}",
        server["id"].as_str().unwrap()
    );
    let policy = api
        .post(
            &format!("{base}/policies"),
            json!({"name": "p", "priority": 1, "conditions": {"clients": {"include": ["ALL_CLIENTS"]}}}),
            StatusCode::CREATED,
        )
        .await
        .body;
    let rules = format!("{base}/policies/{}/rules", policy["id"].as_str().unwrap());
    let rule = |people: Value| {
        json!({"name": "r", "type": "RESOURCE_ACCESS",
               "conditions": {"grantTypes": {"include": ["client_credentials"]},
                              "people": people, "scopes": {"include": ["*"]}}})
    };
    let alice = api.get("/api/v1/users/me").await["id"].clone();
    for people in [
        json!({"users": {"include": [alice]}}),
        json!({"groups": {"include": ["00gAdmins"]}}),
        json!({"groups": {"include": ["EVERYONE", "00gAdmins"]}}),
    ] {
        let reply = api
            .call(Method::POST, &rules, Some(rule(people.clone())))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{people}");
    }
    assert!(api.list(&rules).await.is_empty());
    api.post(
        &rules,
        rule(json!({"groups": {"include": ["EVERYONE"]}})),
        StatusCode::CREATED,
    )
    .await;
    idp.stop().await.unwrap();
}

/// Replicas on one database: what the management API changes through one replica takes
/// effect on the other within seconds (a deactivation must not wait for a restart there), and
/// the other's own writes are not stuck answering 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_replica_takes_effect_on_the_other() {
    let a = IdpHandle::start().await.unwrap();
    let database = format!("sqlite://{}", a.data_dir.join("idp0.db").display());
    let b = IdpHandle::start_replica(&a.data_dir, &database)
        .await
        .unwrap();
    let (api_a, api_b) = (Api::new(&a), Api::new(&b));
    let app = api_a
        .post(
            "/api/v1/apps",
            app_body("post_logout_redirect_uris", json!([])),
            StatusCode::OK,
        )
        .await
        .body;
    let id = app["id"].as_str().unwrap().to_owned();
    let within = |what: &'static str, done: Box<dyn Fn() -> bool + Send>| async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    let b_idp = b.idp.clone();
    let app_id = id.clone();
    within(
        "the replica serves the app created through the other",
        Box::new(move || b_idp.client(&app_id).is_some()),
    )
    .await;
    let deactivate = format!("/api/v1/apps/{id}/lifecycle/deactivate");
    let mut reply = api_b.call(Method::POST, &deactivate, None).await;
    if reply.status == StatusCode::CONFLICT {
        reply = api_b.call(Method::POST, &deactivate, None).await;
    }
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let a_idp = a.idp.clone();
    within(
        "the deactivation through the replica takes effect on the first",
        Box::new(move || a_idp.client(&id).is_none()),
    )
    .await;
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}
