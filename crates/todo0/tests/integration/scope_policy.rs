//! The scope policy (`--scope-policy`): under `least-privilege` (the default) deleting needs
//! `mcp:tools:delete`; under `sample-compatible` a token with Okta's TypeScript sample's scopes
//! (`mcp:connect mcp:tools:manage`) deletes too, over MCP and the REST API, and a caller with
//! neither scope is challenged for `mcp:tools:manage`. `tools/list`, the protected resource
//! metadata and `/openapi.json` advertise what each server enforces.

use protocol::claims::AccessTokenClaims;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use testkit::Stack;
use todo0::domain::{Owner, Title, TodoError};
use todo0::mcp::ScopePolicy;

use super::harness::{Backend, Server, call};

/// The scopes the sample's agent requests, less `mcp:tools:read`.
const SAMPLE: &str = "mcp:connect mcp:tools:manage";

async fn server(policy: ScopePolicy) -> Server {
    Server::start_with(Backend::Sqlite, |config| config.scope_policy = policy).await
}

/// `delete-todo` as `tools/list` shows it.
async fn listed_delete(server: &Server, token: &str) -> Value {
    let session = server.initialize(token).await;
    let reply = server
        .rpc(
            Some(token),
            session.as_deref(),
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "delete-todo")
        .unwrap()
        .clone()
}

async fn scopes_supported(server: &Server) -> Value {
    let url = todo0::mcp::metadata::metadata_url(&server.resource);
    let document: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    document["scopes_supported"].clone()
}

const ALL_FOUR: [&str; 4] = [
    "mcp:connect",
    "mcp:tools:read",
    "mcp:tools:manage",
    "mcp:tools:delete",
];

#[tokio::test]
async fn by_default_a_manage_token_is_refused_delete_todo_with_a_challenge_for_mcp_tools_delete() {
    let server = server(ScopePolicy::default()).await;
    let alice = Owner::new("alice").unwrap();
    let todo = server
        .store
        .create(&alice, &Title::parse("keep me").unwrap(), 1)
        .await
        .unwrap();
    let token = server.token("alice", SAMPLE);

    let reply = server
        .call(&token, "delete-todo", json!({"id": todo.id}))
        .await;
    assert_eq!(reply.status, 403, "{}", reply.text);
    let challenge = reply.challenge();
    assert_eq!(challenge.error(), Some("insufficient_scope"));
    assert_eq!(challenge.scope(), Some("mcp:connect mcp:tools:delete"));
    assert_eq!(
        server.store.get(&alice, todo.id).await.unwrap(),
        todo,
        "the todo is still there, unchanged"
    );

    let delete = listed_delete(&server, &token).await;
    assert_eq!(
        delete["_meta"],
        json!({"requiredScopes": ["mcp:connect", "mcp:tools:delete"]})
    );
    assert_eq!(scopes_supported(&server).await, json!(ALL_FOUR));
}

#[tokio::test]
async fn sample_compatible_deletes_with_the_samples_scopes_and_asks_for_mcp_tools_manage() {
    let server = server(ScopePolicy::SampleCompatible).await;
    let alice = Owner::new("alice").unwrap();
    let title = Title::parse("delete me").unwrap();

    // The sample's token deletes.
    let todo = server.store.create(&alice, &title, 1).await.unwrap();
    let token = server.token("alice", SAMPLE);
    let reply = server
        .call(&token, "delete-todo", json!({"id": todo.id}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(!reply.is_tool_error(), "{}", reply.text);
    assert_eq!(reply.structured()["todo"]["id"], todo.id);
    assert!(matches!(
        server.store.get(&alice, todo.id).await,
        Err(TodoError::NotFound(_))
    ));

    // So does a least-privilege token.
    let todo = server.store.create(&alice, &title, 1).await.unwrap();
    let reply = server
        .call(
            &server.token("alice", "mcp:connect mcp:tools:delete"),
            "delete-todo",
            json!({"id": todo.id}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(!reply.is_tool_error(), "{}", reply.text);

    // A reader is challenged for what the sample's client can request, and changes nothing;
    // the union of its scopes and the challenged ones passes.
    let todo = server.store.create(&alice, &title, 1).await.unwrap();
    let reader = "mcp:connect mcp:tools:read";
    let session = server.initialize(&server.token("alice", reader)).await;
    let reply = server
        .rpc(
            Some(&server.token("alice", reader)),
            session.as_deref(),
            &call("delete-todo", json!({"id": todo.id})),
        )
        .await;
    assert_eq!(reply.status, 403, "{}", reply.text);
    let challenge = reply.challenge();
    assert_eq!(challenge.error(), Some("insufficient_scope"));
    let challenged = challenge.scope().unwrap().to_owned();
    assert_eq!(challenged, "mcp:connect mcp:tools:manage");
    assert_eq!(server.store.get(&alice, todo.id).await.unwrap(), todo);
    let stepped_up = server.token("alice", &format!("{reader} {challenged}"));
    let reply = server
        .call(&stepped_up, "delete-todo", json!({"id": todo.id}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(!reply.is_tool_error(), "{}", reply.text);

    // What is advertised is what is enforced.
    let delete = listed_delete(&server, &token).await;
    assert_eq!(
        delete["_meta"],
        json!({
            "requiredScopes": ["mcp:connect", "mcp:tools:manage"],
            "acceptedScopeSets": [
                ["mcp:connect", "mcp:tools:manage"],
                ["mcp:connect", "mcp:tools:delete"]
            ]
        })
    );
    assert_eq!(scopes_supported(&server).await, json!(ALL_FOUR));
}

#[tokio::test]
async fn the_rest_api_deletes_with_the_samples_scopes_only_under_sample_compatible() {
    use reqwest::Method as M;
    // Two web apps on one store and one idp0: the default policy and the sample's.
    let stack = Stack::start().await.unwrap();
    let strict = stack.start_web_app().await.unwrap();
    let sample = stack
        .start_web_app_with(|config| config.scope_policy = ScopePolicy::SampleCompatible)
        .await
        .unwrap();
    // A real Cross-App Access token with the sample's scopes, all granted by idp0.
    let token = stack.mcp_token("alice", SAMPLE).await.unwrap();
    let token = token.expose_secret();
    let claims: AccessTokenClaims =
        serde_json::from_value(protocol::verify::decode_unverified(token).unwrap()).unwrap();
    assert_eq!(claims.scopes().to_string(), SAMPLE);
    let owner = Owner::new(claims.user_id()).unwrap();

    let (status, _, todo) = super::web::call(
        M::POST,
        &format!("{strict}/todos"),
        token,
        Some(json!({"title": "delete me"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{todo}");
    let path = format!("/todos/{}", todo["id"]);

    // least-privilege: 403 naming mcp:tools:delete, and the todo is still there.
    for (method, path) in [
        (M::DELETE, path.clone()),
        (M::POST, format!("{path}/delete")),
    ] {
        let (status, challenge, body) =
            super::web::call(method, &format!("{strict}{path}"), token, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"], "insufficient_scope");
        let challenge = challenge.unwrap();
        let parsed = protocol::www_authenticate::parse(&challenge).unwrap();
        let bearer = protocol::www_authenticate::find_bearer(&parsed).unwrap();
        assert_eq!(bearer.error(), Some("insufficient_scope"));
        assert_eq!(bearer.scope(), Some("mcp:tools:delete"), "{challenge}");
    }
    let id = todo["id"].as_i64().unwrap();
    assert_eq!(
        stack.store.get(&owner, id).await.unwrap().title,
        "delete me"
    );

    // sample-compatible: the same token deletes.
    let (status, _, body) =
        super::web::call(M::DELETE, &format!("{sample}{path}"), token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(matches!(
        stack.store.get(&owner, id).await,
        Err(TodoError::NotFound(_))
    ));

    // Each app's OpenAPI document says what it enforces.
    for (app, expected) in [
        (
            &strict,
            json!([{"bearer": ["mcp:tools:delete"]}, {"session": []}]),
        ),
        (
            &sample,
            json!([{"bearer": ["mcp:tools:manage"]}, {"bearer": ["mcp:tools:delete"]}, {"session": []}]),
        ),
    ] {
        let document: Value = reqwest::get(format!("{app}/openapi.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            document["paths"]["/todos/{id}"]["delete"]["security"],
            expected
        );
    }
}
