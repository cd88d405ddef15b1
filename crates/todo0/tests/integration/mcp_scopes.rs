//! Every tool under every scope combination, on SQLite and PostgreSQL: a call runs exactly when
//! the token holds `mcp:connect` and the tool's scope; otherwise the HTTP layer answers `403`
//! with an `insufficient_scope` challenge naming every scope the call needs, and nothing changes.

use rstest::rstest;
use serde_json::{Value, json};
use todo0::domain::{Filter, Owner, Title};

use super::harness::{Backend, Server};

const SCOPE_SETS: [&str; 7] = [
    "mcp:connect",
    "mcp:connect mcp:tools:read",
    "mcp:connect mcp:tools:manage",
    "mcp:connect mcp:tools:delete",
    "mcp:connect mcp:tools:read mcp:tools:manage mcp:tools:delete",
    "mcp:tools:read mcp:tools:manage mcp:tools:delete",
    "mcp:connect mcp:tools:read mcp:tools:manage",
];

fn arguments(tool: &str, id: i64) -> Value {
    match tool {
        "get-todos" => json!({}),
        "create-todo" => json!({"title": "new one"}),
        "update-todo" => json!({"id": id, "title": "renamed"}),
        _ => json!({"id": id}),
    }
}

fn needed(tool: &str) -> &'static str {
    match tool {
        "get-todos" => "mcp:connect mcp:tools:read",
        "delete-todo" => "mcp:connect mcp:tools:delete",
        _ => "mcp:connect mcp:tools:manage",
    }
}

#[rstest]
#[tokio::test]
async fn tool_calls_follow_their_scopes(
    #[values(Backend::Sqlite, Backend::Postgres)] backend: Backend,
    #[values(
        "get-todos",
        "create-todo",
        "update-todo",
        "toggle-todo",
        "delete-todo"
    )]
    tool: &str,
) {
    let server = Server::start(backend, false).await;
    let alice = Owner::new("alice").unwrap();
    for scopes in SCOPE_SETS {
        let seeded = server
            .store
            .create(&alice, &Title::parse("seed").unwrap(), 1)
            .await
            .unwrap();
        let before = server.store.list(&alice, &Filter::default()).await.unwrap();
        let token = server.token("alice", scopes);
        let granted: protocol::Scopes = scopes.parse().unwrap();
        let allowed = granted.contains_all(&needed(tool).parse().unwrap());
        let session = if granted.contains("mcp:connect") {
            server.initialize(&token).await
        } else {
            None
        };
        let reply = server
            .rpc(
                Some(&token),
                session.as_deref(),
                &super::harness::call(tool, arguments(tool, seeded.id)),
            )
            .await;
        if allowed {
            assert_eq!(reply.status, 200, "{tool} with {scopes}: {}", reply.text);
            assert!(
                !reply.is_tool_error(),
                "{tool} with {scopes}: {}",
                reply.text
            );
        } else {
            assert_eq!(reply.status, 403, "{tool} with {scopes}");
            let challenge = reply.challenge();
            assert_eq!(challenge.error(), Some("insufficient_scope"));
            assert_eq!(
                challenge.scope(),
                Some(needed(tool)),
                "{tool} with {scopes}"
            );
            assert!(
                challenge
                    .resource_metadata()
                    .unwrap()
                    .ends_with("/.well-known/oauth-protected-resource/mcp")
            );
            let after = server.store.list(&alice, &Filter::default()).await.unwrap();
            assert_eq!(before, after, "a refused call changes nothing");
        }
    }
}
